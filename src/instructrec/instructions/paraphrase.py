"""Intentions in wording the model never saw: a hand-written paraphrase set.

The training intentions and the standard test intentions come from one generator
(`derive_intentions`, InstructRec's attribute-derived I1/I2 requests, Zhang et al. 2023,
Sec. 3.2), so a test request can be matched word for word. The paraphrase set
(``paraphrases/ml100k-v1.yaml``) holds natural requests written by hand without the
generator's phrase tables, the parser's synonyms or the template catalogue (procedure in the
file's header and docs/instructions.md, "Paraphrase set"):

- ``vague`` texts (I1) each keyed to one genre: "got any old cowboy flicks?" -> Western;
- ``specific`` texts (I2) keyed to a genre (sometimes two) and holding one slot: ``{decade}``,
  rendered in the text's ``decade_style`` (short "80s", long "1980s" or word "eighties"), or,
  for data whose items carry a platform (the ``category`` attribute, Amazon Games),
  ``{platform}``, rendered in the text's ``platform_style`` from the file's own ``platforms``
  table (short "PS3", long "PlayStation 3").

One set per domain is packaged (``ml100k-v1.yaml``, ``games-v1.yaml``); `paraphrases_for`
picks the one that names the most of a dataset's genres.

`paraphrase_intentions` answers like `derive_intentions` (texts plus the ``attrs`` dicts that
`intention_matches` and the attribute-filter rival read), drawing for each target a text whose
genres the target has:

    para = paraphrases_for(dataset)           # para.version, para.sha256, para.entries
    texts, attrs = paraphrase_intentions(dataset, targets, kind="I2", seed=0)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from instructrec.data.dataset import Dataset
from instructrec.data.errors import DataError
from instructrec.data.yamlfile import safe_load

from .attributes import item_attributes

KINDS = {"I1": "vague", "I2": "specific"}
DECADE_STYLES = ("short", "long", "word")
DECADE_WORDS = {
    1920: "twenties",
    1930: "thirties",
    1940: "forties",
    1950: "fifties",
    1960: "sixties",
    1970: "seventies",
    1980: "eighties",
    1990: "nineties",
}
PLATFORM_STYLES = ("short", "long")
SLOT_STYLES = {
    "decade": ("decade_style", DECADE_STYLES),
    "platform": ("platform_style", PLATFORM_STYLES),
}
DEFAULT_FILE = "ml100k-v1.yaml"
PACKAGED = ("ml100k-v1.yaml", "games-v1.yaml")  # the first is the default


def render_decade(decade: int, style: str) -> str:
    """``decade`` (1980) as a request writes it: "80s" (short), "1980s" (long) or "eighties"
    (word). Decades outside 1920-1990 have no short or word form here and render long."""
    if style not in DECADE_STYLES:
        raise ValueError(f"decade_style must be one of {DECADE_STYLES}, not {style!r}")
    decade = int(decade)
    if style == "long" or decade not in DECADE_WORDS:
        return f"{decade}s"
    return f"{decade % 100:02d}s" if style == "short" else DECADE_WORDS[decade]


@dataclass(frozen=True)
class Paraphrase:
    """One hand-written request."""

    kind: str  # "vague" (I1) or "specific" (I2)
    genre: str  # the genre the text asks for (the data's spelling, compared case-folded)
    text: str  # the request; specific ones hold one slot, "{decade}" or "{platform}"
    second_genre: str | None = None  # a second genre the text also asks for (specific only)
    decade_style: str | None = None  # short | long | word (a {decade} text)
    platform_style: str | None = None  # short | long (a {platform} text)

    @property
    def genres(self) -> tuple[str, ...]:
        """Every genre the text states."""
        return (self.genre,) + ((self.second_genre,) if self.second_genre else ())

    @property
    def slot(self) -> str | None:
        """The slot the text holds: "decade", "platform", or None (a vague text)."""
        return next((k for k in SLOT_STYLES if "{" + k + "}" in self.text), None)

    def render(self, decade: int | None = None, platform: str | None = None) -> str:
        """The text with its slot filled: ``decade`` (1980) in the text's decade style, or
        ``platform``, the words already chosen for it (`ParaphraseSet.platform_words`); vague
        texts are returned as they are."""
        if self.kind == "vague":
            return self.text
        if self.slot == "platform":
            if platform is None:
                raise ValueError("a {platform} paraphrase needs the platform's words to render")
            return self.text.replace("{platform}", platform)
        if decade is None:
            raise ValueError("a specific paraphrase needs a decade to render")
        return self.text.replace("{decade}", render_decade(decade, self.decade_style or "long"))


@dataclass(frozen=True)
class ParaphraseSet:
    """A versioned paraphrase file: its ``version``, the ``sha256`` of its bytes (for run
    manifests), the ``entries`` and the header fields."""

    version: str
    sha256: str
    entries: tuple[Paraphrase, ...]
    source: str
    author: str = ""
    date: str = ""
    procedure: str = ""
    platforms: dict | None = None  # platform (category value) -> {style: the words for it}

    def of_kind(self, kind: str) -> list[Paraphrase]:
        """Entries of ``kind``: "vague"/"specific" or the intention slot "I1"/"I2"."""
        kind = KINDS.get(kind, kind)
        return [e for e in self.entries if e.kind == kind]

    def platform_words(self, platform: str, style: str) -> str | None:
        """How a request of ``style`` names ``platform`` ("PlayStation 3", "short" -> "PS3");
        None for a platform the file's table lacks."""
        return (self.platforms or {}).get(platform, {}).get(style)

    def genre_names(self) -> set[str]:
        """Every genre an entry states (lower case)."""
        return {g.lower() for e in self.entries for g in e.genres}


def load_paraphrases(path: str | Path | None = None) -> ParaphraseSet:
    """Load and validate a paraphrase file (default: the packaged ``ml100k-v1.yaml``; a bare
    packaged name such as ``"games-v1.yaml"`` loads that one unless a file of that name is
    here).

    Raises `DataError` naming the file and the entry on a missing field, an unknown kind or
    slot style, a specific text without exactly one ``{decade}`` or ``{platform}`` slot (or a
    vague one with a slot), a ``{platform}`` text in a file without a ``platforms`` table, or
    a duplicate text.
    """
    if path is None or (str(path) in PACKAGED and not Path(path).is_file()):
        name = str(path) if path is not None else DEFAULT_FILE
        data = resources.files("instructrec.instructions").joinpath("paraphrases", name)
        raw_bytes, where = data.read_bytes(), f"instructrec/instructions/paraphrases/{name}"
    else:
        p = Path(path)
        if not p.is_file():
            raise DataError("paraphrase file not found", source=str(p))
        raw_bytes, where = p.read_bytes(), str(p)
    try:
        raw = safe_load(raw_bytes.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise DataError(f"not valid YAML: {e}", source=where) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("entries"), list):
        raise DataError("expected a mapping with `version` and an `entries:` list", source=where)
    if not raw.get("version"):
        raise DataError("the file lacks a `version`", source=where, column="version")
    platforms = _platforms(raw.get("platforms"), where)
    entries, seen = [], set()
    for n, e in enumerate(raw["entries"]):
        entries.append(_entry(e, n, where))
        key = " ".join(entries[-1].text.lower().split())
        if key in seen:
            raise DataError(f"entry #{n}: duplicate text {entries[-1].text!r}", source=where)
        if entries[-1].slot == "platform" and not platforms:
            raise DataError(
                f"entry #{n}: a {{platform}} text needs the file's `platforms:` table",
                source=where,
            )
        seen.add(key)
    return ParaphraseSet(
        version=str(raw["version"]),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        entries=tuple(entries),
        source=where,
        author=str(raw.get("author", "")),
        date=str(raw.get("date", "")),
        procedure=str(raw.get("procedure", "")),
        platforms=platforms,
    )


def _platforms(raw, where: str) -> dict | None:
    """The ``platforms:`` table: platform -> {short: words, long: words}, both non-empty."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise DataError("`platforms:` must map each platform to its words", source=where)
    out = {}
    for name, forms in raw.items():
        if not isinstance(forms, dict) or set(forms) != set(PLATFORM_STYLES):
            raise DataError(
                f"platform {name!r}: give exactly {list(PLATFORM_STYLES)}", source=where,
                column="platforms",
            )  # fmt: skip
        if not all(isinstance(v, str) and v.strip() for v in forms.values()):
            raise DataError(f"platform {name!r}: empty words", source=where, column="platforms")
        out[str(name)] = {k: str(v) for k, v in forms.items()}
    return out


def _entry(e, n: int, where: str) -> Paraphrase:
    if not isinstance(e, dict):
        raise DataError(f"entry #{n} is not a mapping", source=where)
    for key in ("kind", "genre", "text"):
        if not e.get(key):
            raise DataError(f"entry #{n} lacks `{key}`", source=where, column=key)
    kind, text = str(e["kind"]), str(e["text"])
    style_keys = {key for key, _ in SLOT_STYLES.values()}
    unknown = set(e) - {"kind", "genre", "text", "second_genre"} - style_keys
    if unknown:
        raise DataError(f"entry #{n}: unknown keys {sorted(unknown)}", source=where)
    if kind not in KINDS.values():
        raise DataError(f"entry #{n}: kind must be vague or specific, not {kind!r}", source=where)
    slots = re.findall(r"\{([^}]*)\}", text)
    styles = {key: e[key] for key in style_keys if e.get(key)}
    if kind == "specific":
        if len(slots) != 1 or slots[0] not in SLOT_STYLES:
            raise DataError(
                f"entry #{n}: a specific text needs one {{decade}} or {{platform}} slot",
                source=where,
            )
        key, allowed = SLOT_STYLES[slots[0]]
        if styles.get(key) not in allowed or set(styles) != {key}:
            raise DataError(
                f"entry #{n}: a {{{slots[0]}}} text needs {key} one of {allowed} (and no other"
                f" style), not {styles or None!r}",
                source=where,
                column=key,
            )
    elif slots or styles or e.get("second_genre"):
        raise DataError(
            f"entry #{n}: a vague text has no slot, style or second_genre", source=where
        )
    second = e.get("second_genre")
    return Paraphrase(
        kind,
        str(e["genre"]),
        text,
        str(second) if second else None,
        styles.get("decade_style"),
        styles.get("platform_style"),
    )


def paraphrase_intentions(
    dataset: Dataset,
    items,
    kind: str = "I2",
    seed: int = 0,
    paraphrases: ParaphraseSet | None = None,
) -> tuple[list[str], list[dict | None]]:
    """A hand-written intention and its structured attributes for each target item.

    Same contract as `derive_intentions`: ``kind`` "I1" (vague) or "I2" (specific); returns
    (texts, attrs), one per item, deterministic for a seed. Each item gets a text of the set
    (``paraphrases``, default `paraphrases_for(dataset)`) whose genres it has, chosen
    uniformly among its genres the set covers, then uniformly among that genre's texts; an I2
    text has the item's decade (or platform) rendered in the text's style. ``attrs`` states
    what the text says, in `intention_matches`' keys: I1 ``{"genres_any": [genre]}``, I2
    ``{"genres": [genre(s)], "decade": 1980}`` or ``{"genres": [...], "category": "Wii"}``.
    Items the set cannot describe (no covered genre; for I2 no year, or no platform the
    file names) get "" and None.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'I1' or 'I2', not {kind!r}")
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    para = paraphrases if paraphrases is not None else paraphrases_for(dataset)
    a = item_attributes(dataset)
    known = {g.lower(): g for g in a.genre_names}
    options_of = _options(dataset, para, kind)
    rng = np.random.default_rng([int(seed), 11 if kind == "I1" else 12])
    u = rng.random((len(items), 2))
    texts: list[str] = []
    attrs: list[dict | None] = []
    for r, item in enumerate(items):
        options = options_of(int(item))
        if not options:
            texts.append("")
            attrs.append(None)
            continue
        genres = list(options)
        g = genres[min(int(u[r, 0] * len(genres)), len(genres) - 1)]
        e = options[g][min(int(u[r, 1] * len(options[g])), len(options[g]) - 1)]
        if kind == "I1":
            texts.append(e.render())
            attrs.append({"genres_any": [g]})
        elif e.slot == "platform":
            platform = a.category_names[int(a.category[item])]
            texts.append(e.render(platform=para.platform_words(platform, e.platform_style)))
            attrs.append({"genres": [known[x.lower()] for x in e.genres], "category": platform})
        else:
            decade = int(a.decade[item])
            texts.append(e.render(decade))
            attrs.append({"genres": [known[x.lower()] for x in e.genres], "decade": decade})
    return texts, attrs


def _options(dataset: Dataset, para: ParaphraseSet, kind: str):
    """item -> {genre: the entries of ``kind`` that can describe it} (genres in the dataset's
    order; empty when the set cannot describe the item), memoised per item."""
    a = item_attributes(dataset)
    known = {g.lower(): g for g in a.genre_names}
    by_genre: dict[str, list[Paraphrase]] = {}
    for e in para.of_kind(kind):
        if all(g.lower() in known for g in e.genres):
            by_genre.setdefault(known[e.genre.lower()], []).append(e)

    def usable(e: Paraphrase, item: int) -> bool:
        if e.slot == "decade":
            return int(a.decade[item]) > 0
        if e.slot == "platform":
            c = int(a.category[item])
            return c >= 0 and para.platform_words(a.category_names[c], e.platform_style) is not None
        return True

    memo: dict[int, dict[str, list[Paraphrase]]] = {}

    def options(item: int) -> dict[str, list[Paraphrase]]:
        if item in memo:
            return memo[item]
        mine = {a.genre_names[g] for g in a.genre_idx[a.genre_ptr[item] : a.genre_ptr[item + 1]]}
        out = {}
        for g in sorted(mine, key=a.genre_names.index):
            es = [
                e
                for e in by_genre.get(g, ())
                if all(known[x.lower()] in mine for x in e.genres) and usable(e, item)
            ]
            if es:
                out[g] = es
        memo[item] = out
        return out

    return options


def describable(
    dataset: Dataset, items, kind: str, paraphrases: ParaphraseSet | None = None
) -> np.ndarray:
    """Boolean mask: which ``items`` the set can state a ``kind`` ("I1"/"I2") request for
    (what `paraphrase_intentions` gives a non-empty text; independent of the seed)."""
    para = paraphrases if paraphrases is not None else paraphrases_for(dataset)
    options = _options(dataset, para, kind)
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    return np.array([bool(options(int(i))) for i in items], dtype=bool)


@cache
def _packaged(name: str) -> ParaphraseSet:
    """A packaged set, read once per process."""
    return load_paraphrases(name)


def paraphrases_for(dataset: Dataset | None) -> ParaphraseSet:
    """The packaged set that names the most of ``dataset``'s genres (ML-100K's for MovieLens,
    Games' for Amazon Games; the default ``ml100k-v1.yaml`` on a tie or without a dataset)."""
    sets = [_packaged(name) for name in PACKAGED]
    if dataset is None:
        return sets[0]
    known = {g.lower() for g in item_attributes(dataset).genre_names}
    return max(sets, key=lambda p: (len(p.genre_names() & known), -sets.index(p)))


def covers(dataset, paraphrases: ParaphraseSet | None = None) -> bool:
    """True when the set names at least one genre the dataset's items carry (the paraphrase
    protocols mean nothing on data whose attributes the set never mentions)."""
    para = paraphrases if paraphrases is not None else paraphrases_for(dataset)
    known = {g.lower() for g in item_attributes(dataset).genre_names}
    return bool(para.genre_names() & known)
