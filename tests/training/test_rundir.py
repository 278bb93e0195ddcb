"""Output folders built beside ``--out`` and renamed on success (`instructrec.training.rundir`)."""

from __future__ import annotations

import pytest

from instructrec.data.errors import DataError
from instructrec.training.rundir import (
    check_output,
    partial_of,
    refuse_changed_settings,
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


def test_resume_refuses_other_settings_but_allows_a_longer_budget(tmp_path):
    saved = tmp_path / "config.yaml"
    saved.write_text("training:\n  lr: 0.01\n  max_steps: 8\nbackbone:\n  lora_r: 4\n")
    refuse_changed_settings(
        saved, {"training": {"lr": 0.01, "max_steps": 20}, "backbone": {"lora_r": 4}}
    )
    with pytest.raises(DataError, match=r"training.lr: 0.01 -> 0.1"):
        refuse_changed_settings(
            saved, {"training": {"lr": 0.1, "max_steps": 8}, "backbone": {"lora_r": 4}}
        )
    with pytest.raises(DataError, match="backbone.lora_r"):
        refuse_changed_settings(saved, {"training": {"lr": 0.01}, "backbone": {"lora_r": 8}})
    refuse_changed_settings(tmp_path / "none.yaml", {"anything": 1})  # nothing saved yet


def test_a_refused_resume_keeps_the_partial_run(tmp_path):
    out = tmp_path / "run"
    partial_of(out).mkdir()
    (partial_of(out) / "config.yaml").write_text("x: 1\n")
    with pytest.raises(DataError), staged_output(out, resume=True) as work:
        refuse_changed_settings(work / "config.yaml", {"x": 2})
    assert (partial_of(out) / "config.yaml").exists()
