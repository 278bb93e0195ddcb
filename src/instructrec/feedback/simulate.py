"""Simulated users: does closing the feedback loop help, round after round?

An offline study in the spirit of user simulators for interactive recommendation (e.g.
RecSim, Ie et al. 2019; the "simulated user answers from held-out ratings" protocol of
conversational-recommender evaluation). Each user's log is cut in time: the early part is
what the system knows, the late part (held out) is the user's taste. For ``rounds`` rounds
the system shows ``n`` new items; the simulated user answers from held-out ratings:

    rating >= 4  -> like        rating <= 2 -> dislike
    rating == 3  -> rating 3    not rated   -> skip

Two arms on the same users: **feedback** (likes extend the user's history, dislikes push
similar items down, template rewards update the Thompson bandit, optionally the reranker is
fine-tuned on the stored feedback) and **control** (the same system ignoring feedback; it
only avoids repeating items it already showed). Per round we report the mean satisfaction
(share of shown items the user likes) and hit rate (at least one liked item) with 95%
bootstrap CIs, and the paired difference feedback - control.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data.dataset import Dataset
from .bandit import MemoryArms, TemplateBandit, slot_of, usable_template
from .records import reward_of


@dataclass
class SimConfig:
    """Settings of one simulation (YAML-loadable via ``SimConfig(**yaml.safe_load(...))``)."""

    rounds: int = 5  # recommend -> feedback -> optimise cycles
    users: int = 200  # simulated users (drawn among those with a held-out like)
    n: int = 10  # items shown per round
    heldout_frac: float = 0.3  # late share of each user's log that is the hidden taste
    depth: int = 20  # retrieved candidates handed to the recommender per round
    like_weight: float = 3.0  # weight of items liked in earlier rounds vs the old history
    dislike_weight: float = 0.5  # how hard items similar to disliked ones are pushed down
    retriever: str = "itemknn"  # itemknn | pop
    instruction: str | None = None  # the users' request text (None: history only)
    bootstrap: int = 1000  # bootstrap resamples for CIs
    seed: int = 0
    tune_every: int = 0  # fine-tune the reranker on feedback every k rounds (0: never)


@dataclass
class SimResult:
    config: SimConfig
    per_user: pd.DataFrame  # round, arm, user, satisfaction, hit
    table: pd.DataFrame  # round, arm, metric, mean, lo, hi
    arms: dict = field(default_factory=dict)  # final bandit state of the feedback arm

    def to_markdown(self) -> str:
        rows = [
            "| round | metric | control | feedback | difference (paired) |",
            "|---|---|---|---|---|",
        ]
        t = self.table
        for r in sorted(t["round"].unique()):
            for m in ("satisfaction", "hit"):
                cell = {}
                for arm in ("control", "feedback", "difference"):
                    x = t[(t["round"] == r) & (t["arm"] == arm) & (t["metric"] == m)].iloc[0]
                    cell[arm] = f"{x['mean']:.4f} [{x['lo']:.4f}, {x['hi']:.4f}]"
                rows.append(
                    f"| {r} | {m} | {cell['control']} | {cell['feedback']} | {cell['difference']} |"
                )
        return "\n".join(rows) + "\n"

    def to_json(self) -> dict:
        return {
            "config": asdict(self.config),
            "table": self.table.to_dict(orient="records"),
            "arms": self.arms,
        }

    def plot(self, path: str | Path) -> Path:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, metric in zip(axes, ("satisfaction", "hit"), strict=True):
            for arm, color in (("control", "tab:gray"), ("feedback", "tab:blue")):
                d = self.table[(self.table["arm"] == arm) & (self.table["metric"] == metric)]
                ax.plot(d["round"], d["mean"], marker="o", color=color, label=arm)
                ax.fill_between(d["round"], d["lo"], d["hi"], color=color, alpha=0.2)
            ax.set_xlabel("round")
            ax.set_ylabel(metric)
            ax.set_xticks(sorted(self.table["round"].unique()))
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(
            f"simulated users (n={self.config.users}, {self.config.n} items/round, "
            "95% bootstrap CI)"
        )
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path


def temporal_cut(dataset: Dataset, heldout_frac: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the early (known) and late (held-out) interactions, by time then file order."""
    if not 0.0 < heldout_frac < 1.0:
        raise ValueError(f"heldout_frac must be in (0, 1), got {heldout_frac}")
    inter = dataset.sorted_interactions()
    pos = inter.groupby("user").cumcount().to_numpy()
    size = inter.groupby("user")["item"].transform("size").to_numpy()
    late = pos >= np.ceil(size * (1.0 - heldout_frac))
    return inter[~late].reset_index(drop=True), inter[late].reset_index(drop=True)


def answer(rating: float | None) -> tuple[str, int | None]:
    """The simulated user's signal for an item with held-out ``rating`` (None: unrated)."""
    if rating is None or np.isnan(rating):
        return "skip", None
    if rating >= 4:
        return "like", None
    if rating <= 2:
        return "dislike", None
    return "rating", int(rating)


def bootstrap_ci(x: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, 2.5th, 97.5th percentile of bootstrap means)."""
    x = np.asarray(x, dtype=float)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1)
    return float(x.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _make_retriever(name: str):
    if name == "itemknn":
        from ..retrieval.itemknn import ItemKNN

        return ItemKNN()
    if name == "pop":
        from ..retrieval.pop import Pop

        return Pop()
    raise ValueError(f"retriever must be itemknn or pop, got {name!r}")


def simulate(
    dataset: Dataset,
    config: SimConfig | None = None,
    recommender: Any = None,
    store: Any = None,
    tuner: Any = None,
) -> SimResult:
    """Run the feedback arm and the control arm on the same simulated users.

    ``recommender`` (optional) is a `Recommender` whose reranker reorders the retrieved
    candidates (its retriever is refitted on the early part of the log); without one a
    retriever-only recommender is built. ``store`` (optional) records every request and
    feedback as the service would. ``tuner(recommender, store) -> recommender`` is called
    every ``tune_every`` rounds in the feedback arm.
    """
    from ..recommender import Recommender

    cfg = config or SimConfig()
    early, late = temporal_cut(dataset, cfg.heldout_frac)
    if recommender is None:
        recommender = Recommender(dataset, _make_retriever(cfg.retriever))
    # the retriever and every prior see only the early part: the held-out taste stays hidden
    # (a reranker trained on the full log has seen it: both arms alike, see docs/serving.md)
    refit = {id(recommender.retriever): recommender.retriever}
    refit.update({id(p): p for p in getattr(recommender, "priors", [])})
    for r in refit.values():
        r.fit(early, dataset.n_users, dataset.n_items)
    feedback_rec = recommender

    taste = {
        int(u): dict(
            zip(g["item"].to_numpy().tolist(), g["rating"].to_numpy().tolist(), strict=True)
        )
        for u, g in late.groupby("user")
    }
    known = {int(u): g["item"].to_numpy(np.int64) for u, g in early.groupby("user")}
    eligible = np.array(
        sorted(u for u, t in taste.items() if u in known and any(r >= 4 for r in t.values()))
    )
    rng = np.random.default_rng(cfg.seed)
    users = rng.choice(eligible, size=min(cfg.users, len(eligible)), replace=False)

    bandit = TemplateBandit(store if store is not None else MemoryArms(), seed=cfg.seed)
    slot = slot_of(True, cfg.instruction)
    raw_items = dataset.item_ids
    rows = []
    state = {
        arm: {
            int(u): {
                "history": list(known[int(u)]),
                "shown": set(known[int(u)]),
                "liked": [],
                "disliked": [],
            }
            for u in users
        }
        for arm in ("control", "feedback")
    }
    for rnd in range(1, cfg.rounds + 1):
        for arm in ("control", "feedback"):
            rec = feedback_rec if arm == "feedback" else recommender
            for u in users:
                st = state[arm][int(u)]
                template = bandit.choose(slot) if arm == "feedback" else None
                shown = _recommend(rec, int(u), st, cfg, template, use_dislikes=(arm == "feedback"))
                sat, hit = _respond(
                    shown,
                    taste[int(u)],
                    st,
                    arm,
                    bandit,
                    slot,
                    template,
                    store,
                    raw_items,
                    int(u),
                    dataset,
                    cfg,
                )
                rows.append((rnd, arm, int(u), sat, hit))
        if tuner is not None and cfg.tune_every and rnd % cfg.tune_every == 0:
            feedback_rec = tuner(feedback_rec, store)
    per_user = pd.DataFrame(rows, columns=["round", "arm", "user", "satisfaction", "hit"])
    return SimResult(
        cfg,
        per_user,
        _summarise(per_user, cfg),
        arms=bandit.state.arms(slot) if hasattr(bandit.state, "arms") else {},
    )


def _recommend(
    rec, u: int, st: dict, cfg: SimConfig, template: str | None, use_dislikes: bool
) -> np.ndarray:
    """Internal ids of the items shown this round: top ``depth`` unseen items of the
    retriever (minus a penalty for resembling disliked items), reordered by the recommender."""
    hist = np.asarray(st["history"], dtype=np.int64)
    scores = rec.retriever.score_all(np.array([u]), histories=[hist])[0].astype(np.float64)
    for key, weight in (("liked", cfg.like_weight - 1.0), ("disliked", -cfg.dislike_weight)):
        if use_dislikes and st[key] and weight != 0:  # recent explicit feedback counts more
            extra = rec.retriever.score_all(
                np.array([u]), histories=[np.asarray(st[key], np.int64)]
            )[0]
            scores = scores + weight * extra
    scores[list(st["shown"])] = -np.inf
    depth = min(max(cfg.depth, cfg.n), int(np.isfinite(scores).sum()))
    top = np.argpartition(-scores, depth - 1)[:depth]
    top = top[np.argsort(-scores[top], kind="stable")]
    if rec.reranker is None:
        return top[: cfg.n]
    ds = rec.dataset
    tmpl = usable_template(template)
    kwargs = {"template": tmpl} if tmpl is not None else {}
    try:
        frame = rec.recommend(
            history=list(ds.item_ids[hist]),
            instruction=cfg.instruction,
            n=cfg.n,
            candidates=list(ds.item_ids[top]),
            **kwargs,
        )
    except TypeError:  # a recommender without template support
        frame = rec.recommend(
            history=list(ds.item_ids[hist]),
            instruction=cfg.instruction,
            n=cfg.n,
            candidates=list(ds.item_ids[top]),
        )
    return ds.item_index(frame["item_id"].tolist())


def _respond(
    shown,
    taste: dict,
    st: dict,
    arm: str,
    bandit,
    slot,
    template,
    store,
    raw_items,
    u: int,
    dataset: Dataset,
    cfg: SimConfig,
) -> tuple[float, float]:
    signals = [answer(taste.get(int(i))) for i in shown]
    liked = [int(i) for i, (s, _) in zip(shown, signals, strict=True) if s == "like"]
    st["shown"].update(int(i) for i in shown)
    if arm == "feedback":
        st["history"].extend(liked)  # a liked item is consumed: it extends the history
        st["liked"].extend(liked)
        st["disliked"].extend(
            int(i) for i, (s, _) in zip(shown, signals, strict=True) if s == "dislike"
        )
        rewards = [reward_of(s, r) for s, r in signals]
        rewards = [x for x in rewards if x is not None]
        if store is not None:
            rid = store.record_request(
                str(dataset.user_ids[u]),
                None,
                cfg.instruction,
                cfg.n,
                [(str(raw_items[i]), k + 1, 0.0) for k, i in enumerate(shown)],
                slot=slot,
                template_id=template,
                model_version="sim",
            )
            for i, (s, r) in zip(shown, signals, strict=True):
                store.add_feedback(rid, str(raw_items[i]), s, f"{rid}:{int(i)}", rating=r)
        else:  # (the store updates the arm itself when it records feedback)
            for x in rewards:
                bandit.update(slot, template, x)
    return len(liked) / max(1, len(shown)), float(bool(liked))


def _summarise(per_user: pd.DataFrame, cfg: SimConfig) -> pd.DataFrame:
    out = []
    for rnd, g in per_user.groupby("round"):
        piv = {m: g.pivot(index="user", columns="arm", values=m) for m in ("satisfaction", "hit")}
        for m, p in piv.items():
            for arm in ("control", "feedback"):
                out.append((rnd, arm, m, *bootstrap_ci(p[arm].to_numpy(), cfg.bootstrap, cfg.seed)))
            diff = (p["feedback"] - p["control"]).to_numpy()
            out.append((rnd, "difference", m, *bootstrap_ci(diff, cfg.bootstrap, cfg.seed)))
    return pd.DataFrame(out, columns=["round", "arm", "metric", "mean", "lo", "hi"])
