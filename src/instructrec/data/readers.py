"""Readers: CSV / Parquet interaction logs with a column mapping, and `read_any`, which picks a
reader by suffix (``.csv``/``.tsv``, ``.parquet``, Amazon ``.json``/``.jsonl``/``.json.gz``, a
directory of Parquet files written by `write_parquet` or of RecBole atomic files).

Every reader returns a `Dataset` built by `Dataset.from_frames`, which numbers ids and checks
required columns, timestamps and duplicate ids. Bad input raises one `DataError` naming the
file, the line (or row) or column, and what was expected (one CSV/TSV file is read by
`instructrec.data.csvfile`). Readers only ever open files for reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .csvfile import _check_file, _first_line, read_frame, read_frame_header
from .dataset import Dataset
from .errors import DataError

# our column -> source names tried, in order, when no mapping names it
ALIASES = {
    "user_id": ("user_id", "userId", "userid", "user", "uid", "reviewerID", "customer_id"),
    "item_id": (
        "item_id",
        "itemId",
        "itemid",
        "item",
        "iid",
        "movieId",
        "movie_id",
        "asin",
        "product_id",
    ),
    "rating": ("rating", "ratings", "score", "overall", "stars"),
    "timestamp": ("timestamp", "ts", "time", "unixReviewTime", "datetime", "date"),
    "title": ("title", "movie_title", "name", "item_name"),
    "genres": ("genres", "genre", "categories", "class"),
}
INTERACTION_FIELDS = ("user_id", "item_id", "rating", "timestamp", "review", "summary")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
PARQUET_DIR_FILES = ("interactions.parquet", "items.parquet", "users.parquet")


def parse_mapping(text: str | None) -> dict[str, str]:
    """``"user_id=userId,item_id=movieId"`` -> ``{"user_id": "userId", "item_id": "movieId"}``."""
    if not text:
        return {}
    out = {}
    for part in text.split(","):
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise DataError(
                f"column mapping {part!r} is not of the form ours=theirs "
                f"(e.g. user_id=userId,item_id=movieId)"
            )
        out[ours.strip()] = theirs.strip()
    return out


def resolve_columns(found, mapping: dict[str, str] | None, wanted, required, source: str):
    """Map our column names to source columns: explicit ``mapping`` first, then `ALIASES`.

    Returns ``{source_column: our_column}``. A mapping naming an absent column, or a required
    column that cannot be found, raises `DataError` listing the columns the file has.
    """
    mapping = dict(mapping or {})
    found = list(found)
    unknown = [k for k in mapping if k not in wanted]
    if unknown:
        raise DataError(
            f"mapping names unknown field {unknown[0]!r}; fields are {list(wanted)}", source=source
        )
    rename = {}
    for ours in wanted:
        if ours in mapping:
            theirs = mapping[ours]
            if theirs not in found:
                raise DataError(
                    f"mapped column {theirs!r} (for {ours}) is not in the file; found {found}",
                    source=source,
                    column=theirs,
                )
        else:
            theirs = next((a for a in ALIASES.get(ours, (ours,)) if a in found), None)
            if theirs is None:
                if ours in required:
                    raise DataError(
                        f"missing required column; found {found}; name it with --map {ours}=COLUMN "
                        f"(in a run config: data.columns: {{{ours}: COLUMN}})",
                        source=source,
                        column=ours,
                    )
                continue
        if theirs in rename:
            raise DataError(
                f"column {theirs!r} is mapped to both {rename[theirs]} and {ours}",
                source=source,
                column=theirs,
            )
        rename[theirs] = ours
    return rename


def read_table(
    path: str | Path,
    columns: dict[str, str] | None = None,
    *,
    items: str | Path | None = None,
    item_columns: dict[str, str] | None = None,
    users: str | Path | None = None,
    user_columns: dict[str, str] | None = None,
    name: str | None = None,
    sep: str | None = None,
    genre_sep: str | None = None,
) -> Dataset:
    """Read an interaction log (CSV/TSV/Parquet) plus optional item and user tables.

    ``columns`` maps our names (``user_id``, ``item_id``, ``rating``, ``timestamp``,
    ``review``, ``summary``) to the file's, e.g. ``{"item_id": "movieId", "timestamp": "ts"}``;
    names it leaves out are looked up in `ALIASES`. ``item_columns`` maps ``item_id``,
    ``title``, ``genres`` and the like for the item table (other columns are kept as they are);
    ``user_columns`` does the same for users. Genres given as ``"Comedy|Drama"`` strings become
    tuples (``genre_sep`` names the separator; by default "|", else ",", else a space, so
    "Historical Fiction" needs ``genre_sep``). A log without a ``timestamp`` column is an
    error: name one or add row numbers.
    """
    path = Path(path)
    src = str(path)
    head = _header(path, sep)
    rename = resolve_columns(
        head, columns, INTERACTION_FIELDS, ("user_id", "item_id", "timestamp"), src
    )
    id_cols = [c for c, ours in rename.items() if ours in ("user_id", "item_id")]
    frame = read_frame(path, sep, id_cols, columns=list(rename))
    frame = frame[list(rename)].rename(columns=rename)
    item_frame = _side_table(items, item_columns, "item_id", sep, genre_sep)
    user_frame = _side_table(users, user_columns, "user_id", sep)
    first = 1 if path.suffix.lower() in (".parquet", ".pq") else 2
    return Dataset.from_frames(
        name or path.name.split(".")[0],
        frame,
        item_frame,
        user_frame,
        source=src,
        first_line=first,
        meta={"format": "table", "path": src, "columns": rename},
    )


def _header(path: Path, sep: str | None) -> list[str]:
    _check_file(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:
            raise DataError(
                f"not a readable Parquet file ({type(e).__name__}: {_first_line(e)})",
                source=str(path),
            ) from None
    return list(read_frame_header(path, sep))


def _side_table(
    path, mapping, key: str, sep: str | None, genre_sep: str | None = None
) -> pd.DataFrame | None:
    """An item or user table with our column names, duplicate ids rejected with their line."""
    if path is None:
        return None
    path = Path(path)
    head = _header(path, sep)
    wanted = tuple(dict.fromkeys((key, "title", "genres", *(mapping or {}))))
    rename = resolve_columns(head, mapping, wanted, (key,), str(path))
    frame = read_frame(path, sep, [c for c, ours in rename.items() if ours == key])
    frame = frame.rename(columns=rename)
    first = 1 if path.suffix.lower() in (".parquet", ".pq") else 2
    ids = frame[key]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise DataError(f"{key} is missing", source=str(path), line=row + first, column=key)
    dup = ids.astype(str).duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"duplicate id {ids.iloc[row]!r}: each {key} may appear once",
            source=str(path),
            line=row + first,
            column=key,
        )
    if "genres" in frame.columns:
        frame["genres"] = frame["genres"].map(lambda v: _genres(v, genre_sep)).astype(object)
    return frame


def _genres(value, genre_sep: str | None = None) -> tuple[str, ...]:
    if isinstance(value, str):
        sep = genre_sep or ("|" if "|" in value else ("," if "," in value else " "))
        return tuple(g.strip() for g in value.split(sep) if g.strip() and g != "(no genres listed)")
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    return tuple(str(g) for g in value)


# ---------------------------------------------------------------------- Parquet directories
def write_parquet(dataset: Dataset, directory: str | Path) -> list[Path]:
    """Write ``interactions.parquet`` (raw ids), ``items.parquet`` and ``users.parquet``.

    `read_any` reads such a directory back into an equal `Dataset`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    inter = dataset.interactions
    out = pd.DataFrame(
        {
            "user_id": dataset.user_ids[inter["user"].to_numpy()],
            "item_id": dataset.item_ids[inter["item"].to_numpy()],
            "rating": inter["rating"].to_numpy(),
            "timestamp": inter["timestamp"].to_numpy(),
        }
    )
    for extra in ("review", "summary"):
        if extra in inter.columns:
            out[extra] = inter[extra].to_numpy()
    items = dataset.items.reset_index(drop=True)
    if "genres" in items.columns:
        items = items.assign(genres=items["genres"].map(list))
    paths = [directory / n for n in PARQUET_DIR_FILES]
    out.to_parquet(paths[0], index=False)
    items.to_parquet(paths[1], index=False)
    dataset.users.reset_index(drop=True).to_parquet(paths[2], index=False)
    return paths


def read_parquet_dir(directory: str | Path, name: str | None = None) -> Dataset:
    """Read a directory written by `write_parquet`."""
    directory = Path(directory)
    inter_path, items_path, users_path = (directory / n for n in PARQUET_DIR_FILES)
    items = _side_table(items_path, None, "item_id", None) if items_path.exists() else None
    users = _side_table(users_path, None, "user_id", None) if users_path.exists() else None
    if items is not None and "year" in items.columns:
        items["year"] = items["year"].astype("Int64")
    frame = read_frame(inter_path)
    return Dataset.from_frames(
        name or directory.name,
        frame,
        items,
        users,
        source=str(inter_path),
        meta={"format": "parquet-dir", "path": str(directory)},
    )


# ---------------------------------------------------------------------- dispatch
def read_any(path: str | Path, **kwargs) -> Dataset:
    """Read ``path`` with the reader its suffix names.

    - a directory: Parquet files from `write_parquet`, else RecBole atomic files;
    - ``.csv``/``.tsv``/``.txt``/``.parquet``: `read_table` (``columns=``, ``items=``, ...);
    - ``.json``/``.jsonl`` (optionally ``.gz``): Amazon reviews, `amazon.read_amazon`
      (``meta=`` names the metadata file).
    Keyword arguments that are None are dropped, so the CLI can pass every option through.
    """
    path = Path(path)
    kwargs = {k: v for k, v in kwargs.items() if v is not None and v != {}}
    name = path.name.lower()
    if path.is_dir():
        if (path / PARQUET_DIR_FILES[0]).exists():
            return read_parquet_dir(path, kwargs.get("name"))
        from .atomic import read_atomic

        return read_atomic(path, kwargs.get("name"), genre_sep=kwargs.get("genre_sep"))
    if not path.exists():
        raise DataError("no such file or directory", source=str(path))
    if name.endswith(TABLE_SUFFIXES):
        return read_table(path, **kwargs)
    if name.endswith(JSON_SUFFIXES):
        from .amazon import read_amazon

        kwargs.pop("genre_sep", None)  # Amazon categories are lists already
        return read_amazon(path, **kwargs)
    raise DataError(
        f"unknown file type; expected a directory or a file ending in "
        f"{TABLE_SUFFIXES + JSON_SUFFIXES}",
        source=str(path),
    )
