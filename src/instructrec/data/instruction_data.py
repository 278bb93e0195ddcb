"""Instruction data from outside the recommendation log: Alpaca-style JSON and plain TSV.

InstructRec (Zhang et al. 2023) formats recommendation as instruction following; general
instruction data (Alpaca, Taori et al. 2023: ``[{"instruction", "input", "output"}, ...]``)
can be mixed into tuning so the model keeps following free-form text. Accepted:

- ``.json``: a list of objects with ``instruction`` and ``output`` (``input`` optional);
- ``.jsonl``: one such object per line;
- ``.tsv``/``.txt``: ``instruction<TAB>answer`` per line (an optional header line
  ``instruction<TAB>output`` or ``instruction<TAB>answer`` is skipped).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError

COLUMNS = ("instruction", "input", "output")


@dataclass
class InstructionData:
    """Instruction/response pairs: ``frame`` has columns ``instruction``, ``input``, ``output``."""

    frame: pd.DataFrame
    source: str = "<frame>"

    def __len__(self) -> int:
        return len(self.frame)

    def prompts(self, sep: str = "\n\n") -> list[str]:
        """The instruction, followed by the input (when there is one) after ``sep``."""
        return [
            i if not x else f"{i}{sep}{x}"
            for i, x in zip(self.frame["instruction"], self.frame["input"], strict=True)
        ]

    @property
    def outputs(self) -> list[str]:
        return self.frame["output"].tolist()

    def to_json(self, path: str | Path) -> Path:
        """Write Alpaca JSON (a list of objects) that `read_instruction_data` reads back."""
        path = Path(path)
        path.write_text(
            json.dumps(self.frame.to_dict("records"), ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        return path


def read_instruction_data(path: str | Path) -> InstructionData:
    """Read Alpaca JSON / JSON lines or ``instruction<TAB>answer`` TSV (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 (byte {raw[e.start : e.start + 1]!r})", source=str(path), line=line
        ) from None
    if not text.strip():
        raise DataError("empty file: expected instruction data", source=str(path))
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = _json_list(text, path)
    elif suffix == ".jsonl":
        records = _json_lines(text, path)
    elif suffix in (".tsv", ".txt"):
        records = _tsv(text, path)
    else:
        raise DataError(
            "unknown instruction file type; expected .json (Alpaca), .jsonl or "
            ".tsv (instruction<TAB>answer)",
            source=str(path),
        )
    frame = pd.DataFrame([[r[0], r[1], r[2]] for r in records], columns=list(COLUMNS))
    return InstructionData(frame=frame.astype(str), source=str(path))


def _record(obj, path: Path, where: dict) -> tuple[str, str, str]:
    if not isinstance(obj, dict):
        raise DataError(
            f"expected an object with instruction/input/output, found {type(obj).__name__}",
            source=str(path),
            **where,
        )
    for key in ("instruction", "output"):
        if key not in obj:
            raise DataError(
                f"record lacks {key!r} (keys: {sorted(obj)})", source=str(path), column=key, **where
            )
    for key in COLUMNS:
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            raise DataError(
                f"{key} must be a string, found {type(obj[key]).__name__}",
                source=str(path),
                column=key,
                **where,
            )
    return obj["instruction"], obj.get("input") or "", obj["output"] or ""


def _json_list(text: str, path: Path) -> list[tuple[str, str, str]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(
            f"malformed or truncated JSON ({e.msg}, column {e.colno})",
            source=str(path),
            line=e.lineno,
        ) from None
    if not isinstance(data, list):
        raise DataError(
            f"expected a JSON list of records (Alpaca format), found {type(data).__name__}",
            source=str(path),
            line=1,
        )
    if not data:
        raise DataError("the list of records is empty", source=str(path))
    # JSON gives no per-record line numbers; name the record instead
    out = []
    for i, obj in enumerate(data):
        try:
            out.append(_record(obj, path, {}))
        except DataError as e:
            raise DataError(f"record {i}: {e}") from None
    return out


def _json_lines(text: str, path: Path) -> list[tuple[str, str, str]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"truncated or malformed JSON ({e.msg}, column {e.colno})",
                source=str(path),
                line=lineno,
            ) from None
        out.append(_record(obj, path, {"line": lineno}))
    return out


def _tsv(text: str, path: Path) -> list[tuple[str, str, str]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataError(
                f"expected 2 tab-separated fields (instruction<TAB>answer), found {len(fields)}",
                source=str(path),
                line=lineno,
            )
        if lineno == 1 and fields[0].strip().lower() == "instruction":
            continue
        out.append((fields[0].strip(), "", fields[1].strip()))
    if not out:
        raise DataError("no instruction lines (only a header)", source=str(path))
    return out
