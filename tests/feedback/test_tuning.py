"""Feedback tuning: stored feedback -> training lists -> combined loss -> a new model version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.data import Dataset, make_split
from instructrec.data.errors import DataError
from instructrec.feedback.store import Store
from instructrec.feedback.tuning import (
    FeedbackTuneConfig,
    feedback_examples,
    load_satisfaction_head,
    satisfaction_of,
    tune_from_feedback,
)
from instructrec.recommender import Recommender
from instructrec.retrieval.itemknn import ItemKNN


def _dataset() -> Dataset:
    rng = np.random.default_rng(1)
    genres = ["Comedy", "Drama", "Horror"]
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(30)],
            "title": [f"Film {j}" for j in range(30)],
            "genres": [(genres[j % 3],) for j in range(30)],
        }
    )
    rows = [
        (f"u{u}", f"i{it}", 4.0, 100.0 * u + t)
        for u in range(15)
        for t, it in enumerate(rng.choice(30, size=6, replace=False))
    ]
    return Dataset.from_frames(
        "tiny", pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]), items
    )


@pytest.fixture(scope="module")
def plain_rec():
    ds = _dataset()
    return Recommender(ds, ItemKNN()).fit(make_split(ds, seed=0))


@pytest.fixture(scope="module")
def rec_with_reranker(plain_rec):
    """The item-kNN recommender plus a fresh MiniLM reranker (LoRA r=4): slow to build."""
    from instructrec.models.encoder_config import EncoderConfig
    from instructrec.models.encoder_scorer import EncoderScorer
    from instructrec.rerank.instances import TextSide
    from instructrec.rerank.rerank_features import item_texts
    from instructrec.rerank.reranker import InstructionReranker, RerankerConfig

    ds = plain_rec.dataset
    rec = Recommender(ds, plain_rec.retriever)
    rec.sequences = plain_rec.sequences
    scorer = EncoderScorer.build(
        item_texts(ds), EncoderConfig(n_prior=1, lora_r=4, max_query_len=24)
    )
    rec.reranker = InstructionReranker(scorer, TextSide.of(ds), RerankerConfig(history_len=5))
    return rec


def _fill(store: Store, rec, n_requests: int = 6) -> None:
    for r in range(n_requests):
        out = rec.recommend(user=f"u{r}", n=4, instruction="a comedy" if r % 2 else None)
        items = list(out["item_id"])
        rid = store.record_request(
            f"u{r}",
            None,
            "a comedy" if r % 2 else None,
            4,
            [(i, k + 1, 0.0) for k, i in enumerate(items)],
        )
        store.add_feedback(rid, items[-1], "like", f"{rid}-a")  # the user liked the last one
        store.add_feedback(rid, items[0], "dislike", f"{rid}-b")
        if r == 0:
            store.add_feedback(rid, items[1], "rating", f"{rid}-c", rating=3)


def test_examples_from_store(plain_rec, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    _fill(store, plain_rec, 3)
    ex = feedback_examples(store, plain_rec)
    assert len(ex) == 3
    e = ex[0]
    assert e["target"] == 3 and e["sat"][3] == 1.0 and e["sat"][0] == 0.0
    assert e["sat"][1] == pytest.approx(0.5) and np.isnan(e["sat"][2])
    assert len(e["history"]) > 0 and e["user"] >= 0
    assert satisfaction_of("rating", 5) == 1.0 and satisfaction_of("skip", None) == 0.2


@pytest.mark.slow
def test_tune_lowers_loss_and_registers_version(rec_with_reranker, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    _fill(store, rec_with_reranker)
    before = [
        p.detach().clone()
        for p in rec_with_reranker.reranker.scorer.model.parameters()
        if p.requires_grad
    ]
    out = tmp_path / "tuned"
    summary = tune_from_feedback(
        rec_with_reranker,
        store,
        out,
        FeedbackTuneConfig(lr=5e-3, max_steps=4, batch_size=6, device="cpu", min_examples=1),
        parent_version="v1",
    )
    assert summary["examples"] == 6 and summary["with_choice"] == 6 and summary["steps"] > 0
    assert summary["loss_after"] < summary["loss_before"]
    versions = store.model_versions()
    assert versions[-1]["version"] == summary["version"] and versions[-1]["parent"] == "v1"
    assert not versions[-1]["active"]  # swapping it in is the service's decision
    after = [p for p in rec_with_reranker.reranker.scorer.model.parameters() if p.requires_grad]
    assert all(
        np.allclose(a.numpy(), b.detach().numpy()) for a, b in zip(before, after, strict=True)
    )
    tuned = Recommender.load(out)  # a loadable run
    assert tuned.reranker is not None and len(tuned.recommend(user="u1", n=3)) == 3
    head = load_satisfaction_head(out)
    assert set(head) == {"sat_scale", "sat_bias"} and not (out / "satisfaction_head.pt").exists()
    assert not (tmp_path / ".tuned.partial").exists()
    with pytest.raises(DataError, match="--overwrite"):  # never silently into an old run
        tune_from_feedback(
            rec_with_reranker, store, out, FeedbackTuneConfig(max_steps=1, device="cpu")
        )


def test_an_old_torch_satisfaction_head_is_refused_then_converted(plain_rec, tmp_path):
    import torch
    from click.testing import CliRunner

    from instructrec.cli import main

    old = tmp_path / "old"
    plain_rec.save(old)
    torch.save({"sat_scale": torch.tensor(1.5), "sat_bias": torch.tensor(-0.25)},
               old / "satisfaction_head.pt")  # fmt: skip
    with pytest.raises(DataError, match="runs convert"):
        load_satisfaction_head(old)
    r = CliRunner().invoke(main, ["runs", "convert", str(old), str(tmp_path / "new")])
    assert r.exit_code == 0, r.output
    assert load_satisfaction_head(tmp_path / "new") == {"sat_scale": 1.5, "sat_bias": -0.25}
    assert not (tmp_path / "new" / "satisfaction_head.pt").exists()
    assert (old / "satisfaction_head.pt").exists()  # the source is not changed
    assert len(Recommender.load(tmp_path / "new").recommend(user="u1", n=3)) == 3


def test_tune_refuses_without_reranker(plain_rec, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    _fill(store, plain_rec, 2)
    with pytest.raises(DataError, match="no trainable reranker"):
        tune_from_feedback(plain_rec, store, tmp_path / "x")


@pytest.mark.slow
def test_tune_refuses_without_feedback(rec_with_reranker, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    with pytest.raises(DataError, match="usable feedback"):
        tune_from_feedback(rec_with_reranker, store, tmp_path / "x")


@pytest.mark.slow
def test_simulation_tunes_the_feedback_arm(rec_with_reranker, tmp_path):
    from instructrec.feedback.simulate import SimConfig, simulate

    store = Store(f"sqlite:///{tmp_path / 'sim.db'}")
    calls = []

    def tuner(rec, st):
        out = tmp_path / f"t{len(calls)}"
        calls.append(
            tune_from_feedback(
                rec,
                st,
                out,
                FeedbackTuneConfig(max_steps=1, batch_size=8, device="cpu", min_examples=1),
            )
        )
        return Recommender.load(out)

    import copy

    rec = copy.copy(rec_with_reranker)  # the simulation refits the retriever: use a copy
    rec.retriever = copy.deepcopy(rec.retriever)
    rec.priors = [rec.retriever]
    cfg = SimConfig(rounds=2, users=5, n=3, depth=5, bootstrap=100, tune_every=1)
    res = simulate(rec.dataset, cfg, recommender=rec, store=store, tuner=tuner)
    assert len(calls) == 2 and calls[1]["examples"] == 10  # 5 users x 2 rounds of feedback
    assert len(store.model_versions()) == 2
    assert len(res.per_user) == 2 * 2 * 5


@pytest.mark.slow
def test_tune_in_memory_returns_a_tuned_copy(rec_with_reranker, tmp_path):
    from instructrec.feedback.tuning import tune_in_memory

    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    _fill(store, rec_with_reranker)
    params = lambda r: [p.detach().clone() for p in r.reranker.scorer.model.parameters()]  # noqa: E731
    before = params(rec_with_reranker)
    tuned, summary = tune_in_memory(
        rec_with_reranker,
        store,
        FeedbackTuneConfig(lr=5e-3, max_steps=4, batch_size=6, device="cpu", min_examples=1),
    )
    assert summary["examples"] == 6 and "version" not in summary  # nothing registered
    assert store.model_versions() == []
    assert all(np.allclose(a, b) for a, b in zip(before, params(rec_with_reranker), strict=True))
    assert any(not np.allclose(a, b) for a, b in zip(before, params(tuned), strict=True))
    assert len(tuned.recommend(user="u1", n=3)) == 3


def test_tune_refuses_below_the_minimum_through_the_cli(rec_with_reranker, tmp_path):
    """Too few requests with feedback: exit 2 and one line naming the minimum; nothing trained."""
    from click.testing import CliRunner

    from instructrec.cli import main

    url = f"sqlite:///{tmp_path / 'f.db'}"
    store = Store(url)
    _fill(store, rec_with_reranker, 3)
    store.close()
    run = rec_with_reranker.save(tmp_path / "run" / "model").parent
    args = ["feedback", "tune", "--model", str(run), "--db", url, "--out", str(tmp_path / "t")]
    res = CliRunner().invoke(main, [*args, "--set", "min_examples=4"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "need at least 4" in lines[0] and "--set min_examples" in lines[0]
    assert not (tmp_path / "t").exists()
    assert FeedbackTuneConfig().min_examples == 32


def test_version_of_finds_a_registered_run_by_its_resolved_path(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    (tmp_path / "tuned").mkdir()
    store.register_model("tuned-1", str(tmp_path / "tuned"), parent="v1", activate=False)
    assert store.version_of(str(tmp_path / "x" / ".." / "tuned")) == "tuned-1"
    assert store.version_of(str(tmp_path / "other")) is None
