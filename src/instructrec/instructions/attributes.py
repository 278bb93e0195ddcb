"""Item attributes as integer codes, shared by preference and intention derivation.

InstructRec derives explicit preferences (P2) and intentions (I1, I2) from item attributes
(Zhang et al. 2023, Sec. 3.2). Here each attribute family becomes an integer array over
internal item ids, so derivation and matching are numpy gathers instead of per-row Python:
genres (a dense item x genre bool matrix plus a CSR list), year and decade, category, brand
and a price band (tertiles of the known prices). Cached per item table by identity.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import pandas as pd

from instructrec.data.dataset import Dataset

PRICE_BANDS = ("budget", "mid-priced", "premium")
MAX_GENRES = 256  # more distinct genres than this: keep the most frequent
_CACHE: dict[int, tuple[weakref.ref, int, ItemAttributes]] = {}


@dataclass
class ItemAttributes:
    """Integer-coded attributes of every item (-1 = unknown)."""

    genre_names: list[str]  # vocabulary, most frequent first
    genre_matrix: np.ndarray  # (n_items, n_genres) bool
    genre_ptr: np.ndarray  # CSR: genres of item j are genre_idx[genre_ptr[j]:genre_ptr[j+1]]
    genre_idx: np.ndarray
    year: np.ndarray  # int32, -1 unknown
    decade: np.ndarray  # int32 (1990 for 1990-1999), -1 unknown
    category_names: list[str]
    category: np.ndarray  # int32 code into category_names, -1 unknown
    brand_names: list[str]
    brand: np.ndarray  # int32
    price_band: np.ndarray  # int8 index into PRICE_BANDS, -1 unknown
    price_edges: tuple[float, float]  # tertile edges of known prices

    def index(self, kind: str) -> dict[str, int]:
        """{name: code} of ``kind`` ("genre", "category" or "brand"), built once."""
        cache = self.__dict__.setdefault("_index", {})
        if kind not in cache:
            names = getattr(self, f"{kind}_names")
            cache[kind] = {name: k for k, name in enumerate(names)}
        return cache[kind]

    @property
    def n_genres(self) -> int:
        return len(self.genre_names)

    @property
    def genre_count(self) -> np.ndarray:
        return np.diff(self.genre_ptr)


def _codes(col: pd.Series | None, n: int) -> tuple[np.ndarray, list[str]]:
    if col is None:
        return np.full(n, -1, np.int32), []
    s = col.astype(object).where(col.notna(), None)
    s = s.map(lambda v: v if v is None else (str(v).strip() or None))
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    return codes.astype(np.int32), [str(u) for u in uniques]


def item_attributes(dataset: Dataset) -> ItemAttributes:
    """Integer-coded attributes of ``dataset.items`` (cached while the table object lives)."""
    items = dataset.items
    hit = _CACHE.get(id(items))
    if hit is not None and hit[0]() is items and hit[1] == len(items):
        return hit[2]
    n = len(items)
    # genres: a tuple (or list, or a "|"/","-separated string) per item
    if "genres" in items.columns:
        g = items["genres"].map(_as_tuple)
    else:
        g = pd.Series([()] * n, dtype=object)
    counts = g.map(len).to_numpy(np.int64)
    flat = pd.Series([x for t in g for x in t], dtype=object)
    vocab = flat.value_counts(sort=True)
    names = [str(v) for v in vocab.index[:MAX_GENRES]]
    lookup = {name: k for k, name in enumerate(names)}
    idx_all = (
        flat.map(lambda x: lookup.get(x, -1)).to_numpy(np.int64)
        if len(flat)
        else np.empty(0, np.int64)
    )
    row = np.repeat(np.arange(n), counts)
    keep = idx_all >= 0
    row, idx = row[keep], idx_all[keep]
    ptr = np.r_[0, np.cumsum(np.bincount(row, minlength=n))].astype(np.int64)
    matrix = np.zeros((n, len(names)), bool)
    matrix[row, idx] = True
    # year and decade
    if "year" in items.columns:
        y = pd.to_numeric(items["year"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        year = np.where(np.isfinite(y), y, -1).astype(np.int32)
    else:
        year = np.full(n, -1, np.int32)
    decade = np.where(year > 0, year // 10 * 10, -1).astype(np.int32)
    cat, cat_names = _codes(items["category"] if "category" in items.columns else None, n)
    brand, brand_names = _codes(items["brand"] if "brand" in items.columns else None, n)
    band = np.full(n, -1, np.int8)
    edges = (np.nan, np.nan)
    if "price" in items.columns:
        p = pd.to_numeric(items["price"], errors="coerce").to_numpy(np.float64, na_value=np.nan)
        ok = np.isfinite(p) & (p > 0)
        if ok.sum() >= 3:
            edges = tuple(float(e) for e in np.quantile(p[ok], [1 / 3, 2 / 3]))
            band[ok] = np.searchsorted(np.asarray(edges), p[ok], side="right").astype(np.int8)
    out = ItemAttributes(
        names,
        matrix,
        ptr,
        idx.astype(np.int32),
        year,
        decade,
        cat_names,
        cat,
        brand_names,
        brand,
        band,
        edges,
    )
    _CACHE[id(items)] = (weakref.ref(items), n, out)
    weakref.finalize(items, _CACHE.pop, id(items), None)  # drop with the frame
    return out


def _as_tuple(v) -> tuple:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ()
    if isinstance(v, str):
        for sep in ("|", ","):
            if sep in v:
                return tuple(x.strip() for x in v.split(sep) if x.strip())
        return (v.strip(),) if v.strip() else ()
    try:
        return tuple(str(x) for x in v)
    except TypeError:
        return (str(v),)


def genre_label(name: str) -> str:
    """How a genre reads inside a sentence: "Sci-Fi" -> "sci-fi", "Film-Noir" -> "film noir"."""
    low = name.strip().lower()
    return {"film-noir": "film noir", "children": "children's", "animation": "animated"}.get(
        low, low
    )


def article(word: str) -> str:
    """'a' or 'an' for ``word``."""
    return "an" if word[:1].lower() in "aeiou" else "a"
