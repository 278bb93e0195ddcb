"""The simulated-user loop on ML-100K (a few users, two rounds: fast)."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.feedback.simulate import (
    SimConfig,
    answer,
    bootstrap_ci,
    simulate,
    temporal_cut,
)
from instructrec.feedback.store import Store


def test_answers_from_heldout_ratings():
    assert answer(5.0) == ("like", None) and answer(4.0) == ("like", None)
    assert answer(2.0) == ("dislike", None) and answer(1.0) == ("dislike", None)
    assert answer(3.0) == ("rating", 3) and answer(None) == ("skip", None)


def test_temporal_cut_keeps_time_order(ml100k):
    early, late = temporal_cut(ml100k, 0.3)
    assert len(early) + len(late) == len(ml100k.interactions)
    last_early = early.groupby("user")["timestamp"].max()
    first_late = late.groupby("user")["timestamp"].min()
    both = last_early.index.intersection(first_late.index)
    assert (last_early[both] <= first_late[both]).all()
    share = late.groupby("user").size() / ml100k.interactions.groupby("user").size()
    assert share.dropna().between(0.2, 0.4).all()
    with pytest.raises(ValueError):
        temporal_cut(ml100k, 1.5)


def test_bootstrap_ci_brackets_mean():
    x = np.r_[np.zeros(50), np.ones(50)]
    m, lo, hi = bootstrap_ci(x, 500, 0)
    assert m == 0.5 and lo < 0.5 < hi and hi - lo < 0.3


def test_simulation_feedback_vs_control(ml100k, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'sim.db'}")
    cfg = SimConfig(rounds=2, users=15, n=4, bootstrap=200, seed=3)
    res = simulate(ml100k, cfg, store=store)
    t = res.table
    assert len(t) == 2 * 3 * 2  # rounds x (control, feedback, difference) x metrics
    assert ((t["lo"] <= t["mean"] + 1e-12) & (t["mean"] <= t["hi"] + 1e-12)).all()
    r1 = t[(t["round"] == 1) & (t["arm"] == "difference")]
    assert (r1["mean"] == 0).all()  # before any feedback both arms show the same lists
    pu = res.per_user
    assert len(pu) == 2 * 2 * 15 and pu["user"].nunique() == 15
    assert pu["satisfaction"].between(0, 1).all() and pu["hit"].isin([0.0, 1.0]).all()
    # the feedback arm went through the store like the service does
    stats = store.stats()
    assert stats["requests"] == 2 * 15 and stats["feedback"] == 2 * 15 * 4
    shown = store.feedback_frame().groupby("user_id")["item_id"]
    assert (shown.nunique() == shown.size()).all()  # never the same item twice to a user
    assert "| 2 | hit |" in res.to_markdown()
    assert res.plot(tmp_path / "sim.png").stat().st_size > 0
