"""paraphrase_intentions: hand-written requests for target items, with the attrs contract of
derive_intentions (intention_matches and the attribute filter read them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset
from instructrec.data.errors import DataError
from instructrec.instructions import intention_matches, item_attributes, parse_intention
from instructrec.instructions.paraphrase import (
    load_paraphrases,
    paraphrase_intentions,
    render_decade,
)


@pytest.fixture(scope="module")
def para():
    return load_paraphrases()


def _genres(ds, item) -> set[str]:
    a = item_attributes(ds)
    return {a.genre_names[g] for g in a.genre_idx[a.genre_ptr[item] : a.genre_ptr[item + 1]]}


def test_render_decade_styles():
    assert render_decade(1980, "short") == "80s"
    assert render_decade(1920, "short") == "20s"
    assert render_decade(1980, "long") == "1980s"
    assert render_decade(1950, "word") == "fifties"
    assert render_decade(2000, "word") == "2000s"  # no word form: long
    with pytest.raises(ValueError, match="decade_style"):
        render_decade(1980, "roman")


@pytest.mark.parametrize("kind", ["I1", "I2"])
def test_texts_state_a_genre_of_the_target(ml100k, para, kind):
    items = np.arange(0, ml100k.n_items, 3)
    texts, attrs = paraphrase_intentions(ml100k, items, kind=kind, seed=0, paraphrases=para)
    assert len(texts) == len(attrs) == len(items)
    by_text = {}
    for e in para.of_kind(kind):
        for d in [None] if kind == "I1" else [1920, 1930, 1940, 1950, 1960, 1970, 1980, 1990]:
            by_text.setdefault(e.render(d), []).append(e)
    used = set()
    for item, t, d in zip(items, texts, attrs, strict=True):
        if not t:
            assert d is None
            continue
        mine = _genres(ml100k, item)
        entries = by_text[t]  # the text is one of the set, rendered
        assert any(set(e.genres) <= mine for e in entries)
        stated = d["genres_any"] if kind == "I1" else d["genres"]
        assert set(stated) <= mine and any(set(e.genres) == set(stated) for e in entries)
        used.add(t)
    assert len(used) > 50  # many different texts, not one per genre
    # every described target satisfies its own stated intention
    ok = [i for i, d in enumerate(attrs) if d]
    match = intention_matches(ml100k, [attrs[i] for i in ok], items[ok][:, None])
    assert match.all()
    # the attrs narrow the catalogue like derive_intentions' do (not everything matches)
    every = np.tile(np.arange(ml100k.n_items), (5, 1))
    assert intention_matches(ml100k, [attrs[i] for i in ok[:5]], every).mean() < 0.6


def test_decade_is_rendered_and_read_back(ml100k, para):
    items = np.arange(ml100k.n_items)
    texts, attrs = paraphrase_intentions(ml100k, items, kind="I2", seed=1, paraphrases=para)
    dec = item_attributes(ml100k).decade
    styles = set()
    for item, t, d in zip(items, texts, attrs, strict=True):
        if not t:
            assert dec[item] <= 0 or not _genres(ml100k, item)
            continue
        assert d["decade"] == dec[item]
        assert any(render_decade(d["decade"], s) in t for s in ("short", "long", "word"))
        styles |= {s for s in ("short", "long", "word") if render_decade(d["decade"], s) in t}
        assert parse_intention(ml100k, t).get("decade") == d["decade"], t
    assert styles == {"short", "long", "word"}


def test_seeded_and_deterministic(ml100k, para):
    items = np.arange(200)
    a = paraphrase_intentions(ml100k, items, "I1", seed=3, paraphrases=para)
    assert a == paraphrase_intentions(ml100k, items, "I1", seed=3, paraphrases=para)
    assert a[0] != paraphrase_intentions(ml100k, items, "I1", seed=4, paraphrases=para)[0]
    # a row's text depends on its position and the seed, not on the rows after it
    head = paraphrase_intentions(ml100k, items[:50], "I1", seed=3, paraphrases=para)
    assert head[0] == a[0][:50]
    assert paraphrase_intentions(ml100k, items, "I1", seed=3)[0] == a[0]  # default set
    with pytest.raises(ValueError, match="kind"):
        paraphrase_intentions(ml100k, items, "I3")


def test_items_without_genre_or_year_get_nothing():
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["A", "B", "C", "D"],
            "year": pd.array([1985, None, 1990, 1975], dtype="Int64"),
            "genres": [("Horror",), ("Comedy",), (), ("Bollywood",)],
        }
    )
    inter = pd.DataFrame(
        {"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"], "rating": 4.0, "timestamp": 1.0}
    )
    ds = Dataset.from_frames("tiny", inter, items)
    t1, a1 = paraphrase_intentions(ds, np.arange(4), "I1")
    assert [bool(t) for t in t1] == [True, True, False, False]  # no genre / unknown genre
    assert a1[0] == {"genres_any": ["Horror"]} and a1[2] is None and a1[3] is None
    t2, a2 = paraphrase_intentions(ds, np.arange(4), "I2")
    assert [bool(t) for t in t2] == [True, False, False, False]  # b has no year
    assert a2[0] == {"genres": ["Horror"], "decade": 1980} and a2[1] is None
    assert intention_matches(ds, a2, np.tile(np.arange(4), (4, 1)))[0].tolist() == [
        True, False, False, False
    ]  # fmt: skip


def test_load_rejects_bad_files(tmp_path):
    def write(body: str):
        p = tmp_path / "p.yaml"
        p.write_text(body)
        return p

    with pytest.raises(DataError, match="not found"):
        load_paraphrases(tmp_path / "missing.yaml")
    with pytest.raises(DataError, match="version"):
        load_paraphrases(write("entries: []\n"))
    ok = "version: t\nentries:\n"
    with pytest.raises(DataError, match="lacks `genre`"):
        load_paraphrases(write(ok + "  - {kind: vague, text: hi}\n"))
    with pytest.raises(DataError, match="kind must be"):
        load_paraphrases(write(ok + "  - {kind: odd, genre: War, text: hi}\n"))
    with pytest.raises(DataError, match="decade"):
        load_paraphrases(
            write(ok + "  - {kind: specific, genre: War, decade_style: long, text: hi}\n")
        )
    with pytest.raises(DataError, match="decade_style"):
        load_paraphrases(write(ok + '  - {kind: specific, genre: War, text: "x {decade}"}\n'))
    with pytest.raises(DataError, match="vague text has no slot"):
        load_paraphrases(write(ok + '  - {kind: vague, genre: War, text: "x {decade}"}\n'))
    with pytest.raises(DataError, match="duplicate"):
        load_paraphrases(
            write(ok + "  - {kind: vague, genre: War, text: hi}\n"
                  "  - {kind: vague, genre: Comedy, text: Hi}\n")
        )  # fmt: skip
    with pytest.raises(DataError, match="unknown keys"):
        load_paraphrases(write(ok + "  - {kind: vague, genre: War, text: hi, mood: sad}\n"))
    s = load_paraphrases(write(ok + "  - {kind: vague, genre: War, text: hi}\n"))
    assert s.version == "t" and len(s.sha256) == 64 and s.entries[0].render() == "hi"
