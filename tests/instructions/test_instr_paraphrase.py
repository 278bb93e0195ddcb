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


def _tiny_games():
    """Four items with Games genres and platforms (the `category` attribute)."""
    items = pd.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["A - PS3", "B", "C - Wii", "D - PC"],
            "category": ["PlayStation 3", None, "Wii", "Atari Jaguar"],
            "genres": [("racing",), ("shooter",), (), ("puzzle",)],
        }
    )
    inter = pd.DataFrame(
        {"user_id": ["u"] * 4, "item_id": ["a", "b", "c", "d"], "rating": 4.0, "timestamp": 1.0}
    )
    return Dataset.from_frames("tiny-games", inter, items)


def test_platform_slot_is_rendered_from_the_table_and_stated():
    from instructrec.instructions.paraphrase import describable, paraphrases_for

    ds = _tiny_games()
    para = paraphrases_for(ds)
    assert para.version == "games-v1" and para.platform_words("PlayStation 3", "short") == "PS3"
    t1, a1 = paraphrase_intentions(ds, np.arange(4), "I1", seed=0)
    assert [bool(t) for t in t1] == [True, True, False, True]  # c has no genre
    assert a1[0] == {"genres_any": ["racing"]}
    texts, attrs = [], []
    for seed in range(12):
        t2, a2 = paraphrase_intentions(ds, np.arange(4), "I2", seed=seed)
        # b has no platform, d one the table does not name: nothing to state for them
        assert [bool(t) for t in t2] == [True, False, False, False]
        texts.append(t2[0])
        attrs.append(a2[0])
    assert all(a == {"genres": ["racing"], "category": "PlayStation 3"} for a in attrs)
    assert all(("PS3" in t) or ("PlayStation 3" in t) for t in texts)
    assert {"PS3" in t for t in texts} == {True, False}  # both styles drawn
    assert describable(ds, np.arange(4), "I1").tolist() == [True, True, False, True]
    assert describable(ds, np.array([0, 1, 2, 3, 0]), "I2").tolist() == [
        True, False, False, False, True
    ]  # fmt: skip
    assert intention_matches(ds, attrs[:1], np.arange(4)[None, :])[0].tolist() == [
        True, False, False, False
    ]  # fmt: skip


def test_the_set_follows_the_data_genres(ml100k):
    from instructrec.instructions.paraphrase import covers, paraphrases_for

    assert paraphrases_for(ml100k).version == "ml100k-v1"
    assert paraphrases_for(None).version == "ml100k-v1"
    assert paraphrases_for(_tiny_games()).version == "games-v1" and covers(_tiny_games())
    items = pd.DataFrame({"item_id": ["a"], "title": ["A"], "genres": [("Bollywood",)]})
    inter = pd.DataFrame({"user_id": ["u"], "item_id": ["a"], "rating": 4.0, "timestamp": 1.0})
    other = Dataset.from_frames("other", inter, items)
    assert paraphrases_for(other).version == "ml100k-v1" and not covers(other)


def test_load_rejects_bad_platform_entries(tmp_path):
    def write(body: str):
        p = tmp_path / "p.yaml"
        p.write_text(body)
        return p

    ok = "version: t\nentries:\n"
    table = "version: t\nplatforms:\n  Wii: {short: Wii, long: Nintendo Wii}\nentries:\n"
    spec = (
        '  - {kind: specific, genre: racing, platform_style: short, text: "cars on {platform}"}\n'
    )
    with pytest.raises(DataError, match="platforms"):
        load_paraphrases(write(ok + spec))  # a {platform} text needs the table
    s = load_paraphrases(write(table + spec))
    assert s.entries[0].slot == "platform" and s.platform_words("Wii", "long") == "Nintendo Wii"
    assert s.entries[0].render(platform="Wii") == "cars on Wii"
    with pytest.raises(ValueError, match="platform"):
        s.entries[0].render(1990)
    with pytest.raises(DataError, match="platform_style"):
        load_paraphrases(write(table + spec.replace("short", "tiny")))
    with pytest.raises(DataError, match="platform_style"):  # the decade's style key
        load_paraphrases(write(table + spec.replace("platform_style", "decade_style")))
    with pytest.raises(DataError, match="Wii"):
        load_paraphrases(write("version: t\nplatforms:\n  Wii: {short: Wii}\nentries:\n" + spec))
    with pytest.raises(DataError, match="one \\{decade\\} or \\{platform\\}"):
        load_paraphrases(write(table + spec.replace("{platform}", "{console}")))
