"""Adaptive sampling for LIME: draw perturbations in rounds and stop once the top superpixels are
certified, instead of always spending ``num_samples`` model calls.

Slack et al. (2021), "Reliable Post hoc Explanations: Modeling Uncertainty in Explainability"
(NeurIPS; BayesLIME) show that LIME's weighted ridge surrogate is the mean of a Bayesian linear
regression whose posterior gives every feature importance a credible interval, and that this
bounds how many perturbations are needed for intervals of a given width ("perturbations to go").
This module uses that posterior to certify a *ranking* rather than every weight:

* after each round, fit the surrogate on all samples so far (LIME's kernel-weighted ridge, the
  same closed form as :class:`~paddlex_interpret.core.surrogate.WeightedRidge`) and compute the
  posterior standard deviation of each weight, ``sd = sqrt(diag(s^2 (Xc' W Xc + alpha I)^-1))``
  with ``s^2`` the kernel-weighted residual variance (``sum w r^2 / (n - d - 1)``);
* the top-``k`` set (by weight, or by ``|weight|``) is *certified* when every member ``i`` beats
  every non-member ``j`` with confidence: ``m_i - m_j + tol > z * sqrt(sd_i^2 + sd_j^2)``, where
  ``tol = tolerance * max|m|`` lets superpixels closer than ``tolerance`` of the largest weight
  count as ties, and ``z`` is the one-sided normal quantile of ``confidence`` with a Bonferroni
  correction over the ``k (d - k)`` pairs (so a noise classifier is certified with probability at
  most ``1 - confidence``, in practice never);
* sampling stops when the ranking is certified for every explained label *and* the top-``k`` set
  equals the previous round's (an empirical check that does not rely on the variance estimate);
  otherwise it goes on until ``num_samples`` (the cap).

With the same seed the masks are the first rows of the ones the explainer's sampler draws, so an
adaptive run that never stops early *is* the plain run. The explanation's settings record ``num_samples_used``,
``adaptive_converged``, the rounds and the posterior's estimate of the samples still needed
(Slack et al.'s perturbations-to-go, for the weakest boundary pair).

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.lime import LimeExplainer
    >>> def classifier(images):  # "class 1" = the left half is bright
    ...     left = images[:, :, :16].mean(axis=(1, 2, 3)) / 255.0
    ...     return np.stack([1 - left, left], axis=1)
    >>> img = np.full((32, 32, 3), 255, np.uint8)
    >>> seg = np.repeat(np.arange(8)[None, :], 32, axis=0).repeat(4, axis=1)  # 8 stripes
    >>> exp = LimeExplainer(classifier, num_samples=2000, batch_size=50, seed=0,
    ...                     adaptive=dict(top_k=4)).explain(img, segments=seg)
    >>> exp.settings["adaptive_converged"], exp.settings["num_samples_used"] < 2000
    (True, True)
    >>> sorted(exp.top_segments(1, 4).tolist())
    [0, 1, 2, 3]
"""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Callable, Protocol

import numpy as np

from .surrogate import Surrogate


__all__ = ["AdaptiveSampling", "resolve_adaptive", "posterior", "certify_topk"]


class AdaptiveSampling:
    """Settings of adaptive sampling (see the module docstring).

    Args:
        top_k: how many top superpixels must be certified (per explained label).
        tolerance: superpixels whose weights differ by less than ``tolerance`` x the largest
            ``|weight|`` may swap places (0 = strict).
        confidence: confidence of the certification (Bonferroni over the boundary pairs).
        round_size: samples per round (default: about ``num_samples / 15``, at least 100,
            a multiple of the batch size).
        min_samples: never stop before this many samples (default: two rounds).
        rank_by: ``'value'`` (largest positive weights: what LIME shows) or ``'abs'``.
    """

    def __init__(self, top_k: int = 5, tolerance: float = 0.05, confidence: float = 0.95,
                 round_size: int | None = None, min_samples: int | None = None,
                 rank_by: str = "value"):
        if int(top_k) < 1:
            raise ValueError("top_k must be >= 1, got %r" % (top_k,))
        if not 0 <= float(tolerance) < 1:
            raise ValueError("tolerance must be in [0, 1), got %r" % (tolerance,))
        if not 0 < float(confidence) < 1:
            raise ValueError("confidence must be in (0, 1), got %r" % (confidence,))
        if rank_by not in ("value", "abs"):
            raise ValueError("rank_by must be 'value' or 'abs', got %r" % (rank_by,))
        self.top_k = int(top_k)
        self.tolerance = float(tolerance)
        self.confidence = float(confidence)
        self.round_size = None if round_size is None else int(round_size)
        self.min_samples = None if min_samples is None else int(min_samples)
        self.rank_by = rank_by

    def describe(self) -> dict[str, Any]:
        return {"adaptive_top_k": self.top_k, "adaptive_tolerance": self.tolerance,
                "adaptive_confidence": self.confidence, "adaptive_rank_by": self.rank_by}

    def plan(self, num_samples: int, batch_size: int) -> tuple[int, int]:
        """``(round_size, min_samples)`` for a run capped at ``num_samples``."""
        if self.round_size is not None:
            size = self.round_size
        else:
            size = max(100, int(math.ceil(num_samples / 15.0)))
            size = int(math.ceil(size / float(batch_size))) * batch_size
        size = max(1, min(size, num_samples))
        min_samples = self.min_samples if self.min_samples is not None else 2 * size
        return size, max(1, min(min_samples, num_samples))


def resolve_adaptive(adaptive: bool | dict[str, Any] | AdaptiveSampling | None
                     ) -> AdaptiveSampling | None:
    """``None``/``False`` -> None; ``True`` -> defaults; a dict -> keyword arguments; or an
    :class:`AdaptiveSampling`."""
    if adaptive is None or adaptive is False:
        return None
    if adaptive is True:
        return AdaptiveSampling()
    if isinstance(adaptive, AdaptiveSampling):
        return adaptive
    if isinstance(adaptive, dict):
        return AdaptiveSampling(**adaptive)
    raise TypeError("adaptive must be None, True, a dict or an AdaptiveSampling, got %r"
                    % (adaptive,))


def posterior(masks: np.ndarray, targets: np.ndarray, sample_weight: np.ndarray, alpha: float = 1.0,
              beta: float = 0.0, tau: float = 1.0, prior: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of the kernel-weighted ridge surrogate.

    ``targets`` is ``(N, L)``; returns ``(mean (L, d), sd (L, d))``. The mean is the
    :class:`~paddlex_interpret.core.surrogate.WeightedRidge` solution; ``sd`` is infinite while
    there are not more samples than parameters.
    """
    X = np.asarray(masks, dtype=np.float64)
    Y = np.asarray(targets, dtype=np.float64).reshape(len(X), -1)
    w = np.asarray(sample_weight, dtype=np.float64)
    sw = w / w.sum()
    Xc = X - sw @ X
    Yc = Y - sw @ Y
    Xw = Xc * w[:, None]
    gram = Xc.T @ Xw
    d = X.shape[1]
    rhs = Xw.T @ Yc
    if beta > 0 and prior is not None:
        rhs = rhs + beta * tau * np.asarray(prior, dtype=np.float64).reshape(Y.shape[1], d).T
    gram[np.diag_indices(d)] += alpha + beta
    try:
        inv = np.linalg.inv(gram)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(gram)
    coef = (inv @ rhs).T  # (L, d)
    resid = Yc - Xc @ coef.T
    dof = len(X) - d - 1
    if dof <= 0:
        return coef, np.full_like(coef, np.inf)
    s2 = (w[:, None] * resid ** 2).sum(axis=0) / dof  # (L,)
    var = np.clip(np.diag(inv), 0, None)
    return coef, np.sqrt(s2[:, None] * var[None, :])


def certify_topk(mean: np.ndarray, sd: np.ndarray, top_k: int, tolerance: float = 0.05,
                 confidence: float = 0.95, rank_by: str = "value") -> tuple[bool, list[int], float]:
    """Whether the top-``k`` set of ``mean`` ``(d,)`` is separated from the rest.

    Returns ``(certified, top_ids (sorted), samples_factor)``: ``samples_factor`` is how many
    times the current number of samples the weakest boundary pair needs (posterior sd shrinks as
    ``1/sqrt(n)``): <= 1 when certified.

    >>> certify_topk(np.array([1.0, 0.9, 0.0, 0.1]), np.full(4, 0.01), 2)[:2]
    (True, [0, 1])
    >>> certify_topk(np.array([1.0, 0.9, 0.0, 0.1]), np.full(4, 0.5), 2)[:2]
    (False, [0, 1])
    """
    m = np.asarray(mean, dtype=np.float64).reshape(-1)
    s = np.asarray(sd, dtype=np.float64).reshape(-1)
    d = m.size
    k = min(int(top_k), d)
    key = m if rank_by == "value" else np.abs(m)
    order = np.argsort(-key, kind="stable")
    top, rest = order[:k], order[k:]
    if rest.size == 0:
        return True, sorted(top.tolist()), 0.0
    if not np.all(np.isfinite(s)):
        return False, sorted(top.tolist()), float("inf")
    pairs = k * rest.size
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / pairs)
    tol = tolerance * float(np.max(np.abs(m))) if m.size else 0.0
    gap = key[top][:, None] - key[rest][None, :] + tol         # (k, d-k)
    spread = np.sqrt(s[top][:, None] ** 2 + s[rest][None, :] ** 2)
    need = z * spread
    certified = bool(np.all(gap > need))
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(gap > 0, (need / gap) ** 2, np.inf)
    return certified, sorted(top.tolist()), float(np.max(factor))


class _Explainer(Protocol):
    """What :func:`run_adaptive` asks of a :class:`~paddlex_interpret.core.lime.LimeExplainer`."""

    surrogate: Surrogate

    def sample_weight(self, masks: np.ndarray) -> np.ndarray: ...


def run_adaptive(explainer: _Explainer, masks: np.ndarray, labels: np.ndarray, batch_size: int,
                 policy: AdaptiveSampling, predict_masks: Callable[[np.ndarray], np.ndarray],
                 prior: np.ndarray | None = None) -> tuple[int, np.ndarray, dict[str, Any]]:
    """Consume ``masks`` (all ``num_samples`` rows, drawn as the explainer's sampler draws them)
    in rounds.

    ``predict_masks(masks_part) -> (n, C)`` runs the model; the sample weights are the
    explainer's (:meth:`~paddlex_interpret.core.lime.LimeExplainer.sample_weight`) and the
    posterior uses its surrogate's ridge terms (``penalties()``). Returns ``(n_used, outputs
    (n_used, C), info dict)``.
    """
    num_samples = len(masks)
    size, min_samples = policy.plan(num_samples, batch_size)
    alpha, beta, tau = (float(v) for v in explainer.surrogate.penalties())
    outputs = None
    used = 0
    previous_top = None
    rounds = []
    converged = False
    factor = float("inf")
    while used < num_samples:
        step = min(size, num_samples - used)
        part = predict_masks(masks[used:used + step])
        if outputs is None:
            outputs = np.empty((num_samples, part.shape[1]), dtype=np.float64)
        outputs[used:used + step] = part
        used += step
        X = masks[:used]
        weights = explainer.sample_weight(X)
        mean, sd = posterior(X, outputs[:used, labels], weights, alpha, beta, tau,
                             prior if beta > 0 else None)
        tops, ok, factors = [], True, []
        for li in range(len(labels)):
            c, top, f = certify_topk(mean[li], sd[li], policy.top_k, policy.tolerance,
                                     policy.confidence, policy.rank_by)
            ok = ok and c
            tops.append(top)
            factors.append(f)
        factor = max(factors)
        stable = previous_top is not None and tops == previous_top
        rounds.append({"samples": used, "certified": ok, "same_top": stable})
        previous_top = tops
        if ok and stable and used >= min_samples:
            converged = True
            break
    info = {"num_samples_used": int(used), "adaptive_converged": converged,
            "adaptive_rounds": len(rounds), "adaptive_round_size": int(size),
            "adaptive_estimated_samples": (int(math.ceil(used * factor))
                                           if math.isfinite(factor) else None)}
    info.update(policy.describe())
    assert outputs is not None, "no masks to sample"
    return used, outputs[:used], info
