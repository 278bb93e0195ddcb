"""Generic instruction tuning: fine-tune a language model (LoRA) on any instruction/answer file,
the way InstructRec (Zhang et al. 2023) instruction-tunes Flan-T5 and TALLRec (Bao et al. 2023)
tunes a causal LM on Yes/No recommendation questions; then predict and evaluate on test files.

Data: ``instruction<TAB>answer`` TSV or Alpaca JSON (`instructrec.data.instruction_data`).
Backbone: ``smollm2-135m-instruct`` by default (offline, pinned and hashed:
`instructrec.models.offline`), any seq2seq/causal directory or hub id, or the shipped MiniLM
(``all-minilm-l6-v2``) with a classification head for closed-answer tasks.

- Closed-answer tasks (Yes/No, a small label set; `AnswerSpec`): the model is trained on one
  spelling per normalised answer ("yes", "Yes." and "YES" all train "Yes") and every allowed
  answer is scored at validation and prediction. Open tasks: LM loss, greedy generation.
- Validation: ``valid_data``, or a seeded stratified share of the training file
  (``valid_fraction``; 0: none, fixed epochs). Early stopping on the validation log-loss.
- Prompts are read whole: the length limit is the longest prompt in the data (reported; capped
  at ``max_length_cap``); anything longer loses its middle, with a warning and counts.
- The seed is set before any weight (LoRA adapters, the head) is created: same seed, same
  predictions.
- The run directory is built under a temporary name and renamed on success; an existing run
  is replaced only with ``overwrite`` and continued only with ``resume``.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from instructrec.data.errors import DataError
from instructrec.data.settings import check_mapping
from instructrec.data.yamlfile import read_yaml_mapping
from instructrec.models.lora import LoraSettings
from instructrec.training.config import TrainConfig
from instructrec.training.loop import TrainResult, fit


@dataclass
class TuneConfig:
    """Everything `tune` needs besides the data. YAML: top-level keys below, ``lora:`` and
    ``train:`` as nested mappings (`LoraSettings`, `TrainConfig`)."""

    train: TrainConfig  # the engine's settings (output_dir, lr, epochs, seed, ...)
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

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, source: str | None = None) -> TuneConfig:
        """Build from a mapping; unknown keys and values of the wrong type are a `DataError`
        naming the key (``train.lr``, ``lora.r``) and ``source``."""
        d = check_mapping(cls, d, source, skip=("train", "lora"), what="tune setting")
        train = d.pop("train", None) or {}
        if not isinstance(train, dict):
            raise DataError(
                "'train' must be a mapping of training settings", source=source, column="train"
            )
        train = dict(train)
        train.setdefault("output_dir", "runs/tune")
        lora = d.pop("lora", {})
        if lora is not None and not isinstance(lora, dict):
            raise DataError(
                "'lora' must be a mapping (r, alpha, dropout, target_modules) or null",
                source=source,
                column="lora",
            )
        lora_settings = (
            None
            if lora is None
            else LoraSettings(
                **check_mapping(LoraSettings, lora, source, "lora.", what="lora setting")
            )
        )
        train_cfg = TrainConfig.from_dict(train, source=source, prefix="train.")
        return cls(train=train_cfg, lora=lora_settings, **d)

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


def is_run(path: Path) -> bool:
    """True when ``path`` holds anything (a previous run or other files)."""
    return path.is_dir() and any(path.iterdir())


def _seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed)  # python, numpy, torch: before any weight is created


def build_engine(config: TuneConfig, spec, backbone: str):
    """(engine, engine name): an `AnswerLM` over a seq2seq/causal scorer or a
    `LabelClassifier` over an encoder, created after the seed is set."""
    from instructrec.models.offline import backbone_kind, check_reachable, load_any

    check_reachable(backbone)
    kind = config.kind
    if kind == "auto":
        kind = backbone_kind(backbone) or "auto"
    if kind == "auto":
        from instructrec.models.loading import detect_kind, load_config

        kind = detect_kind(load_config(backbone))
    if kind == "encoder":
        if spec.task != "closed":
            raise DataError(
                f"{backbone} is an encoder: it can only choose among allowed answers (a closed "
                "task such as Yes/No); open answers need a generative backbone such as "
                "smollm2-135m-instruct (or set task: closed)",
                column="backbone",
            )
        from instructrec.models.label_head import LabelClassifier

        bb = load_any(backbone, "encoder", config.lora, config.dtype)
        return LabelClassifier(bb, [spec.display[k] for k in spec.answers]), "label_head"
    from instructrec.models.answers import AnswerLM
    from instructrec.models.causal import CausalScorer
    from instructrec.models.lm_scorer import LMScorerConfig
    from instructrec.models.seq2seq import Seq2SeqScorer

    bb = load_any(backbone, kind, config.lora, config.dtype)
    if bb.kind not in ("seq2seq", "causal"):
        raise DataError(f"{backbone} is an {bb.kind}; expected seq2seq or causal", column="kind")
    cls = Seq2SeqScorer if bb.kind == "seq2seq" else CausalScorer
    cfg = LMScorerConfig(
        max_answer_length=config.max_answer_length, batch_size=config.train.batch_size
    )
    engine = AnswerLM(
        cls(bb, cfg), 0, config.max_answer_length, config.chat, config.train.batch_size
    )
    return engine, "lm"


def lm_loss(engine, pairs: list[tuple[str, str]]) -> float:
    """Mean LM loss of the answers (open tasks' validation loss)."""
    import torch

    total, n = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(pairs), engine.batch_size):
            chunk = pairs[s : s + engine.batch_size]
            batch = {k: v.to(engine.device) for k, v in engine.collate(chunk).items()}
            total += float(engine.loss(engine.model, batch)) * len(chunk)
            n += len(chunk)
    return total / max(n, 1)


def _read(data, require_output: bool = True):
    from instructrec.training.tuned import as_instruction_data

    return as_instruction_data(data, require_output=require_output)


def tune(
    data,
    backbone: str | None = None,
    config: TuneConfig | None = None,
    output_dir: str | None = None,
    *,
    valid_data=None,
    test_data=None,
    overwrite: bool = False,
    resume: bool = False,
) -> TuneResult:
    """Instruction-tune ``backbone`` on ``data`` (path / InstructionData / DataFrame / list).

    ``valid_data`` replaces the held-out share; ``test_data`` is predicted once at the end
    (``test_predictions.jsonl`` and ``test`` metrics). Returns a `TuneResult`; the run
    directory holds ``tune.yaml``, ``metrics.json``, checkpoints and ``model/``.
    """
    import torch
    import yaml

    from instructrec.data.instruction_data import normalize_answer
    from instructrec.models.offline import DEFAULT_BACKBONE
    from instructrec.training.tuned import AnswerSpec, TunedModel, metrics, write_jsonl

    config = config or TuneConfig(train=TrainConfig(output_dir=output_dir or "runs/tune"))
    out = Path(output_dir or config.train.output_dir)
    if overwrite and resume:
        raise DataError("choose one of overwrite and resume")
    if is_run(out) and not (overwrite or resume):
        raise DataError(
            "the output directory already holds files; pass --overwrite to replace the run or "
            "--resume to continue it",
            source=str(out),
        )
    backbone = str(backbone or config.backbone or DEFAULT_BACKBONE)
    train_set = _read(data)
    prompts, answers = train_set.prompts(), train_set.outputs
    spec = AnswerSpec.infer(answers, config.task, config.max_labels)
    strata = None
    if spec.task == "closed":
        strata = np.array([spec.answers.index(normalize_answer(a)) for a in answers])
    if valid_data is not None:
        valid_set = _read(valid_data)
        tr, va = np.arange(len(prompts)), np.zeros(0, dtype=np.int64)
        v_prompts, v_answers = valid_set.prompts(), valid_set.outputs
    else:
        tr, va = split_rows(
            len(prompts),
            config.valid_fraction,
            config.max_valid,
            config.train.seed,
            strata=strata,
        )
        v_prompts, v_answers = [prompts[i] for i in va], [answers[i] for i in va]
    train_pairs = [(prompts[i], spec.target(answers[i])) for i in tr]
    test_set = _read(test_data) if test_data is not None else None

    _seed_everything(config.train.seed)
    engine, engine_name = build_engine(config, spec, backbone)
    # the prompt limit follows the data: the longest prompt of every file given, capped
    fitted = [p for p, _ in train_pairs] + v_prompts
    lengths = engine.full_length(fitted + (test_set.prompts() if test_set is not None else []))
    longest = max(lengths)
    cap = config.max_length_cap
    if engine_name == "label_head":
        cap = min(cap, engine.max_length)
    limit = int(config.max_length or min(longest, cap))
    engine.max_length = limit
    truncated = sum(n > limit for n in lengths[: len(fitted)])
    if truncated:
        warnings.warn(
            f"{truncated} of {len(fitted)} training/validation prompts are longer than {limit} "
            f"tokens (longest {longest}); their middles are cut",
            stacklevel=2,
        )

    main = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun
    # every process of a distributed run writes into the same temporary directory
    tag = f"dist-{os.environ['MASTER_PORT']}" if "MASTER_PORT" in os.environ else os.getpid()
    work = out if resume else out.with_name(f".{out.name}.tmp-{tag}")
    if main and not resume:
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    train_cfg = replace(config.train, output_dir=str(work), resume=resume)
    saved = replace(config, train=train_cfg, backbone=backbone)
    if main:
        (work / "tune.yaml").write_text(yaml.safe_dump(saved.to_dict(), sort_keys=False))
    info = {
        "engine": engine_name,
        "backbone": backbone,
        "max_length": limit,
        "predict_max_length": max(limit, cap),
        "longest_prompt": longest,
        "max_answer_length": config.max_answer_length,
        "max_new_tokens": config.max_new_tokens,
        "chat": getattr(engine, "chat", None),
        "batch_size": config.train.batch_size,
        "seed": config.train.seed,
    }
    tuned = TunedModel(engine, spec, info)

    valid_records = [
        {"instruction": p, "output": a} for p, a in zip(v_prompts, v_answers, strict=True)
    ]

    def validate() -> dict:
        engine.max_length = limit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation was reported above
            preds = tuned.predict(valid_records)
        m = metrics(spec, preds, v_answers, config.train.seed)
        if spec.task == "closed":  # log-loss of the right answer among the allowed ones
            right = [
                p["probs"].get(spec.display.get(normalize_answer(a), ""), 0.0)
                for p, a in zip(preds, v_answers, strict=True)
            ]
            m["loss"] = float(-np.mean(np.log(np.clip(right, 1e-12, 1.0))))
        else:
            m["loss"] = lm_loss(engine, list(zip(v_prompts, v_answers, strict=True)))
        return m

    def evaluate(_model) -> dict[str, float]:
        return {k: v for k, v in validate().items() if isinstance(v, float)}

    model = engine if engine_name == "label_head" else engine.model
    result = fit(
        model,
        train_pairs,
        engine.collate,
        engine.loss,
        train_cfg,
        evaluate=evaluate if valid_records else None,
    )
    with torch.no_grad():
        valid_metrics = validate() if valid_records else None
        test_metrics = None
        tuned.engine.max_length = info["predict_max_length"]
        if test_set is not None and test_set.has_outputs:
            preds, test_metrics = tuned.evaluate(test_set, seed=config.train.seed)
            write_jsonl(work / "test_predictions.jsonl", preds)
        elif test_set is not None:
            write_jsonl(work / "test_predictions.jsonl", tuned.predict(test_set))
    summary = {
        "backbone": backbone,
        "engine": engine_name,
        "task": spec.task,
        "answers": spec.answers,
        "n_train": len(train_pairs),
        "n_valid": len(v_prompts),
        "n_test": 0 if test_set is None else len(test_set),
        "max_length": limit,
        "longest_prompt": longest,
        "truncated": truncated,
        "steps": result.steps,
        "best_step": result.best_step,
        "examples_per_s": result.examples_per_s,
        "wall_time": result.wall_time,
        "valid": valid_metrics,
        "test": test_metrics,
    }
    model_dir = out / "model"
    if main:
        if resume:
            shutil.rmtree(work / "model.tmp", ignore_errors=True)
            tuned.save(work / "model.tmp")
            shutil.rmtree(work / "model", ignore_errors=True)
            (work / "model.tmp").rename(work / "model")
        else:
            tuned.save(work / "model")
        (work / "metrics.json").write_text(json.dumps(summary, indent=1))
        if not resume:
            if out.exists():
                shutil.rmtree(out)
            work.rename(out)
    return TuneResult(
        train=result,
        valid_loss=None if valid_metrics is None else valid_metrics["loss"],
        valid_auc=None if valid_metrics is None else valid_metrics.get("auc"),
        n_train=len(train_pairs),
        n_valid=len(v_prompts),
        model_dir=str(model_dir),
        model=tuned,
        valid_metrics=valid_metrics,
        test_metrics=test_metrics,
        max_length=limit,
        truncated=truncated,
    )
