"""`instructrec data info|convert|split` through click's CliRunner (and once as a process)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data import load_split, read_any


def run(*args):
    return CliRunner().invoke(main, ["data", *args], catch_exceptions=False)


def test_info_text_and_json(ml100k):
    res = run("info")
    assert res.exit_code == 0
    assert "943" in res.output and "1,682" in res.output and "100,000" in res.output
    res = run("info", "--json")
    summary = json.loads(res.output)
    assert (summary["users"], summary["items"], summary["interactions"]) == (943, 1682, 100_000)
    assert summary["fingerprint"] == ml100k.fingerprint()


def test_info_csv_with_map(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("userId,movieId,stamp\n1,5,10\n1,6,11\n2,5,12\n")
    res = run("info", "--data", str(p), "--map", "timestamp=stamp", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["interactions"] == 3


def test_convert_round_trips(tmp_path, ml100k):
    for fmt in ("atomic", "parquet"):
        out = tmp_path / fmt
        res = run("convert", "--to", fmt, "--out", str(out))
        assert res.exit_code == 0, res.output
        assert "wrote" in res.output
        back = read_any(out)
        assert back.fingerprint() == ml100k.fingerprint()


def test_split_writes_verified_files(tmp_path, ml100k, ml100k_split):
    res = run("split", "--out", str(tmp_path), "--seed", "0")
    assert res.exit_code == 0, res.output
    assert "test 943" in res.output and "cand10.test.npy" in res.output
    back = load_split(tmp_path, ml100k)
    assert np.array_equal(
        back.candidates["cand20"]["test"], ml100k_split.candidates["cand20"]["test"]
    )


def test_data_error_exits_2_with_one_line(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("user_id,item_id\n1,2\n")
    res = CliRunner().invoke(main, ["data", "info", "--data", str(p)])
    assert res.exit_code == 2
    lines = [x for x in res.output.splitlines() if x.strip()]
    assert len(lines) == 1 and "bad.csv" in lines[0] and "timestamp" in lines[0]
    assert "Traceback" not in res.output


def test_nonexistent_path_exit_code_as_a_process():
    exe = Path(sys.executable).parent / "instructrec"
    cmd = [str(exe)] if exe.exists() else [shutil.which("instructrec") or "instructrec"]
    proc = subprocess.run(
        [*cmd, "data", "info", "--data", "/nonexistent"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "/nonexistent" in proc.stderr and "Traceback" not in proc.stderr


def test_info_amazon_with_meta(tmp_path):
    rev = tmp_path / "Games.jsonl"
    rev.write_text(
        "\n".join(
            json.dumps(
                {
                    "reviewerID": f"A{i % 2}",
                    "asin": f"B{i}",
                    "overall": 4,
                    "unixReviewTime": i,
                    "reviewText": "ok",
                }
            )
            for i in range(4)
        )
    )
    meta = tmp_path / "meta.jsonl"
    meta.write_text(
        json.dumps(
            {"asin": "B1", "title": "Zelda", "category": ["Games", "Adventure"], "price": "$5.00"}
        )
    )
    res = run("info", "--data", str(rev), "--meta", str(meta), "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["has_reviews"] and {"genres", "price"} <= set(summary["item_attributes"])
