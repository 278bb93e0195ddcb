"""Options shared by several commands: how to name a dataset on the command line."""

from __future__ import annotations

from pathlib import Path

import click

DATA_OPTION_HELP = (
    "dataset: 'ml-100k' (embedded default), a RecBole atomic directory, a RecBole "
    "benchmark-split directory (NAME.valid/test.inter + NAME.item, e.g. Amazon Games), "
    "a .csv/.parquet file, or an Amazon reviews .json(.gz) file"
)


def data_option(f):
    return click.option(
        "--data", "data", default="ml-100k", show_default=True, help=DATA_OPTION_HELP
    )(f)


def load_dataset(spec: str, **kwargs):
    """Resolve a --data value to a `Dataset` (readers are chosen by path and suffix)."""
    from instructrec.data import load_movielens_100k, read_atomic
    from instructrec.data.benchmark import is_benchmark_dir, read_benchmark_split
    from instructrec.data.errors import DataError

    if spec in ("ml-100k", "movielens-100k", "default"):
        return load_movielens_100k()
    path = Path(spec)
    if is_benchmark_dir(path):  # its fixed split is what leave_one_out gives on the Dataset
        return read_benchmark_split(path)[0]
    if path.is_dir() and not (path / "interactions.parquet").exists():
        return read_atomic(path)
    if not path.exists():
        raise DataError(
            "no such file or directory (expected 'ml-100k', an atomic directory, "
            "a .csv/.parquet file or an Amazon .json(.gz) file)",
            source=spec,
        )
    from instructrec.data import readers  # noqa: PLC0415  (written by the data room)

    return readers.read_any(path, **kwargs)


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2]; a one-line DataError for anything else."""
    from instructrec.data.errors import DataError

    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise DataError(
            f"--seeds expects comma-separated integers (e.g. 0,1,2), got {text!r}"
        ) from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise DataError(f"--seeds expects distinct non-negative integers, got {text!r}")
    return seeds
