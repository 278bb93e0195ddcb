"""Run the replay simulator: control and each feedback arm on the same users, several seeds.

`run_replay` replays every arm of `mechanisms.ARMS` (control first) for ``seeds`` draws of
users (`replay.replay_users`), ``rounds`` rounds each, and returns one row per (seed, arm,
round, user). `summarise` pools (seed, user) pairs and compares each arm with control by a
paired bootstrap (`replay.paired_ci`). Scheduled feedback tuning (c) logs every request and
answer into `FeedbackLog` (the store's read interface, in memory) and calls
`tuning.tune_in_memory` from the *starting* model on everything logged so far; the tuned
reranker replaces the arm's model for the next rounds (the service's hot swap).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .bandit import MemoryArms, TemplateBandit, slot_of, usable_template
from .mechanisms import Mechanisms, Policy, ProfileConfig, UserState, new_state, observe
from .records import reward_of
from .replay import SIGNALS, ReplayConfig, answer, paired_ci, replay_users, round_metrics

METRICS = ("satisfied", "hits", "ndcg", "cum_hits", "cum_satisfied")


@dataclass
class ReplayRun:
    """One replay study: settings, per-user rows and the tuning summaries."""

    config: ReplayConfig
    seeds: list[int]
    arms: dict[str, Mechanisms]
    rows: pd.DataFrame  # seed, arm, round, user, new, satisfied, hits, ndcg, cum_*, signals
    tuning: list[dict] = field(default_factory=list)


class FeedbackLog:
    """An in-memory stand-in for the store's read side (`feedback_frame`, `get_request`)."""

    def __init__(self) -> None:
        self.requests: dict[str, dict] = {}
        self.rows: list[dict] = []

    def record(self, user, history, instruction, template_id, items, signals) -> str:
        rid = uuid.uuid4().hex
        self.requests[rid] = {
            "user_id": user,
            "history": list(history),
            "instruction": instruction,
            "template_id": template_id,
            "items": [{"item_id": str(i)} for i in items],
        }
        t = float(len(self.rows))
        for i, s in zip(items, signals, strict=True):
            self.rows.append(
                {"request_id": rid, "item_id": str(i), "signal": s, "rating": None, "created_at": t}
            )
        return rid

    def feedback_frame(self) -> pd.DataFrame:
        cols = ["request_id", "item_id", "signal", "rating", "created_at"]
        return pd.DataFrame(self.rows, columns=cols)

    def get_request(self, rid: str) -> dict:
        return self.requests[rid]


def make_policy(
    dataset: Dataset,
    known: pd.DataFrame,
    n: int,
    depth: int = 20,
    profile: ProfileConfig | None = None,
    recommender: Any = None,
) -> Policy:
    """A `Policy` whose first stage (item-kNN) and popularity are fitted on ``known`` only."""
    from ..retrieval.itemknn import ItemKNN

    knn = ItemKNN().fit(known, dataset.n_users, dataset.n_items)
    pop = np.bincount(known["item"].to_numpy(np.int64), minlength=dataset.n_items)
    items = dataset.items
    genre_lists = items["genres"].tolist() if "genres" in items.columns else [()] * len(items)
    names = sorted({g for gs in genre_lists for g in (gs or ())})
    col = {g: k for k, g in enumerate(names)}
    genres = np.zeros((dataset.n_items, len(names)), bool)
    for i, gs in enumerate(genre_lists):
        for g in gs or ():
            genres[i, col[g]] = True
    return Policy(
        knn, pop, genres, names, n=n, depth=depth, profile=profile, recommender=recommender
    )


def run_replay(
    dataset: Dataset,
    known: pd.DataFrame,
    hidden: pd.DataFrame,
    config: ReplayConfig,
    arms: dict[str, Mechanisms],
    seeds: list[int],
    policy: Policy,
    tune_every: int = 2,
    tune_config: Any = None,
    progress: Any = None,
    arm_tune_configs: dict[str, Any] | None = None,
) -> ReplayRun:
    """Replay every arm on the same users for each seed (see the module docstring).
    ``arm_tune_configs``: a tuning config per arm name (e.g. a lambda ablation arm)."""
    base = policy.recommender
    genre_lists = dataset.items["genres"].tolist() if "genres" in dataset.items.columns else None
    out, tunes = [], []
    for seed in seeds:
        cfg = ReplayConfig(**{**asdict(config), "seed": seed})
        users = replay_users(known, hidden, cfg, genre_lists)
        uid = np.array([u.user for u in users])
        for name, mech in arms.items():
            policy.recommender = base
            states = [new_state(u) for u in users]
            rng = np.random.default_rng([seed, 17])  # same noise draws in every arm
            bandit = TemplateBandit(MemoryArms(), seed=seed) if mech.bandit else None
            log = FeedbackLog() if mech.tuning else None
            cum = np.zeros((len(users), 2))
            for rnd in range(1, cfg.rounds + 1):
                slots = [slot_of(bool(st.history), _active(st, mech, rnd)) for st in states]
                chosen = [bandit.choose(s) for s in slots] if bandit else [None] * len(users)
                usable = [usable_template(t) for t in chosen]
                shown = policy.recommend(uid, states, mech, rnd, usable if bandit else None)
                for k, (u, st) in enumerate(zip(users, states, strict=True)):
                    sig = [answer(i, u.hidden, rng, cfg.noise) for i in shown[k]]
                    m = round_metrics(shown[k], u.hidden, st.hit_before, st.liked_before)
                    st.hit_before.update(int(i) for i in shown[k] if int(i) in u.hidden)
                    st.liked_before.update(int(i) for i in shown[k] if u.hidden.get(int(i), 0) >= 4)
                    cum[k] += (m["hits"], m["satisfied"])
                    out.append(
                        (seed, name, rnd, u.user, u.new, m["satisfied"], m["hits"], m["ndcg"])
                        + tuple(cum[k])
                        + tuple(sig.count(x) for x in SIGNALS)
                    )
                    if bandit:
                        for s in sig:
                            bandit.update(slots[k], chosen[k], reward_of(s))
                    if log is not None:
                        _log(
                            log,
                            dataset,
                            u.user,
                            st,
                            _active(st, mech, rnd),
                            usable[k],
                            shown[k],
                            sig,
                        )
                    observe(st, shown[k], sig, mech)
                if log is not None and tune_every and rnd % tune_every == 0 and rnd < cfg.rounds:
                    from .tuning import tune_in_memory

                    tc = (arm_tune_configs or {}).get(name, tune_config)
                    tuned, summary = tune_in_memory(base, log, tc)
                    policy.recommender = tuned
                    tunes.append({"seed": seed, "arm": name, "after_round": rnd, **summary})
                if progress:
                    progress(f"seed {seed} arm {name} round {rnd}")
    policy.recommender = base
    cols = ["seed", "arm", "round", "user", "new", "satisfied", "hits", "ndcg"]
    rows = pd.DataFrame(out, columns=cols + ["cum_hits", "cum_satisfied", *SIGNALS])
    return ReplayRun(config, list(seeds), dict(arms), rows, tunes)


def _active(st: UserState, mech: Mechanisms, rnd: int) -> str | None:
    return st.instruction if st.instruction and (rnd == 1 or mech.session) else None


def _log(log, dataset, user, st, instruction, template, shown, signals) -> None:
    """One request into the tuning log. The history is given explicitly (a new user's empty
    history is logged without a user id, so tuning can never fall back on the run's full
    serving sequence of that user, which holds the hidden future)."""
    ids = dataset.item_ids
    log.record(
        str(dataset.user_ids[user]) if st.history else None,
        [str(ids[i]) for i in st.history],
        instruction,
        template,
        [ids[int(i)] for i in shown],
        signals,
    )


def summarise(
    run: ReplayRun, n_boot: int = 2000, subset: str = "all", baseline: str = "control"
) -> pd.DataFrame:
    """Per (arm, round, metric): the arm's and the ``baseline`` arm's means over (seed, user)
    pairs (column ``control``), the paired difference and ratio with 95% bootstrap CIs.
    ``subset``: all | warm | new users."""
    r = run.rows
    if subset != "all":
        r = r[r["new"] == (subset == "new")]
    out = []
    key = ["seed", "user"]
    for rnd, g in r.groupby("round"):
        ctl = g[g["arm"] == baseline].set_index(key).sort_index()
        for arm in run.arms:
            a = g[g["arm"] == arm].set_index(key).sort_index()
            if a.empty or ctl.empty:
                continue
            for m in METRICS:
                ci = paired_ci(a[m].to_numpy(), ctl[m].to_numpy(), n_boot, seed=int(rnd))
                out.append({"round": int(rnd), "arm": arm, "metric": m, "n": len(a), **ci})
    return pd.DataFrame(out)
