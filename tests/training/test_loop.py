"""The training engine: learning, exact resume, early stopping, accumulation invariance."""

from __future__ import annotations

import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.training.checkpoint import list_checkpoints
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit
from instructrec.training.schedule import epoch_batches


class Net(torch.nn.Module):
    """A small regressor with dropout (so RNG restore matters) and a frozen layer."""

    def __init__(self, dropout: float = 0.2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.body = torch.nn.Sequential(
            torch.nn.Linear(4, 16),
            torch.nn.Tanh(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(16, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.frozen(x)).squeeze(-1)


def make_data(n: int = 64) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5, 0.0]) + 0.1
    return [(x[i], y[i]) for i in range(n)]


def collate(rows):
    return {"x": torch.stack([r[0] for r in rows]), "y": torch.stack([r[1] for r in rows])}


def mse(model, batch):
    return torch.nn.functional.mse_loss(model(batch["x"]), batch["y"])


def cfg(tmp_path, name="run", **kw) -> TrainConfig:
    base = dict(
        output_dir=str(tmp_path / name),
        lr=1e-2,
        batch_size=8,
        epochs=1,
        warmup_ratio=0.0,
        progress=False,
        eval_every=5,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_fit_learns_and_writes_run_directory(tmp_path):
    data = make_data()
    model = Net(dropout=0.0)
    before = mse(model, collate(data)).item()
    frozen_before = model.frozen.weight.detach().clone()
    c = cfg(tmp_path, epochs=6, save_total_limit=2, lr=5e-2, patience=0)
    res = fit(
        model, data, collate, mse, c, evaluate=lambda m: {"loss": mse(m, collate(data)).item()}
    )
    after = mse(model, collate(data)).item()
    assert after < 0.5 * before
    assert torch.equal(model.frozen.weight, frozen_before)  # frozen stays frozen
    assert res.steps == 6 * 8 and res.examples_per_s > 0 and res.best_step is not None
    assert res.best_metric == min(r["loss"] for r in res.history)
    out = tmp_path / "run"
    assert not (out / "config.yaml").exists()  # the caller records the config, not the engine
    assert list((out / "tb").glob("events.out.tfevents.*"))
    assert len(list_checkpoints(out)) == 2  # save_total_limit
    assert (out / "best" / "model.safetensors").exists()


def test_resume_is_exact(tmp_path):
    """10 steps straight == 5 steps, crash, resume for the remaining 5."""
    data = make_data(80)  # 10 batches of 8: one epoch
    straight = Net()
    res_a = fit(straight, data, collate, mse, cfg(tmp_path, "a", warmup_ratio=0.3))

    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("simulated crash")
        return mse(model, batch)

    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(Net(), data, collate, crashing, cfg(tmp_path, "b", warmup_ratio=0.3))
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["step-5"]
    resumed = Net()  # fresh process: same init, state comes from the checkpoint
    res_b = fit(resumed, data, collate, mse, cfg(tmp_path, "b", warmup_ratio=0.3))
    assert res_b.steps == res_a.steps == 10
    wa, wb = weights(straight), weights(resumed)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert res_a.final_loss == res_b.final_loss
    assert res_a.history[-1] == res_b.history[-1]


def test_no_resume_starts_over(tmp_path):
    data = make_data(32)
    fit(Net(), data, collate, mse, cfg(tmp_path, max_steps=4))
    res = fit(Net(), data, collate, mse, cfg(tmp_path, max_steps=4, resume=False))
    assert res.steps == 4
    res2 = fit(Net(), data, collate, mse, cfg(tmp_path, max_steps=4))  # resumes, nothing left
    assert res2.steps == 4 and res2.examples_per_s == 0


def test_early_stopping_restores_best(tmp_path):
    data = make_data()
    scores = iter([3.0, 1.0, 2.0, 2.5, 4.0, 5.0, 6.0, 7.0, 8.0])
    snapshots = {}

    def evaluate(m):
        value = next(scores)
        snapshots[value] = weights(m)
        return {"loss": value}

    model = Net(dropout=0.0)
    res = fit(
        model,
        data,
        collate,
        mse,
        cfg(tmp_path, epochs=20, eval_every=2, patience=3),
        evaluate=evaluate,
    )
    assert res.stopped_early
    assert [r["loss"] for r in res.history] == [3.0, 1.0, 2.0, 2.5, 4.0]
    assert res.best_metric == 1.0 and res.best_step == 4
    for k, v in weights(model).items():
        assert torch.equal(v, snapshots[1.0][k]), k


def test_greater_is_better(tmp_path):
    vals = iter([0.5, 0.7, 0.6])
    res = fit(
        Net(),
        make_data(48),
        collate,
        mse,
        cfg(tmp_path, eval_every=2, metric="auc", greater_is_better=True),
        evaluate=lambda m: {"auc": next(vals)},
    )
    assert res.best_metric == 0.7 and res.best_step == 4


def test_gradient_accumulation_matches_big_batch(tmp_path):
    """batch 2 x 4 accumulation == batch 8 x 1 (trl-style invariant)."""
    data = make_data(64)
    a, b = Net(dropout=0.0), Net(dropout=0.0)
    fit(a, data, collate, mse, cfg(tmp_path, "a", batch_size=8, epochs=2))
    fit(b, data, collate, mse, cfg(tmp_path, "b", batch_size=2, grad_accum=4, epochs=2))
    for k, v in weights(a).items():
        torch.testing.assert_close(v, weights(b)[k], rtol=1e-5, atol=1e-6)


def test_warmup_then_decay(tmp_path):
    res = fit(
        Net(), make_data(80), collate, mse, cfg(tmp_path, warmup_ratio=0.4, eval_every=1, lr=1.0)
    )
    lrs = [r["lr"] for r in res.history]
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1
    assert lrs[: peak + 1] == sorted(lrs[: peak + 1])
    assert lrs[peak:] == sorted(lrs[peak:], reverse=True) and lrs[-1] == 0.0


def test_max_steps_overrides_epochs(tmp_path):
    res = fit(Net(), make_data(16), collate, mse, cfg(tmp_path, max_steps=7, epochs=1))
    assert res.steps == 7


def test_loss_dict_and_missing_metric(tmp_path):
    def loss_dict(model, batch):
        loss = mse(model, batch)
        return {"loss": loss, "extra": loss * 2}

    res = fit(Net(), make_data(16), collate, loss_dict, cfg(tmp_path, "ok", max_steps=2))
    assert res.steps == 2
    with pytest.raises(KeyError, match="ndcg"):
        fit(
            Net(),
            make_data(16),
            collate,
            mse,
            cfg(tmp_path, "bad", metric="ndcg"),
            evaluate=lambda m: {"loss": 1.0},
        )


def test_epoch_batches_partition():
    full = epoch_batches(23, 4, seed=3, epoch=1)
    assert sorted(i for b in full for i in b) == list(range(23))
    assert full != epoch_batches(23, 4, seed=3, epoch=2)
    r0, r1 = epoch_batches(23, 4, 3, 1, 0, 2), epoch_batches(23, 4, 3, 1, 1, 2)
    assert len(r0) == len(r1) == 3
    assert not {i for b in r0 for i in b} & {i for b in r1 for i in b}


def test_config_yaml_round_trip_and_errors(tmp_path):
    c = TrainConfig(output_dir=str(tmp_path), lr=1e-3, max_steps=9, mixed_precision="bf16")
    p = tmp_path / "c.yaml"
    c.to_yaml(p)
    assert TrainConfig.from_yaml(p) == c
    assert TrainConfig.from_yaml(p, ["lr=5e-4"]).lr == 5e-4
    p.write_text("output_dir: x\nlearning_rate: 3\n")
    with pytest.raises(DataError, match="learning_rate"):
        TrainConfig.from_yaml(p)
    with pytest.raises(DataError, match="mixed_precision"):
        TrainConfig(output_dir="x", mixed_precision="fp8")
    with pytest.raises(DataError, match="batch_size"):
        TrainConfig(output_dir="x", batch_size=0)


def test_empty_data_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="no training examples"):
        fit(Net(), [], collate, mse, cfg(tmp_path))


def test_bf16_autocast_on_cpu_and_precision_switch(tmp_path):
    """mixed_precision reaches accelerate; a later fp32 fit in the same process still works."""
    data = make_data(32)
    seen = []

    def run(name, precision):
        model = Net()
        model.body[0].register_forward_hook(lambda m, a, out: seen.append(out.dtype))
        return fit(model, data, collate, mse, cfg(tmp_path, name, mixed_precision=precision))

    assert run("bf16", "bf16").steps == 4 and set(seen) == {torch.bfloat16}
    seen.clear()
    run("fp32", "no")
    assert set(seen) == {torch.float32}
