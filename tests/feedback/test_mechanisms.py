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


class _FakeReranked:
    """A recommender stand-in whose 'reranker' keeps (or reverses) the first stage's order."""

    def __init__(self, reverse: bool = False) -> None:
        self.reranker = object()
        self.reverse = reverse

    def score_candidates(self, users, cands, hists, intentions=None, templates=None):
        k = cands.shape[1]
        order = np.arange(k, dtype=np.float32)
        return np.tile(order if self.reverse else -order, (len(cands), 1))


def test_tuning_arm_is_scheduled_hot_swapped_and_logged(setup, monkeypatch):
    from instructrec.feedback import tuning
    from instructrec.feedback.replay_run import run_replay
    from instructrec.feedback.tuning import FeedbackTuneConfig

    ds, known, _ = setup
    hidden = split_known_hidden(ds.interactions, 0.3)[1]
    base = _FakeReranked()
    calls = []

    def fake_tune(rec, log, cfg):
        reqs = list(log.requests.values())
        calls.append((rec, cfg.lam, len(reqs), [r["user_id"] for r in reqs if not r["history"]]))
        return _FakeReranked(reverse=True), {"examples": len(reqs)}

    monkeypatch.setattr(tuning, "tune_in_memory", fake_tune)
    cfg = ReplayConfig(rounds=5, users=5, new_users=2, n=3, min_known=2)
    policy = make_policy(ds, known, cfg.n, depth=8, recommender=base)
    arms = {"control": ARMS["control"], "tuning": ARMS["tuning"], "lam0": ARMS["tuning"]}
    run = run_replay(
        ds,
        known,
        hidden,
        cfg,
        arms,
        [0],
        policy,
        tune_every=2,
        tune_config=FeedbackTuneConfig(lam=0.5),
        arm_tune_configs={"lam0": FeedbackTuneConfig(lam=0.0)},
    )
    assert [(c[1], c[2]) for c in calls] == [(0.5, 14), (0.5, 28), (0.0, 14), (0.0, 28)]
    assert all(c[0] is base for c in calls)  # always tuned from the starting model
    assert all(u is None for c in calls for u in c[3])  # empty history: logged without a user
    assert policy.recommender is base  # restored after the run
    assert len(run.tuning) == 4 and {t["arm"] for t in run.tuning} == {"tuning", "lam0"}
    r = run.rows.pivot_table(index=["round", "user"], columns="arm", values="ndcg")
    assert (r.loc[[1, 2], "tuning"] == r.loc[[1, 2], "control"]).all()  # before the swap
    hits = run.rows.pivot_table(index=["round", "user"], columns="arm", values="hits")
    assert (hits.loc[[3, 4, 5], "tuning"] != hits.loc[[3, 4, 5], "control"]).any()  # after it
