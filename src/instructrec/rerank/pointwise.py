"""`PointwiseHead`: "will this user like this item? Yes/No" (the TALLRec task, protocol `pointwise`).

The listwise reranker learns *which* candidate a user picks next; whether the user will *like*
an item is a different question (SASRec, a next-item model, has AUC 0.50 on it). TALLRec
answers it by tuning an LLM on instructions that list the items the user liked and disliked.
The same information, read without a generation pass:

- rating statistics: the item's mean rating and the user's, both shrunk towards the global
  mean (``shrink`` pseudo-ratings), and the item's log popularity;
- taste similarity in the reranker's item space: the user's items weighted by how much the
  user liked each (rating minus the user's mean, the explicit preference "liked X, disliked
  Y" of InstructRec's P2 slot), dotted with the candidate's vector; once with the trained
  model's item vectors (MiniLM text + projected attributes + projected CF embedding), once
  with the retriever's CF embeddings alone; plus the plain mean similarity to the history.

A logistic regression over these (standardised, L2) is fitted on *stacked* rows: statistics
from the training interactions minus each user's last ``holdout`` items, labels (rating >= 4)
on those held-out items, so no feature has seen its own label. At prediction time the
statistics come from all training interactions. Saved beside the reranker (``pointwise.npz``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data.dataset import LIKED_RATING

FEATURES = (
    "item_bias",
    "item_log_count",
    "user_bias",
    "taste_model",
    "taste_cf",
    "sim_model",
    "sim_cf",
)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


class PointwiseHead:
    """Logistic regression over rating statistics and taste similarities (module docstring)."""

    def __init__(self, item_vecs: np.ndarray, cf_vecs: np.ndarray | None, shrink: float = 5.0):
        self.item_vecs = _unit(item_vecs)
        self.cf_vecs = _unit(cf_vecs) if cf_vecs is not None else None
        self.shrink = float(shrink)
        self.weights: np.ndarray | None = None  # (F + 1,): features then intercept
        self.mean = np.zeros(len(FEATURES), np.float32)  # feature standardisation
        self.std = np.ones(len(FEATURES), np.float32)
        self.stats: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ statistics
    def set_statistics(self, frame: pd.DataFrame, n_users: int, n_items: int) -> None:
        """Rating statistics of ``frame`` (user, item, rating): biases, counts, and the
        user x item matrix of centred ratings that the taste features read."""
        import scipy.sparse as sp

        r = frame["rating"].to_numpy(np.float64)
        u = frame["user"].to_numpy(np.int64)
        i = frame["item"].to_numpy(np.int64)
        ok = ~np.isnan(r)
        r, u, i = r[ok], u[ok], i[ok]
        mu = float(r.mean()) if len(r) else 0.0
        k = self.shrink
        i_cnt = np.bincount(i, minlength=n_items).astype(np.float64)
        i_sum = np.bincount(i, weights=r - mu, minlength=n_items)
        u_cnt = np.bincount(u, minlength=n_users).astype(np.float64)
        u_sum = np.bincount(u, weights=r - mu, minlength=n_users)
        u_mean = mu + u_sum / np.maximum(u_cnt, 1.0)
        centred = (r - u_mean[u]) / np.sqrt(np.maximum(u_cnt[u], 1.0))
        inter = np.ones(len(u), np.float64) / np.maximum(u_cnt[u], 1.0)
        self.stats = {
            "global_mean": np.float64(mu),
            "item_bias": (i_sum / (i_cnt + k)).astype(np.float32),
            "item_log_count": np.log1p(i_cnt).astype(np.float32),
            "user_bias": (u_sum / (u_cnt + k)).astype(np.float32),
        }
        self._taste = sp.csr_matrix((centred, (u, i)), shape=(n_users, n_items), dtype=np.float32)
        self._inter = sp.csr_matrix((inter, (u, i)), shape=(n_users, n_items), dtype=np.float32)

    # ------------------------------------------------------------------ features
    def features(
        self, users: np.ndarray, items: np.ndarray, histories: list[np.ndarray] | None = None
    ) -> np.ndarray:
        """(n, F) raw features. Users outside the statistics (id -1 or new) get zero user
        features; their similarity features come from ``histories`` (unweighted)."""
        users = np.asarray(users, np.int64)
        items = np.asarray(items, np.int64)
        n_users = self._taste.shape[0]
        known = (users >= 0) & (users < n_users)
        uu = np.where(known, users, 0)
        out = np.zeros((len(items), len(FEATURES)), np.float32)
        out[:, 0] = self.stats["item_bias"][items]
        out[:, 1] = self.stats["item_log_count"][items]
        out[:, 2] = np.where(known, self.stats["user_bias"][uu], 0.0)
        for col, vecs in ((3, self.item_vecs), (4, self.cf_vecs)):
            if vecs is None:
                continue
            taste = np.asarray(self._taste[uu] @ vecs)  # (n, d)
            inter = np.asarray(self._inter[uu] @ vecs)
            if histories is not None:  # users without statistics: their given history
                for r in np.flatnonzero(~known):
                    h = np.asarray(histories[r], np.int64)
                    inter[r] = vecs[h].mean(0) if len(h) else 0.0
            taste[~known] = 0.0
            out[:, col] = (taste * vecs[items]).sum(1)
            out[:, col + 2] = (inter * vecs[items]).sum(1)
        return out

    # ------------------------------------------------------------------ fit / predict
    def fit(self, x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 100) -> None:
        """Logistic regression on standardised features (LBFGS)."""
        import torch

        if len(np.unique(y)) < 2:
            raise ValueError("the pointwise head needs liked and not-liked training rows")
        self.mean = x.mean(0).astype(np.float32)
        self.std = np.maximum(x.std(0), 1e-6).astype(np.float32)
        xt = torch.as_tensor((x - self.mean) / self.std, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        w = torch.zeros(x.shape[1] + 1, requires_grad=True)
        opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            logit = xt @ w[:-1] + w[-1]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yt)
            loss = loss + l2 * (w[:-1] ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.weights = w.detach().numpy().astype(np.float32)

    def predict(self, users, items, histories=None) -> np.ndarray:
        """Logit of "liked" for each (user, item)."""
        if self.weights is None:
            raise ValueError("PointwiseHead is not fitted")
        x = (self.features(users, items, histories) - self.mean) / self.std
        return x @ self.weights[:-1] + self.weights[-1]

    def coefficients(self) -> dict[str, float]:
        """Standardised weights by feature name (for the record)."""
        return dict(zip((*FEATURES, "intercept"), map(float, self.weights), strict=True))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        import scipy.sparse as sp

        path = Path(path)
        np.savez(
            path / "pointwise.npz",
            item_vecs=self.item_vecs,
            cf_vecs=self.cf_vecs if self.cf_vecs is not None else np.zeros((0, 0), np.float32),
            weights=self.weights,
            mean=self.mean,
            std=self.std,
            shrink=np.float64(self.shrink),
            **self.stats,
        )
        sp.save_npz(path / "pointwise_taste.npz", self._taste)
        sp.save_npz(path / "pointwise_inter.npz", self._inter)

    @classmethod
    def load(cls, path: str | Path) -> PointwiseHead:
        import scipy.sparse as sp

        path = Path(path)
        z = np.load(path / "pointwise.npz", allow_pickle=False)
        cf = z["cf_vecs"] if z["cf_vecs"].size else None
        head = cls(np.zeros((0, 1), np.float32), None, float(z["shrink"]))
        head.item_vecs, head.cf_vecs = z["item_vecs"], cf  # saved unit-norm: not re-normalised
        head.weights, head.mean, head.std = z["weights"], z["mean"], z["std"]
        head.stats = {k: z[k] for k in ("global_mean", "item_bias", "item_log_count", "user_bias")}
        head._taste = sp.load_npz(path / "pointwise_taste.npz").tocsr()
        head._inter = sp.load_npz(path / "pointwise_inter.npz").tocsr()
        return head


def fit_pointwise_head(
    dataset, split, item_vecs: np.ndarray, cf_vecs: np.ndarray | None, holdout: int = 2
) -> PointwiseHead:
    """Fit on stacked rows (module docstring); return a head with full-training statistics."""
    from .rerank_features import stacked_frame

    if "rating" not in split.train.columns or split.train["rating"].isna().all():
        raise ValueError("the pointwise head needs ratings in the training interactions")
    head = PointwiseHead(item_vecs, cf_vecs)
    fit_part, held = stacked_frame(split.train, holdout)
    held = held[~held["rating"].isna()]
    head.set_statistics(fit_part, dataset.n_users, dataset.n_items)
    x = head.features(held["user"].to_numpy(), held["item"].to_numpy())
    y = (held["rating"].to_numpy() >= LIKED_RATING).astype(np.float32)
    head.fit(x, y)
    head.set_statistics(split.train, dataset.n_users, dataset.n_items)
    return head
