"""Domain words in templates: {consumed}/{consume}/{a_noun} read "watched"/"watch"/"a movie" for
MovieLens (byte-identical to the wording the models were trained and reported with) and
something neutral, or what ``dataset.meta`` says, for other domains."""

from __future__ import annotations

import hashlib
import pickle
import re

import numpy as np
import pytest

from instructrec.data.errors import DataError
from instructrec.feedback.optimize import check_template
from instructrec.instructions import domain_verbs, domain_words, render
from instructrec.instructions.catalogue import Template, TemplateCatalogue
from instructrec.instructions.render import RowData, render_rows
from instructrec.rerank.instances import TextSide
from instructrec.testing.datasets import synthetic_dataset

# sha256(text + "\0" + choices)[:12] of every template as it read before the domain fields
# existed (MovieLens wording, "watched" spelled out). Trained models and reported numbers
# depend on it: an existing template's MovieLens wording must not change.
LEGACY = {
    "p1i0t3-a": "804fb6936c2c", "p1i0t3-b": "e9585747e182", "p1i0t3-c": "cfda3be83750",
    "p1i0t3-h": "536158415e03", "p1i1t3-a": "a4cdd1177690", "p1i1t3-b": "848ed79ffe5d",
    "p1i1t3-h": "42a6e83d60f8", "p1i2t3-a": "30d966ea5349", "p1i2t3-b": "821ecc24dff0",
    "p1i2t3-h": "47522df29c35", "p2i0t3-a": "13f9b2bd6829", "p2i0t3-b": "0249d76de0c7",
    "p2i1t3-a": "e9d0c878ec09", "p2i1t3-b": "a3829522f947", "p2i2t3-a": "d2a6720d9375",
    "p2i2t3-b": "925c9d6ef383", "p0i1t3-a": "b7fd042b5f3c", "p0i1t3-b": "65ddd20d7ed9",
    "p0i2t3-a": "4567c55d5c02", "p0i2t3-h": "1c2af6272a83", "p1i0t2-a": "c7eb29030635",
    "p1i0t2-b": "a493bf43c4c8", "p1i0t2-h": "d43c1c667025", "p1i1t2-a": "997a6b87d5e4",
    "p1i1t2-b": "9302b09bd7b4", "p1i2t2-a": "e03956abaa36", "p1i2t2-b": "23cabd38952a",
    "p2i0t2-a": "9b19170bb020", "p2i0t2-b": "37c0ee724c5f", "p0i1t2-a": "ffefc5585ca3",
    "p0i1t2-b": "21eed269ae84", "p0i2t2-a": "7aee77115358", "p0i2t2-b": "c705a71962a5",
    "p1i0t0-a": "0ee7ee1f0644", "p1i0t0-b": "90939d6fa123", "p1i0t0-h": "0d8d498371a1",
    "p2i0t0-a": "a78f7602fef9", "p2i0t0-b": "e3ff42cf7f81", "p1i2t0-a": "1d8392c695cf",
    "p1i2t0-b": "6441a153cdd9", "p0i2t0-a": "976ffab4a57e", "p0i2t0-b": "7b66d976c166",
    "p1i0t1-a": "80adf42b7fae", "p1i0t1-b": "5d5cb8eef739", "p1i0t1-h": "8775047d6853",
    "p2i0t1-a": "8df219984310", "p2i0t1-b": "f0ba14a64919", "p1i2t1-a": "bef7c8237cde",
    "p1i2t1-b": "a334531716bb", "r-i2-a": "7bb4836fe0a1", "r-i2-b": "02664c050524",
    "r-i1-a": "2be68223ce23",
}  # fmt: skip


def _legacy(text: str) -> str:
    """A template with the movie words spelled out, as the catalogue read before."""
    return (
        text.replace("{consumed}", "watched")
        .replace("{consume}", "watch")
        .replace("{a_noun}", "a {noun}")
    )


def _legacy_catalogue() -> TemplateCatalogue:
    return TemplateCatalogue(
        [
            Template(t.id, t.slot, _legacy(t.text), _legacy(t.choices), t.held_out)
            for t in TemplateCatalogue.default()
        ]
    )


def _rows(dataset, t: Template, hists, cands, items):
    """RowData for every row of ``hists`` filled for template ``t``."""
    n = len(hists)
    k = {"T0": 1, "T1": 2}.get(t.T, 5)
    intention = {"I1": "something for the kids", "I2": "a 1990s comedy"}.get(t.I, "")
    return RowData(
        dataset,
        n,
        np.concatenate(hists),
        np.array([len(h) for h in hists]),
        cands[:, :k].reshape(-1),
        np.full(n, k),
        intention=np.array([intention] * n, dtype=object),
        preference=np.array(["I like war stories."] * n, dtype=object),
        item=items,
    )


def test_movielens_wording_of_every_template_is_pinned():
    cat = TemplateCatalogue.default()
    assert set(LEGACY) <= {t.id for t in cat}
    for t in cat:
        if t.id in LEGACY:
            got = hashlib.sha256((_legacy(t.text) + "\0" + _legacy(t.choices)).encode())
            assert got.hexdigest()[:12] == LEGACY[t.id], (
                f"{t.id}: the MovieLens wording changed; trained models depend on it"
            )
    # the verbs are no longer spelled out in the packaged templates
    assert not [t.id for t in cat if re.search(r"\bwatch", t.text + t.choices, re.I)]


def test_ml100k_renders_are_byte_identical_to_the_legacy_wording(ml100k, ml100k_split):
    rows = [0, 5, 17, 300]
    hists = [np.asarray(ml100k_split.histories("test")[r], np.int64) for r in rows]
    cands = ml100k_split.candidates["cand10"]["test"][rows].astype(np.int64)
    items = cands[:, 0]
    new, old = TemplateCatalogue.default(), _legacy_catalogue()
    with_watch = set()
    for t in new:
        t_old = old.get(t.id)
        data = _rows(ml100k, t, hists, cands, items)
        choice = np.zeros(len(rows), np.int64)
        got = [a.to_pylist() for a in render_rows(data, [t], choice)]
        assert got == [a.to_pylist() for a in render_rows(data, [t_old], choice)], t.id
        if any("watch" in s for s in got[0]) and "watch" in t_old.text + t_old.choices:
            with_watch.add(t.id)
        if t.T == "R":
            continue
        kw = dict(
            intentions=[data.intention[0] or None] * len(rows),
            task=t.T,
            template_ids=[t.id],
            preferences=list(data.preference) if t.P == "P2" else None,
            candidates=[c[: {"T0": 1, "T1": 2}.get(t.T, 5)] for c in cands],
            with_candidates=True,
            vague=t.I == "I1",
        )
        h = hists if t.P != "P0" else [np.empty(0, np.int64)] * len(rows)
        assert render(ml100k, h, catalogue=new, **kw) == render(ml100k, h, catalogue=old, **kw)
    assert len(with_watch) == 10  # every template that said "watch" still does for movies
    # the reranker's query path (TextSide + render)
    side = TextSide.of(ml100k)
    for t in new.templates(held_out=None):
        if t.T != "T3" or t.P == "P0":
            continue
        intent = None if t.I == "I0" else "a 1990s comedy"
        got = side.render(
            hists,
            [intent] * 4,
            templates=[t.id],
            preferences=["I like war."] * 4,
            history=0,
            slots=[t.P + t.I] * 4,
        )
        want = _legacy(t.text).format(
            history="the movies in the history",
            intention=intent or "",
            preference="I like war.",
            noun="movie",
            nouns="movies",
            Noun="Movie",
            item="",
            candidates="",
        )
        assert got == [want] * 4, t.id


def _item_dataset(**meta):
    ds = synthetic_dataset()
    ds.name = "amazon-beauty"
    ds.meta.update(meta)
    return ds


def _render_all(ds) -> dict[str, str]:
    cands = np.arange(15, dtype=np.int64).reshape(3, 5)
    hists = [np.array([1, 2, 3]), np.array([4, 5]), np.array([6])]
    out = {}
    for t in TemplateCatalogue.default():
        data = _rows(ds, t, hists, cands, cands[:, 0])
        instr, _ = render_rows(data, [t], np.zeros(3, np.int64))
        out[t.id] = instr[0].as_py()
    side = TextSide.of(ds)
    for qh in (0, 3):
        for i, q in enumerate(side.render(hists * 4, templates="all", history=qh, seed=qh)):
            out[f"query-{qh}-{i}"] = q
    return out


def test_item_domain_renders_no_movie_words():
    texts = _render_all(_item_dataset(noun="product"))
    assert not [
        k for k, s in texts.items() if re.search(r"watch|movie", s.replace("Movie ", ""), re.I)
    ]
    assert (
        texts["p1i0t3-a"].split(" Pick")[0]
        == "The user has tried these products in order, oldest first: Movie 1; Movie 2; "
        "Movie 3. Which product will the user try next?"
    )
    assert texts["p2i0t1-a"].startswith(
        "I like war stories. Which of these two products should I try?"
    )
    assert texts["r-i2-a"].startswith("Here is a product: ")
    # the default noun "item" takes "an"
    texts = _render_all(_item_dataset())
    assert not [k for k, s in texts.items() if re.search(r"watch|\ba item", s, re.I)]
    assert texts["p1i1t2-a"].endswith("Name an item for me.")


def test_meta_verbs_override_and_known_domains():
    ds = _item_dataset(noun="product", verbs=["bought", "buy"])
    assert domain_verbs(ds) == ("bought", "buy")
    texts = _render_all(ds)
    assert texts["p1i0t3-a"].startswith("The user has bought these products in order")
    assert "Which product will the user buy next?" in texts["p1i0t3-a"]
    assert texts["p1i2t0-b"].startswith("A user who bought Movie 1; Movie 2; Movie 3 asks for")
    # also on a movie dataset, and as a mapping
    movies = _item_dataset(verbs={"consumed": "streamed", "consume": "stream"})
    movies.name = "ml-100k"
    assert domain_words(movies)["consumed"] == "streamed"
    movies.meta.pop("verbs")
    assert domain_words(movies) == {
        "noun": "movie",
        "nouns": "movies",
        "Noun": "Movie",
        "a_noun": "a movie",
        "consumed": "watched",
        "consume": "watch",
    }
    assert domain_verbs(_item_dataset(noun="book")) == ("read", "read")
    assert domain_verbs(_item_dataset(noun="song")) == ("listened to", "listen to")
    assert domain_words(_item_dataset(noun="utensil", a_noun="a utensil"))["a_noun"] == "a utensil"
    for bad in ("buy", ["bought"], ["bought", ""], {"consumed": "bought"}):
        with pytest.raises(DataError, match=r'meta\["verbs"\]'):
            domain_words(_item_dataset(verbs=bad))


def test_a_reranker_text_side_pickled_before_the_verbs_still_says_watched(ml100k):
    old = TextSide.__new__(TextSide)  # what an older saved reranker unpickles to
    old.__dict__.update(titles=TextSide.of(ml100k).titles, noun="movie", nouns="movies")
    old = pickle.loads(pickle.dumps(old))
    assert old.fields() == domain_words(ml100k)
    [q] = old.render([np.array([1, 2])], templates=["p1i0t3-a"], history=0, slots=["P1I0"])
    assert q == (
        "The user has watched these movies in order, oldest first: the movies in the "
        "history. Which movie will the user watch next?"
    )


def test_unknown_fields_are_refused_clearly(tmp_path):
    cat = TemplateCatalogue([])
    with pytest.raises(DataError, match=r"unknown field \{watched\}.*\{consumed\}"):
        cat.add(Template("x", ("P1", "I0", "T2"), "I have {watched} {history}."))
    with pytest.raises(DataError, match=r"\{noun\} takes no conversion"):
        cat.add(Template("x", ("P1", "I0", "T2"), "{history}: {noun!r}?"))
    t = cat.add(
        Template("ok", ("P1", "I0", "T2"), "I have {consumed} {history}. {a_noun} to {consume}?")
    )
    assert t.fields == ("consumed", "history", "a_noun", "consume")
    p = tmp_path / "t.yaml"
    p.write_text("templates:\n  - id: a\n    slot: [P1, I0, T2]\n    text: '{history} {verb}'\n")
    with pytest.raises(DataError, match=r"unknown field \{verb\}"):
        TemplateCatalogue.from_yaml(p)
    # the template optimiser accepts the same fields
    assert check_template("Having {consumed} {history}, which {noun} to {consume}?", "P1I0T3") == ""
    assert "unknown fields" in check_template("{history} {watched}", "P1I0T3")
