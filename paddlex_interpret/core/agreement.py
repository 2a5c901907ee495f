"""Agreement of superpixel explanations: with a ground-truth mask (pointing game, IoU) and with
each other across repeated runs (top-k Jaccard, Spearman rank correlation). Pure numpy; also
available from :mod:`~paddlex_interpret.core.metrics`.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.agreement import topk_jaccard, pointing_game
    >>> topk_jaccard([3, 2, 1, 0], [3, 1, 2, 0], k=2)
    0.3333333333333333
    >>> seg = np.array([[0, 1], [2, 2]]); gt = np.array([[False, False], [True, True]])
    >>> pointing_game([0.2, 0.1, 0.9], gt, segments=seg)
    True
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["top_segments_mask", "pointing_game", "iou", "explanation_iou", "topk_jaccard",
           "spearman", "stability"]


# ----------------------------------------------------------------------------- localisation
def top_segments_mask(weights: npt.ArrayLike, segments: npt.ArrayLike, k: int | None = None,
                      positive_only: bool = True) -> np.ndarray:
    """``(H, W)`` bool mask of the ``k`` highest-weighted superpixels (all positive ones when
    ``k`` is None).

    >>> seg = np.array([[0, 1], [2, 2]])
    >>> top_segments_mask([0.2, -1.0, 0.5], seg, k=1).astype(int).tolist()
    [[0, 0], [1, 1]]
    """
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    order = np.argsort(-w, kind="stable")
    if positive_only:
        order = order[w[order] > 0]
    if k is not None:
        order = order[:int(k)]
    keep = np.zeros(w.size, dtype=bool)
    keep[order] = True
    return keep[np.asarray(segments)]


def pointing_game(saliency: npt.ArrayLike, gt_mask: npt.ArrayLike,
                  segments: npt.ArrayLike | None = None, tolerance: int = 0) -> bool:
    """Whether the saliency maximum falls on the object (Zhang et al., 2016).

    Args:
        saliency: an ``(H, W)`` map, or ``(d,)`` superpixel weights together with ``segments``.
        gt_mask: ``(H, W)`` bool ground truth.
        segments: the superpixel map when ``saliency`` holds per-superpixel weights.
        tolerance: pixels by which the ground truth is grown before testing (15 in the paper).

    Returns:
        True when most pixels at the maximum (a whole superpixel for superpixel weights) lie in
        the (grown) ground-truth mask.

    >>> seg = np.array([[0, 1], [2, 2]]); gt = np.array([[False, False], [True, True]])
    >>> pointing_game([0.2, 0.1, 0.9], gt, segments=seg), pointing_game([0.9, 0.1, 0.2], gt, seg)
    (True, False)
    """
    gt = np.asarray(gt_mask, dtype=bool)
    s = np.asarray(saliency, dtype=np.float64)
    if segments is not None:
        s = s.reshape(-1)[np.asarray(segments)]
    if s.shape != gt.shape:
        raise ValueError("saliency %s and mask %s differ in shape" % (s.shape, gt.shape))
    if tolerance > 0:
        gt = _dilate(gt, int(tolerance))
    at_max = s >= s.max()
    return bool(gt[at_max].mean() >= 0.5)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a disc of ``radius`` pixels (pure numpy shifts)."""
    out = mask.copy()
    h, w = mask.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx > radius * radius:
                continue
            shifted = np.zeros_like(mask)
            ys, yd = ((slice(0, h - dy), slice(dy, h)) if dy >= 0
                      else (slice(-dy, h), slice(0, h + dy)))
            xs, xd = ((slice(0, w - dx), slice(dx, w)) if dx >= 0
                      else (slice(-dx, w), slice(0, w + dx)))
            shifted[yd, xd] = mask[ys, xs]
            out |= shifted
    return out


def iou(mask_a: npt.ArrayLike, mask_b: npt.ArrayLike) -> float:
    """Intersection over union of two bool masks (1.0 when both are empty).

    >>> iou(np.array([1, 1, 0], bool), np.array([0, 1, 1], bool))
    0.3333333333333333
    """
    a = np.asarray(mask_a, dtype=bool)
    b = np.asarray(mask_b, dtype=bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def explanation_iou(weights: npt.ArrayLike, segments: npt.ArrayLike, gt_mask: npt.ArrayLike,
                    k: int | None = None) -> float:
    """IoU of the top-``k`` positive superpixels with the ground truth. With ``k=None`` the
    superpixels are taken in weight order until they cover as many pixels as the ground truth.

    >>> seg = np.array([[0, 1], [2, 2]]); gt = np.array([[False, False], [True, True]])
    >>> explanation_iou([0.2, 0.1, 0.9], seg, gt)
    1.0
    """
    gt = np.asarray(gt_mask, dtype=bool)
    segments = np.asarray(segments)
    if k is None:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        order = np.argsort(-w, kind="stable")
        order = order[w[order] > 0]
        areas = np.bincount(segments.ravel(), minlength=w.size)[order]
        k = int(np.searchsorted(np.cumsum(areas), gt.sum()) + 1) if order.size else 0
    return iou(top_segments_mask(weights, segments, k), gt)


# ----------------------------------------------------------------------------- stability
def topk_jaccard(weights_a: npt.ArrayLike, weights_b: npt.ArrayLike, k: int = 5,
                 positive_only: bool = False) -> float:
    """Jaccard index of the two top-``k`` superpixel sets (by weight; by ``|weight|`` unless
    ``positive_only``, then only positive weights count). 1.0 when both sets are empty.

    >>> topk_jaccard([3, 2, 1, 0], [3, 1, 2, 0], k=2)
    0.3333333333333333
    """
    def top(w):
        w = np.asarray(w, dtype=np.float64).reshape(-1)
        key = w if positive_only else np.abs(w)
        order = np.argsort(-key, kind="stable")
        if positive_only:
            order = order[w[order] > 0]
        return set(order[:int(k)].tolist())

    a, b = top(weights_a), top(weights_b)
    union = a | b
    return float(len(a & b) / len(union)) if union else 1.0


def _ranks(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), 0-based."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(x.size)
    uniq, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    if uniq.size < x.size:
        sums = np.bincount(inverse, weights=ranks)
        ranks = (sums / counts)[inverse]
    return ranks


def spearman(weights_a: npt.ArrayLike, weights_b: npt.ArrayLike) -> float:
    """Spearman rank correlation of two weight vectors (1.0 if identical, also when constant).

    >>> spearman([1, 2, 3], [10, 20, 30]), spearman([1, 2, 3], [3, 2, 1])
    (1.0, -1.0)
    """
    a = np.asarray(weights_a, dtype=np.float64).reshape(-1)
    b = np.asarray(weights_b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError("weight vectors differ in length: %d vs %d" % (a.size, b.size))
    if np.array_equal(a, b):
        return 1.0
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float(np.clip((ra * rb).sum() / denom, -1.0, 1.0)) if denom > 0 else 0.0


def stability(runs: np.ndarray | Sequence[npt.ArrayLike], k: int = 5,
              positive_only: bool = False) -> dict[str, float]:
    """Agreement of repeated explanations of one image (same superpixels, e.g. other seeds).

    Args:
        runs: ``(R, d)`` weights of ``R >= 2`` runs (list of arrays or a 2-D array).
        k: size of the top sets for the Jaccard index.

    Returns:
        ``{'jaccard': mean pairwise top-k Jaccard, 'spearman': mean pairwise rank correlation,
        'pairs': number of pairs}``; identical runs give 1.0 and 1.0.

    >>> stability([[0.3, 0.1, 0.0], [0.3, 0.1, 0.0]], k=2)
    {'jaccard': 1.0, 'spearman': 1.0, 'pairs': 1}
    """
    runs = [np.asarray(r, dtype=np.float64).reshape(-1) for r in runs]
    if len(runs) < 2:
        raise ValueError("stability needs at least 2 runs, got %d" % len(runs))
    jac, rho = [], []
    for i in range(len(runs)):
        for j in range(i + 1, len(runs)):
            jac.append(topk_jaccard(runs[i], runs[j], k, positive_only))
            rho.append(spearman(runs[i], runs[j]))
    return {"jaccard": float(np.mean(jac)), "spearman": float(np.mean(rho)), "pairs": len(jac)}
