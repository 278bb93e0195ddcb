"""Offline derivation of explicit preferences (P2) and intentions (I1 vague, I2 specific).

InstructRec (Zhang et al. 2023, Sec. 3.2) obtains these with a teacher LLM from reviews and
item attributes. Offline we derive them from data, vectorised:

- P2 from the user's ratings BEFORE the target (liked >= 4, disliked <= 2): most liked genres,
  the favourite decade, a disliked genre. Never from the target or anything after it.
- I2 from the target item's attributes (genres, decade or year, category, brand, price band):
  "a 1990s comedy movie". The target always satisfies it.
- I1 from a map of attributes to vague wishes ("Children's" -> "something to watch with the
  kids"), plus a short phrase from the user's review where the data has one.

Each intention also comes as a structured dict (``attrs``) so the "retriever + attribute
filter" baseline can test candidates with `intention_matches`. Texts are generated once per
distinct attribute combination and broadcast, so cost is numpy gathers plus O(#combinations).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from instructrec.data.dataset import Dataset

from .attributes import PRICE_BANDS, ItemAttributes, article, genre_label, item_attributes
from .titles import brand_phrase_of, item_nouns

# genre (lower case) -> (group of genres a vague wish accepts, phrasings)
VAGUE = {
    "children's": (
        ("children's", "animation"),
        ("something to watch with the kids", "something the whole family can enjoy"),
    ),
    "animation": (
        ("animation", "children's"),
        ("something animated and charming", "something to watch with the kids"),
    ),
    "horror": (("horror",), ("something to keep me up at night", "something that will scare me")),
    "comedy": (("comedy",), ("something to make me laugh", "something light and fun")),
    "romance": (("romance",), ("something for a date night", "something romantic and sweet")),
    "action": (
        ("action", "adventure"),
        ("something with lots of excitement", "an adrenaline rush"),
    ),
    "adventure": (
        ("adventure", "action"),
        ("an exciting journey somewhere far away", "something with lots of excitement"),
    ),
    "thriller": (
        ("thriller", "mystery", "crime"),
        ("something that keeps me on the edge of my seat", "something tense and gripping"),
    ),
    "mystery": (
        ("mystery", "thriller", "crime"),
        ("a puzzle to figure out", "something tense and gripping"),
    ),
    "crime": (
        ("crime", "thriller", "mystery"),
        ("a story about criminals and the law", "something gritty"),
    ),
    "drama": (("drama",), ("something moving and emotional", "a story that makes me think")),
    "sci-fi": (
        ("sci-fi", "fantasy"),
        ("something that takes me to another world", "something about the future"),
    ),
    "fantasy": (
        ("fantasy", "sci-fi"),
        ("something magical", "something that takes me to another world"),
    ),
    "war": (("war",), ("a story of courage under fire", "something about soldiers")),
    "western": (("western",), ("something with cowboys and open plains", "a tale of the old west")),
    "documentary": (("documentary",), ("something true to learn from", "a real story")),
    "musical": (("musical",), ("something with great songs", "something to sing along to")),
    "film-noir": (
        ("film-noir",),
        ("something dark and moody from old Hollywood", "a shadowy detective story"),
    ),
}
GENERIC_VAGUE = ("something I would enjoy",)


# ---------------------------------------------------------------------- intentions
def derive_intentions(
    dataset: Dataset,
    items,
    kind: str = "I2",
    seed: int = 0,
    reviews: list[str] | np.ndarray | None = None,
) -> tuple[list[str], list[dict]]:
    """Intention text and structured attributes for each target item.

    ``kind`` "I2" (specific) or "I1" (vague). ``reviews`` (one per item, "" for none) adds a
    short phrase to I1. Returns (texts, attrs); "" and {} where the item has no attribute to
    say anything with. Deterministic for a seed.
    """
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    if kind not in ("I1", "I2"):
        raise ValueError(f"kind must be 'I1' or 'I2', not {kind!r}")
    attrs = item_attributes(dataset)
    rng = np.random.default_rng([seed, 1 if kind == "I1" else 2])
    if kind == "I2":
        texts, dicts = _specific(dataset, attrs, items, rng)
    else:
        texts, dicts = _vague(attrs, items, rng)
        if reviews is not None:
            texts = _with_review_phrase(texts, reviews)
    return list(texts), list(dicts)


def _pick_genre(attrs: ItemAttributes, items: np.ndarray, u: np.ndarray) -> np.ndarray:
    """A uniformly chosen genre index of each item (-1 when it has none)."""
    ng = attrs.genre_count[items]
    k = np.minimum((u * ng).astype(np.int64), np.maximum(ng - 1, 0))
    pos = attrs.genre_ptr[items] + k
    return np.where(
        ng > 0,
        attrs.genre_idx[np.minimum(pos, max(len(attrs.genre_idx) - 1, 0))]
        if len(attrs.genre_idx)
        else -1,
        -1,
    ).astype(np.int64)


def _specific(dataset: Dataset, attrs: ItemAttributes, items: np.ndarray, rng) -> tuple:
    n = len(items)
    u = rng.random((n, 7))
    ng = attrs.genre_count[items]
    g1 = _pick_genre(attrs, items, u[:, 0])
    # a second, different genre for some items with several
    k2 = (u[:, 1] * np.maximum(ng - 1, 1)).astype(np.int64)
    first = np.minimum((u[:, 0] * ng).astype(np.int64), np.maximum(ng - 1, 0))
    pos2 = attrs.genre_ptr[items] + (first + 1 + k2) % np.maximum(ng, 1)
    g2 = np.where(
        (ng >= 2) & (u[:, 2] < 0.3),
        attrs.genre_idx[np.minimum(pos2, max(len(attrs.genre_idx) - 1, 0))]
        if len(attrs.genre_idx)
        else -1,
        -1,
    ).astype(np.int64)
    has_g = g1 >= 0
    dec = attrs.decade[items].astype(np.int64)
    yr = attrs.year[items].astype(np.int64)
    use_time = (dec > 0) & ((u[:, 3] < 0.6) | ~has_g)
    exact = use_time & (u[:, 4] < 0.15)
    dec = np.where(use_time & ~exact, dec, -1)
    yr = np.where(exact, yr, -1)
    cat = attrs.category[items].astype(np.int64)
    cat = np.where((cat >= 0) & ((u[:, 5] < 0.5) | ~has_g), cat, -1)
    brand = attrs.brand[items].astype(np.int64)
    brand = np.where((brand >= 0) & (u[:, 6] < 0.3), brand, -1)
    band = attrs.price_band[items].astype(np.int64)
    band = np.where((band >= 0) & (u[:, 6] > 0.7), band, -1)
    variant = (u[:, 1] < 0.5).astype(np.int64)
    nouns, noun_code = item_nouns(dataset, items)
    cols = [g1, g2, dec, yr, cat, brand, band, variant, noun_code]
    brand_phrase = brand_phrase_of(dataset)
    return _by_combination(
        cols,
        lambda c: _specific_text(attrs, nouns[c[-1]], *c[:-1], brand_phrase=brand_phrase),
    )


def _specific_text(
    attrs: ItemAttributes,
    noun: str,
    g1,
    g2,
    dec,
    yr,
    cat,
    brand,
    band,
    variant,
    brand_phrase: str = "by {}",
):
    d: dict = {}
    genres = [attrs.genre_names[g] for g in (g1, g2) if g >= 0]
    if genres:
        d["genres"] = genres
    words = " and ".join(genre_label(g) for g in genres)
    when = ""
    if dec > 0:
        d["decade"] = int(dec)
        when = f"{dec}s"
    if yr > 0:
        d["year"] = int(yr)
        when = str(yr)
    catname = attrs.category_names[cat] if cat >= 0 else ""
    if catname:
        d["category"] = catname
    if brand >= 0:
        d["brand"] = attrs.brand_names[brand]
    if band >= 0:
        d["price_band"] = PRICE_BANDS[band]
    if not d:
        return "", {}
    head = " ".join(
        w
        for w in (
            PRICE_BANDS[band] if band >= 0 else "",
            words,
            catname.lower() if catname else "",
            noun,
        )
        if w
    )
    if variant == 0 and when and dec > 0:
        phrase = f"{when} {head}"
        phrase = f"{article(phrase)} {phrase}"
    else:
        phrase = f"{article(head)} {head}" + (
            f" from {'the ' if dec > 0 else ''}{when}" if when else ""
        )
    if brand >= 0:
        phrase += " " + brand_phrase.format(attrs.brand_names[brand])
    return phrase, d


def _vague(attrs: ItemAttributes, items: np.ndarray, rng) -> tuple:
    n = len(items)
    u = rng.random((n, 2))
    g = _pick_genre(attrs, items, u[:, 0])
    variant = (u[:, 1] * 2).astype(np.int64)
    return _by_combination([g, variant], lambda c: _vague_text(attrs, *c))


def _vague_text(attrs: ItemAttributes, g, variant):
    if g < 0:
        return GENERIC_VAGUE[0], {}
    name = attrs.genre_names[g]
    group, phrases = VAGUE.get(
        name.lower(), ((name.lower(),), (f"something in the mood of {genre_label(name)}",))
    )
    known = {x.lower(): x for x in attrs.genre_names}
    accept = [known[x] for x in group if x in known] or [name]
    return phrases[variant % len(phrases)], {"genres_any": accept}


def _by_combination(cols: list[np.ndarray], make) -> tuple[np.ndarray, list]:
    """Call ``make`` once per distinct row of ``cols`` and broadcast (texts, attrs)."""
    n = len(cols[0])
    if n == 0:
        return np.empty(0, object), []
    mat = np.stack([np.asarray(c, np.int64) for c in cols], axis=1)
    uniq, inv = np.unique(mat, axis=0, return_inverse=True)
    made = [make(tuple(int(v) for v in row)) for row in uniq]
    texts = np.array([m[0] for m in made], dtype=object)[inv.reshape(-1)]
    dicts = [made[i][1] for i in inv.reshape(-1)]
    return texts, dicts


_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*")


def review_phrase(text: str, max_words: int = 6) -> str:
    """A short phrase from a review (first clause, at most ``max_words`` words), never the whole."""
    if not isinstance(text, str) or not text.strip():
        return ""
    clause = re.split(r"[.!?;:\n]", text.strip(), maxsplit=1)[0]
    words = _WORD.findall(clause)[:max_words]
    if len(words) < 2:
        return ""
    phrase = " ".join(words).lower()
    return phrase if len(phrase) < len(text.strip()) or len(words) <= 4 else ""


def _with_review_phrase(texts: np.ndarray, reviews) -> np.ndarray:
    rev = pd.Series(list(reviews), dtype=object).fillna("").astype(str)
    phrases = rev.map(review_phrase).to_numpy(object)
    out = np.asarray(texts, dtype=object).copy()
    has = np.array([bool(p) for p in phrases])
    out[has] = [
        f'{t}, the kind people describe as "{p}"'
        for t, p in zip(out[has], phrases[has], strict=True)
    ]
    return out


# ---------------------------------------------------------------------- matching
def intention_matches(dataset: Dataset, attrs: list[dict | None], candidates) -> np.ndarray:
    """(n, k) bool: does candidate ``candidates[i, j]`` satisfy intention ``attrs[i]``?

    Keys: ``genres`` (all required), ``genres_any`` (at least one), ``decade``, ``year``,
    ``category``, ``brand``, ``price_band``, and ``excluded`` (as `parse_intention` returns
    it: a candidate with any excluded value does not match, see `intention_excluded`). An
    empty dict or None accepts every item.
    """
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != len(attrs):
        raise ValueError(
            f"candidates must be (n, k) with n = len(attrs) = {len(attrs)}, got shape {cand.shape}"
        )
    a = item_attributes(dataset)
    out = np.ones(cand.shape, bool)
    gidx, cidx, bidx = a.index("genre"), a.index("category"), a.index("brand")
    for key, rows in _rows_by_key([_key(d) for d in attrs]).items():
        if not key:
            continue
        c = cand[rows]
        ok = np.ones(c.shape, bool)
        d = dict(key)
        for g in d.get("genres", ()):
            ok &= a.genre_matrix[c, gidx[g]] if g in gidx else False
        if d.get("genres_any"):
            cols = [gidx[g] for g in d["genres_any"] if g in gidx]
            ok &= a.genre_matrix[c][:, :, cols].any(axis=2) if cols else False
        if "decade" in d:
            ok &= a.decade[c] == int(d["decade"])
        if "year" in d:
            ok &= a.year[c] == int(d["year"])
        if "category" in d:
            ok &= a.category[c] == cidx.get(d["category"], -2)
        if "brand" in d:
            ok &= a.brand[c] == bidx.get(d["brand"], -2)
        if "price_band" in d:
            band = PRICE_BANDS.index(d["price_band"]) if d["price_band"] in PRICE_BANDS else -2
            ok &= a.price_band[c] == band
        if d.get("excluded"):
            ok &= ~_excluded(a, dict(d["excluded"]), c)
        out[rows] = ok
    return out


def intention_excluded(dataset: Dataset, attrs: list[dict | None], candidates) -> np.ndarray:
    """(n, k) bool: does candidate ``candidates[i, j]`` have a value that intention
    ``attrs[i]`` rules out? ``attrs[i]["excluded"]`` as `parse_intention` returns it
    ({"genres": [...], "decades": [...], "years": [...], "categories": [...],
    "brands": [...]}); rows without it give False everywhere."""
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != len(attrs):
        raise ValueError(
            f"candidates must be (n, k) with n = len(attrs) = {len(attrs)}, got shape {cand.shape}"
        )
    out = np.zeros(cand.shape, bool)
    keys = [_key((d or {}).get("excluded")) for d in attrs]
    if not any(keys):
        return out
    a = item_attributes(dataset)
    for key, rows in _rows_by_key(keys).items():
        if key:
            out[rows] = _excluded(a, dict(key), cand[rows])
    return out


def _excluded(a: ItemAttributes, ex: dict, c: np.ndarray) -> np.ndarray:
    """Candidates ``c`` having any value of ``ex`` (unknown values exclude nothing)."""
    hit = np.zeros(c.shape, bool)
    gidx = a.index("genre")
    cols = [gidx[g] for g in ex.get("genres", ()) if g in gidx]
    if cols:
        hit |= a.genre_matrix[c][:, :, cols].any(axis=2)
    for field, values in ((a.decade, ex.get("decades", ())), (a.year, ex.get("years", ()))):
        if len(values):
            hit |= np.isin(field[c], np.asarray([int(v) for v in values])) & (field[c] > 0)
    for field, index, values in (
        (a.category, a.index("category"), ex.get("categories", ())),
        (a.brand, a.index("brand"), ex.get("brands", ())),
    ):
        codes = sorted({index[v] for v in values if v in index})
        if codes:
            hit |= np.isin(field[c], codes)
    return hit


def _rows_by_key(keys: list[tuple]) -> dict[tuple, list[int]]:
    """Row indexes per distinct key: rows with the same intention are checked together."""
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return groups


def _key(d: dict | None) -> tuple:
    if not d:
        return ()
    return tuple(sorted((k, _frozen(v)) for k, v in d.items()))


def _frozen(v):
    if isinstance(v, dict):
        return _key(v)
    return tuple(v) if isinstance(v, list | tuple) else v
