"""Split and candidates beyond the core tests: tie leakage over many users, negatives with
repeated interactions, crowded users, sequences against a plain-Python reference."""

import numpy as np
import pandas as pd
import pytest

from instructrec.data import DataError, Dataset, make_split
from instructrec.data.negatives import sample_negatives
from instructrec.data.split import leave_one_out


def test_ties_never_leak_by_item_id():
    # 200 users, each with a block of equal timestamps at the end, items in random file order.
    rng = np.random.default_rng(1)
    rows = []
    for u in range(200):
        items = rng.permutation(50)[:6]
        for k, it in enumerate(items):
            rows.append((u, int(it), 0 if k < 2 else 1))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame = frame.sample(frac=1, random_state=0)  # shuffle: file order is the only tie-breaker
    ds = Dataset.from_frames("ties", frame)
    sp = leave_one_out(ds)
    latest = frame[frame.timestamp == 1]
    last_in_file = latest.groupby("user_id").tail(1).set_index("user_id")["item_id"].astype(str)
    got = pd.Series(ds.item_ids[sp.test.item], index=ds.user_ids[sp.test.user].astype(int))
    assert (got.sort_index() == last_in_file.sort_index().to_numpy()).all()
    # sorting ties by item id would pick a different item for most users
    by_id = latest.groupby("user_id").item_id.max().astype(str)
    assert (by_id.sort_index().to_numpy() != last_in_file.sort_index().to_numpy()).mean() > 0.5


def test_short_users_stay_in_train():
    frame = pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "b"],
            "item_id": list("xyxyz"),
            "timestamp": [1, 2, 1, 2, 3],
        }
    )
    sp = leave_one_out(Dataset.from_frames("s", frame))
    assert len(sp.train) == 3 and sp.test.user.tolist() == [1] and sp.valid.user.tolist() == [1]


def test_negatives_unseen_distinct_with_repeated_interactions():
    # user 0 saw items 0..37 of 40, many times over: exactly 2 unseen items remain
    rows = [(0, i % 38, t) for t, i in enumerate(range(400))]
    rows += [(1, i, 1000 + i) for i in range(5)]
    ds = Dataset.from_frames(
        "r",
        pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]),
        items=pd.DataFrame({"item_id": range(40)}),
    )
    neg = sample_negatives(ds, np.array([0, 1, 1]), 2, seed=3)
    assert sorted(ds.item_ids[neg[0]].astype(int)) == [38, 39]
    assert all(len(set(r)) == 2 for r in neg)
    with pytest.raises(DataError, match="too many to draw 3"):
        sample_negatives(ds, np.array([0]), 3, seed=0)


def test_negatives_are_uniform():
    ds = Dataset.from_frames(
        "u",
        pd.DataFrame({"user_id": [0] * 3, "item_id": [0, 1, 2], "timestamp": [1, 2, 3]}),
        items=pd.DataFrame({"item_id": range(20)}),
    )
    neg = sample_negatives(ds, np.zeros(4000, np.int64), 5, seed=0)
    counts = np.bincount(neg.ravel(), minlength=20)
    assert counts[:3].sum() == 0
    expected = 4000 * 5 / 17
    assert np.abs(counts[3:] - expected).max() < 5 * np.sqrt(expected)


def test_sequences_match_reference(tiny_dataset):
    sp = make_split(tiny_dataset, seed=0)
    for stage, parts in (
        ("valid", [sp.train]),
        ("test", [sp.train, sp.valid]),
        ("serve", [sp.train, sp.valid, sp.test]),
    ):
        seqs = sp.sequences(stage)
        ref = pd.concat(parts).sort_values(["user", "timestamp", "order"])
        ref = ref.groupby("user").item.apply(list).to_dict()
        assert seqs.keys() == ref.keys()
        assert all(seqs[u].tolist() == ref[u] for u in ref)
    hist = sp.histories("test", max_len=3)
    assert all(len(h) == 3 for h in hist)


@pytest.mark.slow
def test_make_split_at_two_million_rows():
    rng = np.random.default_rng(0)
    n, n_users = 2_000_000, 200_000
    frame = pd.DataFrame(
        {
            "user_id": rng.integers(0, n_users, n),
            "item_id": rng.integers(0, 20_000, n),
            "timestamp": rng.integers(0, 1000, n),
        }
    )
    ds = Dataset.from_frames("big", frame)
    sp = make_split(ds, seed=0, cold_fraction=0.0)  # every row lands in train/valid/test
    cand = sp.candidates["cand20"]["test"]
    assert cand.shape == (len(sp.test), 20)
    assert (cand[:, 0] == sp.test.item.to_numpy()).all()
    keys = set(
        (
            ds.interactions.user.to_numpy(np.int64) * ds.n_items
            + ds.interactions.item.to_numpy(np.int64)
        )[::1]
    )
    sample = rng.choice(len(cand), 2000, replace=False)
    users = sp.test.user.to_numpy()[sample]
    assert not any(
        int(u) * ds.n_items + int(i) in keys
        for u, row in zip(users, cand[sample, 1:], strict=True)
        for i in row
    )
    assert len(sp.train) + len(sp.valid) + len(sp.test) == n
