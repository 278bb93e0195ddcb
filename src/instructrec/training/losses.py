"""Losses for instruction-following rerankers.

- `listwise_ce`: softmax cross-entropy over a candidate list with the target's index
  (ListNet-style top-1 / the "sampled softmax" of LlamaRec's verbaliser, Yue et al. 2023).
- `bpr_loss`: pairwise Bayesian personalised ranking, -log sigmoid(s+ - s-) (Rendle et al. 2009).
- `yesno_bce`: binary cross-entropy on a Yes logit (InstructRec's pointwise task T0).
- `feedback_loss`: a ranking loss on what the user chose plus lambda * MSE between a
  satisfaction head and the satisfaction the user reported; used by feedback tuning.

Scores may be a padded ``[B, C]`` tensor with a boolean ``mask`` (True = real candidate) or a
list of 1-D tensors of varying length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_scores(
    scores: list[torch.Tensor] | torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack a ragged list of 1-D score tensors into ``[B, C]`` plus a validity mask."""
    if isinstance(scores, torch.Tensor):
        if mask is None:
            mask = torch.ones_like(scores, dtype=torch.bool)
        return scores, mask.bool()
    width = max(int(s.numel()) for s in scores)
    out = scores[0].new_full((len(scores), width), 0.0)
    m = torch.zeros(len(scores), width, dtype=torch.bool, device=out.device)
    for i, s in enumerate(scores):
        out[i, : s.numel()] = s
        m[i, : s.numel()] = True
    return out, m


def listwise_ce(
    scores: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cross-entropy of softmax(scores) against the target index per row.

    Rows whose target is negative are ignored (they contribute nothing; an all-ignored batch
    gives 0 with a gradient path). Padded positions (mask False) get no probability.
    """
    s, m = pad_scores(scores, mask)
    s = s.float().masked_fill(~m, torch.finfo(torch.float32).min)
    target = target.to(s.device).long()
    valid = target >= 0
    per_row = F.cross_entropy(s, target.clamp(min=0), reduction="none") * valid
    if reduction == "none":
        return per_row
    return per_row.sum() / valid.sum().clamp(min=1)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """Mean of -log sigmoid(pos - neg); ``neg`` may have an extra trailing dim of negatives."""
    if neg.dim() == pos.dim() + 1:
        pos = pos.unsqueeze(-1)
    return -F.logsigmoid(pos.float() - neg.float()).mean()


def listwise_bpr(
    scores: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """BPR of the target against every other real candidate of its list."""
    s, m = pad_scores(scores, mask)
    s = s.float()
    target = target.to(s.device).long()
    pos = s.gather(1, target.clamp(min=0).unsqueeze(1))
    others = m.clone()
    others[torch.arange(len(s)), target.clamp(min=0)] = False
    others &= (target >= 0).unsqueeze(1)
    terms = -F.logsigmoid(pos - s) * others
    return terms.sum() / others.sum().clamp(min=1)


def yesno_bce(yes_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits; ``labels`` in {0, 1} (floats allowed)."""
    return F.binary_cross_entropy_with_logits(
        yes_logits.float().reshape(-1), labels.to(yes_logits.device).float().reshape(-1)
    )


def feedback_loss(
    scores: list[torch.Tensor] | torch.Tensor,
    target: torch.Tensor,
    satisfaction_pred: torch.Tensor | None = None,
    satisfaction_obs: torch.Tensor | None = None,
    *,
    lam: float = 0.5,
    mask: torch.Tensor | None = None,
    ranking: str = "listwise",
) -> dict[str, torch.Tensor]:
    """Ranking loss on the chosen candidate + ``lam`` * MSE(satisfaction head, observed).

    ``target`` is the index of the candidate the user chose (-1: no choice, the row only
    trains the satisfaction head). ``satisfaction_obs`` may contain NaN for rows without a
    reported satisfaction. ``ranking`` is "listwise" (softmax CE) or "bpr". Returns a dict with
    ``loss`` (what to backpropagate), ``rank_loss`` and ``sat_loss``.
    """
    if ranking == "listwise":
        rank = listwise_ce(scores, target, mask)
    elif ranking == "bpr":
        rank = listwise_bpr(scores, target, mask)
    else:
        raise ValueError(f"ranking must be 'listwise' or 'bpr', got {ranking!r}")
    if satisfaction_pred is None or satisfaction_obs is None:
        sat = rank.new_zeros(())
    else:
        pred = satisfaction_pred.float().reshape(-1)
        obs = satisfaction_obs.to(pred.device).float().reshape(-1)
        seen = ~torch.isnan(obs)
        diff = torch.where(seen, pred - torch.nan_to_num(obs), torch.zeros_like(pred))
        sat = (diff**2).sum() / seen.sum().clamp(min=1)
    return {"loss": rank + lam * sat, "rank_loss": rank.detach(), "sat_loss": sat.detach()}
