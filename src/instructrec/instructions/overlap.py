"""Wording overlap between test and training requests, and the generator's own phrases.

The intentions the reranker is trained on come from one generator (`derive_intentions`'s
phrase tables and its I2 sentence pattern) wrapped in the template catalogue; the intention
parser reads them with its synonym lists. A test request built by the same machinery can be
matched word for word, which says little about understanding a request. This module measures
that:

- `vocabulary_overlap(test_texts, train_texts)`: the share of test texts seen verbatim among
  the training texts, and the share of test word 1/2/3-grams seen there (per kind when given
  mappings), for the evaluation report;
- `generator_phrases()`: every literal phrase of the generator, the parser and the template
  catalogue, the reference the paraphrase set (`paraphrase.py`) is checked against;
- `shared_phrases(text, ...)`: which of them a text repeats (the rule of docs/instructions.md,
  "Paraphrase set": no shared 3-word sequence, no contained phrase of >= 2 words).

Texts are compared as word sequences: lower case, apostrophes dropped ("that'll" ->
"thatll"), every other non-alphanumeric character a separator ("date-night" -> date, night).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

_SPLIT = re.compile(r"[^a-z0-9]+")
BREAK = "\x00"  # stands where a template field was: no n-gram spans it


def words(text: str) -> list[str]:
    """``text`` as compared here: lower-case alphanumeric words, apostrophes dropped."""
    low = str(text).lower().replace("\u2019", "'").replace("'", "")
    return [w for w in _SPLIT.split(low) if w]


def ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    """The distinct ``n``-word sequences of ``tokens`` (none spans a `BREAK` token)."""
    out = set()
    for i in range(len(tokens) - n + 1):
        g = tuple(tokens[i : i + n])
        if BREAK not in g:
            out.add(g)
    return out


def _grams(text: str, n: int) -> list[tuple[str, ...]]:
    w = words(text)
    return [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]


def _stats(test: Iterable[str], train: Iterable[str]) -> dict:
    test = [str(t) for t in test if t and str(t).strip()]
    train = [str(t) for t in train if t and str(t).strip()]
    seen_text = {" ".join(words(t)) for t in train}
    out: dict = {"n_test": len(test), "n_train": len(train)}
    out["verbatim"] = (
        sum(" ".join(words(t)) in seen_text for t in test) / len(test) if test else float("nan")
    )
    for n, name in ((1, "words"), (2, "bigrams"), (3, "trigrams")):
        seen = set()
        for t in train:
            seen.update(_grams(t, n))
        grams = [g for t in test for g in _grams(t, n)]
        out[name] = sum(g in seen for g in grams) / len(grams) if grams else float("nan")
    return out


def vocabulary_overlap(
    test_texts: Sequence[str] | Mapping[str, Sequence[str]],
    train_texts: Sequence[str] | Mapping[str, Sequence[str]],
) -> dict:
    """How much of the test wording the training texts already hold.

    Returns ``{"n_test", "n_train", "verbatim", "words", "bigrams", "trigrams"}``: the share of
    (non-empty) test texts that occur verbatim among the training texts (compared as word
    sequences, see the module docstring), and the share of test word occurrences, bigram and
    trigram occurrences that occur anywhere in the training texts (NaN when the test side has
    none). Given mappings kind -> texts (e.g. ``{"I1": [...], "I2": [...]}``), returns
    ``{kind: stats}`` per test kind, each against the training texts of the same kind (all
    training texts when the training side is a plain sequence), plus ``"all"`` (every test
    text against every training text).
    """
    if isinstance(test_texts, Mapping):
        all_train = (
            [t for v in train_texts.values() for t in v]
            if isinstance(train_texts, Mapping)
            else list(train_texts)
        )
        out = {}
        for kind, texts in test_texts.items():
            train = train_texts.get(kind, ()) if isinstance(train_texts, Mapping) else all_train
            out[kind] = _stats(texts, train)
        out["all"] = _stats([t for v in test_texts.values() for t in v], all_train)
        return out
    if isinstance(train_texts, Mapping):
        train_texts = [t for v in train_texts.values() for t in v]
    return _stats(test_texts, train_texts)


def generator_phrases(dataset=None, seeds: Sequence[int] = (0, 1, 2)) -> dict[str, list[list[str]]]:
    """Every literal phrase the training wording is made of, as word lists (`BREAK` where a
    template field stands): ``"generator"`` (the vague phrase table and the generic wish of
    `derive`), ``"parser"`` (the synonym lists of `parse`), ``"catalogue"`` (the literal text
    of every template, seen and held out). Given a ``dataset``, also ``"generator-I2"``: the
    distinct specific intentions `derive_intentions` writes for its items (``seeds``), with
    every word holding a digit (the year or decade) a `BREAK`."""
    from .catalogue import TemplateCatalogue, parse_pieces
    from .derive import GENERIC_VAGUE, VAGUE
    from .parse import SYNONYMS

    gen = [words(p) for _, phrases in VAGUE.values() for p in phrases]
    gen += [words(p) for p in GENERIC_VAGUE]
    par = [words(w) for ws in SYNONYMS.values() for w in ws]
    cat = []
    for t in TemplateCatalogue.default():
        for text in (t.text, t.choices):
            toks: list[str] = []
            for kind, val in parse_pieces(text):
                toks += words(val) if kind == "lit" else [BREAK]
            if toks:
                cat.append(toks)
    out = {"generator": gen, "parser": par, "catalogue": cat}
    if dataset is not None:
        import numpy as np

        from .derive import derive_intentions

        items = np.arange(dataset.n_items)
        texts = {t for s in seeds for t in derive_intentions(dataset, items, "I2", seed=s)[0]}
        out["generator-I2"] = [
            [BREAK if any(c.isdigit() for c in w) else w for w in words(t)]
            for t in sorted(texts)
            if t
        ]
    return out


def shared_phrases(
    text: str,
    phrases: Mapping[str, list[list[str]]] | None = None,
    n: int = 3,
    exempt: Iterable[str] = (),
) -> list[str]:
    """The phrases ``text`` repeats: every ``n``-word sequence it shares with a phrase, and
    every phrase of >= 2 words (>= 2 and < ``n``; longer ones are caught by the n-grams) it
    contains. ``{decade}``-style fields in ``text`` count as breaks. ``exempt``: phrases
    allowed anyway (the data's own genre names, e.g. "sci-fi", "film-noir"). Empty when
    the text is clean."""
    phrases = generator_phrases() if phrases is None else phrases
    skip = {tuple(words(e)) for e in exempt}
    toks: list[str] = []
    for part in re.split(r"(\{[a-z_]+\})", str(text)):
        toks += [BREAK] if re.fullmatch(r"\{[a-z_]+\}", part) else words(part)
    mine = ngrams(toks, n)
    found: list[str] = []
    for source, plist in phrases.items():
        for p in plist:
            for g in sorted(mine & ngrams(p, n)):
                found.append(f"{source}: {' '.join(g)}")
            k = len(p)
            if (
                2 <= k < n
                and BREAK not in p
                and tuple(p) not in skip
                and tuple(p) in ngrams(toks, k)
            ):
                found.append(f"{source}: {' '.join(p)}")
    return sorted(set(found))
