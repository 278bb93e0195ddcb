"""Replay simulator: users answer with their own real future.

An offline, counterfactual-free user model in the spirit of replay evaluation of
interactive recommenders (Li et al. 2011, "Unbiased offline evaluation of contextual-bandit-
based news article recommendation algorithms") and of the "held-out ratings answer"
protocol of conversational-recommender studies. No mechanism was designed for it: the
answers come from ratings users really gave, later in time.

Data, per user (only the *training* part of the saved leave-one-out split is used, so no
validation or test target can leak into the replay):

    training interactions, time order ──► known (first 1 - hidden_frac)  │ hidden (the rest)
                                            the system may use this       the user's future

A *new user* keeps no known history: the system gets only an instruction the user states
(built from the genres they rated >= 4 in their known part, e.g. "I'd like Drama or Comedy
movies"), said in round 1 only; a session that remembers it is mechanism (a).

Each round the system shows ``n`` items. The simulated user answers every shown item:

    item in the hidden future, rating >= 4   -> like
    item in the hidden future, rating <= 2   -> dislike
    item in the hidden future, rating 3      -> click
    any other item                           -> skip

with an optional ``noise`` rate (each answer replaced by a uniformly drawn signal).

Metrics per user and round (`round_metrics`): ``satisfied`` (shown items liked for the first
time), ``hits`` (hidden-future items shown for the first time; their sum over rounds is the
cumulative hit count), ``ndcg`` (NDCG@n of the shown list, relevance 1 for hidden-future
items not shown in an earlier round). Paired comparisons: `paired_ci`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.errors import DataError

SIGNALS = ("like", "click", "skip", "dislike")


@dataclass
class ReplayConfig:
    """Settings of the replay (YAML-loadable via ``ReplayConfig(**yaml.safe_load(...))``)."""

    rounds: int = 5  # recommend -> feedback cycles
    users: int = 200  # replayed warm users per seed (drawn among those with a hidden like)
    new_users: int = 50  # replayed new users per seed (no history, one stated instruction)
    n: int = 10  # items shown per round
    hidden_frac: float = 0.3  # late share of each user's training interactions kept hidden
    min_known: int = 5  # users with fewer known interactions are not replayed as warm users
    noise: float = 0.0  # probability that an answer is replaced by a random signal
    seed: int = 0  # draws users, noise and the bandit


@dataclass
class ReplayUser:
    """One replayed user: internal id, known history (oldest first), hidden future ratings,
    and the instruction a new user states (None for warm users)."""

    user: int
    known: np.ndarray
    hidden: dict[int, float]
    new: bool = False
    instruction: str | None = None
    liked_genres: list[str] = field(default_factory=list)


def split_known_hidden(
    train: pd.DataFrame, hidden_frac: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the early (known) and late (hidden) training interactions.

    Order: timestamp, ties by the split's ``order`` column (file order) when present.
    """
    if not 0.0 < hidden_frac < 1.0:
        raise DataError(f"hidden_frac must be in (0, 1), got {hidden_frac}")
    missing = {"user", "item", "rating", "timestamp"} - set(train.columns)
    if missing:
        raise DataError(f"replay needs columns {sorted(missing)} in the training interactions")
    keys = ["user", "timestamp"] + (["order"] if "order" in train.columns else [])
    inter = train.sort_values(keys, kind="stable").reset_index(drop=True)
    pos = inter.groupby("user").cumcount().to_numpy()
    size = inter.groupby("user")["item"].transform("size").to_numpy()
    late = pos >= np.ceil(size * (1.0 - hidden_frac))
    return inter[~late].reset_index(drop=True), inter[late].reset_index(drop=True)


def _genre_instruction(genres: list[str]) -> str | None:
    if not genres:
        return None
    return "I'd like " + " or ".join(genres) + " movies"


def replay_users(
    known: pd.DataFrame,
    hidden: pd.DataFrame,
    config: ReplayConfig,
    item_genres: list[tuple] | None = None,
) -> list[ReplayUser]:
    """Draw the replayed users of ``config.seed``: warm users first, then new users (disjoint).

    Eligible: at least one hidden like and ``min_known`` known interactions. A new user's
    instruction names the (up to 2) genres most frequent among items they rated >= 4 in their
    known part (``item_genres[i]``: genres of internal item i); without genres none is made.
    """
    hid = {int(u): g for u, g in hidden.groupby("user")}
    kn = {int(u): g for u, g in known.groupby("user")}
    eligible = sorted(
        u
        for u, g in hid.items()
        if u in kn and len(kn[u]) >= config.min_known and (g["rating"] >= 4).any()
    )
    if not eligible:
        raise DataError("no user has both a known history and a hidden like to replay")
    rng = np.random.default_rng(config.seed)
    take = min(len(eligible), config.users + config.new_users)
    drawn = rng.choice(np.asarray(eligible), size=take, replace=False)
    out = []
    for k, u in enumerate(drawn.tolist()):
        h = hid[u]
        future = dict(zip(h["item"].astype(int), h["rating"].astype(float), strict=True))
        hist = kn[u]["item"].to_numpy(np.int64)
        if k < config.users:
            out.append(ReplayUser(u, hist, future))
            continue
        genres: list[str] = []
        if item_genres is not None:
            liked = kn[u].loc[kn[u]["rating"] >= 4, "item"].astype(int)
            counts = Counter(g for i in liked for g in (item_genres[i] or ()))
            genres = [g for g, _ in counts.most_common(2)]
        out.append(
            ReplayUser(
                u,
                np.empty(0, np.int64),
                future,
                new=True,
                instruction=_genre_instruction(genres),
                liked_genres=genres,
            )
        )
    return out


def answer(item: int, hidden: dict[int, float], rng=None, noise: float = 0.0) -> str:
    """The user's signal for a shown ``item`` from their hidden future (see module doc)."""
    if noise > 0.0 and rng is not None and rng.random() < noise:
        return SIGNALS[int(rng.integers(len(SIGNALS)))]
    r = hidden.get(int(item))
    if r is None:
        return "skip"
    if r >= 4:
        return "like"
    if r <= 2:
        return "dislike"
    return "click"


def round_metrics(
    shown: np.ndarray, hidden: dict[int, float], hit_before: set[int], liked_before: set[int]
) -> dict[str, float]:
    """``satisfied``, ``hits`` and ``ndcg`` of one shown list (see the module docstring).

    ``hit_before`` / ``liked_before`` are the hidden items shown / liked in earlier rounds;
    the caller updates them.
    """
    shown = [int(i) for i in shown]
    rel = np.array([i in hidden and i not in hit_before for i in shown], float)
    satisfied = sum(1 for i in shown if hidden.get(i, 0) >= 4 and i not in liked_before)
    remaining = sum(1 for i in hidden if i not in hit_before)
    ideal = min(len(shown), remaining)
    disc = 1.0 / np.log2(np.arange(2, len(shown) + 2))
    idcg = disc[:ideal].sum()
    ndcg = float((rel * disc).sum() / idcg) if idcg > 0 else 0.0
    return {"satisfied": float(satisfied), "hits": float(rel.sum()), "ndcg": ndcg}


def paired_ci(
    treated: np.ndarray, control: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> dict[str, float]:
    """Paired bootstrap over units (users): the mean difference treated - control with its
    95% percentile CI, and the ratio of means treated / control with its CI (same resamples).
    """
    a = np.asarray(treated, float)
    b = np.asarray(control, float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise DataError(f"paired_ci needs two equal-length 1-d arrays, got {a.shape}, {b.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    ma, mb = a[idx].mean(axis=1), b[idx].mean(axis=1)
    d = ma - mb
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mb > 0, ma / mb, np.nan)
    out = {
        "treated": float(a.mean()),
        "control": float(b.mean()),
        "diff": float(a.mean() - b.mean()),
        "diff_lo": float(np.percentile(d, 2.5)),
        "diff_hi": float(np.percentile(d, 97.5)),
        "ratio": float(a.mean() / b.mean()) if b.mean() > 0 else float("nan"),
    }
    ok = ratio[np.isfinite(ratio)]
    out["ratio_lo"] = float(np.percentile(ok, 2.5)) if len(ok) else float("nan")
    out["ratio_hi"] = float(np.percentile(ok, 97.5)) if len(ok) else float("nan")
    return out
