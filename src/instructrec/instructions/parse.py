"""Free-text intentions -> structured attributes, for the attribute-filter baseline at serving.

The "retriever + attribute filter" rival of InstructRec's search protocol ranks first the
candidates that match what the user asked for. Offline, `derive_intentions` gives those
attributes directly; a typed request ("a light comedy from the 90s") needs them read back:
genre names and common synonyms ("scary" -> Horror, "kids" -> Children's), decades ("90s",
"1990s", "nineties"), years, and the dataset's own category and brand names. Only values the
dataset knows are returned, so `intention_matches` can use the result as is.
"""

from __future__ import annotations

import re

from instructrec.data.dataset import Dataset

from .attributes import item_attributes

# genre -> words that ask for it (lower case, matched on word starts)
SYNONYMS = {
    "Comedy": ("comed", "funny", "laugh", "hilarious"),
    "Horror": ("horror", "scary", "scare", "frighten", "creepy"),
    "Children's": ("children", "kids", "family"),
    "Animation": ("animat", "cartoon"),
    "Romance": ("romanc", "romantic", "love story", "date night"),
    "Sci-Fi": ("sci-fi", "science fiction", "space", "future", "futuristic"),
    "Thriller": ("thriller", "suspense", "edge of my seat"),
    "Documentary": ("documentar", "true story", "real story"),
    "Western": ("western", "cowboy"),
    "War": ("war ", "war,", "soldier", "battle"),
    "Musical": ("musical", "songs", "sing along"),
    "Mystery": ("myster", "detective", "whodunit", "puzzle"),
    "Crime": ("crime", "gangster", "heist", "criminal"),
    "Action": ("action", "explosions", "adrenaline"),
    "Adventure": ("adventur", "journey", "quest"),
    "Drama": ("drama",),
    "Fantasy": ("fantasy", "magic", "magical"),
    "Film-Noir": ("noir",),
}
WORD_DECADES = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
}
_DECADE = re.compile(r"\b(?:(19|20)(\d)0|'?(\d)0)'?s\b")
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b(?!s)")


def parse_intention(dataset: Dataset, text: str | None) -> dict:
    """Attributes stated in ``text`` ({} when none is recognised); keys as `intention_matches`."""
    if not text or not str(text).strip():
        return {}
    low = " " + str(text).lower() + " "
    attrs = item_attributes(dataset)
    out: dict = {}
    genres = []
    for name in attrs.genre_names:
        words = SYNONYMS.get(name, ()) + (name.lower(),)
        if any(re.search(r"(?<![a-z])" + re.escape(w), low) for w in words):
            genres.append(name)
    if genres:
        out["genres_any"] = genres
    m = _DECADE.search(low)
    if m:
        if m.group(1):
            out["decade"] = int(m.group(1) + m.group(2) + "0")
        else:
            d = int(m.group(3)) * 10
            out["decade"] = 1900 + d if d >= 20 else 2000 + d
    else:
        for word, dec in WORD_DECADES.items():
            if word in low:
                out["decade"] = dec
                break
    y = _YEAR.search(low)
    if y and "decade" not in out:
        out["year"] = int(y.group(1))
    for key, names in (("category", attrs.category_names), ("brand", attrs.brand_names)):
        hits = [
            n
            for n in names
            if len(n) > 2
            and re.search(r"(?<![a-z0-9])" + re.escape(n.lower()) + r"(?![a-z0-9])", low)
        ]
        if hits:
            out[key] = max(hits, key=len)
    return out


def parse_intentions(dataset: Dataset, texts) -> list[dict]:
    """`parse_intention` for each text (None/"" give {})."""
    return [parse_intention(dataset, t) for t in texts]
