"""Ray Data batch scoring on a local 2-worker cluster gives the rows of the local executor.

Needs the extra: ``pip install "instructrec[ray]"`` (marker ``ray``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from instructrec.scale.batch_scoring import BatchScoringConfig, batch_score

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray", reason='the ray extra: pip install "instructrec[ray]"')


@pytest.fixture(scope="module")
def cluster():
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=200 * 1024**2
    )
    from ray.data import DataContext

    DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def data(seed=0):
    rng = np.random.default_rng(seed)
    users = rng.standard_normal((90, 16)).astype(np.float32)
    items = rng.standard_normal((2000, 16)).astype(np.float32)
    seen = [rng.choice(2000, size=rng.integers(0, 30), replace=False) for _ in users]
    return users, items, seen


def test_ray_equals_local(cluster):
    users, items, seen = data()
    cfg = BatchScoringConfig(k=20, user_block=16, item_block=300, num_workers=2)
    local = batch_score(users, items, cfg, seen=seen)
    remote = batch_score(users, items, cfg, seen=seen, backend="ray")
    pd.testing.assert_frame_equal(local, remote, check_dtype=False)


def test_ray_writes_parquet_with_raw_ids(cluster, tmp_path):
    users, items, seen = data(1)
    uids = np.array([f"u{i}" for i in range(len(users))], dtype=object)
    iids = np.array([f"i{j}" for j in range(len(items))], dtype=object)
    cfg = BatchScoringConfig(k=5, user_block=32)
    path = batch_score(
        users,
        items,
        cfg,
        seen=seen,
        user_ids=uids,
        item_ids=iids,
        backend="ray",
        output=tmp_path / "scores",
    )
    got = pd.read_parquet(path).sort_values(["user_id", "rank"], ignore_index=True)
    want = batch_score(users, items, cfg, seen=seen, user_ids=uids, item_ids=iids)
    want = want.sort_values(["user_id", "rank"], ignore_index=True)
    assert list(got.columns) == ["user_id", "item_id", "score", "rank"]
    assert got["item_id"].tolist() == want["item_id"].tolist()
    np.testing.assert_allclose(got["score"], want["score"], rtol=1e-5)


def test_ray_retriever_topk_equals_local(cluster, tiny_dataset):
    from instructrec.data import make_split
    from instructrec.retrieval.itemknn import ItemKNN
    from instructrec.scale.retriever_scoring import retriever_topk

    split = make_split(tiny_dataset, seed=0)
    knn = ItemKNN(k=20).fit(split.train, tiny_dataset.n_users, tiny_dataset.n_items)
    users = np.arange(tiny_dataset.n_users)
    local = retriever_topk(knn, users, k=5, user_block=16, user_ids=tiny_dataset.user_ids)
    remote = retriever_topk(
        knn, users, k=5, user_block=16, backend="ray", user_ids=tiny_dataset.user_ids
    )
    pd.testing.assert_frame_equal(local, remote, check_dtype=False)
