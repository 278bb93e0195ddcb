"""Cold items, validation vs test rows, ranked candidate files and their persistence."""

import json

import numpy as np
import pytest

from instructrec.data import DataError, load_split, make_split, save_split
from instructrec.data.split import (
    add_ranked_candidates,
    array_sha256,
    choose_cold_items,
    leave_one_out,
    set_candidates,
)
from instructrec.testing.datasets import synthetic_dataset


def test_cold_items_have_no_training_interactions(ml100k, ml100k_split):
    sp = ml100k_split
    present = np.unique(ml100k.interactions["item"])
    assert len(sp.cold_items) == round(0.05 * len(present))
    assert not np.isin(sp.train["item"], sp.cold_items).any()
    # their validation/test interactions stay: the cold protocol has rows
    assert np.isin(sp.test["item"], sp.cold_items).sum() > 0
    # nothing but cold items' training rows is removed; valid/test are unchanged
    warm = leave_one_out(ml100k, seed=0, cold_fraction=0.0)
    assert len(warm.cold_items) == 0
    removed = np.isin(warm.train["item"], sp.cold_items)
    assert len(sp.train) == len(warm.train) - removed.sum() and removed.sum() > 0
    assert sp.valid.equals(warm.valid) and sp.test.equals(warm.test)


def test_cold_items_are_seeded():
    ds = synthetic_dataset(n_users=40, n_items=200)
    present = np.unique(ds.interactions["item"])  # only items that occur can be cold
    a, b = choose_cold_items(ds, 0.1, seed=0), choose_cold_items(ds, 0.1, seed=0)
    assert np.array_equal(a, b) and len(np.unique(a)) == len(a) == round(0.1 * len(present))
    assert np.isin(a, present).all()
    assert not np.array_equal(a, choose_cold_items(ds, 0.1, seed=1))
    with pytest.raises(DataError, match="cold_fraction"):
        choose_cold_items(ds, 1.5)


def test_valid_and_test_rows_never_share_a_target(ml100k_split):
    sp = ml100k_split
    v = sp.valid.set_index("user")
    t = sp.test.set_index("user").loc[v.index]
    # a different interaction (source row) for every user, strictly before the test one
    assert (v["order"] != t["order"]).all()
    same_time = v["timestamp"] == t["timestamp"]
    assert ((v["timestamp"] < t["timestamp"]) | (same_time & (v["order"] < t["order"]))).all()
    # candidate files: column 0 is each stage's own target
    for name in ("cand10", "cand20"):
        assert (sp.candidates[name]["valid"][:, 0] == sp.valid["item"]).all()
        assert (sp.candidates[name]["test"][:, 0] == sp.test["item"]).all()
    # histories shown at the valid stage hold neither the valid nor the test target
    seqs = sp.sequences("valid")
    for u, vi, ti in zip(sp.valid["user"], sp.valid["item"], sp.test["item"], strict=True):
        h = seqs.get(int(u), np.empty(0))
        assert vi not in h and ti not in h


def test_ranked_candidates_come_from_the_ranking():
    ds = synthetic_dataset(n_users=30, n_items=60)
    sp = make_split(ds, seed=0, sets={"cand10": 9}, cold_fraction=0.0)
    rng = np.random.default_rng(0)
    top = np.stack([rng.permutation(60)[:30] for _ in range(len(sp.test))])
    cands = add_ranked_candidates(sp, "hard", "test", top, n_neg=5, seed=3, dataset=ds)
    assert cands.shape == (len(sp.test), 6)
    assert (cands[:, 0] == sp.test["item"]).all()
    seen = set(zip(ds.interactions["user"], ds.interactions["item"], strict=True))
    for u, row, t in zip(sp.test["user"], cands, top, strict=True):
        assert set(row[1:]) <= set(t) and len(set(row[1:])) == 5
        assert not any((u, i) in seen for i in row[1:])
    again = add_ranked_candidates(sp, "hard", "test", top, n_neg=5, seed=3, dataset=ds)
    assert np.array_equal(cands, again)
    assert sp.hashes["hard.test.npy"] == array_sha256(cands)
    assert sp.notes["hard"]["test"]["depth"] == 30
    with pytest.raises(DataError, match="too few"):
        add_ranked_candidates(sp, "x", "test", top[:, :3], n_neg=5)
    with pytest.raises(DataError, match="target in column 0"):
        set_candidates(sp, "x", "valid", cands)


def test_save_load_keeps_cold_items_notes_and_one_stage_files(tmp_path):
    ds = synthetic_dataset(n_users=30, n_items=60)
    sp = make_split(ds, seed=1, sets={"cand10": 9})
    assert len(sp.cold_items) > 0
    top = np.tile(np.arange(60), (len(sp.valid), 1))
    add_ranked_candidates(sp, "hard", "valid", top, dataset=ds, note={"retriever": "x"})
    save_split(sp, tmp_path, ds)
    back = load_split(tmp_path, ds)
    assert np.array_equal(back.cold_items, sp.cold_items)
    assert set(back.candidates["hard"]) == {"valid"}
    assert np.array_equal(back.candidates["hard"]["valid"], sp.candidates["hard"]["valid"])
    assert back.notes["hard"]["valid"]["retriever"] == "x"
    assert back.hashes["hard.valid.npy"] == array_sha256(sp.candidates["hard"]["valid"])


def test_split_saved_without_cold_items_loads_with_an_empty_set(tmp_path):
    ds = synthetic_dataset(n_users=30, n_items=60)
    save_split(make_split(ds, seed=0), tmp_path, ds)
    manifest = json.loads((tmp_path / "split.json").read_text())
    for key in ("candidate_stages", "cold_items"):  # what older versions did not write
        manifest.pop(key)
    manifest["files"].pop("cold_items.npy")
    (tmp_path / "cold_items.npy").unlink()
    (tmp_path / "split.json").write_text(json.dumps(manifest))
    back = load_split(tmp_path, ds)
    assert len(back.cold_items) == 0
    assert set(back.candidates["cand10"]) == {"valid", "test"}
