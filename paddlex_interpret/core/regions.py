"""Boxes in a model's view: the regions the shortcut alarm proposes, tests and reports
(:mod:`~paddlex_interpret.core.shortcut`). A box is ``(x0, y0, x1, y1)`` in view pixels, exclusive
ends.

* :func:`propose_boxes`: the boxes of a given size holding the most of a map's positive mass
  (a class atlas, a scan's :func:`cells_map`), not overlapping much (:func:`top_boxes`);
* :func:`describe_box`: where a box is, in words a person reads ("a 6x6 region in the
  bottom-right corner (x 56..61, y 56..61 of the 64x64 view)").

Example::

    propose_boxes(atlas.maps[2], (16, 16))      # [(48, 48, 64, 64), (8, 24, 24, 40)]
"""
from __future__ import annotations

from typing import Iterable, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .atlas import place_name

__all__ = ["Box", "box_area", "clip_box", "cells_map", "top_boxes", "propose_boxes",
           "describe_box", "PROPOSALS"]

Box = Tuple[int, int, int, int]
#: boxes a proposer gives per class
PROPOSALS = 2


def box_area(box: Box) -> int:
    """Pixels of ``box`` (0 when empty)."""
    x0, y0, x1, y1 = box
    return max(0, x1 - x0) * max(0, y1 - y0)


def clip_box(box: Sequence[int], shape: Sequence[int]) -> Box:
    """``box`` clipped to an ``(H, W)`` view, at least one pixel a side."""
    h, w = int(shape[0]), int(shape[1])
    x0, y0, x1, y1 = (int(v) for v in box)
    x0, y0 = min(max(x0, 0), w - 1), min(max(y0, 0), h - 1)
    return x0, y0, max(x0 + 1, min(x1, w)), max(y0 + 1, min(y1, h))


def cells_map(boxes: Iterable[Sequence[int]], scores: Iterable[float], shape: Sequence[int]
              ) -> np.ndarray:
    """An ``(H, W)`` map of per-box ``scores`` (the mean over the boxes covering each pixel)."""
    total = np.zeros(tuple(shape), np.float64)
    count = np.zeros(tuple(shape), np.float64)
    for (x0, y0, x1, y1), s in zip(boxes, scores):
        total[y0:y1, x0:x1] += s
        count[y0:y1, x0:x1] += 1
    return total / np.maximum(count, 1)


def _windows(m, bh, bw):
    """Sums of ``m`` over every ``bh x bw`` window, ``(H - bh + 1, W - bw + 1)``."""
    ii = np.zeros((m.shape[0] + 1, m.shape[1] + 1))
    ii[1:, 1:] = m.cumsum(0).cumsum(1)
    return ii[bh:, bw:] - ii[:-bh, bw:] - ii[bh:, :-bw] + ii[:-bh, :-bw]


def _iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / float(box_area(a) + box_area(b) - inter)


def top_boxes(boxes: Sequence[Sequence[int]] | np.ndarray, scores: npt.ArrayLike,
              k: int = PROPOSALS, overlap: float = 0.25) -> list[Box]:
    """The ``k`` boxes of highest positive score, none overlapping a better one by more than
    ``overlap`` (intersection over union)."""
    out: list[Box] = []
    scores = np.asarray(scores, np.float64)
    for i in np.argsort(-scores, kind="stable"):
        if len(out) >= k or not scores[i] > 0:
            break
        if all(_iou(boxes[i], b) <= overlap for b in out):
            x0, y0, x1, y1 = (int(v) for v in boxes[i])
            out.append((x0, y0, x1, y1))
    return out


def propose_boxes(m: npt.ArrayLike, side: Sequence[int], k: int = PROPOSALS) -> list[Box]:
    """Up to ``k`` boxes of ``side`` ``(h, w)`` holding the most of map ``m``'s positive mass
    (``(H, W)``), not overlapping much."""
    m = np.maximum(np.nan_to_num(np.asarray(m, np.float64)), 0.0)
    bh, bw = min(int(side[0]), m.shape[0]), min(int(side[1]), m.shape[1])
    if not m.sum() > 0:
        return []
    sums = _windows(m, bh, bw)
    ys, xs = np.mgrid[:sums.shape[0], :sums.shape[1]]
    boxes = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + bw, ys.ravel() + bh], 1)
    return top_boxes(boxes, sums.ravel(), k)


def describe_box(box: Box, view: Sequence[int]) -> str:
    """``"a 6x6 region in the bottom-right corner (x 56..61, y 56..61 of the 64x64 view)"``."""
    x0, y0, x1, y1 = box
    h, w = view
    region = np.zeros((max(h, y1), max(w, x1)), bool)
    region[y0:y1, x0:x1] = True
    place = place_name(region)
    where = place + (" corner" if "-" in place and place.split("-")[0] in ("top", "bottom")
                     else "")
    return "a %dx%d region in the %s (x %d..%d, y %d..%d of the %dx%d view)" % (
        x1 - x0, y1 - y0, where, x0, x1 - 1, y0, y1 - 1, w, h)
