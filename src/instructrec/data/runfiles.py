"""Run files: what a saved run is made of, as data only (JSON, safetensors, Parquet, NumPy).

Loading any of these never runs code: JSON is parsed, safetensors holds plain numbers, NumPy
files are read with ``allow_pickle=False`` and Parquet holds tables. Classes are named on disk
by registry keys (``"itemknn"``), never by module paths. A folder saved by an older instructrec
(pickles) is refused with a message saying how to convert it (`instructrec runs convert`).

    write_json(d / "x.json", {...});  read_json(d / "x.json")
    save_arrays(d / "arrays.safetensors", {"sim.data": a, ...});  load_arrays(...)
    csr_arrays("sim", matrix) -> arrays;  csr_from(arrays, "sim") -> matrix
    values, offsets = pack_ragged(list_of_arrays);  unpack_ragged(values, offsets)
    write_dataset(dataset, d / "dataset");  read_dataset(d / "dataset")
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError

FORMAT = 2  # run-file format; 1 was the pickled layout
PICKLE_MESSAGE = (
    "saved by an older instructrec (pickle); re-train it, or convert it with "
    "`instructrec runs convert DIR` on a trusted folder"
)
DATASET_TABLES = ("interactions", "items", "users")


# ---------------------------------------------------------------------- JSON
def write_json(path: str | Path, obj: Any) -> None:
    """``obj`` as indented JSON (no NaN/inf tricks beyond what `json` itself writes)."""
    Path(path).write_text(json.dumps(obj, indent=2))


def read_json(path: str | Path) -> Any:
    """Parsed JSON; a missing or malformed file is a `DataError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise DataError("missing run file", source=str(path)) from e
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"not valid JSON ({e})", source=str(path)) from e


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python numbers/lists (for JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return value  # json writes NaN/Infinity and reads them back
    return value


def inside(directory: Path, name: Any) -> Path:
    """``directory / name`` for a plain folder name read from a run file (no ``..``, no
    separators, no absolute path: a run file cannot point outside its run)."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise DataError(f"bad folder name {name!r} in a run file", source=str(directory))
    return directory / name


# ---------------------------------------------------------------------- arrays
def save_arrays(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Numeric arrays into one safetensors file (object arrays are refused)."""
    from safetensors.numpy import save_file

    out = {}
    for name, a in arrays.items():
        a = np.asarray(a)
        if a.dtype == object:
            raise TypeError(f"array {name!r} holds Python objects; run files hold numbers only")
        out[name] = np.ascontiguousarray(a)
    save_file(out, str(path))


def load_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a safetensors file; missing or corrupt is a `DataError` naming it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.exists():
        raise DataError("missing run file", source=str(path))
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(f"not a readable safetensors file ({e})", source=str(path)) from e


def pack_ragged(rows: list[np.ndarray], dtype=np.int32) -> tuple[np.ndarray, np.ndarray]:
    """A list of 1-d arrays as (concatenated values, offsets of length len(rows) + 1)."""
    lens = np.array([len(r) for r in rows], np.int64)
    offsets = np.r_[0, np.cumsum(lens)].astype(np.int64)
    values = (
        np.concatenate([np.asarray(r, dtype) for r in rows]) if lens.sum() else np.empty(0, dtype)
    )
    return values.astype(dtype, copy=False), offsets


def unpack_ragged(values: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Inverse of `pack_ragged` (each row a copy, so rows do not share memory)."""
    return [values[offsets[i] : offsets[i + 1]].copy() for i in range(len(offsets) - 1)]


def csr_arrays(prefix: str, matrix) -> dict[str, np.ndarray]:
    """A ``scipy.sparse`` matrix as CSR arrays named ``prefix.data/indices/indptr/shape``."""
    m = matrix.tocsr()
    return {
        f"{prefix}.data": m.data,
        f"{prefix}.indices": m.indices,
        f"{prefix}.indptr": m.indptr,
        f"{prefix}.shape": np.asarray(m.shape, np.int64),
    }


def csr_from(arrays: dict[str, np.ndarray], prefix: str):
    """The CSR matrix `csr_arrays` wrote under ``prefix`` (None when absent)."""
    import scipy.sparse as sp

    if f"{prefix}.data" not in arrays:
        return None
    shape = tuple(int(x) for x in arrays[f"{prefix}.shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}.data"], arrays[f"{prefix}.indices"], arrays[f"{prefix}.indptr"]),
        shape=shape,
    )


# ---------------------------------------------------------------------- old runs
def refuse_pickles(directory: str | Path) -> None:
    """A `DataError` when ``directory`` (or a folder in it) holds ``*.pkl`` files: a run
    saved by an older instructrec, whose loading would run code. Nothing is opened."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    found = sorted(directory.rglob("*.pkl"))
    if found:
        raise DataError(PICKLE_MESSAGE, source=str(directory))


# ---------------------------------------------------------------------- dataset
def _tuple_columns(frame: pd.DataFrame) -> list[str]:
    """Object columns whose values are tuples/lists (e.g. ``genres``)."""
    out = []
    for col in frame.columns:
        if (
            frame[col].dtype == object
            and frame[col].map(lambda v: isinstance(v, tuple | list)).any()
        ):
            out.append(str(col))
    return out


def _as_tuple(v: Any) -> Any:
    if isinstance(v, np.ndarray | list | tuple):
        return tuple(v.tolist() if isinstance(v, np.ndarray) else v)
    return np.nan if v is None else v


def write_dataset(dataset: Dataset, directory: str | Path) -> Path:
    """``dataset.json`` (name, meta, tuple columns) and one Parquet file per table, with the
    internal ids as they are (reading it back re-numbers nothing)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tuples = {}
    for table in DATASET_TABLES:
        frame = getattr(dataset, table)
        tuples[table] = _tuple_columns(frame)
        try:
            frame.to_parquet(directory / f"{table}.parquet")
        except (TypeError, ValueError, ImportError) as e:  # pyarrow refuses mixed columns
            raise DataError(f"cannot write the {table} table as Parquet ({e})") from e
    write_json(
        directory / "dataset.json",
        {
            "format": FORMAT,
            "name": dataset.name,
            "meta": json_ready(dataset.meta),
            "tuple_columns": tuples,
        },
    )
    return directory


def read_dataset(directory: str | Path) -> Dataset:
    """The `Dataset` written by `write_dataset`."""
    directory = Path(directory)
    info = read_json(directory / "dataset.json")
    frames = {}
    for table in DATASET_TABLES:
        path = directory / f"{table}.parquet"
        try:
            frame = pd.read_parquet(path)
        except FileNotFoundError as e:
            raise DataError("missing run file", source=str(path)) from e
        except Exception as e:  # noqa: BLE001 - pyarrow raises many types for a corrupt file
            raise DataError(f"not a readable Parquet file ({e})", source=str(path)) from e
        for col in info.get("tuple_columns", {}).get(table, []):
            if col in frame.columns:
                frame[col] = frame[col].map(_as_tuple).astype(object)
        frames[table] = frame
    return Dataset(name=info["name"], meta=dict(info.get("meta") or {}), **frames)
