"""Rating-trained rivals for the `pointwise` protocol (EVALUATION.md; issue 12, point 3).

"Will the user like this item?" is a rating question, so the Yes/No head must beat the
classical rating predictors fitted on the same training ratings:

- `BiasModel`: r_ui = mu + b_u + b_i, the baseline predictor of Koren (2008, "Factorization
  meets the neighborhood", Sec. 2.1): biases fitted by alternating ridge steps, each bias
  shrunk by ``reg`` pseudo-ratings; ``reg`` chosen on the validation ratings' RMSE.
- `RatingMF`: r_ui = mu + b_u + b_i + p_u . q_i, biased matrix factorisation fitted by
  alternating least squares with weighted-lambda regularisation (Zhou et al. 2008, "Large-scale
  parallel collaborative filtering for the Netflix prize": each user's ridge penalty is
  ``reg * n_u``); the number of factors, ``reg`` and the number of sweeps are chosen on the
  validation ratings' RMSE from a tiny grid. Deterministic for a seed (numpy only).

Both fit on ``split.train`` ratings only (validation ratings choose the settings, test ratings
are never read) and predict a rating: `score_pointwise` for the protocol's AUC, and
`score_candidates` (the predicted rating of each candidate) so they fit any table.
Users or items outside the fitted range get zero bias / zero factors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.errors import DataError


def rating_triples(frame: pd.DataFrame, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings) of the rows of ``frame`` that carry a rating."""
    if "rating" not in frame.columns:
        raise DataError(f"{what} has no rating column: rating models need explicit ratings")
    r = frame["rating"].to_numpy(np.float64)
    ok = ~np.isnan(r)
    return (
        frame["user"].to_numpy(np.int64)[ok],
        frame["item"].to_numpy(np.int64)[ok],
        r[ok],
    )


def _rmse(pred: np.ndarray, r: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - r) ** 2)))


def _train_valid(split, what: str):
    """Training and validation rating triples; both must hold ratings."""
    train = rating_triples(split.train, "split.train")
    valid = rating_triples(split.valid, "split.valid")
    for name, part in (("split.train", train), ("split.valid", valid)):
        if len(part[2]) == 0:
            raise DataError(f"{name} has no ratings: {what} needs them (valid ones choose it)")
    return train, valid


def _ids(x, name: str) -> np.ndarray:
    a = np.asarray(x)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise DataError(f"{name} must be integer ids, got dtype {a.dtype}")
    return a.astype(np.int64)


def _fit_biases(u, i, r, mu, n_users, n_items, reg, sweeps=10):
    """Alternating ridge steps for b_u, b_i (each shrunk by ``reg`` pseudo-ratings)."""
    bu = np.zeros(n_users)
    bi = np.zeros(n_items)
    n_u = np.bincount(u, minlength=n_users)
    n_i = np.bincount(i, minlength=n_items)
    for _ in range(sweeps):
        bi = np.bincount(i, weights=r - mu - bu[u], minlength=n_items) / (reg + n_i)
        bu = np.bincount(u, weights=r - mu - bi[i], minlength=n_users) / (reg + n_u)
    return bu, bi


class _RatingBase:
    """Shared prediction surface: `predict`, `score_pointwise`, `score_candidates`."""

    is_baseline = True
    name = "rating"

    mu: float = 0.0
    bu: np.ndarray | None = None
    bi: np.ndarray | None = None

    def _interaction(self, users: np.ndarray, items: np.ndarray, known_u, known_i) -> np.ndarray:
        return np.zeros(users.shape)

    def predict(self, users, items) -> np.ndarray:
        """Predicted rating for each (user, item); ``users`` and ``items`` broadcast."""
        if self.bu is None:
            raise ValueError(f"{type(self).__name__} is not fitted")
        users, items = np.broadcast_arrays(_ids(users, "users"), _ids(items, "items"))
        ku = (users >= 0) & (users < len(self.bu))
        ki = (items >= 0) & (items < len(self.bi))
        uu, ii = np.where(ku, users, 0), np.where(ki, items, 0)
        out = self.mu + np.where(ku, self.bu[uu], 0.0) + np.where(ki, self.bi[ii], 0.0)
        return out + self._interaction(uu, ii, ku, ki)

    def score_pointwise(self, users, items, histories=None) -> np.ndarray:
        """Predicted rating (n,) of each user for each item (`pointwise`: AUC of liked)."""
        users, items = _ids(users, "users"), _ids(items, "items")
        if users.shape != items.shape or users.ndim != 1:
            raise DataError(f"users {users.shape} and items {items.shape} must be equal 1-D")
        return self.predict(users, items)

    def score_candidates(
        self, users, candidates, histories=None, intentions=None, templates=None, attrs=None
    ) -> np.ndarray:
        """Predicted rating (n, k) of each candidate (the text arguments are ignored)."""
        users, cands = _ids(users, "users"), _ids(candidates, "candidates")
        if cands.ndim != 2 or len(users) != len(cands):
            raise DataError(f"candidates must be (n, k) with n = {len(users)}, got {cands.shape}")
        return self.predict(users[:, None], cands)


class BiasModel(_RatingBase):
    """Global mean + user bias + item bias (module docstring); ``regs``: the shrinkage grid."""

    name = "bias"

    def __init__(self, regs: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 25.0)) -> None:
        self.regs = tuple(float(x) for x in regs)
        self.reg: float | None = None  # chosen shrinkage
        self.valid_rmse: dict[float, float] = {}  # per grid value

    def fit(self, split, n_users: int, n_items: int) -> BiasModel:
        """Fit on ``split.train`` ratings; choose ``reg`` on ``split.valid`` ratings."""
        (u, i, r), (vu, vi, vr) = _train_valid(split, "the bias model")
        self.mu = float(r.mean())
        best = None
        for reg in self.regs:
            self.bu, self.bi = _fit_biases(u, i, r, self.mu, n_users, n_items, reg)
            score = _rmse(self.predict(vu, vi), vr)
            self.valid_rmse[reg] = score
            if best is None or score < best[0]:
                best = (score, reg, self.bu, self.bi)
        _, self.reg, self.bu, self.bi = best
        return self

    def describe(self) -> dict:
        return {"model": self.name, "reg": self.reg, "valid_rmse": self.valid_rmse}


class RatingMF(_RatingBase):
    """Biased matrix factorisation by ALS (module docstring).

    ``factors`` x ``regs`` is the grid; each fit runs up to ``sweeps`` ALS sweeps and keeps
    the sweep with the lowest validation RMSE. ``seed`` draws the initial factors."""

    name = "rating-mf"

    def __init__(
        self,
        factors: tuple[int, ...] = (8, 32),
        regs: tuple[float, ...] = (0.1, 0.2, 0.4),
        sweeps: int = 20,
        bias_reg: float = 2.0,
        seed: int = 0,
    ) -> None:
        self.factors = tuple(int(f) for f in factors)
        self.regs = tuple(float(x) for x in regs)
        self.sweeps = int(sweeps)
        self.bias_reg = float(bias_reg)  # pseudo-ratings shrinking each bias
        self.seed = int(seed)
        self.p: np.ndarray | None = None  # (n_users, f)
        self.q: np.ndarray | None = None  # (n_items, f)
        self.chosen: dict | None = None  # {"factors", "reg", "sweeps", "valid_rmse"}
        self.grid: list[dict] = []  # every grid point's best validation RMSE

    def _interaction(self, uu, ii, ku, ki) -> np.ndarray:
        dot = np.einsum("...f,...f->...", self.p[uu], self.q[ii])
        return np.where(ku & ki, dot, 0.0)

    def fit(self, split, n_users: int, n_items: int) -> RatingMF:
        """Fit on ``split.train`` ratings; choose the grid point and sweep count on valid."""
        (u, i, r), (vu, vi, vr) = _train_valid(split, "the factorisation")
        self.mu = float(r.mean())
        bu0, bi0 = _fit_biases(u, i, r, self.mu, n_users, n_items, self.bias_reg)
        by_user = _segments(u, i, n_users, n_items)
        by_item = _segments(i, u, n_items, n_users)
        best = None
        self.grid = []
        for f in self.factors:
            for reg in self.regs:
                rng = np.random.default_rng([self.seed, f])
                state = {
                    "bu": bu0.copy(),
                    "bi": bi0.copy(),
                    "p": rng.normal(0.0, 0.1, (n_users, f)),
                    "q": rng.normal(0.0, 0.1, (n_items, f)),
                }
                point = None
                for sweep in range(1, self.sweeps + 1):
                    for side in (
                        ("p", "bu", "q", "bi", by_user),
                        ("q", "bi", "p", "bu", by_item),
                    ):
                        _als_side(state, *side, r - self.mu, reg, self.bias_reg)
                    self.bu, self.bi, self.p, self.q = (state[k] for k in ("bu", "bi", "p", "q"))
                    score = _rmse(self.predict(vu, vi), vr)
                    if point is None or score < point["valid_rmse"]:
                        point = {"factors": f, "reg": reg, "sweeps": sweep, "valid_rmse": score}
                        snap = {k: v.copy() for k, v in state.items()}
                self.grid.append(point)
                if best is None or point["valid_rmse"] < best[0]["valid_rmse"]:
                    best = (point, snap)
        self.chosen, snap = best
        self.bu, self.bi, self.p, self.q = (snap[k] for k in ("bu", "bi", "p", "q"))
        return self

    def describe(self) -> dict:
        return {"model": self.name, "chosen": self.chosen, "grid": self.grid}


def _segments(keys: np.ndarray, other: np.ndarray, n: int, n_other: int):
    """(rows, other ids, counts matrix): the sparse (n, n_other) matrix of how often each
    row rated each item (or was rated by each user), built once per side."""
    import scipy.sparse as sp

    counts = sp.csr_matrix(
        (np.ones(len(keys)), (keys, other)), shape=(n, n_other), dtype=np.float64
    )
    return keys, other, counts


def _als_side(state, fac, bias, other_fac, other_bias, seg, resid, reg, bias_reg):
    """Solve every row of ``state[fac]`` and ``state[bias]`` with the other side fixed:
    ridge regression of (r - mu - b_other) on [factors_other, 1]; the factors' penalty is
    ``reg * n`` (weighted lambda), the bias's ``bias_reg`` pseudo-ratings. Batched: row u's
    Gram matrix is sum_i C[u, i] x_i x_i^T = (C @ outer)[u], with the outer products taken
    once per item (not per rating) and C the sparse counts of `_segments`."""
    import scipy.sparse as sp

    keys, other, counts = seg
    f = state[fac].shape[1]
    d = f + 1
    xo = np.concatenate([state[other_fac], np.ones((len(state[other_fac]), 1))], axis=1)
    y = resid - state[other_bias][other]
    n_rows = counts.shape[0]
    gram = (counts @ (xo[:, :, None] * xo[:, None, :]).reshape(len(xo), d * d)).reshape(
        n_rows, d, d
    )
    rhs = sp.csr_matrix((y, (keys, other)), shape=counts.shape) @ xo
    count = np.asarray(counts.sum(axis=1)).reshape(-1)
    idx = np.arange(f)
    gram[:, idx, idx] += reg * np.maximum(count, 1.0)[:, None]  # rows without data: 0
    gram[:, f, f] += bias_reg
    sol = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    state[fac][:] = sol[:, :f]
    state[bias][:] = sol[:, f]
