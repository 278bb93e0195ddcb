"""Item titles as a person would write them, and the domain's noun ("movie", "item").

MovieLens-100K stores titles library-style, article last: "Usual Suspects, The". Models read
"The Usual Suspects". `display_title` moves the article back (also inside a parenthesised
alternative title) and makes repeated titles distinct by appending the year (or a counter).
Computed once per item table (vectorised pandas string ops) and cached by identity.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from instructrec.data.dataset import Dataset

ARTICLES = "The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El|Los|Las|Det|Den|Lo|Une|Un"
_MAIN = rf"^(?P<body>.+?), (?P<art>{ARTICLES})(?P<rest>\s*\(.*\))?$"
_PAREN = rf"\((?P<body>[^()]+?), (?P<art>{ARTICLES})\)"
_CACHE: dict[int, tuple[weakref.ref, int, np.ndarray]] = {}


def fix_articles(titles: pd.Series) -> pd.Series:
    """ "Usual Suspects, The" -> "The Usual Suspects" (vectorised, regex)."""
    s = titles.astype(str).str.strip()
    # elided articles (L') join without a space; the others take one
    s = s.str.replace(_MAIN.replace(ARTICLES, "L'"), r"\g<art>\g<body>\g<rest>", regex=True)
    s = s.str.replace(_MAIN, r"\g<art> \g<body>\g<rest>", regex=True)
    s = s.str.replace(_PAREN.replace(ARTICLES, "L'"), r"(\g<art>\g<body>)", regex=True)
    return s.str.replace(_PAREN, r"(\g<art> \g<body>)", regex=True)


def display_title(dataset: Dataset) -> np.ndarray:
    """Readable, unique titles for every internal item id (object array of str)."""
    items = dataset.items
    hit = _CACHE.get(id(items))
    if hit is not None and hit[0]() is items and hit[1] == len(items):
        return hit[2]
    s = fix_articles(items["title"])
    dup = s.duplicated(keep=False)
    if dup.any() and "year" in items.columns:
        year = pd.to_numeric(items["year"], errors="coerce")
        has = dup & year.notna().to_numpy()
        s = s.where(~has, s + " (" + year.astype("Int64").astype(str) + ")")
    dup = s.duplicated(keep=False)
    if dup.any():
        k = s.groupby(s).cumcount() + 1
        s = s.where(~dup | (k == 1), s + " #" + k.astype(str))
    out = s.to_numpy(dtype=object)
    _CACHE[id(items)] = (weakref.ref(items), len(items), out)
    weakref.finalize(items, _CACHE.pop, id(items), None)  # drop with the frame
    return out


def domain_noun(dataset: Dataset) -> tuple[str, str]:
    """(singular, plural) noun for the dataset's items: meta["noun"] or a guess from its name."""
    noun = dataset.meta.get("noun") if isinstance(dataset.meta, dict) else None
    if not noun:
        name = (dataset.name or "").lower()
        noun = (
            "movie" if any(k in name for k in ("ml-", "movielens", "movie", "netflix")) else "item"
        )
    return noun, dataset.meta.get("nouns", noun + "s") if isinstance(
        dataset.meta, dict
    ) else noun + "s"
