"""NumPy kernels the torch-free inference paths share (`models.np_bert`, SASRec's NumPy
scoring): the exact GELU (through an erf accurate to float32), LayerNorm, softmax, mean-pool
and row normalisation. They
compute what torch's ``F.gelu``, ``nn.LayerNorm`` and ``softmax`` compute, to float32
rounding (`tests/models/test_np_runtime.py`)."""

from __future__ import annotations

import numpy as np

# erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0: fractional error < 1.2e-7
# everywhere (Press et al., Numerical Recipes, 2nd ed., 6.2, "erfcc")
_ERFC = (
    -1.26551223,
    1.00002368,
    0.37409196,
    0.09678418,
    -0.18628806,
    0.27886807,
    -1.13520398,
    1.48851587,
    -0.82215223,
    0.17087277,
)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise (float64 inside; absolute error < 1.2e-7)."""
    x = np.asarray(x, np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC[-1])
    for c in _ERFC[-2::-1]:
        poly = poly * t + c
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0)


def gelu(x: np.ndarray) -> np.ndarray:
    """The exact GELU, x Phi(x) (torch's ``F.gelu`` default)."""
    return (0.5 * x * (1.0 + erf(x * np.float64(0.7071067811865476)))).astype(x.dtype)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(eps)) * w + b


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (max subtracted; a row of -inf but one entry is fine)."""
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def mean_pool(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean of token vectors over the attention mask (`models.text_encoder.mean_pool` in NumPy)."""
    m = np.asarray(mask)[..., None].astype(hidden.dtype)
    return (hidden * m).sum(1) / np.maximum(m.sum(1), np.float32(1.0))


def normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Unit rows (torch's ``F.normalize``: x / max(||x||, eps))."""
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(eps))
