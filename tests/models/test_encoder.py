"""Encoder reranker: head interface, scorer behaviour, save/load, and that it can learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instructrec.models.base import RerankExample
from instructrec.models.encoder_config import EncoderConfig, pad_histories, zscore
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.models.heads import LinearHead, make_head

GENRES = ["Comedy", "Horror", "Western", "Romance"]
ITEM_TEXTS = [f"Movie {j} (199{j % 10}) - {GENRES[j % 4]}" for j in range(40)]


@pytest.fixture(scope="module")
def scorer() -> EncoderScorer:
    torch.manual_seed(0)
    return EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=2, lora_r=4))


def _examples(n: int = 3, k: int = 6) -> list[RerankExample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        ids = rng.choice(40, size=k, replace=False)
        out.append(
            RerankExample(
                instruction=["something funny", "a scary film", "cowboys"][i % 3],
                candidate_texts=[ITEM_TEXTS[j] for j in ids],
                candidate_ids=ids,
                prior=rng.normal(size=(k, 2)),
                history_ids=ids[:2],
            )
        )
    return out


def test_head_interface_shapes():
    head = make_head("linear", 8, 3)
    assert isinstance(head, LinearHead)
    q, c = torch.randn(2, 8), torch.randn(2, 5, 8)
    h, m = torch.randn(2, 4, 8), torch.tensor([[True] * 4, [False, False, True, True]])
    s = head(q, c, h, m, torch.randn(2, 5, 3))
    assert s.shape == (2, 5)
    with pytest.raises(ValueError, match="unknown head"):
        make_head("nope", 8, 3)


def test_zscore_and_padding():
    p = np.array([[[1.0], [2.0], [3.0]]])
    z = zscore(p)
    assert np.allclose(z.mean(axis=1), 0) and np.allclose(z.std(axis=1), 1)
    assert np.allclose(zscore(np.ones((1, 3, 1))), 0)  # constant list: no signal, no NaN
    ph = pad_histories([np.array([1, 2, 3]), np.array([], dtype=np.int64)], 2)
    assert ph.tolist() == [[2, 3], [-1, -1]]


def test_scores_shape_determinism_and_batch_invariance(scorer):
    exs = _examples()
    a = scorer.score(exs)
    b = scorer.score(exs)
    assert [len(x) for x in a] == [6, 6, 6]
    assert all(x.dtype == np.float32 for x in a)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    single = [scorer.score([e])[0] for e in exs]
    for x, y in zip(a, single, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def test_candidate_order_is_equivariant(scorer):
    ex = _examples(1)[0]
    perm = np.array([5, 3, 1, 0, 2, 4])
    ex2 = RerankExample(
        ex.instruction,
        [ex.candidate_texts[i] for i in perm],
        ex.candidate_ids[perm],
        ex.prior[perm],
        ex.history_ids,
    )
    s1, s2 = scorer.score([ex])[0], scorer.score([ex2])[0]
    np.testing.assert_allclose(s1[perm], s2, rtol=1e-5, atol=1e-5)


def test_unknown_items_are_encoded_from_text(scorer):
    ex = RerankExample("a horror film", ["A terrifying horror movie", "A light romantic comedy"])
    s = scorer.score([ex])[0]
    assert s.shape == (2,) and s[0] > s[1]


def test_instruction_matters(scorer):
    ids = np.array([0, 1])  # Comedy, Horror
    texts = [ITEM_TEXTS[0], ITEM_TEXTS[1]]
    funny = scorer.score([RerankExample("a comedy", texts, ids)])[0]
    scary = scorer.score([RerankExample("a horror movie", texts, ids)])[0]
    assert funny[0] - funny[1] > scary[0] - scary[1]


def test_save_load_round_trip(scorer, tmp_path):
    exs = _examples()
    with torch.no_grad():
        for p in scorer.model.head.parameters():
            p.add_(0.01)  # make the weights differ from a fresh build
    scorer.save(tmp_path / "enc")
    loaded = EncoderScorer.load(tmp_path / "enc")
    for x, y in zip(scorer.score(exs), loaded.score(exs), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_learns_a_planted_code_word(tmp_path):
    """'blue' means Comedy and 'red' means Horror: nothing MiniLM knows. A few steps of the
    shared engine (LoRA + head, listwise CE) must teach it."""
    from instructrec.training.config import TrainConfig
    from instructrec.training.loop import fit
    from instructrec.training.losses import listwise_ce

    torch.manual_seed(0)
    sc = EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=0, lora_r=4, max_query_len=16))
    rng = np.random.default_rng(0)

    def make(n):
        """4 candidates: one Comedy, one Horror, one Western, one Romance, shuffled."""
        word = rng.integers(2, size=n)
        c = np.stack(
            [rng.permutation([rng.choice(np.arange(g, 40, 4)) for g in range(4)]) for _ in range(n)]
        )
        label = np.argmax(c % 4 == word[:, None], axis=1)  # 0 -> the Comedy, 1 -> the Horror
        texts = [f"something {'blue' if w == 0 else 'red'} please" for w in word]
        return texts, c, label

    def batch(texts, c, label):
        tok = sc.tokenize(texts)
        return {
            "input_ids": tok["input_ids"],
            "attention_mask": tok["attention_mask"],
            "cands": torch.as_tensor(c),
            "hist": torch.full((len(c), 1), -1),
            "prior": torch.zeros(len(c), 4, 0),
            "label": torch.as_tensor(label),
        }

    def accuracy(model):
        t, c, y = test
        b = batch(t, c, y)
        s = model(b["input_ids"], b["attention_mask"], b["cands"], b["hist"], b["prior"])
        return float((s.argmax(1).numpy() == y).mean())

    train = make(256)
    test = make(128)
    data = list(range(256))

    def collate(rows):
        return batch([train[0][i] for i in rows], train[1][rows], train[2][rows])

    def loss_fn(m, b):
        s = m(b["input_ids"], b["attention_mask"], b["cands"], b["hist"], b["prior"])
        return listwise_ce(s, b["label"])

    before = accuracy(sc.model.eval())
    cfg = TrainConfig(
        output_dir=str(tmp_path / "run"),
        lr=3e-3,
        epochs=3,
        batch_size=32,
        eval_every=1000,
        progress=False,
        device="cpu",
    )
    fit(sc.model, data, collate, loss_fn, cfg)
    after = accuracy(sc.model.eval())
    assert after >= 0.9 > before


def test_inference_item_vectors_follow_the_weights():
    """At inference the projected CF/attribute terms come from tables computed once; they
    equal the per-request projection and are recomputed whenever the weights change."""
    rng = np.random.default_rng(1)
    torch.manual_seed(0)
    s = EncoderScorer.build(
        ITEM_TEXTS,
        EncoderConfig(n_prior=2, lora_r=4, cf_dim=8),
        cf_vecs=rng.normal(size=(40, 8)).astype(np.float32),
        attr_vecs=rng.normal(size=(40, 5)).astype(np.float32),
    )
    m = s.model
    with torch.no_grad():
        m.cf_proj.weight.normal_()
        m.attr_proj.weight.normal_()
    ids = torch.tensor([[3, 7, -1], [0, 39, 12]])
    cold = torch.tensor([[False, True, False], [True, False, False]])

    def both():
        with torch.enable_grad():
            trained = m.item_vectors(ids, cold).detach()
        with torch.no_grad():
            served = m.item_vectors(ids, cold)
        return trained, served

    trained, served = both()
    torch.testing.assert_close(served, trained, rtol=1e-5, atol=1e-6)
    assert served[0, 2].abs().sum() == 0  # id -1: zeros
    with torch.no_grad():  # a cold item keeps its text and attribute terms, not its CF term
        torch.testing.assert_close(served[0, 1], m.item_vecs[7] + m.attr_proj(m.attr_vecs[7]))
    opt = torch.optim.SGD([m.cf_proj.weight, m.attr_proj.weight], lr=1.0)
    m.item_vectors(ids).sum().backward()  # a training step changes the weights in place
    opt.step()
    after, served_after = both()
    torch.testing.assert_close(served_after, after, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(served_after, served)
    state = {k: v.clone() for k, v in m.state_dict().items()}
    state["cf_proj.weight"] = torch.zeros_like(state["cf_proj.weight"])
    m.load_state_dict(state)  # loading weights (a checkpoint) is seen too
    loaded, served_loaded = both()
    torch.testing.assert_close(served_loaded, loaded, rtol=1e-5, atol=1e-6)
    m.item_vecs = m.item_vecs.flip(0).contiguous()  # another catalogue's cached vectors
    swapped, served_swapped = both()
    torch.testing.assert_close(served_swapped, swapped, rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the table path without a cold mask: the same vectors
        plain = m.item_vectors(ids)
    with torch.enable_grad():
        torch.testing.assert_close(plain, m.item_vectors(ids).detach(), rtol=1e-5, atol=1e-6)


def test_lora_layers_count_from_the_top_and_stop_the_backward():
    import re

    from instructrec.models.lora import resolve_layers

    sc = EncoderScorer.build(ITEM_TEXTS, EncoderConfig(n_prior=0, lora_r=4))  # default: top 3
    n = sc.model.tower.config.num_hidden_layers
    adapted = {
        int(re.search(r"layer\.(\d+)\.", name).group(1))
        for name, p in sc.model.named_parameters()
        if "lora_" in name
    }
    assert adapted == set(range(n - 3, n))
    assert resolve_layers(sc.model.tower, [0, -1]) == [0, n - 1]
    assert resolve_layers(sc.model.tower, None) is None
    with pytest.raises(ValueError, match=f"layers 0..{n - 1}"):
        resolve_layers(sc.model.tower, [n])
    # one training step: activations below the lowest adapted layer carry no gradient
    seen = []
    hook = sc.model.tower.base_model.model.encoder.layer[n - 4].register_full_backward_hook(
        lambda *a: seen.append(1)
    )
    batch = sc.tokenize(["a comedy please", "something sad"])
    sc.model.train()
    sc.model.encode_query(batch["input_ids"], batch["attention_mask"]).sum().backward()
    hook.remove()
    assert seen == []
    grads = [p.grad for name, p in sc.model.named_parameters() if "lora_B" in name]
    assert grads and all(g is not None for g in grads)


def test_encode_queries_sorts_by_length_and_returns_rows_in_order(scorer):
    from instructrec.models.scoring import encode_queries

    texts = ["a", "a much longer request for a quiet romantic film from the fifties", "comedy"]
    texts = texts * 3 + ["short one"]
    scorer.model.eval()
    with torch.no_grad():
        got = encode_queries(scorer.model, scorer.tokenizer, texts, batch_size=4)
        for i, t in enumerate(texts):  # each alone: no padding at all
            tok = scorer.tokenize([t])
            one = scorer.model.encode_query(tok["input_ids"], tok["attention_mask"])
            torch.testing.assert_close(got[i], one[0], atol=1e-5, rtol=1e-4)
    assert encode_queries(scorer.model, scorer.tokenizer, []).shape == (0, got.shape[1])
