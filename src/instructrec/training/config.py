"""Typed configuration of one training run (nanoGPT style: every knob has a one-line comment).

The whole config is dumped as ``output_dir/config.yaml`` by `instructrec.training.loop.fit`, so
a run can always be repeated from its own directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from instructrec.data.errors import DataError
from instructrec.data.settings import check_mapping
from instructrec.data.yamlfile import dump_yaml, read_yaml_mapping

MIXED_PRECISION = ("no", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Settings of `fit`. Steps are optimizer steps (after gradient accumulation)."""

    output_dir: str  # run directory: config.yaml, checkpoints/step-N, best/, tb/
    lr: float = 2e-4  # peak learning rate of AdamW
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    epochs: int = 1  # passes over the training data (ignored once max_steps is reached)
    max_steps: int | None = None  # stop after this many optimizer steps (None: epochs decide)
    batch_size: int = 16  # examples per micro-batch, per process
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup_ratio: float = 0.05  # share of total steps with linear warm-up (then linear decay to 0)
    max_grad_norm: float = 1.0  # gradient clipping threshold (<= 0 disables clipping)
    eval_every: int = 200  # evaluate + checkpoint every N steps (and at each epoch end)
    patience: int = 3  # stop after this many evaluations without improvement (0: never stop)
    metric: str = "loss"  # key of evaluate()'s dict used for early stopping / best model
    greater_is_better: bool = False  # True for metrics like AUC or NDCG
    seed: int = 0  # seeds python, numpy, torch and the per-epoch data order
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16" (passed to accelerate)
    device: str = "auto"  # "auto" | "cpu" | "cuda"
    log_every: int = 10  # write train loss / lr to TensorBoard every N steps
    resume: bool = True  # continue from the latest checkpoint in output_dir if there is one
    progress: bool = True  # show a tqdm progress bar (main process only)
    save_total_limit: int = 2  # keep only the newest N checkpoints (best/ is kept apart)

    def __post_init__(self) -> None:
        if self.mixed_precision is False:  # YAML 1.1 reads a bare `no` as false
            self.mixed_precision = "no"
        if self.mixed_precision not in MIXED_PRECISION:
            raise DataError(
                f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}",
                column="mixed_precision",
            )
        if self.device not in DEVICES:
            raise DataError(
                f"device must be one of {DEVICES}, got {self.device!r}", column="device"
            )
        for name in ("epochs", "batch_size", "grad_accum", "eval_every", "log_every"):
            if int(getattr(self, name)) < 1:
                raise DataError(f"{name} must be >= 1, got {getattr(self, name)!r}", column=name)
        if self.max_steps is not None and self.max_steps < 1:
            raise DataError(
                f"max_steps must be >= 1 or null, got {self.max_steps!r}", column="max_steps"
            )
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise DataError(
                f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}", column="warmup_ratio"
            )
        if self.save_total_limit < 1:
            raise DataError("save_total_limit must be >= 1", column="save_total_limit")
        self.output_dir = str(self.output_dir)

    # ---- (de)serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(
        cls, d: dict[str, Any], *, source: str | None = None, prefix: str = ""
    ) -> TrainConfig:
        """Build from a mapping; an unknown key or a value of the wrong type or range is a
        `DataError` naming the key (and ``source``, the file)."""
        if isinstance(d, dict) and d.get("mixed_precision") is False:
            d = {**d, "mixed_precision": "no"}  # YAML 1.1 reads a bare `no` as false
        d = check_mapping(cls, d, source, prefix, what="training setting")
        if "output_dir" not in d:
            raise DataError("missing required setting 'output_dir'", source=source)
        try:
            return cls(**d)
        except DataError as e:  # a range check of __post_init__: add the file and the key
            if e.source is not None or e.column is None:
                raise
            message = str(e).split(": ", 1)[-1]
            raise DataError(message, source=source, column=prefix + e.column) from None

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the config; also written to ``path`` when given."""
        return dump_yaml(self.to_dict(), path)

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML mapping (``overrides`` win over the file's values)."""
        d = read_yaml_mapping(path, "training settings")
        d.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(d, source=str(path))
