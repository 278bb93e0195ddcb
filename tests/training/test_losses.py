"""Ranking, pointwise and feedback losses."""

from __future__ import annotations

import math

import pytest
import torch

from instructrec.training.losses import (
    bpr_loss,
    feedback_loss,
    listwise_bpr,
    listwise_ce,
    pad_scores,
    yesno_bce,
)


def test_listwise_ce_matches_cross_entropy_and_ignores_padding():
    s = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    t = torch.tensor([0, 1])
    assert torch.isclose(listwise_ce(s, t), torch.nn.functional.cross_entropy(s, t))
    ragged = [torch.tensor([2.0, 0.0]), torch.tensor([0.5, 1.5, 0.0])]
    expected = (
        torch.nn.functional.cross_entropy(s[:1, :2], t[:1])
        + torch.nn.functional.cross_entropy(s[1:], t[1:])
    ) / 2
    assert torch.isclose(listwise_ce(ragged, t), expected)


def test_listwise_ce_ignores_negative_targets_and_has_gradient():
    s = torch.zeros(2, 4, requires_grad=True)
    loss = listwise_ce(s, torch.tensor([-1, 2]))
    assert math.isclose(loss.item(), math.log(4), rel_tol=1e-6)
    loss.backward()
    assert s.grad[0].abs().sum() == 0 and s.grad[1, 2] < 0
    assert listwise_ce(s, torch.tensor([-1, -1])).item() == 0.0


def test_pad_scores_mask():
    s, m = pad_scores([torch.ones(1), torch.ones(3)])
    assert s.shape == (2, 3) and m.tolist() == [[True, False, False], [True, True, True]]


def test_bpr_losses():
    assert bpr_loss(torch.tensor([5.0]), torch.tensor([-5.0])) < 1e-3
    assert math.isclose(
        bpr_loss(torch.zeros(3), torch.zeros(3, 4)).item(), math.log(2), rel_tol=1e-6
    )
    s = torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 9.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    good = listwise_bpr(s, torch.tensor([0, 0]), m)  # padded 9.0 must not count
    assert good < 0.3


def test_yesno_bce():
    logits = torch.tensor([4.0, -4.0])
    assert yesno_bce(logits, torch.tensor([1, 0])) < yesno_bce(logits, torch.tensor([0, 1]))


def test_feedback_loss_combines_ranking_and_satisfaction():
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    pred = torch.tensor([0.5, 0.2], requires_grad=True)
    obs = torch.tensor([1.0, float("nan")])
    out = feedback_loss(s, torch.tensor([0, -1]), pred, obs, lam=2.0)
    rank = torch.nn.functional.cross_entropy(s[:1], torch.tensor([0]))
    assert torch.isclose(out["rank_loss"], rank)
    assert torch.isclose(out["sat_loss"], torch.tensor(0.25))
    assert torch.isclose(out["loss"], rank + 2.0 * 0.25)
    out["loss"].backward()
    assert pred.grad[1] == 0 and pred.grad[0] != 0  # NaN observation gives no gradient
    only_rank = feedback_loss(s, torch.tensor([0, 1]))
    assert torch.isclose(only_rank["loss"], only_rank["rank_loss"])
    with pytest.raises(ValueError):
        feedback_loss(s, torch.tensor([0, 1]), ranking="pointwise")
