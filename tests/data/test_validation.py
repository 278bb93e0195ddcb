"""Bad input: one `DataError` naming the file, the line or column, and what was expected.

One test per case. Every reader opens files read-only: the last test checks bytes and mtime.
"""

import gzip
import json
import os

import pandas as pd
import pytest

from instructrec.data import DataError, read_any, read_instruction_data, read_table

HEADER = "user_id,item_id,rating,timestamp\n"


def _csv(tmp_path, body, header=HEADER, name="log.csv"):
    p = tmp_path / name
    p.write_bytes((header + body).encode() if isinstance(body, str) else header.encode() + body)
    return p


def _raises(path, match, **kwargs):
    with pytest.raises(DataError, match=match) as e:
        read_any(path, **kwargs)
    assert path.name in str(e.value)
    return e.value


def test_missing_column(tmp_path):
    p = _csv(tmp_path, "u1,i1,1\n", header="user_id,item_id,rating\n")
    e = _raises(p, "missing required column")
    assert e.column == "timestamp" and "--map timestamp=" in str(e)


def test_mapping_names_absent_column(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,1\n")
    e = _raises(p, "not in the file", columns={"item_id": "movieId"})
    assert e.column == "movieId" and "item_id" in str(e)


def test_mapping_names_unknown_field(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,1\n")
    _raises(p, "unknown field 'user'", columns={"user": "user_id"})


def test_wrong_type_timestamp(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,100\nu1,i2,4,yesterday\n")
    e = _raises(p, "not a number or date")
    assert (e.line, e.column) == (3, "timestamp") and "'yesterday'" in str(e)


def test_wrong_type_rating(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,100\nu1,i2,4,101\nu2,i1,five,102\n")
    e = _raises(p, "rating is not a number")
    assert (e.line, e.column) == (4, "rating")


def test_nan_timestamp(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,100\nu1,i2,4,\n")
    e = _raises(p, "timestamp is missing")
    assert (e.line, e.column) == (3, "timestamp")


def test_missing_id(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,100\n,i2,4,101\n")
    e = _raises(p, "user_id is missing")
    assert e.line == 3


def test_empty_file(tmp_path):
    p = tmp_path / "log.csv"
    p.write_bytes(b"")
    _raises(p, "empty file")


def test_header_only(tmp_path):
    p = _csv(tmp_path, "")
    _raises(p, "no interactions")


def test_duplicate_item_ids(tmp_path):
    log = _csv(tmp_path, "u1,i1,4,100\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,title\ni1,A\ni2,B\ni1,C\n")
    with pytest.raises(DataError, match="duplicate id 'i1'") as e:
        read_table(log, items=items)
    assert "items.csv" in str(e.value) and e.value.line == 4


def test_non_utf8_bytes(tmp_path):
    p = _csv(tmp_path, b"u1,i1,4,100\nu2,caf\xe9,4,101\n")
    e = _raises(p, "not valid UTF-8")
    assert e.line == 3


def test_ragged_row(tmp_path):
    p = _csv(tmp_path, "u1,i1,4,100\nu1,i2,4,101,extra,fields\n")
    e = _raises(p, "malformed row")
    assert e.line == 3


def test_truncated_json_line(tmp_path):
    p = tmp_path / "reviews.json"
    good = json.dumps({"reviewerID": "A", "asin": "B", "overall": 5, "unixReviewTime": 1})
    p.write_text(good + "\n" + good[:25] + "\n")
    e = _raises(p, "truncated or malformed JSON")
    assert e.line == 2


def test_json_line_lacks_field(tmp_path):
    p = tmp_path / "reviews.jsonl"
    p.write_text(json.dumps({"asin": "B", "overall": 5, "unixReviewTime": 1}) + "\n")
    e = _raises(p, "lacks reviewerID")
    assert (e.line, e.column) == (1, "reviewerID")


def test_truncated_gzip(tmp_path):
    whole = gzip.compress(
        b"".join(
            json.dumps({"reviewerID": f"A{i}", "asin": "B", "unixReviewTime": i}).encode() + b"\n"
            for i in range(2000)
        )
    )
    p = tmp_path / "reviews.json.gz"
    p.write_bytes(whole[: len(whole) // 2])
    _raises(p, "damaged or truncated")


def test_bad_parquet(tmp_path):
    p = tmp_path / "log.parquet"
    p.write_bytes(b"PAR1 not really parquet")
    _raises(p, "not a readable Parquet file")


def test_missing_file(tmp_path):
    _raises(tmp_path / "nope.csv", "no such file")


def test_reading_never_modifies_sources(tmp_path):
    log = _csv(tmp_path, "u1,i1,4,100\nu1,i2,3,101\nu2,i1,5,102\n")
    items = tmp_path / "items.csv"
    items.write_text("item_id,title,genres\ni1,A,Comedy|Drama\ni2,B,Horror\n")
    parquet = tmp_path / "log.parquet"
    pd.read_csv(log).to_parquet(parquet)
    reviews = tmp_path / "reviews.json.gz"
    reviews.write_bytes(
        gzip.compress(
            json.dumps({"reviewerID": "A", "asin": "B", "overall": 5, "unixReviewTime": 1}).encode()
        )
    )
    alpaca = tmp_path / "alpaca.json"
    alpaca.write_text(json.dumps([{"instruction": "a", "input": "", "output": "b"}]))
    files = [log, items, parquet, reviews, alpaca]
    for f in files:  # an old mtime, so a rewrite within the same second would still show
        os.utime(f, (1_000_000_000, 1_000_000_000))
    before = {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files}
    read_table(log, items=items)
    read_any(parquet)
    read_any(reviews)
    read_instruction_data(alpaca)
    assert {f: (f.read_bytes(), f.stat().st_mtime_ns) for f in files} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in files)
