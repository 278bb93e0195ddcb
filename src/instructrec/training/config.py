"""Typed configuration of one training run (nanoGPT style: every knob has a one-line comment).

`TrainConfig` is the engine's settings (`instructrec.training.loop.fit`); the run file's
``training:`` section *is* one (`instructrec.config.RunConfig.training`), whose defaults are
`reranker_training()`, the shipped settings of the instruction reranker. Whoever owns a run
folder dumps the whole config there (the run's ``config.yaml``, tuning's ``tune.yaml``); the
engine writes none of its own.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from instructrec.data.errors import DataError
from instructrec.data.settings import build_config, load_config
from instructrec.data.yamlfile import dump_yaml

MIXED_PRECISION = ("no", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Settings of `fit`. Steps are optimizer steps (after gradient accumulation)."""

    output_dir: str = "runs/train"  # checkpoints/step-N, best/, tb/ (a run: RUN/training)
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

    # values a key may take (the loader also reads YAML 1.1's bare `no` as "no")
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "device": DEVICES,
        "mixed_precision": MIXED_PRECISION,
    }

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
        """Build from a mapping (`instructrec.data.settings.build_config`)."""
        return build_config(cls, d, source, prefix)

    def to_yaml(self, path: str | Path | None = None) -> str:
        """YAML text of the config; also written to ``path`` when given."""
        return dump_yaml(self.to_dict(), path)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides=()) -> TrainConfig:
        """Read a YAML mapping, then ``SECTION.KEY=VALUE`` ``overrides``."""
        return load_config(cls, path, overrides)


def reranker_training(**changes: Any) -> TrainConfig:
    """The shipped training settings of the instruction reranker (`RunConfig.training`'s
    default; ``changes`` replace some): early stopping on validation HR@1."""
    values: dict[str, Any] = {
        "lr": 1e-3,  # LoRA + head
        "epochs": 2,
        "batch_size": 64,
        "eval_every": 100,  # validate (HR@1 on valid cand10) every N steps
        "metric": "hr@1",
        "greater_is_better": True,
    }
    return TrainConfig(**{**values, **changes})
