"""Free-text intentions -> structured attributes, for the attribute-filter baseline at serving.

The "retriever + attribute filter" rival of InstructRec's search protocol ranks first the
candidates that match what the user asked for. Offline, `derive_intentions` gives those
attributes directly; a typed request ("a light comedy from the 90s") needs them read back:
genre names and common synonyms ("scary" -> Horror, "kids" -> Children's), decades ("90s",
"1990s", "nineties"), years, and the dataset's own category and brand names. Only values the
dataset knows are returned, so `intention_matches` can use the result as is.

Negation ("something funny, no horror") is read too: the excluded values come back under
``"excluded"`` ({"genres": [...], "decades": [...], "years": [...], "categories": [...],
"brands": [...]}, only the non-empty lists; the key is absent when nothing is excluded, so
a request without negation parses exactly as before). The grammar, in short (docs/instructions.md
has the details): a cue word ("no", "not", "nothing", "without", "except", "avoid", "n't",
...) opens a scope; the first attribute after it (fillers such as "any", "from the", "more"
may come between) is excluded, and so is every attribute joined to it by "or", "nor", "and",
"/", "-" or a comma list closed by "or"/"nor"/"and". Punctuation, "but" and other words close
the scope. A value both asked for and excluded stays asked for.
"""

from __future__ import annotations

import copy
import re
import threading
import weakref
from collections import OrderedDict

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

# ---- negation vocabulary (lower case tokens)
CUES = {"no", "not", "nothing", "none", "never", "without", "except", "excluding"}
CUES |= {"exclude", "avoid", "avoiding", "neither", "skip", "dont", "doesnt", "isnt"}
CUE_PHRASES = (  # multi-word cues, matched before single words
    ("anything", "but"),
    ("everything", "but"),
    ("other", "than"),
    ("apart", "from"),
    ("instead", "of"),
    ("rather", "than"),
    ("tired", "of"),
    ("sick", "of"),
    ("stay", "away", "from"),
    ("steer", "clear", "of"),
)
NOT_NEGATED = {"mind", "only", "just", "matter"}  # "don't mind", "not only", "no matter"
# words that may stand between a cue and the attribute it negates ("not from the 80s")
FILLER = {"the", "a", "an", "any", "anything", "something", "some", "more", "another", "too"}
FILLER |= {"very", "really", "overly", "so", "much", "many", "with", "from", "in", "of", "for"}
FILLER |= {"set", "made", "released", "about", "that", "thats", "which", "is", "are", "be"}
FILLER |= {"want", "like", "need", "see", "watch", "enjoy", "big", "fan", "into", "mood"}
NOUNS = {"movie", "movies", "film", "films", "flick", "flicks", "one", "ones", "stuff", "show"}
NOUNS |= {"shows", "item", "items", "genre", "genres", "kind", "type", "please", "either"}
NOUNS |= {"at", "all", "anymore", "again", "thanks", "tonight"}
LIST_OR = {"or", "nor", "/"}
LIST_AND = {"and", "&", "-", "+"}
BOUNDARY = {",", ";", ".", "!", "?", ":", "(", ")", '"', "but", "though", "although", "however"}
BOUNDARY |= {"yet", "while", "whereas", "just", "only", "also", "instead", "rather", "maybe"}
BOUNDARY |= {"perhaps", "preferably", "ideally", "i", "i'm", "im", "i'd", "id", "we", "my"}
VAGUE_BUDGET = 3  # unknown words tolerated between a cue and a negated genre
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)*|[^\sa-z0-9]")
EXCLUDED_KEYS = (("genre", "genres"), ("decade", "decades"), ("year", "years"))
EXCLUDED_KEYS += (("category", "categories"), ("brand", "brands"))


PARSE_CACHE = 4096  # distinct texts whose reading is kept per catalogue (LRU)
_PARSE_LOCK = threading.Lock()


def parse_intention(dataset: Dataset, text: str | None) -> dict:
    """Attributes stated in ``text`` ({} when none is recognised); keys as `intention_matches`,
    plus ``"excluded"`` when the text rules values out (see the module docstring). A text
    already read for this catalogue is answered from a bounded cache (a fresh copy each time:
    callers may change what they get)."""
    if not text or not str(text).strip():
        return {}
    attrs = item_attributes(dataset)
    key = str(text)
    with _PARSE_LOCK:
        cache = attrs.__dict__.setdefault("_parsed", OrderedDict())
        hit = cache.get(key)
        if hit is not None:
            cache.move_to_end(key)
    if hit is None:
        hit = _parse(attrs, key)
        with _PARSE_LOCK:
            cache[key] = hit
            if len(cache) > PARSE_CACHE:
                cache.popitem(last=False)
    return copy.deepcopy(hit)


def _parse(attrs, text: str) -> dict:
    low = " " + text.lower().replace("\u2019", "'") + " "
    excluded: list = []
    masked: list = []
    if _has_cue(low):  # most requests have none: skip the mention scan
        mentions = _mentions(attrs, low)
        if mentions:
            excluded, masked = _negated(low, mentions)
    if masked:
        chars = list(low)
        for s, e in masked:
            chars[s:e] = " " * (e - s)
        low = "".join(chars)
    out = _positive(attrs, low)
    if excluded:
        asked = {("genre", g) for g in out.get("genres_any", ())}
        asked |= {(k, out[k]) for k in ("decade", "year", "category", "brand") if k in out}
        ex: dict = {}
        for kind, plural in EXCLUDED_KEYS:
            vals = []
            for k, v in excluded:
                if k == kind and (k, v) not in asked and v not in vals:
                    vals.append(v)
            if vals:
                ex[plural] = vals
        if ex:
            out["excluded"] = ex
    return out


def parse_intentions(dataset: Dataset, texts) -> list[dict]:
    """`parse_intention` for each text (None/"" give {}); a repeated text is parsed once
    (`parse_intention`'s cache; each row still gets its own dict)."""
    return [parse_intention(dataset, None if t is None else str(t)) for t in texts]


def _positive(attrs, low: str) -> dict:
    """The asked-for attributes of ``low`` (lower case, space padded)."""
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
        out["decade"] = _decade_value(m)
    else:
        for word, dec in WORD_DECADES.items():
            if word in low:
                out["decade"] = dec
                break
    y = _YEAR.search(low)
    if y and "decade" not in out:
        out["year"] = int(y.group(1))
    index = _name_index(attrs)
    for key in ("category", "brand"):
        hits = [n for n in index.candidates(key, low) if re.search(_name_pattern(n), low)]
        if hits:
            out[key] = max(hits, key=len)
    return out


def _decade_value(m: re.Match) -> int:
    if m.group(1):
        return int(m.group(1) + m.group(2) + "0")
    d = int(m.group(3)) * 10
    return 1900 + d if d >= 20 else 2000 + d


def _name_pattern(name: str) -> str:
    return r"(?<![a-z0-9])" + re.escape(name.lower()) + r"(?![a-z0-9])"


_WORD = re.compile(r"[a-z0-9]+")
_INDEX: dict[int, tuple[weakref.ref, _NameIndex]] = {}


class _NameIndex:
    """Category and brand names (over 2 characters) by their first word, so a text is matched
    only against names whose first word it contains (Games has thousands of franchise names).

    Exact: a match of `_name_pattern` starts after a non-alphanumeric character, so the
    text's word there is the name's first word; names not starting with [a-z0-9] are always
    tried."""

    def __init__(self, attrs) -> None:
        self.by_word: dict[str, dict[str, list[tuple[int, str]]]] = {}
        self.always: dict[str, list[tuple[int, str]]] = {}
        for key, names in (("category", attrs.category_names), ("brand", attrs.brand_names)):
            words: dict[str, list[tuple[int, str]]] = {}
            always: list[tuple[int, str]] = []
            for pos, n in enumerate(names):
                if len(n) <= 2:
                    continue
                m = _WORD.match(n.lower())
                if m:
                    words.setdefault(m.group(0), []).append((pos, n))
                else:
                    always.append((pos, n))
            self.by_word[key], self.always[key] = words, always

    def candidates(self, key: str, low: str) -> list[str]:
        """The names of ``key`` that may occur in ``low``, in catalogue order."""
        words = self.by_word[key]
        found = list(self.always[key])
        for w in set(_WORD.findall(low)):
            found += words.get(w, ())
        return [n for _, n in sorted(found)]


def _name_index(attrs) -> _NameIndex:
    hit = _INDEX.get(id(attrs))
    if hit is not None and hit[0]() is attrs:
        return hit[1]
    index = _NameIndex(attrs)
    _INDEX[id(attrs)] = (weakref.ref(attrs), index)
    weakref.finalize(attrs, _INDEX.pop, id(attrs), None)
    return index


def _mentions(attrs, low: str) -> list[tuple[int, int, list]]:
    """Every attribute mention as (start, end, [(kind, value), ...]), overlaps merged."""
    found: list[tuple[int, int, tuple]] = []
    for name in attrs.genre_names:
        for w in SYNONYMS.get(name, ()) + (name.lower(),):
            for m in re.finditer(r"(?<![a-z])" + re.escape(w), low):
                found.append((m.start(), _word_end(low, m.end()), ("genre", name)))
    for m in _DECADE.finditer(low):
        found.append((m.start(), m.end(), ("decade", _decade_value(m))))
    for word, dec in WORD_DECADES.items():
        for m in re.finditer(re.escape(word), low):
            found.append((m.start(), _word_end(low, m.end()), ("decade", dec)))
    for m in _YEAR.finditer(low):
        found.append((m.start(), m.end(), ("year", int(m.group(1)))))
    index = _name_index(attrs)
    for kind in ("category", "brand"):
        for n in index.candidates(kind, low):
            for m in re.finditer(_name_pattern(n), low):
                found.append((m.start(), m.end(), (kind, n)))
    found.sort(key=lambda f: (f[0], -f[1]))
    groups: list[tuple[int, int, list]] = []
    for s, e, v in found:
        if groups and s < groups[-1][1]:
            g = groups[-1]
            groups[-1] = (g[0], max(g[1], e), g[2] + [v])
        else:
            groups.append((s, e, [v]))
    return groups


def _has_cue(low: str) -> bool:
    toks = _tokens(low)
    return "<cue>" in toks or "dont" in toks or not CUES.isdisjoint(toks)


def _word_end(low: str, i: int) -> int:
    """End of the word a prefix match ("comed") ends inside ("comedies")."""
    while 0 < i < len(low) and low[i - 1].isalpha() and low[i].isalpha():
        i += 1
    return i


def _tokens(gap: str) -> list[str]:
    """Gap text -> tokens, multi-word cues joined as "<cue>", "n't" words as "dont"."""
    words = ["dont" if w.endswith("n't") else w for w in _TOKEN.findall(gap)]
    out, i = [], 0
    while i < len(words):
        for phrase in CUE_PHRASES:
            if tuple(words[i : i + len(phrase)]) == phrase:
                out.append("<cue>")
                i += len(phrase)
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _negated(low: str, mentions: list) -> tuple[list, list]:
    """Walk gaps and mentions left to right; return the excluded (kind, value) pairs and the
    spans to hide from the positive parse (excluded or doubtful mentions)."""
    excluded: list = []
    masked: list = []
    pending: list = []  # mentions after "no X, " waiting for a closing "or"/"nor"/"and"
    state, budget = "none", 0
    pos = 0
    stream: list = []
    for m in mentions:
        stream += [("w", t) for t in _tokens(low[pos : m[0]])] + [("m", m)]
        pos = m[1]
    stream += [("w", t) for t in _tokens(low[pos:])]
    for i, (kind, item) in enumerate(stream):
        if kind == "m":
            s, e, vals = item
            if state in ("pre", "and", "post"):  # "post": adjacent, "no horror comedy"
                excluded += vals
                masked.append((s, e))
                state = "post"
            elif state == "vague":
                genres = [v for v in vals if v[0] == "genre"]
                excluded += genres  # a doubtful date/category/brand: neither asked nor excluded
                masked.append((s, e))
                state = "post" if genres else "none"
            elif state == "comma":
                pending.append(item)
                state = "pending"
            else:
                state = "none"
            continue
        tok = item
        nxt = stream[i + 1][1] if i + 1 < len(stream) and stream[i + 1][0] == "w" else None
        if tok in CUES or tok == "<cue>":
            pending.clear()
            state = "none" if nxt in NOT_NEGATED else "pre"
        elif state == "pre":
            if tok in FILLER or tok in NOUNS:
                continue
            if tok in BOUNDARY or tok in LIST_OR or tok in LIST_AND or not tok[0].isalnum():
                state = "none"
            else:
                state, budget = "vague", VAGUE_BUDGET - 1
        elif state == "vague":
            if tok in LIST_OR:
                state = "pre"
            elif tok in BOUNDARY or tok in LIST_AND or not tok[0].isalnum():
                state = "none"
            elif tok not in FILLER and tok not in NOUNS:
                budget -= 1
                state = "vague" if budget > 0 else "none"
        elif state in ("post", "pending"):
            if tok in NOUNS:
                continue
            if tok in LIST_OR or tok in LIST_AND:
                for s, e, vals in pending:
                    excluded += vals
                    masked.append((s, e))
                pending.clear()
                state = "pre" if tok in LIST_OR else "and"
            elif tok == ",":
                state = "comma"
            else:
                pending.clear()
                state = "none"
        else:  # "none", "and", "comma": anything but a cue or a mention ends the scope
            pending.clear()
            state = "none"
    return excluded, masked
