"""The protocols of EVALUATION.md and how each one scores a model, per evaluated user.

| protocol    | candidates                                         | metrics                          |
|-------------|----------------------------------------------------|----------------------------------|
| cand10      | target + 9 saved negatives                         | HR@1, HR@3, HR@5, NDCG@3, NDCG@5 |
| cand20      | target + 19 saved negatives                        | HR@1, NDCG@5                     |
| hard        | target + 9 from the first-stage retriever's top 50 | HR@1, NDCG@5                     |
| cold        | cand10, only rows whose target is a cold item      | HR@1, NDCG@5                     |
| cold-only   | those rows, target + 9 unseen cold items           | HR@1, NDCG@5                     |
| full        | every item not seen before target                  | Recall@5/10, NDCG@5/10, MRR      |
| search      | cand10 + a specific intention (I2)                 | HR@1, NDCG@5 (+ match stats)     |
| search-hard | target + 9 unseen items matching the I2 intention  | HR@1, NDCG@5 (+ match stats)     |
| search-full | every unseen item, a specific intention (I2)       | Recall@10, NDCG@10               |
| search-full-para | as search-full, paraphrase-set wording        | Recall@10, NDCG@10               |
| vague       | cand10 + a vague intention (I1)                    | HR@1, NDCG@5                     |
| pointwise   | the target, liked or not                           | AUC                              |

Every protocol runs at a *stage*: ``"valid"`` (the validation targets; histories are the
training items only; the valid candidate files) or ``"test"`` (the test targets; histories
add the validation item; the test candidate files). Develop on valid, report test once.
``hard``, ``search-hard`` and ``cold-only`` files are built on first use
(`evaluation.hard_negatives`) and kept in the split with their hash and a note saying how they
were made.

``cold`` and ``cold-only``: ``cold`` keeps cand10's random negatives, ~95% of which are warm
items, so the one thing a model must not use, "which candidate is new", finds the target: a
rule ranking new items first scores HR@1 ~0.8 there (the ``new-first`` rival,
`adapters.NewFirstModel`). ``cold-only`` draws all 9 negatives from the cold items as well:
every candidate is new, coldness says nothing, and what ranks them is their text and content.

A *model* is anything with ``score_candidates(users, candidates (n, k), histories,
intentions=None, templates=None) -> (n, k)`` (the LM reranker / `Recommender`), optionally
``score_pointwise(users, items (n,), histories) -> (n,)`` and ``.retriever``. A `Retriever` is
adapted by `adapters.RetrieverModel`. Histories passed to models are each user's **full** sequence
before the target, oldest first (train items, plus the validation item at test time); every
model truncates to its own window (EVALUATION.md shows the most recent 20).

``full``: a retriever ranks all items except those seen before the target. A model with a
``.retriever`` reranks that retriever's top ``model.rerank_depth`` (default ``RERANK_DEPTH``,
20, LlamaRec) with ``score_candidates``; the rest stays in retriever order.

``pointwise`` (TALLRec-style): one instance per test user, the test target, label 1 if its
rating >= 4 ("liked") else 0. No resampling to balance the classes: AUC does not depend on
the class ratio; the counts are reported. ``pointwise_negatives > 0`` adds that many saved
cand10 negatives (never interacted, label 0) per user, which turns the task into "liked vs
rest" (a different, easier task: say so when you use it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.dataset import LIKED_RATING
from ..data.errors import DataError
from ..data.split import STAGES, Split
from ..recommender import RERANK_DEPTH  # the one rerank depth (LlamaRec's 20)
from . import metrics as M
from .adapters import AttributeFilterModel, RetrieverModel

SCORE_BATCH = 256  # users per all-item scoring batch


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol (see the table above)."""

    name: str
    kind: str  # "candidates" | "full" | "search-full" | "pointwise"
    metrics: tuple[str, ...]
    candidates: str | None = None  # candidate file (split.candidates[...][stage])
    intention: str | None = None  # "I2" specific, "I1" vague, None: history only
    description: str = ""
    rows: str | None = None  # "cold": only rows whose target is a cold item; None: all rows
    wording: str = "derived"  # intentions: "derived" (the generator, instructions/derive.py)
    #                           or "paraphrase" (the hand-written set, instructions/paraphrase.py)


PROTOCOLS: dict[str, Protocol] = {
    "cand10": Protocol(
        "cand10",
        "candidates",
        ("HR@1", "HR@3", "HR@5", "NDCG@3", "NDCG@5"),
        "cand10",
        None,
        "history only, target + 9 random negatives (P1 I0 T3)",
    ),
    "cand20": Protocol(
        "cand20",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand20",
        None,
        "history only, target + 19 random negatives (LLaRA)",
    ),
    "hard": Protocol(
        "hard",
        "candidates",
        ("HR@1", "NDCG@5"),
        "hard",
        None,
        "history only, target + 9 negatives from SASRec's top 50 (InstructRec Table 9)",
    ),
    "cold": Protocol(
        "cold",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand10",
        None,
        "cand10 rows whose target is a cold item (no training interactions; A-LLMRec)",
        rows="cold",
    ),
    "cold-only": Protocol(
        "cold-only",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cold-only",
        None,
        "cold-target rows, target + 9 unseen cold items: every candidate is new, only their "
        "text and content rank them",
        rows="cold",
    ),
    "full": Protocol(
        "full",
        "full",
        ("Recall@5", "Recall@10", "NDCG@5", "NDCG@10", "MRR"),
        None,
        None,
        "all unseen items; a model's retriever top 20 reranked (LlamaRec)",
    ),
    "search": Protocol(
        "search",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand10",
        "I2",
        "history + specific intention from the target's attributes (P1 I2 T3)",
    ),
    "search-hard": Protocol(
        "search-hard",
        "candidates",
        ("HR@1", "NDCG@5"),
        "search-hard",
        "I2",
        "history + specific intention; the 9 negatives match it as well as the target",
    ),
    "search-full": Protocol(
        "search-full",
        "search-full",
        ("Recall@10", "NDCG@10"),
        None,
        "I2",
        "history + specific intention; the target among all unseen items (evaluation/search_full.py)",
    ),
    "search-full-para": Protocol(
        "search-full-para",
        "search-full",
        ("Recall@10", "NDCG@10"),
        None,
        "I2",
        "search-full with intentions in wording no generator or parser wrote (paraphrase set)",
        wording="paraphrase",
    ),
    "vague": Protocol(
        "vague",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand10",
        "I1",
        "history + vague intention (P1 I1 T3)",
    ),
    "vague-para": Protocol(
        "vague-para",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand10",
        "I1",
        "history + vague intention in wording no generator or parser wrote (paraphrase set)",
        wording="paraphrase",
    ),
    "search-para": Protocol(
        "search-para",
        "candidates",
        ("HR@1", "NDCG@5"),
        "cand10",
        "I2",
        "history + specific intention in wording no generator or parser wrote (paraphrase set)",
        wording="paraphrase",
    ),
    "pointwise": Protocol(
        "pointwise",
        "pointwise",
        ("AUC",),
        None,
        None,
        "will the user like the test item? (TALLRec), AUC",
    ),
}


def get_protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise DataError(f"unknown protocol {name!r}; choose from {list(PROTOCOLS)} or 'all'")
    return PROTOCOLS[name]


# ---------------------------------------------------------------------- evaluated rows
@dataclass
class TestRows:
    """What every protocol reads from the split for the rows it evaluates at one stage."""

    users: np.ndarray  # (n,) internal user ids, row i = split.frame(stage).iloc[index[i]]
    targets: np.ndarray  # (n,) target items
    histories: list[np.ndarray]  # full sequence before each target, oldest first
    ratings: np.ndarray  # (n,) target rating (NaN when the data has none)
    stage: str = "test"  # "valid" or "test"
    index: np.ndarray | None = None  # (n,) positions in split.frame(stage) (None: all rows)

    def take(self, mask: np.ndarray) -> TestRows:
        """The rows where ``mask`` is true (positions kept in ``index``)."""
        mask = np.asarray(mask, bool)
        index = np.arange(len(self.users)) if self.index is None else self.index
        return TestRows(
            users=self.users[mask],
            targets=self.targets[mask],
            histories=[h for h, k in zip(self.histories, mask, strict=True) if k],
            ratings=self.ratings[mask],
            stage=self.stage,
            index=index[mask],
        )


def stage_rows(split: Split, stage: str = "test") -> TestRows:
    """The ``valid`` or ``test`` rows: targets and the full history before them (training
    items for ``valid``; training items plus the validation item for ``test``)."""
    if stage not in STAGES:
        raise DataError(f"stage must be one of {list(STAGES)}, not {stage!r}")
    frame = split.frame(stage)
    seqs = split.sequences(stage)
    users = frame["user"].to_numpy(np.int64)
    empty = np.empty(0, np.int32)
    return TestRows(
        users=users,
        targets=frame["item"].to_numpy(np.int64),
        histories=[seqs.get(int(u), empty) for u in users],
        ratings=frame["rating"].to_numpy(np.float64),
        stage=stage,
        index=np.arange(len(users)),
    )


def test_rows(split: Split) -> TestRows:
    """`stage_rows` at the test stage."""
    return stage_rows(split, "test")


def candidate_file(split: Split, name: str, stage: str = "test") -> np.ndarray:
    """Candidate file ``name`` of ``stage`` (target in column 0, one row per stage row)."""
    if name not in split.candidates or stage not in split.candidates[name]:
        raise DataError(
            f"the split has no {name!r} candidate file for stage {stage!r} (has "
            f"{sorted(split.candidates)}); make it with make_split/add_candidates"
        )
    frame = split.frame(stage)
    cands = np.asarray(split.candidates[name][stage], np.int64)
    if len(cands) != len(frame) or not (cands[:, 0] == frame["item"].to_numpy()).all():
        raise DataError(
            f"candidate file {name!r} does not match the {stage} rows (target must be "
            f"column 0, one row per {stage} user)"
        )
    return cands


def select_rows(proto: Protocol, split: Split, rows: TestRows, dataset=None) -> TestRows:
    """The rows ``proto`` evaluates (``cold``: those whose target is a cold item; a
    paraphrase-set protocol, given the ``dataset``: those whose target the set can state a
    request for, e.g. on Amazon Games the targets whose title shows a genre)."""
    if proto.wording == "paraphrase" and dataset is not None:
        from ..instructions.paraphrase import describable

        keep = describable(dataset, rows.targets, proto.intention)
        if not keep.all():
            if not keep.any():
                raise DataError(
                    f"no {rows.stage} target of {proto.name} can be described by the "
                    "paraphrase set (no genre it names)"
                )
            rows = rows.take(keep)
    if proto.rows != "cold":
        return rows
    if len(split.cold_items) == 0:
        raise DataError(
            "the split has no cold items (saved before cold items existed, or made with "
            "cold_fraction=0): make a new split to run the cold protocol"
        )
    picked = rows.take(np.isin(rows.targets, split.cold_items))
    if len(picked.users) == 0:
        raise DataError(f"no {rows.stage} target is a cold item: the cold protocol has no rows")
    return picked


# ---------------------------------------------------------------------- scoring
def score_candidates(
    model, rows: TestRows, cands: np.ndarray, intentions=None, templates=None, attrs=None
) -> np.ndarray:
    kw = {"attrs": attrs} if isinstance(model, AttributeFilterModel) else {}
    out = np.asarray(
        model.score_candidates(
            rows.users, cands, rows.histories, intentions=intentions, templates=templates, **kw
        )
    )
    if out.shape != cands.shape:
        raise ValueError(f"score_candidates returned shape {out.shape}, expected {cands.shape}")
    return out


def full_ranks(model, rows: TestRows, templates=None, depth: int | None = None) -> np.ndarray:
    """Rank of each target over all unseen items (see the module docstring); ``depth``
    (default: the model's ``rerank_depth``, else ``RERANK_DEPTH``) items are reranked."""
    retriever = getattr(model, "retriever", None)
    if retriever is None:
        raise DataError(
            f"{type(model).__name__} has no .retriever: the full protocol needs one "
            "to propose candidates"
        )
    if depth is None:
        depth = int(getattr(model, "rerank_depth", None) or RERANK_DEPTH)
    n = len(rows.users)
    ranks = np.empty(n, np.int64)
    heads = np.empty((n, min(depth, retriever.n_items)), np.int64)
    for s in range(0, n, SCORE_BATCH):
        sl = slice(s, s + SCORE_BATCH)
        hist = rows.histories[sl]
        scores = retriever.score_all(rows.users[sl], hist)
        ranks[sl] = M.ranks_full(scores, rows.targets[sl], exclude=hist)
        if not isinstance(model, RetrieverModel):
            heads[sl] = retriever.candidates(
                rows.users[sl], heads.shape[1], exclude_seen=True, histories=hist, seen=hist
            )[0]
    if isinstance(model, RetrieverModel):
        return ranks
    rs = np.asarray(
        model.score_candidates(
            rows.users, heads, rows.histories, intentions=None, templates=templates
        ),
        np.float64,
    )
    in_head = heads == rows.targets[:, None]
    found = in_head.any(axis=1)
    t_score = np.where(found, (rs * in_head).sum(axis=1), np.nan)
    head_rank = ((rs >= t_score[:, None]) & ~in_head).sum(axis=1)
    # a target outside the reranked head sits below all of it
    return np.where(found, head_rank, np.maximum(ranks, heads.shape[1])).astype(np.int64)


def pointwise_instances(split: Split, rows: TestRows, negatives: int = 0):
    """(users, items, histories, labels) for the pointwise protocol (see the module docstring)."""
    if np.isnan(rows.ratings).all():
        raise DataError(
            "the pointwise protocol needs ratings (liked = rating >= 4); this dataset has none"
        )
    keep = ~np.isnan(rows.ratings)
    users, items = rows.users[keep], rows.targets[keep]
    hists = [h for h, k in zip(rows.histories, keep, strict=True) if k]
    labels = (rows.ratings[keep] >= LIKED_RATING).astype(np.int8)
    owner = np.arange(len(users))  # which user each instance belongs to (for resampling)
    if negatives > 0:
        cands = candidate_file(split, "cand10", rows.stage)
        if rows.index is not None:
            cands = cands[rows.index]
        neg = cands[keep][:, 1 : 1 + negatives]
        users = np.r_[users, np.repeat(users, neg.shape[1])]
        items = np.r_[items, neg.ravel()]
        hists = hists + [h for h in hists for _ in range(neg.shape[1])]
        labels = np.r_[labels, np.zeros(neg.size, np.int8)]
        owner = np.r_[owner, np.repeat(owner, neg.shape[1])]
    return users, items, hists, labels, owner


def score_pointwise(model, users, items, hists) -> np.ndarray:
    if hasattr(model, "score_pointwise"):
        out = model.score_pointwise(users, items, hists)
    else:  # a one-candidate list: the model's score for that item
        out = np.asarray(model.score_candidates(users, items.reshape(-1, 1), hists))[:, 0]
    out = np.asarray(out, np.float64).reshape(-1)
    if len(out) != len(items):
        raise ValueError(f"score_pointwise returned {len(out)} scores for {len(items)} items")
    return out
