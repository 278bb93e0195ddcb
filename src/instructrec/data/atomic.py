"""RecBole atomic files (``.inter``, ``.item``, ``.user``): reader and writer.

Format (https://recbole.io/docs/user_guide/data/atomic_files.html): tab-separated, one header
line of ``name:type`` fields where type is ``token``, ``token_seq``, ``float`` or ``float_seq``.
We map RecBole's common field names onto ours (``movie_title`` -> ``title``, ``release_year``
-> ``year``, ``class``/``genre`` -> ``genres``) and keep every other field as an attribute.
The writer produces files RecBole reads, so RecBole can run on exactly our data and splits.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")
# RecBole field name -> our column name
FIELD_ALIASES = {
    "movie_title": "title",
    "title": "title",
    "item_name": "title",
    "release_year": "year",
    "year": "year",
    "class": "genres",
    "genre": "genres",
    "genres": "genres",
    "categories": "genres",
    "review": "review",
    "review_text": "review",
}


def read_atomic_table(path: str | Path) -> pd.DataFrame:
    """Read one atomic file into a DataFrame with plain column names (types dropped)."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=str(path))
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = fh.readline().rstrip("\r\n")
            if not header:
                raise DataError(
                    "empty file: expected a header line of name:type fields",
                    source=str(path),
                    line=1,
                )
            fields = header.split("\t")
            names, types = [], []
            for f in fields:
                if ":" not in f:
                    raise DataError(
                        f"header field {f!r} is not of the form name:type "
                        f"(type one of {ATOMIC_TYPES})",
                        source=str(path),
                        line=1,
                    )
                n, t = f.rsplit(":", 1)
                if t not in ATOMIC_TYPES:
                    raise DataError(
                        f"header field {f!r} has unknown type {t!r}; expected one of "
                        f"{ATOMIC_TYPES}",
                        source=str(path),
                        line=1,
                    )
                if n in names:
                    raise DataError(
                        "duplicate field name in the header: each field may appear once",
                        source=str(path),
                        line=1,
                        column=n,
                    )
                names.append(n)
                types.append(t)
            # index_col=False: pandas would take extra leading fields as an index; it warns
            # instead, and a row with more fields than the header is refused
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    fh,
                    sep="\t",
                    header=None,
                    names=list(range(len(names))),
                    index_col=False,
                    dtype=str,
                    keep_default_na=False,
                    quoting=csv.QUOTE_NONE,
                    engine="c",
                )
    except UnicodeDecodeError as e:
        line = _line_of_byte(path, e.start)
        raise DataError(
            f"not valid UTF-8 (byte {e.object[e.start : e.start + 1]!r})",
            source=str(path),
            line=line,
        ) from None
    except pd.errors.ParserWarning:
        raise DataError(
            f"more tab-separated fields than the {len(names)} of the header",
            source=str(path),
            line=_first_long_row(path, len(names)),
        ) from None
    except pd.errors.ParserError as e:
        import re

        m = re.search(r"line (\d+), saw (\d+)", str(e))
        if m:  # pandas counts lines after the header; ours count it
            raise DataError(
                f"{m.group(2)} tab-separated fields, the header has {len(names)}",
                source=str(path),
                line=int(m.group(1)) + 1,
            ) from None
        detail = " ".join(str(e).split())
        raise DataError(f"malformed row: {detail}", source=str(path)) from None
    frame.columns = names
    frame = frame.fillna("")  # fields missing at the end of a short row are empty
    for n, t in zip(names, types, strict=True):
        if t == "float":
            col = pd.to_numeric(frame[n].replace("", np.nan), errors="coerce")
            bad = col.isna() & (frame[n] != "")
            if bad.any():
                row = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"expected a number, found {frame[n].iloc[row]!r}",
                    source=str(path),
                    line=_data_line(path, row),
                    column=n,
                )
            frame[n] = col
        elif t == "float_seq":
            frame[n] = frame[n].map(lambda s: tuple(float(x) for x in s.split()) if s else ())
    frame.attrs["atomic_types"] = dict(zip(names, types, strict=True))
    return frame


def _first_long_row(path: Path, n_fields: int) -> int | None:
    """Line of the first row with more than ``n_fields`` tab-separated fields."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            if len(line.rstrip("\r\n").split("\t")) > n_fields:
                return lineno
    return None


def _data_line(path: Path, row: int) -> int:
    """File line of data row ``row`` (0-based; blank lines skipped, as the parser does)."""
    with open(path, encoding="utf-8-sig", newline="") as fh:
        fh.readline()
        seen = -1
        for lineno, line in enumerate(fh, start=2):
            if line.strip("\r\n"):
                seen += 1
                if seen == row:
                    return lineno
    return row + 2


def _line_of_byte(path: Path, offset_in_text: int) -> int:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        return 1
    except UnicodeDecodeError as e:
        return data[: e.start].count(b"\n") + 1


def _rename(frame: pd.DataFrame) -> pd.DataFrame:
    mapping = {c: FIELD_ALIASES[c] for c in frame.columns if c in FIELD_ALIASES}
    return frame.rename(columns=mapping)


def read_atomic(
    directory: str | Path, name: str | None = None, genre_sep: str | None = None
) -> Dataset:
    """Read ``<dir>/<name>.inter`` (+ optional ``.item``, ``.user``) into a `Dataset`.

    Genres (a ``token_seq`` field) are split on whitespace as RecBole does, or on
    ``genre_sep`` when given (so "Historical Fiction,Mystery" keeps its two-word genre)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(
            "not a directory (expected a folder holding NAME.inter)", source=str(directory)
        )
    found = sorted(p.name for p in directory.glob("*.inter"))
    if name is None and not (directory / f"{directory.name}.inter").exists() and len(found) == 1:
        name = found[0][: -len(".inter")]  # the one .inter file, whatever its name
    name = name or directory.name
    inter_path = directory / f"{name}.inter"
    if not inter_path.exists():
        raise DataError(
            f"no {name}.inter here (found: {found or 'no .inter files'})", source=str(directory)
        )
    inter = _rename(read_atomic_table(inter_path))
    if "timestamp" not in inter.columns:
        # RecBole allows logs without time: file order is then the only order.
        inter["timestamp"] = np.arange(len(inter), dtype=np.float64)
    items = users = None
    if (directory / f"{name}.item").exists():
        items = _normalise_items(_rename(read_atomic_table(directory / f"{name}.item")), genre_sep)
    if (directory / f"{name}.user").exists():
        users = read_atomic_table(directory / f"{name}.user")
    return Dataset.from_frames(
        name,
        inter,
        items,
        users,
        source=str(inter_path),
        first_line=2,
        meta={"format": "atomic", "path": str(directory)},
    )


def _normalise_items(items: pd.DataFrame, genre_sep: str | None = None) -> pd.DataFrame:
    items = items.copy()
    if "genres" in items.columns:
        items["genres"] = (
            items["genres"]
            .map(
                lambda s: (
                    tuple(
                        g.strip()
                        for g in str(s).split(genre_sep)
                        if g.strip() and g.strip().lower() != "unknown"
                    )
                    if isinstance(s, str)
                    else tuple(s)
                )
            )
            .astype(object)
        )
    if "year" in items.columns:
        # ML-100K has "unkonwn" and "V": anything that is not a plausible year becomes <NA>
        y = pd.to_numeric(items["year"], errors="coerce")
        y = y.where((y >= 1800) & (y <= 2100))
        items["year"] = y.astype("Int64")
    if "title" in items.columns:
        items["title"] = items["title"].astype(str)
    return items


def write_atomic(
    dataset: Dataset,
    directory: str | Path,
    name: str | None = None,
    interactions: pd.DataFrame | None = None,
) -> list[Path]:
    """Write ``dataset`` (or a subset of its ``interactions``) as RecBole atomic files.

    Ids are written raw, so RecBole's results map back to ours, and `read_atomic` reads them
    back unchanged: an id holding a tab or a line break (which the format cannot hold) is a
    `DataError`, raised before anything is written. Titles and attributes have tabs and line
    breaks replaced by spaces. Returns the paths written.
    """
    check_atomic_ids(dataset)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = name or dataset.name
    inter = dataset.interactions if interactions is None else interactions
    cols = {
        "user_id:token": dataset.user_ids[inter["user"].to_numpy()],
        "item_id:token": dataset.item_ids[inter["item"].to_numpy()],
        "rating:float": _floats(inter["rating"].to_numpy()),
        "timestamp:float": _floats(inter["timestamp"].to_numpy()),
    }
    paths = [directory / f"{name}.inter"]
    _write_tsv(paths[0], cols)
    items = dataset.items
    icols = {"item_id:token": items["item_id"], "movie_title:token_seq": items["title"].map(_clean)}
    if "year" in items.columns:
        icols["release_year:token"] = items["year"].astype(str).replace("<NA>", "")
    if "genres" in items.columns:
        icols["class:token_seq"] = items["genres"].map(
            lambda g: " ".join(_clean(x) for x in g) if g else ""
        )
    paths.append(directory / f"{name}.item")
    _write_tsv(paths[-1], icols)
    ucols = [c for c in dataset.users.columns if c != "user_id"]
    if ucols:
        u = {"user_id:token": dataset.users["user_id"]}
        for c in ucols:
            u[f"{c}:token"] = dataset.users[c].astype(str).map(_clean)
        paths.append(directory / f"{name}.user")
        _write_tsv(paths[-1], u)
    return paths


def check_atomic_ids(dataset: Dataset) -> None:
    """`DataError` naming the first user or item id that an atomic file cannot hold (one with
    a tab or a line break)."""
    for kind, ids in (("user", dataset.user_ids), ("item", dataset.item_ids)):
        text = pd.Series(ids, dtype=object).astype(str)
        bad = text.str.contains(r"[\t\n\r]", regex=True)
        if bad.any():
            raw = text[bad.to_numpy()].iloc[0]
            raise DataError(
                f"{kind} id {raw!r} cannot be written to a RecBole atomic file (it holds a tab "
                f"or a line break); {int(bad.sum())} such ids; rename them or use --to parquet",
                source=str(dataset.meta.get("source", dataset.name)),
                column=f"{kind}_id",
            )


def _floats(values: np.ndarray) -> list[str]:
    """Numbers as exact text (repr), NaN as an empty field."""
    return ["" if v != v else repr(float(v)) for v in values.tolist()]


def _write_tsv(path: Path, columns: dict) -> None:
    """Write ``columns`` (header -> values) as tab-separated lines, fields as they are (the
    reader uses no quoting, so neither does the writer)."""
    header = list(columns)
    values = [list(map(str, v)) for v in columns.values()]
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(header) + "\n")
        for row in zip(*values, strict=True):
            fh.write("\t".join(row) + "\n")


def _clean(s) -> str:
    return " ".join(str(s).replace("\t", " ").splitlines())
