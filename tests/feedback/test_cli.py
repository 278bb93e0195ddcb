"""`instructrec feedback ...` and `instructrec serve` through the real command group."""

from __future__ import annotations

import json

from click.testing import CliRunner

from instructrec.cli import main
from instructrec.feedback.store import Store


def test_stats_reports_store(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = Store(url)
    rid = store.record_request("u1", None, None, 2, [("i1", 1, 1.0), ("i2", 2, 0.5)])
    store.add_feedback(rid, "i1", "like", "k")
    store.register_model("v1", "/runs/v1")
    res = CliRunner().invoke(main, ["feedback", "stats", "--db", url])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["requests"] == 1 and out["by_signal"] == {"like": 1}
    assert out["active_model"]["version"] == "v1"


def test_bad_input_exits_2(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["feedback", "simulate", "--users", "0"])
    assert res.exit_code == 2 and "--users must be >= 1" in res.output
    res = runner.invoke(
        main, ["serve", "--model", str(tmp_path), "--db", f"sqlite:///{tmp_path / 'x.db'}"]
    )
    assert res.exit_code == 2 and "not a saved Recommender" in res.output
    res = runner.invoke(
        main,
        [
            "feedback",
            "tune",
            "--model",
            str(tmp_path),
            "--db",
            f"sqlite:///{tmp_path / 'x.db'}",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 2


def test_simulate_writes_outputs(tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "feedback",
            "simulate",
            "--rounds",
            "2",
            "--users",
            "10",
            "--n",
            "3",
            "--retriever",
            "pop",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "simulation.json").read_text())
    assert data["config"]["users"] == 10 and len(data["table"]) == 12
    assert (tmp_path / "simulation.png").stat().st_size > 0
    assert "| round | metric | control | feedback |" in (tmp_path / "simulation.md").read_text()
