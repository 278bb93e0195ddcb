"""Metrics against values computed by hand (ties pessimistic; AUC ties one half)."""

import math

import numpy as np
import pytest

from instructrec.evaluation import metrics as M


def test_ranks_from_scores_with_ties_count_above():
    scores = np.array(
        [
            [0.9, 0.1, 0.2, 0.3],  # target best -> rank 0
            [0.5, 0.9, 0.5, 0.1],  # one above, one tied -> rank 2
            [0.3, 0.3, 0.3, 0.3],  # all tied -> worst rank 3
            [np.nan, 0.0, -1.0, 0.5],  # NaN target is the lowest score -> rank 3
        ]
    )
    np.testing.assert_array_equal(M.ranks_from_scores(scores), [0, 2, 3, 3])


def test_hr_ndcg_mrr_by_hand():
    ranks = np.array([0, 1, 2, 4, 10])
    np.testing.assert_array_equal(M.hit_rate(ranks, 1), [1, 0, 0, 0, 0])
    np.testing.assert_array_equal(M.hit_rate(ranks, 3), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(M.recall(ranks, 5), [1, 1, 1, 1, 0])
    nd = M.ndcg(ranks, 5)
    assert nd[0] == 1.0
    assert nd[1] == pytest.approx(1 / math.log2(3))
    assert nd[2] == pytest.approx(0.5)  # 1 / log2(4)
    assert nd[3] == pytest.approx(1 / math.log2(6))
    assert nd[4] == 0.0
    np.testing.assert_allclose(M.mrr(ranks), [1, 1 / 2, 1 / 3, 1 / 5, 1 / 11])
    assert M.mrr(np.array([np.inf]))[0] == 0.0


def test_compute_names():
    out = M.compute(np.array([0, 3]), ["HR@1", "NDCG@5", "Recall@3", "MRR"])
    assert out["HR@1"].tolist() == [1, 0]
    assert out["Recall@3"].tolist() == [1, 0]
    assert out["NDCG@5"][1] == pytest.approx(1 / math.log2(5))
    assert out["MRR"].tolist() == [1.0, 0.25]
    with pytest.raises(ValueError, match="unknown rank metric"):
        M.compute(np.array([0]), ["F1@3"])


def test_ranks_from_lists():
    ranked = np.array([[5, 3, 9], [1, 2, 4], [7, 7, 8]])
    r = M.ranks_from_lists(ranked, np.array([9, 3, 7]))
    assert r[0] == 2 and np.isinf(r[1]) and r[2] == 0
    assert M.hit_rate(r, 3).tolist() == [1, 0, 1]


def test_ranks_full_excludes_seen_and_counts_ties_above():
    scores = np.array([[0.1, 0.9, 0.5, 0.5, 0.8], [0.7, 0.7, 0.1, 0.2, 0.3]])
    # row 0: target 2 (0.5); item 1 (0.9) excluded; 4 above, 3 tied -> rank 2
    # row 1: target 1 (0.7); item 0 tied -> rank 1; excluding the target itself has no effect
    r = M.ranks_full(scores, np.array([2, 1]), exclude=[np.array([1]), np.array([1, 2])])
    np.testing.assert_array_equal(r, [2, 1])
    np.testing.assert_array_equal(M.ranks_full(scores, np.array([1, 4])), [0, 2])


def test_auc_by_hand():
    # positives 0.8, 0.4; negatives 0.5, 0.1: pairs (0.8>0.5, 0.8>0.1, 0.4<0.5, 0.4>0.1) = 3/4
    assert M.auc(np.array([1, 0, 1, 0]), np.array([0.8, 0.5, 0.4, 0.1])) == pytest.approx(0.75)
    # ties count one half: constant scores give 0.5
    assert M.auc(np.array([1, 0, 1, 0]), np.zeros(4)) == pytest.approx(0.5)
    # one tied pair out of 4: (1 + 1 + 0.5 + 1) / 4
    assert M.auc(np.array([1, 1, 0, 0]), np.array([0.9, 0.5, 0.5, 0.1])) == pytest.approx(0.875)
    assert math.isnan(M.auc(np.array([1, 1]), np.array([0.1, 0.2])))


def test_auc_matches_brute_force():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.integers(0, 10, 200).astype(float)  # many ties
    pos, neg = s[y == 1], s[y == 0]
    brute = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        len(pos) * len(neg)
    )
    assert M.auc(y, s) == pytest.approx(brute)
