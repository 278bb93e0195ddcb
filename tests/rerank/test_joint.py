"""Joint reader: packing and span pooling, order-free scoring in the parallel layout, one
tower pass per request, priors-only start, save/load round trip, and that it can learn."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from instructrec.rerank.instances import TextSide
from instructrec.rerank.joint import JointConfig, JointReranker, pack, special_ids
from instructrec.rerank.joint_fit import JointTrainConfig, fit_joint

GENRES = ["Comedy", "Horror", "Western", "Romance"]
TITLES = [f"Movie {j}" for j in range(24)]
ITEM_TEXTS = [f"Movie {j} (199{j % 10}) - {GENRES[j % 4]}" for j in range(24)]


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A tiny random BERT + byte-level BPE tokenizer saved like a checkpoint."""
    from transformers import BertConfig, BertModel

    from instructrec.testing.tiny import tiny_tokenizer

    tok = tiny_tokenizer(ITEM_TEXTS + ["Recommend a comedy movie", "the user watched"])
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        type_vocab_size=2,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("tiny_bert")
    BertModel(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


def _reranker(path, layout="parallel", lora_r=4, seed=0) -> JointReranker:
    torch.manual_seed(seed)
    text = TextSide(np.asarray(TITLES, dtype=object), "movie", "movies")
    cfg = JointConfig(
        backbone=path, lora_r=lora_r, layout=layout, n_prior=2, intent_match=False, head_dim=8
    )
    rr = JointReranker.build(ITEM_TEXTS, text, cfg, ["a", "b"])
    with torch.no_grad():  # a non-zero text head, so the text part is visible in the scores
        rr.model.text_head[2].weight.normal_()
        rr.model.prior_w.copy_(torch.tensor([0.5, -0.25]))
    rr.model.eval()
    return rr


def _request(seed=0, n=3, k=6):
    rng = np.random.default_rng(seed)
    cands = np.stack([rng.choice(len(ITEM_TEXTS), k, replace=False) for _ in range(n)])
    hists = [rng.choice(len(ITEM_TEXTS), 4, replace=False) for _ in range(n)]
    prior = rng.normal(size=(n, k, 2)).astype(np.float32)
    return cands, hists, prior


def test_pack_spans_pick_each_candidates_tokens():
    q = [[7, 8, 9], [7]]
    c = [[[10, 11], [12], [13, 14, 15]], [[16], [17, 18], [19]]]
    for layout in ("parallel", "sequential"):
        t = pack(q, c, (1, 2, 0), layout)
        for i in range(2):
            ids, span = t["input_ids"][i], t["span"][i]
            for k in range(3):
                assert ids[span == k].tolist() == c[i][k]
            assert ids[t["query_mask"][i] > 0].tolist() == q[i]
    par = pack(q, c, (1, 2, 0), "parallel")
    seg, pos = par["segment"][0], par["position_ids"][0]
    assert pos[seg == 0].tolist() == [5, 6, 7] and pos[seg == 2].tolist() == [5, 6, 7, 8]
    allowed = par["attention_mask"][0, 0] == 0
    a0, a1 = np.where(seg.numpy() == 0)[0], np.where(seg.numpy() == 1)[0]
    assert not allowed[a0][:, a1].any() and allowed[a0][:, :5].all()  # own segment + query
    assert allowed[0, : len(seg)].all()  # the query sees every candidate


def test_span_pooling_reads_only_the_candidates_tokens(tiny_bert_dir):
    rr = _reranker(tiny_bert_dir)
    cands, hists, prior = _request()
    texts = rr.queries(hists)
    batch = rr.encode(texts, cands)
    captured = {}
    handle = rr.model.tower.register_forward_hook(
        lambda m, a, kw, out: captured.update(h=out.last_hidden_state), with_kwargs=True
    )
    with torch.no_grad():
        t = rr.model.text_scores(batch, cands.shape[1])
    handle.remove()
    h, q = captured["h"], batch["query_mask"][:, :, None]
    qv = (h * q).sum(1) / q.sum(1)
    for i in range(len(cands)):
        for k in range(cands.shape[1]):
            c = h[i, batch["span"][i] == k].mean(0)
            want = rr.model.text_head(torch.cat([c, c * qv[i]]))[0]
            assert torch.allclose(t[i, k], want, atol=1e-5)


def test_parallel_layout_scores_are_permutation_equivariant(tiny_bert_dir):
    rr = _reranker(tiny_bert_dir, "parallel")
    cands, hists, prior = _request()
    base = rr.score_candidates(None, cands, hists, prior=prior)
    rng = np.random.default_rng(1)
    for _ in range(3):
        perm = rng.permutation(cands.shape[1])
        s = rr.score_candidates(None, cands[:, perm], hists, prior=prior[:, perm])
        np.testing.assert_allclose(s, base[:, perm], atol=1e-5)


def test_sequential_layout_depends_on_order(tiny_bert_dir):
    """The plain concatenation has positions: reversing the list changes the text scores
    (why training shuffles); the parallel layout above does not."""
    rr = _reranker(tiny_bert_dir, "sequential")
    cands, hists, prior = _request()
    base = rr.score_candidates(None, cands, hists, prior=prior)
    rev = rr.score_candidates(None, cands[:, ::-1], hists, prior=prior[:, ::-1])
    assert not np.allclose(rev[:, ::-1], base, atol=1e-4)


def test_one_tower_pass_per_request(tiny_bert_dir):
    rr = _reranker(tiny_bert_dir)
    cands, hists, prior = _request(n=5, k=8)
    calls = []
    handle = rr.model.tower.register_forward_pre_hook(
        lambda m, a, kw: calls.append(tuple(kw["input_ids"].shape)), with_kwargs=True
    )
    rr.score_candidates(None, cands, hists, prior=prior, batch_size=16)
    rr.score_candidates(None, cands, hists, prior=prior, batch_size=1)
    handle.remove()
    assert calls[0][0] == 5  # all 5 requests, one sequence each, in one pass
    assert [c[0] for c in calls[1:]] == [1] * 5  # batch 1: one pass per request


def test_untrained_model_is_the_priors_only_fit(tiny_bert_dir):
    rr = _reranker(tiny_bert_dir)
    with torch.no_grad():
        rr.model.text_head[2].weight.zero_()
    cands, hists, prior = _request()
    s = rr.score_candidates(None, cands, hists, prior=prior)
    feats = rr.prior_features(cands, None, prior)
    np.testing.assert_allclose(s, feats @ np.array([0.5, -0.25], np.float32), atol=1e-6)


def test_save_load_round_trips_scores_exactly(tiny_bert_dir, tmp_path):
    rr = _reranker(tiny_bert_dir)
    with torch.no_grad():  # LoRA B starts at zero: make the adapter matter
        for n, p in rr.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.1)
    cands, hists, prior = _request()
    before = rr.score_candidates(None, cands, hists, prior=prior)
    rr.save(tmp_path / "joint")
    assert not list((tmp_path / "joint").glob("*.pkl"))
    back = JointReranker.load(tmp_path / "joint")
    np.testing.assert_array_equal(back.score_candidates(None, cands, hists, prior=prior), before)
    assert back.config == rr.config


def test_load_refuses_a_folder_without_joint_json(tmp_path):
    from instructrec.data.errors import DataError

    with pytest.raises(DataError, match="joint.json"):
        JointReranker.load(tmp_path)


def test_it_learns_to_pick_the_candidate_the_query_names(tiny_bert_dir):
    """Toy task the priors cannot solve: the query names a genre, the target is the only
    candidate of that genre. Training on shuffled lists lowers the loss (from ln 5: the
    text head starts at zero, so only gradients through the backbone reading both move it)."""
    rr = _reranker(tiny_bert_dir, lora_r=4)
    with torch.no_grad():
        rr.model.text_head[2].weight.zero_()
    rng = np.random.default_rng(0)
    texts, cands, labels = [], [], []
    for _ in range(64):
        g = int(rng.integers(4))
        tgt = int(rng.choice([j for j in range(24) if j % 4 == g]))
        negs = rng.choice([j for j in range(24) if j % 4 != g], 4, replace=False)
        row = np.r_[tgt, negs]
        texts.append(f"Recommend a {GENRES[g]} movie")
        cands.append(row)
        labels.append(0)
    inst = SimpleNamespace(
        texts=texts,
        cands=np.stack(cands),
        label=np.asarray(labels),
        prior=np.zeros((64, 5, 2), np.float32),
    )
    rec = fit_joint(
        rr, inst, JointTrainConfig(lr=1e-2, epochs=6, batch_size=8, log_every=8), log=None
    )
    assert rec["steps"] == 48
    assert rec["loss_last"] < rec["loss_first"] - 0.04


def test_special_ids_fall_back_to_bos_eos(tiny_bert_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert_dir)
    cls_id, sep_id, _ = special_ids(tok)
    assert cls_id == tok.bos_token_id and sep_id == tok.eos_token_id


def test_warm_start_is_the_priors_only_fit():
    """`fit_prior_weights` with no text part is `fit_prior_mixture` (what the bi-encoder's
    head starts from), and a text part that already ranks the target lowers its need."""
    from instructrec.rerank.joint_fit import fit_prior_weights
    from instructrec.rerank.rerank_features import fit_prior_mixture

    rng = np.random.default_rng(0)
    prior = rng.normal(size=(200, 6, 2)).astype(np.float32)
    label = rng.integers(6, size=200)
    prior[np.arange(200), label, 0] += 1.5  # channel 0 carries signal, channel 1 none
    w = fit_prior_weights(np.zeros((200, 6), np.float32), prior, label)
    np.testing.assert_allclose(w, fit_prior_mixture(prior, label), atol=1e-3)
    assert w[0] > 1.0 and abs(w[1]) < 0.5
    rest = np.zeros((200, 6), np.float32)
    rest[np.arange(200), label] = 3.0
    assert fit_prior_weights(rest, prior, label)[0] < w[0]
