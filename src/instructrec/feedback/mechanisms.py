"""Feedback mechanisms for the replay simulator, each switchable, and the policy using them.

Issue 17's mechanisms (see docs/feedback.md for what each one measured):

    session   (a) per user, within a session: liked items enter the history, an explicit
                  preference ("liked X, disliked Y", kept in the session state), items already
                  shown are not shown again, a stated instruction persists across rounds
    bandit    (b) global: Thompson sampling over the reranker's instruction templates
                  (`feedback.bandit.TemplateBandit`); needs a reranker (it phrases its query)
    tuning    (c) model: feedback tuning on the logged feedback (`feedback.tuning`, ranking loss
                  + lambda x satisfaction MSE) on a schedule, the tuned reranker hot-swapped
    profile   (d) a per-user preference vector updated online: item-kNN similarity to the
                  items liked in this session added to the scores, similarity to disliked
                  (and, weakly, skipped) items subtracted
    norepeat  a reference, not a mechanism of the issue: only impressions are used (an item
                  shown once is not shown again); no signal is read

Control uses none: the same request gets the same list every round (it reads no feedback and
no impression log). Scoring of one round for a batch of users (`Policy.recommend`): the first
stage's scores from the (session) history (popularity when it is empty), + a genre match
when an instruction is active, + the profile terms, minus what may not be shown; the top
``depth`` are reordered by the reranker when the recommender has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ..data.errors import DataError
from .replay import ReplayUser


@dataclass(frozen=True)
class Mechanisms:
    """Which feedback mechanisms an arm uses (all off: the control arm)."""

    session: bool = False  # (a) per-user session memory
    bandit: bool = False  # (b) template bandit (needs a reranker)
    tuning: bool = False  # (c) scheduled feedback tuning, hot-swapped (needs a reranker)
    profile: bool = False  # (d) online per-user preference vector
    norepeat: bool = False  # reference: never show an item twice (impressions only)

    def on(self) -> list[str]:
        """Names of the mechanisms switched on."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


ALL = Mechanisms(session=True, bandit=True, tuning=True, profile=True)
ARMS: dict[str, Mechanisms] = {
    "control": Mechanisms(),
    "norepeat": Mechanisms(norepeat=True),
    "session": Mechanisms(session=True),
    "bandit": Mechanisms(bandit=True),
    "tuning": Mechanisms(tuning=True),
    "profile": Mechanisms(profile=True),
    "all": ALL,
}
MODEL_ONLY = ("bandit", "tuning")  # mechanisms that act on a reranker only


def arms_for(names: list[str] | None, has_reranker: bool) -> dict[str, Mechanisms]:
    """The named arms (default: all that can act), control first; model-only mechanisms are
    switched off in every arm when there is no reranker (and their lone arms dropped)."""
    names = names or list(ARMS)
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise DataError(f"unknown replay arm(s) {unknown}; known: {sorted(ARMS)}")
    out = {"control": ARMS["control"]}
    for n in names:
        m = ARMS[n]
        if not has_reranker:
            if n in MODEL_ONLY:
                continue
            m = Mechanisms(**{**m.__dict__, "bandit": False, "tuning": False})
        out[n] = m
    return out


@dataclass
class ProfileConfig:
    """Weights of the online preference vector (d), on max-normalised item-kNN scores.
    Set a priori (not tuned on the replay)."""

    like: float = 1.0  # pull towards items similar to the ones liked this session
    dislike: float = 0.5  # push away from items similar to the disliked ones
    skip: float = 0.05  # a skip is weak evidence of disinterest
    instruction: float = 1.0  # bonus of an item matching the active instruction's genres


@dataclass
class UserState:
    """What an arm remembers about one replayed user (and the metric bookkeeping)."""

    history: list[int]
    instruction: str | None
    shown: set[int] = field(default_factory=set)
    liked: list[int] = field(default_factory=list)
    disliked: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    clicked: list[int] = field(default_factory=list)
    hit_before: set[int] = field(default_factory=set)
    liked_before: set[int] = field(default_factory=set)

    def preference(self, titles: np.ndarray, k: int = 3) -> str:
        """The explicit P2 preference of the session, e.g. "liked A, B; disliked C"."""
        parts = []
        if self.liked:
            parts.append("liked " + ", ".join(str(titles[i]) for i in self.liked[-k:]))
        if self.disliked:
            parts.append("disliked " + ", ".join(str(titles[i]) for i in self.disliked[-k:]))
        return "; ".join(parts)


def new_state(user: ReplayUser) -> UserState:
    return UserState(history=[int(i) for i in user.known], instruction=user.instruction)


def observe(st: UserState, shown: np.ndarray, signals: list[str], mech: Mechanisms) -> None:
    """Update ``st`` with one round's answers, as far as ``mech`` lets the system remember."""
    if mech.session or mech.norepeat:
        st.shown.update(int(i) for i in shown)
    if not (mech.session or mech.profile):
        return
    for i, s in zip(shown, signals, strict=True):
        {"like": st.liked, "dislike": st.disliked, "skip": st.skipped, "click": st.clicked}[
            s
        ].append(int(i))
    if mech.session:  # a liked item was consumed: it extends the history
        st.history.extend(int(i) for i, s in zip(shown, signals, strict=True) if s == "like")


def _rownorm(x: np.ndarray) -> np.ndarray:
    m = np.abs(x).max(axis=1, keepdims=True)
    return np.divide(x, m, out=np.zeros_like(x), where=m > 0)


class Policy:
    """Scores one round for a batch of users under given mechanisms.

    ``retriever``: a fitted first stage with ``score_all(users, histories)`` (item-kNN fitted
    on the known part); ``pop``: (n_items,) popularity on the known part (empty histories);
    ``genres``: (n_items, n_genres) bool and ``genre_names``; ``recommender``: an optional
    `Recommender` whose reranker reorders the top ``depth``.
    """

    def __init__(
        self,
        retriever: Any,
        pop: np.ndarray,
        genres: np.ndarray,
        genre_names: list[str],
        n: int = 10,
        depth: int = 20,
        profile: ProfileConfig | None = None,
        recommender: Any = None,
    ) -> None:
        self.retriever, self.pop = retriever, np.asarray(pop, np.float64)
        self.genres, self.genre_names = np.asarray(genres, bool), list(genre_names)
        self.n, self.depth = n, max(depth, n)
        self.profile = profile or ProfileConfig()
        self.recommender = recommender

    def _knn(self, users: np.ndarray, hists: list[list[int]]) -> np.ndarray:
        out = np.zeros((len(users), len(self.pop)))
        rows = [k for k, h in enumerate(hists) if h]
        if rows:
            s = self.retriever.score_all(
                users[rows], histories=[np.asarray(hists[k], np.int64) for k in rows]
            )
            out[rows] = np.asarray(s, np.float64)
        return _rownorm(out)

    def genre_match(self, instruction: str | None) -> np.ndarray:
        """(n_items,) 1.0 for items of a genre the instruction names."""
        if not instruction:
            return np.zeros(len(self.pop))
        low = instruction.lower()
        cols = [k for k, g in enumerate(self.genre_names) if g.lower() in low]
        return self.genres[:, cols].any(axis=1).astype(float) if cols else np.zeros(len(self.pop))

    def first_stage(
        self, users: np.ndarray, states: list[UserState], mech: Mechanisms, rnd: int
    ) -> np.ndarray:
        """(B, n_items) scores of one round; -inf on items that may not be shown."""
        s = self._knn(users, [st.history for st in states])
        empty = np.array([not st.history for st in states])
        s[empty] = self.pop / max(self.pop.max(), 1e-12)
        p = self.profile
        for k, st in enumerate(states):
            if st.instruction and (rnd == 1 or mech.session):  # said once; a session keeps it
                s[k] += p.instruction * self.genre_match(st.instruction)
        if mech.profile:
            for key, w in (("liked", p.like), ("disliked", -p.dislike), ("skipped", -p.skip)):
                hists = [getattr(st, key) for st in states]
                if w and any(hists):
                    s += w * self._knn(users, hists)
        for k, st in enumerate(states):
            s[k, [int(i) for i in st.history]] = -np.inf  # consumed items
            if st.shown:
                s[k, list(st.shown)] = -np.inf
        return s

    def recommend(
        self,
        users: np.ndarray,
        states: list[UserState],
        mech: Mechanisms,
        rnd: int,
        templates: list[str | None] | None = None,
    ) -> np.ndarray:
        """(B, n) internal item ids shown this round (``templates``: one per row or None)."""
        s = self.first_stage(users, states, mech, rnd)
        depth = min(self.depth, s.shape[1])
        top = np.argpartition(-s, depth - 1, axis=1)[:, :depth]
        order = np.argsort(-np.take_along_axis(s, top, 1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, 1)
        rec = self.recommender
        if rec is None or rec.reranker is None:
            return top[:, : self.n]
        instr = [
            st.instruction if st.instruction and (rnd == 1 or mech.session) else None
            for st in states
        ]
        hists = [np.asarray(st.history, np.int64) for st in states]
        scores = np.zeros(top.shape, np.float32)
        groups: dict[str | None, list[int]] = {}
        for k in range(len(states)):
            groups.setdefault(templates[k] if templates else None, []).append(k)
        for tid, rows in groups.items():
            it = [instr[k] for k in rows]
            scores[rows] = rec.score_candidates(
                np.maximum(users[rows], 0),
                top[rows],
                [hists[k] for k in rows],
                intentions=it if any(it) else None,
                templates=tid,
            )
        order = np.argsort(-scores, axis=1, kind="stable")[:, : self.n]
        return np.take_along_axis(top, order, 1)
