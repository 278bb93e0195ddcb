"""The replay simulator: hidden futures from the training log, answers from real ratings,
metrics and the paired CI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset
from instructrec.data.errors import DataError
from instructrec.feedback.mechanisms import ARMS, Policy, UserState
from instructrec.feedback.replay import (
    ReplayConfig,
    ReplayUser,
    answer,
    paired_ci,
    replay_users,
    round_metrics,
    split_known_hidden,
)
from instructrec.feedback.replay_run import make_policy, run_replay, summarise


def hand_made() -> Dataset:
    """Three users, 10 items, each rating all 10 in time order: u0 i0..i9 with ratings
    5,4,3,2,1,5,4,5,2,3; u1 i9..i0 (reverse), all 4; u2 i0..i9, all 2. Genres: even items
    Comedy, odd items Drama."""
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(10)],
            "title": [f"Movie {j}" for j in range(10)],
            "genres": [("Comedy",) if j % 2 == 0 else ("Drama",) for j in range(10)],
        }
    )
    r0 = [5, 4, 3, 2, 1, 5, 4, 5, 2, 3]
    rows = [("u0", f"i{j}", float(r0[j]), 100.0 + j) for j in range(10)]
    rows += [("u1", f"i{9 - j}", 4.0, 200.0 + j) for j in range(10)]
    rows += [("u2", f"i{j}", 2.0, 300.0 + j) for j in range(10)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    return Dataset.from_frames("hand", inter, items)


def test_split_known_hidden_is_the_time_ordered_tail():
    ds = hand_made()
    known, hidden = split_known_hidden(ds.interactions, 0.3)
    u0 = ds.user_index(["u0"])[0]
    it = ds.item_index([f"i{j}" for j in range(10)])
    h0 = hidden[hidden["user"] == u0]
    assert sorted(h0["item"]) == sorted(it[7:].tolist())  # the last 3 of 10, by time
    assert len(known[known["user"] == u0]) == 7
    with pytest.raises(DataError):
        split_known_hidden(ds.interactions, 1.0)


def test_answers_come_exactly_from_the_hidden_ratings():
    hidden = {7: 3.0, 8: 2.0, 9: 1.0, 5: 5.0, 6: 4.0}
    assert [answer(i, hidden) for i in (5, 6, 7, 8, 9, 0, 42)] == [
        "like",
        "like",
        "click",
        "dislike",
        "dislike",
        "skip",
        "skip",
    ]
    rng = np.random.default_rng(0)
    noisy = [answer(0, hidden, rng, noise=1.0) for _ in range(200)]
    assert set(noisy) == {"like", "click", "skip", "dislike"}  # noise 1: uniform signals
    assert all(answer(5, hidden, rng, noise=0.0) == "like" for _ in range(20))


def test_replay_end_to_end_feedback_matches_hidden_ratings():
    ds = hand_made()
    known, hidden = split_known_hidden(ds.interactions, 0.3)
    cfg = ReplayConfig(rounds=2, users=5, new_users=0, n=3, min_known=1)
    users = replay_users(known, hidden, cfg)
    # u2's hidden ratings are all 2 (no like): only u0 and u1 are replayed
    assert sorted(u.user for u in users) == sorted(ds.user_index(["u0", "u1"]).tolist())
    u0 = next(u for u in users if u.user == ds.user_index(["u0"])[0])
    it = ds.item_index([f"i{j}" for j in range(10)])
    # u0's hidden future: i7 (5), i8 (2), i9 (3); its known part never holds them
    assert u0.hidden == {int(it[7]): 5.0, int(it[8]): 2.0, int(it[9]): 3.0}
    assert not set(u0.known.tolist()) & set(u0.hidden)
    # only 3 unseen items exist for each user: round 1 shows exactly the hidden future
    policy = make_policy(ds, known, cfg.n, depth=3)
    run = run_replay(ds, known, hidden, cfg, {"control": ARMS["control"]}, [0], policy)
    r1 = run.rows[run.rows["round"] == 1].set_index("user")
    u1 = int(ds.user_index(["u1"])[0])
    assert r1.loc[u0.user, ["like", "click", "dislike", "skip"]].tolist() == [1, 1, 1, 0]
    assert r1.loc[u1, ["like", "click", "dislike", "skip"]].tolist() == [3, 0, 0, 0]
    assert r1.loc[u0.user, "hits"] == 3 and r1.loc[u0.user, "satisfied"] == 1


def test_new_users_state_an_instruction_from_known_likes():
    ds = hand_made()
    known, hidden = split_known_hidden(ds.interactions, 0.3)
    genres = ds.items["genres"].tolist()
    users = replay_users(known, hidden, ReplayConfig(users=0, new_users=1, min_known=1), genres)
    (u,) = users
    assert u.new and len(u.known) == 0 and "movies" in u.instruction
    assert set(u.liked_genres) <= {"Comedy", "Drama"} and u.liked_genres


def test_round_metrics():
    hidden = {1: 5.0, 2: 2.0, 3: 4.0}
    m = round_metrics(np.array([1, 9, 2]), hidden, set(), set())
    assert m["satisfied"] == 1 and m["hits"] == 2
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg"] == pytest.approx((1 + 1 / np.log2(4)) / ideal)
    # items hit before count neither as hits nor as relevant again
    m2 = round_metrics(np.array([1, 3]), hidden, {1, 2}, {1})
    assert (
        m2["hits"] == 1
        and m2["satisfied"] == 1
        and m2["ndcg"] == pytest.approx((1 / np.log2(3)) / 1.0)
    )


def test_paired_ci():
    rng = np.random.default_rng(0)
    c = rng.normal(2.0, 1.0, 400)
    shifted = paired_ci(c + 1.0, c, 500, 0)
    assert shifted["diff"] == pytest.approx(1.0)
    assert shifted["diff_lo"] == pytest.approx(1.0) and shifted["diff_hi"] == pytest.approx(1.0)
    assert shifted["ratio"] == pytest.approx((c.mean() + 1) / c.mean())
    assert shifted["ratio_lo"] <= shifted["ratio"] <= shifted["ratio_hi"]
    noise = paired_ci(c + rng.normal(0, 1, 400), c, 500, 0)
    assert noise["diff_lo"] < 0 < noise["diff_hi"]  # no true effect: CI covers 0
    assert noise["diff_hi"] - noise["diff_lo"] < 0.5
    with pytest.raises(DataError):
        paired_ci(np.ones(3), np.ones(4))


def test_run_replay_and_summary_on_synthetic(synthetic):
    known, hidden = split_known_hidden(synthetic.interactions, 0.3)
    cfg = ReplayConfig(rounds=3, users=8, new_users=3, n=4, min_known=2)
    policy = make_policy(synthetic, known, cfg.n, depth=8)
    arms = {k: ARMS[k] for k in ("control", "norepeat", "session", "profile")}
    run = run_replay(synthetic, known, hidden, cfg, arms, [0, 1], policy)
    r = run.rows
    assert len(r) == 2 * len(arms) * 3 * 11
    r1 = r[r["round"] == 1].pivot_table(index=["seed", "user"], columns="arm", values="hits")
    assert (r1.nunique(axis=1) == 1).all()  # round 1: no feedback yet, every arm alike
    s = summarise(run, 200)
    ctl = s[(s["arm"] == "control")]
    assert (ctl["diff"] == 0).all()
    last = s[(s["round"] == 3) & (s["metric"] == "cum_hits")].set_index("arm")
    assert last.loc["session", "treated"] >= last.loc["control", "treated"]
    # cumulative hits never exceed what the hidden future holds
    assert (r["cum_hits"] <= r["user"].map(hidden.groupby("user").size())).all()


@pytest.fixture
def synthetic():
    from instructrec.testing.datasets import synthetic_dataset

    return synthetic_dataset(n_users=30, n_items=40, per_user=14, seed=1)


def test_policy_control_repeats_session_does_not(synthetic):
    known, hidden = split_known_hidden(synthetic.interactions, 0.3)
    pol: Policy = make_policy(synthetic, known, n=5, depth=10)
    users = replay_users(known, hidden, ReplayConfig(users=6, new_users=0, min_known=2))
    uid = np.array([u.user for u in users])
    for arm in ("control", "session"):
        st = [UserState(history=list(u.known), instruction=None) for u in users]
        first = pol.recommend(uid, st, ARMS[arm], 1)
        from instructrec.feedback.mechanisms import observe

        for k, u in enumerate(users):
            observe(st[k], first[k], [answer(i, u.hidden) for i in first[k]], ARMS[arm])
        second = pol.recommend(uid, st, ARMS[arm], 2)
        overlap = [len(set(a) & set(b)) for a, b in zip(first, second, strict=True)]
        if arm == "control":
            assert all(o == 5 for o in overlap)  # no memory: the same list again
        else:
            assert all(o == 0 for o in overlap)  # nothing shown is shown again
        for k, u in enumerate(users):  # the known history is never recommended
            assert not set(second[k]) & set(u.known.tolist())


def test_replay_user_is_a_plain_record():
    u = ReplayUser(3, np.array([1, 2]), {5: 4.0})
    assert not u.new and u.instruction is None
