"""Blocked top-k batch scoring (local executor): exact against brute force, independent of
the blocking, seen items excluded, raw ids at the edge, Ray never imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from instructrec.data.errors import DataError
from instructrec.scale.batch_scoring import (
    BatchScoringConfig,
    batch_score,
    history_vectors,
    to_csr,
    topk_block,
)


def vectors(n_users=37, n_items=503, d=12, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((n_users, d)).astype(np.float32),
        rng.standard_normal((n_items, d)).astype(np.float32),
    )


def brute_force(users, items, k, seen=None):
    s = users.astype(np.float64) @ items.T.astype(np.float64)
    if seen is not None:
        for u, its in enumerate(seen):
            s[u, its] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, 1)


@pytest.mark.parametrize("user_block,item_block", [(1, 7), (8, 64), (1000, 100000)])
def test_topk_matches_brute_force_for_any_blocking(user_block, item_block):
    users, items = vectors()
    rng = np.random.default_rng(1)
    seen = [rng.choice(len(items), size=rng.integers(0, 20), replace=False) for _ in users]
    cfg = BatchScoringConfig(k=15, user_block=user_block, item_block=item_block)
    df = batch_score(users, items, cfg, seen=seen)
    ids, scores = brute_force(users, items, 15, seen)
    assert list(df.columns) == ["user_id", "item_id", "score", "rank"]
    assert len(df) == len(users) * 15
    np.testing.assert_array_equal(df["item_id"].to_numpy().reshape(len(users), 15), ids)
    np.testing.assert_allclose(df["score"].to_numpy().reshape(len(users), 15), scores, rtol=1e-4)
    np.testing.assert_array_equal(df["rank"].to_numpy()[:15], np.arange(1, 16))
    for u, its in enumerate(seen):
        assert not set(its) & set(df.loc[df.user_id == u, "item_id"])


def test_ties_go_to_the_smaller_item_id():
    items = np.ones((50, 4), np.float32)  # every item scores the same
    ids, scores = topk_block(np.ones((3, 4), np.float32), items, k=5, item_block=7)
    np.testing.assert_array_equal(ids, np.tile(np.arange(5), (3, 1)))
    assert np.all(scores == 4.0)


def test_fewer_unseen_items_than_k_gives_fewer_rows():
    users, items = vectors(n_users=2, n_items=6)
    seen = [np.arange(4), np.array([], dtype=np.int64)]
    df = batch_score(users, items, BatchScoringConfig(k=5, item_block=4), seen=seen)
    assert sorted(df.loc[df.user_id == 0, "item_id"]) == [4, 5]
    assert len(df.loc[df.user_id == 1]) == 5
    df = batch_score(users, items, BatchScoringConfig(k=5, exclude_seen=False), seen=seen)
    assert len(df) == 10


def test_raw_ids_and_parquet_output(tmp_path):
    users, items = vectors(n_users=5, n_items=40)
    uids = np.array([f"u{i}" for i in range(5)], dtype=object)
    iids = np.array([f"i{j}" for j in range(40)], dtype=object)
    path = batch_score(
        users,
        items,
        BatchScoringConfig(k=3),
        user_ids=uids,
        item_ids=iids,
        output=tmp_path / "top.parquet",
    )
    df = pd.read_parquet(path)
    internal = batch_score(users, items, BatchScoringConfig(k=3))
    assert list(df["user_id"]) == [f"u{u}" for u in internal["user_id"]]
    assert list(df["item_id"]) == [f"i{i}" for i in internal["item_id"]]


def test_history_vectors_are_normalised_means():
    item_vecs = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], np.float32)
    out = history_vectors(
        item_vecs, [np.array([0, 1]), np.array([], int), np.array([2])], normalize=False
    )
    np.testing.assert_allclose(out, [[0.5, 1.0], [0.0, 0.0], [3.0, 4.0]])
    unit = history_vectors(item_vecs, [np.array([2])])
    np.testing.assert_allclose(unit, [[0.6, 0.8]], rtol=1e-6)
    with pytest.raises(DataError, match="history item ids"):
        history_vectors(item_vecs, [np.array([3])])


def test_bad_inputs_are_data_errors():
    users, items = vectors()
    with pytest.raises(DataError, match="d=12"):
        batch_score(users, items[:, :5])
    with pytest.raises(DataError, match="seen has 1 rows"):
        batch_score(users, items, seen=[np.array([0])])
    with pytest.raises(DataError, match="'k'"):
        BatchScoringConfig(k=0)
    with pytest.raises(DataError, match="dtype"):
        BatchScoringConfig(dtype="float8")
    with pytest.raises(DataError, match="backend"):
        batch_score(users, items, backend="spark")


def test_csr_round_trip():
    indptr, indices = to_csr([np.array([3, 1]), np.array([], int), np.array([7])], 3)
    assert indptr.tolist() == [0, 2, 2, 3] and indices.tolist() == [3, 1, 7]


def test_local_path_never_imports_ray():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import instructrec.scale
        import instructrec.scale.batch_scoring as bs
        import instructrec.scale.retriever_scoring
        import instructrec.cli.scale
        rng = np.random.default_rng(0)
        bs.batch_score(rng.random((4, 3)), rng.random((9, 3)), bs.BatchScoringConfig(k=2))
        bad = [m for m in sys.modules if m == "ray" or m.startswith("ray.")]
        assert not bad, bad
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
