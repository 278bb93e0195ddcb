"""A tuned instruction model at inference: `TunedModel.load(dir).predict(records)`.

What `instructrec.training.tune.tune` saves and `instructrec predict` runs. A closed-answer
task (Yes/No, a label set) scores every allowed answer and reports each one's probability (a
softmax over the allowed answers' log-likelihoods, or the classification head's softmax); an
open task generates greedily. Answers are compared after `normalize_answer` ("Yes." == "yes"),
the same normalisation training used. Metrics: accuracy (closed), AUC (two answers), exact
match, each with a 95% bootstrap CI (`instructrec.stats`).

Saved layout (``model/``): ``tuned.json`` (task, allowed answers, their spelling as trained,
the prompt length limit, the engine) and either ``lm/`` (a saved `LMScorer`: LoRA adapter +
tokenizer, its base named by registry key or path) or ``head/`` (a `LabelClassifier`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from instructrec.data.errors import DataError
from instructrec.data.instruction_data import (
    InstructionData,
    normalize_answer,
    read_instruction_data,
)


@dataclass
class AnswerSpec:
    """What answers look like: open text, or a closed set of normalised keys."""

    task: str  # "closed" | "open"
    answers: list[str] = field(default_factory=list)  # normalised keys (closed), sorted
    display: dict[str, str] = field(default_factory=dict)  # key -> the spelling trained on

    @classmethod
    def infer(cls, answers: list[str], task: str = "auto", max_labels: int = 20) -> AnswerSpec:
        """Closed when ``task`` says so, or (auto) when there are at most ``max_labels``
        distinct normalised answers and they repeat (at most half as many as rows)."""
        if task not in ("auto", "closed", "open"):
            raise DataError(f"task must be auto, closed or open, got {task!r}", column="task")
        keys = [normalize_answer(a) for a in answers]
        distinct = sorted(set(keys))
        if task == "auto":
            closed = len(distinct) <= max_labels and len(distinct) <= max(2, len(keys) // 2)
            task = "closed" if closed else "open"
        if task == "open":
            return cls("open")
        if len(distinct) < 2:
            raise DataError(f"a closed-answer task needs at least 2 answers, found {distinct}")
        spellings: dict[str, dict[str, int]] = {}
        for raw, key in zip(answers, keys, strict=True):
            text = raw.strip().rstrip(".!?;:,").strip() or raw.strip()
            spellings.setdefault(key, {}).setdefault(text, 0)
            spellings[key][text] += 1
        display = {k: max(sorted(v), key=v.get) for k, v in spellings.items()}
        return cls("closed", distinct, display)

    def target(self, answer: str) -> str:
        """The text trained on for ``answer`` (its key's one spelling, for closed tasks)."""
        if self.task == "open":
            return answer.strip()
        key = normalize_answer(answer)
        if key not in self.display:
            raise DataError(f"answer {answer!r} is not one of the allowed answers {self.answers}")
        return self.display[key]

    def positive(self) -> str | None:
        """The answer whose probability AUC ranks by (two-answer tasks): "yes" if allowed,
        else the second key in sorted order."""
        if self.task != "closed" or len(self.answers) != 2:
            return None
        return "yes" if "yes" in self.answers else self.answers[1]


def as_instruction_data(records, require_output: bool = False) -> InstructionData:
    """A path, `InstructionData`, DataFrame, list of dicts or list of strings."""
    if isinstance(records, InstructionData):
        return records
    if isinstance(records, (str, Path)):
        return read_instruction_data(records, require_output=require_output)
    if isinstance(records, list) and all(isinstance(r, str) for r in records):
        records = [{"instruction": r} for r in records]
    if isinstance(records, list):
        records = pd.DataFrame(records)
    if not isinstance(records, pd.DataFrame):
        raise TypeError("records must be a path, InstructionData, DataFrame or list")
    if "instruction" not in records:
        raise DataError("records lack an 'instruction' column")
    frame = pd.DataFrame(
        {
            "instruction": records["instruction"].astype(str),
            "input": records["input"].fillna("").astype(str) if "input" in records else "",
            "output": records.get("output", None),
        }
    )
    if require_output and frame["output"].isna().any():
        raise DataError("some records have no answer ('output')")
    return InstructionData(frame=frame)


def metrics(spec: AnswerSpec, preds: list[dict], labels: list[str], seed: int = 0) -> dict:
    """Accuracy / exact match (and AUC for two answers), with 95% bootstrap CIs."""
    from instructrec.stats import (
        bootstrap_ci,
        bootstrap_stat,
        percentile_ci,
        resample_indices,
    )
    from instructrec.training.tune_config import auc

    keys = [normalize_answer(a) for a in labels]
    correct = np.array(
        [normalize_answer(p["answer"]) == k for p, k in zip(preds, keys, strict=True)]
    )
    idx = resample_indices(len(keys), seed=seed)
    name = "accuracy" if spec.task == "closed" else "exact_match"
    out: dict[str, Any] = {
        "n": len(keys),
        name: float(correct.mean()) if len(keys) else float("nan"),
    }
    out[f"{name}_ci"] = list(bootstrap_ci(correct.astype(float), idx))
    if spec.task == "closed":
        out["exact_match"], out["exact_match_ci"] = out["accuracy"], out["accuracy_ci"]
        out["unknown_labels"] = int(sum(k not in spec.answers for k in keys))
        pos = spec.positive()
        if pos is not None:
            y = np.array([k == pos for k in keys])
            s = np.array([p["probs"][spec.display[pos]] for p in preds])
            out["auc"] = auc(s, y)
            out["auc_ci"] = list(
                percentile_ci(bootstrap_stat(lambda r: auc(s[r], y[r]), len(y), idx))
            )
            out["positive"] = spec.display[pos]
    return out


def write_jsonl(path: str | Path, rows: list[dict]) -> Path:
    """Write one JSON object per line under a temporary name, then rename it into place."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


class TunedModel:
    """A tuned model and its answer spec; `predict` and `evaluate` over instruction records."""

    def __init__(self, engine, spec: AnswerSpec, info: dict | None = None) -> None:
        self.engine = engine  # an `AnswerLM` or a `LabelClassifier`
        self.spec = spec
        self.info = dict(info or {})  # max_length, backbone, engine, ...

    # ---- inference -----------------------------------------------------------------
    def _prompts(self, data: InstructionData) -> list[str]:
        return data.prompts()

    def predict(self, records, max_new_tokens: int | None = None) -> list[dict]:
        """One dict per record: ``answer`` and, for closed tasks, ``probs`` (allowed answer ->
        probability); ``label`` and ``correct`` when the record has an answer."""
        data = as_instruction_data(records)
        prompts = self._prompts(data)
        if self.spec.task == "closed":
            texts = [self.spec.display[k] for k in self.spec.answers]
            if self.info.get("engine") == "label_head":
                lp = self.engine.answer_logprobs(prompts)
            else:
                lp = self.engine.answer_logprobs(prompts, texts)
            p = np.exp(lp - lp.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            out = [
                {
                    "answer": texts[int(r.argmax())],
                    "probs": dict(zip(texts, map(float, r), strict=True)),
                }
                for r in p
            ]
        else:
            n = max_new_tokens or int(self.info.get("max_new_tokens", 32))
            out = [{"answer": a} for a in self.engine.generate(prompts, n)]
        self._warn_truncated(len(prompts))
        if data.has_outputs:
            for o, label in zip(out, data.outputs, strict=True):
                o["label"] = label
                o["correct"] = normalize_answer(o["answer"]) == normalize_answer(label)
        return out

    def _warn_truncated(self, n: int) -> None:
        k = int(getattr(self.engine, "truncated", 0))
        self.last_truncated = k
        if k:
            warnings.warn(
                f"{k} of {n} inputs were longer than {self.engine.max_length} tokens; "
                f"{self.engine.tokens_cut} tokens cut from their middle",
                stacklevel=3,
            )

    def evaluate(self, records, seed: int = 0) -> tuple[list[dict], dict]:
        """(predictions, metrics with CIs) on labelled records."""
        data = as_instruction_data(records, require_output=True)
        preds = self.predict(data)
        return preds, metrics(self.spec, preds, data.outputs, seed)

    # ---- persistence -----------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if self.info.get("engine") == "label_head":
            self.engine.save(directory / "head")
        else:
            self.engine.scorer.save(directory / "lm")
        meta = {"spec": asdict(self.spec), "info": self.info}
        (directory / "tuned.json").write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TunedModel:
        """Load a tuned model from its ``model/`` directory or the run directory above it."""
        directory = Path(directory)
        if (
            not (directory / "tuned.json").is_file()
            and (directory / "model" / "tuned.json").is_file()
        ):
            directory = directory / "model"
        if not (directory / "tuned.json").is_file():
            raise DataError(
                "not a tuned model (no tuned.json, nor model/tuned.json)", source=str(directory)
            )
        meta = json.loads((directory / "tuned.json").read_text())
        spec, info = AnswerSpec(**meta["spec"]), meta["info"]
        if info.get("engine") == "label_head":
            from instructrec.models.label_head import LabelClassifier

            engine = LabelClassifier.load(directory / "head")
            engine.max_length = int(info.get("predict_max_length", engine.max_length))
        else:
            from instructrec.models.answers import AnswerLM
            from instructrec.models.lm_load import load_scorer

            engine = AnswerLM(
                load_scorer(directory / "lm"),
                max_length=int(info.get("predict_max_length", info.get("max_length", 0))),
                max_answer_length=int(info.get("max_answer_length", 64)),
                chat=info.get("chat"),
                batch_size=int(info.get("batch_size", 16)),
            )
        return cls(engine, spec, info)
