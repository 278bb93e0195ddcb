"""Top-k of every user from a fitted retriever, in user blocks: the same rows as asking the
retriever one block at once; the `instructrec scale topk` command on a saved run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from instructrec.data import make_split
from instructrec.data.errors import DataError
from instructrec.retrieval.itemknn import ItemKNN
from instructrec.scale.retriever_scoring import retriever_topk


@pytest.fixture()
def fitted(tiny_dataset):
    split = make_split(tiny_dataset, seed=0)
    knn = ItemKNN(k=20).fit(split.train, tiny_dataset.n_users, tiny_dataset.n_items)
    return tiny_dataset, split, knn


def test_blocks_give_the_retrievers_own_top_k(fitted):
    dataset, _, knn = fitted
    users = np.arange(dataset.n_users)
    ids, scores = knn.candidates(users, 5)
    for block in (1, 7, 1000):
        df = retriever_topk(knn, users, k=5, user_block=block)
        assert len(df) == int(np.isfinite(scores).sum())
        for u in (0, 13, dataset.n_users - 1):
            row = df[df.user_id == u].sort_values("rank")
            keep = np.isfinite(scores[u])
            assert row["item_id"].tolist() == ids[u][keep].tolist()
            assert row["rank"].tolist() == list(range(1, keep.sum() + 1))


def test_explicit_histories_are_excluded(fitted):
    dataset, _, knn = fitted
    hist = [np.array([0, 1, 2]), np.array([5])]
    df = retriever_topk(knn, np.array([3, 4]), k=dataset.n_items, histories=hist, user_block=1)
    assert not {0, 1, 2} & set(df.loc[df.user_id == 3, "item_id"])
    assert 5 not in set(df.loc[df.user_id == 4, "item_id"])
    with pytest.raises(DataError, match="1 histories for 2 users"):
        retriever_topk(knn, np.array([3, 4]), histories=hist[:1])


def test_cli_scale_topk_on_a_saved_run(fitted, tmp_path):
    from instructrec.cli.scale import scale
    from instructrec.recommender import Recommender

    dataset, split, knn = fitted
    run = tmp_path / "run"
    Recommender(dataset, knn).fit(split).save(run)
    out = tmp_path / "top.parquet"
    res = CliRunner().invoke(scale, ["topk", "--model", str(run), "--k", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert set(df["user_id"]) == set(dataset.user_ids)  # raw ids
    assert set(df["item_id"]) <= set(dataset.item_ids)
    rec = Recommender.load(run)
    uid = int(dataset.user_index([df["user_id"].iloc[0]])[0])
    seen = set(dataset.item_ids[rec.sequences[uid]])  # everything the user interacted with
    assert not seen & set(df.loc[df.user_id == df["user_id"].iloc[0], "item_id"])
    bad = CliRunner().invoke(scale, ["topk", "--model", str(tmp_path), "--out", str(out)])
    assert bad.exit_code != 0
