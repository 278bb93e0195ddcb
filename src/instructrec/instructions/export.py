"""Write an InstructionSet to disk: JSON lines, Alpaca (instruction/input/output) or TSV.

Alpaca's format (Taori et al. 2023) is what most instruction-tuning scripts read; TSV
(instruction<TAB>answer) is for quick inspection and simple seq2seq loaders.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("jsonl", "alpaca", "tsv")


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in ("history", "candidates"):
        if col in out.columns:
            out[col] = [np.asarray(a).tolist() for a in out[col]]
    if "label" in out.columns:
        out["label"] = out["label"].astype(object).where(out["label"].notna(), None)
    return out


def to_jsonl(frame: pd.DataFrame, path: str | Path) -> Path:
    """One JSON object per row, every column (item ids internal)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _plain(frame).to_json(path, orient="records", lines=True, force_ascii=False)
    return path


def to_alpaca(frame: pd.DataFrame, path: str | Path) -> Path:
    """A JSON list of {instruction, input, output} (input empty: the instruction is complete)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [
        {"instruction": i, "input": "", "output": a}
        for i, a in zip(frame["instruction"].tolist(), frame["answer"].tolist(), strict=True)
    ]
    path.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return path


def to_tsv(frame: pd.DataFrame, path: str | Path) -> Path:
    """instruction<TAB>answer per line (tabs and newlines inside fields become spaces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = {
        c: frame[c].astype(str).str.replace(r"[\t\r\n]+", " ", regex=True)
        for c in ("instruction", "answer")
    }
    pd.DataFrame(clean).to_csv(path, sep="\t", index=False, header=False)
    return path


def export(frame: pd.DataFrame, path: str | Path, fmt: str = "jsonl") -> Path:
    """Write ``frame`` in ``fmt`` (one of FORMATS)."""
    writers = {"jsonl": to_jsonl, "alpaca": to_alpaca, "tsv": to_tsv}
    if fmt not in writers:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    return writers[fmt](frame, path)
