"""`instructrec feedback simulate --replay` through the real command group."""

from __future__ import annotations

import json

from click.testing import CliRunner

from instructrec.cli import main


def test_simulate_replay_writes_outputs(tmp_path):
    args = ["feedback", "simulate", "--replay", "--rounds", "2", "--users", "6"]
    args += ["--new-users", "2", "--n", "4", "--seeds", "0,1", "--out", str(tmp_path)]
    args += ["--arms", "norepeat,session"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "replay.json").read_text())
    assert data["seeds"] == [0, 1] and set(data["arms"]) == {"control", "norepeat", "session"}
    vs = data["summaries"]["vs control"]
    assert {r["arm"] for r in vs} == {"control", "norepeat", "session"}
    assert {r["round"] for r in vs} == {1, 2}
    assert all(r["n"] == 2 * 8 for r in vs)  # (seed, user) pairs
    assert "cumulative hits on the hidden future" in (tmp_path / "replay.md").read_text()
    assert (tmp_path / "replay_cum_hits.png").stat().st_size > 0


def test_simulate_replay_bad_input_exits_2():
    res = CliRunner().invoke(main, ["feedback", "simulate", "--replay", "--seeds", "a,b"])
    assert res.exit_code == 2 and "--seeds" in res.output
    res = CliRunner().invoke(main, ["feedback", "simulate", "--replay", "--arms", "magic"])
    assert res.exit_code == 2 and "magic" in res.output
