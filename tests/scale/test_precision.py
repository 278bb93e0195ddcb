"""The GPU path's knobs come from the config: TrainConfig.mixed_precision turns on autocast,
TrainConfig.device picks the device; the same code runs on CPU."""

from __future__ import annotations

import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit


class Recorder(torch.nn.Module):
    """A linear model that remembers the dtype and device its forward computed in."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.seen: list[tuple[torch.dtype, str]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.lin(x)
        self.seen.append((y.dtype, y.device.type))
        return y.squeeze(-1)


def run(tmp_path, **kw) -> Recorder:
    model = Recorder()
    data = [(torch.randn(4), torch.randn(())) for _ in range(8)]

    def collate(rows):
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    def loss_fn(m, b):
        return torch.nn.functional.mse_loss(m(b[0]).float(), b[1])

    cfg = TrainConfig(
        output_dir=str(tmp_path), batch_size=4, max_steps=2, progress=False, warmup_ratio=0.0, **kw
    )
    fit(model, data, collate, loss_fn, cfg)
    return model


@pytest.mark.parametrize("precision,dtype", [("no", torch.float32), ("bf16", torch.bfloat16)])
def test_mixed_precision_comes_from_the_config(tmp_path, precision, dtype):
    model = run(tmp_path, mixed_precision=precision, device="cpu")
    assert model.seen and {d for d, _ in model.seen} == {dtype}
    assert {dev for _, dev in model.seen} == {"cpu"}
    assert model.lin.weight.dtype == torch.float32  # master weights stay fp32


def test_device_auto_and_cuda(tmp_path):
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert {dev for _, dev in run(tmp_path / "a", device="auto").seen} == {want}
    if torch.cuda.is_available():
        assert {dev for _, dev in run(tmp_path / "b", device="cuda").seen} == {"cuda"}
    else:
        with pytest.raises(DataError, match="no CUDA device"):
            run(tmp_path / "b", device="cuda")
