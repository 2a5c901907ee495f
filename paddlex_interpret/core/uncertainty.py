"""Error bars of LIME's weights and the top superpixels they certify.

LIME's surrogate is a kernel-weighted ridge fitted on random masks, so its weights are estimates
with sampling noise. This module gives every weight its standard error and says which of the top
superpixels are separated from the rest at a stated confidence.

* :func:`ridge_covariance`: the covariance of the weights over the random draw of the masks,
  the *sandwich* (heteroscedasticity-robust, HC1) estimator of a weighted ridge fit,
  ``A^-1 (sum_u g_u g_u') A^-1`` with ``A = Xc' W Xc + ridge`` and ``g_u`` the sum of
  ``w_i xc_i r_i`` over the rows of one independent draw ``u`` (a row, or a complementary pair
  for the paired samplers). It needs no model of the noise: the residual of LIME's linear fit is
  mostly the model's non-linear response, not independent noise, which a Bayesian posterior with
  a noise variance (BayesLIME) would assume. One solve serves every label.
* :func:`certified_top`: the largest ``j <= k`` such that every one of the top ``j`` superpixels
  beats every other superpixel, one-sided at ``confidence`` with a Bonferroni correction over
  the pairs compared, the values of ``j`` tried and the ``looks`` of a sequential budget
  (``num_samples='auto'`` decides after each round: each look spends part of the error).
  The coverage of this claim (how often the certified set is the converged explanation's top
  ``j``) is measured in BENCHMARKS.md ("Time to a stable explanation").

Example::

    >>> import numpy as np
    >>> coef = np.array([1.0, 0.8, 0.1, 0.0])
    >>> certified_top(coef, np.diag([1e-4] * 4), k=2)
    [0, 1]
    >>> certified_top(coef, np.diag([0.09] * 4), k=2)   # not told apart from 2 and 3
    []
"""
from __future__ import annotations

from statistics import NormalDist
from typing import List, Optional

import numpy as np

__all__ = ["ridge_covariance", "certified_top", "certify_all", "top_k_certified"]


def ridge_covariance(X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray, coef: np.ndarray,
                     intercept: np.ndarray, ridge: np.ndarray, cluster_size: int = 1) -> np.ndarray:
    """Sandwich covariance ``(L, d, d)`` of kernel-weighted ridge coefficients.

    Args:
        X: ``(N, d)`` masks. Y: ``(N, L)`` targets. sample_weight: ``(N,)``.
        coef, intercept: the fit, ``(L, d)`` and ``(L,)``.
        ridge: the penalty on the diagonal, a number or ``(L, d)`` (one per label).
        cluster_size: rows drawn together (2 for complementary pairs): their scores are summed
            before the outer product.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
    w = np.asarray(sample_weight, dtype=np.float64)
    coef = np.asarray(coef, dtype=np.float64).reshape(Y.shape[1], -1)
    n, d = X.shape
    L = Y.shape[1]
    x_mean = (w / w.sum()) @ X
    Xc = X - x_mean
    gram = Xc.T @ (Xc * w[:, None])
    ridge = np.broadcast_to(np.asarray(ridge, dtype=np.float64), (L, d))
    resid = Y - (X @ coef.T + np.asarray(intercept, dtype=np.float64).reshape(1, L))
    dof = n - d - 1
    scale = n / float(dof) if dof > 0 else np.inf
    c = max(int(cluster_size), 1)
    cov = np.empty((L, d, d))
    for j in range(L):
        a = gram.copy()
        a[np.diag_indices(d)] += ridge[j]
        try:
            ainv = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            ainv = np.linalg.pinv(a)
        g = Xc * (w * resid[:, j])[:, None]
        if c > 1:
            full = n // c * c
            g = np.vstack([g[:full].reshape(-1, c, d).sum(axis=1), g[full:]])
        cov[j] = scale * (ainv @ (g.T @ g) @ ainv)
    return cov


def _z(confidence, tests):
    return NormalDist().inv_cdf(1.0 - (1.0 - float(confidence)) / max(int(tests), 1))


def certified_top(coef: np.ndarray, cov: Optional[np.ndarray], k: int = 5,
                  confidence: float = 0.95, looks: int = 1, tolerance: float = 0.0) -> List[int]:
    """Ids (sorted) of the largest top-``j`` set, ``j <= k``, certified at ``confidence``.

    Superpixels are ranked by weight (what LIME shows first); the top ``j`` are certified when
    ``coef_i - coef_l > z sd(coef_i - coef_l)`` for every member ``i`` and non-member ``l``, with
    ``sd`` from the full covariance and ``z`` the one-sided normal quantile of ``confidence``
    after a Bonferroni correction over ``sum_j j (d - j)`` comparisons and ``looks``. An empty
    list certifies nothing; with infinite or missing variances nothing is certified.
    ``tolerance`` (a fraction of the largest ``|weight|``) lets superpixels that are shown to be
    within it of each other count as tied: the set is then certified up to such ties (what a
    budget can stop on: more samples never order exact ties).
    """
    m = np.asarray(coef, dtype=np.float64).reshape(-1)
    d = m.size
    k = min(int(k), d)
    if k < 1 or cov is None:
        return []
    cov = np.asarray(cov, dtype=np.float64).reshape(d, d)
    var = np.diag(cov)
    if not np.all(np.isfinite(var)):
        return []
    order = np.argsort(-m, kind="stable")
    if k == d:
        k = d - 1
        if k < 1:
            return sorted(order.tolist())
    tests = sum(j * (d - j) for j in range(1, k + 1)) * max(int(looks), 1)
    z = _z(confidence, tests)
    tol = float(tolerance) * float(np.max(np.abs(m)))
    best = []
    for j in range(1, k + 1):
        top, rest = order[:j], order[j:]
        diff = m[top][:, None] - m[rest][None, :]
        v = var[top][:, None] + var[rest][None, :] - 2.0 * cov[np.ix_(top, rest)]
        if np.all(diff + tol > z * np.sqrt(np.maximum(v, 0.0))):
            best = sorted(top.tolist())
    return best


def top_k_certified(coef: np.ndarray, cov: np.ndarray, k: int = 5, confidence: float = 0.95,
                    looks: int = 1, tolerance: float = 0.0) -> bool:
    """Whether the top-``k`` set itself (not a smaller one) is certified: the one claim a budget
    stops on, so the Bonferroni correction runs over its ``k (d - k)`` comparisons and the
    ``looks`` only (see :func:`certified_top` for ``tolerance``)."""
    m = np.asarray(coef, dtype=np.float64).reshape(-1)
    d = m.size
    k = min(int(k), d - 1)
    if k < 1:
        return True
    cov = np.asarray(cov, dtype=np.float64).reshape(d, d)
    var = np.diag(cov)
    if not np.all(np.isfinite(var)):
        return False
    order = np.argsort(-m, kind="stable")
    top, rest = order[:k], order[k:]
    z = _z(confidence, k * (d - k) * max(int(looks), 1))
    diff = m[top][:, None] - m[rest][None, :] + float(tolerance) * float(np.max(np.abs(m)))
    v = var[top][:, None] + var[rest][None, :] - 2.0 * cov[np.ix_(top, rest)]
    return bool(np.all(diff > z * np.sqrt(np.maximum(v, 0.0))))


def certify_all(coef: np.ndarray, cov: np.ndarray, k: int = 5, confidence: float = 0.95,
                looks: int = 1, tolerance: float = 0.0) -> List[List[int]]:
    """``[certified ids per label]`` for ``coef (L, d)`` and ``cov (L, d, d)``."""
    coef = np.asarray(coef, dtype=np.float64)
    return [certified_top(coef[j], cov[j], k, confidence, looks, tolerance)
            for j in range(len(coef))]
