"""Vectorised string assembly: many instructions from a few pieces, without a per-row loop.

An instruction is a sequence of segments, each a string from one table: template literals,
item titles (once per separator: "title; "), per-row texts (intentions, preferences). We build
the (row -> segment ids) layout with numpy, let Arrow `take` the segments in row-major order
(one memcpy per segment, in C++), and reinterpret the result as one string per row by keeping
only the offsets at row boundaries. pandas wraps the Arrow array without copying. Rows are
processed in chunks to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

ROW_CHUNK = 65536  # rows per assembly chunk


class StringTable:
    """Strings in Arrow arrays; ``add`` returns the ids of the added strings."""

    def __init__(self) -> None:
        self._parts: list[pa.Array] = []
        self._n = 0
        self._frozen: pa.Array | None = None
        self._lit: dict[str, int] = {}

    def add(self, strings) -> np.ndarray:
        """Add a sequence of str (list, object array or Arrow array); returns int64 ids."""
        if isinstance(strings, pa.ChunkedArray):
            strings = strings.combine_chunks()
        arr = (
            strings
            if isinstance(strings, pa.Array)
            else pa.array(np.asarray(strings, dtype=object), type=pa.large_string())
        )
        if arr.type != pa.large_string():
            arr = arr.cast(pa.large_string())
        if arr.null_count:
            arr = arr.fill_null("")
        self._parts.append(arr)
        ids = np.arange(self._n, self._n + len(arr), dtype=np.int64)
        self._n += len(arr)
        self._frozen = None
        return ids

    def literal(self, s: str) -> int:
        """Id of a single string (added once)."""
        if s not in self._lit:
            self._lit[s] = int(self.add([s])[0])
        return self._lit[s]

    def array(self) -> pa.Array:
        """Every string, as one large_string array indexed by id."""
        if self._frozen is None:
            self._frozen = (
                pa.concat_arrays(self._parts) if self._parts else pa.array([], pa.large_string())
            )
            self._parts = [self._frozen]
        return self._frozen


@dataclass
class Lit:
    """The same string in every row."""

    id: int


@dataclass
class PerRow:
    """One string per row (ids into the table)."""

    ids: np.ndarray


@dataclass
class Ragged:
    """A variable-length run of segments per row: ``ids`` concatenated, ``counts`` per row."""

    ids: np.ndarray
    counts: np.ndarray


def join_list(
    items_flat: np.ndarray, counts: np.ndarray, with_sep_ids: np.ndarray, plain_ids: np.ndarray
) -> Ragged:
    """A separated list per row: every element as "title<sep>" except the last, "title"."""
    items_flat = np.asarray(items_flat, np.int64)
    counts = np.asarray(counts, np.int64)
    ids = with_sep_ids[items_flat]
    last = np.cumsum(counts) - 1
    last = last[counts > 0]
    ids[last] = plain_ids[items_flat[last]]
    return Ragged(ids, counts)


def _slice(piece, lo: int, hi: int, ptr_cache: dict):
    if isinstance(piece, Lit):
        return piece
    if isinstance(piece, PerRow):
        return PerRow(piece.ids[lo:hi])
    key = id(piece)
    if key not in ptr_cache:
        ptr_cache[key] = np.r_[0, np.cumsum(piece.counts)]
    ptr = ptr_cache[key]
    return Ragged(piece.ids[ptr[lo] : ptr[hi]], piece.counts[lo:hi])


def assemble(table: StringTable, pieces: list, n: int) -> pa.Array:
    """Concatenate ``pieces`` row by row into a large_string Arrow array of length ``n``."""
    strings = table.array()
    chunks = []
    cache: dict = {}
    for lo in range(0, n, ROW_CHUNK):
        hi = min(n, lo + ROW_CHUNK)
        chunks.append(_assemble_chunk(strings, [_slice(p, lo, hi, cache) for p in pieces], hi - lo))
    if not chunks:
        return pa.array([], pa.large_string())
    return pa.concat_arrays(chunks) if len(chunks) > 1 else chunks[0]


def _assemble_chunk(strings: pa.Array, pieces: list, n: int) -> pa.Array:
    counts = [
        np.ones(n, np.int64) if not isinstance(p, Ragged) else p.counts.astype(np.int64)
        for p in pieces
    ]
    total = np.sum(counts, axis=0) if counts else np.zeros(n, np.int64)
    row_start = np.r_[0, np.cumsum(total)[:-1]].astype(np.int64)
    segs = np.empty(int(total.sum()), np.int64)
    run = row_start.copy()
    for p, c in zip(pieces, counts, strict=True):
        if isinstance(p, Lit):
            segs[run] = p.id
        elif isinstance(p, PerRow):
            segs[run] = p.ids
        else:
            m = len(p.ids)
            if m:
                within = np.arange(m) - np.repeat(np.r_[0, np.cumsum(c)[:-1]], c)
                segs[np.repeat(run, c) + within] = p.ids
        run += c
    # Taking the segments in row-major order lays every row's bytes out contiguously: the
    # rows' offsets are the segments' offsets at each row's first segment (no second copy).
    taken = strings.take(pa.array(segs))
    _, obuf, dbuf = taken.buffers()
    offs = np.frombuffer(obuf, np.int64, len(segs) + 1, taken.offset * 8)
    row_off = offs[np.r_[row_start, len(segs)]]
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer(np.ascontiguousarray(row_off)), dbuf)
