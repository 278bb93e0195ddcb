from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset
from instructrec.instructions import build, derive_intentions, intention_matches, review_phrase
from instructrec.instructions.attributes import item_attributes


def _shop() -> Dataset:
    items = pd.DataFrame(
        {
            "item_id": ["g1", "g2", "g3", "g4"],
            "title": ["Zelda", "Mario", "Halo", "Doom"],
            "genres": [
                ("Adventure",),
                ("Platformer", "Family"),
                ("Shooter",),
                ("Shooter", "Horror"),
            ],
            "year": pd.array([1998, 1985, 2001, None], dtype="Int64"),
            "category": ["Games", "Games", "Games", "Games"],
            "brand": ["Nintendo", "Nintendo", "Microsoft", "id"],
            "price": [20.0, 5.0, 60.0, 30.0],
        }
    )
    inter = pd.DataFrame(
        {
            "user_id": ["u", "u", "v", "v"],
            "item_id": ["g1", "g2", "g3", "g4"],
            "timestamp": [1, 2, 3, 4],
            "rating": [5, 4, 1, 5],
        }
    )
    return Dataset.from_frames("games", inter, items)


@pytest.mark.parametrize("kind", ["I1", "I2"])
def test_every_target_satisfies_its_own_intention(ml100k, kind):
    items = np.arange(ml100k.n_items)
    texts, attrs = derive_intentions(ml100k, items, kind=kind, seed=3)
    assert len(texts) == len(attrs) == len(items)
    has = np.array([bool(t) for t in texts])
    assert has.mean() > 0.95  # only items without any attribute stay silent
    ok = intention_matches(ml100k, attrs, items[:, None])[:, 0]
    assert ok[has].all()
    # and the intention is selective: most random items do not satisfy it
    rng = np.random.default_rng(0)
    others = rng.integers(0, ml100k.n_items, (len(items), 20))
    frac = intention_matches(ml100k, attrs, others)[has].mean()
    assert frac < (0.35 if kind == "I2" else 0.6)


def test_intentions_are_deterministic_and_seed_dependent(ml100k):
    items = np.arange(200)
    a = derive_intentions(ml100k, items, "I2", seed=0)
    b = derive_intentions(ml100k, items, "I2", seed=0)
    c = derive_intentions(ml100k, items, "I2", seed=1)
    assert a[0] == b[0] and a[1] == b[1]
    assert a[0] != c[0]


def test_specific_intention_uses_category_brand_price():
    ds = _shop()
    texts, attrs = derive_intentions(ds, np.zeros(300, np.int64), "I2", seed=0)
    keys = set().union(*[set(a) for a in attrs])
    assert {"genres", "category", "brand", "price_band", "decade"} <= keys | {"year"}
    assert any("by Nintendo" in t for t in texts)
    assert all(intention_matches(ds, attrs, np.zeros((300, 1), np.int64))[:, 0])


def test_intention_matches_semantics():
    ds = _shop()
    cands = np.array([[0, 1, 2, 3]] * 6)
    got = intention_matches(
        ds,
        [
            {"genres": ["Shooter"]},
            {"genres_any": ["Horror", "Adventure"]},
            {"genres": ["Shooter"], "decade": 2000},
            {"brand": "Nintendo"},
            {},
            None,
        ],
        cands,
    )
    assert got.tolist() == [
        [False, False, True, True],
        [True, False, False, True],
        [False, False, True, False],
        [True, True, False, False],
        [True] * 4,
        [True] * 4,
    ]
    a = item_attributes(ds)
    assert a.price_band.tolist() == [1, 0, 2, 2]
    with pytest.raises(ValueError, match="candidates must be"):
        intention_matches(ds, [{}], np.zeros((2, 3), np.int64))


def test_vague_phrases_come_from_the_attribute_map(ml100k):
    kids = ml100k.items.index[ml100k.items["genres"].map(lambda g: g == ("Children's",))][:5]
    texts, attrs = derive_intentions(ml100k, np.asarray(kids), "I1", seed=0)
    assert all(
        t in ("something to watch with the kids", "something the whole family can enjoy")
        for t in texts
    )
    assert all("Children's" in a["genres_any"] for a in attrs)


def test_review_phrase_is_short_and_never_the_whole_review():
    review = (
        "Absolutely wonderful family fun from start to finish. The kids loved every "
        "minute and so did we."
    )
    p = review_phrase(review)
    assert p and len(p.split()) <= 6 and p in review.lower() and p != review.lower()
    assert review_phrase("") == "" and review_phrase("Ok.") == ""
    texts, _ = derive_intentions(_shop(), np.array([0, 1]), "I1", seed=0, reviews=[review, ""])
    assert f'"{p}"' in texts[0] and '"' not in texts[1]


def test_p1_p2_do_not_leak_the_target_or_the_future(ml100k, ml100k_split):
    slots = [("P1", "I0", "T2"), ("P2", "I0", "T2")]
    before = build(ml100k, ml100k_split, stage="test", slots=slots, seed=0)
    row = before[before.P == "P2"].iloc[0]
    user, target = int(row.user), int(row.target)
    # change the target row (item, rating) and the target item's attributes, and add a
    # later interaction: the user's P1 and P2 texts must not move
    split = copy.deepcopy(ml100k_split)
    t = split.test
    k = int(np.flatnonzero(t["user"].to_numpy() == user)[0])
    t.loc[k, "rating"] = 1.0 if t.loc[k, "rating"] >= 4 else 5.0
    ds = copy.deepcopy(ml100k)
    ds.items.at[target, "genres"] = ("Horror", "Western")
    ds.items.at[target, "year"] = 1921
    after = build(ds, split, stage="test", slots=slots, seed=0)
    for p in ("P1", "P2"):
        b = before[(before["user"] == user) & (before["P"] == p)].iloc[0]
        a = after[(after["user"] == user) & (after["P"] == p)].iloc[0]
        assert a["query"] == b["query"]
        assert a["preference"] == b["preference"]
        assert list(a["history"]) == list(b["history"])
    # train stage: interactions after a training target never reach its texts
    tr = build(ml100k, ml100k_split, stage="train", slots=slots, seed=0)
    split2 = copy.deepcopy(ml100k_split)
    last = split2.train.groupby("user").tail(1).index  # the training targets
    split2.train.loc[last, "rating"] = 6 - split2.train.loc[last, "rating"]
    tr2 = build(ml100k, split2, stage="train", slots=slots, seed=0)
    assert tr["query"].tolist() == tr2["query"].tolist()


def _kinds(brand_phrase: str | None) -> Dataset:
    """Games-like table: an accessory among games, a franchise in the brand column."""
    items = _shop().items.copy()
    items["kind"] = ["game", "game", "accessory", None]
    items["category"] = "Xbox"
    items["brand"] = ["Zelda", "Zelda", None, "Doom"]
    meta = {"noun": "game"} | ({"brand_phrase": brand_phrase} if brand_phrase else {})
    inter = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["g1", "g3"], "timestamp": [1, 2]})
    return Dataset.from_frames("games", inter, items, meta=meta)


def test_specific_intentions_call_an_accessory_an_accessory():
    ds = _kinds(None)
    j = int(np.flatnonzero(ds.items["item_id"].to_numpy() == "g3")[0])
    texts, _ = derive_intentions(ds, np.full(60, j), "I2", seed=0)
    assert all("accessory" in t and " game" not in t for t in texts if t)
    g = int(np.flatnonzero(ds.items["item_id"].to_numpy() == "g4")[0])  # kind missing: domain noun
    texts, _ = derive_intentions(ds, np.full(60, g), "I2", seed=0)
    assert any(" game" in t for t in texts)


@pytest.mark.parametrize(
    ("phrase", "expected"), [(None, "by Zelda"), ("from the {} series", "from the Zelda series")]
)
def test_brand_phrase_comes_from_the_dataset(phrase, expected):
    ds = _kinds(phrase)
    j = int(np.flatnonzero(ds.items["item_id"].to_numpy() == "g1")[0])
    texts, attrs = derive_intentions(ds, np.full(200, j), "I2", seed=1)
    branded = [t for t, a in zip(texts, attrs, strict=True) if "brand" in a]
    assert branded and all(t.endswith(expected) for t in branded)
