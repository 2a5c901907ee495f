"""Occlusion sensitivity (Zeiler & Fergus 2014): how much a label's probability drops when a window
of the image is hidden, for windows slid over it. Predictions only, so it explains any model,
an exported inference model without its network included.

The image is cut into square cells of ``cell`` pixels; a window is ``window`` x ``window``
cells, slid one cell at a time (so windows overlap by all but one cell). Hiding a window is a
mask over the cells, so the hidden images are composed as LIME's perturbed images are
(:meth:`~paddlex_interpret.core.classifier.Classifier.predict_masks`, with the fill in place of
hidden cells). A pixel's score for a label is the mean drop ``p(label | image) - p(label |
window hidden)`` over the windows that cover it: positive where hiding the pixel's surroundings
takes the label away. Deterministic; ``(cells - window + 1) ** 2`` forward passes (225 with the
default 16 cells a side and windows of 2).

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.occlusion import occlusion_maps
    >>> from paddlex_interpret.core.classifier import as_classifier
    >>> clf = as_classifier(lambda b: np.stack([b[:, :8, :8].mean((1, 2, 3)),
    ...                                         255 - b[:, :8, :8].mean((1, 2, 3))], 1) / 255)
    >>> img = np.full((32, 32, 3), 255, np.uint8)
    >>> maps, probs = occlusion_maps(clf, img, np.zeros_like(img), [0], cell=4)
    >>> bool(maps[0][:8, :8].mean() > maps[0][16:, 16:].mean())
    True
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import numpy.typing as npt

from .classifier import ClassifierLike, as_classifier, check_positive_int

__all__ = ["occlusion_maps", "default_cell", "cell_grid"]


def default_cell(shape: Sequence[int], cells: int = 16) -> int:
    """The cell side giving about ``cells`` cells along the short side (at least 2 px)."""
    return max(2, int(min(shape[:2])) // int(cells))


def cell_grid(shape: Sequence[int], cell: int) -> tuple[np.ndarray, int, int]:
    """``(H, W)`` int32 map of the cells (``cell`` px squares; the last row and column of cells
    take what is left), and the number of cells down and across."""
    h, w = int(shape[0]), int(shape[1])
    ny, nx = max(1, h // cell), max(1, w // cell)
    ys = np.minimum(np.arange(h) // cell, ny - 1)
    xs = np.minimum(np.arange(w) // cell, nx - 1)
    return (ys[:, None] * nx + xs[None, :]).astype(np.int32), ny, nx


def occlusion_maps(classifier: ClassifierLike, image: npt.ArrayLike, fill_image: npt.ArrayLike,
                   labels: Sequence[int], cell: int | None = None, window: int = 2,
                   batch_size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``(maps, probabilities)``: per label of ``labels`` the ``(H, W)`` occlusion map of
    ``image`` (uint8 ``(H, W, 3)``) with ``fill_image`` in hidden windows, and the model's
    probabilities on the whole image. ``cell``: cell side in px (default :func:`default_cell`);
    ``window``: window side in cells."""
    clf = as_classifier(classifier)
    image = np.asarray(image)
    cell = check_positive_int(cell if cell is not None else default_cell(image.shape), "cell")
    grid, ny, nx = cell_grid(image.shape, cell)
    k = min(check_positive_int(window, "window"), ny, nx)
    starts = [(i, j) for i in range(ny - k + 1) for j in range(nx - k + 1)]
    masks = np.ones((len(starts) + 1, ny * nx), dtype=bool)  # row 0: nothing hidden
    for r, (i, j) in enumerate(starts, 1):
        block = (np.arange(i, i + k)[:, None] * nx + np.arange(j, j + k)[None, :]).ravel()
        masks[r, block] = False
    with clf.hold_weights():
        probs = clf.predict_masks(image, np.asarray(fill_image), grid, masks,
                                  check_positive_int(batch_size, "batch_size"))
    labels = [int(l) for l in labels]
    drops = probs[0][labels][None, :] - probs[1:, labels]  # (windows, L)
    total = np.zeros((len(labels), ny, nx))
    count = np.zeros((ny, nx))
    for r, (i, j) in enumerate(starts):
        total[:, i:i + k, j:j + k] += drops[r][:, None, None]
        count[i:i + k, j:j + k] += 1
    cells = total / np.maximum(count, 1)[None]
    return cells.reshape(len(labels), -1)[:, grid], probs[0]
