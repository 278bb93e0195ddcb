"""`bert_lite`: the torch-only BERT gives transformers' vectors on the shipped backbone, and an
inference-only scorer (LoRA merged) scores as the peft one does, without importing either."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from instructrec.models.base import RerankExample
from instructrec.models.bert_files import default_backbone, supports
from instructrec.models.bert_lite import load_lite
from instructrec.models.encoder_config import EncoderConfig
from instructrec.models.encoder_scorer import EncoderScorer
from instructrec.models.text_encoder import encode_texts, load_encoder

TEXTS = [
    "a light comedy from the 90s",
    "Star Wars (1977) - Action, Adventure, Sci-Fi",
    "word " * 80,  # longer than max_length: truncated
    "",
    "naïve café — Ünïcode émigré, [brackets] & 123",
]
ITEM_TEXTS = [
    f"Movie {j} (199{j % 10}) - {['Comedy', 'Horror', 'Western'][j % 3]}" for j in range(30)
]


@pytest.fixture(scope="module")
def both():
    path = default_backbone()
    return load_encoder(path), load_lite(path)


def test_shipped_backbone_is_supported():
    assert supports(default_backbone())


def test_same_tokens_and_vectors_as_transformers(both):
    (tok, model), (ltok, lite) = both
    for max_len in (16, 48):
        a = tok(TEXTS, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        b = ltok(TEXTS, padding=True, truncation=True, max_length=max_len, return_tensors="pt")
        assert torch.equal(a["input_ids"], b["input_ids"])
        assert torch.equal(a["attention_mask"], b["attention_mask"])
        with torch.no_grad():
            h1 = model(input_ids=a["input_ids"], attention_mask=a["attention_mask"])
            h2 = lite(b["input_ids"], b["attention_mask"])
        real = a["attention_mask"].bool()
        diff = (h1.last_hidden_state - h2.last_hidden_state)[real].abs().max().item()
        assert diff < 1e-5
    v1, v2 = encode_texts(tok, model, TEXTS), encode_texts(ltok, lite, TEXTS)
    assert np.abs(v1 - v2).max() < 1e-5


def _examples(known: bool = True) -> list[RerankExample]:
    rng = np.random.default_rng(1)
    out = []
    for i, text in enumerate(["something funny", "a scary film", "cowboys"]):
        ids = rng.choice(30, size=5, replace=False)
        out.append(
            RerankExample(
                instruction=text,
                candidate_texts=[ITEM_TEXTS[j] + ("" if known else " (new)") for j in ids],
                candidate_ids=ids if known else None,
                prior=rng.normal(size=(5, 2)),
                history_ids=ids[: i + 1],
            )
        )
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A scorer with non-zero LoRA weights on some layers, saved."""
    torch.manual_seed(0)
    cfg = EncoderConfig(n_prior=2, lora_r=4, lora_alpha=8, lora_layers=[0, 3, 5])
    sc = EncoderScorer.build(ITEM_TEXTS, cfg)
    with torch.no_grad():
        for name, p in sc.model.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                p.add_(torch.randn_like(p) * 0.05)  # LoRA B starts at 0: make it matter
    d = tmp_path_factory.mktemp("enc") / "encoder"
    sc.save(d)
    return sc, d


def test_inference_only_scores_like_the_peft_scorer(saved):
    sc, d = saved
    lite = EncoderScorer.load(d, inference_only=True)
    assert type(lite.model.tower).__name__ == "BertLite"
    for known in (True, False):  # False: candidate texts encoded by the tower, adapters off
        for x, y in zip(sc.score(_examples(known)), lite.score(_examples(known)), strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)
    # the LoRA weights were merged: scores differ from the same scorer with adapters off
    with lite.model.tower.disable_adapter():
        base = lite.score(_examples())
    assert (
        max(np.abs(a - b).max() for a, b in zip(base, lite.score(_examples()), strict=True)) > 1e-4
    )


def test_inference_only_load_imports_neither_transformers_nor_peft(saved):
    _, d = saved
    code = (
        "import sys, json\n"
        "from instructrec.models.encoder_scorer import EncoderScorer\n"
        f"EncoderScorer.load({str(d)!r}, inference_only=True)\n"
        "print(json.dumps([m for m in ('transformers', 'peft') if m in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_unsupported_backbone_falls_back(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    assert not supports(tmp_path)
    assert not supports(tmp_path / "missing")
