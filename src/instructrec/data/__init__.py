"""Data room: `Dataset`, readers, the embedded MovieLens-100K, splits and candidate files.

The names below are imported on first use (PEP 562 ``__getattr__``): ``from instructrec.data
import DataError`` does not pay for pandas, pyarrow and the readers.
"""

from __future__ import annotations

import importlib

# public name -> the submodule defining it
_EXPORTS = {
    "read_amazon": "amazon",
    "read_atomic": "atomic",
    "write_atomic": "atomic",
    "make_benchmark_split": "benchmark",
    "read_benchmark_split": "benchmark",
    "restrict_users": "benchmark",
    "DISLIKED_RATING": "dataset",
    "LIKED_RATING": "dataset",
    "Dataset": "dataset",
    "DataError": "errors",
    "InstructionData": "instruction_data",
    "read_instruction_data": "instruction_data",
    "load_movielens_100k": "movielens",
    "movielens_100k_path": "movielens",
    "read_any": "readers",
    "read_table": "readers",
    "write_parquet": "readers",
    "CANDIDATE_SETS": "split",
    "HISTORY_LEN": "split",
    "Split": "split",
    "add_candidates": "split",
    "leave_one_out": "split",
    "load_split": "split_files",
    "make_split": "split",
    "save_split": "split_files",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'instructrec.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
