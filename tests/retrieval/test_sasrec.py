import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.retrieval import SASRec, SASRecConfig
from instructrec.retrieval.sasrec import _pad_left, training_windows
from instructrec.testing.retriever import RetrieverContract, planted_dataset

SMALL = dict(
    hidden=32,
    n_layers=1,
    n_heads=2,
    inner=64,
    dropout=0.1,
    lr=5e-3,
    batch_size=32,
    max_epochs=12,
    patience=12,
    seed=3,
)


class TestSASRecContract(RetrieverContract):
    def make_retriever(self):
        return SASRec(SASRecConfig(**SMALL))


def test_training_windows_count_each_target_once():
    seqs = [np.arange(25), np.arange(3), np.arange(1), np.arange(2)]
    x, y = training_windows(seqs, max_len=6, stride=3)
    targets = sorted((y[y > 0] - 1).tolist())
    expected = sorted(list(range(1, 25)) + [1, 2] + [1])  # every item but each first one
    assert targets == expected
    # inputs precede targets by exactly one step, left padding only
    for xr, yr in zip(x, y, strict=True):
        m = yr > 0
        real = xr > 0
        assert (np.flatnonzero(real) == np.arange(len(xr) - real.sum(), len(xr))).all()
        assert (yr[m] == xr[m] + 1).all()  # arange sequences: next id = this id + 1


def test_pad_left_truncates_to_window():
    out = _pad_left([np.arange(30), np.array([4]), np.empty(0, int)], 5)
    np.testing.assert_array_equal(out[0], np.arange(25, 30) + 1)
    np.testing.assert_array_equal(out[1], [0, 0, 0, 0, 5])
    assert (out[2] == 0).all()


def test_learns_next_item_of_cycle():
    ds = planted_dataset(n_users=120, seed=1)
    split = make_split(ds, seed=0, sets={"cand10": 9})
    r = SASRec(SASRecConfig(**{**SMALL, "max_epochs": 25, "patience": 25}))
    r.fit(split.train, ds.n_users, ds.n_items, valid=split.valid)
    seqs = split.sequences("test")
    users = split.test["user"].to_numpy()
    top1, _ = r.candidates(users, 1, histories=[seqs[int(u)] for u in users])
    acc = (top1[:, 0] == split.test["item"].to_numpy()).mean()
    assert acc > 0.5, acc  # the next item of a fixed cycle is predictable (random: ~1/23)
    assert r.history_ and r.best_valid_ndcg_ == max(h["valid_ndcg@10"] for h in r.history_)


def test_fit_without_valid_holds_out_last_item():
    ds = planted_dataset(n_users=40)
    split = make_split(ds, seed=0, sets={"cand10": 9})
    r = SASRec(SASRecConfig(**{**SMALL, "max_epochs": 2})).fit(split.train, ds.n_users, ds.n_items)
    assert len(r.history_) == 2 and np.isfinite(r.history_[-1]["loss"])


def test_unfitted_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        SASRec().score_all(np.array([0]))


def _capped_fits(cap_for):
    """Fits of one model where ``cap_for(epoch_seen, wait)`` answers the epoch cap."""
    ds = planted_dataset()
    split = make_split(ds, seed=0)
    m = SASRec(SASRecConfig(**{**SMALL, "max_epochs": 8, "patience": 8}))
    seen = []

    def cap(wait):
        seen.append(wait)
        return cap_for(len(seen), wait)

    m.fit(split.train, ds.n_users, ds.n_items, epoch_cap=cap)
    return m, seen, ds, split


@pytest.mark.parametrize(
    "when",
    ["from the start", "after the fit passed it", "only at the end"],
)
def test_epoch_cap_equals_a_fit_with_that_many_epochs(when):
    """A cap learned while fitting (the stacked twin following the first stage's kept epoch)
    gives the weights of a fit with ``max_epochs`` = the cap, whenever it arrives."""
    cap = 1  # the uncapped fit keeps a later epoch (checked below)
    rule = {
        "from the start": lambda n, wait: cap,
        "after the fit passed it": lambda n, wait: cap if n >= 6 else None,
        "only at the end": lambda n, wait: cap if wait else None,
    }[when]
    m, seen, ds, split = _capped_fits(rule)
    ref = SASRec(SASRecConfig(**{**SMALL, "max_epochs": cap, "patience": 8}))
    ref.fit(split.train, ds.n_users, ds.n_items)
    users = np.arange(ds.n_users)
    np.testing.assert_array_equal(m.score_all(users), ref.score_all(users))
    assert [h["valid_ndcg@10"] for h in m.history_] == [h["valid_ndcg@10"] for h in ref.history_]
    assert m.best_valid_ndcg_ == ref.best_valid_ndcg_
    assert m.best_epoch == ref.best_epoch <= cap
    ran = {"from the start": cap, "after the fit passed it": 6, "only at the end": 8}[when]
    assert seen.count(False) == ran  # it stopped as soon as it knew
    own, _, _, _ = _capped_fits(lambda n, wait: None)
    assert own.best_epoch > cap
    assert not np.array_equal(own.score_all(users), m.score_all(users))


def test_no_cap_at_the_end_is_the_own_fit():
    m, seen, ds, split = _capped_fits(lambda n, wait: None)
    ref = SASRec(SASRecConfig(**{**SMALL, "max_epochs": 8, "patience": 8}))
    ref.fit(split.train, ds.n_users, ds.n_items)
    np.testing.assert_array_equal(
        m.score_all(np.arange(ds.n_users)), ref.score_all(np.arange(ds.n_users))
    )
    assert seen[-1] is True and len(m.history_) == 8
    best = int(np.argmax([h["valid_ndcg@10"] for h in ref.history_])) + 1
    assert m.best_epoch == best
