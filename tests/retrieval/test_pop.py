import numpy as np
import pandas as pd

from instructrec.retrieval import Pop
from instructrec.testing.retriever import RetrieverContract


class TestPopContract(RetrieverContract):
    history_aware = False

    def make_retriever(self):
        return Pop()


def test_pop_scores_are_training_counts():
    train = pd.DataFrame(
        {
            "user": [0, 0, 1, 2, 2],
            "item": [1, 2, 2, 2, 0],
            "rating": 1.0,
            "timestamp": [1.0, 2, 1, 1, 2],
            "order": range(5),
        }
    )
    r = Pop().fit(train, 3, 4)
    np.testing.assert_array_equal(r.score_all(np.array([0]))[0], [1, 1, 3, 0])
    items, _ = r.candidates(np.array([1]), 2)  # user 1 saw item 2
    assert items[0, 0] in (0, 1) and 2 not in items[0]
