import numpy as np
import pandas as pd

from instructrec.data import Dataset, load_split, make_split, save_split
from instructrec.data.errors import DataError
from instructrec.data.split import leave_one_out


def test_ml100k_counts(ml100k):
    assert (ml100k.n_users, ml100k.n_items, len(ml100k.interactions)) == (943, 1682, 100_000)


def test_leave_one_out_is_temporal(ml100k, ml100k_split):
    sp = ml100k_split
    assert len(sp.test) == len(sp.valid) == 943
    last_train = sp.train.groupby("user").timestamp.max()
    v = sp.valid.set_index("user").timestamp
    t = sp.test.set_index("user").timestamp
    assert (last_train <= v.loc[last_train.index]).all()
    assert (v <= t.loc[v.index]).all()


def test_ties_follow_file_order_not_item_id():
    # user a: three items with the SAME timestamp; file order is z, y, x (ids descending).
    inter = pd.DataFrame(
        {"user_id": ["a"] * 4, "item_id": ["0", "9", "5", "1"], "timestamp": [1, 2, 2, 2]}
    )
    ds = Dataset.from_frames("t", inter)
    sp = leave_one_out(ds)
    # the last row of the file is the test item, whatever its id
    assert ds.item_ids[sp.test.item.iloc[0]] == "1"
    assert ds.item_ids[sp.valid.item.iloc[0]] == "5"


def test_candidates_are_unseen_and_deterministic(ml100k, ml100k_split):
    cand = ml100k_split.candidates["cand20"]["test"]
    assert cand.shape == (943, 20)
    assert (cand[:, 0] == ml100k_split.test.item.to_numpy()).all()
    seen = set(zip(ml100k.interactions.user, ml100k.interactions.item, strict=True))
    users = ml100k_split.test.user.to_numpy()
    assert not any((u, i) in seen for u, row in zip(users, cand[:, 1:], strict=True) for i in row)
    assert all(len(set(r)) == 20 for r in cand)
    again = make_split(ml100k, seed=0).candidates["cand20"]["test"]
    assert np.array_equal(cand, again)
    other = make_split(ml100k, seed=1).candidates["cand20"]["test"]
    assert not np.array_equal(cand, other)


def test_saved_split_verifies_hash(tmp_path, ml100k, ml100k_split):
    save_split(ml100k_split, tmp_path, ml100k)
    back = load_split(tmp_path, ml100k)
    assert np.array_equal(
        back.candidates["cand10"]["test"], ml100k_split.candidates["cand10"]["test"]
    )
    arr = np.load(tmp_path / "cand10.test.npy")
    arr[0, 1] = arr[0, 2]
    np.save(tmp_path / "cand10.test.npy", arr)
    try:
        load_split(tmp_path)
    except DataError as e:
        assert "cand10.test.npy" in str(e)
    else:
        raise AssertionError("tampered candidate file was accepted")


def test_histories_exclude_target(ml100k_split):
    hist = ml100k_split.histories("test")
    for h, target_item, valid_item in zip(
        hist[:50], ml100k_split.test.item, ml100k_split.valid.item, strict=False
    ):
        assert len(h) <= 20
        assert h[-1] == valid_item
        assert target_item not in h  # ML-100K has no repeated (user, item) pairs
