"""The listwise models of `rivals.ScoreMix`: each fitting row is a list of candidates with
features (n, k, F) and the target in column 0.

- ``linear``: a conditional logit (McFadden 1974): softmax over each row's candidates of the
  standardised features @ w, cross-entropy on the target plus an L2 penalty, fitted by L-BFGS
  with the exact gradient (scipy);
- ``gbdt``: scikit-learn's ``HistGradientBoostingClassifier`` on (candidate, target or not),
  pointwise.

Models are plain dicts of arrays (and the classifier), fitted and scored by the functions
below; `ranks` and `list_metrics` read the target's rank from scores the same way
`evaluation.metrics` does.
"""

from __future__ import annotations

import numpy as np

KINDS = ("linear", "gbdt")


def ranks(scores: np.ndarray) -> np.ndarray:
    """0-based rank of column 0 per row, ties counted against it (as `metrics`)."""
    return (scores[:, 1:] >= scores[:, :1]).sum(axis=1)


def list_metrics(scores: np.ndarray) -> dict[str, float]:
    """HR@1 and NDCG over the whole list of the target in column 0."""
    r = ranks(scores)
    return {"hr@1": float((r == 0).mean()), "ndcg": float((1.0 / np.log2(r + 2.0)).mean())}


def fit_listwise(x: np.ndarray, kind: str, l2: float, seed: int) -> dict:
    """A model of ``kind`` fitted on features ``x`` (n, k, F), target in column 0; ``l2``: the
    linear model's ridge penalty; ``seed``: the tree model's."""
    if kind == "linear":
        return fit_linear(x, l2)
    from sklearn.ensemble import HistGradientBoostingClassifier

    n, k, f = x.shape
    y = np.zeros((n, k), np.int8)
    y[:, 0] = 1
    clf = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.05,
        max_leaf_nodes=15,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )
    clf.fit(x.reshape(-1, f), y.ravel())
    return {"kind": "gbdt", "clf": clf}


def score_listwise(model: dict, x: np.ndarray) -> np.ndarray:
    """(n, k) scores of features ``x`` (n, k, F) under ``model``."""
    n, k, f = x.shape
    if model["kind"] == "linear":
        return ((x - model["mean"]) / model["std"]) @ model["w"]
    return model["clf"].decision_function(x.reshape(-1, f)).reshape(n, k)


def fit_linear(x: np.ndarray, l2: float) -> dict:
    """Conditional logit: softmax over each row's candidates of standardised features @ w,
    cross-entropy on column 0 plus ``l2 * |w|^2`` (scipy L-BFGS, exact gradient)."""
    from scipy.optimize import minimize

    n, k, f = x.shape
    flat = x.reshape(-1, f)
    mean = flat.mean(axis=0)
    std = flat.std(axis=0)
    std = np.where(std > 1e-9, std, 1.0)
    z = (x - mean) / std
    z0 = z[:, 0].mean(axis=0)

    def loss(w):
        s = z @ w
        top = s.max(axis=1, keepdims=True)
        e = np.exp(s - top)
        tot = e.sum(axis=1, keepdims=True)
        p = e / tot
        val = float((np.log(tot[:, 0]) + top[:, 0] - s[:, 0]).mean() + l2 * w @ w)
        grad = np.einsum("nk,nkf->f", p, z) / n - z0 + 2 * l2 * w
        return val, grad

    res = minimize(loss, np.zeros(f), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return {"kind": "linear", "mean": mean, "std": std, "w": res.x}
