"""`search-full`: every model ranks the target among all unseen items; the Recommender through
its serving path (the rank the protocol reads is where `Recommender.answer` puts the target)."""

from __future__ import annotations

import numpy as np
import pytest

from instructrec.data import make_split
from instructrec.evaluation import fit_baselines, run
from instructrec.evaluation.intentions import protocol_intentions
from instructrec.evaluation.protocols import PROTOCOLS, stage_rows
from instructrec.evaluation.search_full import candidate_path_ranks
from instructrec.recommender import Recommender
from instructrec.retrieval import ItemKNN, Pop
from instructrec.testing.datasets import synthetic_dataset


@pytest.fixture(scope="module")
def world():
    ds = synthetic_dataset(n_users=60, n_items=80, per_user=12, seed=3)
    split = make_split(ds, seed=0)
    knn = ItemKNN()
    rec = Recommender(ds, knn, priors=[knn, Pop()]).fit(split)
    return ds, split, rec


def test_search_full_report(world):
    ds, split, rec = world
    base = fit_baselines(ds, split, ["pop", "itemknn"])
    rep = run("search-full", ds, split, {**base, "instructrec": rec}, stage="valid", n_boot=50)
    assert list(rep.table.columns) == ["Recall@10", "NDCG@10"]
    assert set(rep.table.index) == {"pop", "itemknn", "instructrec"}
    assert ((rep.table >= 0) & (rep.table <= 1)).all().all()
    assert rep.manifest["config"]["rows"] == len(split.valid)
    assert any("instruction-aware candidates" in n for n in rep.notes)
    # the intention is what lifts the candidate path above its own retriever here
    assert rep.table.loc["instructrec", "Recall@10"] > rep.table.loc["itemknn", "Recall@10"]


def test_protocol_rank_is_the_served_position(world):
    ds, split, rec = world
    rows = stage_rows(split, "valid")
    texts, _, _ = protocol_intentions(PROTOCOLS["search-full"], ds, rows.targets, 0)
    ranks, sizes, inside = candidate_path_ranks(rec, ds, rows, texts)
    assert (sizes > 0).all() and inside.mean() > 0.5
    for i in range(0, len(rows.users), 7):
        hist = list(ds.item_ids[rows.histories[i]])
        served = rec.answer(history=hist, instruction=texts[i], n=10).items
        ids = [r.item_id for r in served]
        target = ds.item_ids[rows.targets[i]]
        if ranks[i] < 10:
            assert ids[ranks[i]] == target
        else:
            assert target not in ids
    assert np.mean(ranks < 10) > 0
