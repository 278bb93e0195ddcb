"""Amazon reviews + metadata, 2014 and 2018 field layouts, plain and gzip."""

import gzip
import json

import numpy as np
import pytest

from instructrec.data import read_amazon, read_any
from instructrec.data.amazon import parse_price

REVIEWS = [
    {
        "reviewerID": "A1",
        "asin": "B001",
        "overall": 5.0,
        "unixReviewTime": 1300000000,
        "reviewText": "Great game, loved the story.",
        "summary": "Great",
    },
    {
        "reviewerID": "A1",
        "asin": "B002",
        "overall": 2.0,
        "unixReviewTime": 1300000100,
        "reviewText": "Too short.",
        "summary": "Meh",
    },
    {
        "reviewerID": "A2",
        "asin": "B001",
        "overall": 4.0,
        "reviewTime": "09 13, 2009",
        "reviewText": "Fun",
        "summary": "Fun",
    },
]
META_2018 = [
    {
        "asin": "B001",
        "title": "Space Quest",
        "category": ["Video Games", "PC", "Games"],
        "brand": "Sierra",
        "price": "$12.99",
    },
    {"asin": "B002", "title": "Kart Racer", "category": [], "brand": "", "price": ""},
    {"asin": "B999", "title": "Never reviewed", "price": "$1.00"},
]
META_2014 = [
    "{'asin': 'B001', 'title': 'Space Quest', 'categories': [['Video Games', 'PC', 'Games'], "
    "['Video Games', 'Adventure']], 'brand': 'Sierra', 'price': 12.99}",
    "{'asin': 'B002', 'categories': [['Video Games', 'Racing']], 'price': 3}",
]


def _write(path, lines, gz=False):
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_reviews_and_2018_metadata(tmp_path, gz):
    suffix = ".json.gz" if gz else ".json"
    rev = _write(tmp_path / f"Video_Games{suffix}", REVIEWS, gz)
    meta = _write(tmp_path / f"meta_Video_Games{suffix}", META_2018, gz)
    ds = read_any(rev, meta=meta)
    assert ds.name == "Video_Games"
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 2, 3)  # B999 left out
    inter = ds.interactions
    assert inter.review.tolist()[0] == "Great game, loved the story."
    assert inter.summary.tolist() == ["Great", "Meh", "Fun"]
    assert inter.rating.tolist() == [5.0, 2.0, 4.0]
    assert inter.timestamp.iloc[2] == 1252800000.0  # 2009-09-13 from reviewTime
    items = ds.items.set_index("item_id")
    assert items.loc["B001", "genres"] == ("Games",)
    assert items.loc["B001", "category"] == "Video Games > PC > Games"
    assert items.loc["B001", "brand"] == "Sierra" and items.loc["B001", "price"] == 12.99
    assert items.loc["B002", "genres"] == () and np.isnan(items.loc["B002", "price"])
    assert ds.summary()["has_reviews"]


def test_2014_python_literal_metadata(tmp_path):
    rev = _write(tmp_path / "reviews.jsonl", REVIEWS)
    meta = _write(tmp_path / "meta.json", META_2014)
    ds = read_amazon(rev, meta)
    items = ds.items.set_index("item_id")
    assert items.loc["B001", "genres"] == ("Games", "Adventure")
    assert items.loc["B002", "genres"] == ("Racing",)
    assert items.loc["B002", "title"] == "B002"  # no title: the asin stands in
    assert items.loc["B002", "price"] == 3.0


@pytest.mark.parametrize(
    "value, expected",
    [
        (12.99, 12.99),
        ("12.99", 12.99),
        ("$12.99", 12.99),
        ("$1,299.00", 1299.0),
        ("$10.99 - $15.99", 10.99),
        (7, 7.0),
    ],
)
def test_parse_price(value, expected):
    assert parse_price(value) == expected


@pytest.mark.parametrize("value", [None, "", "free", True])
def test_parse_price_missing(value):
    assert np.isnan(parse_price(value))
