"""The packaged paraphrase set (paraphrases/ml100k-v1.yaml): size, coverage, schema, and
wording that neither the generator, the parser nor the template catalogue uses (the rule of
docs/instructions.md, "Paraphrase set")."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import yaml

from instructrec.instructions import derive_intentions, item_attributes
from instructrec.instructions.overlap import generator_phrases, shared_phrases, words
from instructrec.instructions.paraphrase import DECADE_STYLES, DECADE_WORDS, load_paraphrases

ML100K_GENRES = {
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
    "War", "Western",
}  # fmt: skip
# sha256 of the released file: a change is a new version (new file), never an edit in place
RELEASED = {"ml100k-v1": "f2e2060ad8434dfca2247c45b0df0cb9d980cead8d3c2a93da2ca295cd4ebaf7"}


@pytest.fixture(scope="module")
def para():
    return load_paraphrases()


@pytest.fixture(scope="module")
def phrases(ml100k):
    return generator_phrases(ml100k)


def test_header_version_and_hash(para):
    raw = (
        resources.files("instructrec.instructions")
        .joinpath("paraphrases", "ml100k-v1.yaml")
        .read_bytes()
    )
    assert para.version == "ml100k-v1"
    assert para.sha256 == hashlib.sha256(raw).hexdigest()
    assert para.sha256 == RELEASED[para.version], "edit a released paraphrase file: new version"
    assert para.author == "written by hand for instructrec, not generated"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", para.date)
    assert "before" in para.procedure and "derive.py" in para.procedure


def test_size_and_coverage(para, ml100k):
    assert len(para.entries) >= 300
    assert set(item_attributes(ml100k).genre_names) == ML100K_GENRES
    vague = Counter(e.genre for e in para.of_kind("I1"))
    specific = Counter(e.genre for e in para.of_kind("I2"))
    assert set(vague) == set(specific) == ML100K_GENRES
    assert min(vague.values()) >= 10 and min(specific.values()) >= 7
    assert {e.decade_style for e in para.of_kind("I2")} == set(DECADE_STYLES)
    assert any(e.second_genre for e in para.of_kind("I2"))


def test_schema(para):
    raw = yaml.safe_load(
        resources.files("instructrec.instructions")
        .joinpath("paraphrases", "ml100k-v1.yaml")
        .read_text()
    )
    assert len(raw["entries"]) == len(para.entries)
    texts = [" ".join(words(e.text)) for e in para.entries]
    assert len(set(texts)) == len(texts), "texts must be unique"
    for e in para.entries:
        assert e.kind in ("vague", "specific") and e.genre in ML100K_GENRES
        if e.kind == "vague":
            assert "{" not in e.text and e.decade_style is None and e.second_genre is None
            assert not re.search(r"\d", e.text), "a vague text states no date"
        else:
            assert e.text.count("{decade}") == 1 and e.decade_style in DECADE_STYLES
            assert e.second_genre in (None, *ML100K_GENRES) and e.second_genre != e.genre
            for dec in DECADE_WORDS:
                out = e.render(dec)
                assert "{" not in out and "}" not in out


def test_no_text_shares_wording_with_the_generator_parser_or_catalogue(para, phrases):
    """The rule: no 3-word sequence shared with any generator phrase, parser synonym,
    template literal or generated specific intention; no contained phrase of 2 words; no text
    equal to one of them. The data's genre names themselves are allowed."""
    assert {"generator", "parser", "catalogue", "generator-I2"} <= set(phrases)
    assert all(phrases.values())
    exempt = sorted(ML100K_GENRES)
    bad = {e.text: shared_phrases(e.text, phrases, n=3, exempt=exempt) for e in para.entries}
    bad = {t: s for t, s in bad.items() if s}
    assert not bad, bad
    every = {tuple(p) for plist in phrases.values() for p in plist}
    assert not [e.text for e in para.entries if tuple(words(e.text)) in every]


def test_no_rendered_text_is_a_generated_intention(para, ml100k):
    items = np.arange(ml100k.n_items)
    generated = {
        " ".join(words(t))
        for seed in (0, 1, 2)
        for kind in ("I1", "I2")
        for t in derive_intentions(ml100k, items, kind, seed=seed)[0]
    }
    rendered = [e.render() for e in para.of_kind("I1")]
    rendered += [e.render(d) for e in para.of_kind("I2") for d in DECADE_WORDS]
    assert not [t for t in rendered if " ".join(words(t)) in generated]


def test_the_rule_catches_generator_wording(phrases):
    """The checker itself: a generator phrase, a parser synonym and a template's wording are
    reported; a genre name alone is not."""
    vague_phrase = " ".join(w for w in phrases["generator"][0])
    assert shared_phrases(f"hey, {vague_phrase} please", phrases)
    assert shared_phrases("a lovely love story", phrases)  # parser: "love story"
    assert shared_phrases("which one, I'm in the mood for it", phrases)  # a template
    assert shared_phrases("a horror movie from the {decade}", phrases)  # generated I2 pattern
    assert not shared_phrases("any sci-fi?", phrases, exempt=["Sci-Fi"])
