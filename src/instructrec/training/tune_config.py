"""Settings, result and row helpers of generic instruction tuning (`instructrec.training.tune`):
`TuneConfig` (YAML: top-level keys, ``lora:`` and ``train:`` mappings), `TuneResult`, the seeded
stratified train/validation split `split_rows`, `auc` and `yes_no_labels`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from instructrec.data.errors import DataError
from instructrec.data.settings import build_config, load_config
from instructrec.models.lora import LoraSettings
from instructrec.training.config import TrainConfig
from instructrec.training.loop import TrainResult


@dataclass
class TuneConfig:
    """Everything `tune` needs besides the data. YAML: top-level keys below, ``lora:`` and
    ``train:`` as nested mappings (`LoraSettings`, `TrainConfig`)."""

    train: TrainConfig = field(default_factory=lambda: TrainConfig(output_dir="runs/tune"))
    #                    the engine's settings (output_dir, lr, epochs, seed, ...)
    backbone: str | None = None  # registry key, local directory or hub id (None: SmolLM2-135M)
    kind: str = "auto"  # "auto" | "seq2seq" | "causal" | "encoder"
    task: str = "auto"  # "auto" | "closed" (answers from a set) | "open" (generated)
    max_labels: int = 20  # auto: closed when at most this many distinct answers
    lora: LoraSettings | None = field(default_factory=LoraSettings)  # None: full fine-tuning
    valid_fraction: float = 0.1  # share of training rows held out when no valid_data (0: none)
    max_valid: int = 500  # at most this many held-out validation rows
    max_length: int | None = None  # prompt tokens (None: the longest prompt in the data)
    max_length_cap: int = 2048  # upper bound of the data-driven limit (and of predict's)
    max_answer_length: int = 64  # answer tokens
    max_new_tokens: int = 32  # generated tokens (open tasks)
    chat: bool | None = None  # wrap prompts in the chat template (None: when there is one)
    dtype: str | None = None  # "float32" | "bfloat16" | "float16" | None (checkpoint's)
    # encoder label head: "mean" of the token vectors | "cls" (first) | "mean+last-line" (the
    # mean beside the mean of the instruction's last line, the question)
    pooling: str = "mean"
    head_dropout: float = 0.0  # encoder label head: dropout on the pooled vector in training

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str | None = None) -> TuneConfig:
        """Build from a mapping (`instructrec.data.settings.build_config`): unknown keys and
        values of the wrong type are a `DataError` naming the key (``train.lr``, ``lora.r``)
        and ``source``."""
        return build_config(cls, d, source)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides=()) -> TuneConfig:
        """Read a YAML file, then ``SECTION.KEY=VALUE`` ``overrides`` (``train.lr=5e-4``)."""
        return load_config(cls, path, overrides)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TuneResult:
    """What `tune` reports."""

    train: TrainResult  # the engine's result (history, steps, examples/s...)
    valid_loss: float | None  # validation log-loss of the returned model (None: no validation)
    valid_auc: float | None  # validation AUC for two-answer tasks, else None
    n_train: int
    n_valid: int
    model_dir: str  # where the tuned model was saved
    model: Any = None  # the `TunedModel`, in memory
    valid_metrics: dict | None = None  # accuracy / AUC / exact match with CIs
    test_metrics: dict | None = None  # the same on test_data
    max_length: int = 0  # prompt token limit used (follows the data)
    truncated: int = 0  # training/validation prompts cut in the middle


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks); NaN with one class."""
    from scipy.stats import rankdata

    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def yes_no_labels(answers: list[str]) -> np.ndarray | None:
    """1/0 per answer when every answer is yes/no (after `normalize_answer`), else None."""
    from instructrec.data.instruction_data import normalize_answer

    norm = [normalize_answer(a) for a in answers]
    if not norm or any(a not in ("yes", "no") for a in norm):
        return None
    return np.array([a == "yes" for a in norm], dtype=np.int64)


def split_rows(
    n: int, fraction: float, max_valid: int, seed: int, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, valid) row indices. ``fraction`` 0: every row trains, none validates;
    otherwise at least one row on each side. With ``strata`` (a class per row, e.g. the
    answer), every class is held out in proportion to its size."""
    if not 0.0 <= fraction < 1.0:
        raise DataError(
            f"valid_fraction must be in [0, 1), got {fraction}", column="valid_fraction"
        )
    if fraction == 0.0:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    if n < 2:
        raise DataError(f"need at least 2 instruction rows to hold some out, got {n}")
    n_valid = min(max(1, round(n * fraction)), max_valid, n - 1)
    rng = np.random.default_rng(seed)
    if strata is None:
        order = rng.permutation(n)
    else:  # spread each class evenly over [0, 1) and take the lowest keys
        key = np.empty(n)
        for c in np.unique(strata):
            members = rng.permutation(np.flatnonzero(strata == c))
            key[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
        order = np.argsort(key, kind="stable")
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
