import numpy as np
import pandas as pd
import pytest

from instructrec.data.errors import DataError
from instructrec.retrieval import ItemKNN
from instructrec.retrieval.registry import make_retriever
from instructrec.testing.retriever import RetrieverContract


class TestItemKNNContract(RetrieverContract):
    def make_retriever(self):
        return ItemKNN(k=20)


def _train(pairs):
    u, i = zip(*pairs, strict=True)
    return pd.DataFrame(
        {"user": u, "item": i, "rating": 1.0, "timestamp": range(len(u)), "order": range(len(u))}
    )


def test_cosine_similarity_by_hand():
    # users: 0 -> {0,1}, 1 -> {0,1,2}, 2 -> {2}
    r = ItemKNN(k=5, shrink=0.0).fit(_train([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2)]), 3, 3)
    sim = r.sim.toarray()
    # |U0 & U1| = 2, |U0| = |U1| = 2 -> 1.0; |U0 & U2| = 1, |U2| = 2 -> 1/2
    np.testing.assert_allclose(sim[0, 1], 1.0, rtol=1e-6)
    np.testing.assert_allclose(sim[0, 2], 0.5, rtol=1e-6)
    np.testing.assert_allclose(np.diag(sim), 0.0)
    # history {0} scores item 1 with 1.0 and item 2 with 0.5
    s = r.score_all(np.array([9]), [np.array([0])])[0]
    np.testing.assert_allclose(s, [0.0, 1.0, 0.5], rtol=1e-6)


def test_shrink_and_k_prune():
    train = _train([(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 2)])
    shrunk = ItemKNN(k=5, shrink=2.0).fit(train, 3, 3).sim.toarray()
    np.testing.assert_allclose(shrunk[0, 1], 2 / (2 + 2.0), rtol=1e-6)
    pruned = ItemKNN(k=1, shrink=0.0).fit(train, 3, 3).sim
    assert (np.diff(pruned.indptr) <= 1).all()
    assert pruned[0, 1] == pytest.approx(1.0)


def test_registry_rejects_unknown_option():
    with pytest.raises(DataError, match="unknown option"):
        make_retriever("itemknn", {"neighbours": 3})
    with pytest.raises(DataError, match="unknown retriever"):
        make_retriever("nope")
