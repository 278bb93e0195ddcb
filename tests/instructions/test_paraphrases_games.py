"""The packaged Amazon Games paraphrase set (paraphrases/games-v1.yaml): size, coverage of the
title rules' genres and platforms, vague texts that never name their genre, and wording the
generator, the parser and the template catalogue never use."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from importlib import resources

import numpy as np
import pytest
import yaml

from instructrec.instructions.overlap import generator_phrases, shared_phrases, words
from instructrec.instructions.paraphrase import PLATFORM_STYLES, load_paraphrases

RELEASED = {"games-v1": "b056afb624b20c3b004043d022a1d8725617aaf7ad0929f1991a6af98f146913"}
RULES = yaml.safe_load(
    resources.files("instructrec.data").joinpath("title_rules", "games.yaml").read_text()
)
GENRES = set(RULES["attributes"]["genre"]["values"])
PLATFORMS = set(RULES["attributes"]["platform"]["values"])
# every genre name and its short forms: a vague text states its genre without them
NAME_WORDS = {w for g in GENRES for w in words(g)} | {"rpg", "sport", "shooting", "fighter"}
NAME_WORDS |= {"racer", "puzzles", "sim", "simulator", "musical"}


@pytest.fixture(scope="module")
def para():
    return load_paraphrases("games-v1.yaml")


def test_header_version_and_hash(para):
    raw = (
        resources.files("instructrec.instructions")
        .joinpath("paraphrases", "games-v1.yaml")
        .read_bytes()
    )
    assert para.version == "games-v1"
    assert para.sha256 == hashlib.sha256(raw).hexdigest() == RELEASED[para.version], (
        "edit a released paraphrase file: new version"
    )
    assert para.author == "written by hand for instructrec, not generated"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", para.date) and "games.yaml" in para.procedure


def test_size_and_coverage(para):
    assert len(GENRES) == 10 and len(PLATFORMS) == 28
    vague = Counter(e.genre for e in para.of_kind("I1"))
    specific = Counter(e.genre for e in para.of_kind("I2"))
    assert set(vague) == set(specific) == GENRES
    assert min(vague.values()) >= 10 and min(specific.values()) >= 7
    assert {e.platform_style for e in para.of_kind("I2")} == set(PLATFORM_STYLES)
    assert all(e.slot == "platform" and e.decade_style is None for e in para.of_kind("I2"))
    assert set(para.platforms) == PLATFORMS  # every platform the title rules read
    short = [para.platform_words(p, "short") for p in PLATFORMS]
    assert len(set(short)) == len(short)  # no two platforms named alike


def test_vague_texts_never_name_a_genre(para):
    for e in para.of_kind("I1"):
        assert e.slot is None and "{" not in e.text
        assert not set(words(e.text)) & NAME_WORDS, e.text
    for e in para.of_kind("I2"):
        for p in sorted(PLATFORMS):
            for style in PLATFORM_STYLES:
                out = e.render(platform=para.platform_words(p, style))
                assert "{" not in out and "}" not in out


def _check(para, phrases, exempt):
    bad = {e.text: shared_phrases(e.text, phrases, n=3, exempt=exempt) for e in para.entries}
    assert not {t: s for t, s in bad.items() if s}
    every = {tuple(p) for plist in phrases.values() for p in plist}
    assert not [e.text for e in para.entries if tuple(words(e.text)) in every]


def test_no_text_shares_wording_with_the_generator_parser_or_catalogue(para):
    phrases = generator_phrases()
    assert {"generator", "parser", "catalogue"} <= set(phrases)
    _check(para, phrases, sorted(GENRES | PLATFORMS))


def test_nor_with_the_generated_games_requests(para, games):
    """The same rule against the specific requests the generator writes for every Games item
    (the real data: skipped where ../shared/data/amazon-games is absent)."""
    from instructrec.instructions import derive_intentions
    from instructrec.instructions.paraphrase import (
        describable,
        paraphrase_intentions,
        paraphrases_for,
    )

    ds, _ = games
    assert paraphrases_for(ds).version == "games-v1"
    phrases = generator_phrases(ds, seeds=(0,))
    assert phrases["generator-I2"]
    _check(para, phrases, sorted(GENRES | PLATFORMS))
    items = np.arange(ds.n_items)
    for kind, share in (("I1", 0.3), ("I2", 0.2)):  # the items whose title shows a genre
        mask = describable(ds, items, kind)
        assert share < mask.mean() < share + 0.05
        texts, attrs = paraphrase_intentions(ds, items[mask][::7], kind, seed=0)
        assert all(texts) and all(attrs)
        generated = {" ".join(words(t)) for t in derive_intentions(ds, items, kind, seed=0)[0]}
        assert not [t for t in texts if " ".join(words(t)) in generated]
