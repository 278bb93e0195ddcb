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
    def from_frames(cls, name: str, interactions: pd.DataFrame, items: pd.DataFrame | None = None,
                    users: pd.DataFrame | None = None, *, source: str = "<frames>",
                    meta: dict | None = None) -> Dataset:
        """Build from raw frames.

        ``interactions`` needs ``user_id``, ``item_id`` and ``timestamp``; ``rating``, ``review``
        and ``summary`` are optional. ``items`` needs ``item_id`` (``title`` defaults to the id);
        ``users`` needs ``user_id``. Raw ids may be any hashable type; they are kept as str.
        Row order of ``interactions`` is the tie-breaker for equal timestamps.
        """
        for col in ("user_id", "item_id", "timestamp"):
            if col not in interactions.columns:
                raise DataError(f"missing required column; found {list(interactions.columns)}",
                                source=source, column=col)
        if len(interactions) == 0:
            raise DataError("no interactions (the file is empty or has only a header)", source=source)
        inter = interactions
        uraw = inter["user_id"].astype(str).to_numpy()
        iraw = inter["item_id"].astype(str).to_numpy()
        ts = pd.to_numeric(inter["timestamp"], errors="coerce")
        bad = ts.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"timestamp is missing or not a number ({inter['timestamp'].iloc[row]!r}); "
                            f"{int(bad.sum())} such rows", source=source, line=row + 1, column="timestamp")
        rating = None
        if "rating" in inter.columns:
            rating = pd.to_numeric(inter["rating"], errors="coerce")
            badr = rating.isna().to_numpy() & inter["rating"].notna().to_numpy()
            if badr.any():
                row = int(np.flatnonzero(badr)[0])
                raise DataError(f"rating is not a number ({inter['rating'].iloc[row]!r})",
                                source=source, line=row + 1, column="rating")

        # id maps: items from the item table first (so items without interactions keep an id)
        item_keys = iraw
        if items is not None:
            if "item_id" not in items.columns:
                raise DataError(f"item table lacks column; found {list(items.columns)}",
                                source=source, column="item_id")
            it_raw = items["item_id"].astype(str)
            dup = it_raw.duplicated()
            if dup.any():
                raise DataError(f"duplicate item id {it_raw[dup].iloc[0]!r} in the item table",
                                source=source, line=int(np.flatnonzero(dup.to_numpy())[0]) + 1,
                                column="item_id")
            item_keys = np.concatenate([it_raw.to_numpy(), iraw])
        item_codes, item_uniques = pd.factorize(pd.Series(item_keys, dtype=object), sort=False)
        item_idx = item_codes[len(item_keys) - len(iraw):]

        user_keys = uraw
        if users is not None:
            if "user_id" not in users.columns:
                raise DataError(f"user table lacks column; found {list(users.columns)}",
                                source=source, column="user_id")
            us_raw = users["user_id"].astype(str)
            dup = us_raw.duplicated()
            if dup.any():
                raise DataError(f"duplicate user id {us_raw[dup].iloc[0]!r} in the user table",
                                source=source, line=int(np.flatnonzero(dup.to_numpy())[0]) + 1,
                                column="user_id")
            user_keys = np.concatenate([us_raw.to_numpy(), uraw])
        user_codes, user_uniques = pd.factorize(pd.Series(user_keys, dtype=object), sort=False)
        user_idx = user_codes[len(user_keys) - len(uraw):]

        out = pd.DataFrame({
            "user": user_idx.astype(np.int32),
            "item": item_idx.astype(np.int32),
            "rating": (rating.to_numpy(np.float32) if rating is not None
                       else np.full(len(inter), np.nan, np.float32)),
            "timestamp": ts.to_numpy(np.float64),
            "order": np.arange(len(inter), dtype=np.int64),
        })
        for extra in ("review", "summary"):
            if extra in inter.columns:
                out[extra] = inter[extra].fillna("").astype(str).to_numpy()

        item_table = pd.DataFrame({"item_id": np.asarray(item_uniques, dtype=object).astype(str)})
        if items is not None:
            attrs = items.copy()
            attrs["item_id"] = attrs["item_id"].astype(str)
            item_table = item_table.merge(attrs, on="item_id", how="left")
        if "title" not in item_table.columns:
            item_table["title"] = item_table["item_id"]
        item_table["title"] = item_table["title"].fillna(item_table["item_id"]).astype(str)
        item_table.index.name = "item"

        user_table = pd.DataFrame({"user_id": np.asarray(user_uniques, dtype=object).astype(str)})
        if users is not None:
            attrs = users.copy()
            attrs["user_id"] = attrs["user_id"].astype(str)
            user_table = user_table.merge(attrs, on="user_id", how="left")
        user_table.index.name = "user"
        return cls(name=name, interactions=out, items=item_table, users=user_table,
                   meta=dict(meta or {}, source=source))

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
        return self.interactions.sort_values(["user", "timestamp", "order"], kind="stable")

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
        per_user = inter.groupby("user").size()
        return {
            "name": self.name,
            "users": self.n_users,
            "items": self.n_items,
            "interactions": len(inter),
            "density": len(inter) / max(1, self.n_users * self.n_items),
            "interactions_per_user": {"min": int(per_user.min()), "median": float(per_user.median()),
                                      "max": int(per_user.max())},
            "rating": ({"min": float(inter.rating.min()), "max": float(inter.rating.max()),
                        "mean": float(inter.rating.mean())} if inter.rating.notna().any() else None),
            "time_range": [float(inter.timestamp.min()), float(inter.timestamp.max())],
            "has_reviews": "review" in inter.columns,
            "item_attributes": [c for c in self.items.columns if c not in ("item_id",)],
            "user_attributes": [c for c in self.users.columns if c not in ("user_id",)],
        }


def _lookup(raw_col: pd.Series, raw_ids, kind: str) -> np.ndarray:
    index = pd.Index(raw_col.astype(str))
    keys = pd.Index(np.atleast_1d(np.asarray(raw_ids)).astype(str))
    pos = index.get_indexer(keys)
    if (pos < 0).any():
        missing = keys[pos < 0][0]
        raise DataError(f"unknown {kind} id {missing!r} ({int((pos < 0).sum())} unknown of {len(keys)})")
    return pos.astype(np.int64)
