from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import make_split
from instructrec.instructions import COLUMNS, build, display_title
from instructrec.instructions.catalogue import TemplateCatalogue


def test_columns_and_dtypes(ml_train):
    assert tuple(ml_train.columns) == COLUMNS
    assert ml_train["user"].dtype == np.int32 and ml_train["target"].dtype == np.int32
    assert ml_train["label"].dtype == np.float32 and ml_train["held_out"].dtype == bool
    for col in ("instruction", "query", "answer", "template_id", "intention", "preference"):
        assert pd.api.types.is_string_dtype(ml_train[col])
    assert all(isinstance(h, np.ndarray) and h.dtype == np.int32 for h in ml_train["history"][:50])
    assert set(ml_train["stage"]) == {"train"}


def test_every_seen_slot_is_built_and_held_out_never_trains(ml_train, tiny_dataset):
    cat = TemplateCatalogue.default()
    built = set(map(tuple, ml_train[["P", "I", "T"]].drop_duplicates().to_numpy()))
    assert built == {t.slot for t in cat.templates(held_out=False)}
    assert not ml_train["held_out"].any()
    held = {t.id for t in cat.templates(held_out=True)}
    assert not held & set(ml_train["template_id"])
    with pytest.raises(ValueError, match="never used for training"):
        build(tiny_dataset, make_split(tiny_dataset), stage="train", templates="held_out")


def test_task_shapes_labels_and_answers(ml100k, ml_train):
    titles = display_title(ml100k)
    by_t = {t: g for t, g in ml_train.groupby("T")}
    t3 = by_t["T3"]
    assert all(len(c) == 10 and int(t) in c for c, t in zip(t3.candidates, t3.target, strict=True))
    pos = np.array(
        [int(np.flatnonzero(c == t)[0]) for c, t in zip(t3.candidates, t3.target, strict=True)]
    )
    assert len(np.unique(pos)) == 10  # shuffled: the target is not always first
    assert (t3["answer"].to_numpy() == titles[t3["target"].to_numpy()]).all()
    assert t3["label"].isna().all()
    t1 = by_t["T1"]
    assert all(len(c) == 2 and int(t) in c for c, t in zip(t1.candidates, t1.target, strict=True))
    t2 = by_t["T2"]
    assert all(len(c) == 0 for c in t2.candidates)
    t0 = by_t["T0"]
    assert all(len(c) == 1 and c[0] == t for c, t in zip(t0.candidates, t0.target, strict=True))
    assert set(t0["label"].unique()) == {0.0, 1.0}
    assert ((t0["label"] == 1.0) == (t0["answer"] == "Yes")).all()
    assert 0.2 < t0["label"].mean() < 0.8
    r = by_t["R"]
    assert (r["answer"] == r["intention"]).all() and (r["answer"] != "").all()


def test_history_is_recent_oldest_first_and_before_the_target(
    ml100k, ml100k_split, ml_test, ml_train
):
    t3 = ml_test[(ml_test["P"] == "P1") & (ml_test["T"] == "T3")]
    expected = ml100k_split.histories("test")
    rows = {int(u): i for i, u in enumerate(ml100k_split.test["user"])}
    for u, h in zip(t3.user[:100], t3.history[:100], strict=True):
        assert list(h) == list(expected[rows[int(u)]])
        assert len(h) <= 20
    # train: the history is the 20 training items right before the target
    tr = ml100k_split.train
    row = ml_train[ml_train.P == "P1"].iloc[0]
    seq = tr[tr.user == row.user].sort_values(["timestamp", "order"])["item"].tolist()
    k = seq.index(int(row.target))
    assert list(row.history) == seq[max(0, k - 20) : k]
    # the rendered text lists those titles, oldest first
    titles = display_title(ml100k)
    text = row["query"]
    idx = [text.index(titles[i]) for i in row.history]
    assert idx == sorted(idx)


def test_valid_test_use_the_saved_candidate_files(ml100k_split, ml_test):
    t3 = ml_test[(ml_test["T"] == "T3") & (ml_test["P"] == "P1") & (ml_test["I"] == "I0")]
    saved = ml100k_split.candidates["cand10"]["test"]
    rows = {int(u): i for i, u in enumerate(ml100k_split.test["user"])}
    for u, c in zip(t3.user, t3.candidates, strict=True):
        assert sorted(c.tolist()) == sorted(saved[rows[int(u)]].tolist())
    assert "R" not in set(ml_test["T"])


def test_query_is_the_instruction_without_candidates(ml100k, ml_test):
    titles = display_title(ml100k)
    t3 = ml_test[ml_test["T"] == "T3"].head(200)
    for q, ins, c in zip(t3["query"], t3["instruction"], t3["candidates"], strict=True):
        assert ins.startswith(q) and len(ins) > len(q)
        tail = ins[len(q) :]
        assert all(titles[j] in tail for j in c)
    t2 = ml_test[ml_test["T"] == "T2"]
    assert (t2["query"] == t2["instruction"]).all()


def test_deterministic_for_a_seed(ml100k, ml100k_split):
    slots = [("P1", "I2", "T3"), ("P1", "I0", "T0")]
    a = build(ml100k, ml100k_split, "valid", slots=slots, seed=5)
    b = build(ml100k, ml100k_split, "valid", slots=slots, seed=5)
    c = build(ml100k, ml100k_split, "valid", slots=slots, seed=6)
    pd.testing.assert_frame_equal(
        a.drop(columns=["history", "candidates"]), b.drop(columns=["history", "candidates"])
    )
    assert a["instruction"].tolist() != c["instruction"].tolist()


def test_options_cand20_per_user_context_and_small_data(ml100k, ml100k_split, tiny_dataset):
    f = build(
        ml100k, ml100k_split, "test", slots=[("P1", "I0", "T3")], candidates="cand20", context=True
    )
    assert {len(c) for c in f["candidates"]} == {20}
    assert (
        f["query"]
        .str.match(
            r"It is an? (winter|spring|summer|autumn) "
            r"(morning|afternoon|evening|night)\. "
        )
        .all()
    )
    g = build(ml100k, ml100k_split, "train", slots=[("P1", "I0", "T2")], per_user=3)
    assert g.groupby("user").size().max() == 3
    ds, split = tiny_dataset, make_split(tiny_dataset)
    h = build(ds, split, "train")
    assert len(h) > 0 and h["instruction"].str.contains(" items?").any()
    with pytest.raises(ValueError, match="stage"):
        build(ds, split, "nope")
    with pytest.raises(ValueError, match="no template"):
        build(ds, split, "train", slots=[("P1", "I0", "T3")], templates=["p0i2t3-a"])
