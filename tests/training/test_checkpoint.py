"""Checkpoints as data: RNG and scheduler state round-trip through JSON + safetensors, every
file loads with ``weights_only=True``, an older pickled checkpoint is refused clearly."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.training.checkpoint import load_checkpoint, save_checkpoint


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
        "model.pt",
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
