"""Candidate files built at evaluation time, and the intention-match statistics of `search`.

- ``hard`` (InstructRec, Table 9): the target plus 9 negatives drawn with a fixed seed from a
  first-stage retriever's top 50 for that row (target and every interacted item left out).
  The retriever's ranking is computed here; drawing and saving is `data.split`'s
  `add_ranked_candidates` (``data`` never imports ``retrieval``).
- ``search-hard`` (ours): the target plus 9 unseen items that satisfy the row's specific (I2)
  intention as fully as the target does, so matching attributes alone cannot find the
  target. Match is graded: the number of the intention's atomic constraints (each genre,
  the decade, the year, the category, the brand, the price band) an item satisfies; the
  target satisfies all of them. Rows with fewer than 9 such unseen items are filled with
  the best-matching ones and counted in the file's note.
- ``cold-only`` (ours): the target plus 9 items drawn uniformly from the split's cold items
  (no training interactions) the row's user never touched: on the rows whose target is cold,
  every candidate is new (`protocols` module docstring: why `cold` alone is not enough).

Both are registered in the split with `set_candidates` (hash + a JSON note: retriever or
intention seed) and saved by `save_split` like the random candidate files.
"""

from __future__ import annotations

import numpy as np

from ..data.dataset import Dataset
from ..data.errors import DataError
from ..data.split import STAGES, Split, add_ranked_candidates, set_candidates
from .protocols import SCORE_BATCH, Protocol, TestRows, candidate_file, stage_rows

HARD_RETRIEVER = "sasrec"  # the model (by name) whose top 50 gives the `hard` negatives
HARD_DEPTH = 50  # retriever top-N the `hard` negatives are drawn from (InstructRec Table 9)
HARD_NEGATIVES = 9  # negatives per row in `hard` and `search-hard`
_MATCH_BATCH = 128  # rows per block when matching intentions against the whole catalogue


def make_hard_candidates(
    split: Split,
    retriever,
    depth: int = HARD_DEPTH,
    stage: str = "test",
    *,
    dataset: Dataset | None = None,
    n_neg: int = HARD_NEGATIVES,
    seed: int | None = None,
    name: str = "hard",
) -> np.ndarray:
    """Rank with ``retriever`` (histories before ``stage``'s targets, history excluded), draw
    the ``hard`` negatives from each row's top ``depth`` and register the file in ``split``."""
    rows = stage_rows(split, stage)
    top = np.empty((len(rows.users), min(depth, retriever.n_items)), np.int64)
    for s in range(0, len(rows.users), SCORE_BATCH):
        sl = slice(s, s + SCORE_BATCH)
        hist = rows.histories[sl]
        top[sl] = retriever.candidates(
            rows.users[sl], top.shape[1], exclude_seen=True, histories=hist, seen=hist
        )[0]
    inner = type(retriever)
    note = {"retriever": f"{inner.__module__}.{inner.__qualname__}"}
    cfg = getattr(retriever, "config", None)
    if cfg is not None and hasattr(cfg, "seed"):
        note["retriever_seed"] = cfg.seed
    return add_ranked_candidates(split, name, stage, top, n_neg, seed, dataset=dataset, note=note)


def match_degree(dataset: Dataset, attrs: list[dict], candidates: np.ndarray) -> np.ndarray:
    """(n, k) int: how many of intention ``attrs[i]``'s atomic constraints candidate
    ``candidates[i, j]`` satisfies (an empty intention has none: 0 everywhere)."""
    from ..instructions import intention_matches

    cand = np.asarray(candidates, np.int64)
    out = np.zeros(cand.shape, np.int64)
    atoms = [_atoms(d) for d in attrs]
    for a in range(max((len(x) for x in atoms), default=0)):
        # the a-th atom of each row (rows with fewer atoms: an empty intention, matches all)
        sub = [x[a] if a < len(x) else {} for x in atoms]
        has = np.array([a < len(x) for x in atoms])
        out += intention_matches(dataset, sub, cand) & has[:, None]
    return out


def _atoms(d: dict | None) -> list[dict]:
    """One single-constraint intention per genre and per other key of ``d``."""
    out = []
    for k, v in (d or {}).items():
        if k == "genres":
            out += [{"genres": [g]} for g in v]
        elif k != "excluded":
            out.append({k: v})
    return out


def make_search_hard_candidates(
    dataset: Dataset,
    split: Split,
    stage: str = "test",
    seed: int = 0,
    *,
    n_neg: int = HARD_NEGATIVES,
    name: str = "search-hard",
) -> np.ndarray:
    """Draw the ``search-hard`` file of ``stage`` for the I2 intentions of seed ``seed``
    (`derive_intentions`) and register it in ``split`` (note: intention seed, short rows)."""
    from ..data.negatives import seen_keys, seen_mask
    from ..instructions import derive_intentions

    rows = stage_rows(split, stage)
    _, attrs = derive_intentions(dataset, rows.targets, kind="I2", seed=seed)
    keys = seen_keys(dataset)
    n_items = dataset.n_items
    catalogue = np.arange(n_items, dtype=np.int64)
    rng = np.random.default_rng([seed, 0x5EA2, 0 if stage == "valid" else 1])
    negs = np.empty((len(rows.users), n_neg), np.int64)
    short = 0
    for s in range(0, len(rows.users), _MATCH_BATCH):
        sl = slice(s, s + _MATCH_BATCH)
        users, targets, a = rows.users[sl], rows.targets[sl], attrs[sl]
        cand = np.broadcast_to(catalogue, (len(users), n_items))
        degree = match_degree(dataset, a, cand)
        need = degree[np.arange(len(users)), targets]  # the target's own match
        seen = seen_mask(keys, users, catalogue[None, :], n_items)
        # uniform among items matching as well as the target; then the best of the rest
        key = np.minimum(degree, need[:, None]) + 0.999 * rng.random(degree.shape)
        key[seen] = -np.inf
        key[np.arange(len(users)), targets] = -np.inf
        pick = np.argpartition(-key, n_neg - 1, axis=1)[:, :n_neg]
        got = np.take_along_axis(key, pick, axis=1)
        if np.isinf(got).any():
            bad = int(np.flatnonzero(np.isinf(got).any(axis=1))[0])
            raise DataError(
                f"{stage} user {users[bad]} has fewer than {n_neg} unseen items for "
                f"{name!r} negatives"
            )
        order = np.argsort(-got, axis=1, kind="stable")
        negs[sl] = np.take_along_axis(pick, order, axis=1)
        short += int((np.take_along_axis(degree, pick, axis=1) < need[:, None]).any(axis=1).sum())
    note = {
        "from": "intention match (I2)",
        "intention_seed": seed,
        "n_neg": n_neg,
        "rows_short": short,
        "empty_intentions": sum(1 for d in attrs if not _atoms(d)),
    }
    cands = np.concatenate([rows.targets[:, None], negs], axis=1)
    return set_candidates(split, name, stage, cands, note)


def make_cold_candidates(
    dataset: Dataset,
    split: Split,
    stage: str = "test",
    seed: int = 0,
    *,
    n_neg: int = HARD_NEGATIVES,
    name: str = "cold-only",
) -> np.ndarray:
    """Draw the ``cold-only`` file of ``stage`` (every row: the target + ``n_neg`` distinct cold
    items the user never touched, uniform, seeded) and register it in ``split``."""
    from ..data.negatives import seen_keys, seen_mask

    pool = np.unique(np.asarray(split.cold_items, np.int64))
    rows = stage_rows(split, stage)
    keys = seen_keys(dataset)
    rng = np.random.default_rng([seed, 0xC01D, 0 if stage == "valid" else 1])
    negs = np.empty((len(rows.users), n_neg), np.int64)
    for s in range(0, len(rows.users), 4096):
        sl = slice(s, s + 4096)
        users, targets = rows.users[sl], rows.targets[sl]
        free = ~seen_mask(keys, users, pool[None, :], dataset.n_items)
        free &= pool[None, :] != targets[:, None]
        short = free.sum(axis=1) < n_neg
        if short.any():
            bad = int(np.flatnonzero(short)[0])
            raise DataError(
                f"{name!r}: {stage} user {dataset.user_ids[users[bad]]!r} has "
                f"{int(free[bad].sum())} unseen cold items, {n_neg} needed (the split has "
                f"{len(pool)} cold items)"
            )
        key = np.where(free, rng.random(free.shape), -1.0)
        pick = np.argpartition(-key, n_neg - 1, axis=1)[:, :n_neg]
        negs[sl] = pool[np.sort(pick, axis=1)]
    note = {"from": "cold items (no training interactions)", "seed": seed, "n_neg": n_neg,
            "cold_items": len(pool)}  # fmt: skip
    cands = np.concatenate([rows.targets[:, None].astype(np.int64), negs], axis=1)
    return set_candidates(split, name, stage, cands, note)


def intention_match_stats(
    dataset: Dataset,
    attrs: list[dict],
    cands: np.ndarray,
    values: dict[str, dict[str, np.ndarray]],
    metric: str = "HR@1",
) -> dict:
    """Unique-match rate (rows where the target is the only candidate matching the
    intention) and each model's ``metric`` over rows with >= 2 matching candidates."""
    from ..instructions import intention_matches

    match = intention_matches(dataset, attrs, cands)
    n_match = match.sum(axis=1)
    unique = match[:, 0] & (n_match == 1)
    multi = n_match >= 2
    return {
        "unique_match_rate": float(unique.mean()) if len(unique) else float("nan"),
        "rows": int(len(unique)),
        "rows_ge2_match": int(multi.sum()),
        f"{metric}|>=2match": {
            name: float(np.mean(v[metric][multi])) if multi.any() else float("nan")
            for name, v in values.items()
            if metric in v
        },
    }


def protocol_candidates(
    proto: Protocol,
    dataset: Dataset,
    split: Split,
    models: dict,
    rows: TestRows,
    seed: int,
    notes: list[str],
) -> np.ndarray:
    """``proto``'s candidate file for ``rows`` (built and registered first if it is a hard
    file the split does not hold yet: both stages, so the saved split has both)."""
    name = proto.candidates
    have = split.candidates.get(name, {})
    missing = [] if rows.stage in have else [st for st in STAGES if st not in have]
    if missing and name == "hard":
        retr = getattr(models.get(HARD_RETRIEVER), "retriever", None)
        if retr is None:
            raise DataError(
                f"the split has no 'hard' candidate file and no {HARD_RETRIEVER!r} model to "
                f"build it from: add {HARD_RETRIEVER} to the models (its top 50 gives the "
                "negatives)"
            )
        for st in missing:
            make_hard_candidates(split, retr, stage=st, dataset=dataset)
        notes.append(f"hard candidates built now from {HARD_RETRIEVER}'s top 50 ({missing})")
    elif missing and name == "search-hard":
        for st in missing:
            make_search_hard_candidates(dataset, split, st, seed=seed)
        notes.append(f"search-hard candidates built now, intention seed {seed} ({missing})")
    elif missing and name == "cold-only":
        for st in missing:
            make_cold_candidates(dataset, split, st, seed=seed)
        notes.append(f"cold-only candidates built now, seed {seed} ({missing})")
    made = split.notes.get(name, {}).get(rows.stage)
    if made:
        notes.append(
            f"{name} file ({rows.stage}): " + ", ".join(f"{k} {v}" for k, v in made.items())
        )
    cands = candidate_file(split, name, rows.stage)
    return cands if rows.index is None else cands[rows.index]
