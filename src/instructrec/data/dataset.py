"""`Dataset`: interactions, items and users as DataFrames, with the id mappings it owns.

Internal ids are contiguous integers: users ``0..n_users-1`` and items ``0..n_items-1``.
Raw ids (strings as they appear in the source) are kept in ``user_ids`` / ``item_ids`` so
every output can be translated back. Nothing else in the package re-numbers ids.

Columns (fixed names, so every room can rely on them):

interactions
    ``user`` (int32 internal id), ``item`` (int32 internal id), ``rating`` (float32, NaN when
    the source has none), ``timestamp`` (float64, seconds), ``order`` (int64, the row's
    position in the source file: the tie-breaker for equal timestamps), optional ``review``
    (str) and ``summary`` (str).
items
    indexed by internal item id; ``item_id`` (raw id, str), ``title`` (str), and attribute
    columns: ``genres`` (tuple of str), ``year`` (Int64, <NA> when unknown), ``category``,
    ``brand`` (str), ``price`` (float), ``description`` (str) where the source has them.
users
    indexed by internal user id; ``user_id`` (raw id, str) and attribute columns
    (``age``, ``gender``, ``occupation``, ...).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .errors import DataError

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp", "order")
LIKED_RATING = 4.0  # ratings >= this count as liked (EVALUATION.md)
DISLIKED_RATING = 2.0  # ratings <= this count as disliked
MAX_TIMESTAMP = 4102444800.0  # 2100-01-01 in seconds: later timestamps are refused as implausible


@dataclass
class Dataset:
    """A recommendation dataset with contiguous internal ids. Build it with `Dataset.from_frames`."""

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    meta: dict = field(default_factory=dict)  # where it came from, for manifests

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frames(
        cls,
        name: str,
        interactions: pd.DataFrame,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
        *,
        source: str = "<frames>",
        meta: dict | None = None,
        first_line: int = 1,
    ) -> Dataset:
        """Build from raw frames.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp`` (a number of seconds,
        or datetimes); ``rating``, ``review`` and ``summary`` are optional. ``items`` needs
        ``item_id`` (``title`` defaults to the id); ``users`` needs ``user_id``. Raw ids may be
        any hashable type; they are kept as str (integer ids are numbered without converting
        every row to str, which matters at 10M rows). Row order of ``interactions`` is the
        tie-breaker for equal timestamps. ``first_line`` is the line of the source file that
        holds the first row (2 for a file with a header), so errors name the right line.
        """
        for col in ("user_id", "item_id", "timestamp"):
            if col not in interactions.columns:
                raise DataError(
                    f"missing required column; found {list(interactions.columns)}",
                    source=source,
                    column=col,
                )
        if len(interactions) == 0:
            raise DataError(
                "no interactions (the file is empty or has only a header)", source=source
            )
        inter = interactions
        ts = _timestamps(inter["timestamp"], source, first_line)
        rating = None
        if "rating" in inter.columns:
            rating = _ratings(inter["rating"], source, first_line)

        # id maps: ids from the item/user table first (so items without interactions keep one)
        item_idx, item_uniques = _number_ids(inter["item_id"], items, "item", source, first_line)
        user_idx, user_uniques = _number_ids(inter["user_id"], users, "user", source, first_line)

        out = pd.DataFrame(
            {
                "user": user_idx.astype(np.int32),
                "item": item_idx.astype(np.int32),
                "rating": (
                    rating.to_numpy(np.float32)
                    if rating is not None
                    else np.full(len(inter), np.nan, np.float32)
                ),
                "timestamp": ts,
                "order": np.arange(len(inter), dtype=np.int64),
            }
        )
        for extra in ("review", "summary"):
            if extra in inter.columns:
                out[extra] = inter[extra].fillna("").astype(str).to_numpy()

        item_table = pd.DataFrame({"item_id": item_uniques})
        if items is not None:
            attrs = items.copy()
            attrs["item_id"] = attrs["item_id"].astype(str)
            item_table = item_table.merge(attrs, on="item_id", how="left")
        if "title" not in item_table.columns:
            item_table["title"] = item_table["item_id"]
        item_table["title"] = item_table["title"].fillna(item_table["item_id"]).astype(str)
        item_table.index.name = "item"

        user_table = pd.DataFrame({"user_id": user_uniques})
        if users is not None:
            attrs = users.copy()
            attrs["user_id"] = attrs["user_id"].astype(str)
            user_table = user_table.merge(attrs, on="user_id", how="left")
        user_table.index.name = "user"
        return cls(
            name=name,
            interactions=out,
            items=item_table,
            users=user_table,
            meta=dict(meta or {}, source=source),
        )

    # ------------------------------------------------------------------ accessors
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def user_ids(self) -> np.ndarray:
        """Raw user id for each internal id."""
        return self.users["user_id"].to_numpy()

    @property
    def item_ids(self) -> np.ndarray:
        """Raw item id for each internal id."""
        return self.items["item_id"].to_numpy()

    @property
    def titles(self) -> np.ndarray:
        return self.items["title"].to_numpy()

    def user_index(self, raw_ids) -> np.ndarray:
        """Internal ids for raw user ids; raises `DataError` naming the first unknown id."""
        return _lookup(self.users["user_id"], raw_ids, "user")

    def item_index(self, raw_ids) -> np.ndarray:
        """Internal ids for raw item ids; raises `DataError` naming the first unknown id."""
        return _lookup(self.items["item_id"], raw_ids, "item")

    def sorted_interactions(self) -> pd.DataFrame:
        """Interactions ordered by (user, timestamp, source row): ties keep file order."""
        return self.interactions.take(sort_order(self.interactions))

    def fingerprint(self) -> str:
        """A content hash of interactions and item titles (for run manifests)."""
        h = hashlib.sha256()
        cols = self.interactions[["user", "item", "rating", "timestamp"]]
        h.update(pd.util.hash_pandas_object(cols, index=False).to_numpy().tobytes())
        h.update(pd.util.hash_pandas_object(self.items["title"], index=False).to_numpy().tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """Counts and ranges a person checks first."""
        inter = self.interactions
        per_user = pd.Series(np.bincount(inter["user"].to_numpy(), minlength=self.n_users))
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(inter),
            "density": len(inter) / max(1, self.n_users * self.n_items),
            "interactions_per_user": {
                "min": int(per_user.min()),
                "median": float(per_user.median()),
                "max": int(per_user.max()),
            },
            "rating": (
                {
                    "min": float(inter.rating.min()),
                    "max": float(inter.rating.max()),
                    "mean": float(inter.rating.mean()),
                }
                if inter.rating.notna().any()
                else None
            ),
            "time_range": [float(inter.timestamp.min()), float(inter.timestamp.max())],
            "has_reviews": "review" in inter.columns,
            "item_attributes": [c for c in self.items.columns if c not in ("item_id",)],
            "user_attributes": [c for c in self.users.columns if c not in ("user_id",)],
        }


def sort_order(inter: pd.DataFrame) -> np.ndarray:
    """Positions that order ``inter`` by (user, timestamp, order): ties keep file order.

    Uses Arrow's multi-key sort, about twice as fast as ``np.lexsort`` at 10M rows.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table(
        {
            "user": np.asarray(inter["user"]),
            "timestamp": np.asarray(inter["timestamp"]),
            "order": np.asarray(inter["order"]),
        }
    )
    keys = [("user", "ascending"), ("timestamp", "ascending"), ("order", "ascending")]
    return pc.sort_indices(table, sort_keys=keys).to_numpy()


def _plain(value):
    """A numpy scalar as the Python value (so messages show 1e+26, not np.float64(1e+26))."""
    return value.item() if isinstance(value, np.generic) else value


def _ratings(col: pd.Series, source: str, first_line: int = 1) -> pd.Series:
    """Ratings as numbers: a missing cell is "no rating" (NaN); anything else must be a finite
    number >= 0, or a `DataError` names the first bad row."""
    rating = pd.to_numeric(col, errors="coerce")
    values = rating.to_numpy(np.float64, na_value=np.nan)
    given = col.notna().to_numpy()
    checks = (
        (np.isnan(values) & given, "rating is not a number"),
        (np.isinf(values), "rating must be a finite number"),
        (values < 0, "rating must be >= 0 (liked is >= 4, disliked <= 2)"),
    )
    for bad, what in checks:
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{what} ({_plain(col.iloc[row])!r}); {int(bad.sum())} such rows",
                source=source,
                line=row + first_line,
                column="rating",
            )
    return rating


def _timestamps(col: pd.Series, source: str, first_line: int = 1) -> np.ndarray:
    """Seconds as float64 from numbers, datetimes or date strings; `DataError` on the first bad row."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col.dtype):
        ts = (col - pd.Timestamp(0, tz=getattr(col.dtype, "tz", None))) / pd.Timedelta(seconds=1)
    else:
        ts = pd.to_numeric(col, errors="coerce")
        if ts.isna().all() and col.notna().any():  # maybe dates such as 2020-01-31T12:00:00
            dt = pd.to_datetime(col, errors="coerce", utc=True, format="ISO8601")
            if dt.notna().any():
                ts = (dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    bad = ts.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"timestamp is missing or not a number or date ({col.iloc[row]!r}); "
            f"{int(bad.sum())} such rows",
            source=source,
            line=row + first_line,
            column="timestamp",
        )
    out = ts.to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((out >= 0) & (out <= MAX_TIMESTAMP))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        hint = "; milliseconds? divide by 1000" if MAX_TIMESTAMP < out[row] < 1e15 else ""
        raise DataError(
            f"timestamp {_plain(col.iloc[row])!r} is not a time in 1970..2100 (expected "
            f"seconds since 1970-01-01, 0 to {MAX_TIMESTAMP:.0f}{hint}); "
            f"{int(bad.sum())} such rows",
            source=source,
            line=row + first_line,
            column="timestamp",
        )
    return out


def _check_ids(ids: pd.Series, what: str, source: str, first_line: int = 1) -> pd.Series:
    missing = ids.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{what} is missing ({int(missing.sum())} such rows); every row needs one",
            source=source,
            line=row + first_line,
            column=ids.name,
        )
    if pd.api.types.is_float_dtype(ids.dtype):
        vals = ids.to_numpy()
        if np.all(vals == np.round(vals)):  # 7.0 -> 7, as a CSV column with no gaps would read
            return pd.Series(vals.astype(np.int64), name=ids.name)
    return ids


def _number_ids(
    inter_ids: pd.Series, table: pd.DataFrame | None, kind: str, source: str, first_line: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Contiguous codes for the interaction ids and the raw id (str) of each code.

    Ids of ``table`` (the item or user table) come first. Integer ids are factorised as
    integers (fast) and only the unique ids are turned into str.
    """
    col = f"{kind}_id"
    inter_ids = _check_ids(inter_ids, col, source, first_line)
    keys = inter_ids
    n_table = 0
    if table is not None:
        if col not in table.columns:
            raise DataError(
                f"{kind} table lacks column; found {list(table.columns)}",
                source=source,
                column=col,
            )
        table_ids = _check_ids(table[col], col, source)
        as_str = table_ids.astype(str)
        dup = as_str.duplicated().to_numpy()
        if dup.any():
            row = int(np.flatnonzero(dup)[0])
            raise DataError(
                f"duplicate {kind} id {as_str.iloc[row]!r} in the {kind} table",
                source=source,
                line=row + 1,
                column=col,
            )
        n_table = len(table_ids)
        both_int = pd.api.types.is_integer_dtype(table_ids.dtype) and pd.api.types.is_integer_dtype(
            inter_ids.dtype
        )
        if both_int:
            keys = np.concatenate([table_ids.to_numpy(np.int64), inter_ids.to_numpy(np.int64)])
        else:
            keys = np.concatenate(
                [as_str.to_numpy(dtype=object), inter_ids.astype(str).to_numpy(dtype=object)]
            )
    elif pd.api.types.is_integer_dtype(inter_ids.dtype):
        keys = inter_ids.to_numpy(np.int64)
    elif not (pd.api.types.is_string_dtype(inter_ids.dtype) and inter_ids.dtype != object):
        keys = inter_ids.astype(str)
    codes, uniques = pd.factorize(keys, sort=False)
    raw = np.asarray(uniques).astype(str).astype(object)
    return codes[n_table:], raw


def _lookup(raw_col: pd.Series, raw_ids, kind: str) -> np.ndarray:
    index = pd.Index(raw_col.astype(str))
    keys = pd.Index(np.atleast_1d(np.asarray(raw_ids)).astype(str))
    pos = index.get_indexer(keys)
    if (pos < 0).any():
        missing = keys[pos < 0][0]
        raise DataError(
            f"unknown {kind} id {missing!r} ({int((pos < 0).sum())} unknown of {len(keys)})"
        )
    return pos.astype(np.int64)
