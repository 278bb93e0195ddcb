"""Tests of the reciprocating recurrent head (models/rr_head.py): weight tying across passes,
permutation equivariance, history masking, zero-init = prior ordering, gradients through
every pass, and that it can learn what the prior does not carry."""

from __future__ import annotations

import pytest
import torch

from instructrec.data.errors import DataError
from instructrec.models.heads import make_head
from instructrec.models.rr_head import RRHead, RRHeadConfig
from instructrec.testing.scorer import ITEM_TEXTS, ScorerContract

D, P = 16, 2


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids oversubscribing the shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs(B=3, K=7, H=5, seed=0, n_prior=P):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(B, D, generator=g)
    c = torch.randn(B, K, D, generator=g)
    h = torch.randn(B, H, D, generator=g)
    mask = torch.ones(B, H, dtype=torch.bool)
    mask[1, :2] = False  # row 1: left padded
    mask[2, :] = False  # row 2: no history at all
    h = h * mask.unsqueeze(-1)
    prior = torch.randn(B, K, n_prior, generator=g)
    return q, c, h, mask, prior


def _head(T=2, seed=0, active=True, **kw) -> RRHead:
    """An RR head in eval mode; ``active`` randomises the zero-initialised output layer so the
    residual (and the gate of the direct term) is not zero."""
    torch.manual_seed(seed)
    head = RRHead(D, kw.pop("n_prior", P), T=T, width=32, heads=4, **kw).eval()
    if active:
        with torch.no_grad():
            head.out.weight.normal_(0.0, 1.0)
            head.out.bias.fill_(0.3)
            if head.config.direct:
                head.direct_gate.fill_(0.5)
    return head


def test_registered_and_built_from_options():
    head = make_head("rr", D, P, T=3, width=32, heads=2)
    assert isinstance(head, RRHead)
    assert (head.T, head.config.width, head.config.heads) == (3, 32, 2)
    assert RRHead(D, P, **head.options()).options() == head.options()


@pytest.mark.parametrize(
    "bad", [{"T": 0}, {"width": 30, "heads": 4}, {"dropout": 1.0}, {"depth": 3}]
)
def test_bad_options_are_rejected(bad):
    with pytest.raises(DataError, match="RR head"):
        RRHead(D, P, **bad)


def test_T_shares_parameters():
    h1, h3 = _head(T=1), _head(T=3)
    n1 = sum(p.numel() for p in h1.parameters())
    n3 = sum(p.numel() for p in h3.parameters())
    assert n1 == n3
    assert h1.state_dict().keys() == h3.state_dict().keys()
    # a T=1 checkpoint loads into a T=3 head: T only changes the number of passes
    h3.load_state_dict(h1.state_dict())
    x = _inputs()
    with torch.no_grad():
        s1, s3 = h1(*x), h3(*x)
        h3.T = 1
        s3_as_1 = h3(*x)
    assert not torch.allclose(s1, s3)
    torch.testing.assert_close(s1, s3_as_1)


def test_block_is_called_T_times():
    head = _head(T=4)
    calls = []
    head.block.register_forward_hook(lambda mod, args, out: calls.append(out[0]))
    with torch.no_grad():
        head(*_inputs())
    assert len(calls) == 4
    assert not torch.allclose(calls[0], calls[1])  # each pass reads the previous one's states


@pytest.mark.parametrize("T,prior_in", [(1, False), (3, True)])
def test_permutation_equivariant_over_candidates(T, prior_in):
    head = _head(T=T, prior_in=prior_in)
    q, c, h, mask, prior = _inputs(K=9)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        s = head(q, c, h, mask, prior)
        sp = head(q, c[:, perm], h, mask, prior[:, perm])
    torch.testing.assert_close(sp, s[:, perm], rtol=1e-5, atol=1e-5)


def test_padded_history_is_ignored():
    head = _head(T=3)
    q, c, h, mask, prior = _inputs()
    with torch.no_grad():
        s = head(q, c, h, mask, prior)
        garbage = h + 100.0 * (~mask).unsqueeze(-1)  # change only the padded slots
        s_garbage = head(q, c, garbage, mask, prior)
        # row 1 re-padded on the right instead of the left: same history, same scores
        h_right, m_right = h.clone(), mask.clone()
        h_right[1] = torch.cat([h[1, 2:], h[1, :2]])
        m_right[1] = torch.cat([mask[1, 2:], mask[1, :2]])
        s_right = head(q, c, h_right, m_right, prior)
        # row 0 alone with its history trimmed to 3 items == the same 3 items padded to 5
        trimmed = head(q[:1], c[:1], h[:1, 2:], mask[:1, 2:], prior[:1])
        padded_h = torch.cat([torch.zeros(1, 2, D), h[:1, 2:]], dim=1)
        padded_m = torch.cat([torch.zeros(1, 2, dtype=torch.bool), mask[:1, 2:]], dim=1)
        padded = head(q[:1], c[:1], padded_h, padded_m, prior[:1])
    torch.testing.assert_close(s_garbage, s)
    torch.testing.assert_close(s_right, s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(padded, trimmed, rtol=1e-5, atol=1e-5)
    # and the history does matter when it is real
    with torch.no_grad():
        s_other = head(q, c, torch.randn_like(h) * mask.unsqueeze(-1), mask, prior)
    assert not torch.allclose(s_other[0], s[0])


@pytest.mark.parametrize("n_prior,prior_in", [(1, False), (P, False), (P, True)])
def test_zero_init_returns_the_prior_ordering(n_prior, prior_in):
    torch.manual_seed(0)
    head = RRHead(D, n_prior, T=3, width=32, heads=4, prior_in=prior_in)
    q, c, h, mask, prior = _inputs(n_prior=n_prior, K=10)
    with torch.no_grad():
        s = head(q, c, h, mask, prior)
    expected = prior.sum(-1)  # prior weights start at 1
    torch.testing.assert_close(s, expected)
    assert torch.equal(s.argsort(dim=1, descending=True), expected.argsort(dim=1, descending=True))


def test_direct_init_starts_exactly_at_the_plain_head():
    """direct_init=q: RR head at init == LinearHead(q_init=q) at init, also after the same
    prior warm start (plain + a zero RR residual)."""
    from instructrec.models.heads import LinearHead

    torch.manual_seed(0)
    rr = RRHead(D, P, T=2, width=32, heads=4, direct_init=5.0)
    plain = LinearHead(D, P, q_init=5.0)
    for head in (rr, plain):
        head.init_prior_weights(torch.tensor([0.7, -0.2]))
    x = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(rr(*x), plain(*x))


def test_by_default_the_prior_enters_only_the_monotone_start():
    """prior_in=False (default): the learned part of the score ignores the prior, so the prior
    can only shift scores linearly (no 'highest prior = hard negative' shortcut); with
    prior_in=True the residual reads it."""
    q, c, h, mask, prior = _inputs()
    other = torch.randn_like(prior)
    for prior_in, depends in ((False, False), (True, True)):
        head = _head(T=2, prior_in=prior_in)
        with torch.no_grad():
            r1 = head(q, c, h, mask, prior) - head.prior_score(prior)
            r2 = head(q, c, h, mask, other) - head.prior_score(other)
        assert torch.allclose(r1, r2, atol=1e-5) != depends


def test_zero_init_can_leave_the_prior():
    """At the zero point the gate, prior weights and output layer receive gradient."""
    head = RRHead(D, P, T=2, width=32, heads=4).train()
    q, c, h, mask, prior = _inputs()
    loss = torch.nn.functional.cross_entropy(head(q, c, h, mask, prior), torch.tensor([1, 2, 3]))
    loss.backward()
    for p in (head.out.weight, head.direct_gate, head.prior_w):
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.parametrize("T", [1, 3])
def test_gradient_reaches_the_block_from_every_pass(T):
    head = _head(T=T, prior_in=True).train()
    states = []

    def keep(mod, args, out):
        out[0].retain_grad()
        states.append(out[0])

    hook = head.block.register_forward_hook(keep)
    q, c, h, mask, prior = _inputs()
    s = head(q, c, h, mask, prior)
    torch.nn.functional.cross_entropy(s, torch.tensor([0, 4, 6])).backward()
    assert len(states) == T
    for t, st in enumerate(states):
        assert st.grad is not None and st.grad.abs().sum() > 0, f"no gradient at pass {t + 1}"
    for name, p in head.block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # with T=3, the shared block's gradient sums contributions of all passes: cutting the
    # graph before the last pass changes it
    if T > 1:
        full = {n: p.grad.clone() for n, p in head.block.named_parameters()}
        hook.remove()
        head.zero_grad()
        orig = head.block.forward
        calls = [0]

        def last_only(c_, m_, pad):
            calls[0] += 1
            if calls[0] < T:
                with torch.no_grad():
                    return orig(c_, m_, pad)
            return orig(c_, m_, pad)

        head.block.forward = last_only
        torch.nn.functional.cross_entropy(
            head(q, c, h, mask, prior), torch.tensor([0, 4, 6])
        ).backward()
        head.block.forward = orig
        diff = sum((full[n] - p.grad).abs().sum() for n, p in head.block.named_parameters())
        assert diff > 1e-6


def test_no_prior_columns():
    head = _head(T=2, n_prior=0)
    q, c, h, mask, _ = _inputs()
    with torch.no_grad():
        s = head(q, c, h, mask, torch.zeros(3, 7, 0))
    assert s.shape == (3, 7) and torch.isfinite(s).all()


def test_learns_what_the_prior_does_not_carry():
    """Target: the candidate with the largest feature 0 if the user's history leans positive on
    feature 0, the smallest otherwise. The prior is noise and the direct term is off, so only
    the reciprocating route (history and candidates together) can solve it."""
    torch.manual_seed(0)
    head = RRHead(D, 1, T=2, width=16, heads=2, direct=False)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)  # 1e-2 for 100 steps is seed-fragile

    def batch(n, seed):
        g = torch.Generator().manual_seed(seed)
        c = torch.randn(n, 8, D, generator=g)
        h = torch.randn(n, 4, D, generator=g)
        y = (c[:, :, 0] * torch.sign(h[:, :, 0].mean(1, keepdim=True))).argmax(1)
        mask = torch.ones(n, 4, dtype=torch.bool)
        return torch.zeros(n, D), c, h, mask, torch.randn(n, 8, 1, generator=g), y

    *xt, yt = batch(256, 12345)

    def acc():
        with torch.no_grad():
            return (head.eval()(*xt).argmax(1) == yt).float().mean().item()

    before = acc()
    for step in range(300):
        *x, y = batch(32, step)
        loss = torch.nn.functional.cross_entropy(head.train()(*x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = acc()
    assert before < 0.3  # the prior alone is chance (1/8)
    assert after > 0.6  # seeds 0-2 reach 0.82-0.83 at 300 steps


def test_config_dataclass_defaults_are_valid():
    cfg = RRHeadConfig()
    assert cfg.T >= 1 and cfg.width % cfg.heads == 0


# ---------------------------------------------------------------- the Scorer contract
class TestEncoderScorerWithRRHead(ScorerContract):
    """The shared Scorer suite, run on the encoder reranker configured with ``head: "rr"``."""

    _template = None

    def make_scorer(self):
        import copy

        from instructrec.models.encoder_config import EncoderConfig
        from instructrec.models.encoder_scorer import EncoderScorer

        if TestEncoderScorerWithRRHead._template is None:  # load MiniLM once per session
            torch.manual_seed(0)
            cfg = EncoderConfig(
                head="rr",
                head_options={"T": 2, "width": 32, "heads": 4},
                n_prior=1,
                lora_r=4,
                max_query_len=16,
            )
            TestEncoderScorerWithRRHead._template = EncoderScorer.build(ITEM_TEXTS, cfg)
        scorer = copy.deepcopy(TestEncoderScorerWithRRHead._template)
        with torch.no_grad():  # leave the zero point so that every part of the head is active
            scorer.model.head.out.weight.normal_(0.0, 0.1)
            scorer.model.head.direct_gate.fill_(1.0)
        scorer.permutation_equivariant = True  # no candidate positions anywhere
        return scorer

    def test_T_round_trips_through_save_load(self, tmp_path):
        from instructrec.models.encoder_scorer import EncoderScorer

        scorer = self.make_scorer()
        scorer.save(tmp_path / "s")
        loaded = EncoderScorer.load(tmp_path / "s")
        assert isinstance(loaded.model.head, RRHead)
        assert loaded.model.head.options() == scorer.model.head.options()
