"""Progress on stderr (one timed line per stage), results on stdout, `--quiet` for scripts,
and library warnings filtered at the CLI."""

from __future__ import annotations

import logging
import re
import warnings

import pytest
from click.testing import CliRunner

from instructrec.cli import main


@pytest.fixture()
def tiny_config(tiny_dataset, tmp_path):
    from instructrec.data import write_atomic

    write_atomic(tiny_dataset, tmp_path / "data", name="tiny")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data:\n  source: {tmp_path / 'data'}\nretriever: itemknn\n"
        "priors: [itemknn, pop]\nrerank: false\n"
    )
    return cfg


def test_train_prints_one_timed_line_per_stage_on_stderr(tiny_config, tmp_path):
    res = CliRunner().invoke(
        main, ["train", "--config", str(tiny_config), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    for stage in ("data: tiny", "split: leave-one-out", "itemknn: fitted in", "pop: fitted in"):
        assert any(re.match(r"\[\s*\d+\.\d s\] " + re.escape(stage), ln) for ln in lines), stage
    assert "saved" in res.stdout and "[" not in res.stdout.split("saved")[0]


def test_quiet_keeps_results_only(tiny_config, tmp_path):
    res = CliRunner().invoke(
        main, ["--quiet", "train", "--config", str(tiny_config), "--out", str(tmp_path / "r")]
    )
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == "" and "saved" in res.stdout
    # the next command is not quiet: nothing of --quiet outlives its command
    res = CliRunner().invoke(
        main, ["train", "--config", str(tiny_config), "--out", str(tmp_path / "r2")]
    )
    assert "fitted in" in res.stderr
    assert logging.getLogger("instructrec").propagate  # the handler went with the command


def test_library_future_warnings_are_filtered():
    from instructrec.cli.progress import quiet_libraries

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn_explicit(
            "`x` is deprecated", FutureWarning, "modeling_utils.py", 1, module="transformers.x"
        )
        warnings.warn("a warning about the user's data", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a warning about the user's data"]
