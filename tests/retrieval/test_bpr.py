import numpy as np

from instructrec.data import make_split
from instructrec.retrieval import BPR, BPRConfig
from instructrec.testing.retriever import RetrieverContract, planted_dataset

SMALL = dict(dim=16, lr=0.05, batch_size=128, max_epochs=30, patience=30, seed=1)


class TestBPRContract(RetrieverContract):
    history_aware = False  # known users are scored by their learned factor

    def make_retriever(self):
        return BPR(BPRConfig(**SMALL))


def test_unknown_users_are_folded_in_from_history():
    ds = planted_dataset()
    split = make_split(ds, seed=0, sets={"cand10": 9})
    r = BPR(BPRConfig(**SMALL)).fit(split.train, ds.n_users, ds.n_items, valid=split.valid)
    unknown = np.array([-1, ds.n_users + 3])
    s = r.score_all(unknown, [np.array([0, 1, 2]), np.array([25, 26])])
    assert not np.allclose(s[0], s[1])
    # a history from cluster 0 ranks the rest of cluster 0 (items 0..9) first
    top, _ = r.candidates(unknown[:1], 5, histories=[np.array([0, 1, 2])])
    assert (top < 10).mean() >= 0.8
