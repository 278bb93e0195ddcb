"""The vectorised instruction builder: an InstructionSet (DataFrame) from a dataset and split.

InstructRec (Zhang et al. 2023, Sec. 3.3) fine-tunes on instructions generated from the
interaction log in many formats: every (preference, intention, task) slot, several templates
per slot, plus reverse tasks (item -> a request it answers). `build` makes them for one stage:

- train: targets are each user's last ``per_user`` training interactions, the history the
  (at most 20) items strictly before each; negatives are uniform unseen items.
- valid / test: the split's rows, histories before them, candidates from the saved files.

Every column is computed with numpy over all rows; text comes from `render_rows`, which
assembles bytes without a per-row Python loop. Deterministic for a seed.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from instructrec.data.dataset import DISLIKED_RATING, LIKED_RATING, Dataset
from instructrec.data.errors import DataError
from instructrec.data.negatives import sample_negatives
from instructrec.data.split import CANDIDATE_SETS, HISTORY_LEN, Split

from .catalogue import Slot, Template, TemplateCatalogue
from .derive import derive_intentions
from .preferences import derive_preferences
from .render import RowData, _take_ragged, render_rows, slot_seed
from .titles import display_title

COLUMNS = (
    "user",
    "target",
    "history",
    "candidates",
    "label",
    "instruction",
    "query",
    "answer",
    "template_id",
    "P",
    "I",
    "T",
    "held_out",
    "stage",
    "intention",
    "preference",
)
SEASONS = (
    "winter",
    "winter",
    "spring",
    "spring",
    "spring",
    "summer",
    "summer",
    "summer",
    "autumn",
    "autumn",
    "autumn",
    "winter",
)


@dataclass
class _Rows:
    """Base rows of a stage: one per target interaction."""

    user: np.ndarray
    target: np.ndarray
    rating: np.ndarray
    ts: np.ndarray
    hist_flat: np.ndarray
    hist_counts: np.ndarray
    seq_items: np.ndarray  # the visible log, sorted by (user, time, order)
    seq_ratings: np.ndarray
    pref_start: np.ndarray  # row r's prior interactions: seq[pref_start[r]:pref_end[r]]
    pref_end: np.ndarray
    cand: np.ndarray  # (n, k) target in column 0
    review: np.ndarray | None

    @property
    def n(self) -> int:
        return len(self.user)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    u = frame["user"].to_numpy()
    t = frame["timestamp"].to_numpy()
    o = frame["order"].to_numpy()
    same = u[1:] == u[:-1]
    ok = np.all(u[1:] >= u[:-1]) and np.all(
        ~same | (t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (o[1:] > o[:-1]))
    )
    if ok:
        return frame
    return frame.iloc[np.lexsort((o, t, u))]


_KEYS: dict[int, tuple[weakref.ref, int, np.ndarray]] = {}


def _seen_keys(dataset: Dataset) -> np.ndarray:
    """Sorted distinct ``user * n_items + item`` keys (for negative sampling), cached."""
    inter = dataset.interactions
    hit = _KEYS.get(id(inter))
    if hit is not None and hit[0]() is inter and hit[1] == len(inter):
        return hit[2]
    k = np.sort(
        inter["user"].to_numpy(np.int64) * dataset.n_items + inter["item"].to_numpy(np.int64)
    )
    k = k[np.r_[True, k[1:] != k[:-1]]] if len(k) else k
    _KEYS[id(inter)] = (weakref.ref(inter), len(inter), k)
    weakref.finalize(inter, _KEYS.pop, id(inter), None)  # drop with the frame
    return k


def _negatives(dataset: Dataset, users: np.ndarray, n_neg: int, seed: int) -> np.ndarray:
    return sample_negatives(dataset, users, n_neg, seed, keys=_seen_keys(dataset))


def _windows(starts: np.ndarray, ends: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices and counts of [max(start, end - max_len), end) per row."""
    lo = np.maximum(starts, ends - max_len)
    counts = (ends - lo).astype(np.int64)
    idx = np.repeat(lo - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(int(counts.sum()))
    return idx, counts


def _base_rows(
    dataset: Dataset, split: Split, stage: str, per_user: int, cand_name: str, seed: int
) -> _Rows:
    parts = [split.train] + ([split.valid] if stage == "test" else [])
    vis = _sorted(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0])
    v_user = vis["user"].to_numpy(np.int64)
    v_item = vis["item"].to_numpy(np.int64)
    v_rate = vis["rating"].to_numpy(np.float32)
    v_ts = vis["timestamp"].to_numpy(np.float64)
    has_review = "review" in vis.columns
    n_neg = CANDIDATE_SETS.get(cand_name, 9) if cand_name else 9
    if stage == "train":
        counts = np.bincount(v_user, minlength=dataset.n_users)
        ustart = np.r_[0, np.cumsum(counts)[:-1]]
        pos = np.arange(len(v_user))
        from_end = (ustart + counts)[v_user] - pos - 1
        # each user's last `per_user` training items that have at least one item before them
        pick = np.flatnonzero((from_end < per_user) & (pos > ustart[v_user]))
        user, target = v_user[pick], v_item[pick]
        start, end = ustart[user], pick
        rating, ts = v_rate[pick], v_ts[pick]
        review = vis["review"].to_numpy(object)[pick] if has_review else None
        neg = _negatives(dataset, user.astype(np.int32), n_neg, seed + 7919)
        cand = np.concatenate([target[:, None], neg.astype(np.int64)], axis=1)
    else:
        frame = split.frame(stage)
        user = frame["user"].to_numpy(np.int64)
        target = frame["item"].to_numpy(np.int64)
        rating = frame["rating"].to_numpy(np.float32)
        ts = frame["timestamp"].to_numpy(np.float64)
        review = frame["review"].to_numpy(object) if "review" in frame.columns else None
        start = np.searchsorted(v_user, user, side="left")
        end = np.searchsorted(v_user, user, side="right")
        saved = split.candidates.get(cand_name, {}).get(stage) if cand_name else None
        if saved is not None:
            cand = np.asarray(saved, np.int64)
            if len(cand) != len(user) or not np.array_equal(cand[:, 0], target):
                raise DataError(
                    f"candidate file {cand_name}.{stage} does not match the split's "
                    f"{stage} rows (target must be column 0)"
                )
        else:
            neg = _negatives(dataset, user.astype(np.int32), n_neg, seed + 7919)
            cand = np.concatenate([target[:, None], neg.astype(np.int64)], axis=1)
    idx, hcounts = _windows(start, end, HISTORY_LEN)
    return _Rows(
        user, target, rating, ts, v_item[idx], hcounts, v_item, v_rate, start, end, cand, review
    )


def _context(ts: np.ndarray) -> np.ndarray:
    """'It is a winter evening.' from timestamps (UTC seconds); '' when not plausible dates."""
    out = np.full(len(ts), "", dtype=object)
    ok = ts > 1e8
    if ok.any():
        dt = ts[ok].astype("datetime64[s]")
        month = dt.astype("datetime64[M]").astype(np.int64) % 12
        hour = dt.astype("datetime64[h]").astype(np.int64) % 24
        part = np.select(
            [hour < 5, hour < 12, hour < 17, hour < 22],
            ["night", "morning", "afternoon", "evening"],
            "night",
        )
        season = np.asarray(SEASONS, dtype=object)[month]
        art = np.where(season == "autumn", "an ", "a ").astype(object)
        out[ok] = "It is " + art + season + " " + part.astype(object) + ". "
    return out


def _select(cat: TemplateCatalogue, templates, stage: str) -> dict[Slot, list[Template]]:
    chosen = cat.select(templates)
    if stage == "train" and any(t.held_out for t in chosen):
        bad = [t.id for t in chosen if t.held_out][:5]
        raise ValueError(
            f"held-out templates are never used for training: {bad}; use "
            f"templates='seen' for stage='train'"
        )
    by_slot: dict[Slot, list[Template]] = {}
    for t in chosen:
        by_slot.setdefault(t.slot, []).append(t)
    return by_slot


def build(
    dataset: Dataset,
    split: Split,
    stage: str = "train",
    slots: list[Slot] | None = None,
    candidates: str | None = "cand10",
    templates: str | list[str] = "seen",
    seed: int = 0,
    per_user: int = 1,
    teacher=None,
    context: bool = False,
    catalogue: TemplateCatalogue | None = None,
) -> pd.DataFrame:
    """Build the InstructionSet of ``stage`` (see the module docstring and COLUMNS).

    ``slots``: list of (P, I, T) (default: every slot of the chosen templates; reverse "R"
    tasks only for training). ``candidates``: the candidate set for T3 ("cand10", "cand20";
    None = 9 sampled negatives). ``templates``: "seen", "held_out", "all" or ids. ``teacher``:
    an object with ``preferences(prompts)`` / ``intentions(...)`` (see `teacher.TeacherLLM`)
    that rewrites P2 and I1 texts. ``context``: prefix a time-of-day/season sentence.
    """
    if stage not in ("train", "valid", "test"):
        raise DataError(f"stage must be 'train', 'valid' or 'test', not {stage!r}")
    if per_user < 1:
        raise DataError(f"per_user must be >= 1, got {per_user}")
    if candidates is not None and candidates not in CANDIDATE_SETS:
        raise DataError(
            f"candidates must be one of {sorted(CANDIDATE_SETS)} or None, not {candidates!r}"
        )
    cat = catalogue or TemplateCatalogue.default()
    by_slot = _select(cat, templates, stage)
    if slots is None:
        slots = [s for s in by_slot if s[2] != "R" or stage == "train"]
    else:
        slots = [tuple(s) for s in slots]
        missing = [s for s in slots if s not in by_slot]
        if missing:
            raise DataError(f"no template in {templates!r} for slot(s) {missing}")
    rows = _base_rows(dataset, split, stage, per_user, candidates, seed)
    need = {s[0] for s in slots} | {s[1] for s in slots}
    texts: dict[str, np.ndarray] = {}
    attrs: dict[str, list] = {}
    for kind in ("I1", "I2"):
        if kind in need:
            rev = rows.review if kind == "I1" else None
            t, a = derive_intentions(dataset, rows.target, kind, seed, reviews=rev)
            texts[kind], attrs[kind] = np.asarray(t, dtype=object), a
    if "P2" in need:
        texts["P2"] = derive_preferences(
            dataset, rows.seq_items, rows.seq_ratings, rows.pref_start, rows.pref_end, seed
        )
    if teacher is not None:
        texts = teacher.rewrite(dataset, rows, texts)
    ctx = _context(rows.ts) if context else None
    # shared per-row columns, made once for all slots
    for key in [k for k in texts if not k.startswith("_")]:
        texts["_pa_" + key] = pa.array(texts[key], pa.large_string())
    texts["_titles"] = pa.array(display_title(dataset), pa.large_string())
    bounds = np.r_[0, np.cumsum(rows.hist_counts)]
    flat32 = rows.hist_flat.astype(np.int32)
    hist = np.empty(rows.n, dtype=object)
    hist[:] = [flat32[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
    texts["_hist"] = hist
    frames = [
        _build_slot(dataset, rows, slot, by_slot[slot], texts, ctx, stage, seed) for slot in slots
    ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.concat(frames, ignore_index=True)


def _build_slot(
    dataset: Dataset,
    rows: _Rows,
    slot: Slot,
    tpls: list[Template],
    texts: dict,
    ctx,
    stage: str,
    seed: int,
) -> pd.DataFrame:
    p, i, task = slot
    n = rows.n
    ok = np.ones(n, bool)
    if p == "P1":
        ok &= rows.hist_counts > 0
    if p == "P2":
        ok &= texts["P2"] != ""
    if i != "I0":
        ok &= texts[i] != ""
    r = np.flatnonzero(ok)
    m = len(r)
    rng = np.random.default_rng(slot_seed(seed, slot, stage))
    choice = rng.integers(0, len(tpls), m)
    by_tpl = np.argsort(choice, kind="stable")  # rows grouped by template: no reorder later
    r, choice = r[by_tpl], choice[by_tpl]
    target = rows.target[r]
    label = np.full(m, np.nan, np.float32)
    empty = np.empty(0, np.int32)
    if task == "T3":
        cand = rows.cand[r]
        perm = np.argsort(rng.random(cand.shape), axis=1)
        cand = np.take_along_axis(cand, perm, axis=1)
    elif task == "T1":
        pair = rows.cand[r, :2]
        flip = rng.random(m) < 0.5
        cand = np.where(flip[:, None], pair[:, ::-1], pair)
    elif task == "T0":
        rt = rows.rating[r]
        lab = np.where(
            np.isnan(rt) | (rt >= LIKED_RATING), 1.0, np.where(rt <= DISLIKED_RATING, 0.0, np.nan)
        )
        use_target = ~np.isnan(lab) & (rng.random(m) < 0.5)
        target = np.where(use_target, target, rows.cand[r, 1])
        label = np.where(use_target, lab, 0.0).astype(np.float32)
        cand = target[:, None]
    else:
        cand = np.empty((m, 0), np.int64)
    hf, hc = _take_ragged(rows.hist_flat, rows.hist_counts, r)
    if p == "P0":
        hf, hc = hf[:0], np.zeros(m, np.int64)
    intention = texts[i][r] if i != "I0" else np.full(m, "", dtype=object)
    preference = texts["P2"][r] if p == "P2" else np.full(m, "", dtype=object)
    data = RowData(
        dataset,
        m,
        hf,
        hc,
        cand.reshape(-1),
        np.full(m, cand.shape[1], np.int64),
        intention=intention,
        preference=preference,
        item=target,
        context=None if ctx is None else ctx[r],
    )
    instr, query = render_rows(data, tpls, choice, with_candidates=True)
    if task == "T0":
        answer = pa.array(np.where(label > 0.5, "Yes", "No"), pa.large_string())
    elif task == "R":
        answer = texts["_pa_" + i].take(pa.array(r))
    else:
        answer = texts["_titles"].take(pa.array(target))
    cand_obj = np.empty(m, dtype=object)
    cand_obj[:] = list(cand.astype(np.int32)) if cand.shape[1] else [empty] * m
    hist_obj = texts["_hist"][r] if p != "P0" else np.full(m, None, object)
    if p == "P0":
        hist_obj[:] = [empty] * m
    ids = pa.array([t.id for t in tpls], pa.large_string()).take(pa.array(choice))
    held = np.array([t.held_out for t in tpls], bool)[choice]
    blank = pa.array([""], pa.large_string()).take(pa.array(np.zeros(m, np.int64)))
    return pd.DataFrame(
        {
            "user": rows.user[r].astype(np.int32),
            "target": target.astype(np.int32),
            "history": hist_obj,
            "candidates": cand_obj,
            "label": label,
            "instruction": _str(instr),
            "query": _str(query),
            "answer": _str(answer),
            "template_id": _str(ids),
            "P": p,
            "I": i,
            "T": task,
            "held_out": held,
            "stage": stage,
            "intention": _str(texts["_pa_" + i].take(pa.array(r)) if i != "I0" else blank),
            "preference": _str(texts["_pa_P2"].take(pa.array(r)) if p == "P2" else blank),
        }
    )


def _str(arr: pa.Array) -> pd.Series:
    """A pandas "str" Series over an Arrow string array (no copy)."""
    return pd.Series(pa.chunked_array([arr]), dtype=pd.StringDtype(na_value=np.nan))
