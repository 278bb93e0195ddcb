"""`RetrieverContract`: the test suite every `Retriever` passes (implicit's
``RecommenderBaseTestMixin`` in spirit). A retriever opts in with two lines:

    class TestPop(RetrieverContract):
        def make_retriever(self):
            return Pop()

The suite fits once per class on a planted synthetic log (`planted_dataset`): users belong to
one of three item clusters of unequal size and walk through their cluster in a fixed cyclic
order, so co-occurrence, sequence and popularity all carry signal. Set ``history_aware =
False`` for a model whose scores ignore the history (Pop).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ..data import Dataset, make_split
from ..retrieval.base import Retriever


def planted_dataset(
    n_users: int = 90, cluster_sizes=(10, 10, 10), per_user: int = 8, seed: int = 0
) -> Dataset:
    """Users of cluster c (shares 1/2, 1/3, 1/6) consume ``per_user`` consecutive items of c's
    cycle from a random start. Deterministic for a seed."""
    rng = np.random.default_rng(seed)
    starts = np.r_[0, np.cumsum(cluster_sizes)]
    share = np.array([3, 2, 1][: len(cluster_sizes)], float)
    rows = []
    for u in range(n_users):
        c = rng.choice(len(cluster_sizes), p=share / share.sum())
        size = cluster_sizes[c]
        first = rng.integers(size)
        for t in range(min(per_user, size)):
            rows.append((f"u{u}", f"i{starts[c] + (first + t) % size}", 5.0, 100.0 * u + t))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(starts[-1])],
            "title": [f"Item {j}" for j in range(starts[-1])],
        }
    )
    return Dataset.from_frames("planted", inter, items)


class RetrieverContract:
    """Inherit and define `make_retriever` (an unfitted retriever, same seed each call)."""

    history_aware: bool = True  # scores depend on the history (False for Pop)
    planted_k: int = 5  # HR@k on the planted test item must beat random by `planted_margin`
    planted_margin: float = 1.5

    def make_retriever(self) -> Retriever:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    # ------------------------------------------------------------------ fixtures
    @pytest.fixture(scope="class")
    def planted(self):
        ds = planted_dataset()
        return ds, make_split(ds, seed=0, sets={"cand10": 9})

    @pytest.fixture(scope="class")
    def fitted(self, planted) -> Retriever:
        ds, split = planted
        return self._fit(ds, split)

    def _fit(self, ds, split) -> Retriever:
        return self.make_retriever().fit(split.train, ds.n_users, ds.n_items, valid=split.valid)

    @staticmethod
    def _test_rows(split):
        seqs = split.sequences("test")
        users = split.test["user"].to_numpy(np.int64)
        return users, [seqs[int(u)] for u in users], split.test["item"].to_numpy(np.int64)

    # ------------------------------------------------------------------ the contract
    def test_fit_returns_self_and_knows_catalogue(self, planted):
        ds, split = planted
        r = self.make_retriever()
        assert r.fit(split.train, ds.n_users, ds.n_items, valid=split.valid) is r
        assert r.n_items == ds.n_items

    def test_shapes_and_dtypes(self, planted, fitted):
        ds, split = planted
        users = np.arange(5)
        s = fitted.score_all(users)
        assert s.shape == (5, ds.n_items) and s.dtype == np.float32
        assert np.isfinite(s).all()
        items, scores = fitted.candidates(users, k=7)
        assert items.shape == (5, 7) and scores.shape == (5, 7)
        assert items.dtype == np.int32
        assert (np.diff(scores, axis=1) <= 0).all(), "candidates must be sorted best first"
        assert ((items >= 0) & (items < ds.n_items)).all()
        assert all(len(set(row)) == len(row) for row in items.tolist()), "no duplicates"
        big, _ = fitted.candidates(users[:1], k=10 * ds.n_items, exclude_seen=False)
        assert big.shape == (1, ds.n_items)

    def test_score_agrees_with_score_all(self, planted, fitted):
        ds, split = planted
        users, hists, _ = self._test_rows(split)
        cands = split.candidates["cand10"]["test"]
        full = fitted.score_all(users, hists)
        part = fitted.score(users, cands, hists)
        np.testing.assert_allclose(
            part, np.take_along_axis(full, cands.astype(np.int64), 1), rtol=1e-5, atol=1e-6
        )

    def test_exclude_seen(self, planted, fitted):
        ds, split = planted
        users = np.arange(ds.n_users)
        items, _ = fitted.candidates(users, k=5, exclude_seen=True)
        for u, row in zip(users, items, strict=True):
            assert not set(row.tolist()) & set(fitted.train_items([u])[0].tolist())
        seen = [np.arange(10)] * 3
        items, _ = fitted.candidates(users[:3], k=5, exclude_seen=True, seen=seen)
        assert (items >= 10).all()
        items, _ = fitted.candidates(users[:3], k=ds.n_items, exclude_seen=False)
        assert (np.sort(items, 1) == np.arange(ds.n_items)).all()

    def test_deterministic_for_a_seed(self, planted, fitted):
        ds, split = planted
        again = self._fit(ds, split)
        users, hists, _ = self._test_rows(split)
        np.testing.assert_allclose(
            again.score_all(users, hists), fitted.score_all(users, hists), rtol=1e-5, atol=1e-6
        )

    def test_save_load_round_trip(self, planted, fitted, tmp_path):
        """Saved as data (JSON + safetensors, no pickle), loaded back with identical scores,
        for known users, explicit histories and users unknown to training."""
        ds, split = planted
        users, hists, _ = self._test_rows(split)
        path = fitted.save(tmp_path / "retriever")
        assert sorted(p.name for p in path.iterdir()) == ["arrays.safetensors", "retriever.json"]
        unknown = np.array([ds.n_users + 3])
        for loaded in (Retriever.load(path), type(fitted).load(path)):
            assert type(loaded) is type(fitted)
            assert loaded.config == fitted.config
            np.testing.assert_array_equal(
                loaded.score_all(users, hists), fitted.score_all(users, hists)
            )
            np.testing.assert_array_equal(loaded.score_all(users), fitted.score_all(users))
            h = [np.array([0, 1, 2], np.int32)]
            np.testing.assert_array_equal(
                loaded.score_all(unknown, h), fitted.score_all(unknown, h)
            )
            np.testing.assert_array_equal(
                loaded.candidates(users, 5)[0], fitted.candidates(users, 5)[0]
            )
            emb = fitted.item_embeddings()
            if emb is not None:
                np.testing.assert_array_equal(loaded.item_embeddings(), emb)

    def test_histories_serve_unknown_users(self, planted, fitted):
        ds, split = planted
        h1, h2 = np.array([0, 1, 2], np.int32), np.array([25, 26, 27], np.int32)
        unknown = np.array([ds.n_users + 5, ds.n_users + 6])
        s = fitted.score_all(unknown, [h1, h2])
        assert s.shape == (2, ds.n_items) and np.isfinite(s).all()
        empty = fitted.score_all(unknown[:1], [np.empty(0, np.int32)])
        assert np.isfinite(empty).all()
        items, _ = fitted.candidates(unknown, 4, histories=[h1, h2])
        assert not set(items[0].tolist()) & set(h1.tolist())
        assert not set(items[1].tolist()) & set(h2.tolist())
        if self.history_aware:
            assert not np.allclose(s[0], s[1]), "different histories must change the scores"
            # the user id does not override an explicit history
            known = fitted.score_all(np.array([0]), [h1])
            again = fitted.score_all(unknown[:1], [h1])
            np.testing.assert_allclose(known, again, rtol=1e-5, atol=1e-6)

    def test_item_embeddings(self, planted, fitted):
        ds, _ = planted
        emb = fitted.item_embeddings()
        if emb is not None:
            assert emb.ndim == 2 and emb.shape[0] == ds.n_items and np.isfinite(emb).all()

    def test_learns_planted_pattern(self, planted, fitted):
        ds, split = planted
        users, hists, targets = self._test_rows(split)
        items, _ = fitted.candidates(users, self.planted_k, histories=hists)
        hr = (items == targets[:, None]).any(axis=1).mean()
        random = np.mean([self.planted_k / (ds.n_items - len(h)) for h in hists])
        assert hr > self.planted_margin * random, (
            f"HR@{self.planted_k} {hr:.3f} vs random {random:.3f}"
        )
