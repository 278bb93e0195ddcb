from __future__ import annotations

import numpy as np

from instructrec.instructions import derive_intentions, intention_matches, parse_intention
from instructrec.instructions.parse import parse_intentions


def test_parse_reads_genres_decades_years(ml100k):
    assert parse_intention(ml100k, "a light comedy from the 90s") == {
        "genres_any": ["Comedy"],
        "decade": 1990,
    }
    assert parse_intention(ml100k, "a war movie from the eighties") == {
        "genres_any": ["War"],
        "decade": 1980,
    }
    assert parse_intention(ml100k, "a 1995 western")["year"] == 1995
    assert set(parse_intention(ml100k, "something scary for the kids")["genres_any"]) == {
        "Horror",
        "Children's",
    }
    assert parse_intention(ml100k, "anything") == {}
    assert parse_intentions(ml100k, [None, ""]) == [{}, {}]


def test_parsed_derived_requests_still_match_their_targets(ml100k):
    items = np.arange(0, ml100k.n_items, 3)
    texts, _ = derive_intentions(ml100k, items, "I2", seed=0)
    parsed = parse_intentions(ml100k, texts)
    assert np.mean([bool(p) for p in parsed]) > 0.95
    ok = intention_matches(ml100k, parsed, items[:, None])[:, 0]
    assert ok.mean() > 0.97
