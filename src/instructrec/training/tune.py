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
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from instructrec.data.errors import DataError
from instructrec.training.config import TrainConfig
from instructrec.training.loop import fit
from instructrec.training.rundir import (
    check_output,
    is_main_process,
    refuse_changed_settings,
    replace_atomically,
    staged_output,
    work_dir,
)
from instructrec.training.tune_config import TuneConfig, TuneResult, split_rows


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
        from instructrec.models.label_head import POOLINGS, LabelClassifier

        if config.pooling not in POOLINGS:
            raise DataError(
                f"pooling must be one of {', '.join(POOLINGS)}, got {config.pooling!r}",
                column="pooling",
            )
        if not 0.0 <= config.head_dropout < 1.0:
            raise DataError(
                f"head_dropout must be in [0, 1), got {config.head_dropout}", column="head_dropout"
            )
        bb = load_any(backbone, "encoder", config.lora, config.dtype)
        if config.pooling == "mean+last-line" and not getattr(bb.tokenizer, "is_fast", False):
            raise DataError(
                "pooling mean+last-line needs a fast tokenizer (token offsets); "
                f"{backbone!r} has a slow one: use mean or cls",
                column="pooling",
            )
        labels = [spec.display[k] for k in spec.answers]
        head = LabelClassifier(bb, labels, pooling=config.pooling, dropout=config.head_dropout)
        return head, "label_head"
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


@dataclass
class _Rows:
    """The rows of one tuning run, read and split."""

    spec: Any  # `AnswerSpec`
    train_pairs: list[tuple[str, str]]  # (prompt, training target)
    v_prompts: list[str]
    v_answers: list[str]
    test_set: Any  # InstructionData or None


def _rows(config: TuneConfig, data, valid_data, test_data) -> _Rows:
    from instructrec.data.instruction_data import normalize_answer
    from instructrec.training.tuned import AnswerSpec

    train_set = _read(data)
    prompts, answers = train_set.prompts(), train_set.outputs
    spec = AnswerSpec.infer(answers, config.task, config.max_labels)
    strata = None
    if spec.task == "closed":
        strata = np.array([spec.answers.index(normalize_answer(a)) for a in answers])
    if valid_data is not None:
        valid_set = _read(valid_data)
        tr = np.arange(len(prompts))
        v_prompts, v_answers = valid_set.prompts(), valid_set.outputs
    else:
        tr, va = split_rows(
            len(prompts), config.valid_fraction, config.max_valid, config.train.seed, strata
        )
        v_prompts, v_answers = [prompts[i] for i in va], [answers[i] for i in va]
    train_pairs = [(prompts[i], spec.target(answers[i])) for i in tr]
    test_set = _read(test_data) if test_data is not None else None
    return _Rows(spec, train_pairs, v_prompts, v_answers, test_set)


def _prompt_limit(config: TuneConfig, engine, engine_name: str, rows: _Rows) -> dict[str, int]:
    """The prompt token limit (follows the data: the longest prompt of every file given,
    capped) with the counts behind it; sets ``engine.max_length``; warns about truncation."""
    fitted = [p for p, _ in rows.train_pairs] + rows.v_prompts
    tested = rows.test_set.prompts() if rows.test_set is not None else []
    lengths = engine.full_length(fitted + tested)
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
            stacklevel=3,
        )
    return {"limit": limit, "longest": longest, "cap": cap, "truncated": truncated}


def _validator(tuned, rows: _Rows, limit: int, seed: int):
    """validate() -> metrics of the tuned model on the validation rows (loss included)."""
    from instructrec.data.instruction_data import normalize_answer
    from instructrec.training.tuned import metrics

    spec, engine = rows.spec, tuned.engine
    records = [
        {"instruction": p, "output": a} for p, a in zip(rows.v_prompts, rows.v_answers, strict=True)
    ]

    def validate() -> dict:
        engine.max_length = limit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # truncation was reported already
            preds = tuned.predict(records)
        m = metrics(spec, preds, rows.v_answers, seed)
        if spec.task == "closed":  # log-loss of the right answer among the allowed ones
            right = [
                p["probs"].get(spec.display.get(normalize_answer(a), ""), 0.0)
                for p, a in zip(preds, rows.v_answers, strict=True)
            ]
            m["loss"] = float(-np.mean(np.log(np.clip(right, 1e-12, 1.0))))
        else:
            m["loss"] = lm_loss(engine, list(zip(rows.v_prompts, rows.v_answers, strict=True)))
        return m

    return validate


def _finish(tuned, rows: _Rows, work: Path, validate, seed: int) -> tuple[dict | None, dict | None]:
    """Validation and test metrics of the trained model; test predictions written."""
    import torch

    from instructrec.training.tuned import write_jsonl

    with torch.no_grad():
        valid_metrics = validate() if rows.v_prompts else None
        test_metrics = None
        tuned.engine.max_length = tuned.info["predict_max_length"]
        if rows.test_set is not None and rows.test_set.has_outputs:
            preds, test_metrics = tuned.evaluate(rows.test_set, seed=seed)
            write_jsonl(work / "test_predictions.jsonl", preds)
        elif rows.test_set is not None:
            write_jsonl(work / "test_predictions.jsonl", tuned.predict(rows.test_set))
    return valid_metrics, test_metrics


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
    directory holds ``tune.yaml``, ``metrics.json``, checkpoints and ``model/``. It is built
    in ``.NAME.partial`` and renamed on success (`instructrec.training.rundir`); an existing
    run is refused unless ``overwrite`` (replace) or ``resume`` (continue).
    """
    from instructrec.models.offline import DEFAULT_BACKBONE

    config = config or TuneConfig(train=TrainConfig(output_dir=output_dir or "runs/tune"))
    out = Path(output_dir or config.train.output_dir)
    if is_main_process():
        check_output(out, resume=resume, overwrite=overwrite)
    backbone = str(backbone or config.backbone or DEFAULT_BACKBONE)
    if resume and is_main_process():
        want = replace(config, train=replace(config.train, output_dir=str(out)), backbone=backbone)
        refuse_changed_settings(work_dir(out, resume=True) / "tune.yaml", want.to_dict())
    rows = _rows(config, data, valid_data, test_data)
    _seed_everything(config.train.seed)  # before any weight (LoRA, head) is created
    engine, engine_name = build_engine(config, rows.spec, backbone)
    lengths = _prompt_limit(config, engine, engine_name, rows)
    with staged_output(out, resume=resume, overwrite=overwrite) as work:
        return _train_into(work, out, config, rows, engine, engine_name, backbone, lengths, resume)


def _train_into(work, out, config, rows, engine, engine_name, backbone, lengths, resume):
    import yaml

    from instructrec.training.tuned import TunedModel

    limit = lengths["limit"]
    train_cfg = replace(config.train, output_dir=str(work), resume=resume)
    saved = replace(config, train=replace(train_cfg, output_dir=str(out)), backbone=backbone)
    main = is_main_process()
    if main:
        (work / "tune.yaml").write_text(yaml.safe_dump(saved.to_dict(), sort_keys=False))
    info = {
        "engine": engine_name,
        "backbone": backbone,
        "max_length": limit,
        "predict_max_length": max(limit, lengths["cap"]),
        "longest_prompt": lengths["longest"],
        "max_answer_length": config.max_answer_length,
        "max_new_tokens": config.max_new_tokens,
        "chat": getattr(engine, "chat", None),
        "batch_size": config.train.batch_size,
        "seed": config.train.seed,
    }
    tuned = TunedModel(engine, rows.spec, info)
    validate = _validator(tuned, rows, limit, config.train.seed)

    def evaluate(_model) -> dict[str, float]:
        return {k: v for k, v in validate().items() if isinstance(v, float)}

    model = engine if engine_name == "label_head" else engine.model
    result = fit(
        model,
        rows.train_pairs,
        engine.collate,
        engine.loss,
        train_cfg,
        evaluate=evaluate if rows.v_prompts else None,
    )
    valid_metrics, test_metrics = _finish(tuned, rows, work, validate, config.train.seed)
    summary = {
        "backbone": backbone,
        "engine": engine_name,
        "task": rows.spec.task,
        "answers": rows.spec.answers,
        "n_train": len(rows.train_pairs),
        "n_valid": len(rows.v_prompts),
        "n_test": 0 if rows.test_set is None else len(rows.test_set),
        "max_length": limit,
        "longest_prompt": lengths["longest"],
        "truncated": lengths["truncated"],
        "steps": result.steps,
        "best_step": result.best_step,
        "examples_per_s": result.examples_per_s,
        "wall_time": result.wall_time,
        "valid": valid_metrics,
        "test": test_metrics,
    }
    if main:
        tuned.save(work / "model.partial")
        replace_atomically(work / "model.partial", work / "model")
        (work / "metrics.json").write_text(json.dumps(summary, indent=1))
    return TuneResult(
        train=result,
        valid_loss=None if valid_metrics is None else valid_metrics["loss"],
        valid_auc=None if valid_metrics is None else valid_metrics.get("auc"),
        n_train=len(rows.train_pairs),
        n_valid=len(rows.v_prompts),
        model_dir=str(out / "model"),
        model=tuned,
        valid_metrics=valid_metrics,
        test_metrics=test_metrics,
        max_length=limit,
        truncated=lengths["truncated"],
    )
