"""Inputs that look odd but are fine (issue 18): a byte-order mark, CRLF line ends, trailing
blank lines, a quoted header name, a dataset without attributes, ids that need care in atomic
files. Plus a few malformed inputs run as real processes (exit code 2, one stderr line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data import read_any
from instructrec.data.atomic import read_atomic, write_atomic
from instructrec.data.instruction_data import read_instruction_data
from instructrec.data.readers import read_table

ROWS = [(1, 10, 4, 1000), (1, 11, 3, 1001), (2, 10, 5, 1002)]


def _text(sep: str, eol: str = "\n") -> str:
    lines = [sep.join(("user_id", "item_id", "rating", "timestamp"))]
    lines += [sep.join(map(str, r)) for r in ROWS]
    return eol.join(lines) + eol


@pytest.mark.parametrize(
    "name,content",
    [
        ("bom.csv", "\ufeff" + _text(",")),
        ("bom.tsv", "\ufeff" + _text("\t")),
        ("crlf.csv", _text(",", "\r\n")),
        ("trailing.csv", _text(",") + "\n\n\n"),
        ("bom-crlf-trailing.tsv", "\ufeff" + _text("\t", "\r\n") + "\r\n\r\n"),
    ],
)
def test_text_variants_read_the_same(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content.encode("utf-8"))
    ds = read_table(p)
    assert len(ds.interactions) == len(ROWS)  # the header is not a row
    assert list(ds.user_ids) == ["1", "2"] and list(ds.item_ids) == ["10", "11"]
    assert ds.interactions["rating"].tolist() == [4.0, 3.0, 5.0]


def test_quoted_header_name_is_one_column(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text('user_id,"item,id",timestamp\n1,10,1000\n2,11,1001\n')
    ds = read_table(p, {"item_id": "item,id"})
    assert list(ds.item_ids) == ["10", "11"]


def test_empty_rating_cell_means_no_rating(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("user_id,item_id,rating,timestamp\n1,10,,1000\n1,11,4,1001\n")
    r = read_table(p).interactions["rating"]
    assert r.isna().tolist() == [True, False]


def test_bom_atomic_and_json(tmp_path):
    atom = tmp_path / "a"
    atom.mkdir()
    (atom / "a.inter").write_text("\ufeffuser_id:token\titem_id:token\n1\t2\n1\t3\n")
    assert len(read_atomic(atom).interactions) == 2
    j = tmp_path / "t.json"
    j.write_text("\ufeff" + json.dumps([{"instruction": "q", "output": "Yes"}]))
    assert read_instruction_data(j).outputs == ["Yes"]
    t = tmp_path / "t.tsv"
    t.write_text("\ufeffinstruction\toutput\r\nIs 2 even?\tYes\r\n\r\n")
    assert read_instruction_data(t).outputs == ["Yes"]  # the header is not a training row
    r = tmp_path / "r.json"
    r.write_text(
        "\ufeff" + json.dumps({"reviewerID": "u", "asin": "a", "unixReviewTime": 1e9}) + "\n"
    )
    assert len(read_any(r).interactions) == 1


def test_atomic_round_trips_awkward_ids(tmp_path):
    ids = ['say "hi"', "back\\slash", " spaced ", "NA", "null", "é", "a,b", "#1"]
    p = tmp_path / "x.csv"
    lines = ["user_id,item_id,rating,timestamp"]
    lines += [
        f'"{u.replace(chr(34), 2 * chr(34))}",i{k},{k % 5},{1000 + k}' for k, u in enumerate(ids)
    ]
    p.write_text("\n".join(lines) + "\n")
    ds = read_table(p)
    assert sorted(ds.user_ids) == sorted(ids)
    write_atomic(ds, tmp_path / "atom", name="atom")
    back = read_atomic(tmp_path / "atom")
    assert sorted(back.user_ids) == sorted(ids)
    assert back.interactions["timestamp"].tolist() == ds.interactions["timestamp"].tolist()
    assert back.interactions["rating"].tolist() == ds.interactions["rating"].tolist()


def test_instructions_build_without_genres(tmp_path, ml100k):
    """ML-100K's ratings as a plain CSV (u.data style: no item attributes at all)."""
    inter = ml100k.interactions.head(20000)
    p = tmp_path / "u.csv"
    p.write_text(
        "user_id,item_id,rating,timestamp\n"
        + "".join(
            f"{u},{i},{r:g},{t:.0f}\n"
            for u, i, r, t in zip(
                ml100k.user_ids[inter["user"]],
                ml100k.item_ids[inter["item"]],
                inter["rating"],
                inter["timestamp"],
                strict=True,
            )
        )
    )
    out = tmp_path / "train.jsonl"
    res = CliRunner().invoke(main, ["instructions", "build", "--data", str(p), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(r["instruction"] for r in rows)


DEEP = '{"reviewerID": "u", "asin": "a", "x": ' + "[" * 50000 + "]" * 50000 + "}"


@pytest.mark.parametrize(
    "args,files,where",
    [
        (["data", "split", "--data", "{d}/x.csv"], {"x.csv": "a,a\n1,2\n"}, "line 1"),
        (["data", "split", "--data", "{d}/r.json"], {"r.json": DEEP + "\n"}, "nested"),
    ],
    ids=["dup-header", "deep-json"],
)
def test_refused_as_a_process(tmp_path, args, files, where):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    argv = [a.replace("{d}", str(tmp_path)) for a in args] + ["--out", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "instructrec.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and where in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()
