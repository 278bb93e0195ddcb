"""PointwiseHead: the Yes/No "will the user like it" head (protocol `pointwise`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from instructrec.data import Dataset, make_split
from instructrec.rerank.pointwise import FEATURES, PointwiseHead, fit_pointwise_head


def _planted(n_users=150, n_items=60, per_user=20, seed=0):
    """Ratings = item quality + whether the item's genre is the user's favourite + noise."""
    rng = np.random.default_rng(seed)
    genres = np.array(["Comedy", "Drama", "Horror"])
    g_item = rng.integers(0, 3, n_items)
    quality = rng.normal(0, 1, n_items)
    fav = rng.integers(0, 3, n_users)
    rows = []
    for u in range(n_users):
        for t, i in enumerate(rng.choice(n_items, per_user, replace=False)):
            r = 3 + quality[i] + 1.2 * (g_item[i] == fav[u]) - 0.6 + rng.normal(0, 0.5)
            rows.append((f"u{u}", f"i{i}", float(np.clip(np.round(r), 1, 5)), 1000.0 * u + t))
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(n_items)],
            "title": [f"Movie {j}" for j in range(n_items)],
            "genres": [(genres[g],) for g in g_item],
        }
    )
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    ds = Dataset.from_frames("planted", inter, items)
    # item vectors that know the genre (as the reranker's would)
    vecs = np.eye(3, dtype=np.float32)[g_item[ds.items["item_id"].str[1:].astype(int)]]
    vecs = vecs + rng.normal(0, 0.05, vecs.shape).astype(np.float32)
    return ds, vecs


@pytest.fixture(scope="module")
def planted():
    ds, vecs = _planted()
    split = make_split(ds, seed=0)
    return ds, split, vecs, fit_pointwise_head(ds, split, vecs, None)


def test_learns_quality_and_taste(planted):
    ds, split, vecs, head = planted
    te = split.test
    y = te["rating"].to_numpy() >= 4
    auc = roc_auc_score(y, head.predict(te["user"].to_numpy(), te["item"].to_numpy()))
    assert auc > 0.8  # chance is 0.5
    w = head.coefficients()
    assert w["item_bias"] > 0 and w["taste_model"] > 0  # both planted signals are used
    # taste alone ranks a user's favourite-genre item above an other-genre one
    x = head.features(te["user"].to_numpy(), te["item"].to_numpy())
    col = FEATURES.index("taste_model")
    assert roc_auc_score(y, x[:, col]) > 0.6


def test_statistics_never_saw_the_fitting_labels(planted):
    """Rows used to fit are each user's held-out training items: their ratings are not in the
    statistics the features were computed from during the fit."""
    ds, split, vecs, _ = planted
    from instructrec.rerank.rerank_features import stacked_frame

    kept, held = stacked_frame(split.train, 2)
    head = PointwiseHead(vecs, None)
    head.set_statistics(kept, ds.n_users, ds.n_items)
    u, i = held["user"].to_numpy(), held["item"].to_numpy()
    assert np.all(np.asarray(head._taste[u, i]).ravel() == 0)  # no centred rating of the target


def test_unknown_users_use_their_given_history(planted):
    ds, split, vecs, head = planted
    items = np.array([0, 1, 2])
    hist = [np.array([0, 5]), np.array([], np.int64), np.array([1])]
    x = head.features(np.array([-1, -1, -1]), items, hist)
    assert np.all(x[:, FEATURES.index("user_bias")] == 0)
    assert np.all(x[:, FEATURES.index("taste_model")] == 0)
    sim = FEATURES.index("sim_model")
    unit = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    np.testing.assert_allclose(x[0, sim], unit[[0, 5]].mean(0) @ unit[0], rtol=1e-5)
    assert x[1, sim] == 0
    assert np.isfinite(head.predict(np.array([-1, -1, -1]), items, hist)).all()


def test_save_load_round_trip(planted, tmp_path):
    _, split, _, head = planted
    u, i = split.test["user"].to_numpy(), split.test["item"].to_numpy()
    head.save(tmp_path)
    loaded = PointwiseHead.load(tmp_path)
    np.testing.assert_allclose(loaded.predict(u, i), head.predict(u, i), rtol=1e-5, atol=1e-5)


def test_needs_ratings():
    ds, vecs = _planted(n_users=20)
    split = make_split(ds, seed=0)
    split.train = split.train.assign(rating=np.nan)
    with pytest.raises(ValueError, match="ratings"):
        fit_pointwise_head(ds, split, vecs, None)
