"""Temporal leave-one-out split and saved candidate files (see shared/EVALUATION.md).

Per user, interactions are ordered by timestamp with ties broken by the row order of the
source file (never by item id: sorting ties by id leaks the test item). The last interaction
is test, the one before validation, the rest training. Users with fewer than 3 interactions
stay in training only.

Candidate files hold, per evaluated row, the target in column 0 followed by negatives drawn
uniformly, with a fixed seed, from items the user never interacted with (anywhere in the
log). They are written once next to the split, with a SHA-256 of each file in
``split.json``; `load_split` verifies those hashes so every model sees the same file (the
split folder: `instructrec.data.split_files`).
`add_ranked_candidates` makes a file from a precomputed ranking instead (the `hard`
protocol: negatives from a first-stage retriever's top 50, InstructRec Table 9); any file
made elsewhere is registered with `set_candidates`, with a JSON note saying how it was made.

Cold items (A-LLMRec's cold-item setting): ``cold_fraction`` of the items that occur in the
log (default 5%, fixed seed) lose ALL their training interactions; their validation and test
interactions stay, so rows whose target is cold measure what a model does without
collaborative signal. The set is saved as ``cold_items.npy``; splits saved before it existed
load with an empty set.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .dataset import Dataset, sort_order
from .errors import DataError
from .negatives import sample_negatives, seen_keys, seen_mask

HISTORY_LEN = 20  # items of history shown to a model, most recent, oldest first
CANDIDATE_SETS = {"cand10": 9, "cand20": 19}  # name -> number of negatives
COLD_FRACTION = 0.05  # share of items whose training interactions are removed (cold items)
STAGES = ("valid", "test")  # the evaluated stages, each with its own candidate files
_SEQ_COLUMNS = ("user", "item", "timestamp", "order")


@dataclass
class Split:
    """Train / valid / test interaction frames (rows of ``Dataset.interactions``) plus candidates.

    ``candidates[name][stage]`` is an int32 array (n_rows, 1 + negatives): target first. Row i
    belongs to ``valid.iloc[i]`` or ``test.iloc[i]``.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    n_items: int
    seed: int = 0
    candidates: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    # items with every training interaction removed (sorted internal ids; empty: none)
    cold_items: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    # candidate file name -> stage -> how that file was made (saved as NAME.note.json)
    notes: dict[str, dict[str, dict]] = field(default_factory=dict)

    def frame(self, stage: str) -> pd.DataFrame:
        if stage not in ("train", "valid", "test"):
            raise ValueError(f"stage must be train, valid or test, not {stage!r}")
        return getattr(self, stage)

    def sequences(self, stage: str) -> dict[int, np.ndarray]:
        """Per user, the item sequence (oldest first) visible before ``stage``'s targets.

        ``valid``: the training items; ``test``: training items plus the validation item;
        ``train``: the training items (what a deployed model knows at serving time is
        ``sequences("serve")``: everything).
        """
        parts = [self.train]
        if stage in ("test", "serve"):
            parts.append(self.valid)
        if stage == "serve":
            parts.append(self.test)
        cols = {c: np.concatenate([p[c].to_numpy() for p in parts]) for c in _SEQ_COLUMNS}
        if len(cols["user"]) == 0:
            return {}
        idx = sort_order(cols)
        users, items = cols["user"][idx], cols["item"][idx]
        bounds = np.flatnonzero(users[1:] != users[:-1]) + 1
        starts, ends = np.r_[0, bounds], np.r_[bounds, len(users)]
        # plain slicing (views): about 3x faster than np.split at 1M users
        return {
            u: items[s:e]
            for u, s, e in zip(users[starts].tolist(), starts.tolist(), ends.tolist(), strict=True)
        }

    def histories(self, stage: str, max_len: int = HISTORY_LEN) -> list[np.ndarray]:
        """For each row of ``valid``/``test``, the last ``max_len`` items before it, oldest first."""
        seqs = self.sequences(stage)
        empty = np.empty(0, np.int32)
        return [seqs.get(int(u), empty)[-max_len:] for u in self.frame(stage)["user"].to_numpy()]

    def seen(self, stage: str = "test") -> dict[int, np.ndarray]:
        """Items each user interacted with before ``stage``'s targets (to exclude from ranking)."""
        return self.sequences(stage)


def choose_cold_items(dataset: Dataset, fraction: float, seed: int = 0) -> np.ndarray:
    """``round(fraction * m)`` of the ``m`` items that occur in the log, uniformly, fixed seed."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(f"cold_fraction must be in [0, 1), got {fraction}")
    present = np.unique(dataset.interactions["item"].to_numpy(np.int64))
    n_cold = int(fraction * len(present) + 0.5)
    rng = np.random.default_rng([seed, 0xC01D])
    return np.sort(rng.choice(present, n_cold, replace=False)).astype(np.int32)


def leave_one_out(dataset: Dataset, seed: int = 0, cold_fraction: float = COLD_FRACTION) -> Split:
    """Temporal leave-one-out split of ``dataset`` (no candidates yet: see `add_candidates`).

    ``cold_fraction`` of the items (`choose_cold_items`, seeded by ``seed``) lose all their
    training interactions; validation and test rows are the same whatever the fraction.
    """
    cold = choose_cold_items(dataset, cold_fraction, seed)
    inter = dataset.sorted_interactions()
    users = inter["user"].to_numpy()
    n = len(inter)
    # position from the end within each user's sequence: 0 = last
    is_new = np.r_[True, users[1:] != users[:-1]]
    starts = np.flatnonzero(is_new)
    counts = np.diff(np.r_[starts, n])
    ends = np.repeat(starts + counts, counts)
    from_end = ends - np.arange(n) - 1
    eligible = np.repeat(counts >= 3, counts)
    test_mask = eligible & (from_end == 0)
    valid_mask = eligible & (from_end == 1)
    train = inter[~(test_mask | valid_mask)]
    if len(cold):
        train = train[~np.isin(train["item"].to_numpy(), cold)]
    valid = inter[valid_mask].reset_index(drop=True)
    test = inter[test_mask].reset_index(drop=True)
    return Split(
        train=train.reset_index(drop=True),
        valid=valid,
        test=test,
        n_items=dataset.n_items,
        seed=seed,
        cold_items=cold,
    )


def add_candidates(
    dataset: Dataset, split: Split, sets: dict[str, int] | None = None, seed: int | None = None
) -> Split:
    """Draw candidate files (target + negatives) for valid and test rows, once, with a seed."""
    sets = CANDIDATE_SETS if sets is None else sets
    seed = split.seed if seed is None else seed
    keys = seen_keys(dataset)
    for i, (name, n_neg) in enumerate(sorted(sets.items())):
        split.candidates[name] = {}
        for j, stage in enumerate(STAGES):
            frame = split.frame(stage)
            neg = sample_negatives(
                dataset, frame["user"].to_numpy(), n_neg, seed * 1000 + 10 * i + j, keys=keys
            )
            split.candidates[name][stage] = np.concatenate(
                [frame["item"].to_numpy(np.int32)[:, None], neg], axis=1
            )
    return split


def make_split(
    dataset: Dataset,
    seed: int = 0,
    sets: dict[str, int] | None = None,
    cold_fraction: float = COLD_FRACTION,
) -> Split:
    """Leave-one-out split with candidate files: what every protocol starts from.

    When the dataset names its evaluation users (``dataset.meta["test_users"]``, raw ids: the
    Amazon Games folder lists 6,000), only their validation and test rows are kept (training
    rows stay for every user) before candidates are drawn."""
    split = leave_one_out(dataset, seed, cold_fraction)
    listed = (getattr(dataset, "meta", None) or {}).get("test_users")
    if listed:
        keep = dataset.user_index([str(u) for u in listed])
        for stage in ("valid", "test"):
            frame = split.frame(stage)
            setattr(
                split,
                stage,
                frame[np.isin(frame["user"].to_numpy(), keep)].reset_index(drop=True),
            )
    return add_candidates(dataset, split, sets, seed)


def set_candidates(
    split: Split, name: str, stage: str, cands: np.ndarray, note: dict | None = None
) -> np.ndarray:
    """Register candidate file ``name`` for ``stage`` (target in column 0, one row per row of
    ``split.frame(stage)``), its hash (as `save_split` will write it) and how it was made."""
    if stage not in STAGES:
        raise DataError(f"candidate stage must be one of {STAGES}, not {stage!r}")
    cands = np.ascontiguousarray(cands, dtype=np.int32)
    targets = split.frame(stage)["item"].to_numpy()
    if cands.ndim != 2 or len(cands) != len(targets) or not (cands[:, 0] == targets).all():
        raise DataError(
            f"candidate file {name!r} ({stage}) must hold one row per {stage} row with the "
            f"target in column 0 (got shape {cands.shape} for {len(targets)} rows)"
        )
    split.candidates.setdefault(name, {})[stage] = cands
    split.hashes[f"{name}.{stage}.npy"] = array_sha256(cands)
    if note is not None:
        split.notes.setdefault(name, {})[stage] = dict(note)
    return cands


def add_ranked_candidates(
    split: Split,
    name: str,
    stage: str,
    top: np.ndarray,
    n_neg: int = 9,
    seed: int | None = None,
    *,
    dataset: Dataset | None = None,
    note: dict | None = None,
) -> np.ndarray:
    """Candidate file from a precomputed ranking: per row of ``split.frame(stage)``, the
    target plus ``n_neg`` items drawn uniformly (fixed seed) from that row's ``top`` (n_rows,
    depth), leaving out the target and every item the user interacted with (anywhere in
    ``dataset``'s log when given, else in the split's train/valid/test). Returns the file."""
    frame = split.frame(stage)
    top = np.asarray(top, np.int64)
    if top.ndim != 2 or len(top) != len(frame):
        raise DataError(
            f"ranking for {name!r} must be (n_rows, depth) with n_rows = {len(frame)} "
            f"{stage} rows, got shape {top.shape}"
        )
    seed = split.seed if seed is None else seed
    keys = seen_keys(dataset) if dataset is not None else _split_keys(split)
    users = frame["user"].to_numpy(np.int64)
    seen = seen_mask(keys, users, np.maximum(top, 0), split.n_items)
    ok = (top >= 0) & (top < split.n_items) & ~seen
    ok &= top != frame["item"].to_numpy(np.int64)[:, None]
    short = np.flatnonzero(ok.sum(axis=1) < n_neg)
    if len(short):
        raise DataError(
            f"{stage} row {short[0]} (user {users[short[0]]}) has only "
            f"{int(ok[short[0]].sum())} eligible items in its top {top.shape[1]}: too few for "
            f"{n_neg} negatives of {name!r}"
        )
    rng = np.random.default_rng([seed, 0x4A2D, STAGES.index(stage)])
    r = np.where(ok, rng.random(top.shape), np.inf)
    pick = np.argsort(r, axis=1, kind="stable")[:, :n_neg]
    cands = np.concatenate(
        [frame["item"].to_numpy(np.int64)[:, None], np.take_along_axis(top, pick, axis=1)], axis=1
    )
    made = {"from": "ranking", "depth": int(top.shape[1]), "n_neg": n_neg, "seed": seed}
    return set_candidates(split, name, stage, cands, {**made, **(note or {})})


def _split_keys(split: Split) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of every interaction in the split's frames."""
    frames = [split.train, split.valid, split.test]
    users = np.concatenate([f["user"].to_numpy(np.int64) for f in frames])
    items = np.concatenate([f["item"].to_numpy(np.int64) for f in frames])
    return np.unique(users * np.int64(split.n_items) + items)


def array_sha256(arr: np.ndarray) -> str:
    """SHA-256 of ``arr`` as `np.save` writes it (equal to the saved file's hash)."""
    buf = io.BytesIO()
    np.save(buf, arr)
    return hashlib.sha256(buf.getvalue()).hexdigest()
