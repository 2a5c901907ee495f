"""Scores for superpixel explanations: faithfulness (deletion / insertion, MoRF / LeRF), agreement
with a ground-truth mask (pointing game, IoU) and stability across repeated runs.

Pure numpy. The model enters only as ``classifier_fn``: a
:class:`~paddlex_interpret.core.classifier.Classifier` or a function ``(B, H, W, 3) uint8 -> (B, C)``
probabilities or logits. Perturbed images are built like LIME's (hidden superpixels take the
*fill*: ``'black'``, ``'mean'``, ``'blur'``, a colour or an image) and run through the classifier's
``predict_masks``, ``batch_size`` at a time, never all at once.

* **Deletion** (= MoRF, "most relevant first"): hide superpixels in decreasing weight order and
  follow the probability of the explained label; a faithful explanation makes it drop fast, so
  *lower* area under the curve is better.
* **Insertion**: start from the fill and reveal superpixels in the same order; *higher* is better.
* **LeRF** ("least relevant first"): hide in increasing weight order; higher is better.

The x axis of a curve is the fraction of *pixels* changed so far (``x='pixels'``, default: a large
superpixel counts for its area) or of superpixels (``x='segments'``); areas are trapezoids on
``[0, 1]``.

Example: a model that looks only at the left half; the oracle explanation (left stripes first)
deletes the evidence faster than the reverse order::

    >>> import numpy as np
    >>> from paddlex_interpret.core import metrics
    >>> def classifier(images):  # p(class 1) = brightness of the left half
    ...     left = images[:, :, :16].mean(axis=(1, 2, 3)) / 255.0
    ...     return np.stack([1 - left, left], axis=1)
    >>> img = np.full((32, 32, 3), 255, np.uint8)
    >>> seg = np.repeat(np.arange(4)[None, :], 32, axis=0).repeat(8, axis=1)  # 4 vertical stripes
    >>> oracle = np.array([1.0, 1.0, 0.0, 0.0]); reverse = oracle[::-1].copy()
    >>> good = metrics.deletion_auc(classifier, img, seg, oracle, label=1)
    >>> bad = metrics.deletion_auc(classifier, img, seg, reverse, label=1)
    >>> round(good, 3), round(bad, 3)
    (0.25, 0.75)
    >>> metrics.insertion_auc(classifier, img, seg, oracle, label=1)
    0.75
    >>> metrics.topk_jaccard(oracle, oracle, k=2), metrics.spearman(oracle, oracle)
    (1.0, 1.0)
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .agreement import (explanation_iou, iou, pointing_game, spearman, stability,
                        top_segments_mask, topk_jaccard)
from .classifier import ClassifierLike, as_classifier
from .explanation import Explanation
from .fill import FillSpec, make_fill

__all__ = ["order_segments", "perturbation_curve", "deletion_curve", "insertion_curve",
           "morf_curve", "lerf_curve", "area_under_curve", "deletion_auc", "insertion_auc",
           "aopc", "top_segments_mask", "pointing_game", "iou", "explanation_iou",
           "topk_jaccard", "spearman", "stability", "explanation_scores"]


# ----------------------------------------------------------------------------- ordering / curves
def order_segments(weights: npt.ArrayLike, order: str = "morf",
                   rng: int | np.random.Generator | None = None) -> np.ndarray:
    """Superpixel ids in the order they are changed.

    ``order``: ``'morf'`` (decreasing weight, ties by id), ``'lerf'`` (increasing weight) or
    ``'random'`` (a permutation from ``rng``, a seed or ``numpy.random.Generator``).

    >>> order_segments(np.array([0.1, 0.5, -0.2])).tolist()
    [1, 0, 2]
    >>> order_segments([0.1, 0.5, -0.2], 'lerf').tolist()
    [2, 0, 1]
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if order == "morf":
        return np.argsort(-w, kind="stable")
    if order == "lerf":
        return np.argsort(w, kind="stable")
    if order == "random":
        return np.random.default_rng(rng).permutation(len(w))
    raise ValueError("order must be 'morf', 'lerf' or 'random', got %r" % (order,))


def _steps(n: int, num_steps: int | None) -> np.ndarray:
    """Counts of changed superpixels at each point: ``0..n`` or ``num_steps + 1`` spread points."""
    if num_steps is None or num_steps >= n:
        return np.arange(n + 1)
    if num_steps < 1:
        raise ValueError("num_steps must be >= 1 or None, got %r" % (num_steps,))
    return np.unique(np.rint(np.linspace(0, n, int(num_steps) + 1)).astype(np.int64))


def perturbation_curve(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
                       weights: npt.ArrayLike, label: int, mode: str = "deletion",
                       order: str = "morf", fill: FillSpec = "black", batch_size: int = 50,
                       num_steps: int | None = None, x: str = "pixels",
                       rng: int | np.random.Generator | None = None
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The model's probability of ``label`` as superpixels are hidden (``mode='deletion'``) or
    revealed from the fill (``mode='insertion'``) in ``order`` of ``weights``.

    Args:
        classifier_fn: a :class:`~paddlex_interpret.core.classifier.Classifier` or
            ``(B, H, W, 3) uint8 -> (B, C)`` probabilities or logits.
        image: ``(H, W, 3)`` uint8, the image that was explained.
        segments: ``(H, W)`` int superpixel ids ``0..d-1``.
        weights: ``(d,)`` superpixel weights for ``label``.
        label: class id whose probability is followed.
        order: ``'morf'``, ``'lerf'`` or ``'random'`` (see :func:`order_segments`); or an explicit
            ``(d,)`` permutation.
        fill: what hidden superpixels become (as in LIME: ``'black'``, ``'mean'``, ``'blur'``...).
        batch_size: images per classifier call.
        num_steps: evaluate at most ``num_steps + 1`` points (``None``: after every superpixel).
        x: ``'pixels'`` (fraction of pixels changed) or ``'segments'``.

    Returns:
        ``(xs, probs)``: two ``(steps,)`` float arrays; ``xs`` goes from 0 to 1.
    """
    image = np.asarray(image)
    segments = np.asarray(segments)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    n = int(segments.max()) + 1
    if w.size != n:
        raise ValueError("got %d weights for %d superpixels" % (w.size, n))
    if mode not in ("deletion", "insertion"):
        raise ValueError("mode must be 'deletion' or 'insertion', got %r" % (mode,))
    if isinstance(order, str):
        perm = order_segments(w, order, rng)
    else:
        perm = np.asarray(order, dtype=np.int64).reshape(-1)
        if sorted(perm.tolist()) != list(range(n)):
            raise ValueError("order must be a permutation of the %d superpixel ids" % n)
    counts = _steps(n, num_steps)
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    changed = rank[None, :] < counts[:, None]  # (steps, n): superpixel already changed at step
    masks = ~changed if mode == "deletion" else changed  # True = show the image there
    fill_image = make_fill(image, segments, fill)
    classifier = as_classifier(classifier_fn)
    with classifier.hold_weights():
        probs = classifier.predict_masks(image, fill_image, segments, masks,
                                         int(batch_size))[:, int(label)]
    if x == "pixels":
        areas = np.bincount(segments.ravel(), minlength=n).astype(np.float64)
        cum = np.concatenate([[0.0], np.cumsum(areas[perm])]) / areas.sum()
        xs = cum[counts]
    elif x == "segments":
        xs = counts / float(n)
    else:
        raise ValueError("x must be 'pixels' or 'segments', got %r" % (x,))
    return xs.astype(np.float64), probs


def deletion_curve(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
                   weights: npt.ArrayLike, label: int, **kwargs: Any
                   ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`perturbation_curve` hiding the highest-weighted superpixels first (MoRF)."""
    kwargs.setdefault("order", "morf")
    return perturbation_curve(classifier_fn, image, segments, weights, label, mode="deletion",
                              **kwargs)


def insertion_curve(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
                    weights: npt.ArrayLike, label: int, **kwargs: Any
                    ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`perturbation_curve` revealing the highest-weighted superpixels first."""
    kwargs.setdefault("order", "morf")
    return perturbation_curve(classifier_fn, image, segments, weights, label, mode="insertion",
                              **kwargs)


def morf_curve(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
               weights: npt.ArrayLike, label: int, **kwargs: Any
               ) -> tuple[np.ndarray, np.ndarray]:
    """Most Relevant First: the deletion curve (an alias)."""
    kwargs["order"] = "morf"
    return perturbation_curve(classifier_fn, image, segments, weights, label, mode="deletion",
                              **kwargs)


def lerf_curve(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
               weights: npt.ArrayLike, label: int, **kwargs: Any
               ) -> tuple[np.ndarray, np.ndarray]:
    """Least Relevant First: hide the lowest-weighted superpixels first (should stay high)."""
    kwargs["order"] = "lerf"
    return perturbation_curve(classifier_fn, image, segments, weights, label, mode="deletion",
                              **kwargs)


def area_under_curve(xs: npt.ArrayLike, ys: npt.ArrayLike) -> float:
    """Trapezoidal area of ``ys`` over ``xs`` (``xs`` increasing in [0, 1]).

    >>> area_under_curve([0, 0.5, 1], [1, 1, 0])
    0.75
    """
    xs = np.asarray(xs, dtype=np.float64)
    ys = np.asarray(ys, dtype=np.float64)
    if xs.size < 2:
        return float(ys[0]) if ys.size else 0.0
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))


def deletion_auc(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
                 weights: npt.ArrayLike, label: int, **kwargs: Any) -> float:
    """Area under the deletion (MoRF) curve; lower = more faithful.
    See :func:`perturbation_curve`."""
    return area_under_curve(*deletion_curve(classifier_fn, image, segments, weights, label,
                                            **kwargs))


def insertion_auc(classifier_fn: ClassifierLike, image: np.ndarray, segments: np.ndarray,
                  weights: npt.ArrayLike, label: int, **kwargs: Any) -> float:
    """Area under the insertion curve; higher = more faithful. See :func:`perturbation_curve`."""
    return area_under_curve(*insertion_curve(classifier_fn, image, segments, weights, label,
                                             **kwargs))


def aopc(probs: npt.ArrayLike) -> float:
    """Area over the perturbation curve (Samek et al.): mean drop ``p_0 - p_k`` over the steps.

    >>> aopc([0.9, 0.5, 0.1])
    0.4
    """
    p = np.asarray(probs, dtype=np.float64)
    return float(np.round(np.mean(p[0] - p), 12)) if p.size else 0.0


# ----------------------------------------------------------------------------- one call
def explanation_scores(explanation: Explanation, classifier_fn: ClassifierLike,
                       label: int | None = None, kind: str = "lime", fill: FillSpec = "black",
                       batch_size: int = 50, num_steps: int | None = None,
                       gt_mask: npt.ArrayLike | None = None) -> dict[str, float]:
    """Deletion and insertion AUC (and, given ``gt_mask``, pointing game and IoU) of one label of
    an :class:`~paddlex_interpret.core.explanation.Explanation`-like object (``image``,
    ``segments``, ``weights_for(label, kind)``, ``labels``).

    Returns a dict of floats: ``deletion_auc``, ``insertion_auc`` (+ ``pointing_game``, ``iou``).
    """
    label = int(explanation.labels[0] if label is None else label)
    w = explanation.weights_for(label, kind)
    common = dict(fill=fill, batch_size=batch_size, num_steps=num_steps)
    out = {
        "deletion_auc": deletion_auc(classifier_fn, explanation.image, explanation.segments, w,
                                     label, **common),
        "insertion_auc": insertion_auc(classifier_fn, explanation.image, explanation.segments, w,
                                       label, **common),
    }
    if gt_mask is not None:
        out["pointing_game"] = float(pointing_game(w, gt_mask, segments=explanation.segments))
        out["iou"] = explanation_iou(w, explanation.segments, gt_mask)
    return out
