from __future__ import annotations

import numpy as np

from instructrec.instructions import (
    derive_intentions,
    intention_excluded,
    intention_matches,
    parse_intention,
)
from instructrec.instructions.attributes import item_attributes
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


# ---------------------------------------------------------------------- negation
def test_negation_excludes_and_keeps_the_positive_part(ml100k):
    assert parse_intention(ml100k, "something funny from the 90s, no horror") == {
        "genres_any": ["Comedy"],
        "decade": 1990,
        "excluded": {"genres": ["Horror"]},
    }
    for text in ("no horror", "not horror", "nothing scary", "avoid horror movies"):
        assert parse_intention(ml100k, text) == {"excluded": {"genres": ["Horror"]}}, text
    assert parse_intention(ml100k, "without romance") == {"excluded": {"genres": ["Romance"]}}
    assert parse_intention(ml100k, "a comedy but not a musical") == {
        "genres_any": ["Comedy"],
        "excluded": {"genres": ["Musical"]},
    }
    assert parse_intention(ml100k, "anything except westerns") == {
        "excluded": {"genres": ["Western"]}
    }
    assert parse_intention(ml100k, "I don't want anything scary") == {
        "excluded": {"genres": ["Horror"]}
    }
    assert parse_intention(ml100k, "a drama, not from the 80s") == {
        "genres_any": ["Drama"],
        "excluded": {"decades": [1980]},
    }
    assert parse_intention(ml100k, "a western, not 1995")["excluded"] == {"years": [1995]}


def test_negation_scope(ml100k):
    both = {"genres": ["Horror", "Thriller"]}
    assert parse_intention(ml100k, "no horror or thriller") == {"excluded": both}
    assert parse_intention(ml100k, "neither horror nor thriller") == {"excluded": both}
    assert parse_intention(ml100k, "a comedy, no horror or thriller") == {
        "genres_any": ["Comedy"],
        "excluded": both,
    }
    assert parse_intention(ml100k, "no horror and thriller movies")["excluded"] == both
    assert parse_intention(ml100k, "no horror thriller")["excluded"] == both  # a compound
    assert parse_intention(ml100k, "no war movies or romance")["excluded"] == {
        "genres": ["War", "Romance"]
    }
    # a comma list continues only when closed by or/nor/and
    assert parse_intention(ml100k, "no horror, thriller or war")["excluded"] == {
        "genres": ["Horror", "Thriller", "War"]
    }
    assert parse_intention(ml100k, "no horror, comedy please") == {
        "genres_any": ["Comedy"],
        "excluded": {"genres": ["Horror"]},
    }
    # other words, "but" and punctuation close the scope
    assert parse_intention(ml100k, "no horror and a comedy")["genres_any"] == ["Comedy"]
    assert parse_intention(ml100k, "no horror but from the 90s")["decade"] == 1990
    assert parse_intention(ml100k, "not sure, maybe a comedy") == {"genres_any": ["Comedy"]}
    assert parse_intention(ml100k, "No, a comedy") == {"genres_any": ["Comedy"]}
    # cue words that do not negate what follows
    assert parse_intention(ml100k, "I don't mind horror") == {"genres_any": ["Horror"]}
    assert parse_intention(ml100k, "not only funny but scary") == {
        "genres_any": ["Comedy", "Horror"]
    }


def test_negation_compounds_and_conflicts(ml100k):
    # a hyphenated compound is two genre mentions: asked for, both are asked for ...
    assert parse_intention(ml100k, "a horror-comedy") == {"genres_any": ["Comedy", "Horror"]}
    # ... excluded, both are excluded, unless one is asked for elsewhere (asked-for wins)
    assert parse_intention(ml100k, "no horror-comedy")["excluded"] == {
        "genres": ["Horror", "Comedy"]
    }
    assert parse_intention(ml100k, "something funny, no horror-comedy") == {
        "genres_any": ["Comedy"],
        "excluded": {"genres": ["Horror"]},
    }
    assert parse_intention(ml100k, "scary but not horror") == {"genres_any": ["Horror"]}
    # a date after an unknown word in a negated scope is doubtful: neither asked nor excluded
    assert parse_intention(ml100k, "a comedy with no violence from the 90s") == {
        "genres_any": ["Comedy"]
    }


def test_requests_without_negation_parse_as_before(ml100k):
    items = np.arange(0, ml100k.n_items, 2)
    for kind in ("I1", "I2"):
        texts, _ = derive_intentions(ml100k, items, kind, seed=3)
        assert not any("excluded" in p for p in parse_intentions(ml100k, texts))


def test_intention_matches_and_excluded_read_the_excluded_key(ml100k):
    a = item_attributes(ml100k)
    h, c = a.genre_names.index("Horror"), a.genre_names.index("Comedy")
    horror_comedy = np.flatnonzero(a.genre_matrix[:, h] & a.genre_matrix[:, c])[0]
    comedy = np.flatnonzero(~a.genre_matrix[:, h] & a.genre_matrix[:, c])[0]
    other = np.flatnonzero(~a.genre_matrix[:, h] & ~a.genre_matrix[:, c])[0]
    cands = np.array([[horror_comedy, comedy, other]] * 3)
    attrs = [
        {"genres_any": ["Comedy"], "excluded": {"genres": ["Horror"]}},
        {"excluded": {"genres": ["Horror"]}},
        {"genres_any": ["Comedy"]},
    ]
    assert intention_matches(ml100k, attrs, cands).tolist() == [
        [False, True, False],
        [False, True, True],
        [True, True, False],
    ]
    assert intention_excluded(ml100k, attrs, cands).tolist() == [
        [True, False, False],
        [True, False, False],
        [False, False, False],
    ]
    dec = a.decade[other]
    got = intention_excluded(ml100k, [{"excluded": {"decades": [int(dec)]}}], cands[:1])
    assert got.tolist() == [[bool(a.decade[horror_comedy] == dec), a.decade[comedy] == dec, True]]


def _franchises():
    import pandas as pd

    from instructrec.data import Dataset

    brands = [".hack", "Call of Duty", "Call of Duty: Black Ops", "Halo", "Fatal Frame"]
    brands += [f"Series {k}" for k in range(300)]  # many names: the first-word index matters
    items = pd.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(len(brands))],
            "title": brands,
            "brand": brands,
            "category": ["Xbox 360"] * len(brands),
        }
    )
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["i0"], "timestamp": [1]})
    return Dataset.from_frames("games", inter, items)


def test_brand_names_are_found_by_their_first_word_index():
    ds = _franchises()
    got = parse_intentions(
        ds,
        [
            "something from the Call of Duty: Black Ops series",
            "a .hack game please",
            "an xbox 360 game, not Halo",
            "recall of duty",  # 'call' inside a word is no mention
            "from the series 17 series",
        ],
    )
    assert got[0]["brand"] == "Call of Duty: Black Ops"  # the longest name wins
    assert got[1]["brand"] == ".hack"  # names not starting with a letter are always tried
    assert got[2]["category"] == "Xbox 360" and got[2]["excluded"] == {"brands": ["Halo"]}
    assert "brand" not in got[3]
    assert got[4]["brand"] == "Series 17"


def test_repeated_texts_are_parsed_once_but_rows_do_not_share_dicts(ml100k):
    got = parse_intentions(ml100k, ["a comedy, no horror"] * 3 + [None])
    assert got[0] == got[1] == got[2] and got[3] == {}
    got[0]["genres_any"].append("X")
    assert "X" not in got[1]["genres_any"]


def test_repeated_texts_are_read_from_a_bounded_cache(ml100k, monkeypatch):
    """A text already read for this catalogue is not parsed again; each caller gets its own
    copy; the cache keeps at most PARSE_CACHE texts, dropping the least recently used."""
    from instructrec.instructions import parse as P

    calls = []
    real = P._parse
    monkeypatch.setattr(P, "_parse", lambda a, t: calls.append(t) or real(a, t))
    monkeypatch.setattr(P, "PARSE_CACHE", 2)
    item_attributes(ml100k).__dict__.pop("_parsed", None)
    first = parse_intention(ml100k, "a comedy, no horror")
    first["genres_any"].append("Western")  # a caller changing its answer
    again = parse_intention(ml100k, "a comedy, no horror")
    assert calls == ["a comedy, no horror"]
    assert again == {"genres_any": ["Comedy"], "excluded": {"genres": ["Horror"]}}
    parse_intention(ml100k, "a western")
    parse_intention(ml100k, "a comedy, no horror")  # now the most recent
    parse_intention(ml100k, "a 1995 drama")  # evicts "a western"
    parse_intention(ml100k, "a comedy, no horror")
    parse_intention(ml100k, "a western")
    assert calls == ["a comedy, no horror", "a western", "a 1995 drama", "a western"]
