"""TitleKNN: the text-only rival (frozen item-text vectors, no interactions needed)."""

import numpy as np
import pandas as pd
import pytest

from instructrec.data.errors import DataError
from instructrec.models.text_encoder import item_text_vectors
from instructrec.retrieval import TitleKNN
from instructrec.retrieval.registry import fit_retriever, make_retriever
from instructrec.testing.retriever import RetrieverContract, planted_dataset

# the planted log's clusters (items 0-9, 10-19, 20-29), told apart only by their texts
TOPICS = ("a space shooter game", "a cooking recipe book", "a jazz piano album")


def planted_texts(n_items: int = 30) -> list[str]:
    return [f"{TOPICS[j // 10]} number {j}" for j in range(n_items)]


class TestTitleKNNContract(RetrieverContract):
    def make_retriever(self):
        r = TitleKNN()
        r.item_texts, r.text_encoder = planted_texts(), item_text_vectors
        return r


def _train(pairs):
    u, i = zip(*pairs, strict=True)
    return pd.DataFrame(
        {"user": u, "item": i, "rating": 1.0, "timestamp": range(len(u)), "order": range(len(u))}
    )


@pytest.fixture(scope="module")
def fitted():
    texts = ["Call of Duty: Black Ops - Xbox 360", "Call of Duty: Ghosts - Xbox 360",
             "Mario Kart 8 - Wii U", "Super Mario 3D World - Wii U",
             "GBA 6-Pak Care Case - Game Boy Advance"]  # fmt: skip
    # item 1 and item 3 have no training interaction (cold)
    return TitleKNN(history=2).fit(
        _train([(0, 0), (1, 2), (1, 4)]), 2, 5, item_texts=texts, text_encoder=item_text_vectors
    )


def test_a_cold_item_is_ranked_by_its_text(fitted):
    """The sequel nobody played in training comes first for the user of its franchise."""
    s = fitted.score_all(np.array([0, 1]))
    assert s[0].argsort()[-2] == 1  # after item 0 itself: its sequel, a cold item
    assert s[1, 3] > s[1, 1]  # the Wii U player: the cold Mario before the cold Call of Duty


def test_max_and_mean_pooling_by_hand(fitted):
    v = fitted.vectors
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    hist = [np.array([0, 2, 4])]  # history 2: only items 2 and 4 count
    s = fitted.score_all(np.array([9]), hist)[0]
    np.testing.assert_allclose(s, np.maximum(v @ v[2], v @ v[4]), rtol=1e-5, atol=1e-6)
    mean = TitleKNN(history=2, pooling="mean")
    mean.vectors, mean.n_items = v, 5
    np.testing.assert_allclose(
        mean.score_all(np.array([9]), hist)[0], (v @ v[2] + v @ v[4]) / 2, rtol=1e-5, atol=1e-6
    )
    assert (fitted.score_all(np.array([9]), [np.array([], np.int64)]) == 0).all()


def test_needs_texts_and_checks_options():
    with pytest.raises(DataError, match="needs the item texts"):
        TitleKNN().fit(_train([(0, 0)]), 1, 2)
    with pytest.raises(DataError, match="2 item texts for 3 items"):
        TitleKNN().fit(_train([(0, 0)]), 1, 3, item_texts=["a", "b"])
    with pytest.raises(DataError, match="pooling"):
        make_retriever("titleknn", {"pooling": "median"})
    with pytest.raises(DataError, match="needs a text encoder"):  # the retrieval room has none
        TitleKNN().fit(_train([(0, 0)]), 1, 2, item_texts=["a", "b"])
    with pytest.raises(DataError, match=r"shape \(1, 3\) for 2 texts"):
        TitleKNN().fit(
            _train([(0, 0)]),
            1,
            2,
            item_texts=["a", "b"],
            text_encoder=lambda texts, backbone, max_len: np.ones((1, 3), np.float32),
        )


def test_the_encoder_is_asked_for_the_configured_backbone_and_length():
    seen = []

    def encoder(texts, backbone, max_len):
        seen.append((list(texts), backbone, max_len))
        v = np.eye(3, dtype=np.float32)[: len(texts)]
        return v

    r = TitleKNN(backbone="/some/encoder", max_len=16).fit(
        _train([(0, 0)]), 1, 3, item_texts=["a", "b", 7], text_encoder=encoder
    )
    assert seen == [(["a", "b", "7"], "/some/encoder", 16)]
    np.testing.assert_array_equal(r.score_all(np.array([0]))[0], [1.0, 0.0, 0.0])


def test_the_evaluation_passes_the_dataset_texts():
    from instructrec.data import make_split
    from instructrec.evaluation.run import fit_baselines
    from instructrec.rerank.rerank_features import item_texts

    ds = planted_dataset()
    split = make_split(ds, seed=0, sets={"cand10": 9})
    r = fit_baselines(ds, split, ["titleknn"])["titleknn"]
    direct = fit_retriever(
        "titleknn",
        split,
        ds.n_users,
        ds.n_items,
        item_texts=item_texts(ds),
        text_encoder=item_text_vectors,
    )
    np.testing.assert_allclose(r.vectors, direct.vectors, rtol=1e-6)


def test_a_refit_on_the_same_texts_reuses_the_vectors(fitted, monkeypatch):
    """The stacked twin (a deep copy refitted on fewer interactions) does not encode again;
    other texts do."""
    import copy

    twin = copy.deepcopy(fitted)
    texts = ["Call of Duty: Black Ops - Xbox 360", "Call of Duty: Ghosts - Xbox 360",
             "Mario Kart 8 - Wii U", "Super Mario 3D World - Wii U",
             "GBA 6-Pak Care Case - Game Boy Advance"]  # fmt: skip
    twin.text_encoder = lambda *a: pytest.fail("encoded again")
    twin.fit(_train([(0, 0)]), 2, 5, item_texts=texts)
    np.testing.assert_array_equal(twin.vectors, fitted.vectors)
    assert twin.train_items([0])[0].tolist() == [0] and twin.train_items([1])[0].size == 0
    with pytest.raises(pytest.fail.Exception, match="encoded again"):
        twin.fit(_train([(0, 0)]), 2, 5, item_texts=[t + "!" for t in texts])
