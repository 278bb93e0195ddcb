"""BPR-MF: Bayesian personalised ranking with matrix factorisation (Rendle et al., UAI 2009).

score(u, i) = <p_u, q_i> + b_i, trained on (user, positive, uniformly sampled negative)
triples with the pairwise loss -log sigmoid(score(u, pos) - score(u, neg)) and L2 on the
factors of each batch. Early stopping on validation NDCG@10, as SASRec.

Histories: a known user is scored with its learned factor (an explicit history is then used
only for excluding seen items). A user unknown to training (id outside ``0..n_users-1``) is
folded in: its factor is the mean factor of the users who interacted with the history's items
(weighted by how many of them each user shares), a cheap, parameter-free fold-in.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data.runfiles import csr_arrays, csr_from
from .base import Retriever
from .sasrec import _threads
from .validation import ndcg_at_10, validation_rows


@dataclass
class BPRConfig:
    """BPR-MF hyper-parameters."""

    dim: int = 64  # factor dimension
    lr: float = 5e-3  # Adam learning rate
    reg: float = 1e-4  # L2 weight on the batch's factors
    batch_size: int = 4096  # triples per step
    max_epochs: int = 100  # upper bound on passes over the training interactions
    patience: int = 5  # epochs without a validation NDCG@10 gain before stopping
    seed: int = 0  # initialisation and sampling
    threads: int = 1  # torch CPU threads (0 keeps torch's setting)


class BPR(Retriever):
    """Matrix factorisation trained with the BPR pairwise loss."""

    name = "bpr"
    array_attrs = ("user_f", "item_f", "item_b")
    json_attrs = ("n_items", "n_users", "history_", "best_valid_ndcg_")

    def __init__(self, config: BPRConfig | None = None, **kwargs) -> None:
        self.config = config or BPRConfig(**kwargs)
        self.user_f: np.ndarray | None = None
        self.item_f: np.ndarray | None = None
        self.item_b: np.ndarray | None = None
        self.history_: list[dict] = []

    def fit(
        self, train: pd.DataFrame, n_users: int, n_items: int, valid: pd.DataFrame | None = None
    ) -> Self:
        import torch

        cfg = self.config
        self.n_items, self.n_users = int(n_items), int(n_users)
        self._remember_train(train, n_users)
        self.history_ = []
        v_users, v_hist, v_target, fit_seqs = validation_rows(self._train_items or [], valid)
        lens = np.array([len(s) for s in fit_seqs], np.int64)
        users = np.repeat(np.arange(n_users), lens)
        items = np.concatenate(fit_seqs).astype(np.int64) if lens.sum() else np.empty(0, np.int64)
        self._user_item = sp.csr_matrix(
            (np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items)
        )
        rng = np.random.default_rng(cfg.seed)
        with torch.random.fork_rng(devices=[]), _threads(cfg.threads):
            torch.manual_seed(cfg.seed)
            p = torch.nn.Parameter(torch.randn(n_users, cfg.dim) * 0.01)
            q = torch.nn.Parameter(torch.randn(n_items, cfg.dim) * 0.01)
            b = torch.nn.Parameter(torch.zeros(n_items))
            opt = torch.optim.Adam([p, q, b], lr=cfg.lr)
            u_all, i_all = torch.from_numpy(users), torch.from_numpy(items)
            best, best_state, bad = -1.0, None, 0
            for epoch in range(cfg.max_epochs):
                t0 = time.perf_counter()
                perm = torch.from_numpy(rng.permutation(len(users)))
                neg_all = torch.from_numpy(rng.integers(0, n_items, len(users)))
                total = 0.0
                for s in range(0, len(perm), cfg.batch_size):
                    idx = perm[s : s + cfg.batch_size]
                    u, i, j = u_all[idx], i_all[idx], neg_all[idx]
                    pu, qi, qj = p[u], q[i], q[j]
                    diff = (pu * (qi - qj)).sum(1) + b[i] - b[j]
                    loss = -torch.nn.functional.logsigmoid(diff).mean()
                    loss = loss + cfg.reg * (
                        pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum()
                    ) / len(idx)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(idx)
                self._set(p, q, b)
                ndcg = ndcg_at_10(self, v_users, v_hist, v_target)
                self.history_.append(
                    {
                        "epoch": epoch + 1,
                        "loss": total / max(len(users), 1),
                        "valid_ndcg@10": ndcg,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                if ndcg > best:
                    best, bad = ndcg, 0
                    best_state = copy.deepcopy((self.user_f, self.item_f, self.item_b))
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        break
        if best_state is not None:
            self.user_f, self.item_f, self.item_b = best_state
        self.best_valid_ndcg_ = best
        return self

    def _set(self, p, q, b) -> None:
        self.user_f = p.detach().numpy().copy()
        self.item_f = q.detach().numpy().copy()
        self.item_b = b.detach().numpy().copy()

    def _user_factors(self, users: np.ndarray, histories) -> np.ndarray:
        known = (users >= 0) & (users < len(self.user_f))
        out = np.zeros((len(users), self.user_f.shape[1]), np.float32)
        out[known] = self.user_f[users[known]]
        if (~known).any():
            if histories is None:
                raise ValueError("users unknown to training need explicit histories")
            for row in np.flatnonzero(~known):
                h = np.asarray(histories[row], np.int64)
                w = np.asarray(self._user_item[:, h].sum(axis=1)).ravel()  # shared items
                if w.sum() > 0:
                    out[row] = (w @ self.user_f) / w.sum()
        return out

    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        if self.user_f is None:
            raise RuntimeError("BPR is not fitted: call fit(train, n_users, n_items) first")
        users = np.atleast_1d(np.asarray(users, np.int64))
        if histories is not None and len(histories) != len(users):
            raise ValueError(f"got {len(histories)} histories for {len(users)} users")
        return (self._user_factors(users, histories) @ self.item_f.T + self.item_b).astype(
            np.float32
        )

    def item_embeddings(self) -> np.ndarray | None:
        return None if self.item_f is None else self.item_f.copy()

    def state(self):
        values, arrays = super().state()
        if getattr(self, "_user_item", None) is not None:
            arrays.update(csr_arrays("user_item", self._user_item))
        return values, arrays

    def set_state(self, values, arrays) -> None:
        super().set_state(values, arrays)
        self._user_item = csr_from(arrays, "user_item")
