"""Pieces of an explained answer: readable titles, the understood-as line, calibrated scores."""

from __future__ import annotations

import numpy as np

from instructrec.instructions import parse_intention
from instructrec.rerank.explain import NOTHING, readable_titles, understood, win_rate


def test_readable_titles_keep_the_year(ml100k):
    titles = readable_titles(ml100k)
    raw = ml100k.items["title"].tolist()
    assert titles[raw.index("Usual Suspects, The")] == "The Usual Suspects (1995)"
    assert titles[raw.index("Great White Hype, The")] == "The Great White Hype (1996)"
    assert titles[raw.index("Toy Story")] == "Toy Story (1995)"
    assert not any(t.count("(1995) (1995)") for t in titles)


def test_understood_reads_the_parse(ml100k):
    def read(text):
        return understood(parse_intention(ml100k, text))

    assert read("something funny from the 90s, no horror") == "Comedy, 1990s, not Horror"
    assert read("a sci-fi movie from 1982") == "Sci-Fi, 1982"
    assert read("anything but westerns or war films") == "not Western, not War"
    assert read("something nice") == NOTHING and understood({}) == NOTHING


def test_win_rate_is_calibrated_and_follows_the_order():
    s = np.array([3.0, 1.0, 1.0, -2.0, 5.0])
    g = np.array([1.0, 1.0, 1.0, 1.0, 0.5])  # the last item matches less: below all others
    w = win_rate(s, g)
    assert ((w >= 0) & (w <= 1)).all() and w[1] == w[2]
    assert list(np.argsort(-w, kind="stable")) == [0, 1, 2, 3, 4]
    assert w[4] == 0.0  # loses every comparison, whatever its raw score
    # offsets do not matter (logits), scales do; order-only pairs give steps
    np.testing.assert_allclose(win_rate(s + 40.0, g), w)
    steps = win_rate(np.array([2.0, 1.0, 0.0]), np.zeros(3), logits=False)
    np.testing.assert_allclose(steps, [1.0, 0.5, 0.0])
    assert win_rate(np.array([7.0]), np.zeros(1)).tolist() == [1.0]
