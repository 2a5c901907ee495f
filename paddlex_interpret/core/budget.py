"""``num_samples='auto'``: sample in rounds until the top superpixels are certified.

The explainer draws the masks of the cap once (its samplers are streams: the first ``n`` masks
of a draw of ``N`` are the masks of a draw of ``n``), then runs the model on them round by round.
After each round it fits the surrogate on all samples so far, computes the weights' error bars
(:func:`~paddlex_interpret.core.uncertainty.ridge_covariance`) and stops when, for every
explained label, the top ``top_k`` superpixels are certified
(:func:`~paddlex_interpret.core.uncertainty.top_k_certified`) at ``confidence``, the error spent
over the planned looks (Bonferroni), up to ties (superpixels shown to be within ``tolerance`` of
the largest weight of each other count as tied: more samples never order exact ties), or when
the cap is reached (``settings['budget_certified']`` is then False). The explanation is then the fit
on the masks used: exactly what an int budget of that size with the same seed gives.

The rounds grow geometrically (``first``, then x ``growth``, rounded to whole batches, up to
``cap``): few looks, so little of the confidence goes to the correction for looking, and a
certified easy image stops after a few hundred calls. ``settings`` records ``num_samples_used``,
``budget_certified``, the looks and the rounds.

Example::

    >>> AutoBudget().plan(n_segments=25, batch_size=50)
    [200, 300, 450, 700, 1000]
"""
from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Protocol, Sequence, Union

import numpy as np

from .surrogate import Prior, SurrogateFit
from .uncertainty import top_k_certified

__all__ = ["AutoBudget", "resolve_budget", "run_budget"]


class AutoBudget:
    """The stop rule of ``num_samples='auto'`` (see the module docstring).

    Args:
        top_k: superpixels that must be certified per explained label (fewer when the image has
            fewer superpixels).
        confidence: of the certification, over all looks.
        cap: the most model calls an explanation may spend.
        first: the first look (default ``max(200, 8 d)``, at most ``cap``).
        growth: each look's total over the previous one's.
        tolerance: superpixels shown to be within this fraction of the largest ``|weight|`` of
            each other count as tied for the stop (more samples never order exact ties).
    """

    def __init__(self, top_k: int = 5, confidence: float = 0.95, cap: int = 1000,
                 first: Optional[int] = None, growth: float = 1.5, tolerance: float = 0.1):
        if int(top_k) < 1:
            raise ValueError("budget top_k must be >= 1, got %r" % (top_k,))
        if not 0 < float(confidence) < 1:
            raise ValueError("budget confidence must be in (0, 1), got %r" % (confidence,))
        if int(cap) < 2:
            raise ValueError("budget cap must be >= 2, got %r" % (cap,))
        if not float(growth) > 1:
            raise ValueError("budget growth must be > 1, got %r" % (growth,))
        self.top_k = int(top_k)
        self.confidence = float(confidence)
        self.cap = int(cap)
        self.first = None if first is None else int(first)
        self.growth = float(growth)
        if not 0 <= float(tolerance) < 1:
            raise ValueError("budget tolerance must be in [0, 1), got %r" % (tolerance,))
        self.tolerance = float(tolerance)

    def plan(self, n_segments: int, batch_size: int) -> List[int]:
        """Cumulative sample counts at which to look (the last is the cap)."""
        step = int(batch_size) if int(batch_size) % 2 == 0 else 2 * int(batch_size)
        first = self.first if self.first is not None else max(200, 8 * int(n_segments))
        sizes: list[int] = []
        n: float = min(first, self.cap)
        while True:
            n = min(self.cap, int(math.ceil(n / float(step))) * step)
            if sizes and n <= sizes[-1]:
                n = min(self.cap, sizes[-1] + step)
            if sizes and n == sizes[-1]:
                break
            sizes.append(n)
            if n >= self.cap:
                break
            n = n * self.growth
        return sizes

    def describe(self) -> dict[str, Any]:
        return {"budget": "auto", "budget_top_k": self.top_k,
                "budget_confidence": self.confidence, "budget_cap": self.cap,
                "budget_tolerance": self.tolerance}


def resolve_budget(budget: Union[None, dict, "AutoBudget"]) -> "AutoBudget":
    """``None`` -> :class:`AutoBudget` defaults; a dict -> its arguments; an instance as is."""
    if budget is None:
        return AutoBudget()
    if isinstance(budget, AutoBudget):
        return budget
    if isinstance(budget, dict):
        return AutoBudget(**budget)
    raise TypeError("budget must be None, a dict or an AutoBudget, got %r" % (budget,))


class _Explainer(Protocol):
    """What :func:`run_budget` asks of a :class:`~paddlex_interpret.core.lime.LimeExplainer`."""

    budget: AutoBudget

    def _image_probabilities(self, image: np.ndarray, masks: np.ndarray,
                             outputs: np.ndarray) -> np.ndarray: ...

    def sample_weight(self, masks: np.ndarray) -> np.ndarray: ...

    def fit(self, masks: np.ndarray, outputs: np.ndarray, labels: np.ndarray,
            prior: np.ndarray | None = None, sample_weight: np.ndarray | None = None
            ) -> SurrogateFit: ...

    def covariance(self, masks: np.ndarray, outputs: np.ndarray, labels: np.ndarray,
                   sample_weight: np.ndarray, fit: SurrogateFit, prior: np.ndarray | None = None
                   ) -> np.ndarray | None: ...


def run_budget(explainer: _Explainer, masks: np.ndarray, plan: Sequence[int],
               predict: Callable[[np.ndarray], np.ndarray],
               choose_labels: Callable[[np.ndarray], np.ndarray], segments: np.ndarray,
               prior: Prior, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                         np.ndarray, dict[str, Any], Prior]:
    """``num_samples='auto'`` for a :class:`~paddlex_interpret.core.lime.LimeExplainer`: the
    model (``predict(masks part) -> outputs``) on ``masks`` (drawn for the cap) round by round,
    up to the looks of ``plan``, until every label's top superpixels are certified
    (``choose_labels(probabilities of the image) -> labels`` after the first round). Returns
    ``(masks used, outputs, probabilities of the image, labels, settings, prior)``."""
    policy = explainer.budget
    outputs: np.ndarray | None = None
    probs: np.ndarray | None = None
    labels: np.ndarray | None = None
    used, certified = 0, False
    k = min(policy.top_k, masks.shape[1] - 1)
    for n in plan:
        part = predict(masks[used:n])
        outputs = part if outputs is None else np.concatenate([outputs, part])
        used = n
        if probs is None or labels is None:  # the first sample is the image itself
            probs = explainer._image_probabilities(image, masks, outputs)
            labels = choose_labels(probs)
            if callable(prior):
                prior = prior(segments, labels)
        assert not callable(prior)  # made an array on the first look
        X = masks[:used]
        weights = explainer.sample_weight(X)
        fit = explainer.fit(X, outputs, labels, prior=prior, sample_weight=weights)
        cov = explainer.covariance(X, outputs, labels, weights, fit, prior)
        if cov is None:
            continue
        certified = all(top_k_certified(fit.coef[j], cov[j], k, policy.confidence, len(plan),
                                        policy.tolerance) for j in range(len(fit.coef)))
        if certified:
            break
    info = dict(policy.describe(), budget_looks=len(plan), budget_plan=[int(n) for n in plan],
                budget_certified=bool(certified))
    assert outputs is not None and probs is not None and labels is not None, "an empty plan"
    return masks[:used], outputs, probs, labels, info, prior
