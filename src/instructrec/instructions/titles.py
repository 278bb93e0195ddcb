"""Item titles as a person would write them, and the domain's words ("movie", "watched").

MovieLens-100K stores titles library-style, article last: "Usual Suspects, The". Models read
"The Usual Suspects". `display_title` moves the article back (also inside a parenthesised
alternative title) and makes repeated titles distinct by appending the year (or a counter).
Computed once per item table (vectorised pandas string ops) and cached by identity.

`domain_words` gives the template fields that depend on what the items are (`DOMAIN_FIELDS`):
{noun} "movie", {nouns} "movies", {Noun} "Movie", {a_noun} "a movie", {consumed} "watched"
and {consume} "watch" for MovieLens; "item", "items", "Item", "an item", "tried", "try" for a
dataset that says nothing (``dataset.meta`` keys "noun", "nouns", "a_noun", "verbs" override).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd

from instructrec.data.dataset import Dataset
from instructrec.data.errors import DataError

ARTICLES = "The|A|An|Les|La|Le|L'|Il|Das|Der|Die|El|Los|Las|Det|Den|Lo|Une|Un"
_MAIN = rf"^(?P<body>.+?), (?P<art>{ARTICLES})(?P<rest>\s*\(.*\))?$"
_PAREN = rf"\((?P<body>[^()]+?), (?P<art>{ARTICLES})\)"
_CACHE: dict[int, tuple[weakref.ref, int, np.ndarray]] = {}
# template fields filled from the dataset's domain (see `domain_words`)
DOMAIN_FIELDS = ("noun", "nouns", "Noun", "a_noun", "consumed", "consume")
# (past / past participle, base form) of "to consume one item", by noun. The past form must
# serve both "The user has watched ..." and "A user who watched ...".
VERBS = {
    **dict.fromkeys(("movie", "film", "show", "series", "episode", "video"), ("watched", "watch")),
    **dict.fromkeys(("book", "novel", "comic"), ("read", "read")),
    **dict.fromkeys(("song", "track", "album", "podcast"), ("listened to", "listen to")),
    "game": ("played", "play"),
}
NEUTRAL_VERBS = ("tried", "try")  # "The user has tried these items ... will the user try next?"


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


def _meta(dataset: Dataset) -> dict:
    return dataset.meta if isinstance(dataset.meta, dict) else {}


def domain_verbs(dataset: Dataset) -> tuple[str, str]:
    """(past, base) verb for using one of the dataset's items: ("watched", "watch") for movies.

    ``dataset.meta["verbs"]`` (a pair such as ``["bought", "buy"]``; the past form must also
    read as a past participle: "has bought") overrides; otherwise the noun decides (movies,
    books, songs, games) and any other noun gets the neutral ("tried", "try").
    """
    return _verbs(domain_noun(dataset)[0], _meta(dataset).get("verbs"))


def _verbs(noun: str, given=None) -> tuple[str, str]:
    if given is None:
        return VERBS.get(noun.strip().lower(), NEUTRAL_VERBS)
    if isinstance(given, dict):
        given = (given.get("consumed"), given.get("consume"))
    if (
        isinstance(given, str)
        or not isinstance(given, list | tuple)
        or len(given) != 2
        or not all(isinstance(v, str) and v.strip() for v in given)
    ):
        raise DataError(
            f'dataset.meta["verbs"] must be a pair [past, base] such as ["bought", "buy"], '
            f"not {given!r}"
        )
    return str(given[0]).strip(), str(given[1]).strip()


def domain_words_for(
    noun: str, nouns: str | None = None, verbs=None, a_noun: str | None = None
) -> dict[str, str]:
    """The `DOMAIN_FIELDS` values for a noun (``verbs``: an explicit [past, base] pair)."""
    nouns = nouns or noun + "s"
    consumed, consume = _verbs(noun, verbs)
    if not a_noun:
        a_noun = ("an " if noun[:1].lower() in ("a", "e", "i", "o", "u") else "a ") + noun
    return {
        "noun": noun,
        "nouns": nouns,
        "Noun": noun[:1].upper() + noun[1:],
        "a_noun": a_noun,
        "consumed": consumed,
        "consume": consume,
    }


def domain_words(dataset: Dataset) -> dict[str, str]:
    """Template field -> text for the fields that depend on the domain (`DOMAIN_FIELDS`).

    MovieLens: {noun} movie, {nouns} movies, {Noun} Movie, {a_noun} a movie, {consumed}
    watched, {consume} watch. ``dataset.meta`` may set "noun", "nouns", "a_noun" (for nouns
    the a/an rule gets wrong: "a utensil") and "verbs" (see `domain_verbs`).
    """
    noun, nouns = domain_noun(dataset)
    meta = _meta(dataset)
    return domain_words_for(noun, nouns, meta.get("verbs"), meta.get("a_noun"))


def item_nouns(dataset: Dataset, items: np.ndarray) -> tuple[list[str], np.ndarray]:
    """What each item is called: the domain noun ("game"), or the item's ``kind`` where the
    table has one and it differs ("accessory": "an xbox 360 accessory", not "game")."""
    noun = domain_noun(dataset)[0]
    table = dataset.items
    if "kind" not in table.columns or len(items) == 0:
        return [noun], np.zeros(len(items), np.int64)
    kind = table["kind"].astype(object).where(table["kind"].notna(), noun)
    kind = kind.map(lambda v: str(v).strip().lower() or noun).to_numpy(object)[items]
    codes, uniques = pd.factorize(pd.Series(kind, dtype=object))
    return [str(x) for x in uniques], codes.astype(np.int64)


def brand_phrase_of(dataset: Dataset) -> str:
    """How an intention names an item's brand column: meta["brand_phrase"] or "by {}"."""
    phrase = dataset.meta.get("brand_phrase") if isinstance(dataset.meta, dict) else None
    return str(phrase) if phrase and "{}" in str(phrase) else "by {}"
