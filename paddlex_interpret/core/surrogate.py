"""Interpretable surrogates fitted on (mask, model output) pairs: LIME's kernel and weighted ridge,
and ridge with a prior (GLIME).

``WeightedRidge(alpha, beta)`` minimises, per explained label,
``sum_i pi_i (y_i - b - x_i.w)^2 + alpha ||w||^2 + beta ||w - tau w0||^2``: with ``beta=0`` it is
exactly scikit-learn's ``Ridge(alpha).fit(X, y, sample_weight=pi)`` (PaddleX 1.3's surrogate), with a
prior ``w0`` and ``beta>0`` the fit is pulled toward ``tau w0`` (GLIME's default). One closed-form
solve serves all labels. ``PriorScaledRidge`` uses the prior the other way G-LIME (Li et al., AIJ
2022) does: as a per-superpixel penalty, ``alpha_j`` large where the prior says "irrelevant".

Every surrogate is a :class:`Surrogate`: ``fit(X, Y, sample_weight, prior=None)`` returning a
:class:`SurrogateFit`, ``uses_prior`` (whether ``fit`` reads the prior: GLIME), ``penalties()``
(the ridge terms adaptive sampling's posterior uses) and ``describe()``.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.surrogate import WeightedRidge
    >>> from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
    >>> X = np.random.default_rng(0).integers(0, 2, (200, 3)).astype(bool); X[0] = True
    >>> Y = (X @ np.array([0.6, 0.0, -0.3]))[:, None] + 0.1
    >>> fit = WeightedRidge(alpha=1e-6).fit(X, Y, exponential_kernel(cosine_distance_to_all_on(X)))
    >>> np.round(fit.coef[0], 3).tolist() == [0.6, 0.0, -0.3]
    True
"""
from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator, Optional, TypeVar, Union, cast

import numpy as np
import numpy.typing as npt

__all__ = ["Surrogate", "SurrogateFit", "WeightedRidge", "PriorScaledRidge", "EvidenceRidge",
           "SklearnSurrogate", "as_surrogate", "single_thread_blas", "Prior"]

_BLAS: dict[str, Any] = {}
_F = TypeVar("_F", bound=Callable[..., Any])
#: GLIME's prior: ``(L, d)`` weights, a function ``(segments, labels) -> (L, d)``, or None
Prior = Optional[Union[np.ndarray, Callable[[np.ndarray, np.ndarray], np.ndarray]]]


@contextlib.contextmanager
def single_thread_blas() -> Iterator[None]:
    """numpy's BLAS limited to one thread inside the block (``threadpoolctl``, a scikit-learn
    dependency; a no-op without it). A surrogate's problem is small (N x d, d ~ 100): one thread
    is as fast, and several compete with the inference engine's threads, which keep spinning
    after a forward pass (BENCHMARKS.md, "Where MobileNetV3_small's LIME time goes")."""
    ctl: Any = _BLAS.get("ctl")
    if ctl is None:
        try:
            from threadpoolctl import ThreadpoolController

            ctl = ThreadpoolController()
        except Exception:  # threadpoolctl missing or failing: leave BLAS as it is
            ctl = False
        _BLAS["ctl"] = ctl
    if ctl is False:
        yield
        return
    with ctl.limit(limits=1, user_api="blas"):
        yield


def _one_blas_thread(fit: _F) -> _F:
    """Run a surrogate's ``fit`` under :func:`single_thread_blas`."""
    @functools.wraps(fit)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        with single_thread_blas():
            return fit(*args, **kwargs)
    return cast(_F, wrapped)


class SurrogateFit:
    """Coefficients ``(L, d)``, intercepts, weighted R^2 and the prediction for the all-on mask."""

    def __init__(self, coef: npt.ArrayLike, intercept: npt.ArrayLike, score: npt.ArrayLike,
                 local_prediction: npt.ArrayLike):
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.score = np.asarray(score, dtype=np.float64)
        self.local_prediction = np.asarray(local_prediction, dtype=np.float64)


def _weighted_r2(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    mean = np.average(y, axis=0, weights=w)
    ss_res = (w[:, None] * (y - pred) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (y - mean) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(ss_tot > 0, 1.0 - ss_res / ss_tot, np.where(ss_res > 0, 0.0, 1.0))
    return r2


class Surrogate:
    """An interpretable model fitted on (mask, model output) pairs (see the module docstring)."""

    @property
    def uses_prior(self) -> bool:
        """Whether :meth:`fit` reads its ``prior`` (then the explanation is GLIME)."""
        return False

    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray,
            prior: np.ndarray | None = None) -> SurrogateFit:
        """Fit ``Y (N, L)`` on ``X (N, d)`` with weights ``sample_weight (N,)``; returns a
        :class:`SurrogateFit`."""
        raise NotImplementedError

    def penalties(self) -> tuple[float, float, float]:
        """``(alpha, beta, tau)`` of the kernel-weighted ridge whose Gaussian posterior adaptive
        sampling uses for this surrogate (:func:`~paddlex_interpret.core.adaptive.posterior`)."""
        return (1.0, 0.0, 1.0)

    def ridge_diag(self, fit: SurrogateFit, n_labels: int, n_features: int,
                   prior: np.ndarray | None = None) -> np.ndarray | None:
        """``(L, d)`` penalties on the diagonal of the fit's normal equations, for its error bars
        (:func:`~paddlex_interpret.core.uncertainty.ridge_covariance`); None when this
        surrogate is not such a ridge (then an explanation has no error bars)."""
        return None

    def describe(self) -> dict[str, Any]:
        return {"surrogate": type(self).__name__}


class WeightedRidge(Surrogate):
    """Kernel-weighted ridge regression with an intercept and an optional prior (GLIME).

    Args:
        alpha: the ridge penalty (PaddleX 1.3 and ``lime``: 1.0).
        beta: strength of the pull toward ``tau * prior`` (0 = plain LIME).
        tau: scale applied to the prior.
    """

    def __init__(self, alpha: float = 1.0, beta: float = 0.0, tau: float = 1.0):
        if alpha < 0 or beta < 0:
            raise ValueError("alpha and beta must be >= 0")
        self.alpha, self.beta, self.tau = float(alpha), float(beta), float(tau)

    @property
    def uses_prior(self) -> bool:
        return self.beta > 0

    def penalties(self) -> tuple[float, float, float]:
        return (self.alpha, self.beta, self.tau)

    def ridge_diag(self, fit: SurrogateFit, n_labels: int, n_features: int,
                   prior: np.ndarray | None = None) -> np.ndarray | None:
        return np.full((n_labels, n_features), self.alpha + self.beta)

    def describe(self) -> dict[str, Any]:
        return {"surrogate": "WeightedRidge", "alpha": self.alpha, "beta": self.beta,
                "tau": self.tau}

    @_one_blas_thread
    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray,
            prior: np.ndarray | None = None) -> SurrogateFit:
        """Fit ``Y (N, L)`` on ``X (N, d)``; ``prior (L, d)`` is needed when ``beta > 0``."""
        X, Y, w, x_mean, y_mean, gram, rhs = _centred_normal_equations(X, Y, sample_weight)
        d = X.shape[1]
        if self.beta > 0:
            if prior is None:
                raise ValueError("WeightedRidge with beta > 0 needs a prior (the GLIME global weights)")
            prior = np.asarray(prior, dtype=np.float64).reshape(Y.shape[1], d)
            rhs = rhs + self.beta * self.tau * prior.T
        gram[np.diag_indices(d)] += self.alpha + self.beta
        return _solve(gram, rhs, X, Y, w, x_mean, y_mean)


def _solve(gram, rhs, X, Y, w, x_mean, y_mean):
    """Coefficients ``(L, d)`` from one gram matrix (or ``(L, d, d)``, one per label)."""
    try:
        if gram.ndim == 3:
            coef = np.linalg.solve(gram, rhs.T[:, :, None])[:, :, 0]
        else:
            coef = np.linalg.solve(gram, rhs).T
    except np.linalg.LinAlgError:
        coef = (np.linalg.pinv(gram) @ (rhs.T[:, :, None] if gram.ndim == 3 else rhs))
        coef = coef[:, :, 0] if gram.ndim == 3 else coef.T
    intercept = y_mean - coef @ x_mean
    pred = X @ coef.T + intercept
    local = X[0] @ coef.T + intercept
    return SurrogateFit(coef, intercept, _weighted_r2(Y, pred, w), local)


def _centred_normal_equations(X, Y, sample_weight):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    w = np.asarray(sample_weight, dtype=np.float64)
    sw = w / w.sum()
    x_mean = sw @ X
    y_mean = sw @ Y
    Xw = (X - x_mean) * w[:, None]
    return X, Y, w, x_mean, y_mean, (X - x_mean).T @ Xw, Xw.T @ (Y - y_mean)


class PriorScaledRidge(Surrogate):
    """Kernel-weighted ridge whose penalty on superpixel ``j`` shrinks with its prior relevance
    (the G-LIME way of using a global prior, Li et al. 2022, for ridge): minimises
    ``sum_i pi_i (y_i - b - x_i.w)^2 + sum_j (alpha + lam / (r_j + eps)) w_j^2`` with
    ``r_j = |w0_j| / mean_j |w0_j|``. Equivalent to rescaling feature ``j`` by the prior before a
    uniform ridge. Unlike :class:`WeightedRidge`'s pull, it never moves a weight toward the
    prior's value, it only shrinks the superpixels the prior deems irrelevant harder; ``lam=0``
    is plain ridge.
    """

    def __init__(self, alpha: float = 1.0, lam: float = 10.0, eps: float = 0.1):
        if alpha < 0 or lam < 0 or eps <= 0:
            raise ValueError("alpha and lam must be >= 0 and eps > 0")
        self.alpha, self.lam, self.eps = float(alpha), float(lam), float(eps)

    @property
    def uses_prior(self) -> bool:
        return self.lam > 0

    def penalties(self) -> tuple[float, float, float]:
        return (self.alpha, 0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {"surrogate": "PriorScaledRidge", "alpha": self.alpha, "lam": self.lam,
                "eps": self.eps}

    @_one_blas_thread
    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray,
            prior: np.ndarray | None = None) -> SurrogateFit:
        X, Y, w, x_mean, y_mean, gram, rhs = _centred_normal_equations(X, Y, sample_weight)
        d = X.shape[1]
        if self.lam == 0:
            gram[np.diag_indices(d)] += self.alpha
            return _solve(gram, rhs, X, Y, w, x_mean, y_mean)
        if prior is None:
            raise ValueError("PriorScaledRidge with lam > 0 needs a prior (the GLIME global weights)")
        r = np.abs(np.asarray(prior, dtype=np.float64).reshape(Y.shape[1], d))
        mean = r.mean(axis=1, keepdims=True)
        r = np.where(mean > 0, r / np.maximum(mean, 1e-300), 1.0)
        grams = np.repeat(gram[None], Y.shape[1], axis=0)
        idx = np.arange(d)
        grams[:, idx, idx] += self.alpha + self.lam / (r + self.eps)
        return _solve(grams, rhs, X, Y, w, x_mean, y_mean)


class EvidenceRidge(Surrogate):
    """:class:`WeightedRidge` whose prior strength ``beta`` (and, by default, the prior's scale
    ``tau``) are chosen per label from the samples: the ``beta`` of ``betas`` with the largest
    marginal likelihood (type-II maximum likelihood, "evidence") of the Bayesian reading of the
    ridge fit, ``y_i = b + x_i.w + e_i``, ``e_i ~ N(0, s^2 / pi_i)``,
    ``w ~ N(m, s^2 / (alpha + beta) I)`` with ``m = beta * tau * w0 / (alpha + beta)`` (the same
    minimiser as ``WeightedRidge``), the noise ``s^2`` profiled out and the intercept centred away.
    With ``fit_tau=True`` the scale ``tau >= 0`` is profiled too (a NormLIME prior is in other
    units than LIME's weights: only its direction is trusted). Where the samples agree with the
    prior the evidence rises with ``beta`` (trust the prior); where they contradict it, it falls
    (trust the samples). The choices are in ``fit(...).beta`` / ``.tau`` and ``last_beta``.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 2, (200, 6)).astype(float); w0 = np.array([[3., 0, 0, 1, 0, 0]])
    >>> y = X @ w0[0] + 0.1 * rng.normal(size=200)
    >>> EvidenceRidge().fit(X, y, np.ones(200), prior=w0 / 10).beta[0] > 10   # agrees (scaled)
    True
    >>> EvidenceRidge().fit(X, y, np.ones(200), prior=-w0).beta[0] < 1   # contradicts
    True
    """

    def __init__(self, alpha: float = 1.0, tau: float = 1.0, betas: npt.ArrayLike | None = None,
                 fit_tau: bool = True):
        if alpha < 0:
            raise ValueError("alpha must be >= 0")
        self.alpha, self.tau, self.fit_tau = float(alpha), float(tau), bool(fit_tau)
        self.betas = np.asarray(np.logspace(-2, 4, 31) if betas is None else betas, np.float64)
        if self.betas.ndim != 1 or not len(self.betas) or (self.betas < 0).any():
            raise ValueError("betas must be a non-empty list of values >= 0")
        self.last_beta: np.ndarray | None = None

    uses_prior = True

    def penalties(self) -> tuple[float, float, float]:
        return (self.alpha, 0.0, 1.0)

    def ridge_diag(self, fit: SurrogateFit, n_labels: int, n_features: int,
                   prior: np.ndarray | None = None) -> np.ndarray | None:
        beta = np.asarray(getattr(fit, "beta", np.zeros(n_labels)), dtype=np.float64)
        return np.repeat((self.alpha + beta)[:, None], n_features, axis=1)

    def describe(self) -> dict[str, Any]:
        return {"surrogate": "EvidenceRidge", "alpha": self.alpha,
                "tau": "fitted" if self.fit_tau else self.tau,
                "betas": [float(self.betas.min()), float(self.betas.max()), len(self.betas)]}

    @_one_blas_thread
    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray,
            prior: np.ndarray | None = None) -> SurrogateFit:
        X, Y, w, x_mean, y_mean, gram, rhs = _centred_normal_equations(X, Y, sample_weight)
        n, d = X.shape
        if prior is None:
            raise ValueError("EvidenceRidge needs a prior (the GLIME global weights)")
        prior = np.asarray(prior, dtype=np.float64).reshape(Y.shape[1], d)
        lam, V = np.linalg.eigh(gram)
        lam = np.maximum(lam, 0.0)
        yy = (w[:, None] * (Y - y_mean) ** 2).sum(axis=0)  # y'Wy per label
        L = Y.shape[1]
        chosen, taus = np.empty(L), np.empty(L)
        for c in range(L):
            w0 = prior[c]
            g0 = gram @ w0
            rv, gv = V.T @ rhs[:, c], V.T @ g0
            best = (-np.inf, 0.0, 0.0)
            for beta in self.betas:
                s = self.alpha + beta
                if s <= 0:
                    continue
                inv = 1.0 / (lam + s)
                # y'S^-1 y, y'S^-1 z, z'S^-1 z with z = X w0 and S = W^-1 + X X' / s (Woodbury)
                a = yy[c] - np.sum(rv * rv * inv)
                b = rhs[:, c] @ w0 - np.sum(rv * gv * inv)
                q = w0 @ g0 - np.sum(gv * gv * inv)
                if self.fit_tau:  # the pull target t * w0, t = beta * tau / s >= 0
                    t = b / q if (b > 0 and q > 1e-300) else 0.0
                else:
                    t = beta * self.tau / s
                quad = a - 2.0 * t * b + t * t * q
                ev = -0.5 * (n - 1) * np.log(max(quad, 1e-300)) - 0.5 * np.sum(np.log1p(lam / s))
                if ev > best[0]:
                    best = (ev, beta, t * s / beta if beta > 0 else 0.0)
            chosen[c], taus[c] = best[1], best[2]
        grams = np.repeat(gram[None], L, axis=0)
        idx = np.arange(d)
        grams[:, idx, idx] += self.alpha + chosen[:, None]
        fit = _solve(grams, rhs + ((chosen * taus)[:, None] * prior).T, X, Y, w, x_mean, y_mean)
        fit.beta, fit.tau = chosen, taus
        self.last_beta = chosen
        return fit


class SklearnSurrogate(Surrogate):
    """Any scikit-learn regressor with ``coef_``/``intercept_`` and ``fit(X, y, sample_weight)``,
    cloned and fitted once per label (e.g. ``Lasso``); slower than :class:`WeightedRidge`."""

    def __init__(self, regressor: Any):
        self.regressor = regressor

    def penalties(self) -> tuple[float, float, float]:
        return (float(getattr(self.regressor, "alpha", 1.0)), 0.0, 1.0)

    def describe(self) -> dict[str, Any]:
        return {"surrogate": type(self.regressor).__name__}

    @_one_blas_thread
    def fit(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray,
            prior: np.ndarray | None = None) -> SurrogateFit:
        from sklearn.base import clone

        X = np.asarray(X, dtype=np.float64)
        Y = np.asarray(Y, dtype=np.float64).reshape(len(X), -1)
        coefs, icpts, scores, local = [], [], [], []
        for j in range(Y.shape[1]):
            m = clone(self.regressor).fit(X, Y[:, j], sample_weight=sample_weight)
            coefs.append(np.ravel(m.coef_))
            icpts.append(float(np.ravel(m.intercept_)[0]) if np.ndim(m.intercept_) else float(m.intercept_))
            scores.append(m.score(X, Y[:, j], sample_weight=sample_weight))
            local.append(float(m.predict(X[:1])[0]))
        return SurrogateFit(coefs, icpts, scores, local)


def as_surrogate(surrogate: Any) -> Surrogate:
    """A :class:`Surrogate`: ``None`` -> ``WeightedRidge(alpha=1)`` (PaddleX 1.3's Ridge), a
    :class:`Surrogate` as is, a scikit-learn regressor (``fit`` and ``get_params``) wrapped in
    :class:`SklearnSurrogate`; anything else raises ``TypeError``."""
    if surrogate is None:
        return WeightedRidge(alpha=1.0)
    if isinstance(surrogate, Surrogate):
        return surrogate
    if callable(getattr(surrogate, "fit", None)) and callable(getattr(surrogate, "get_params",
                                                                        None)):
        return SklearnSurrogate(surrogate)
    raise TypeError("surrogate must be a paddlex_interpret.core.surrogate.Surrogate or a "
                    "scikit-learn regressor, got %r" % (surrogate,))
