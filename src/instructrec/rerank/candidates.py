"""Instruction-aware candidates: the items the reranker orders for one request.

A retriever's top N follows the history. A request outside the user's usual taste ("a film
noir" from a comedy fan) asks for items the history alone never surfaces, so reordering the
retriever's top N cannot answer it. The candidate set of a request with an instruction is the
union of

1. the first stage's top ``depth`` unseen items (the retriever; popularity for a request
   without any history);
2. the unseen catalogue items that best match the attributes parsed from the instruction
   (`instructions.parse_intention`: genres, decade, year, category, brand), over the WHOLE
   catalogue: graded by the fraction of stated attributes an item has (`match_grades`), the
   best ``n_match`` by grade, then by first-stage score;
3. dense retrieval with the reranker's query tower: the ``n_dense`` unseen items whose
   vectors v_i score highest against the instruction, <W q, v_i> (the instruction-item term
   of the reranker's head, `instructrec.models.heads`), over all item vectors;

minus every item the user has seen. Nothing is padded: a catalogue with fewer unseen items
than asked for gives fewer candidates (rows of a batch are padded for the arrays, and the
padding is marked invalid). `rank_order` then sorts a row by (match grade, model score): every
item with more of the stated attributes comes before any item with fewer, the model orders
items within a grade, and an item with a value the instruction rules out comes last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEPTH = 200  # first-stage items in the candidate set of a request with an instruction
N_MATCH = 200  # catalogue items best matching the parsed instruction
N_DENSE = 100  # items nearest the query tower's vector
CHUNK = 256  # rows per all-item scoring batch
RETRIEVED, MATCHED, DENSE = 1, 2, 4  # `CandidateSet.source` bit flags


@dataclass
class CandidateSet:
    """Candidates of ``n`` requests as (n, K) arrays; row i's valid items are
    ``items[i][valid[i]]`` (distinct, none seen), in the order retrieved, matched, dense."""

    items: np.ndarray  # (n, K) int64 internal item ids (padding repeats a row's first item)
    valid: np.ndarray  # (n, K) bool, False on padding
    grade: np.ndarray  # (n, K) float32 fraction of the parsed attributes the item has;
    #                    -1 when it has a value the instruction rules out; 0 when none parsed
    source: np.ndarray  # (n, K) uint8 bit flags RETRIEVED | MATCHED | DENSE
    base: np.ndarray  # (n, K) float32 first-stage score (retriever, popularity w/o history)
    parsed: list[dict]  # per row: `parse_intention` of its instruction ({} when none)
    n_matching: np.ndarray  # (n,) unseen catalogue items matching the parse (-1: none parsed)
    n_unseen: np.ndarray  # (n,) catalogue items the row's user has not seen

    def row(self, i: int) -> np.ndarray:
        """The valid candidates of row ``i``."""
        return self.items[i][self.valid[i]]


def units(parsed: dict) -> dict[str, dict]:
    """One single-attribute condition per stated attribute, each genre its own ("a drama and
    romance movie": drama, romance); ``excluded`` is not a unit (it sinks items instead)."""
    out: dict[str, dict] = {}
    for key, val in (parsed or {}).items():
        if key == "excluded":
            continue
        if key in ("genres", "genres_any"):
            for g in val:
                out[f"genre:{g}"] = {"genres": [g]}
        else:
            out[key] = {key: val}
    return out


def unit_hits(dataset, parsed: dict, items: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(unit keys, (U, m) bool): which stated attribute each item has."""
    from ..instructions import intention_matches

    items = np.asarray(items, np.int64)
    u = units(parsed)
    if not u:
        return [], np.zeros((0, len(items)), bool)
    hits = np.stack([intention_matches(dataset, [c], items[None])[0] for c in u.values()])
    return list(u), hits


def match_grades(
    dataset, parsed: dict, items: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(grade, match) over ``items`` (default: the whole catalogue): grade = fraction of the
    stated attributes each item has (-1 with an excluded value; 0 everywhere when nothing is
    parsed); match = satisfies the parse as `instructions.intention_matches` reads it
    (``genres_any``: one of the genres; every other attribute; no excluded value)."""
    from ..instructions import intention_excluded, intention_matches

    items = np.arange(dataset.n_items) if items is None else np.asarray(items, np.int64)
    grade = np.zeros(len(items), np.float32)
    match = np.zeros(len(items), bool)
    if not parsed:
        return grade, match
    _, hits = unit_hits(dataset, parsed, items)
    if len(hits):
        grade = hits.mean(axis=0).astype(np.float32)
        match = intention_matches(dataset, [parsed], items[None])[0]
    else:  # only exclusions ("no horror"): every item without an excluded value matches
        match = np.ones(len(items), bool)
    if parsed.get("excluded"):
        ex = intention_excluded(dataset, [parsed], items[None])[0]
        grade = np.where(ex, np.float32(-1.0), grade)
        match &= ~ex
    return grade, match


def dense_scores(
    reranker, histories: Sequence[np.ndarray], intentions: Sequence[str], templates=None
) -> np.ndarray | None:
    """(n, n_items) instruction-item scores of the reranker's text side, or None when the
    reranker has none. A reranker may offer ``instruction_item_scores(histories, intentions,
    templates)``; else its scorer's ``instruction_item_scores(texts)`` reads the rendered
    queries (what `score_candidates` reads): the encoder scorers' <W q, v_i>, q the query
    tower's vector, W the head's query projection, v_i every item's vector (text + projected
    attributes and CF embeddings; `EncoderScorer`, `NumpyEncoderScorer`)."""
    hook = getattr(reranker, "instruction_item_scores", None)
    if callable(hook):
        return np.asarray(hook(histories, intentions, templates), np.float32)
    by_text = getattr(getattr(reranker, "scorer", None), "instruction_item_scores", None)
    if not callable(by_text) or not hasattr(reranker, "queries"):
        return None
    texts = reranker.queries(
        [np.asarray(h, np.int64) for h in histories], list(intentions), templates
    )
    return np.asarray(by_text(texts), np.float32)


def _top(key: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest finite entries of ``key``, best first (fewer if fewer)."""
    ok = np.flatnonzero(np.isfinite(key))
    if k <= 0 or len(ok) == 0:
        return np.empty(0, np.int64)
    if len(ok) > k:
        ok = ok[np.argpartition(-key[ok], k - 1)[:k]]
    return ok[np.argsort(-key[ok], kind="stable")]


def _percentile(x: np.ndarray) -> np.ndarray:
    """Rank of each entry among the finite ones, in [0, 1) (ties by position)."""
    order = np.argsort(np.nan_to_num(x, nan=-np.inf, posinf=np.inf), kind="stable")
    out = np.empty(len(x), np.float64)
    out[order] = np.arange(len(x)) / max(len(x), 1)
    return out


def instruction_candidates(
    dataset,
    retriever,
    users: np.ndarray,
    histories: Sequence[np.ndarray],
    intentions: Sequence[str | None] | None = None,
    *,
    seen: Sequence[np.ndarray] | None = None,
    reranker=None,
    templates=None,
    depth: int = DEPTH,
    n_match: int = N_MATCH,
    n_dense: int = N_DENSE,
    popularity: np.ndarray | None = None,
) -> CandidateSet:
    """The candidate sets of a batch of requests (module docstring). ``seen``: the items to
    leave out per row (default: ``histories``; pass empty arrays to keep seen items);
    ``popularity`` (n_items,): the first-stage score of rows with an empty history (the
    retriever has nothing to go on there); ``reranker``: the dense channel's text side (None,
    or a reranker without one: no dense channel). Without an intention a row is the
    retriever's top ``depth`` unseen items."""
    from ..instructions.parse import parse_intention

    users = np.asarray(users, np.int64)
    n, n_items = len(users), int(dataset.n_items)
    seen = histories if seen is None else seen
    texts = [str(t).strip() if t else "" for t in (intentions or [None] * n)]
    parsed = {t: (parse_intention(dataset, t) if t else {}) for t in set(texts)}
    graded = {t: match_grades(dataset, p) for t, p in parsed.items() if p and n_match > 0}
    counted = {t: match_grades(dataset, p)[1] for t, p in parsed.items() if p and t not in graded}
    rows: list[tuple] = []
    for s in range(0, n, CHUNK):
        sl = slice(s, min(s + CHUNK, n))
        hs = [np.asarray(h, np.int64) for h in histories[sl]]
        base = np.asarray(retriever.score_all(users[sl], hs), np.float32).copy()
        if popularity is not None:
            empty = np.array([len(h) == 0 for h in hs])
            base[empty] = np.asarray(popularity, np.float32)[None, :]
        base = np.nan_to_num(base, nan=-np.inf)
        dense = None
        if reranker is not None and n_dense > 0 and any(texts[sl]):
            dense = dense_scores(reranker, hs, [t or "" for t in texts[sl]], templates)
            if dense is not None and dense.shape[1] != n_items:
                dense = None  # a vector cache of another catalogue: no dense channel
        for r in range(sl.stop - sl.start):
            i = s + r
            unseen = np.ones(n_items, bool)
            unseen[np.asarray(seen[i], np.int64)] = False
            b = np.where(unseen, base[r], -np.inf)
            parts = [_top(np.where(np.isfinite(b), b, -np.inf), depth)]
            flags = [RETRIEVED]
            text = texts[i]
            if text in graded:
                g, _ = graded[text]
                key = np.where(unseen & (g > 0), g + 1e-3 * _percentile(b), -np.inf)
                parts.append(_top(key, n_match))
                flags.append(MATCHED)
            if dense is not None and text:
                parts.append(_top(np.where(unseen, dense[r], -np.inf), n_dense))
                flags.append(DENSE)
            allp = np.concatenate(parts).astype(np.int64)
            src = np.zeros(n_items, np.uint8)
            for p, f in zip(parts, flags, strict=True):
                src[p] |= f
            _, first = np.unique(allp, return_index=True)
            union = allp[np.sort(first)]
            if text in graded:
                g_row = graded[text][0][union]
                match = graded[text][1]
            else:
                g_row = np.zeros(len(union), np.float32)
                match = counted.get(text)
            n_match_row = int((match & unseen).sum()) if match is not None else -1
            rows.append((union, g_row, src[union], b[union], n_match_row, int(unseen.sum())))
    return _pack(rows, [parsed[t] for t in texts])


def given_candidates(
    dataset,
    retriever,
    user: int,
    history: np.ndarray,
    items: np.ndarray,
    intention: str | None = None,
    seen: np.ndarray | None = None,
    popularity: np.ndarray | None = None,
) -> CandidateSet:
    """A one-row `CandidateSet` of the caller's own ``items`` (internal ids; duplicates and
    ``seen`` items dropped, order kept), graded against ``intention``."""
    from ..instructions.parse import parse_intention

    history = np.asarray(history, np.int64)
    items = np.asarray(items, np.int64)
    _, first = np.unique(items, return_index=True)
    items = items[np.sort(first)]
    seen = history if seen is None else np.asarray(seen, np.int64)
    items = items[~np.isin(items, seen)]
    text = str(intention).strip() if intention else ""
    parsed = parse_intention(dataset, text) if text else {}
    if len(history) == 0 and popularity is not None:
        base = np.asarray(popularity, np.float32)[items]
    else:
        base = np.asarray(retriever.score(np.array([user]), items[None, :], [history]))[0]
    grade, match = match_grades(dataset, parsed, items)
    row = (items, grade, np.full(len(items), RETRIEVED, np.uint8), base, -1, len(items))
    if parsed:
        row = (*row[:4], int(match.sum()), len(items))
    return _pack([row], [parsed])


def _pack(rows: list[tuple], parsed: list[dict]) -> CandidateSet:
    n = len(rows)
    k = max([len(r[0]) for r in rows] + [0])
    items = np.zeros((n, k), np.int64)
    valid = np.zeros((n, k), bool)
    grade = np.zeros((n, k), np.float32)
    source = np.zeros((n, k), np.uint8)
    base = np.full((n, k), -np.inf, np.float32)
    for i, (u, g, src, b, _, _) in enumerate(rows):
        m = len(u)
        if m:
            items[i] = u[0]
            items[i, :m], valid[i, :m], grade[i, :m], source[i, :m], base[i, :m] = u, 1, g, src, b
    return CandidateSet(
        items,
        valid,
        grade,
        source,
        base,
        parsed,
        np.array([r[4] for r in rows], np.int64),
        np.array([r[5] for r in rows], np.int64),
    )


def rank_order(
    scores: np.ndarray, grade: np.ndarray, valid: np.ndarray, match_first: bool = True
) -> np.ndarray:
    """(n, K) column order, best first: by match grade (when ``match_first``), then by
    ``scores``; padding last. Ties keep the candidate order."""
    s = np.where(valid, np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf), -np.inf)
    g = np.where(valid, grade if match_first else 0.0, -np.inf)
    pos = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    return np.lexsort((pos, -s, -g), axis=-1)


def score_request(rec, uid: int, hist, text, n: int, given=None, seen=None, template=None):
    """Candidates and scores of one `Recommender` request: (cset, scores, raw, head).

    ``given`` (internal ids): rank only those; else with an instruction ``text`` the
    instruction-aware set (the retriever's top ``DEPTH``, ``N_MATCH`` matching
    items, ``N_DENSE`` dense ones), all scored by the reranker; without one the retriever's
    top ``max(n, rec.rerank_depth)`` unseen items, the first ``rec.rerank_depth`` reranked
    and the rest kept in retriever order below them (``head``: how many were reranked).
    ``scores`` order items within a match grade; ``raw`` are the model's own scores."""
    users = np.array([max(uid, 0)])
    hist = np.asarray(hist, np.int64)
    seen = hist if seen is None else seen
    pop = popularity(rec)
    if given is not None:
        cset = given_candidates(rec.dataset, rec.retriever, users[0], hist, given, text, seen, pop)
    else:
        wide = text is not None
        cset = instruction_candidates(
            rec.dataset, rec.retriever, users, [hist], [text],
            seen=[seen], reranker=rec.reranker if wide else None, templates=template,
            depth=max(n, DEPTH if wide else rec.rerank_depth),
            n_match=N_MATCH if wide else 0, popularity=pop,
        )  # fmt: skip
    k = cset.items.shape[1]
    raw = cset.base[0].astype(np.float64)
    scores, head = raw, 0
    if rec.reranker is not None and k:
        head = k if (text or given is not None) else min(rec.rerank_depth, k)
        rs = rec.score_candidates(
            users, cset.items[:, :head], [hist], [text] if text else None, template
        )[0].astype(np.float64)
        tail = raw[head:]
        top = tail[np.isfinite(tail)].max() if np.isfinite(tail).any() else 0.0
        raw = np.concatenate([rs, tail])  # the reranked head above the retriever-order tail
        scores = np.concatenate([rs - rs.min() + 1.0 + top, tail])
    return cset, scores, raw, head


def popularity(rec) -> np.ndarray:
    """(n_items,) how often each item occurs in ``rec``'s serving histories: the first stage
    of a request without any history (cached on ``rec``)."""
    pop = rec.__dict__.get("_popularity")
    if pop is None or len(pop) != rec.dataset.n_items:
        seqs = [np.asarray(v, np.int64) for v in rec.sequences.values()]
        flat = np.concatenate(seqs) if seqs else np.empty(0, np.int64)
        pop = np.bincount(flat, minlength=rec.dataset.n_items).astype(np.float32)
        rec.__dict__["_popularity"] = pop
    return pop
