"""`search-full`: personalised search over the whole catalogue (EVALUATION.md).

The request is the `search` protocol's (history + a specific intention derived from the
target's attributes, P1 I2 T3); the target is ranked among ALL items the user has not seen
before it, and Recall@10 / NDCG@10 are read from that rank. How each kind of model ranks:

- a model with a first stage and a reranker (`Recommender`): its serving path,
  `rerank.candidates.instruction_candidates` (the retriever's top ``DEPTH``, the catalogue
  items best matching the parsed intention, dense retrieval with the query tower; never a
  seen item), ordered by match grade then by ``score_candidates``. Items outside that set
  rank below it (in retriever order);
- ``score-mix`` (a model with ``.retriever`` and no reranker): the same candidate set without
  the dense channel (it has no text side), ordered by match grade then by its score;
- a plain retriever (`RetrieverModel`): its full ranking; the intention is ignored;
- any other model (``sasrec+filter``, the learned filter or the attribute filter): scores
  every item with ``score_candidates`` (the intention text, and the structured ``attrs``
  for the oracle attribute filter).
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from .adapters import AttributeFilterModel, RetrieverModel
from .protocols import TestRows

BATCH = 128  # rows per batch (candidate sets of ~500 items per row)


def _is_candidate_path(model) -> bool:
    from .learned_filter import LearnedFilter

    if isinstance(model, (RetrieverModel, AttributeFilterModel, LearnedFilter)):
        return False
    return getattr(model, "retriever", None) is not None


def candidate_path_ranks(
    model,
    dataset,
    rows: TestRows,
    texts: list[str],
    templates=None,
    n_match: int | None = None,
    n_dense: int | None = None,
    match_first: bool = True,
):
    """(ranks (n,), union sizes (n,), target-in-union (n,) bool) of the candidate path.
    ``n_match`` / ``n_dense`` (default: the serving values) and ``match_first`` are there for
    ablations (0, 0, False: the retriever's top ``DEPTH`` reordered by the model)."""
    from ..rerank.candidates import DEPTH, N_DENSE, N_MATCH, instruction_candidates, rank_order

    n_match = N_MATCH if n_match is None else n_match
    n_dense = N_DENSE if n_dense is None else n_dense

    retriever = model.retriever
    reranker = getattr(model, "reranker", None)
    n = len(rows.users)
    ranks = np.empty(n, np.int64)
    sizes = np.empty(n, np.int64)
    inside = np.zeros(n, bool)
    for s in range(0, n, BATCH):
        sl = slice(s, min(s + BATCH, n))
        users, hists = rows.users[sl], list(rows.histories[sl])
        cset = instruction_candidates(
            dataset, retriever, users, hists, texts[sl],
            reranker=reranker, templates=templates, depth=DEPTH, n_match=n_match,
            n_dense=n_dense if reranker is not None else 0,
        )  # fmt: skip
        sc = np.asarray(
            model.score_candidates(
                users, cset.items, hists, intentions=texts[sl], templates=templates
            ),
            np.float64,
        )
        order = rank_order(sc, cset.grade, cset.valid, match_first=match_first)
        ordered = np.take_along_axis(cset.items, order, axis=1)
        ok = np.take_along_axis(cset.valid, order, axis=1)
        hit = (ordered == rows.targets[sl, None]) & ok
        found = hit.any(axis=1)
        size = cset.valid.sum(axis=1)
        full = M.ranks_full(retriever.score_all(users, hists), rows.targets[sl], exclude=hists)
        ranks[sl] = np.where(found, hit.argmax(axis=1), np.maximum(size, full))
        sizes[sl], inside[sl] = size, found
    return ranks, sizes, inside


def all_item_ranks(model, dataset, rows: TestRows, texts, attrs, templates=None) -> np.ndarray:
    """Rank of each target when ``model`` scores every item (seen items left out)."""
    from .protocols import score_candidates

    n, n_items = len(rows.users), dataset.n_items
    ranks = np.empty(n, np.int64)
    for s in range(0, n, BATCH):
        idx = np.arange(s, min(s + BATCH, n))
        part = rows.take(np.isin(np.arange(n), idx))
        cands = np.broadcast_to(np.arange(n_items), (len(idx), n_items)).copy()
        sub_t = [texts[i] for i in idx]
        sub_a = [attrs[i] for i in idx] if attrs is not None else None
        sc = score_candidates(model, part, cands, sub_t, templates, sub_a)
        ranks[idx] = M.ranks_full(sc, part.targets, exclude=part.histories)
    return ranks


def search_full_values(proto, dataset, models, rows, texts, attrs, templates, notes, extra):
    """{model: {metric: per-user values}} of `search-full` (module docstring)."""
    values = {}
    for name, model in models.items():
        if isinstance(model, RetrieverModel):
            hists = rows.histories
            ranks = np.concatenate(
                [
                    M.ranks_full(
                        model.retriever.score_all(rows.users[s : s + BATCH], hists[s : s + BATCH]),
                        rows.targets[s : s + BATCH],
                        exclude=hists[s : s + BATCH],
                    )
                    for s in range(0, len(rows.users), BATCH)
                ]
            )
        elif _is_candidate_path(model):
            ranks, sizes, inside = candidate_path_ranks(model, dataset, rows, texts, templates)
            extra.setdefault("candidates", {})[name] = {
                "mean_size": float(sizes.mean()),
                "target_in_candidates": float(inside.mean()),
            }
            notes.append(
                f"{name}: instruction-aware candidates, {sizes.mean():.0f} items per row on "
                f"average; the target is among them in {inside.mean():.3f} of rows"
            )
        else:
            ranks = all_item_ranks(model, dataset, rows, texts, attrs, templates)
        values[name] = M.compute(ranks, list(proto.metrics))
    return values
