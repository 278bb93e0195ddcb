"""Saved runs are data, never code: a Recommender with every retriever and a reranker saves
as JSON/safetensors/Parquet and loads back identical; folders holding pickles are refused
without being opened; `instructrec runs convert` turns an old (pickled) run into the new
layout; no module but the explicit converter unpickles anything."""

from __future__ import annotations

import copy
import pickle
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import instructrec
from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.data.runfiles import PICKLE_MESSAGE
from instructrec.recommender import Recommender
from instructrec.retrieval import BPR, ItemKNN, Pop, SASRec
from instructrec.retrieval.base import Retriever
from instructrec.testing.datasets import synthetic_dataset

SRC = Path(instructrec.__file__).parent


class Planted:
    """Unpickling this creates ``path``: the proof that a loader ran code from a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture(scope="module")
def rec():
    """Every retriever as a prior, and a small untrained reranker with perturbed weights (so
    the round trip is not trivially the initialisation) and a pointwise head."""
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.rerank_features import attribute_matrix, item_texts
    from instructrec.rerank.reranker import InstructionReranker, RerankerConfig
    from instructrec.training.fit_reranker import fit_pointwise

    torch.set_num_threads(1)
    ds = synthetic_dataset(n_users=40, n_items=30, per_user=10, seed=2)
    split = make_split(ds, seed=0)
    sas = SASRec(max_epochs=2, hidden=16, inner=32, n_heads=1)
    priors = [sas, ItemKNN(), Pop(), BPR(max_epochs=2, dim=8)]
    r = Recommender(ds, sas, priors=priors).fit(split)
    cfg = EncoderConfig(lora_r=2, n_prior=len(priors), max_query_len=24)
    scorer = EncoderScorer.build(
        item_texts(ds), cfg, history_len=20, attr_vecs=attribute_matrix(ds)
    )
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in scorer.model.parameters():
            if p.requires_grad:
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
    rr = InstructionReranker(scorer, TextSide.of(ds), RerankerConfig(), [p.name for p in priors])
    rr.dataset = ds
    fit_pointwise(rr, ds, split)
    r.reranker = rr
    return r


def _outputs(r: Recommender) -> list[pd.DataFrame]:
    return [
        r.recommend(user="u3", n=8),
        r.recommend(user="u3", n=8, instruction="a comedy from the 80s"),
        r.recommend(history=["i1", "i2", "i5"], n=5, instruction="something scary"),
        r.recommend(user="u7", candidates=["i1", "i2", "i3", "i4"], n=4),
    ]


def _assert_same(a: Recommender, b: Recommender) -> None:
    for x, y in zip(_outputs(a), _outputs(b), strict=True):
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    users = np.arange(5)
    items = np.arange(5)
    np.testing.assert_array_equal(a.score_pointwise(users, items), b.score_pointwise(users, items))


def test_recommender_round_trip_is_identical_and_data_only(rec, tmp_path):
    run = rec.save(tmp_path / "run")
    files = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".pkl", ".pt", ".pth", ".pickle"))], files
    for name in ("recommender.json", "sequences.safetensors", "dataset/items.parquet"):
        assert name in files
    back = Recommender.load(run)
    assert [type(p) for p in back.priors] == [type(p) for p in rec.priors]
    assert back.priors[0] is back.retriever
    assert back.sequences.keys() == rec.sequences.keys()
    for u, s in rec.sequences.items():
        np.testing.assert_array_equal(back.sequences[u], s)
    for tb in ("interactions", "items", "users"):
        pd.testing.assert_frame_equal(getattr(back.dataset, tb), getattr(rec.dataset, tb))
    assert back.dataset.meta == rec.dataset.meta
    assert back.reranker.text.to_dict() == rec.reranker.text.to_dict()
    _assert_same(rec, back)


@pytest.mark.parametrize("where", [".", "retriever", "reranker", "dataset"])
def test_a_planted_pickle_is_never_executed(rec, tmp_path, where):
    run = rec.save(tmp_path / "run")
    marker = tmp_path / "pwned"
    (run / where / "evil.pkl").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(DataError, match=re.escape(PICKLE_MESSAGE)):
        Recommender.load(run)
    if where in ("retriever", "reranker"):
        loader = Retriever if where == "retriever" else type(rec.reranker)
        with pytest.raises(DataError, match="older instructrec"):
            loader.load(run / where)
    assert not marker.exists()
    pickle.loads((run / where / "evil.pkl").read_bytes())  # the plant works when unpickled
    assert marker.exists()


def _old_layout(r: Recommender, out: Path) -> Path:
    """The folder an instructrec before format 2 wrote for ``r`` (pickles, weights.pt)."""
    out.mkdir()

    def dump(obj, name):
        (out / name).write_bytes(pickle.dumps(obj))

    def old_retriever(x):
        old = copy.copy(x)
        if isinstance(x, SASRec):  # SASRec pickled its weights as numpy, its config as a dict
            old.__dict__.pop("net")
            old.__dict__["config"] = asdict(x.config)
            old.__dict__["_weights"] = {
                k: v.detach().numpy() for k, v in x.net.state_dict().items()
            }
        return old

    dump(r.dataset, "dataset.pkl")
    dump(r.sequences, "sequences.pkl")
    dump(old_retriever(r.retriever), "retriever.pkl")
    names = []
    for i, p in enumerate(r.priors):
        names.append("retriever.pkl" if p is r.retriever else f"prior-{i}.pkl")
        if p is not r.retriever:
            dump(old_retriever(p), names[-1])
    rr = r.reranker.save(out / "tmp-rr")
    (rr / "reranker.json").write_text(
        (rr / "reranker.json").read_text().replace('"format": 2,', "")
    )
    (rr / "text.json").unlink()
    # as an old instructrec wrote it: TextSide lived in training/instances.py then
    text = pickle.dumps(r.reranker.text, protocol=2)
    moved = b"instructrec.rerank.instances\nTextSide"
    assert moved in text
    (rr / "text.pkl").write_bytes(text.replace(moved, b"instructrec.training.instances\nTextSide"))
    from safetensors.torch import load_file

    enc = rr / "encoder"
    torch.save(load_file(str(enc / "weights.safetensors")), enc / "weights.pt")
    (enc / "weights.safetensors").unlink()
    rr.rename(out / "reranker")
    meta = {
        "retriever": type(r.retriever).__name__,
        "rerank_depth": r.rerank_depth,
        "reranker": "instructrec.training.reranker:InstructionReranker",
        "priors": names,
        "fit_info": r.fit_info,
    }
    (out / "recommender.json").write_text(__import__("json").dumps(meta))
    return out


def test_an_old_run_is_refused_then_converted(rec, tmp_path):
    from click.testing import CliRunner

    from instructrec.cli import main

    old = _old_layout(rec, tmp_path / "old")
    with pytest.raises(DataError, match=re.escape(PICKLE_MESSAGE)):
        Recommender.load(old)
    runner = CliRunner()
    res = runner.invoke(main, ["recommend", "--model", str(old), "--user", "u3"])
    assert res.exit_code == 2 and "runs convert" in res.output
    res = runner.invoke(main, ["runs", "convert", str(old), str(tmp_path / "new")])
    assert res.exit_code == 0, res.output
    back = Recommender.load(tmp_path / "new")
    assert not list((tmp_path / "new").rglob("*.pkl"))
    _assert_same(rec, back)
    assert sorted(p.name for p in old.iterdir()) == sorted(
        ["dataset.pkl", "sequences.pkl", "retriever.pkl", "prior-1.pkl", "prior-2.pkl"]
        + ["prior-3.pkl", "recommender.json", "reranker"]
    ), "the source folder is not changed"
    res = runner.invoke(main, ["runs", "convert", str(old), str(tmp_path / "new")])
    assert res.exit_code == 2 and "not empty" in res.output
    res = runner.invoke(main, ["runs", "convert", str(tmp_path / "new"), str(tmp_path / "n2")])
    assert res.exit_code == 2 and "already in the current format" in res.output


def test_broken_run_files_are_data_errors(tmp_path):
    ds = synthetic_dataset(n_users=20, n_items=40, per_user=6)
    r = Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0))
    run = r.save(tmp_path / "run")
    (run / "recommender.json").write_text("{not json")
    with pytest.raises(DataError, match="recommender.json.*not valid JSON"):
        Recommender.load(run)
    r.save(run)
    (run / "retriever" / "arrays.safetensors").unlink()
    with pytest.raises(DataError, match="arrays.safetensors.*missing run file"):
        Recommender.load(run)
    r.save(run)
    (run / "dataset" / "items.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match="items.parquet"):
        Recommender.load(run)
    r.save(run)
    meta = (run / "recommender.json").read_text()
    (run / "recommender.json").write_text(
        meta.replace('"retriever": "retriever"', '"retriever": "../x"')
    )
    with pytest.raises(DataError, match="bad folder name .../x"):
        Recommender.load(run)
    (run / "recommender.json").write_text(meta.replace('"format": 2', '"format": 1'))
    with pytest.raises(DataError, match="unknown run format"):
        Recommender.load(run)


def _python_sources() -> dict[str, str]:
    return {str(p.relative_to(SRC)): p.read_text() for p in SRC.rglob("*.py")}


def test_only_the_explicit_converter_unpickles():
    unpickling = re.compile(r"pickle\.loads?\(|Unpickler|allow_pickle=True|weights_only=False")
    found = sorted(name for name, text in _python_sources().items() if unpickling.search(text))
    assert found == ["legacy.py"], found


def test_every_torch_load_is_weights_only():
    for name, text in _python_sources().items():
        for call in re.findall(r"torch\.load\((?:[^()]|\([^()]*\))*\)", text):
            assert "weights_only=True" in call, f"{name}: {call}"
