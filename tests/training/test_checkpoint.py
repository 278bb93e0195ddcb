"""Checkpoints as data: RNG and scheduler state round-trip through JSON + safetensors, every
file loads with ``weights_only=True``, an older pickled checkpoint is refused clearly; writes
are atomic and resume falls back past a broken newest checkpoint."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.training.checkpoint import (
    BrokenCheckpoint,
    list_checkpoints,
    load_checkpoint,
    resume_latest,
    save_checkpoint,
)


def _parts():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (s + 1))
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1)), np.random.randn()


def test_rng_scheduler_optimizer_round_trip(tmp_path):
    model, opt, sched = _parts()
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.randn()  # a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "c", model=model, optimizer=opt, scheduler=sched, state={"step": 1})
    names = sorted(p.name for p in (tmp_path / "c").iterdir())
    assert names == [
        "files.json",
        "model.safetensors",
        "optimizer.pt",
        "rng-0.json",
        "rng-0.safetensors",
        "scheduler.json",
        "state.json",
    ]
    expected = _draws()
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    m2, o2, s2 = _parts()
    with torch.no_grad():
        m2.weight.zero_()
    st = load_checkpoint(tmp_path / "c", model=m2, optimizer=o2, scheduler=s2)
    assert st == {"step": 1}
    assert _draws() == expected
    assert torch.equal(m2.weight, model.weight)
    assert s2.state_dict() == json.loads(json.dumps(sched.state_dict()))
    assert o2.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]


def test_an_old_pickled_checkpoint_is_refused(tmp_path):
    model, opt, sched = _parts()
    d = tmp_path / "step-5"
    save_checkpoint(d, model=model, optimizer=opt, scheduler=sched, state={"step": 5})
    (d / "scheduler.json").unlink()
    torch.save(sched.state_dict(), d / "scheduler.pt")
    with pytest.raises(DataError, match="older instructrec"):
        load_checkpoint(d, model=model, optimizer=opt, scheduler=sched)


def _two_checkpoints(root):
    model, opt, sched = _parts()
    for step in (2, 4):
        with torch.no_grad():
            model.weight.fill_(float(step))
        save_checkpoint(
            root / "checkpoints" / f"step-{step}",
            model=model,
            optimizer=opt,
            scheduler=sched,
            state={"step": step},
        )
    return model, opt, sched


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_resume_falls_back_past_a_broken_newest_checkpoint(tmp_path, damage):
    model, opt, sched = _two_checkpoints(tmp_path)
    target = tmp_path / "checkpoints" / "step-4" / "model.safetensors"
    data = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    else:
        target.unlink()
    with pytest.raises(BrokenCheckpoint):
        load_checkpoint(target.parent, model=model, optimizer=opt, scheduler=sched)
    with torch.no_grad():
        model.weight.zero_()
    with pytest.warns(UserWarning, match="step-4"):
        path, state = resume_latest(tmp_path, model=model, optimizer=opt, scheduler=sched)
    assert path.name == "step-2" and state == {"step": 2}
    assert torch.all(model.weight == 2.0)


def test_a_half_written_checkpoint_is_invisible(tmp_path):
    model, opt, sched = _two_checkpoints(tmp_path)
    # what a kill during the write of step-6 leaves: a .partial folder, never step-6
    half = tmp_path / "checkpoints" / "step-6.partial"
    half.mkdir()
    (half / "state.json").write_text('{"step": 6}')
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-2", "step-4"]
    path, state = resume_latest(tmp_path, model=model, optimizer=opt, scheduler=sched)
    assert path.name == "step-4" and state == {"step": 4}


def test_every_checkpoint_broken_means_no_resume(tmp_path):
    model, opt, sched = _two_checkpoints(tmp_path)
    for step in (2, 4):
        (tmp_path / "checkpoints" / f"step-{step}" / "state.json").write_text("{")
    with pytest.warns(UserWarning):
        assert resume_latest(tmp_path, model=model, optimizer=opt, scheduler=sched) is None
