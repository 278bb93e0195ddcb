"""The reranker's intent-match prior channel is computed from the intention TEXT."""

from __future__ import annotations

import numpy as np

from instructrec.instructions.attributes import item_attributes
from instructrec.training.intentions import intention_match


def test_comedy_text_marks_comedies_and_no_intention_gives_zeros(ml100k):
    a = item_attributes(ml100k)
    g = a.genre_names.index("Comedy")
    comedy = np.flatnonzero(a.genre_matrix[:, g])[:5]
    other = np.flatnonzero(~a.genre_matrix[:, g])[:5]
    cands = np.stack([np.r_[comedy, other]] * 3)
    m = intention_match(ml100k, ["a comedy", None, ""], cands)
    assert m.shape == cands.shape and m.dtype == np.float32
    np.testing.assert_array_equal(m[0], np.r_[np.ones(5), np.zeros(5)])
    assert not m[1:].any()  # no intention: all zeros
    assert not intention_match(ml100k, None, cands).any()
    assert not intention_match(ml100k, ["zzz qqq"] * 3, cands).any()  # nothing parsed


def test_graded_match_is_the_fraction_of_parsed_attributes(ml100k):
    a = item_attributes(ml100k)
    g = a.genre_names.index("Comedy")
    both = np.flatnonzero(a.genre_matrix[:, g] & (a.decade == 1990))[0]
    genre_only = np.flatnonzero(a.genre_matrix[:, g] & (a.decade == 1970))[0]
    neither = np.flatnonzero(~a.genre_matrix[:, g] & (a.decade == 1970))[0]
    m = intention_match(ml100k, ["a comedy from the 90s"], np.array([[both, genre_only, neither]]))
    np.testing.assert_allclose(m[0], [1.0, 0.5, 0.0])


def test_each_named_genre_counts_as_one_attribute(ml100k):
    a = item_attributes(ml100k)
    d, r = a.genre_names.index("Drama"), a.genre_names.index("Romance")
    both = np.flatnonzero(a.genre_matrix[:, d] & a.genre_matrix[:, r])[0]
    one = np.flatnonzero(a.genre_matrix[:, d] & ~a.genre_matrix[:, r])[0]
    m = intention_match(ml100k, ["a drama and romance movie"], np.array([[both, one]]))
    np.testing.assert_allclose(m[0], [1.0, 0.5])
