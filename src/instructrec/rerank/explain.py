"""Readable, explained answers: what a person sees of a recommendation.

Per item: a readable title ("Usual Suspects, The" -> "The Usual Suspects (1995)"), year,
genres (or the item's category / brand / price band), a calibrated score in [0, 1] and a short
reason ("matches Comedy, 1990s; similar to Fargo (1996), which you liked"). Per answer: what
the instruction was understood as ("Comedy, 1990s, not Horror"; "nothing understood" when the
parser reads no attribute), how many unseen items match it, and a message when fewer than
asked for match or remain.

Calibrated score (`win_rate`): the probability that the model prefers the item to another
candidate it considered for this request, averaged over those candidates. The reranker is
trained with a listwise softmax, so its scores are logits and, under that (Plackett-Luce)
model, item i is preferred to item j with probability sigmoid(s_i - s_j) (Bradley-Terry).
An item with more of the stated attributes is always preferred (probability 1), as the answer
orders it; pairs the model did not both score (the retriever-order tail of a request without
an instruction, or a recommender without a reranker, whose retriever scores are not logits)
count by order (1, 0, or 1/2 for a tie). The score follows the answer's order, it does not
depend on the raw score's offset (raw scores of 8, 45 and 82 on different requests become
comparable), and the raw score stays in ``raw_score``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .candidates import DENSE, MATCHED, unit_hits

NOTHING = "nothing understood"


@dataclass
class Recommendation:
    """One recommended item, explained."""

    item_id: str  # raw id of the dataset
    title: str  # readable title, with the year when known ("The Usual Suspects (1995)")
    rank: int  # 1 = best
    score: float  # calibrated, in [0, 1] (module docstring)
    raw_score: float  # the model's (or the retriever's) own score
    year: int | None = None
    genres: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)  # category, brand, price band
    reason: str = ""  # "matches Comedy; similar to X, which you liked"
    matches: list[str] = field(default_factory=list)  # stated attributes the item has


@dataclass
class Answer:
    """A ranked, explained answer to one request (`Recommender.answer`)."""

    items: list[Recommendation]
    instruction: str | None = None
    understood: str | None = None  # None without an instruction; NOTHING when none parsed
    n_matching: int | None = None  # unseen items matching the parsed instruction
    message: str | None = None  # fewer matches / fewer items than asked for
    parsed: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per item (item_id, title, year, genres, score, rank, reason, raw_score);
        the request-level fields go into ``frame.attrs``."""
        frame = pd.DataFrame(
            {
                "item_id": [r.item_id for r in self.items],
                "title": [r.title for r in self.items],
                "year": pd.array([r.year for r in self.items], dtype="Int64"),
                "genres": [", ".join(r.genres) for r in self.items],
                "score": np.array([r.score for r in self.items], np.float64),
                "rank": np.array([r.rank for r in self.items], np.int64),
                "reason": [r.reason for r in self.items],
                "raw_score": np.array([r.raw_score for r in self.items], np.float64),
            }
        )
        frame.attrs.update(
            {
                "instruction": self.instruction,
                "understood": self.understood,
                "n_matching": self.n_matching,
                "message": self.message,
            }
        )
        return frame

    def to_dict(self) -> dict:
        """JSON-ready (the API's and the CLI's shape)."""
        return {
            "instruction": self.instruction,
            "understood": self.understood,
            "n_matching": self.n_matching,
            "message": self.message,
            "items": [asdict(r) for r in self.items],
        }


# ---------------------------------------------------------------------- items
def readable_titles(dataset) -> np.ndarray:
    """Readable titles of every item, article first and the year appended when known."""
    from ..instructions import display_title, item_attributes

    base = display_title(dataset)
    year = item_attributes(dataset).year
    out = np.empty(len(base), object)
    for i, (t, y) in enumerate(zip(base, year, strict=True)):
        out[i] = f"{t} ({y})" if y > 0 and not str(t).endswith(f"({y})") else str(t)
    return out


def item_facts(dataset, item: int) -> tuple[int | None, list[str], dict[str, str]]:
    """(year, genres, other attributes) of one internal item id."""
    from ..instructions import item_attributes
    from ..instructions.attributes import PRICE_BANDS

    a = item_attributes(dataset)
    year = int(a.year[item]) if a.year[item] > 0 else None
    genres = [a.genre_names[g] for g in a.genre_idx[a.genre_ptr[item] : a.genre_ptr[item + 1]]]
    other: dict[str, str] = {}
    if a.category[item] >= 0:
        other["category"] = a.category_names[a.category[item]]
    if a.brand[item] >= 0:
        other["brand"] = a.brand_names[a.brand[item]]
    if a.price_band[item] >= 0:
        other["price"] = PRICE_BANDS[a.price_band[item]]
    return year, genres, other


# ---------------------------------------------------------------------- the instruction
def unit_label(key: str, cond: dict) -> str:
    """How one stated attribute reads: "Comedy", "1990s", "1995", "Nintendo"."""
    if key.startswith("genre:"):
        return key[len("genre:") :]
    if key == "decade":
        return f"{int(cond['decade'])}s"
    return str(next(iter(cond.values())))


def understood(parsed: dict | None) -> str:
    """What the instruction was read as: "Comedy, 1990s, not Horror" ("Comedy or Romance"
    when several genres are asked for); `NOTHING` when the parse is empty."""
    if not parsed:
        return NOTHING
    parts = []
    if parsed.get("genres"):
        parts.append(" and ".join(parsed["genres"]))
    if parsed.get("genres_any"):
        parts.append(" or ".join(parsed["genres_any"]))
    if "decade" in parsed:
        parts.append(f"{int(parsed['decade'])}s")
    for key in ("year", "category", "brand", "price_band"):
        if key in parsed:
            parts.append(str(parsed[key]))
    ex = parsed.get("excluded") or {}
    for key in ("genres", "categories", "brands", "years"):
        parts += [f"not {v}" for v in ex.get(key, ())]
    parts += [f"not {int(v)}s" for v in ex.get("decades", ())]
    return ", ".join(parts) or NOTHING


# ---------------------------------------------------------------------- scores
def win_rate(
    scores: np.ndarray,
    grade: np.ndarray,
    logits: np.ndarray | bool = True,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Calibrated scores in [0, 1] of one row (module docstring). ``logits``: which entries
    are model logits (bool or (K,) mask); pairs not both logits count by order. ``rows``:
    only these entries' scores (an answer shows its top n of K candidates: n x K, not K x K)."""
    s = np.nan_to_num(np.asarray(scores, np.float64), nan=-1e30, neginf=-1e30, posinf=1e30)
    g = np.asarray(grade, np.float64)
    k = len(s)
    r = np.arange(k) if rows is None else np.asarray(rows, np.int64)
    if k <= 1:
        return np.ones(len(r))
    lg = np.broadcast_to(np.asarray(logits, bool), (k,))
    d = s[r, None] - s[None, :]
    step = (d > 0) + 0.5 * (d == 0)
    with np.errstate(over="ignore"):
        sig = 1.0 / (1.0 + np.exp(-np.clip(d, -60, 60)))
    p = np.where(lg[r, None] & lg[None, :], sig, step)
    p = np.where(g[r, None] == g[None, :], p, (g[r, None] > g[None, :]).astype(np.float64))
    p[np.arange(len(r)), r] = 0.0  # an item is not compared with itself
    return p.sum(axis=1) / (k - 1)


# ---------------------------------------------------------------------- reasons
def similarity_function(
    retrievers, reranker=None, n_items: int | None = None
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """``f(items (m,), history (h,)) -> (m, h)`` item-item similarity: item-kNN's similarity
    matrix (co-occurrence: the most readable "similar to"), else the cosine of a retriever's
    item embeddings (SASRec), else the reranker's item vectors; None when there is none."""
    for r in retrievers:
        sim = getattr(r, "sim", None)
        if sim is not None and hasattr(sim, "tocsr"):
            sim = sim.tocsr()
            # rows first (CSR row slices are cheap), then the history's columns densely
            return lambda items, hist, sim=sim: sim[items].toarray()[:, hist]
    for r in retrievers:
        e = r.item_embeddings() if hasattr(r, "item_embeddings") else None
        if e is not None and (n_items is None or len(e) >= n_items):
            e = np.asarray(e[-n_items:] if n_items else e, np.float32)
            e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)
            return lambda items, hist, e=e: e[items] @ e[hist].T
    model = getattr(getattr(reranker, "scorer", None), "model", None)
    if model is not None and hasattr(model, "item_vecs"):
        v = model.item_vecs
        v = v if isinstance(v, np.ndarray) else v.detach().cpu().numpy()
        return lambda items, hist, v=v: v[items] @ v[hist].T
    return None


def reasons(
    dataset,
    items: np.ndarray,
    grade: np.ndarray,
    source: np.ndarray,
    parsed: dict,
    history: np.ndarray,
    liked: np.ndarray | None,
    similar: Callable | None,
    titles: np.ndarray,
) -> tuple[list[str], list[list[str]]]:
    """(reason, matched attribute labels) per item. ``liked``: the history items the user
    rated well (None: no ratings, every history item counts as "watched")."""
    from ..instructions import domain_words

    items = np.asarray(items, np.int64)
    keys, hits = unit_hits(dataset, parsed, items)
    u = {k: c for k, c in zip(keys, _conditions(parsed), strict=True)}
    labels = [unit_label(k, u[k]) for k in keys]
    pool = np.asarray(history if liked is None or not len(liked) else liked, np.int64)[-50:]
    verb = (
        "you liked"
        if liked is not None and len(liked)
        else f"you {domain_words(dataset)['consumed']}"
    )
    near = sims = None
    if similar is not None and len(pool) and len(items):
        sim = np.asarray(similar(items, pool), np.float64)
        near, sims = pool[sim.argmax(axis=1)], sim.max(axis=1)
    out, matched = [], []
    for j in range(len(items)):
        parts = []
        have = [lab for lab, h in zip(labels, hits[:, j], strict=True) if h]
        if grade[j] < 0:
            parts.append("has something you ruled out (too few other items)")
        elif have:
            parts.append("matches " + ", ".join(have))
        elif labels:
            parts.append("closest to the request (too few items match it)")
        elif source[j] & DENSE and not source[j] & MATCHED:
            parts.append("close to the words of the request")
        if near is not None and sims[j] > 0:
            parts.append(f"similar to {titles[near[j]]}, which {verb}")
        if not len(history):
            parts.append("popular")
        out.append("; ".join(parts) or "fits your history")
        matched.append(have)
    return out, matched


def _conditions(parsed: dict) -> list[dict]:
    from .candidates import units

    return list(units(parsed).values())


def message(
    parsed: dict | None,
    instruction: str | None,
    n: int,
    returned: int,
    n_matching: int | None,
    noun: tuple[str, str],
) -> str | None:
    """The answer's note to the user, or None when everything asked for was found; ``noun``:
    the domain's (singular, plural)."""
    notes = []
    what = understood(parsed)
    if instruction and not parsed:
        notes.append(
            "the request names no attribute the catalogue knows (genre, decade, year, ...): "
            "ranked by the model's reading of its words"
        )
    elif instruction and n_matching is not None and 0 <= n_matching < n:
        if n_matching == 0:
            notes.append(f"no unseen {noun[0]} matches {what!r}; these are the closest")
        elif n_matching == 1:
            notes.append(f"only 1 unseen {noun[0]} matches {what!r}; the rest are the closest")
        else:
            notes.append(
                f"only {n_matching} unseen {noun[1]} match {what!r}; the rest are the closest"
            )
    if returned < n:
        notes.append(
            f"only {returned} unseen {noun[1 if returned != 1 else 0]} to offer ({n} asked for)"
        )
    return "; ".join(notes) or None


# ---------------------------------------------------------------------- one answer
def explain_answer(rec, cset, scores, raw, head: int, n: int, hist, uid: int, text) -> Answer:
    """The `Answer` of a `Recommender` (``rec``) for the one row of ``cset``: ``scores`` order
    the candidates within a match grade (`candidates.rank_order`); the first ``head`` are
    reranker logits (the rest retriever order); ``raw`` are the scores reported."""
    from ..instructions import domain_noun
    from .candidates import rank_order

    parsed = cset.parsed[0]
    valid = cset.valid[0]
    grade = cset.grade[0]
    order = rank_order(np.asarray(scores)[None, :], cset.grade, cset.valid, bool(parsed))[0]
    order = order[valid[order]]
    win = np.zeros(len(scores))
    logits = np.arange(len(scores)) < head
    top = order[:n]
    pos = np.cumsum(valid) - 1  # position of each valid candidate among the valid ones
    win[top] = win_rate(np.asarray(scores)[valid], grade[valid], logits[valid], rows=pos[top])
    items = cset.items[0, top]
    ds = rec.dataset
    cache = rec.__dict__.setdefault("_explain_cache", {})
    if "titles" not in cache:
        cache["titles"] = readable_titles(ds)
        cache["item_ids"] = ds.item_ids
        cache["similar"] = similarity_function(
            [rec.retriever, *rec.priors], rec.reranker, ds.n_items
        )
    titles, item_ids = cache["titles"], cache["item_ids"]
    why, matched = reasons(
        ds, items, grade[top], cset.source[0, top], parsed, np.asarray(hist, np.int64),
        liked_history(ds, uid, hist, cache), cache["similar"], titles,
    )  # fmt: skip
    out = []
    for r, (j, it) in enumerate(zip(top, items, strict=True)):
        year, genres, other = item_facts(ds, int(it))
        out.append(
            Recommendation(
                str(item_ids[it]),
                str(titles[it]),
                r + 1,
                float(win[j]),
                float(raw[j]),
                year,
                genres,
                other,
                why[r],
                matched[r],
            )  # fmt: skip
        )
    n_match = int(cset.n_matching[0]) if parsed else None
    noun = domain_noun(ds)
    return Answer(
        out,
        text,
        understood(parsed) if text else None,
        n_match,
        message(parsed, text, n, len(out), n_match, noun),
        parsed,
    )


def liked_history(dataset, uid: int, hist, cache: dict | None = None) -> np.ndarray | None:
    """The history items a known user rated well (None without ratings or for a request
    that is not a known user's: every history item then counts). ``cache``: a dict kept
    with the dataset, holding every user's liked items after the first call."""
    from ..data.dataset import LIKED_RATING

    liked = None if cache is None else cache.get("liked")
    if liked is None:
        inter = dataset.interactions
        if "rating" not in inter or not inter["rating"].notna().any():
            liked = {}
        else:
            good = inter[inter["rating"] >= LIKED_RATING]
            u = good["user"].to_numpy(np.int64)
            it = good["item"].to_numpy(np.int64)
            order = np.argsort(u, kind="stable")
            users, starts = np.unique(u[order], return_index=True)
            liked = dict(zip(users.tolist(), np.split(it[order], starts[1:]), strict=True))
            liked["rated"] = True
        if cache is not None:
            cache["liked"] = liked
    if uid < 0 or not liked:
        return None
    mine = liked.get(int(uid), np.empty(0, np.int64))
    return np.asarray(hist)[np.isin(hist, mine)]
