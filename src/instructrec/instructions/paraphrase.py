"""Intentions in wording the model never saw: a hand-written paraphrase set.

The training intentions and the standard test intentions come from one generator
(`derive_intentions`, InstructRec's attribute-derived I1/I2 requests, Zhang et al. 2023,
Sec. 3.2), so a test request can be matched word for word. The paraphrase set
(``paraphrases/ml100k-v1.yaml``) holds natural requests written by hand without the
generator's phrase tables, the parser's synonyms or the template catalogue (procedure in the
file's header and docs/instructions.md, "Paraphrase set"):

- ``vague`` texts (I1) each keyed to one genre: "got any old cowboy flicks?" -> Western;
- ``specific`` texts (I2) keyed to a genre (sometimes two) and holding a ``{decade}`` slot,
  rendered in the text's ``decade_style``: short "80s", long "1980s" or word "eighties".

`paraphrase_intentions` answers like `derive_intentions` (texts plus the ``attrs`` dicts that
`intention_matches` and the attribute-filter rival read), drawing for each target a text whose
genres the target has:

    para = load_paraphrases()                 # para.version, para.sha256, para.entries
    texts, attrs = paraphrase_intentions(dataset, targets, kind="I2", seed=0)
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
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
DEFAULT_FILE = "ml100k-v1.yaml"
_SLOT = "{decade}"


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
    genre: str  # the genre the text asks for (ML-100K spelling)
    text: str  # the request; specific ones hold one "{decade}" slot
    second_genre: str | None = None  # a second genre the text also asks for (specific only)
    decade_style: str | None = None  # short | long | word (specific only)

    @property
    def genres(self) -> tuple[str, ...]:
        """Every genre the text states."""
        return (self.genre,) + ((self.second_genre,) if self.second_genre else ())

    def render(self, decade: int | None = None) -> str:
        """The text with its ``{decade}`` slot filled (vague texts are returned as they are)."""
        if self.kind == "vague":
            return self.text
        if decade is None:
            raise ValueError("a specific paraphrase needs a decade to render")
        return self.text.replace(_SLOT, render_decade(decade, self.decade_style or "long"))


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

    def of_kind(self, kind: str) -> list[Paraphrase]:
        """Entries of ``kind``: "vague"/"specific" or the intention slot "I1"/"I2"."""
        kind = KINDS.get(kind, kind)
        return [e for e in self.entries if e.kind == kind]


def load_paraphrases(path: str | Path | None = None) -> ParaphraseSet:
    """Load and validate a paraphrase file (default: the packaged ``ml100k-v1.yaml``).

    Raises `DataError` naming the file and the entry on a missing field, an unknown kind or
    decade style, a specific text without exactly one ``{decade}`` slot (or a vague one with
    a slot), or a duplicate text.
    """
    if path is None:
        data = resources.files("instructrec.instructions").joinpath("paraphrases", DEFAULT_FILE)
        raw_bytes, where = data.read_bytes(), f"instructrec/instructions/paraphrases/{DEFAULT_FILE}"
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
    entries, seen = [], set()
    for n, e in enumerate(raw["entries"]):
        entries.append(_entry(e, n, where))
        key = " ".join(entries[-1].text.lower().split())
        if key in seen:
            raise DataError(f"entry #{n}: duplicate text {entries[-1].text!r}", source=where)
        seen.add(key)
    return ParaphraseSet(
        version=str(raw["version"]),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        entries=tuple(entries),
        source=where,
        author=str(raw.get("author", "")),
        date=str(raw.get("date", "")),
        procedure=str(raw.get("procedure", "")),
    )


def _entry(e, n: int, where: str) -> Paraphrase:
    if not isinstance(e, dict):
        raise DataError(f"entry #{n} is not a mapping", source=where)
    for key in ("kind", "genre", "text"):
        if not e.get(key):
            raise DataError(f"entry #{n} lacks `{key}`", source=where, column=key)
    kind, text = str(e["kind"]), str(e["text"])
    unknown = set(e) - {"kind", "genre", "text", "second_genre", "decade_style"}
    if unknown:
        raise DataError(f"entry #{n}: unknown keys {sorted(unknown)}", source=where)
    if kind not in KINDS.values():
        raise DataError(f"entry #{n}: kind must be vague or specific, not {kind!r}", source=where)
    slots = len(re.findall(r"\{[^}]*\}", text))
    style = e.get("decade_style")
    if kind == "specific":
        if slots != 1 or _SLOT not in text:
            raise DataError(f"entry #{n}: a specific text needs one {_SLOT} slot", source=where)
        if style not in DECADE_STYLES:
            raise DataError(
                f"entry #{n}: decade_style must be one of {DECADE_STYLES}, not {style!r}",
                source=where,
                column="decade_style",
            )
    elif slots or style or e.get("second_genre"):
        raise DataError(
            f"entry #{n}: a vague text has no slot, decade_style or second_genre", source=where
        )
    second = e.get("second_genre")
    return Paraphrase(kind, str(e["genre"]), text, str(second) if second else None, style or None)


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
    (``paraphrases``, default `load_paraphrases()`) whose genres it has, chosen uniformly
    among its genres the set covers, then uniformly among that genre's texts; an I2 text has
    the item's decade rendered in the text's style. ``attrs`` states what the text says, in
    `intention_matches`' keys: I1 ``{"genres_any": [genre]}``, I2 ``{"genres": [genre(s)],
    "decade": 1980}``. Items the set cannot describe (no covered genre, or no year for I2)
    get "" and None.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be 'I1' or 'I2', not {kind!r}")
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    para = paraphrases if paraphrases is not None else load_paraphrases()
    a = item_attributes(dataset)
    known = {g.lower(): g for g in a.genre_names}
    by_genre: dict[str, list[Paraphrase]] = {}
    for e in para.of_kind(kind):
        if all(g.lower() in known for g in e.genres):
            by_genre.setdefault(known[e.genre.lower()], []).append(e)
    rng = np.random.default_rng([int(seed), 11 if kind == "I1" else 12])
    u = rng.random((len(items), 2))
    texts: list[str] = []
    attrs: list[dict | None] = []
    for r, item in enumerate(items):
        mine = {a.genre_names[g] for g in a.genre_idx[a.genre_ptr[item] : a.genre_ptr[item + 1]]}
        decade = int(a.decade[item])
        options = {
            g: [e for e in by_genre.get(g, ()) if all(known[x.lower()] in mine for x in e.genres)]
            for g in sorted(mine, key=a.genre_names.index)
        }
        options = {g: es for g, es in options.items() if es}
        if not options or (kind == "I2" and decade <= 0):
            texts.append("")
            attrs.append(None)
            continue
        genres = list(options)
        g = genres[min(int(u[r, 0] * len(genres)), len(genres) - 1)]
        e = options[g][min(int(u[r, 1] * len(options[g])), len(options[g]) - 1)]
        if kind == "I1":
            texts.append(e.render())
            attrs.append({"genres_any": [g]})
        else:
            texts.append(e.render(decade))
            attrs.append({"genres": [known[x.lower()] for x in e.genres], "decade": decade})
    return texts, attrs


def covers(dataset, paraphrases: ParaphraseSet | None = None) -> bool:
    """True when the set names at least one genre the dataset's items carry (the paraphrase
    protocols mean nothing on data whose attributes the set never mentions)."""
    para = paraphrases if paraphrases is not None else load_paraphrases()
    known = {g.lower() for g in item_attributes(dataset).genre_names}
    return any(g.lower() in known for e in para.entries for g in e.genres)
