"""EASE: Embarrassingly Shallow Autoencoders (Steck, WWW 2019).

An item-item weight matrix ``B`` learned in closed form from the binary user-item matrix
``X`` of the training log, with an L2 penalty ``lambda`` and a zero diagonal (an item may
not predict itself):

    P = (X^T X + lambda I)^-1
    B = I - P diagMat(1 / diag(P)),   i.e. B_ij = -P_ij / P_jj,  B_jj = 0

A user's scores are ``x_u B`` for their binary history row ``x_u``; scoring needs only a
history, so users unknown to training are served from an explicit one (``histories=``).
The inverse is a Cholesky factorisation done in place on the Gram matrix (LAPACK
``potrf`` + ``potri``): one dense ``n_items^2`` matrix in memory (1.1 GB in float32 for
16,859 items). `select_ease_lambda` picks ``lambda`` by NDCG@10 on the validation targets
(full ranking over unseen items, ties count above, as the project's `ranks_full`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import scipy.linalg.lapack as lapack
import scipy.sparse as sp

from ..data.errors import DataError
from .base import Retriever

DTYPES = ("float32", "float64")


@dataclass
class EASEConfig:
    """EASE settings."""

    l2: float = 250.0  # lambda: L2 penalty on B (Steck 2019; 250 is RecBole's default)
    dtype: str = "float32"  # "float32" | "float64": precision of the Gram inverse and of B
    batch: int = 2048  # users scored per block (memory: batch x n_items floats)
    seed: int = 0  # unused (closed form, deterministic); kept for a uniform interface


def binary_matrix(users: np.ndarray, items: np.ndarray, n_rows: int, n_items: int) -> sp.csr_matrix:
    """(n_rows, n_items) CSR with 1 where a (row, item) pair occurs (repeats count once)."""
    m = sp.csr_matrix(
        (np.ones(len(users), np.float32), (np.asarray(users), np.asarray(items))),
        shape=(n_rows, n_items),
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def gram(train: pd.DataFrame, n_users: int, n_items: int, dtype: str = "float32") -> np.ndarray:
    """Dense X^T X of the binary training matrix (co-occurrence counts)."""
    x = binary_matrix(train["user"].to_numpy(), train["item"].to_numpy(), n_users, n_items)
    return (x.T @ x).toarray().astype(dtype, copy=False)


def ease_weights(g: np.ndarray, l2: float) -> np.ndarray:
    """B from the Gram matrix ``g`` (overwritten: pass a copy to keep it)."""
    if l2 <= 0:
        raise ValueError(f"l2 must be > 0 (the Gram matrix is singular otherwise), got {l2}")
    n = g.shape[0]
    g[np.diag_indices(n)] += l2
    # g is symmetric, so its C-ordered buffer is a Fortran-ordered g: LAPACK works in place
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (g,))
    c, info = potrf(g.T, lower=False, overwrite_a=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError(f"Cholesky failed (info={info}): raise l2 or use float64")
    p, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(f"inverse failed (info={info})")
    p = p.T  # back to C order; the filled triangle is now the lower one
    _symmetrize_lower(p)
    d = np.diag(p).copy()
    p /= -d[None, :]  # B_ij = -P_ij / P_jj
    p[np.diag_indices(n)] = 0.0
    return p


def _symmetrize_lower(a: np.ndarray, block: int = 2048) -> None:
    """Copy the lower triangle of ``a`` onto its upper one, in row blocks (little extra memory)."""
    n = a.shape[0]
    for s in range(0, n, block):
        e = min(s + block, n)
        # rows s:e of the upper part = columns s:e of the lower part (transposed)
        a[s:e, e:] = a[e:, s:e].T
        sub = a[s:e, s:e]
        a[s:e, s:e] = np.tril(sub) + np.tril(sub, -1).T


def physical_memory() -> int:
    """Bytes of RAM on this machine (0 where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return 0


class EASE(Retriever):
    """Closed-form item-item autoencoder over the training interactions."""

    name = "ease"
    array_attrs = ("B",)  # the item-item weights: the whole fitted state (saved as safetensors)

    def __init__(self, config: EASEConfig | None = None, **kwargs) -> None:
        self.config = config or EASEConfig(**kwargs)
        if self.config.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.config.dtype!r}")
        self.B: np.ndarray | None = None  # (n_items, n_items): row i -> i's weights on items
        self.fit_seconds: float = 0.0

    def check_fits(self, n_users: int, n_items: int) -> None:
        """A `DataError` now, before anything trains, when the dense item x item matrices (the
        fitted B and a stacked twin's, ``n_items``^2 each) exceed 80% of this machine's RAM."""
        need = 2 * n_items**2 * np.dtype(self.config.dtype).itemsize
        ram = physical_memory()
        if ram and need > 0.8 * ram:
            raise DataError(
                f"ease on {n_items:,} items needs ~{need / 2**30:.1f} GiB of dense item x item "
                f"matrices, more than 80% of this machine's {ram / 2**30:.1f} GiB: remove it "
                "from the priors (or the retriever), or use it on a smaller catalogue"
            )

    def fit(
        self, train: pd.DataFrame, n_users: int, n_items: int, *, gram_matrix=None, **_: object
    ) -> Self:
        """Learn B. ``gram_matrix`` (X^T X of ``train``, copied) skips recomputing it."""
        t0 = time.perf_counter()
        self.n_items = int(n_items)
        g = (
            np.array(gram_matrix, dtype=self.config.dtype, copy=True)
            if gram_matrix is not None
            else gram(train, n_users, n_items, self.config.dtype)
        )
        self.B = ease_weights(g, float(self.config.l2))
        self._remember_train(train, n_users)
        self.fit_seconds = time.perf_counter() - t0
        return self

    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        if self.B is None:
            raise RuntimeError("EASE is not fitted: call fit(train, n_users, n_items) first")
        users = np.atleast_1d(np.asarray(users))
        hist = self.histories_for(users, histories)
        out = np.empty((len(hist), self.n_items), np.float32)
        for s in range(0, len(hist), self.config.batch):
            chunk = hist[s : s + self.config.batch]
            lens = np.array([len(h) for h in chunk], np.int64)
            cols = (
                np.concatenate([np.asarray(h, np.int64) for h in chunk])
                if lens.sum()
                else np.empty(0, np.int64)
            )
            x = binary_matrix(
                np.repeat(np.arange(len(chunk)), lens), cols, len(chunk), self.n_items
            )
            out[s : s + len(chunk)] = x.astype(self.B.dtype) @ self.B
        return out


def _ranks(r: EASE, users, hists, targets) -> np.ndarray:
    """0-based full-ranking rank of each target among items outside its history (ties above)."""
    s = r.score_all(users, hists)
    rows = np.arange(len(s))
    t = s[rows, targets].copy()
    lens = np.array([len(h) for h in hists], np.int64)
    if lens.sum():
        s[np.repeat(rows, lens), np.concatenate([np.asarray(h, np.int64) for h in hists])] = -np.inf
    s[rows, targets] = -np.inf
    return (s >= t[:, None]).sum(axis=1)


def select_ease_lambda(
    split,
    n_users: int,
    n_items: int,
    grid=(50, 100, 200, 400, 800, 1600),
    *,
    k: int = 10,
    dtype: str = "float32",
    batch: int = 2048,
) -> tuple[float, pd.DataFrame]:
    """(best lambda, table) by NDCG@k on ``split.valid`` (full ranking over unseen items).

    The Gram matrix is computed once; each lambda is one in-place inverse of a copy. The
    table has one row per lambda: ``l2``, ``ndcg@k``, ``recall@k``, ``fit_s``. Ties in NDCG
    go to the first lambda of ``grid``.
    """
    g = gram(split.train, n_users, n_items, dtype)
    seqs = split.sequences("valid")
    users = split.valid["user"].to_numpy(np.int64)
    targets = split.valid["item"].to_numpy(np.int64)
    empty = np.empty(0, np.int64)
    hists = [seqs.get(int(u), empty) for u in users]
    rows = []
    for lam in grid:
        r = EASE(EASEConfig(l2=float(lam), dtype=dtype, batch=batch))
        r.fit(split.train, n_users, n_items, gram_matrix=g)
        ranks = np.concatenate(
            [
                _ranks(r, users[s : s + batch], hists[s : s + batch], targets[s : s + batch])
                for s in range(0, len(users), batch)
            ]
        ).astype(np.float64)
        ndcg = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
        rows.append(
            {
                "l2": float(lam),
                f"ndcg@{k}": float(ndcg.mean()),
                f"recall@{k}": float((ranks < k).mean()),
                "fit_s": round(r.fit_seconds, 2),
            }
        )
        del r
    table = pd.DataFrame(rows)
    best = float(table["l2"].iloc[int(np.argmax(table[f"ndcg@{k}"].to_numpy()))])
    return best, table
