"""Reciprocating recurrent (RR) reranking head: a small bidirectional, weight-tied refinement
of the retriever's prior, run after the encoder backbone (config ``head: "rr"``).

What the name means here. The product design asks for a "Reciprocating Recurrent
Transformer" that "adds recurrence and prior knowledge to a bidirectional transformer" so
that instruction following generalises better. No published architecture carries that name
(we found none), so this module builds the idea in its plainest form, and
``benchmarks/bench_rr_ablation.py`` measures whether it earns its place (docs/rr_head.md):

- reciprocating: one block alternates two cross-attentions, without a causal mask: the
  memory (the instruction vector plus the user's history) reads the candidates, then the
  candidates read the memory back. Candidates therefore see each other only through the
  user's context: a listwise interaction at O(K * (H + 1)) cost instead of O(K^2).
- recurrent: the SAME block (shared weights) is applied ``T`` times; pass t reads the
  candidate and memory states written by pass t-1. ``T`` changes compute, never the
  parameter count (a weight-tied, Universal-Transformer-style depth; Dehghani et al. 2019).
- prior knowledge: the score starts from the retriever's scores (z-scored per list) and the
  first pass from the candidate vectors the backbone hands over (frozen item text vectors,
  plus the retriever's item embeddings where the encoder adds them; with ``prior_in=True``
  also from the scores themselves); the output is

      s_i = sum_p w_p * prior_{i,p}  +  g * <W q, v_i>  +  r(c_i^T)
            (prior, w init 1)           (direct match,     (RR residual, output
                                         gate g init 0)     layer init 0)

  so at initialisation the head returns exactly the prior's ordering and training learns a
  residual on top of the collaborative signal instead of replacing it (ReZero-style zero
  init; Bachlechner et al. 2020). ``direct_init=q`` starts g where a ``LinearHead(q_init=q)``
  starts (prior + q cos(q, v)): the head is then exactly "plain + a zero-initialised RR
  residual", the cleanest ablation of the block itself.

Measured (docs/rr_head.md): trained on lists with hard negatives, a head that sees the prior
scores nonlinearly (``prior_in=True``) learns "highest prior in the list = hard negative" and
collapses on random-negative lists; so by default the prior enters only the linear,
monotone starting score.

Shapes follow the head interface of ``models/encoder.py``: query (B, d), cands (B, K, d),
hist (B, H, d), hist_mask (B, H) bool (True = real item), prior (B, K, P); returns (B, K).
No positional information is given to candidates, so the head is permutation-equivariant
over them; history items get a recency embedding (0 = most recent real item), computed from
the mask, so left or right padding gives the same result.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from ..data.errors import DataError
from .heads import ListwiseHead


@dataclass
class RRHeadConfig:
    """Options of the RR head (``head_options`` in the reranker config; YAML-loadable)."""

    T: int = 2  # passes of the shared reciprocating block (recurrence depth)
    width: int = 128  # hidden width of candidate / memory states
    heads: int = 4  # attention heads in each cross-attention (must divide width)
    ffn_mult: int = 2  # feed-forward hidden size = ffn_mult * width
    dropout: float = 0.0  # dropout inside attention and feed-forward
    max_history: int = 64  # recency embeddings; older history items share the last one
    direct: bool = True  # add the gated direct match term g * <W q, v_i>
    direct_init: float = 0.0  # g at init: 0 = start from the prior alone; = LinearHead's q_init
    #                           starts at the plain head's score, i.e. plain + a zero RR residual
    prior_in: bool = False  # also feed the prior scores into the pass-0 candidate states. Off by
    #                         default: measured, it learns a non-monotone use of the prior from
    #                         hard-negative training lists that collapses on random lists

    def __post_init__(self) -> None:
        """Bad values (from a YAML config, say) are a `DataError` naming the option."""
        if self.T < 1:
            raise DataError(f"RR head: T must be >= 1, got {self.T}", column="head_options.T")
        if self.width < 1 or self.heads < 1 or self.width % self.heads:
            raise DataError(
                f"RR head: width ({self.width}) must be a positive multiple of heads ({self.heads})",
                column="head_options.width",
            )
        if self.ffn_mult < 1 or self.max_history < 1 or not 0.0 <= self.dropout < 1.0:
            raise DataError(
                "RR head: ffn_mult and max_history must be >= 1, dropout in [0, 1)",
                column="head_options",
            )

    @classmethod
    def from_options(cls, options: dict) -> RRHeadConfig:
        """Build from a dict (e.g. a YAML ``head_options`` mapping); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise DataError(
                f"RR head: unknown option(s) {unknown}; known: {sorted(known)}",
                column="head_options",
            )
        return cls(**options)


def _ffn(width: int, mult: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(width, mult * width),
        nn.GELU(),
        nn.Dropout(dropout),
        nn.Linear(mult * width, width),
    )


class ReciprocatingBlock(nn.Module):
    """Memory -> candidates cross-attention, then candidates -> memory; pre-norm residuals.

    The memory (instruction + history) reads the candidates first and the candidates read the
    updated memory second, so both halves of every pass, the last one included, reach the
    scores (the other order leaves the last pass's memory update unused and, at T=1,
    untrained: a gradient test caught it).
    """

    def __init__(self, width: int, heads: int, ffn_mult: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        # the memory (instruction + history) reads the candidates
        self.m_norm = nn.LayerNorm(width)
        self.m_kv_norm = nn.LayerNorm(width)
        self.m_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.m_ffn_norm = nn.LayerNorm(width)
        self.m_ffn = _ffn(width, ffn_mult, dropout)
        # the candidates read the memory back
        self.c_norm = nn.LayerNorm(width)
        self.c_kv_norm = nn.LayerNorm(width)
        self.c_attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.c_ffn_norm = nn.LayerNorm(width)
        self.c_ffn = _ffn(width, ffn_mult, dropout)

    def forward(
        self, c: torch.Tensor, m: torch.Tensor, m_pad: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """c (B, K, w) candidate states; m (B, 1+H, w) memory; m_pad (B, 1+H) True = padding."""
        kv = self.m_kv_norm(c)
        m = m + self.m_attn(self.m_norm(m), kv, kv, need_weights=False)[0]
        m = m + self.m_ffn(self.m_ffn_norm(m))
        kv = self.c_kv_norm(m)
        c = c + self.c_attn(self.c_norm(c), kv, kv, key_padding_mask=m_pad, need_weights=False)[0]
        c = c + self.c_ffn(self.c_ffn_norm(c))
        return c, m


class RRHead(ListwiseHead):
    """Reciprocating recurrent head: prior + gated direct match + T passes of a shared block.

    ``RRHead(dim, n_prior, T=2, width=128, heads=4, ...)``: options as in `RRHeadConfig`.
    """

    def __init__(self, dim: int, n_prior: int, **options) -> None:
        super().__init__(dim, n_prior)
        self.config = cfg = RRHeadConfig.from_options(options)
        w = cfg.width
        # prior: the starting score, one weight per prior column (like LinearHead)
        self.prior_w = nn.Parameter(torch.ones(n_prior))
        # direct instruction-candidate match, gated off at init (W starts at identity)
        if cfg.direct:
            self.q_match = nn.Linear(dim, dim, bias=False)
            self.direct_gate = nn.Parameter(torch.tensor(float(cfg.direct_init)))
            with torch.no_grad():
                self.q_match.weight.copy_(torch.eye(dim))
        # pass-0 states: candidates from their vectors and priors; memory from q and history
        self.cand_in = nn.Linear(dim, w)
        self.prior_in = nn.Linear(n_prior, w, bias=False) if (n_prior and cfg.prior_in) else None
        self.query_in = nn.Linear(dim, w)
        self.hist_in = nn.Linear(dim, w)
        self.recency = nn.Embedding(cfg.max_history, w)
        self.block = ReciprocatingBlock(w, cfg.heads, cfg.ffn_mult, cfg.dropout)
        self.out_norm = nn.LayerNorm(w)
        self.out = nn.Linear(w, 1)
        nn.init.zeros_(self.out.weight)  # the residual starts at exactly 0
        nn.init.zeros_(self.out.bias)

    @property
    def T(self) -> int:
        """Number of passes of the shared block (may be changed after construction)."""
        return self.config.T

    @T.setter
    def T(self, value: int) -> None:
        if int(value) < 1:
            raise DataError(f"RR head: T must be >= 1, got {value}", column="head_options.T")
        self.config.T = int(value)

    def init_prior_weights(self, w: torch.Tensor) -> None:
        """Set the prior mixture weights (P,), e.g. from a fit of the priors alone (the same
        warm start `LinearHead` gets from `InstructionReranker.fit`)."""
        with torch.no_grad():
            self.prior_w.copy_(torch.as_tensor(w, dtype=self.prior_w.dtype))

    def options(self) -> dict:
        """The options this head was built with (round-trips through ``RRHead(dim, P, **o)``)."""
        return asdict(self.config)

    def prior_score(self, prior: torch.Tensor) -> torch.Tensor:
        """The collaborative starting point sum_p w_p * prior_p, (B, K)."""
        if not self.n_prior:
            return prior.new_zeros(prior.shape[:2])
        return (prior * self.prior_w).sum(-1)

    def forward(
        self,
        query: torch.Tensor,
        cands: torch.Tensor,
        hist: torch.Tensor,
        hist_mask: torch.Tensor,
        prior: torch.Tensor,
    ) -> torch.Tensor:
        """Scores (B, K): prior + direct match + RR residual after ``T`` shared passes."""
        hist_mask = hist_mask.to(torch.bool)
        hist = hist * hist_mask.unsqueeze(-1).to(hist.dtype)  # padded vectors never leak
        score = self.prior_score(prior)
        if self.config.direct:
            qm = self.q_match(query)
            score = score + self.direct_gate * torch.einsum("bd,bkd->bk", qm, cands)
        # pass 0: candidate states from item vectors and the prior scores
        c = self.cand_in(cands)
        if self.prior_in is not None:
            c = c + self.prior_in(prior.to(c.dtype))
        # memory = [instruction; history], history tagged by recency (0 = most recent)
        recency = hist_mask.flip(1).long().cumsum(1).flip(1) - 1
        recency = recency.clamp(0, self.config.max_history - 1)
        h = self.hist_in(hist) + self.recency(recency)
        m = torch.cat([self.query_in(query).unsqueeze(1), h], dim=1)
        m_pad = torch.cat([hist_mask.new_zeros(hist_mask.shape[0], 1), ~hist_mask], dim=1)
        for _ in range(self.config.T):  # recurrence: the same weights every pass
            c, m = self.block(c, m, m_pad)
        return score + self.out(self.out_norm(c)).squeeze(-1)
