"""Instruction data from outside the recommendation log: Alpaca-style JSON and plain TSV.

InstructRec (Zhang et al. 2023) formats recommendation as instruction following; general
instruction data (Alpaca, Taori et al. 2023: ``[{"instruction", "input", "output"}, ...]``)
can be mixed into tuning so the model keeps following free-form text. Accepted:

- ``.json``: a list of objects with ``instruction`` and ``output`` (``input`` optional);
- ``.jsonl``: one such object per line;
- ``.tsv``/``.txt``: ``instruction<TAB>answer`` per line (an optional header line
  ``instruction<TAB>output`` or ``instruction<TAB>answer`` is skipped).

A null, missing or blank instruction or answer is refused with the record (JSON) or line
number. Files to predict on may leave the answers out (``require_output=False``): every record
then has an answer or none does. `normalize_answer` is the one answer normalisation used by
training, validation and prediction ("Yes." == "yes").
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .errors import DataError

COLUMNS = ("instruction", "input", "output")
_TRAILING = ".!?;:,。"  # trailing punctuation that does not change an answer


def normalize_answer(text: str) -> str:
    """Answer key: whitespace collapsed, case-folded, trailing punctuation and quotes stripped
    ("Yes." -> "yes", " No! " -> "no", "Action" -> "action")."""
    t = re.sub(r"\s+", " ", str(text)).strip().casefold()
    return t.strip("\"'`").rstrip(_TRAILING).strip()


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
        """The answers ("" where the file gave none; see `has_outputs`)."""
        return self.frame["output"].fillna("").astype(str).tolist()

    @property
    def has_outputs(self) -> bool:
        """True when every record has an answer (a labelled file)."""
        return bool(len(self.frame)) and bool(self.frame["output"].notna().all())

    def to_json(self, path: str | Path) -> Path:
        """Write Alpaca JSON (a list of objects) that `read_instruction_data` reads back."""
        path = Path(path)
        path.write_text(
            json.dumps(self.frame.to_dict("records"), ensure_ascii=False, indent=1),
            encoding="utf-8",
        )
        return path


def read_instruction_data(path: str | Path, require_output: bool = True) -> InstructionData:
    """Read Alpaca JSON / JSON lines or ``instruction<TAB>answer`` TSV (see module docstring).

    ``require_output=False`` accepts records without an answer (a file to predict on)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", source=str(path))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(
            f"not valid UTF-8 (byte {raw[e.start : e.start + 1]!r})", source=str(path), line=line
        ) from None
    if not text.strip():
        raise DataError("empty file: expected instruction data", source=str(path))
    suffix = path.suffix.lower()
    if suffix == ".json":
        records = _json_list(text, path, require_output)
    elif suffix == ".jsonl":
        records = _json_lines(text, path, require_output)
    elif suffix in (".tsv", ".txt"):
        records = _tsv(text, path, require_output)
    else:
        raise DataError(
            "unknown instruction file type; expected .json (Alpaca), .jsonl or "
            ".tsv (instruction<TAB>answer)",
            source=str(path),
        )
    labelled = [r[2] is not None for r in records]
    if any(labelled) and not all(labelled):
        first = labelled.index(not labelled[0])
        raise DataError(
            f"record {first}: some records have an answer and some do not", source=str(path)
        )
    frame = pd.DataFrame([[r[0], r[1], r[2]] for r in records], columns=list(COLUMNS))
    frame[["instruction", "input"]] = frame[["instruction", "input"]].astype(str)
    if all(labelled):
        frame["output"] = frame["output"].astype(str)
    return InstructionData(frame=frame, source=str(path))


def _record(obj, path: Path, where: dict, require_output: bool = True, label: str = ""):
    """(instruction, input, answer) of one JSON record; ``label`` ("record 3: ") names it."""

    def refuse(message: str, key: str | None = None):
        raise DataError(f"{label}{message}", source=str(path), column=key, **where)

    if not isinstance(obj, dict):
        refuse(f"expected an object with instruction/input/output, found {type(obj).__name__}")
    for key in ("instruction", "output") if require_output else ("instruction",):
        if key not in obj:
            refuse(f"record lacks {key!r} (keys: {sorted(map(str, obj))})", key)
    for key in COLUMNS:
        value = obj.get(key)
        if value is None:
            if key in obj and (key == "instruction" or (key == "output" and require_output)):
                refuse(f"{key} is null; expected a non-empty string", key)
            continue
        if not isinstance(value, str):
            refuse(f"{key} must be a string, found {type(value).__name__}", key)
        if key != "input" and not value.strip():
            refuse(f"{key} is empty; expected a non-empty string", key)
    return obj["instruction"], obj.get("input") or "", obj.get("output")


def _loads(text: str, path: Path, where: dict):
    """``json.loads`` with one-line errors: malformed JSON and nesting too deep for the
    parser (RecursionError) are `DataError`s naming the file and line."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        line = where.get("line") or e.lineno
        raise DataError(
            f"malformed or truncated JSON ({e.msg}, column {e.colno})", source=str(path), line=line
        ) from None
    except RecursionError:
        raise DataError(
            "JSON nested too deeply (records are flat objects of strings)",
            source=str(path),
            **where,
        ) from None


def _json_list(text: str, path: Path, require_output: bool = True) -> list:
    data = _loads(text, path, {})
    if not isinstance(data, list):
        raise DataError(
            f"expected a JSON list of records (Alpaca format), found {type(data).__name__}",
            source=str(path),
            line=1,
        )
    if not data:
        raise DataError("the list of records is empty", source=str(path))
    # JSON gives no per-record line numbers; name the record instead
    return [_record(obj, path, {}, require_output, f"record {i}: ") for i, obj in enumerate(data)]


def _json_lines(text: str, path: Path, require_output: bool = True) -> list:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        obj = _loads(line, path, {"line": lineno})
        out.append(_record(obj, path, {"line": lineno}, require_output))
    return out


def _tsv(text: str, path: Path, require_output: bool = True) -> list:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 and not (len(fields) == 1 and not require_output):
            raise DataError(
                f"expected 2 tab-separated fields (instruction<TAB>answer), found {len(fields)}",
                source=str(path),
                line=lineno,
            )
        if lineno == 1 and fields[0].strip().lower() == "instruction":
            continue
        for name, value in zip(("instruction", "answer"), fields, strict=False):
            if not value.strip():
                raise DataError(f"{name} is empty", source=str(path), line=lineno)
        answer = fields[1].strip() if len(fields) == 2 else None
        out.append((fields[0].strip(), "", answer))
    if not out:
        raise DataError("no instruction lines (only a header)", source=str(path))
    return out
