"""Readers: CSV/Parquet with column mappings, Parquet directories, atomic round trip, dispatch."""

import numpy as np
import pandas as pd
import pytest

from instructrec.data import (
    DataError,
    Dataset,
    read_any,
    read_atomic,
    read_table,
    write_atomic,
    write_parquet,
)
from instructrec.data.readers import parse_mapping


def _log(tmp_path, name="ratings.csv", sep=","):
    frame = pd.DataFrame(
        {
            "userId": [1, 1, 1, 2, 2, 2],
            "movieId": [10, 20, 30, 20, 30, 40],
            "rating": [4.0, 3.5, 5.0, 2.0, 4.0, 1.0],
            "ts": [100, 200, 300, 100, 100, 150],
        }
    )
    path = tmp_path / name
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, sep=sep)
    return path, frame


MAPPING = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "ts"}


@pytest.mark.parametrize("name", ["ratings.csv", "ratings.parquet", "ratings.tsv"])
def test_read_table_with_mapping(tmp_path, name):
    path, frame = _log(tmp_path, name, sep="\t" if name.endswith(".tsv") else ",")
    ds = read_table(path, columns=MAPPING)
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (2, 4, 6)
    back = pd.DataFrame(
        {"u": ds.user_ids[ds.interactions.user], "i": ds.item_ids[ds.interactions.item]}
    )
    assert back.u.tolist() == frame.userId.astype(str).tolist()
    assert back.i.tolist() == frame.movieId.astype(str).tolist()
    assert ds.interactions.rating.tolist() == frame.rating.tolist()
    assert ds.interactions.timestamp.tolist() == frame.ts.astype(float).tolist()


def test_aliases_need_no_mapping(tmp_path):
    # MovieLens' own names (userId, movieId, timestamp) are recognised without --map
    path = tmp_path / "ml.csv"
    pd.DataFrame({"userId": [1, 1], "movieId": [5, 6], "timestamp": [1, 2]}).to_csv(
        path, index=False
    )
    ds = read_any(path)
    assert ds.n_items == 2 and ds.interactions.rating.isna().all()


def test_item_table_with_genres_and_mapping(tmp_path):
    path, _ = _log(tmp_path)
    items = tmp_path / "movies.csv"
    pd.DataFrame(
        {
            "movieId": [10, 20, 30, 40, 50],
            "name": list("abcde"),
            "tags": ["Comedy|Drama", "Horror", "", "Drama", "Action"],
        }
    ).to_csv(items, index=False)
    ds = read_table(
        path,
        MAPPING,
        items=items,
        item_columns={"item_id": "movieId", "title": "name", "genres": "tags"},
    )
    assert ds.n_items == 5  # item 50 has no interaction but keeps an id
    by_id = ds.items.set_index("item_id")
    assert by_id.loc["10", "title"] == "a"
    assert by_id.loc["10", "genres"] == ("Comedy", "Drama")
    assert by_id.loc["30", "genres"] == ()


def test_string_ids_keep_leading_zeros(tmp_path):
    path = tmp_path / "z.csv"
    path.write_text("user_id,item_id,timestamp\n007,01,1\n7,1,2\n007,2,3\n")
    ds = read_any(path)
    assert sorted(ds.user_ids) == ["007", "7"]
    assert sorted(ds.item_ids) == ["01", "1", "2"]


def test_iso_dates_become_seconds(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("user_id,item_id,timestamp\na,x,2020-01-01T00:00:00\na,y,2020-01-02T00:00:00\n")
    ds = read_any(path)
    assert np.diff(ds.interactions.timestamp.to_numpy())[0] == 86400.0


def test_integer_and_string_ids_give_the_same_dataset():
    base = pd.DataFrame(
        {"user_id": [3, 1, 3, 2], "item_id": [9, 9, 8, 7], "timestamp": [1, 2, 3, 4]}
    )
    as_int = Dataset.from_frames("a", base)
    as_str = Dataset.from_frames("b", base.astype({"user_id": str, "item_id": str}))
    assert list(as_int.user_ids) == list(as_str.user_ids) == ["3", "1", "2"]
    assert np.array_equal(as_int.interactions.item, as_str.interactions.item)
    assert as_int.fingerprint() == as_str.fingerprint()


def test_parse_mapping():
    assert parse_mapping("user_id=userId, item_id=movieId") == {
        "user_id": "userId",
        "item_id": "movieId",
    }
    with pytest.raises(DataError, match="ours=theirs"):
        parse_mapping("user_id:userId")


def _same(a, b):
    cols = ["rating", "timestamp"]
    assert np.array_equal(a.user_ids[a.interactions.user], b.user_ids[b.interactions.user])
    assert np.array_equal(a.item_ids[a.interactions.item], b.item_ids[b.interactions.item])
    assert np.allclose(
        a.interactions[cols].to_numpy(), b.interactions[cols].to_numpy(), equal_nan=True
    )
    ia, ib = a.items.set_index("item_id"), b.items.set_index("item_id").loc[a.items.item_id]
    assert ia.title.tolist() == ib.title.tolist()
    assert [tuple(g) for g in ia.genres] == [tuple(g) for g in ib.genres]
    assert ia.year.astype("Int64").tolist() == ib.year.astype("Int64").tolist()


def test_atomic_round_trip(tmp_path, ml100k):
    write_atomic(ml100k, tmp_path / "ml", name="ml")
    back = read_atomic(tmp_path / "ml", "ml")
    _same(ml100k, back)
    assert back.fingerprint() == ml100k.fingerprint()


def test_parquet_directory_round_trip(tmp_path, ml100k):
    write_parquet(ml100k, tmp_path / "pq")
    back = read_any(tmp_path / "pq")
    _same(ml100k, back)
    assert (
        back.users.set_index("user_id").loc["1", "occupation"]
        == ml100k.users.set_index("user_id").loc["1", "occupation"]
    )


def test_read_any_dispatch(tmp_path, ml100k):
    write_atomic(ml100k, tmp_path / "ml-100k", name="ml-100k")
    assert read_any(tmp_path / "ml-100k").n_users == 943
    odd = tmp_path / "log.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown file type"):
        read_any(odd)
