"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

A causal Transformer over the user's most recent ``max_len`` items (EVALUATION.md shows a
model the last 20): the hidden state at the last position, dotted with the item embedding
table, scores every item. Training follows "SASRec with cross-entropy" (Klenitskiy & Vasilev,
RecSys 2023): full-softmax cross-entropy over the catalogue at every position of a window,
instead of the paper's one sampled negative. Each user's training sequence is cut, from its
end, into windows of ``max_len`` inputs every ``stride`` items (default: non-overlapping);
each target is counted once, in the window where it has the most context. Training stops
early on validation NDCG@10 (full ranking, training items excluded), keeping the best epoch.

Speed on a small CPU: preloading tcmalloc (Debian ``libtcmalloc-minimal4``) helps, e.g.
``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4``; it is optional.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Self

import numpy as np
import pandas as pd

from .base import Retriever
from .validation import ndcg_at_10, validation_rows

log = logging.getLogger(__name__)


@dataclass
class SASRecConfig:
    """SASRec hyper-parameters (defaults tuned on ML-100K leave-one-out, CPU)."""

    max_len: int = 20  # history window (EVALUATION.md: the most recent 20 items)
    hidden: int = 64  # embedding and model width
    n_layers: int = 2  # Transformer blocks
    n_heads: int = 2  # attention heads per block
    inner: int = 256  # feed-forward width
    dropout: float = 0.3  # dropout on embeddings, attention weights and block outputs
    lr: float = 5e-3  # Adam learning rate
    weight_decay: float = 0.0  # AdamW weight decay
    batch_size: int = 256  # windows per optimisation step
    stride: int = 20  # distance between window ends when cutting a long sequence
    max_epochs: int = 60  # upper bound on passes over the training windows
    patience: int = 3  # epochs without a validation NDCG@10 gain before stopping
    eval_batch: int = 512  # users per scoring batch
    seed: int = 0  # initialisation, dropout and shuffling
    device: str = "cpu"  # "cpu", "cuda" or "auto"
    threads: int = 1  # torch CPU threads while fitting/scoring (tiny model: 1 beats 2 on a busy
    #                   machine); 0 keeps torch's setting
    verbose: bool = False  # log one line per epoch


def _net(n_items: int, cfg: SASRecConfig):
    """Build the torch module (kept inside a function so importing this file stays light)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class Block(nn.Module):
        """Pre-LN Transformer block: causal self-attention then a position-wise MLP."""

        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(cfg.hidden), nn.LayerNorm(cfg.hidden)
            self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
            self.proj = nn.Linear(cfg.hidden, cfg.hidden)
            self.mlp = nn.Sequential(
                nn.Linear(cfg.hidden, cfg.inner), nn.GELU(), nn.Linear(cfg.inner, cfg.hidden)
            )
            self.drop = nn.Dropout(cfg.dropout)

        def forward(self, x, mask):
            b, n, d = x.shape
            q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
            q, k, v = (
                t.view(b, n, cfg.n_heads, d // cfg.n_heads).transpose(1, 2) for t in (q, k, v)
            )
            p = cfg.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))
            return x + self.drop(self.mlp(self.ln2(x)))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)  # id 0 = padding
            self.pos = nn.Embedding(cfg.max_len, cfg.hidden)
            self.drop = nn.Dropout(cfg.dropout)
            self.blocks = nn.ModuleList([Block() for _ in range(cfg.n_layers)])
            self.ln = nn.LayerNorm(cfg.hidden)
            self.apply(self._init)

        @staticmethod
        def _init(m) -> None:
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

        def forward(self, seq):
            """seq: (B, L) item ids + 1, left-padded with 0 -> hidden states (B, L, d)."""
            n = seq.shape[1]
            x = self.drop(self.item(seq) * cfg.hidden**0.5 + self.pos.weight[-n:])
            causal = torch.ones(n, n, dtype=torch.bool, device=seq.device).tril()
            real = (seq > 0)[:, None, None, :]  # keys that are items, not padding
            eye = torch.eye(n, dtype=torch.bool, device=seq.device)  # a row never fully masked
            mask = causal & (real | eye)
            for block in self.blocks:
                x = block(x, mask)
            return self.ln(x)

        def scores(self, seq):
            """Scores of every item after the last position: (B, n_items)."""
            return self.forward(seq)[:, -1] @ self.item.weight[1:].T

    return Net()


def _np_scores(w: dict[str, np.ndarray], seq: np.ndarray, cfg: SASRecConfig) -> np.ndarray:
    """``_net(...).scores`` in NumPy (eval mode: no dropout) from the ``net.*`` weights
    (names without ``net.``): (B, n_items) for ``seq`` (B, L) ids + 1, left-padded with 0."""
    from ..np_ops import gelu, layer_norm, softmax

    b, n = seq.shape
    d, h = cfg.hidden, cfg.n_heads
    x = w["item.weight"][seq] * np.float32(cfg.hidden**0.5) + w["pos.weight"][-n:]
    causal = np.tril(np.ones((n, n), bool))
    real = (seq > 0)[:, None, None, :]
    mask = causal & (real | np.eye(n, dtype=bool))  # (B, 1, n, n): as `Net.forward`
    bias = np.where(mask, np.float32(0.0), np.float32(-np.inf))
    scale = np.float32(1.0 / np.sqrt(d // h))
    eps = 1e-5  # nn.LayerNorm's default

    def heads(y):
        return y.reshape(b, n, h, d // h).transpose(0, 2, 1, 3)

    def lin(y, name):
        return y @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    for i in range(cfg.n_layers):
        p = f"blocks.{i}"
        qkv = lin(layer_norm(x, w[f"{p}.ln1.weight"], w[f"{p}.ln1.bias"], eps), f"{p}.qkv")
        q, k, v = (heads(t) for t in np.split(qkv, 3, axis=2))
        y = softmax((q @ k.transpose(0, 1, 3, 2)) * scale + bias) @ v
        x = x + lin(y.transpose(0, 2, 1, 3).reshape(b, n, d), f"{p}.proj")
        y = layer_norm(x, w[f"{p}.ln2.weight"], w[f"{p}.ln2.bias"], eps)
        x = x + lin(gelu(lin(y, f"{p}.mlp.0")), f"{p}.mlp.2")
    last = layer_norm(x[:, -1], w["ln.weight"], w["ln.bias"], eps)
    return (last @ w["item.weight"][1:].T).astype(np.float32)


@contextmanager
def _threads(n: int):
    """Temporarily use ``n`` torch CPU threads (0: leave as is)."""
    import torch

    old = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n > 0:
            torch.set_num_threads(old)


def _pad_left(histories: list[np.ndarray], max_len: int) -> np.ndarray:
    """Last ``max_len`` items of each history, +1 (0 = padding), left-padded: (n, max_len)."""
    out = np.zeros((len(histories), max_len), np.int64)
    for row, h in enumerate(histories):
        h = np.asarray(h, np.int64)[-max_len:]
        if len(h):
            out[row, max_len - len(h) :] = h + 1
    return out


def training_windows(sequences: list[np.ndarray], max_len: int, stride: int):
    """Cut sequences into (inputs, targets), both (W, max_len) ids + 1, 0 = pad / not counted.

    Windows end every ``stride`` items from the end of a sequence; a window owns the targets
    the next (later) window does not reach, so each target is counted exactly once.
    """
    xs, ys = [], []
    for seq in sequences:
        seq = np.asarray(seq, np.int64) + 1
        n = len(seq)
        end = n - 1  # index of the last target
        while end >= 1:
            lo = max(0, end - max_len)  # first input
            x = seq[lo:end]
            y = seq[lo + 1 : end + 1].copy()
            next_end = end - stride if lo > 0 else 0  # a window from the start owns all
            if next_end >= 1:  # earlier targets belong to the next window
                y[: max(0, len(y) - stride)] = 0
            xp, yp = np.zeros(max_len, np.int64), np.zeros(max_len, np.int64)
            xp[max_len - len(x) :], yp[max_len - len(y) :] = x, y
            xs.append(xp)
            ys.append(yp)
            end = next_end
    if not xs:
        return np.zeros((0, max_len), np.int64), np.zeros((0, max_len), np.int64)
    return np.stack(xs), np.stack(ys)


class SASRec(Retriever):
    """SASRec retriever: ``fit`` trains, ``score_all`` runs the last window of each history."""

    name = "sasrec"
    json_attrs = ("n_items", "history_", "best_valid_ndcg_")

    def __init__(self, config: SASRecConfig | None = None, **kwargs) -> None:
        self.config = config or SASRecConfig(**kwargs)
        self.net = None
        self._np_weights: dict[str, np.ndarray] | None = None  # runtime "numpy" (`_np_scores`)
        self.history_: list[dict] = []  # per-epoch loss / validation NDCG@10 / seconds

    # ------------------------------------------------------------------ training
    def fit(
        self,
        train: pd.DataFrame,
        n_users: int,
        n_items: int,
        valid: pd.DataFrame | None = None,
        epoch_cap: Callable[[bool], int | None] | None = None,
    ) -> Self:
        """Train on ``train``; stop early on NDCG@10 of ``valid`` (rows after each user's
        training items). Without ``valid``, each user's last training item is held out for
        stopping (and the model then sees it only as history).

        ``epoch_cap(wait)``: a limit on the epochs that may become known while this fits
        (the stacked twin of `training.fit_aside` learns the first-stage model's selected
        epoch this way); asked after every epoch with ``wait=False`` and once at the end with
        ``wait=True`` (it may block then; None: no limit). The result equals a fit with
        ``max_epochs`` = the cap, whenever the cap arrives."""
        import torch

        cfg = self.config
        self.n_items = int(n_items)
        self._remember_train(train, n_users)
        self.history_ = []
        v_users, v_hist, v_target, fit_seqs = validation_rows(self._train_items or [], valid)
        x_all, y_all = training_windows(fit_seqs, cfg.max_len, cfg.stride)
        device = self._device()
        with torch.random.fork_rng(devices=[]), _threads(cfg.threads):
            torch.manual_seed(cfg.seed)
            self.net = _net(self.n_items, cfg).to(device)
            self._np_weights = None
            gen = torch.Generator().manual_seed(cfg.seed)
            opt = torch.optim.AdamW(self.net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            x_all, y_all = torch.from_numpy(x_all), torch.from_numpy(y_all)
            best, best_state, bad = -1.0, None, 0
            kept: list[tuple[int, float, dict]] = []  # (epoch, NDCG, state) at each new best
            cap = None
            for epoch in range(cfg.max_epochs):
                t0 = time.perf_counter()
                self.net.train()
                perm = torch.randperm(len(x_all), generator=gen)
                total, count = 0.0, 0
                for s in range(0, len(perm), cfg.batch_size):
                    idx = perm[s : s + cfg.batch_size]
                    x, y = x_all[idx].to(device), y_all[idx].to(device)
                    h = self.net(x)[y > 0]  # hidden states at counted positions (M, d)
                    logits = h @ self.net.item.weight[1:].T
                    loss = torch.nn.functional.cross_entropy(logits, y[y > 0] - 1)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    total += loss.item() * len(h)
                    count += len(h)
                ndcg = ndcg_at_10(self, v_users, v_hist, v_target)
                self.history_.append(
                    {
                        "epoch": epoch + 1,
                        "loss": total / max(count, 1),
                        "valid_ndcg@10": ndcg,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                if cfg.verbose or log.isEnabledFor(20):  # 20: logging.INFO (the CLI's lines)
                    log.info(
                        "sasrec epoch %d: loss %.4f, valid NDCG@10 %.4f (%.1f s)",
                        epoch + 1,
                        total / max(count, 1),
                        ndcg,
                        self.history_[-1]["seconds"],
                    )
                if ndcg > best:
                    best, best_state, bad = ndcg, copy.deepcopy(self.net.state_dict()), 0
                    if epoch_cap is not None:
                        kept.append((epoch + 1, ndcg, best_state))
                else:
                    bad += 1
                    if bad >= cfg.patience:
                        break
                if epoch_cap is not None:
                    cap = epoch_cap(False)
                    if cap is not None and epoch + 1 >= cap:
                        break
            if epoch_cap is not None:
                cap = cap if cap is not None else epoch_cap(True)
                if cap is not None:  # the best of the epochs a fit capped at ``cap`` ran
                    self.history_ = self.history_[:cap]
                    _, best, best_state = ([k for k in kept if k[0] <= cap] or kept[:1])[-1]
            if best_state is not None:
                self.net.load_state_dict(best_state)
        self.net.eval()
        self.best_valid_ndcg_ = best
        return self

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights the model kept (the first best validation NDCG@10)."""
        if not self.history_:
            return None
        scores = [h["valid_ndcg@10"] for h in self.history_]
        return int(self.history_[int(np.argmax(scores))]["epoch"])

    def _device(self) -> str:
        import torch

        if self.config.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.config.device

    # ------------------------------------------------------------------ inference
    def score_all(self, users: np.ndarray, histories: list[np.ndarray] | None = None) -> np.ndarray:
        if self._np_weights is not None:
            return self._score_all_numpy(users, histories)
        import torch

        if self.net is None:
            raise RuntimeError("SASRec is not fitted: call fit(train, n_users, n_items) first")
        users = np.atleast_1d(np.asarray(users))
        hist = histories if histories is not None else self.train_items(users)
        if len(hist) != len(users):
            raise ValueError(f"got {len(hist)} histories for {len(users)} users")
        seq = _pad_left(hist, self.config.max_len)
        self.net.eval()
        device = next(self.net.parameters()).device
        out = np.empty((len(users), self.n_items), np.float32)
        with torch.no_grad(), _threads(self.config.threads):
            for s in range(0, len(seq), self.config.eval_batch):
                batch = torch.from_numpy(seq[s : s + self.config.eval_batch]).to(device)
                out[s : s + len(batch)] = self.net.scores(batch).float().cpu().numpy()
        return out

    def _score_all_numpy(self, users, histories) -> np.ndarray:
        users = np.atleast_1d(np.asarray(users))
        hist = histories if histories is not None else self.train_items(users)
        if len(hist) != len(users):
            raise ValueError(f"got {len(hist)} histories for {len(users)} users")
        seq = _pad_left(hist, self.config.max_len)
        out = np.empty((len(users), self.n_items), np.float32)
        for s in range(0, len(seq), self.config.eval_batch):
            batch = seq[s : s + self.config.eval_batch]
            out[s : s + len(batch)] = _np_scores(self._np_weights, batch, self.config)
        return out

    def item_embeddings(self) -> np.ndarray | None:
        if self._np_weights is not None:
            return self._np_weights["item.weight"][1:].copy()
        if self.net is None:
            return None
        return self.net.item.weight[1:].detach().float().cpu().numpy().copy()

    # ------------------------------------------------------------------ persistence
    def state(self):
        """The network's weights as ``net.*`` arrays (CPU, portable across devices)."""
        values, arrays = super().state()
        if self._np_weights is not None:
            arrays.update({f"net.{k}": v for k, v in self._np_weights.items()})
        elif self.net is not None:
            arrays.update(
                {f"net.{k}": v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}
            )
        return values, arrays

    def set_state(self, values, arrays) -> None:
        super().set_state(values, arrays)
        self.net = self._np_weights = None
        if self.runtime == "numpy":  # inference in NumPy: no torch import, no module built
            weights = {
                k[4:]: np.asarray(v, np.float32) for k, v in arrays.items() if k.startswith("net.")
            }
            self._np_weights = weights or None
            return
        import torch

        weights = {k[4:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")}
        if weights:
            self.net = _net(self.n_items, self.config)
            self.net.load_state_dict(weights)
            self.net.to(self._device()).eval()
