"""Listwise heads of the encoder reranker (the HEAD INTERFACE of `instructrec.models.encoder`).

A head maps (instruction vector, candidate vectors, history vectors, history mask, priors) to
one score per candidate. ``HEADS`` names them for configs (``head: linear | rr``).
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from .encoder_config import cold_content_features

HEADS = {
    "linear": "instructrec.models.heads:LinearHead",
    "rr": "instructrec.models.rr_head:RRHead",
}


class ListwiseHead(nn.Module):
    """Maps (instruction vec, candidate vecs, history vecs, history mask, priors) to scores."""

    def __init__(self, dim: int, n_prior: int, **options) -> None:
        super().__init__()
        self.dim = dim
        self.n_prior = n_prior

    def forward(
        self,
        query: torch.Tensor,
        cands: torch.Tensor,
        hist: torch.Tensor,
        hist_mask: torch.Tensor,
        prior: torch.Tensor,
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class LinearHead(ListwiseHead):
    """s_i = w . prior_i + <W q, v_i> + <U mean(h), v_i> [+ cold_i * c . prior_i[cold_content]].

    ``q_init``: W starts at q_init * I (the plain cosine similarity, scaled); U starts at 0;
    w starts at 1 (`init_prior_weights` sets it, e.g. from a fit of the priors alone).
    ``cold_content``: prior channels (indices) of content-based retrievers that get a second
    weight c on cold candidates (the last prior channel is the 0/1 cold channel,
    `rerank.cold`): an item without interactions is ranked by its content alone, so what its
    content score is worth differs from a warm item's; c starts at 0 (`init_prior_weights`
    sets it from the same fit when given P + len(cold_content) weights)."""

    def __init__(
        self,
        dim: int,
        n_prior: int,
        q_init: float = 1.0,
        cold_content: list[int] | tuple[int, ...] = (),
        **options,
    ) -> None:
        super().__init__(dim, n_prior)
        self.prior_w = nn.Parameter(torch.ones(n_prior))
        self.cold_content = [int(i) for i in cold_content]
        if self.cold_content:
            if n_prior < 2 or any(not 0 <= i < n_prior - 1 for i in self.cold_content):
                raise ValueError(
                    f"cold_content {self.cold_content} must index prior channels before the "
                    f"cold channel (the last of {n_prior})"
                )
            self.cold_w = nn.Parameter(torch.zeros(len(self.cold_content)))
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.h_proj = nn.Linear(dim, dim, bias=False)
        nn.init.zeros_(self.h_proj.weight)
        with torch.no_grad():
            self.q_proj.weight.copy_(torch.eye(dim) * q_init)

    def init_prior_weights(self, w: torch.Tensor) -> None:
        """Set the prior mixture weights (P,), or (P + len(cold_content),): then the last
        ones are the cold weights (the columns `cold_content_features` appends)."""
        w = torch.as_tensor(w, dtype=self.prior_w.dtype)
        with torch.no_grad():
            self.prior_w.copy_(w[: self.n_prior])
            if self.cold_content and len(w) > self.n_prior:
                self.cold_w.copy_(w[self.n_prior :])

    def text_scores(self, query, cands, hist, hist_mask):
        """The text term alone, <W q, v_i> + <U mean(h), v_i> (`forward` minus the priors)."""
        s = torch.einsum("bd,bkd->bk", self.q_proj(query), cands)
        m = hist_mask.unsqueeze(-1).to(hist.dtype)
        h = (hist * m).sum(1) / m.sum(1).clamp_min(1.0)
        return s + torch.einsum("bd,bkd->bk", self.h_proj(h), cands)

    def forward(self, query, cands, hist, hist_mask, prior):
        s = self.text_scores(query, cands, hist, hist_mask)
        if self.n_prior:
            s = s + (prior * self.prior_w).sum(-1)
        if self.cold_content:
            s = s + (cold_content_features(prior, self.cold_content) * self.cold_w).sum(-1)
        return s


def make_head(name: str, dim: int, n_prior: int, **options) -> ListwiseHead:
    """Instantiate the head registered under ``name`` (see ``HEADS``)."""
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; choose one of {sorted(HEADS)}")
    mod, cls = HEADS[name].split(":")
    return getattr(importlib.import_module(mod), cls)(dim, n_prior, **options)
