"""Feedback mechanisms switch on and off, and what they remember changes what is shown."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data.errors import DataError
from instructrec.feedback.mechanisms import (
    ALL,
    ARMS,
    Mechanisms,
    UserState,
    arms_for,
    observe,
)
from instructrec.feedback.replay import ReplayConfig, replay_users, split_known_hidden
from instructrec.feedback.replay_run import make_policy
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def setup():
    ds = synthetic_dataset(n_users=30, n_items=40, per_user=14, seed=2)
    known, hidden = split_known_hidden(ds.interactions, 0.3)
    users = replay_users(known, hidden, ReplayConfig(users=6, new_users=0, min_known=2))
    return ds, known, users


def test_arms_switch_mechanisms():
    assert ARMS["control"].on() == [] and ALL.on() == ["session", "bandit", "tuning", "profile"]
    for name in ("session", "bandit", "tuning", "profile", "norepeat"):
        assert ARMS[name].on() == [name]
    with_model = arms_for(None, has_reranker=True)
    assert list(with_model)[0] == "control" and set(with_model) == set(ARMS)
    without = arms_for(None, has_reranker=False)
    assert "bandit" not in without and "tuning" not in without  # they need a reranker
    assert without["all"].on() == ["session", "profile"]
    with pytest.raises(DataError):
        arms_for(["nope"], True)


def test_observe_remembers_only_what_the_arm_may():
    shown = np.array([1, 2, 3, 4])
    sig = ["like", "dislike", "skip", "click"]
    off = UserState(history=[9], instruction=None)
    observe(off, shown, sig, Mechanisms())
    assert off.history == [9] and not off.shown and not off.liked and not off.disliked
    rep = UserState(history=[9], instruction=None)
    observe(rep, shown, sig, ARMS["norepeat"])
    assert rep.shown == {1, 2, 3, 4} and rep.history == [9] and not rep.liked
    prof = UserState(history=[9], instruction=None)
    observe(prof, shown, sig, ARMS["profile"])
    assert prof.liked == [1] and prof.disliked == [2] and prof.skipped == [3]
    assert prof.history == [9] and not prof.shown  # a profile alone does not filter
    ses = UserState(history=[9], instruction=None)
    observe(ses, shown, sig, ARMS["session"])
    assert ses.history == [9, 1] and ses.shown == {1, 2, 3, 4}  # the like is consumed
    titles = np.array([f"T{i}" for i in range(10)])
    assert ses.preference(titles) == "liked T1; disliked T2"


def test_disliked_and_skipped_items_are_not_shown_again(setup):
    ds, known, users = setup
    pol = make_policy(ds, known, n=5, depth=10)
    uid = np.array([u.user for u in users])
    st = [UserState(history=list(u.known), instruction=None) for u in users]
    seen: list[set] = [set() for _ in users]
    for rnd in range(1, 5):
        shown = pol.recommend(uid, st, ARMS["session"], rnd)
        for k, u in enumerate(users):
            assert not set(shown[k].tolist()) & seen[k]
            assert not set(shown[k].tolist()) & set(u.known.tolist())
            seen[k] |= set(shown[k].tolist())
            sig = ["dislike" if j % 2 else "skip" for j in range(len(shown[k]))]
            observe(st[k], shown[k], sig, ARMS["session"])


def test_profile_moves_away_from_disliked_items(setup):
    ds, known, users = setup
    pol = make_policy(ds, known, n=5, depth=10)
    uid = np.array([u.user for u in users[:1]])
    base = UserState(history=list(users[0].known), instruction=None)
    s0 = pol.first_stage(uid, [base], ARMS["profile"], 2)[0]
    top = int(np.argmax(s0))
    disliked = UserState(history=list(users[0].known), instruction=None, disliked=[top])
    s1 = pol.first_stage(uid, [disliked], ARMS["profile"], 2)[0]
    finite = np.isfinite(s0)
    assert (s1[finite] <= s0[finite] + 1e-12).all() and (s1[finite] < s0[finite]).any()
    off = pol.first_stage(uid, [disliked], ARMS["control"], 2)[0]
    assert np.array_equal(off, s0)  # profile off: the dislike is ignored


def test_instruction_said_once_persists_only_in_a_session(setup):
    ds, known, _ = setup
    pol = make_policy(ds, known, n=5, depth=10)
    said = UserState(history=[], instruction="I'd like Horror movies")
    silent = UserState(history=[], instruction=None)
    horror = pol.genre_match(said.instruction)
    assert horror.any() and not horror.all()
    u = np.array([0])
    assert horror[pol.recommend(u, [said], ARMS["control"], 1)[0]].all()  # said in round 1
    assert horror[pol.recommend(u, [said], ARMS["session"], 2)[0]].all()  # a session keeps it
    later = pol.first_stage(u, [said], ARMS["control"], 2)
    assert np.array_equal(later, pol.first_stage(u, [silent], ARMS["control"], 2))  # forgotten
