"""One data spec for the run config's ``data`` section and the CLI's ``--data`` options."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.config import RunConfig
from instructrec.data import DataError, write_parquet
from instructrec.data.spec import DataSpec, load_data_spec, parse_data_spec
from instructrec.instructions import domain_words


def books(tmp_path):
    """A log with its own column names and an item table with multi-word genres."""
    log = pd.DataFrame(
        {
            "reader": ["r1", "r1", "r2", "r2", "r3", "r3"],
            "book_id": ["b1", "b2", "b2", "b3", "b1", "b3"],
            "stars": [5, 4, 3, 5, 2, 4],
            "when": [1, 2, 3, 4, 5, 6],
        }
    )
    meta = pd.DataFrame(
        {
            "book_id": ["b1", "b2", "b3"],
            "name": ["Wolf Hall", "Dune", "Rebecca"],
            "tags": ["Historical Fiction|Literary", "Science Fiction", "Gothic|Mystery"],
        }
    )
    log.to_csv(tmp_path / "ratings.csv", index=False)
    meta.to_csv(tmp_path / "books.csv", index=False)
    return {
        "source": str(tmp_path / "ratings.csv"),
        "columns": "user_id=reader,item_id=book_id,rating=stars,timestamp=when",
        "items": str(tmp_path / "books.csv"),
        "item_columns": {"item_id": "book_id", "title": "name", "genres": "tags"},
        "genre_sep": "|",
        "noun": "book",
        "verbs": "read,read",
    }


def test_spec_reads_columns_item_table_genres_and_domain_words(tmp_path):
    ds = load_data_spec(books(tmp_path))
    assert ds.n_users == 3 and ds.n_items == 3
    genres = dict(zip(ds.items["title"], ds.items["genres"], strict=True))
    assert genres["Wolf Hall"] == ("Historical Fiction", "Literary")
    assert genres["Dune"] == ("Science Fiction",)
    words = domain_words(ds)
    assert words["noun"] == "book" and words["consumed"] == "read"


def test_config_section_and_cli_options_give_the_same_dataset(tmp_path):
    spec = books(tmp_path)
    cfg = RunConfig.from_dict({"data": {**spec, "seed": 3}})
    assert cfg.data.seed == 3 and cfg.data.columns["user_id"] == "reader"
    from_config = load_data_spec(cfg.data)
    args = ["data", "info", "--json", "--data", spec["source"], "--map", spec["columns"]]
    args += ["--items", spec["items"], "--item-map", "item_id=book_id,title=name,genres=tags"]
    args += ["--genre-sep", "|", "--noun", "book", "--verbs", "read,read"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert from_config.fingerprint() in res.output


def test_config_rejects_unknown_data_keys_naming_the_file_and_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  source: ml-100k\n  colums: {user_id: u}\n")
    with pytest.raises(DataError, match=r"run.yaml.*data.colums"):
        RunConfig.from_yaml(path)
    with pytest.raises(DataError, match="data.verbs"):
        parse_data_spec({"source": "x", "verbs": "read"})


def test_parquet_folder_from_data_convert_loads_through_the_config(tmp_path):
    ds = load_data_spec(books(tmp_path))
    write_parquet(ds, tmp_path / "pq")
    cfg = RunConfig.from_dict({"data": {"source": str(tmp_path / "pq")}})
    back = load_data_spec(cfg.data)
    assert back.fingerprint() == ds.fingerprint()
    assert set(back.items["genres"].map(tuple)) == set(ds.items["genres"])


def test_genre_sep_keeps_multiword_genres_in_atomic_files(tmp_path):
    d = tmp_path / "atomic"
    d.mkdir()
    (d / "atomic.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "u1\ti1\t5\t1\nu1\ti2\t4\t2\nu2\ti1\t3\t3\n"
    )
    (d / "atomic.item").write_text(
        "item_id:token\ttitle:token_seq\tgenres:token_seq\n"
        "i1\tWolf Hall\tHistorical Fiction,Literary\ni2\tDune\tScience Fiction\n"
    )
    ds = load_data_spec(DataSpec(source=str(d), genre_sep=","))
    assert ("Historical Fiction", "Literary") in set(ds.items["genres"])


def test_a_missing_source_is_one_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_data_spec(str(tmp_path / "nothing.csv"))
    res = CliRunner().invoke(main, ["data", "info", "--data", str(tmp_path / "nothing.csv")])
    assert res.exit_code == 2 and "no such file" in res.output
