"""Output folders built beside ``--out`` and renamed on success (`instructrec.training.rundir`)."""

from __future__ import annotations

import pytest

from instructrec.data.errors import DataError
from instructrec.training.rundir import (
    check_output,
    partial_of,
    staged_file,
    staged_output,
    work_dir,
)


def test_success_publishes_and_leaves_no_partial(tmp_path):
    out = tmp_path / "run"
    with staged_output(out) as work:
        assert work == partial_of(out) and not out.exists()
        (work / "a.txt").write_text("x")
    assert (out / "a.txt").read_text() == "x" and not partial_of(out).exists()


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_output(out) as work:
        (work / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not out.exists() and not partial_of(out).exists()


def test_failure_after_a_checkpoint_keeps_the_partial_run_for_resume(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(RuntimeError), staged_output(out) as work:
        (work / "training" / "checkpoints" / "step-2").mkdir(parents=True)
        raise RuntimeError("killed")
    assert not out.exists() and partial_of(out).exists()
    with pytest.raises(DataError, match="--resume"):
        check_output(out)
    assert work_dir(out, resume=True) == partial_of(out)
    with staged_output(out, resume=True) as work:
        assert (work / "training" / "checkpoints" / "step-2").is_dir()
        (work / "done.txt").write_text("y")
    assert (out / "done.txt").exists() and not partial_of(out).exists()


def test_existing_run_refused_replaced_or_continued(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(DataError, match="--overwrite"):
        check_output(out)
    with pytest.raises(DataError, match="choose one"):
        check_output(out, resume=True, overwrite=True)
    with pytest.raises(RuntimeError), staged_output(out, overwrite=True) as work:
        (work / "new.txt").write_text("new")
        raise RuntimeError("failed")
    assert sorted(p.name for p in out.iterdir()) == ["old.txt"]  # the old run survives
    with staged_output(out, overwrite=True) as work:
        (work / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    with staged_output(out, resume=True) as work:  # a finished run continues in place
        assert work == out
        (work / "more.txt").write_text("more")
    assert sorted(p.name for p in out.iterdir()) == ["more.txt", "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_an_empty_out_folder_is_fine(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with staged_output(out) as work:
        (work / "a").write_text("a")
    assert (out / "a").exists()


def test_staged_file(tmp_path):
    out = tmp_path / "preds.jsonl"
    with pytest.raises(RuntimeError), staged_file(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with staged_file(out) as tmp:
        tmp.write_text("whole")
    assert out.read_text() == "whole" and [p.name for p in tmp_path.iterdir()] == [out.name]
