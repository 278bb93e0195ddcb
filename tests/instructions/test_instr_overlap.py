"""vocabulary_overlap: how much of the test wording the training texts already hold."""

from __future__ import annotations

import math

import numpy as np
import pytest

from instructrec.instructions import derive_intentions
from instructrec.instructions.overlap import ngrams, vocabulary_overlap, words
from instructrec.instructions.paraphrase import paraphrase_intentions


def test_words_and_ngrams():
    assert words("Got any '80s SCI-FI? That'll do!") == [
        "got",
        "any",
        "80s",
        "sci",
        "fi",
        "thatll",
        "do",
    ]
    assert ngrams(["a", "b", "\x00", "c", "d"], 2) == {("a", "b"), ("c", "d")}


def test_overlap_by_hand():
    train = ["a funny movie", "a scary movie tonight"]
    test = ["A funny movie!", "a sad movie", "", "totally new words"]
    got = vocabulary_overlap(test, train)
    assert got["n_test"] == 3 and got["n_train"] == 2  # the empty text is left out
    assert got["verbatim"] == pytest.approx(1 / 3)
    # words: a funny movie (3/3) + a sad movie (2/3) + totally new words (0/3) = 5/9
    assert got["words"] == pytest.approx(5 / 9)
    # bigrams: (a funny)(funny movie) seen, (a sad)(sad movie) not, (totally new)(new words) not
    assert got["bigrams"] == pytest.approx(2 / 6)
    assert got["trigrams"] == pytest.approx(1 / 3)
    assert math.isnan(vocabulary_overlap([], train)["verbatim"])


def test_overlap_per_kind():
    test = {"I1": ["a funny movie"], "I2": ["a 1990s war movie"]}
    train = {"I1": ["a funny movie"], "I2": ["a 1980s war movie"]}
    got = vocabulary_overlap(test, train)
    assert set(got) == {"I1", "I2", "all"}
    assert got["I1"]["verbatim"] == 1.0 and got["I2"]["verbatim"] == 0.0
    assert got["I2"]["words"] == pytest.approx(3 / 4)
    assert got["all"]["n_test"] == 2 and got["all"]["verbatim"] == 0.5
    # kinds are compared with their own kind: I1 test against I2 training holds nothing
    assert (
        vocabulary_overlap({"I1": ["a funny movie"]}, {"I2": ["a funny movie"]})["I1"]["verbatim"]
        == 0.0
    )
    # a plain training list serves every kind
    assert vocabulary_overlap(test, ["a funny movie"])["I1"]["verbatim"] == 1.0


def test_generator_test_wording_is_seen_and_paraphrases_are_not(ml100k, ml100k_split):
    """The problem this module measures: derived test intentions repeat training intentions;
    the paraphrase set does not."""
    test_items = ml100k_split.candidates["cand10"]["test"][:, 0].astype(np.int64)
    train_items = ml100k_split.train["item"].to_numpy(np.int64)
    train_items = np.unique(train_items)
    train = {k: derive_intentions(ml100k, train_items, k, seed=0)[0] for k in ("I1", "I2")}
    derived = {k: derive_intentions(ml100k, test_items, k, seed=0)[0] for k in ("I1", "I2")}
    para = {k: paraphrase_intentions(ml100k, test_items, k, seed=0)[0] for k in ("I1", "I2")}
    d, p = vocabulary_overlap(derived, train), vocabulary_overlap(para, train)
    assert d["I1"]["verbatim"] > 0.95 and d["I2"]["verbatim"] > 0.8
    assert p["I1"]["verbatim"] == 0.0 and p["I2"]["verbatim"] == 0.0
    assert p["I1"]["trigrams"] < 0.1 < d["I1"]["trigrams"]
    assert p["I1"]["words"] < d["I1"]["words"]
