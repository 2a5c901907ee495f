"""Superpixel segmentation: quickshift (PaddleX 1.3's and the default;
scikit-image's labels computed by :mod:`paddlex_interpret.core.quickshift`, ~15x faster with its
compiled kernel, ~5x with numpy alone; ``'quickshift_skimage'`` runs scikit-image itself), slic,
felzenszwalb, ``'coarse'`` (quickshift's superpixels merged by colour into at most 25 regions,
:func:`merge_regions`), a user's function, or a given label array. Every segmentation is
relabelled to ``0..n-1``.

``'coarse'`` is a trade-off, measured in BENCHMARKS.md ("Time to a stable explanation"): LIME's
top superpixels are only as stable as the gaps between their weights allow at the budget spent;
the 57-212 quickshift superpixels of a 224 px photo share the image's evidence so thinly that
their top 5 changes from seed to seed at 1000 model calls, while about 25 regions hold still at
that budget. But coarse regions are less faithful (deletion / insertion over the fraction of
pixels: a region brings irrelevant pixels along with the relevant ones), so quickshift stays the
default. The regions follow the quickshift boundaries (each is a union of quickshift
superpixels), and an image with at most 25 quickshift superpixels keeps them unchanged.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.segmentation import make_segmenter
    >>> img = np.zeros((32, 32, 3), np.uint8); img[:, 16:] = 255
    >>> seg = make_segmenter("slic", n_segments=4)(img)
    >>> seg.min(), seg.max() >= 1
    (0, True)
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence, Union

import numpy as np
import numpy.typing as npt

__all__ = ["make_segmenter", "relabel", "merge_regions", "SEGMENTERS", "SEGMENTER_DEFAULTS",
           "Segmenter", "MemoSegmenter"]

#: The segmenters :func:`make_segmenter` knows by name (the default first).
SEGMENTERS = ("quickshift", "coarse", "slic", "felzenszwalb", "quickshift_skimage")

# PaddleX 1.3 called ``quickshift(image, sigma=1)``, i.e. scikit-image's defaults kernel_size=5,
# max_dist=10, ratio=1.0 with sigma=1.
SEGMENTER_DEFAULTS = {
    "quickshift": {"kernel_size": 5, "max_dist": 10, "ratio": 1.0, "sigma": 1},
    "quickshift_skimage": {"kernel_size": 5, "max_dist": 10, "ratio": 1.0, "sigma": 1},
    "coarse": {"kernel_size": 5, "max_dist": 10, "ratio": 1.0, "sigma": 1, "max_regions": 25},
    "slic": {"n_segments": 50, "compactness": 10.0, "sigma": 1, "start_label": 0},
    "felzenszwalb": {"scale": 100, "sigma": 0.5, "min_size": 50},
}


def relabel(segments: npt.ArrayLike, shape: Sequence[int] | None = None) -> np.ndarray:
    """Return ``segments`` as int32 with labels ``0..n-1`` (order of first appearance kept by value)."""
    seg = np.asarray(segments)
    if seg.ndim != 2 or not np.issubdtype(seg.dtype, np.integer):
        raise ValueError("a segmentation must be a 2-D integer label array, got %s %s"
                         % (seg.dtype, seg.shape))
    if shape is not None and seg.shape != tuple(shape[:2]):
        raise ValueError("segmentation shape %s does not match the image %s"
                         % (seg.shape, tuple(shape[:2])))
    _, inverse = np.unique(seg, return_inverse=True)
    return inverse.reshape(seg.shape).astype(np.int32)


def _quickshift(image, seed, **params):
    from .quickshift import quickshift

    return quickshift(image, rng=seed, **params)


def merge_regions(image: np.ndarray, segments: np.ndarray, max_regions: int = 25) -> np.ndarray:
    """Merge adjacent superpixels of ``segments`` (``0..n-1``) until at most ``max_regions``
    remain: each step joins the adjacent pair whose union raises the within-region colour
    variance least (Ward's criterion on CIELAB colour, ``n_a n_b / (n_a + n_b) |mu_a - mu_b|^2``;
    ties by the smaller ids, so the result is deterministic). Returns the merged map, relabelled
    ``0..m-1``; every region is a union of input superpixels.

    >>> img = np.zeros((4, 8, 3), np.uint8); img[:, 4:] = 255
    >>> seg = np.repeat(np.arange(4)[None], 4, axis=0).repeat(2, axis=1)
    >>> merge_regions(img, seg, 2)[0].tolist()
    [0, 0, 0, 0, 1, 1, 1, 1]
    """
    from skimage.color import rgb2lab

    seg = relabel(segments, np.asarray(image).shape)
    n = int(seg.max()) + 1
    if n <= int(max_regions):
        return seg
    lab = rgb2lab(np.asarray(image, dtype=np.uint8)).reshape(-1, 3)
    flat = seg.ravel()
    size = np.bincount(flat, minlength=n).astype(np.float64)
    mean: np.ndarray = np.stack([np.bincount(flat, weights=lab[:, c], minlength=n)
                                 for c in range(3)], 1)
    mean /= np.maximum(size, 1)[:, None]
    pairs = np.concatenate([np.stack([seg[:, :-1].ravel(), seg[:, 1:].ravel()], 1),
                            np.stack([seg[:-1].ravel(), seg[1:].ravel()], 1)])
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in pairs.tolist():
        neighbours[a].add(b)
        neighbours[b].add(a)
    parent = np.arange(n)
    alive = n

    def cost(a, b):
        return size[a] * size[b] / (size[a] + size[b]) * float(np.sum((mean[a] - mean[b]) ** 2))

    while alive > int(max_regions):
        a, b = min(((a, b) for a in neighbours for b in neighbours[a] if a < b),
                   key=lambda ab: (cost(*ab), ab))
        mean[a] = (size[a] * mean[a] + size[b] * mean[b]) / (size[a] + size[b])
        size[a] += size[b]
        for c in neighbours.pop(b):
            neighbours[c].discard(b)
            if c != a:
                neighbours[c].add(a)
                neighbours[a].add(c)
        parent[parent == b] = a
        alive -= 1
    return relabel(parent[seg])


def _coarse(image, seed, max_regions=25, **params):
    from .quickshift import quickshift

    return merge_regions(image, quickshift(image, rng=seed, **params), max_regions)


def _quickshift_skimage(image, seed, **params):
    from .quickshift import skimage_quickshift

    return skimage_quickshift(image, seed=seed, **params)


def _slic(image, seed, **params):
    from skimage.segmentation import slic

    return slic(image, **params)


def _felzenszwalb(image, seed, **params):
    from skimage.segmentation import felzenszwalb

    return felzenszwalb(image, **params)


_ALGORITHMS = {"coarse": _coarse, "quickshift": _quickshift,
               "quickshift_skimage": _quickshift_skimage,
               "slic": _slic, "felzenszwalb": _felzenszwalb}


class Segmenter:
    """Callable ``image (H, W, 3) uint8 -> segments (H, W) int32 in 0..n-1``."""

    def __init__(self, name: str, fn: Callable[[np.ndarray], npt.ArrayLike],
                 params: dict[str, Any]):
        self.name, self._fn, self.params = name, fn, dict(params)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return relabel(self._fn(image), image.shape)

    def describe(self) -> dict[str, Any]:
        return {"segmenter": self.name, "segmenter_params": {k: v for k, v in self.params.items()
                                                             if np.isscalar(v)}}


#: what ``segmenter=`` takes: a name of :data:`SEGMENTERS`, a built segmenter or a function
#: ``image -> labels``
SegmenterSpec = Union[str, Segmenter, "MemoSegmenter", Callable[[np.ndarray], npt.ArrayLike]]


def make_segmenter(spec: SegmenterSpec = "quickshift", seed: int = 0, **params: Any
                   ) -> Segmenter | MemoSegmenter:
    """Build a segmenter from a name (``coarse``/``quickshift``/``slic``/``felzenszwalb``;
    quickshift with PaddleX 1.3's settings, ``coarse`` merges its superpixels into at most
    ``max_regions=25``; overridable with ``params``) or a callable ``f(image)``."""
    if isinstance(spec, (Segmenter, MemoSegmenter)):
        return spec
    if callable(spec):
        name = getattr(spec, "__name__", type(spec).__name__)
        return Segmenter(name, spec, params)
    if spec not in _ALGORITHMS:
        raise ValueError("unknown segmenter %r; choose one of %s or pass a callable"
                         % (spec, sorted(_ALGORITHMS)))
    merged = dict(SEGMENTER_DEFAULTS[spec], **params)
    fn = functools.partial(_ALGORITHMS[spec], seed=seed, **merged)
    return Segmenter(spec, fn, dict(merged, seed=seed))


class MemoSegmenter:
    """A segmenter that remembers its label map per image content (the last ``size`` images),
    so that the stages of one run that segment the same image (the concept codebook, the concept
    occurrences, a probe at every checkpoint) compute it once."""

    def __init__(self, segmenter: SegmenterSpec, size: int = 4096):
        self.segmenter = make_segmenter(segmenter)
        self.size = int(size)
        self._memo: dict[tuple[tuple[int, ...], int], np.ndarray] = {}
        self.name = getattr(self.segmenter, "name", "memo")

    def __call__(self, image: npt.ArrayLike) -> np.ndarray:
        image = np.asarray(image)
        key = (image.shape, hash(image.tobytes()))
        seg = self._memo.get(key)
        if seg is None:
            seg = self._memo[key] = self.segmenter(image)
            while len(self._memo) > self.size:
                self._memo.pop(next(iter(self._memo)))
        return seg

    def describe(self) -> dict[str, Any]:
        return self.segmenter.describe()
