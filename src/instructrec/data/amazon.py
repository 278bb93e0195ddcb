"""Amazon review data (McAuley et al.; the 2014 and 2018 releases), as used by InstructRec
(Zhang et al. 2023, Amazon Games / CDs / Movies): review JSON lines plus item metadata.

Reviews: one JSON object per line with ``reviewerID``, ``asin``, ``overall``,
``unixReviewTime`` (or ``reviewTime``, "09 13, 2009"), ``reviewText`` and ``summary``.
Metadata: ``asin``, ``title``, ``categories`` (2014: a list of category paths) or
``category`` (2018: one path), ``brand``, ``price`` (a number or a string such as "$12.99").
The 2014 files are Python literals rather than strict JSON; both forms are read. Plain or
``.gz``. Review text goes to ``interactions["review"]``, the summary to ``["summary"]``; leaf
categories become ``items["genres"]``, the first full path ``items["category"]``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import Dataset
from .errors import DataError

REVIEW_FIELDS = {
    "reviewerID": "user_id",
    "asin": "item_id",
    "overall": "rating",
    "reviewText": "review",
    "summary": "summary",
}
_PRICE = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def iter_json_lines(path: str | Path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; `DataError` names the bad line."""
    from .csvfile import _check_file, _first_line, _open_binary

    path = Path(path)
    _check_file(path)
    with _open_binary(path) as fh:
        try:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"not valid UTF-8 (byte {raw[e.start : e.start + 1]!r})",
                        source=str(path),
                        line=lineno,
                    ) from None
                if not text.strip():
                    continue
                yield lineno, _parse_object(text.strip(), path, lineno)
        except (EOFError, OSError) as e:  # a truncated .gz file
            raise DataError(
                f"compressed file is damaged or truncated ({_first_line(e)})",
                source=str(path),
            ) from None


def _parse_object(text: str, path: Path, lineno: int) -> dict:
    try:
        obj = json.loads(text)
    except RecursionError:
        raise DataError(
            "JSON nested too deeply; expected one flat review object per line",
            source=str(path),
            line=lineno,
        ) from None
    except json.JSONDecodeError as e:
        obj = None
        if text.lstrip().startswith("{'"):  # 2014 release: Python literals
            import ast

            try:
                obj = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                obj = None
        if obj is None:
            raise DataError(
                f"truncated or malformed JSON at column {e.colno} ({e.msg}); "
                f"expected one complete object per line",
                source=str(path),
                line=lineno,
            ) from None
    if not isinstance(obj, dict):
        raise DataError(
            f"expected a JSON object per line, found {type(obj).__name__}",
            source=str(path),
            line=lineno,
        )
    return obj


def _timestamp(obj: dict, path: Path, lineno: int) -> float:
    if "unixReviewTime" in obj:
        from .dataset import MAX_TIMESTAMP

        value = obj["unixReviewTime"]
        try:
            if isinstance(value, bool):
                raise TypeError
            ts = float(value)
        except (TypeError, ValueError, OverflowError):
            raise DataError(
                f"unixReviewTime is not a number ({value!r})",
                source=str(path),
                line=lineno,
                column="unixReviewTime",
            ) from None
        if not 0 <= ts <= MAX_TIMESTAMP:  # NaN fails too
            raise DataError(
                f"unixReviewTime {value!r} is outside 1970..2100 (expected seconds since "
                f"1970-01-01)",
                source=str(path),
                line=lineno,
                column="unixReviewTime",
            )
        return ts
    if "reviewTime" in obj:
        t = pd.to_datetime(obj["reviewTime"], format="%m %d, %Y", errors="coerce")
        if not pd.isna(t):
            return float(t.timestamp())
    raise DataError(
        "no usable time: expected unixReviewTime (seconds) or reviewTime ('MM DD, YYYY')",
        source=str(path),
        line=lineno,
        column="unixReviewTime",
    )


def read_reviews(path: str | Path) -> pd.DataFrame:
    """Review lines -> frame with ``user_id, item_id, rating, timestamp, review, summary``."""
    path = Path(path)
    rows, lines = [], []
    for lineno, obj in iter_json_lines(path):
        for field in ("reviewerID", "asin"):
            if obj.get(field) in (None, ""):
                raise DataError(
                    f"review lacks {field}", source=str(path), line=lineno, column=field
                )
            if not isinstance(obj[field], str | int) or isinstance(obj[field], bool):
                raise DataError(
                    f"{field} must be a string, found {type(obj[field]).__name__}",
                    source=str(path),
                    line=lineno,
                    column=field,
                )
        rating = obj.get("overall")
        if rating is not None:
            try:
                if isinstance(rating, bool):
                    raise TypeError
                rating = float(rating)
            except (TypeError, ValueError, OverflowError):
                raise DataError(
                    f"overall is not a number ({rating!r})",
                    source=str(path),
                    line=lineno,
                    column="overall",
                ) from None
            if not (math.isfinite(rating) and rating >= 0):
                raise DataError(
                    f"overall must be a finite number >= 0, got {obj['overall']!r}",
                    source=str(path),
                    line=lineno,
                    column="overall",
                )
        rows.append(
            (
                str(obj["reviewerID"]),
                str(obj["asin"]),
                np.nan if rating is None else float(rating),
                _timestamp(obj, path, lineno),
                obj.get("reviewText") or "",
                obj.get("summary") or "",
            )
        )
        lines.append(lineno)
    if not rows:
        raise DataError("no reviews (only blank lines)", source=str(path))
    frame = pd.DataFrame(
        rows, columns=["user_id", "item_id", "rating", "timestamp", "review", "summary"]
    )
    frame.attrs["lines"] = lines
    return frame


def parse_price(value) -> float:
    """12.99, "12.99", "$12.99", "$1,299.00", "$10.99 - $15.99" (first) -> float; else NaN."""
    if value is None or isinstance(value, bool):
        return float("nan")
    if isinstance(value, int | float):
        return float(value)
    m = _PRICE.search(str(value))
    return float(m.group(0).replace(",", "")) if m else float("nan")


def _categories(obj: dict) -> tuple[tuple[str, ...], str]:
    """(leaf categories, first path joined with ' > ') from 2014 ``categories`` / 2018
    ``category``."""
    cats = obj.get("categories", obj.get("category"))
    if not cats:
        return (), ""
    paths = cats if isinstance(cats[0], list | tuple) else [cats]
    paths = [[str(c).strip() for c in p if str(c).strip()] for p in paths]
    paths = [p for p in paths if p]
    leaves = tuple(dict.fromkeys(p[-1] for p in paths))
    return leaves, (" > ".join(paths[0]) if paths else "")


def read_metadata(path: str | Path, keep: set[str] | None = None) -> pd.DataFrame:
    """Metadata lines -> ``item_id, title, genres, category, brand, price``.

    ``keep`` limits the table to those asins (the reviewed ones). Repeated asins (the 2018
    release has some) keep their first line.
    """
    path = Path(path)
    rows, seen = [], set()
    for lineno, obj in iter_json_lines(path):
        asin = obj.get("asin")
        if asin in (None, ""):
            raise DataError(
                "metadata line lacks asin", source=str(path), line=lineno, column="asin"
            )
        asin = str(asin)
        if asin in seen or (keep is not None and asin not in keep):
            continue
        seen.add(asin)
        leaves, path_text = _categories(obj)
        title = obj.get("title")
        rows.append(
            (
                asin,
                str(title) if title else None,
                leaves,
                path_text,
                str(obj.get("brand") or ""),
                parse_price(obj.get("price")),
            )
        )
    frame = pd.DataFrame(rows, columns=["item_id", "title", "genres", "category", "brand", "price"])
    frame["genres"] = frame["genres"].astype(object)
    return frame


def read_amazon(
    reviews: str | Path, meta: str | Path | None = None, *, name: str | None = None
) -> Dataset:
    """Amazon reviews (+ metadata) -> `Dataset`. Items without metadata keep their asin as
    title; metadata rows of items nobody reviewed are left out."""
    reviews = Path(reviews)
    frame = read_reviews(reviews)
    items = None
    if meta is not None:
        items = read_metadata(meta, keep=set(frame["item_id"].unique()))
        if len(items) == 0:
            items = None
    name = name or re.sub(r"(\.jsonl?|\.json)?(\.gz)?$", "", reviews.name)
    return Dataset.from_frames(
        name,
        frame,
        items,
        source=str(reviews),
        meta={
            "format": "amazon",
            "path": str(reviews),
            "meta": None if meta is None else str(meta),
        },
    )
