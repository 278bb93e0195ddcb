"""A data spec: everything needed to read a user's own data, in one place.

The run config's ``data`` section and the CLI's ``--data`` / ``--map`` / ``--items`` /
``--item-map`` / ``--genre-sep`` / ``--noun`` / ``--verbs`` options describe the same thing and
go through the same two functions:

    spec = parse_data_spec({"source": "books.csv", "columns": "item_id=book_id",
                            "items": "books_meta.csv", "genre_sep": "|", "noun": "book"})
    dataset = load_data_spec(spec)

A source is ``ml-100k`` (the embedded MovieLens-100K), a RecBole atomic directory, a RecBole
benchmark-split directory (NAME.valid/test.inter + NAME.item), a Parquet directory written by
``instructrec data convert --to parquet``, a CSV/TSV/Parquet interaction log, or an Amazon
reviews ``.json(.gz)`` file. Relative paths are read from the working directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import DataError

EMBEDDED = ("ml-100k", "movielens-100k", "default")
SOURCE_HELP = (
    "'ml-100k' (embedded default), a RecBole atomic directory, a RecBole benchmark-split "
    "directory (NAME.valid/test.inter + NAME.item, e.g. Amazon Games), a Parquet directory "
    "from `data convert`, a .csv/.tsv/.parquet file, or an Amazon reviews .json(.gz) file"
)


@dataclass
class DataSpec:
    """Where the data is and how to read it (every field but ``source`` is optional)."""

    source: str = "ml-100k"  # see SOURCE_HELP
    name: str | None = None  # the data set's name in reports and on the page (default: file)
    columns: dict = field(default_factory=dict)  # interaction log: ours -> file's column names
    items: str | None = None  # item table (CSV/Parquet) for a CSV/Parquet log
    item_columns: dict = field(default_factory=dict)  # item table: ours -> file's names
    users: str | None = None  # user table (CSV/Parquet) for a CSV/Parquet log
    user_columns: dict = field(default_factory=dict)  # user table: ours -> file's names
    meta: str | None = None  # Amazon metadata file (JSON lines) for a reviews file
    genre_sep: str | None = None  # genre separator ("|", ","); None: guessed ("|", ",", space)
    noun: str | None = None  # what an item is called ("book"); None: guessed from the name
    nouns: str | None = None  # its plural ("books"); None: noun + "s"
    verbs: list | None = None  # [past, base] of using one ("read", "read"); None: from noun

    def reader_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `readers.read_any` (empty ones dropped)."""
        out = {
            "columns": self.columns,
            "items": self.items,
            "item_columns": self.item_columns,
            "users": self.users,
            "user_columns": self.user_columns,
            "meta": self.meta,
        }
        return {k: v for k, v in out.items() if v}

    def domain(self) -> dict[str, Any]:
        """The domain words this spec sets (``Dataset.meta`` keys noun, nouns, verbs)."""
        out = {"noun": self.noun, "nouns": self.nouns, "verbs": self.verbs}
        return {k: v for k, v in out.items() if v}


SPEC_FIELDS = tuple(f.name for f in fields(DataSpec))
MAP_FIELDS = ("columns", "item_columns", "user_columns")


def parse_data_spec(value: Any, where: str = "data", source: str | None = None) -> DataSpec:
    """A `DataSpec` from a string (a source), a mapping (a config section or CLI options), or
    a `DataSpec`. Column maps may be mappings or ``"ours=theirs,..."`` strings; ``verbs`` a
    pair or ``"read,read"``. Unknown keys or bad values are a `DataError` naming the key
    (and ``source``, the config file, when given)."""
    if isinstance(value, DataSpec):
        return value
    if value is None:
        return DataSpec()
    if isinstance(value, str | Path):
        return DataSpec(source=str(value))
    if not isinstance(value, dict):
        raise DataError(
            f"{where} must be a source or a mapping, got {type(value).__name__}", source=source
        )
    unknown = sorted(set(value) - set(SPEC_FIELDS))
    if unknown:
        raise DataError(
            f"unknown data setting(s) {unknown}; expected some of {list(SPEC_FIELDS)}",
            source=source,
            column=f"{where}.{unknown[0]}",
        )
    kw: dict[str, Any] = {}
    for key, v in value.items():
        if v is None or v == "":
            continue
        if key in MAP_FIELDS:
            kw[key] = _mapping(v, f"{where}.{key}", source)
        elif key == "verbs":
            kw[key] = _verbs(v, f"{where}.verbs", source)
        elif not isinstance(v, str | Path):
            raise DataError(
                f"{where}.{key} must be text, got {v!r}", source=source, column=f"{where}.{key}"
            )
        else:
            kw[key] = str(v)
    return DataSpec(**kw)


def _mapping(value: Any, where: str, source: str | None) -> dict[str, str]:
    if isinstance(value, dict):
        bad = [k for k, v in value.items() if not isinstance(v, str) or not str(k).strip()]
        if bad:
            raise DataError(
                f"column names must be text (bad: {bad[0]!r})", source=source, column=where
            )
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str):
        from .readers import parse_mapping

        try:
            return parse_mapping(value)
        except DataError as e:
            raise DataError(str(e), source=source, column=where) from None
    raise DataError(
        f"must be a mapping or 'ours=theirs,...', got {type(value).__name__}",
        source=source,
        column=where,
    )


def _verbs(value: Any, where: str, source: str | None) -> list[str]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise DataError(
            f"must be a pair 'past,base' such as 'read,read' or 'bought,buy', got {value!r}",
            source=source,
            column=where,
        )
    return list(value)


def load_data_spec(spec: Any, where: str | None = None):
    """Read the `Dataset` a spec (or anything `parse_data_spec` takes: a source string, a
    mapping, a run config's ``data`` section) names: the one loader of the CLI's ``--data``
    and of run files. ``where`` (e.g. ``"data"``) names the config section in a missing-file
    error."""
    spec = parse_data_spec(spec)
    try:
        ds = _read(spec)
    except DataError as e:
        if where is None or e.column is not None or "no such file" not in str(e):
            raise
        message = str(e).split(": ", 1)[-1] if e.source else str(e)
        raise DataError(message, source=e.source, column=f"{where}.source") from None
    if spec.name:
        ds.name = spec.name
    domain = spec.domain()
    if domain:
        ds.meta = {**(ds.meta if isinstance(ds.meta, dict) else {}), **domain}
    return ds


def _read(spec: DataSpec):
    from .benchmark import is_benchmark_dir, read_benchmark_split
    from .movielens import load_movielens_100k

    if spec.source in EMBEDDED:
        return load_movielens_100k()
    path = Path(spec.source)
    if not path.exists():
        raise DataError(f"no such file or directory (expected {SOURCE_HELP})", source=spec.source)
    if is_benchmark_dir(path):  # its fixed split is what leave_one_out gives on the Dataset
        return read_benchmark_split(path)[0]
    from . import readers

    kwargs = spec.reader_kwargs()
    if spec.genre_sep is not None:
        kwargs["genre_sep"] = spec.genre_sep
    if path.is_dir():
        side = [
            k for k in ("columns", "items", "item_columns", "users", "user_columns") if k in kwargs
        ]
        if side:
            raise DataError(
                f"{side[0]} applies to a CSV/Parquet log, not to a directory", source=spec.source
            )
    return readers.read_any(path, **kwargs)
