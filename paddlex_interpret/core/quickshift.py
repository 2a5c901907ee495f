"""Quickshift superpixels, the same labels as scikit-image's ``quickshift`` in a fraction of the time.

PaddleX 1.3 segmented every image with ``skimage.segmentation.quickshift(image, sigma=1)``. Its
Cython loop visits, for each pixel, every pixel of a 31x31 window twice (once for the density,
once to find the nearest denser pixel), on one core: a large share of a fast model's LIME run.
This module computes the same thing on all cores, in a small C kernel (``_kernels.c``, built by
``pip install`` where a C compiler exists, loaded with ctypes by
:mod:`~paddlex_interpret.core.native`) or, without it, in whole-image numpy operations
(BENCHMARKS.md, "Quickshift: scikit-image vs ours"):

- layout: each channel is one flat, contiguous array of rows padded on the right with ``pad``
  columns of a huge value, so a window offset ``(dr, dc)`` is one flat shift ``dr * (W + pad) + dc``
  and every operation runs on contiguous memory (much faster than 2-D slices); a partner that
  falls off the left or right edge lands in the padding, whose huge colour distance gives a zero
  density term, and whose density is ``-inf`` so it is never a parent;
- density: ``d(p) = noise(p) + sum_q exp(-|x_p - x_q|^2 / (2 k^2))`` over the window; every pair
  ``(p, q)`` is evaluated once (the term is symmetric) and added to both pixels. The kernel does
  it block by block (its data stay in cache) with a vectorised polynomial exp (within 2 ulp);
- linking: each pixel's parent is the nearest denser pixel within ``max_dist`` (pixels beyond it
  can never be kept, since scikit-image drops parents further than ``max_dist``), ties going to
  the first in scikit-image's raster order: the smallest ``(distance, raster rank)``. Offsets are
  visited nearest first; a pixel whose best distance is already below the next offset's spatial
  distance is final (colour distances are never negative), so after the first few rings only a few
  percent of the pixels are still searched (the kernel stops each pixel's scan there). numpy
  reuses the colour distances computed for the density; the kernel recomputes the few it needs.
  The distance is ``colour + (dr^2 + dc^2)``, in scikit-image's order of operations;
- the same tie-breaking noise (same generator, same seed) and the same forest flattening.

Labels equal scikit-image's exactly (tests compare them on natural, noisy and flat images). The
densities differ from scikit-image's only by rounding (order of summation, a multiplication by
``-1 / (2 k^2)`` instead of a division, terms below ``e^-700`` kept as ``e^-700``, the kernel's
exp), ~1e-15 relative at most, far below the 1e-5 tie-breaking noise. The colour distances, which
the linking compares with ties, are the same doubles as scikit-image's (the kernel is compiled
without floating-point contraction). Inputs other than uint8/float RGB go to
scikit-image itself.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.quickshift import quickshift
    >>> img = np.zeros((40, 40, 3), np.uint8); img[:, 20:] = (255, 0, 0)
    >>> labels = quickshift(img, kernel_size=3, max_dist=6, sigma=1, rng=0)
    >>> labels.shape, labels[0, 0] != labels[0, 39]
    ((40, 40), True)
"""
from __future__ import annotations

import inspect
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from .quickshift_link import link_compiled, link_numpy, run_threads

__all__ = ["quickshift", "skimage_quickshift"]

# Colour-distance arrays kept from the density pass for the linking pass, at most this many bytes;
# above it (large images) the linking recomputes them.
_KEEP_BYTES = 256 * 2 ** 20
# Padding columns hold this value: its colour distance to any pixel makes a zero density term.
_PAD_VALUE = 1e100
# Density exponents are clipped here (e^-700 ~ 1e-304, a term no sum of ~1e3 of them can show):
# numpy's exp takes a slow path for results that underflow.
_MIN_EXPONENT = -700.0
# The numpy linking searches all pixels at once until fewer than this fraction are undecided.
_SPARSE_FRACTION = 0.25


def skimage_quickshift(image: np.ndarray, seed: int = 0, **params: Any) -> np.ndarray:
    """scikit-image's own ``quickshift`` with the tie-breaking seed under its version's name
    (``rng`` since 0.21, ``random_seed`` before)."""
    from skimage.segmentation import quickshift as sk_quickshift

    key = "rng" if "rng" in inspect.signature(sk_quickshift).parameters else "random_seed"
    params[key] = seed
    return sk_quickshift(image, **params)


def _noise(seed, shape):
    """scikit-image's tie-breaking noise: ``default_rng`` since 0.21, ``RandomState`` before."""
    from skimage.segmentation import quickshift as sk_quickshift

    if "rng" in inspect.signature(sk_quickshift).parameters:
        gen = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return gen.normal(scale=0.00001, size=shape)
    return np.random.RandomState(seed).normal(scale=0.00001, size=shape)


def _features(image, ratio, sigma, convert2lab):
    """The float image scikit-image's ``quickshift`` hands to its Cython loop."""
    from skimage.color import rgb2lab
    from skimage.filters import gaussian
    from skimage.util import img_as_float

    img = img_as_float(np.atleast_3d(image))
    if convert2lab:
        if img.shape[-1] != 3:
            raise ValueError("Only RGB images can be converted to Lab space.")
        img = rgb2lab(img)
    img = gaussian(img, sigma=[sigma, sigma, 0], mode="reflect", channel_axis=-1)
    return np.ascontiguousarray(img * ratio)



class _FlatImage:
    """The feature planes as flat rows of ``width = W + pad`` (see the module doc)."""

    def __init__(self, feats, pad):
        h, w, nc = feats.shape
        self.h, self.w, self.pad = h, w, pad
        self.width = w + pad
        self.n = h * self.width
        self.chans = []
        for c in range(nc):
            plane = np.full((h, self.width), _PAD_VALUE)
            plane[:, :w] = feats[..., c]
            self.chans.append(plane.ravel())

    def shift(self, dr, dc):
        return dr * self.width + dc

    def colour_distance(self, k, lo, hi, out, tmp):
        """``sum_c (x_p - x_{p+k})^2`` for ``p`` in ``[lo, hi)``, in scikit-image's order of
        operations (the same float result)."""
        c0 = self.chans[0]
        t = np.subtract(c0[lo:hi], c0[lo + k:hi + k], out=tmp)
        d = np.multiply(t, t, out=out)
        for ch in self.chans[1:]:
            np.subtract(ch[lo:hi], ch[lo + k:hi + k], out=t)
            np.multiply(t, t, out=t)
            d += t
        return d

    def colour_distance_at(self, p, k):
        """The same for the pixels ``p`` (an index array), partners clipped into the array."""
        q = np.clip(p + k, 0, self.n - 1)
        c0 = self.chans[0]
        t = c0[p] - c0[q]
        d = t * t
        for ch in self.chans[1:]:
            t = ch[p] - ch[q]
            t *= t
            d += t
        return d

    def real(self, flat):
        """The ``(H, W)`` pixels of a flat padded array."""
        return flat.reshape(self.h, self.width)[:, :self.w]

    def row_cuts(self, parts):
        """``[(lo, hi)]``: the flat ranges of ``parts`` bands of whole rows (one per thread)."""
        cuts = np.linspace(0, self.h, min(parts, self.h) + 1).astype(np.int64) * self.width
        return [(int(cuts[i]), int(cuts[i + 1])) for i in range(len(cuts) - 1)]

    def plane_pointers(self):
        """The planes as a C array of pointers (for the compiled kernels)."""
        import ctypes

        return (ctypes.c_void_p * len(self.chans))(*[c.ctypes.data for c in self.chans])


def _load_kernels():
    """quickshift's compiled kernels (``density``, ``link`` of
    :func:`paddlex_interpret.core.native.kernels`), or None when they are not built or
    ``PADDLEX_INTERPRET_QUICKSHIFT_KERNELS=0`` (``PADDLEX_INTERPRET_KERNELS=0`` turns off all)."""
    if os.environ.get("PADDLEX_INTERPRET_QUICKSHIFT_KERNELS", "1") == "0":
        return None
    from . import native

    return native.kernels()


_KERNELS: dict[str, Any] = {}


def kernels_available() -> bool:
    """Whether the compiled kernels are in use (see :func:`_load_kernels`)."""
    if "fns" not in _KERNELS:
        _KERNELS["fns"] = _load_kernels()
    return _KERNELS["fns"] is not None


# Pixels per block of the compiled kernel: every offset is done for one block before the next,
# so its planes, sums and terms stay in cache.
_KERNEL_BLOCK = 2048


def _density_parts_compiled(img, positive, inv, num_threads):
    import ctypes

    fn = _KERNELS["fns"]["density"]
    n = img.n
    planes = img.plane_pointers()
    shifts = np.array([img.shift(dr, dc) for dr, dc in positive], dtype=np.int64)
    spatial = np.array([float(dr * dr + dc * dc) for dr, dc in positive])

    def part(lo, hi):
        acc = np.zeros(n)
        work = np.empty(2 * _KERNEL_BLOCK)
        status = fn(ctypes.cast(planes, ctypes.c_void_p), len(img.chans), n, shifts.ctypes.data,
                    spatial.ctypes.data, len(positive), inv, acc.ctypes.data, work.ctypes.data,
                    lo, hi, _KERNEL_BLOCK)
        if status != 0:
            raise RuntimeError("quickshift density kernel failed (%d)" % status)
        return acc

    return run_threads(part, img.row_cuts(num_threads))


def _density_parts_numpy(img, positive, inv, kept, num_threads):
    n = img.n

    def part(offsets):
        acc = np.zeros(n)
        buf, tmp = np.empty(n), np.empty(n)
        for dr, dc in offsets:
            k = img.shift(dr, dc)
            m = n - k
            s = float(dr * dr + dc * dc)
            colour = kept.get((dr, dc))
            if colour is not None:
                img.colour_distance(k, 0, m, out=colour, tmp=tmp[:m])
                d = np.add(colour, s, out=buf[:m])
            else:
                d = img.colour_distance(k, 0, m, out=buf[:m], tmp=tmp[:m])
                d += s
            d *= inv
            np.maximum(d, _MIN_EXPONENT, out=d)
            np.exp(d, out=d)
            acc[:m] += d
            acc[k:] += d
        return acc

    return run_threads(part, [(positive[i::num_threads],) for i in range(num_threads)])


def _density(img, positive, inv, keep_within, rng, num_threads):
    """Densities (flat, ``-inf`` in the padding) and, from the numpy path, the colour distances of
    the offsets whose squared length is at most ``keep_within`` (``{(dr, dc): array aligned with
    p in [0, n - k)}``, for its linking). The compiled kernel keeps none: its linking recomputes
    the few it needs."""
    kept = {}
    if kernels_available():
        parts = _density_parts_compiled(img, positive, inv, num_threads)
    else:
        linked = [o for o in positive if o[0] * o[0] + o[1] * o[1] <= keep_within]
        if linked:
            # one allocation: huge pages, no page faults per offset
            store = np.empty((len(linked), img.n))
            for i, (dr, dc) in enumerate(linked):
                kept[(dr, dc)] = store[i, :img.n - img.shift(dr, dc)]
        parts = _density_parts_numpy(img, positive, inv, kept, num_threads)
    dens = np.full((img.h, img.width), -np.inf)
    dens[:, :img.w] = _noise(rng, (img.h, img.w))
    dens[:, :img.w] += 1.0  # the pixel itself: exp(0)
    dens = dens.ravel()
    for acc in parts:
        dens += acc
    return dens, kept


def quickshift(image: npt.ArrayLike, ratio: float = 1.0, kernel_size: float = 5,
               max_dist: float = 10,
               sigma: float = 0, convert2lab: bool = True, rng: int = 42,
               num_threads: int | None = None) -> np.ndarray:
    """Quickshift segmentation with scikit-image's parameters and result (see the module doc).

    Args:
        image: ``(H, W, 3)`` RGB image (uint8 or float in [0, 1]).
        ratio, kernel_size, max_dist, sigma, convert2lab: as in ``skimage.segmentation.quickshift``.
        rng: the tie-breaking seed (scikit-image's ``rng`` / ``random_seed``).
        num_threads: worker threads (default: the CPU count, at most 4).

    Returns:
        ``(H, W)`` integer labels, equal to scikit-image's.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.dtype.kind not in "uf" or kernel_size < 1:
        return skimage_quickshift(image, seed=rng, ratio=ratio, kernel_size=kernel_size,
                                  max_dist=max_dist, sigma=sigma, convert2lab=convert2lab)
    feats = _features(image, ratio, sigma, convert2lab)
    if feats.dtype != np.float64:
        return skimage_quickshift(image, seed=rng, ratio=ratio, kernel_size=kernel_size,
                                  max_dist=max_dist, sigma=sigma, convert2lab=convert2lab)
    h, w, _ = feats.shape
    if num_threads is None:
        num_threads = min(4, os.cpu_count() or 1)
    num_threads = max(1, int(num_threads))
    kw = int(np.ceil(3 * kernel_size))
    inv = -0.5 / (kernel_size * kernel_size)
    md2 = float(max_dist) * float(max_dist)
    img = _FlatImage(feats, pad=max(1, min(kw, w - 1)))

    # Offsets e > 0 (raster order) of the density window; each pair (p, p + e) is done once.
    positive = [(0, dc) for dc in range(1, kw + 1)] + [
        (dr, dc) for dr in range(1, kw + 1) for dc in range(-kw, kw + 1)]
    positive = [(dr, dc) for dr, dc in positive if dr < h and abs(dc) < w]
    # Colour distances kept for the numpy linking (recomputing them costs more than keeping), up
    # to _KEEP_BYTES; the compiled linking recomputes the few it needs.
    compiled = kernels_available()
    n_kept = sum(dr * dr + dc * dc <= md2 for dr, dc in positive)
    keep_within = md2 if not compiled and 8 * img.n * n_kept <= _KEEP_BYTES else -1.0
    dens, kept = _density(img, positive, inv, keep_within, rng, num_threads)

    # Linking: every offset d != 0 within max_dist, indexed in scikit-image's raster order.
    offsets = [(dr, dc) for dr in range(-kw, kw + 1) for dc in range(-kw, kw + 1)
               if (dr or dc) and dr * dr + dc * dc <= md2 and abs(dr) < h and abs(dc) < w]
    if compiled:
        closest, choice = link_compiled(_KERNELS["fns"]["link"], img, dens, offsets, num_threads)
    else:
        closest, choice = link_numpy(img, dens, kept, offsets, num_threads, _SPARSE_FRACTION)

    flat = np.arange(img.n, dtype=np.intp)
    step = np.array([img.shift(dr, dc) for dr, dc in offsets] + [0], dtype=np.intp)
    parent = flat + step[choice]  # choice -1 -> the appended 0: the pixel itself
    too_far = np.sqrt(closest) > max_dist
    parent[too_far] = flat[too_far]
    old = np.zeros_like(parent)
    while (old != parent).any():
        old = parent
        parent = parent[parent]
    # labels: the rank of each pixel's root among the roots (np.unique's inverse, without a sort)
    roots = img.real(parent)
    is_root = np.zeros(img.n, dtype=np.intp)
    is_root[roots] = 1
    rank = np.cumsum(is_root) - 1
    return rank[roots].reshape(h, w)
