"""The NumPy runtime (`np_ops`, `models.np_bert`, `models.np_encoder`, SASRec's NumPy
scoring): the same numbers as the torch modules to float32 rounding, the same answers from a
saved recommender, and `instructrec recommend` without importing torch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from instructrec.cli import main
from instructrec.data import DataError, make_split
from instructrec.models.bert_files import default_backbone
from instructrec.models.bert_lite import load_lite
from instructrec.models.encoder_config import EncoderConfig
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.models.np_bert import load_np_bert
from instructrec.models.np_encoder import NumpyEncoderScorer, unsupported
from instructrec.np_ops import erf, gelu, layer_norm
from instructrec.recommender import Recommender
from instructrec.recommender_files import resolve_runtime
from instructrec.retrieval import Retriever, SASRec
from instructrec.testing.datasets import synthetic_dataset
from instructrec.testing.shipped import shipped_like

TEXTS = [
    "a light comedy from the 90s",
    "word " * 80,  # longer than max_length: truncated
    "",
    "naïve café — Ünïcode émigré, [brackets] & 123",
]
ITEM_TEXTS = [f"Movie {j} (199{j % 10}) - {['Comedy', 'Horror'][j % 2]}" for j in range(30)]
BLOCK_TORCH = (
    "import sys\n"
    "class Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'transformers', 'peft'):\n"
    "            raise ImportError('blocked: ' + name)\n"
    "sys.meta_path.insert(0, Block())\n"
)


def test_kernels_match_torch():
    x = np.linspace(-7, 7, 20001)
    assert np.abs(erf(x) - np.array([math.erf(v) for v in x])).max() < 2e-7
    xf = np.random.default_rng(0).normal(scale=3, size=(64, 33)).astype(np.float32)
    t = torch.from_numpy(xf)
    assert np.abs(gelu(xf) - torch.nn.functional.gelu(t).numpy()).max() < 1e-6
    assert gelu(xf).dtype == np.float32
    w, b = np.float32(1.5) * np.ones(33, np.float32), np.full(33, 0.25, np.float32)
    ref = torch.nn.functional.layer_norm(t, (33,), torch.from_numpy(w), torch.from_numpy(b), 1e-5)
    assert np.abs(layer_norm(xf, w, b, 1e-5) - ref.numpy()).max() < 1e-5


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A scorer with non-zero LoRA weights, projections and head, saved; cold channel on, and
    a cold weight on prior channel 1 (``cold_content``)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = EncoderConfig(
        n_prior=3,
        lora_r=4,
        lora_alpha=8,
        lora_layers=[0, 3, 5],
        cf_dim=8,
        cold_channel=True,
        head_options={"cold_content": [1]},
    )
    sc = EncoderScorer.build(
        ITEM_TEXTS,
        cfg,
        cf_vecs=rng.normal(size=(30, 8)).astype(np.float32),
        attr_vecs=rng.integers(0, 2, size=(30, 5)).astype(np.float32),
    )
    with torch.no_grad():
        for p in sc.model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)  # nothing at its initialisation
    d = tmp_path_factory.mktemp("enc") / "encoder"
    sc.save(d)
    return EncoderScorer.load(d), d


def test_np_bert_gives_the_torch_towers_vectors():
    ltok, lite = load_lite(default_backbone())
    ntok, nb = load_np_bert(default_backbone())
    for max_len in (12, 48):
        a = ltok(TEXTS, max_length=max_len)
        b = ntok(TEXTS, max_length=max_len, return_tensors="np")
        assert np.array_equal(a["input_ids"].numpy(), b["input_ids"])
        with torch.no_grad():
            h1 = lite(a["input_ids"], a["attention_mask"]).last_hidden_state.numpy()
        h2 = nb(b["input_ids"], b["attention_mask"])
        real = b["attention_mask"].astype(bool)
        assert np.abs(h1 - h2)[real].max() < 2e-5


def test_numpy_scorer_scores_as_the_torch_scorer(saved):
    sc, d = saved
    ns = NumpyEncoderScorer.load(d)
    rng = np.random.default_rng(3)
    n, k = 6, 7
    cands = rng.integers(0, 30, size=(n, k))
    hist = np.where(rng.random((n, 20)) < 0.3, rng.integers(0, 30, size=(n, 20)), -1)
    prior = rng.normal(size=(n, k, 3)).astype(np.float32)
    prior[..., -1] = rng.random((n, k)) < 0.4  # the cold channel: some candidates cold
    texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
    a = sc.score_arrays(texts, cands, hist, prior)
    b = ns.score_arrays(texts, cands, hist, prior)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)
    assert np.abs(a).max() > 0.1  # not trivially equal
    assert abs(float(sc.model.head.cold_w.detach()[0])) > 1e-3  # the cold weight is read by both
    ns.model.cold_w = np.zeros_like(ns.model.cold_w)
    off = ns.score_arrays(texts, cands, hist, prior)
    cold = prior[..., -1] > 0.5
    np.testing.assert_allclose(a[~cold], off[~cold], rtol=1e-5, atol=2e-5)
    assert np.abs(a[cold] - off[cold]).max() > 1e-4
    # the dense candidates' scores: <W q, v_i> over every item
    model = sc.model
    with torch.no_grad():
        tok = sc.tokenize(texts)
        q = model.head.q_proj(model.encode_query(tok["input_ids"], tok["attention_mask"]))
        ref = (q @ model.item_vectors(torch.arange(30)).T).numpy()
    np.testing.assert_allclose(ns.instruction_item_scores(texts), ref, rtol=1e-5, atol=2e-5)


def test_sasrec_numpy_scores_as_torch(tmp_path):
    ds = synthetic_dataset(n_users=30, n_items=40, per_user=12, seed=1)
    split = make_split(ds, seed=0)
    sas = SASRec(max_epochs=2, hidden=16, inner=32, n_heads=2, max_len=8, dropout=0.2)
    sas.fit(split.train, ds.n_users, ds.n_items)
    sas.save(tmp_path / "sas")
    fast = Retriever.load(tmp_path / "sas", runtime="numpy")
    assert fast.net is None and fast.runtime == "numpy"
    users = np.arange(5)
    hists = [np.array([], np.int64), np.array([3]), np.arange(20) % 40, np.array([5, 1, 2]), None]
    hists[-1] = sas.train_items(users[-1:])[0]
    np.testing.assert_allclose(
        fast.score_all(users, hists), sas.score_all(users, hists), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(fast.score_all(users), sas.score_all(users), rtol=1e-5, atol=1e-5)
    assert np.array_equal(fast.item_embeddings(), sas.item_embeddings())
    fast.save(tmp_path / "again")  # a NumPy-loaded model saves the same weights
    back = Retriever.load(tmp_path / "again")
    assert back.net is not None
    np.testing.assert_array_equal(back.score_all(users), sas.score_all(users))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return shipped_like().save(tmp_path_factory.mktemp("run") / "model")


REQUESTS = [
    {"user": "u1", "instruction": "a horror movie"},
    {"user": "u3", "instruction": None},
    {"user": "u5", "instruction": "something funny, not a western"},
    {"history": ["i2", "i7"], "instruction": "a comedy"},
    {"instruction": "a drama"},
    {"user": "u4", "instruction": "a comedy", "candidates": ["i1", "i2", "i3", "i9"]},
]


def test_recommender_answers_alike_in_both_runtimes(run_dir):
    torch_rec = Recommender.load(run_dir, inference_only=True)
    np_rec = Recommender.load(run_dir, inference_only=True, runtime="numpy")
    assert (torch_rec.runtime, np_rec.runtime) == ("torch", "numpy")
    assert Recommender.load(run_dir, runtime="auto").runtime == "numpy"
    assert type(np_rec.reranker.scorer).__name__ == "NumpyEncoderScorer"
    for req in REQUESTS:
        a, b = torch_rec.answer(n=5, **req), np_rec.answer(n=5, **req)
        assert [r.item_id for r in a.items] == [r.item_id for r in b.items], req
        np.testing.assert_allclose(
            [r.score for r in a.items], [r.score for r in b.items], atol=1e-4
        )
        assert [r.reason for r in a.items] == [r.reason for r in b.items]
    many = np_rec.answer_many([dict(n=5, **r) for r in REQUESTS])
    for req, ans in zip(REQUESTS, many, strict=True):
        assert [r.item_id for r in ans.items] == [
            r.item_id for r in torch_rec.answer(n=5, **req).items
        ]


def test_recommend_cli_runs_without_torch(run_dir):
    args = ["-q", "recommend", "--model", str(run_dir), "--user", "u2", "-n", "4", "a horror movie"]
    code = BLOCK_TORCH + (
        f"from instructrec.cli import main\nsys.argv = ['instructrec', *{args!r}]\nmain()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    ref = CliRunner().invoke(main, [*args[:-1], "--runtime", "torch", args[-1]])
    assert ref.exit_code == 0, ref.output
    assert out.stdout == ref.output and out.stdout.count("matches Horror") >= 1
    bad = CliRunner().invoke(main, [*args[:-1], "--runtime", "jax", args[-1]])
    assert bad.exit_code == 2 and "--runtime" in bad.output


def test_runs_the_numpy_runtime_cannot_score(run_dir, tmp_path):
    assert unsupported(EncoderConfig()) is None
    assert "head 'rr'" in unsupported(EncoderConfig(head="rr"))
    assert "LoRA on ['dense']" in unsupported(EncoderConfig(lora_targets=["query", "dense"]))
    assert "not a local BERT" in unsupported(EncoderConfig(backbone=str(tmp_path)))
    import shutil

    copy = tmp_path / "rr"
    shutil.copytree(run_dir, copy)
    enc = copy / "reranker" / "encoder" / "encoder.json"
    meta = json.loads(enc.read_text())
    meta["config"]["head"] = "rr"
    enc.write_text(json.dumps(meta))
    meta_rec = json.loads((copy / "recommender.json").read_text())
    assert resolve_runtime(copy, meta_rec, "auto") == "torch"
    with pytest.raises(DataError, match="NumPy runtime cannot score this run: head 'rr'"):
        Recommender.load(copy, runtime="numpy")
    with pytest.raises(DataError, match="unknown runtime 'jax'"):
        Recommender.load(run_dir, runtime="jax")
    out = CliRunner().invoke(
        main, ["recommend", "--model", str(copy), "--runtime", "numpy", "--user", "u1"]
    )
    assert out.exit_code == 2 and "head 'rr'" in out.output and "Traceback" not in out.output


@pytest.mark.parametrize(
    "cfg",
    [
        EncoderConfig(n_prior=2, lora_r=0, cf_dim=0, attributes=False),  # frozen tower, text only
        EncoderConfig(
            n_prior=0, lora_r=2, lora_targets=["query", "key", "value"], lora_layers=None
        ),
    ],
    ids=["frozen-text-only", "no-priors-qkv-all-layers"],
)
def test_numpy_scorer_other_shapes(cfg, tmp_path):
    torch.manual_seed(1)
    sc = EncoderScorer.build(ITEM_TEXTS, cfg)
    with torch.no_grad():
        for p in sc.model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    sc.save(tmp_path / "enc")
    ns = NumpyEncoderScorer.load(tmp_path / "enc")
    rng = np.random.default_rng(5)
    cands = rng.integers(0, 30, size=(4, 6))
    hist = np.where(rng.random((4, 20)) < 0.5, rng.integers(0, 30, size=(4, 20)), -1)
    prior = rng.normal(size=(4, 6, cfg.n_prior)).astype(np.float32)
    texts = TEXTS
    ref = EncoderScorer.load(tmp_path / "enc").score_arrays(texts, cands, hist, prior)
    np.testing.assert_allclose(ns.score_arrays(texts, cands, hist, prior), ref, atol=2e-5)
