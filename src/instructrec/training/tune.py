"""Generic instruction tuning: fine-tune a seq2seq or causal backbone (LoRA) on any
instruction/answer file, the way InstructRec (Zhang et al. 2023) instruction-tunes Flan-T5.

Data: ``instruction<TAB>answer`` TSV or Alpaca JSON (`instructrec.data.instruction_data`).
A seeded share of the rows is held out; training minimises the LM loss of the answers with
`instructrec.training.loop.fit` (early stopping on validation loss by default). When every
answer is Yes/No, validation also reports AUC of log p(yes) - log p(no). The tuned scorer is
saved to ``output_dir/model`` and loads with `instructrec.models.lm_scorer.load_scorer`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instructrec.data.errors import DataError
from instructrec.data.yamlfile import read_yaml_mapping
from instructrec.models.lora import LoraSettings
from instructrec.training.config import TrainConfig
from instructrec.training.loop import TrainResult, fit


@dataclass
class TuneConfig:
    """Everything `tune` needs besides the data. YAML: top-level keys below, ``lora:`` and
    ``train:`` as nested mappings (`LoraSettings`, `TrainConfig`)."""

    train: TrainConfig  # the engine's settings (output_dir, lr, epochs, ...)
    backbone: str | None = None  # local directory or hub id of the model to tune
    kind: str = "auto"  # "auto" | "seq2seq" | "causal"
    lora: LoraSettings | None = field(default_factory=LoraSettings)  # None: full fine-tuning
    valid_fraction: float = 0.1  # share of rows held out for validation
    max_valid: int = 500  # at most this many validation rows
    max_length: int = 512  # prompt tokens
    max_answer_length: int = 64  # answer tokens
    dtype: str | None = None  # "float32" | "bfloat16" | "float16" | None (checkpoint's)

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str | None = None) -> TuneConfig:
        d = dict(d)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DataError(
                f"unknown tune setting(s) {unknown}; expected some of {sorted(names)}",
                source=source,
            )
        train = d.pop("train", None) or {}
        if not isinstance(train, dict):
            raise DataError("'train' must be a mapping of training settings", source=source)
        train.setdefault("output_dir", "runs/tune")
        lora = d.pop("lora", {})
        if lora is not None and not isinstance(lora, dict):
            raise DataError(
                "'lora' must be a mapping (r, alpha, dropout, target_modules) or null",
                source=source,
            )
        try:
            lora_settings = None if lora is None else LoraSettings(**lora)
        except TypeError as e:
            raise DataError(f"bad lora settings ({e})", source=source) from None
        return cls(train=TrainConfig.from_dict(train, source=source), lora=lora_settings, **d)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TuneConfig:
        d = read_yaml_mapping(path, "tuning settings")
        return cls.from_dict(d, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TuneResult:
    """What `tune` reports."""

    train: TrainResult  # the engine's result (history, steps, examples/s...)
    valid_loss: float  # validation LM loss of the returned (best) model
    valid_auc: float | None  # AUC when all answers are yes/no, else None
    n_train: int
    n_valid: int
    model_dir: str  # where the tuned scorer was saved
    scorer: Any = None  # the tuned `LMScorer`, in memory


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
    """1/0 per answer when every answer is yes/no (any case, trailing '.'), else None."""
    norm = [a.strip().rstrip(".").lower() for a in answers]
    if not norm or any(a not in ("yes", "no") for a in norm):
        return None
    return np.array([a == "yes" for a in norm], dtype=np.int64)


def _pairs(data) -> tuple[list[str], list[str]]:
    from instructrec.data.instruction_data import InstructionData, read_instruction_data

    if isinstance(data, (str, Path)):
        data = read_instruction_data(data)
    if isinstance(data, pd.DataFrame):
        data = InstructionData(
            frame=data.reindex(columns=["instruction", "input", "output"]).fillna("").astype(str)
        )
    if not isinstance(data, InstructionData):
        raise TypeError("data must be a path, an InstructionData or a DataFrame")
    return data.prompts(), data.outputs


def split_rows(
    n: int, fraction: float, max_valid: int, seed: int, strata: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, valid) row indices; at least one row on each side. With ``strata``
    (a class per row, e.g. yes/no), every class is held out in proportion to its size."""
    if n < 2:
        raise DataError(f"need at least 2 instruction rows to hold some out, got {n}")
    if not 0.0 < fraction < 1.0:
        raise DataError(
            f"valid_fraction must be in (0, 1), got {fraction}", column="valid_fraction"
        )
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


def tune(
    data,
    backbone: str | None = None,
    config: TuneConfig | None = None,
    output_dir: str | None = None,
) -> TuneResult:
    """Instruction-tune ``backbone`` on ``data`` (path / InstructionData / DataFrame)."""
    import torch

    from instructrec.models.lm_scorer import LMScorerConfig
    from instructrec.models.loading import load_backbone

    if config is None:
        config = TuneConfig(train=TrainConfig(output_dir=output_dir or "runs/tune"))
    if output_dir is not None:
        config.train.output_dir = str(output_dir)
    backbone = backbone or config.backbone
    if not backbone:
        raise DataError(
            "no backbone given (a local model directory or a hub id)", column="backbone"
        )
    config.backbone = str(backbone)
    prompts, answers = _pairs(data)
    all_labels = yes_no_labels(answers)
    tr, va = split_rows(
        len(prompts), config.valid_fraction, config.max_valid, config.train.seed, strata=all_labels
    )
    train_pairs = [(prompts[i], answers[i]) for i in tr]
    valid_pairs = [(prompts[i], answers[i]) for i in va]
    labels = None if all_labels is None else all_labels[va]

    bb = load_backbone(config.backbone, config.kind, config.lora, config.dtype)
    if bb.kind not in ("seq2seq", "causal"):
        raise DataError(
            f"tuning needs a seq2seq or causal backbone; {config.backbone} is an {bb.kind}",
            column="kind",
        )
    from instructrec.models.causal import CausalScorer
    from instructrec.models.seq2seq import Seq2SeqScorer

    cls = Seq2SeqScorer if bb.kind == "seq2seq" else CausalScorer
    scorer = cls(
        bb,
        LMScorerConfig(
            max_length=config.max_length,
            max_answer_length=config.max_answer_length,
            batch_size=config.train.batch_size,
        ),
    )

    def evaluate(model) -> dict[str, float]:
        total, n = 0.0, 0
        for s in range(0, len(valid_pairs), config.train.batch_size):
            chunk = valid_pairs[s : s + config.train.batch_size]
            batch = {k: v.to(scorer.device) for k, v in scorer.lm_collate(chunk).items()}
            total += float(scorer.lm_loss(scorer.model, batch)) * len(chunk)
            n += len(chunk)
        metrics = {"loss": total / max(n, 1)}
        if labels is not None:
            p = [q for q, _ in valid_pairs]
            margin = scorer.answer_logprob(p, ["yes"] * len(p)) - scorer.answer_logprob(
                p, ["no"] * len(p)
            )
            metrics["auc"] = auc(margin, labels)
        return metrics

    out = Path(config.train.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    import yaml

    (out / "tune.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    result = fit(
        scorer.model,
        train_pairs,
        scorer.lm_collate,
        scorer.lm_loss,
        config.train,
        evaluate=evaluate,
    )
    with torch.no_grad():
        final = evaluate(scorer.model)
    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun
    if main:  # one writer: every process holds the same (all-reduced) weights
        scorer.save(out / "model")
    summary = {
        "valid_loss": final["loss"],
        "valid_auc": final.get("auc"),
        "n_train": len(train_pairs),
        "n_valid": len(valid_pairs),
        "steps": result.steps,
        "best_step": result.best_step,
        "examples_per_s": result.examples_per_s,
        "wall_time": result.wall_time,
    }
    if main:
        (out / "metrics.json").write_text(json.dumps(summary, indent=1))
    return TuneResult(
        train=result,
        valid_loss=final["loss"],
        valid_auc=final.get("auc"),
        n_train=len(train_pairs),
        n_valid=len(valid_pairs),
        model_dir=str(out / "model"),
        scorer=scorer,
    )
