"""Recommender: recommend for known / unknown users, priors wiring, evaluation hooks, save/load,
from_config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.config import RetrieverSpec, RunConfig
from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.recommender import Recommender
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.retrieval.pop import Pop


class ByIdReranker:
    """A stand-in reranker: prefers larger item ids; records what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def score_candidates(
        self, users, candidates, histories, intentions=None, templates=None, prior=None
    ):
        self.calls.append(
            {
                "candidates": candidates,
                "prior": prior,
                "intentions": intentions,
                "histories": histories,
            }
        )
        return np.asarray(candidates, dtype=np.float32)


@pytest.fixture()
def fitted(tiny_dataset):
    split = make_split(tiny_dataset, seed=0)
    knn = ItemKNN()
    rec = Recommender(tiny_dataset, knn, priors=[knn, Pop()]).fit(split)
    return rec, split


def test_recommend_known_user(fitted):
    rec, _ = fitted
    df = rec.recommend(user="u3", n=5)
    assert list(df.columns)[:2] == ["item_id", "title"] and {"score", "rank", "reason"} <= set(df)
    assert len(df) == 5 and df["rank"].tolist() == [1, 2, 3, 4, 5]
    seen = set(rec.dataset.item_ids[rec.sequences[int(rec.dataset.user_index(["u3"])[0])]])
    assert not seen & set(df["item_id"])  # already-seen items are excluded
    assert df["score"].is_monotonic_decreasing


def test_unknown_user_is_a_data_error_but_history_works(fitted):
    rec, _ = fitted
    with pytest.raises(DataError, match="unknown user id 'nobody'"):
        rec.recommend(user="nobody")
    df = rec.recommend(user="nobody", history=["i1", "i2", "i3"], n=3)
    assert len(df) == 3 and not {"i1", "i2", "i3"} & set(df["item_id"])
    with pytest.raises(DataError, match="unknown item id"):
        rec.recommend(history=["i1", "no-such-item"])


def test_reranker_sees_all_priors_and_reorders_the_head(fitted):
    rec, _ = fitted
    rr = ByIdReranker()
    rec.reranker = rr
    df = rec.recommend(user="u3", n=4, instruction="a comedy")
    call = rr.calls[-1]
    assert call["prior"].shape == call["candidates"].shape + (2,)  # kNN and Pop
    assert call["intentions"] == ["a comedy"]
    ids = rec.dataset.item_index(df["item_id"].tolist())
    assert list(ids) == sorted(ids, reverse=True)  # the reranker's order


def test_score_candidates_hook(fitted):
    rec, split = fitted
    users = split.test["user"].to_numpy()
    cands = split.candidates["cand10"]["test"]
    seqs = split.sequences("test")
    hists = [seqs[int(u)] for u in users]
    base = rec.score_candidates(users, cands, hists)  # no reranker: the retriever's scores
    np.testing.assert_allclose(base, rec.retriever.score(users, cands, histories=hists))
    rec.reranker = ByIdReranker()
    out = rec.score_candidates(users, cands, hists, intentions=["x"] * len(users))
    assert out.shape == cands.shape
    np.testing.assert_array_equal(out, cands.astype(np.float32))


def test_save_load_round_trip(fitted, tmp_path):
    rec, split = fitted
    rec.save(tmp_path / "m")
    back = Recommender.load(tmp_path / "m")
    assert [type(p).__name__ for p in back.priors] == ["ItemKNN", "Pop"]
    assert back.priors[0] is back.retriever
    pd.testing.assert_frame_equal(back.recommend(user="u5", n=6), rec.recommend(user="u5", n=6))
    with pytest.raises(DataError, match="recommender.json"):
        Recommender.load(tmp_path)


def test_from_config_without_reranker(tiny_dataset):
    cfg = RunConfig(
        retriever=RetrieverSpec("itemknn"),
        priors=[RetrieverSpec("itemknn"), RetrieverSpec("pop")],
        rerank=False,
    )
    rec = Recommender.from_config(cfg, dataset=tiny_dataset)
    assert rec.priors[0] is rec.retriever and isinstance(rec.priors[1], Pop)
    rec.fit(make_split(tiny_dataset, seed=0))
    assert rec.reranker is None and len(rec.recommend(user="u1", n=3)) == 3


def test_run_config_yaml_round_trip_and_errors(tmp_path):
    cfg = RunConfig()
    p = tmp_path / "c.yaml"
    cfg.to_yaml(p)
    assert RunConfig.from_yaml(p) == cfg
    p.write_text("training:\n  lr: 0.1\n  lrr: 3\n")
    with pytest.raises(DataError, match=r"training\.lrr"):
        RunConfig.from_yaml(p)
    p.write_text("priors: sasrec\n")
    with pytest.raises(DataError, match="priors must be a list"):
        RunConfig.from_yaml(p)
    with pytest.raises(DataError, match="not found"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")
