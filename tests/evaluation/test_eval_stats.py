import numpy as np
import pytest

from instructrec import stats as S


def test_bootstrap_ci_brackets_the_mean_and_is_seeded():
    rng = np.random.default_rng(1)
    v = rng.random(500)
    idx = S.resample_indices(len(v), 1000, seed=0)
    lo, hi = S.bootstrap_ci(v, idx)
    assert lo < v.mean() < hi
    # width close to the normal approximation 2 * 1.96 * sd / sqrt(n)
    assert (hi - lo) == pytest.approx(2 * 1.96 * v.std() / np.sqrt(len(v)), rel=0.15)
    np.testing.assert_array_equal(idx, S.resample_indices(len(v), 1000, seed=0))
    assert not np.array_equal(idx, S.resample_indices(len(v), 1000, seed=1))


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(2)
    a = rng.integers(0, 2, 400).astype(float)
    better = np.maximum(a, rng.random(400) < 0.3)  # wins on ~15% of users, never loses
    idx = S.resample_indices(400, 1000, seed=0)
    res = S.paired_bootstrap(better, a, idx)
    assert res["diff"] > 0 and res["p_bootstrap"] < 0.01 and res["diff_ci"][0] > 0
    same = S.paired_bootstrap(a, a.copy(), idx)
    assert same["diff"] == 0 and same["p_bootstrap"] == 1.0


def test_sign_test_by_hand():
    # 9 wins, 1 loss, 2 ties: two-sided binomial p = 2 * (1 + 10) / 2**10
    a = np.array([1] * 9 + [0] + [1, 0], float)
    b = np.array([0] * 9 + [1] + [1, 0], float)
    res = S.sign_test(a, b)
    assert (res["wins"], res["losses"], res["ties"]) == (9, 1, 2)
    assert res["p_sign"] == pytest.approx(2 * 11 / 2**10)
    assert S.sign_test(a, a)["p_sign"] == 1.0
