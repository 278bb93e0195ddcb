"""RecBole benchmark-split reader: synthetic folders (every error case) and the real Games data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from instructrec.data import DataError, leave_one_out
from instructrec.data.benchmark import (
    benchmark_test_users,
    is_benchmark_dir,
    make_benchmark_split,
    read_benchmark_split,
    restrict_users,
)
from instructrec.data.spec import load_data_spec

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
ITEMS = {f"i{k}": f"Title &amp; {k}" for k in range(30)}
# user -> full sequence (valid history, valid target, test target)
STAGES = ("train", "valid", "test")
SEQS = {
    "u1": ["i0", "i1", "i2", "i3"],
    "u2": ["i4", "i5", "i6", "i7", "i8"],
    "u3": ["i2", "i9", "i1"],
    "u4": ["i10", "i11", "i12", "i13", "i14", "i15"],
}


def write_folder(tmp_path: Path, seqs=SEQS, *, stages=("valid", "test"), items=ITEMS, users=None):
    """A benchmark folder `toy`: NAME.item, the stage files, optionally a test-user list."""
    d = tmp_path / "bench"
    d.mkdir(exist_ok=True)
    if items is not None:
        body = "".join(f"{k}\t{t}\n" for k, t in items.items())
        (d / "toy.item").write_text("item_id:token\ttitle:token_seq\n" + body)
    for stage in stages:
        rows = []
        for u, s in seqs.items():
            if stage == "test":
                rows.append((u, s[:-1], s[-1]))
            elif stage == "valid":
                rows.append((u, s[:-2], s[-2]))
            else:  # RecBole's augmented train rows: every prefix of the training sequence
                rows += [(u, s[:k], s[k]) for k in range(1, len(s) - 2)]
        text = "".join(f"{u}\t{' '.join(h)}\t{t}\n" for u, h, t in rows)
        (d / f"toy.{stage}.inter").write_text(HEADER + text)
    if users is not None:
        (d / "toy.test-users-2.txt").write_text("".join(f"{u}\n" for u in users))
    return d


def test_reads_split_and_matches_leave_one_out(tmp_path):
    ds, split = read_benchmark_split(write_folder(tmp_path))
    assert ds.n_users == 4 and ds.n_items == len(ITEMS)  # items without interactions kept
    assert len(ds.interactions) == sum(len(s) for s in SEQS.values())
    assert ds.items["title"].iloc[0] == "Title & 0"  # HTML unescaped
    raw = ds.item_ids
    for u, s in SEQS.items():
        uid = int(ds.user_index([u])[0])
        assert list(raw[split.sequences("valid")[uid]]) == s[:-2]
        assert raw[split.valid.loc[split.valid.user == uid, "item"].item()] == s[-2]
        assert raw[split.test.loc[split.test.user == uid, "item"].item()] == s[-1]
    lo = leave_one_out(ds, cold_fraction=0.0)
    for stage in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(lo.frame(stage), split.frame(stage))


def _sub(tmp_path, name):
    p = tmp_path / name
    p.mkdir()
    return p


def test_train_file_and_any_subset(tmp_path):
    full = read_benchmark_split(write_folder(_sub(tmp_path, "a"), stages=STAGES))[1]
    base = read_benchmark_split(write_folder(_sub(tmp_path, "b")))[1]
    pd.testing.assert_frame_equal(full.train, base.train)
    only_test = read_benchmark_split(write_folder(_sub(tmp_path, "c"), stages=("test",)))[1]
    pd.testing.assert_frame_equal(only_test.valid, base.valid)  # leave-one-out's choice
    only_valid = read_benchmark_split(write_folder(_sub(tmp_path, "d"), stages=("valid",)))[1]
    assert len(only_valid.test) == 0 and len(only_valid.valid) == len(SEQS)
    cols = ["user", "item", "timestamp"]  # "order" shifts: the test rows are absent
    pd.testing.assert_frame_equal(only_valid.train[cols], base.train[cols])


@pytest.mark.parametrize(
    ("stage", "line", "match"),
    [
        ("test", "u1\ti0 i1 i9\ti3\n", r"toy.test.inter, line 2: .*not the validation history"),
        ("test", "u1\ti0 i1 i2\tnope\n", r"toy.test.inter, line 2: unknown item id 'nope'"),
        ("test", "u1\t\ti3\n", r"toy.test.inter, line 2: empty item_id_list"),
        ("test", "u1\ti0 i1 i2\n", r"toy.test.inter, line 2: 2 fields, the header has 3"),
        ("valid", "u1\ti0 i1\ti2\nu1\ti0 i1\ti2\n", r"toy.valid.inter, line 3: .*second row"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, stage, line, match):
    d = write_folder(tmp_path, {"u1": SEQS["u1"]})
    (d / f"toy.{stage}.inter").write_text(HEADER + line)
    with pytest.raises(DataError, match=match) as e:
        read_benchmark_split(d)
    assert "\n" not in str(e.value)


def test_train_history_must_be_the_valid_history(tmp_path):
    d = write_folder(tmp_path, stages=STAGES)
    (d / "toy.train.inter").write_text(HEADER + "u1\ti0\ti9\n")
    with pytest.raises(DataError, match=r"toy.valid.inter, line \d+: user 'u1'.*training sequence"):
        read_benchmark_split(d)


def test_missing_item_file_and_bad_header(tmp_path):
    d = write_folder(tmp_path, items=None)
    with pytest.raises(DataError, match=r"toy.item: item file not found"):
        read_benchmark_split(d)
    d = write_folder(_sub(tmp_path, "h"))
    (d / "toy.valid.inter").write_text("user_id:token\titem_id:token\nu1\ti0\n")
    with pytest.raises(
        DataError, match=r"toy.valid.inter, line 1: header lacks \['item_id_list'\]"
    ):
        read_benchmark_split(d)
    with pytest.raises(DataError, match="no benchmark-split files"):
        read_benchmark_split(_sub(tmp_path, "empty"))


def test_test_users_restrict_and_candidates(tmp_path):
    d = write_folder(tmp_path, users=["u2", "u4"])
    ds, split = read_benchmark_split(d)
    assert ds.meta["test_users"] == ("u2", "u4")
    kept = benchmark_test_users(ds)
    sub = restrict_users(split, kept)
    assert set(sub.test.user) == set(kept) and set(sub.valid.user) == set(kept)
    assert len(sub.train) == len(split.train)  # training rows of every user stay
    ds2, made = make_benchmark_split(d, seed=3, sets={"cand10": 9})
    assert made.seed == 3 and set(made.test.user) == set(kept)
    cand = made.candidates["cand10"]["test"]
    assert cand.shape == (2, 10)
    np.testing.assert_array_equal(cand[:, 0], made.test["item"].to_numpy())
    seqs = made.sequences("serve")
    for row, u in zip(cand, made.test.user, strict=True):
        assert not set(row[1:].tolist()) & set(seqs[int(u)].tolist())  # never-seen negatives
        assert len(set(row.tolist())) == 10
    again = make_benchmark_split(d, seed=3, sets={"cand10": 9})[1]
    np.testing.assert_array_equal(again.candidates["cand10"]["test"], cand)
    assert len(make_benchmark_split(d, users="all", sets={"cand10": 9})[1].test) == 4
    (d / "toy.test-users-2.txt").write_text("u2\nzz\n")
    with pytest.raises(DataError, match=r"toy.test-users-2.txt, line 2: unknown user id 'zz'"):
        read_benchmark_split(d)


def test_make_benchmark_split_needs_a_user_list(tmp_path):
    with pytest.raises(DataError, match="no \\*test-users\\*.txt"):
        make_benchmark_split(write_folder(tmp_path))


def test_data_spec_finds_benchmark_folder(tmp_path):
    d = write_folder(tmp_path)
    assert is_benchmark_dir(d) and not is_benchmark_dir(tmp_path)
    ds = load_data_spec(str(d))
    assert ds.name == "toy" and ds.n_users == 4
    from instructrec.config import RunConfig

    from_config = load_data_spec(RunConfig.from_dict({"data": str(d)}).data)
    assert from_config.fingerprint() == ds.fingerprint()


# ---------------------------------------------------------------------- the real data
# the `games` fixture (tests/conftest.py) skips where ../shared/data/amazon-games is absent


def test_real_games_counts_and_consistency(games):
    ds, split = games
    assert (ds.n_users, ds.n_items) == (50_546, 16_859)
    assert len(ds.meta["test_users"]) == 6_000
    assert len(split.valid) == len(split.test) == 50_546
    assert len(split.train) + 2 * 50_546 == len(ds.interactions)
    lo = leave_one_out(ds, cold_fraction=0.0)
    for stage in ("train", "valid", "test"):
        pd.testing.assert_frame_equal(lo.frame(stage), split.frame(stage))
    assert ds.meta["noun"] == "game" and list(ds.meta["verbs"]) == ["played", "play"]
    assert {"category", "brand", "genres", "kind"} <= set(ds.items.columns)
