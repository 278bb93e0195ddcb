"""Reading one CSV/TSV (or Parquet) file into a DataFrame, with errors that name the line.

Text is UTF-8 with or without a byte-order mark. The header is parsed by the same CSV parser
as the rows, so a quoted name such as ``"item,id"`` is one column; a name given twice, a row
with more fields than the header, a NUL byte (a binary file) or invalid UTF-8 is one
`DataError` naming the file and the line (and the column). Only empty cells are missing values:
"NaN", "NA" or "null" stay text, so a literal NaN rating is refused rather than dropped.
`instructrec.data.readers` maps the columns and builds the `Dataset`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import DataError


def utf8_error_line(path: Path) -> tuple[int, bytes]:
    """(line, offending byte) of the first invalid UTF-8 byte in ``path`` (plain or .gz)."""
    data = _open_binary(path).read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return data[: e.start].count(b"\n") + 1, data[e.start : e.start + 1]
    return 1, b""


def _open_binary(path: Path):
    if path.name.endswith(".gz"):
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", source=str(path))
    if path.is_dir():
        raise DataError("is a directory, expected a file", source=str(path))
    if path.stat().st_size == 0:
        raise DataError("empty file (0 bytes): expected a header line and rows", source=str(path))


def read_frame(
    path: str | Path, sep: str | None = None, str_columns=(), columns=None
) -> pd.DataFrame:
    """Read a CSV/TSV or Parquet file into a DataFrame with clear errors.

    Text is UTF-8 with or without a byte-order mark. The header is parsed by the same CSV
    parser as the rows (`read_frame_header`: quoted names, duplicate names refused); a row with
    more fields than the header is refused with its line. Only empty cells are missing values
    ("NaN", "NA" or "null" are kept as text, so a literal NaN rating is refused, not dropped).
    ``str_columns`` are read as text (CSV only) so ids such as ``007`` keep their zeros;
    ``columns`` limits what is read from Parquet.
    """
    path = Path(path)
    _check_file(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path, columns=None if columns is None else list(columns))
        except Exception as e:  # pyarrow raises several types for a damaged file
            raise DataError(
                f"not a readable Parquet file ({type(e).__name__}: {_first_line(e)})",
                source=str(path),
            ) from None
    sep = _sep(path, sep)
    names = read_frame_header(path, sep)
    _refuse_nul(path)
    dtype = {c: str for c in str_columns if c in names}
    with _csv_errors(path, sep):
        try:
            # all columns are parsed (usecols would silently accept rows with extra fields);
            # the parsed header replaces pandas' names (which strip nothing and rename duplicates);
            # index_col=False: extra fields are never taken as an index (pandas warns; we refuse)
            with warnings.catch_warnings():
                warnings.simplefilter("error", pd.errors.ParserWarning)
                frame = pd.read_csv(
                    path,
                    sep=sep,
                    header=0,
                    names=names,
                    index_col=False,
                    encoding="utf-8-sig",
                    dtype=dtype,
                    keep_default_na=False,
                    na_values=[""],
                    engine="c",
                )
        except pd.errors.ParserWarning:
            raise DataError(
                f"more fields than the {len(names)} of the header",
                source=str(path),
                line=_first_long_row(path, sep, len(names)),
            ) from None
    return frame


def _first_long_row(path: Path, sep: str, n_fields: int) -> int | None:
    """Line of the first row with more than ``n_fields`` fields (for the error message)."""
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter=sep)
        for row in reader:
            if len(row) > n_fields:
                return reader.line_num
    return None


def _refuse_nul(path: Path, chunk: int = 1 << 20) -> None:
    """A NUL byte means a binary file (the CSV parser would silently cut the field there)."""
    line = 1
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            at = block.find(b"\x00")
            if at >= 0:
                raise DataError(
                    "NUL byte: a binary file, not CSV/TSV text",
                    source=str(path),
                    line=line + block[:at].count(b"\n"),
                )
            line += block.count(b"\n")


def _sep(path: Path, sep: str | None) -> str:
    return sep or ("\t" if path.suffix.lower() in (".tsv", ".txt") else ",")


def _parser_error(e: Exception, path: Path, sep: str) -> DataError:
    import re

    detail = _first_line(e).replace("Error tokenizing data. C error: ", "")
    m = re.search(r"line (\d+)", detail)
    line = int(m.group(1)) if m else None
    m = re.search(r"string starting at row (\d+)", detail)  # pandas counts rows from 0
    if m:
        return DataError(
            "a quoted field is never closed (a stray '\"'?)",
            source=str(path),
            line=int(m.group(1)) + 1,
        )
    return DataError(
        f"malformed row ({detail}); expected the same number of "
        f"{'tab' if sep == chr(9) else repr(sep)}-separated fields as the header",
        source=str(path),
        line=line,
    )


@contextmanager
def _csv_errors(path: Path, sep: str) -> Iterator[None]:
    """The CSV parser's failures as one-line `DataError`s naming the file (and line)."""
    try:
        yield
    except UnicodeDecodeError:
        line, byte = utf8_error_line(path)
        raise DataError(
            f"not valid UTF-8 (byte {byte!r}); save the file as UTF-8", source=str(path), line=line
        ) from None
    except pd.errors.EmptyDataError:
        raise DataError(
            "no header line: expected column names on line 1", source=str(path), line=1
        ) from None
    except pd.errors.ParserError as e:
        raise _parser_error(e, path, sep) from None


def read_frame_header(path: Path, sep: str | None) -> list[str]:
    """Column names of a CSV/TSV file, parsed by the CSV parser that reads the rows (quoted
    names such as ``"item,id"`` are one name), surrounding spaces stripped. A missing header,
    invalid UTF-8 or a name given twice is a `DataError` naming line 1 (and the column)."""
    path = Path(path)
    sep = _sep(path, sep)
    with _csv_errors(path, sep):
        head = pd.read_csv(
            path,
            sep=sep,
            header=None,
            nrows=1,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            engine="c",
        )
    names = [str(c).strip() for c in head.iloc[0].tolist()] if len(head) else []
    if not any(names):
        raise DataError("no header line: expected column names on line 1", source=str(path), line=1)
    names = [n or f"Unnamed: {i}" for i, n in enumerate(names)]  # pandas' name for a blank
    seen = set()
    for n in names:
        if n in seen:
            raise DataError(
                "duplicate column name in the header: each column may appear once",
                source=str(path),
                line=1,
                column=n,
            )
        seen.add(n)
    return names


def _first_line(e: BaseException) -> str:
    """An exception's message cut to its first line (a `DataError` prints as one line)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
