"""Quickshift superpixels, the same labels as scikit-image's ``quickshift`` in a fraction of the time.

PaddleX 1.3 segmented every image with ``skimage.segmentation.quickshift(image, sigma=1)``. Its
Cython loop visits, for each pixel, every pixel of a 31x31 window twice (once for the density,
once to find the nearest denser pixel), on one core: about 0.4 s at 224x224, a third of the whole
forward-pass budget of a MobileNetV3 LIME run. This module computes the same thing with whole-image
numpy operations, one per window offset, on all cores:

- density: ``d(p) = noise(p) + sum_q exp(-|x_p - x_q|^2 / (2 k^2))`` over the window; every pair
  ``(p, q)`` is evaluated once (the term is symmetric) and added to both pixels;
- linking: each pixel's parent is the nearest denser pixel within ``max_dist`` (pixels beyond it
  can never be kept, since scikit-image drops parents further than ``max_dist``), offsets visited in
  scikit-image's raster order with the same strict comparison, so ties go the same way; the colour
  distances are the ones computed for the density, not recomputed;
- the same tie-breaking noise (same generator, same seed) and the same forest flattening.

Labels equal scikit-image's exactly (tests compare them on natural, noisy and flat images); the only
difference is the order in which the density terms are summed (~1e-16 relative), far below the
1e-5 tie-breaking noise. Inputs other than uint8/float RGB go to scikit-image itself.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.quickshift import quickshift
    >>> img = np.zeros((40, 40, 3), np.uint8); img[:, 20:] = (255, 0, 0)
    >>> labels = quickshift(img, kernel_size=3, max_dist=6, sigma=1, rng=0)
    >>> labels.shape, labels[0, 0] != labels[0, 39]
    ((40, 40), True)
"""
import inspect
import os
import threading

import numpy as np

__all__ = ["quickshift", "skimage_quickshift"]

# Colour-distance arrays kept from the density pass for the linking pass, at most this many bytes;
# above it (large images) the linking recomputes them.
_KEEP_BYTES = 256 * 2 ** 20


def skimage_quickshift(image, seed=0, **params):
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


def _regions(dr, dc, h, w):
    """Slices of the pixels ``p`` whose partner ``p + (dr, dc)`` lies inside (``a``) and of the
    partners (``b``)."""
    r0, r1 = max(0, -dr), min(h, h - dr)
    c0, c1 = max(0, -dc), min(w, w - dc)
    return (slice(r0, r1), slice(c0, c1)), (slice(r0 + dr, r1 + dr), slice(c0 + dc, c1 + dc))


def _colour_distance(chans, a, b, out=None):
    """``sum_c (x_a - x_b)^2`` in scikit-image's order of operations (same float result)."""
    t = np.subtract(chans[0][a], chans[0][b])
    d = np.multiply(t, t, out=out)
    for ch in chans[1:]:
        np.subtract(ch[a], ch[b], out=t)
        np.multiply(t, t, out=t)
        d += t
    return d


def _run_threads(target, jobs):
    if len(jobs) == 1:
        return [target(*jobs[0])]
    results = [None] * len(jobs)

    def run(i):
        results[i] = target(*jobs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def quickshift(image, ratio=1.0, kernel_size=5, max_dist=10, sigma=0, convert2lab=True, rng=42,
               num_threads=None):
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
    chans = [np.ascontiguousarray(feats[..., c]) for c in range(feats.shape[2])]
    if num_threads is None:
        num_threads = min(4, os.cpu_count() or 1)
    num_threads = max(1, int(num_threads))
    kw = int(np.ceil(3 * kernel_size))
    inv = -0.5 / (kernel_size * kernel_size)
    md2 = float(max_dist) * float(max_dist)

    # Offsets e > 0 (raster order) of the density window; each pair (p, p + e) is done once.
    positive = [(0, dc) for dc in range(1, kw + 1)] + [
        (dr, dc) for dr in range(1, kw + 1) for dc in range(-kw, kw + 1)]
    positive = [(dr, dc) for dr, dc in positive if dr < h and abs(dc) < w]
    linked = [(dr, dc) for dr, dc in positive if dr * dr + dc * dc <= md2]
    keep = 8 * h * w * len(linked) <= _KEEP_BYTES
    kept = {}

    def density_part(offsets):
        acc = np.zeros((h, w))
        for dr, dc in offsets:
            a, b = _regions(dr, dc, h, w)
            d = _colour_distance(chans, a, b)
            if keep and dr * dr + dc * dc <= md2:
                kept[(dr, dc)] = d.copy()
            d += float(dr * dr + dc * dc)
            d *= inv
            np.exp(d, out=d)
            acc[a] += d
            acc[b] += d
        return acc

    parts = _run_threads(density_part, [(positive[i::num_threads],) for i in range(num_threads)])
    dens = _noise(rng, (h, w))
    dens += 1.0  # the pixel itself: exp(0)
    for acc in parts:
        dens += acc

    # Linking: every offset d != 0 within max_dist, in scikit-image's raster order.
    offsets = [(dr, dc) for dr in range(-kw, kw + 1) for dc in range(-kw, kw + 1)
               if (dr or dc) and dr * dr + dc * dc <= md2 and abs(dr) < h and abs(dc) < w]
    closest = np.full((h, w), np.finfo(np.float64).max)
    choice = np.full((h, w), -1, dtype=np.int32)
    bands = np.linspace(0, h, min(num_threads, h) + 1).astype(int)

    def link_band(r0, r1):
        for k, (dr, dc) in enumerate(offsets):
            a, b = _regions(dr, dc, h, w)
            lo, hi = max(a[0].start, r0), min(a[0].stop, r1)
            if lo >= hi:
                continue
            colour = None
            if keep:
                # for d = -e, D_e is aligned with the partners of e, i.e. with these same pixels
                full = kept.get((dr, dc))
                full = kept[(-dr, -dc)] if full is None else full
                colour = full[lo - a[0].start:hi - a[0].start]
            rows = slice(lo, hi)
            pa = (rows, a[1])
            pb = (slice(lo + dr, hi + dr), b[1])
            if colour is None:
                colour = _colour_distance(chans, pa, pb)
            dist = colour + float(dr * dr)
            dist += float(dc * dc)
            better = np.less(dist, closest[pa])
            better &= dens[pb] > dens[pa]
            np.copyto(closest[pa], dist, where=better)
            np.copyto(choice[pa], k, where=better)

    _run_threads(link_band, [(bands[i], bands[i + 1]) for i in range(len(bands) - 1)])

    flat = np.arange(h * w, dtype=np.intp)
    step = np.array([dr * w + dc for dr, dc in offsets] + [0], dtype=np.intp)
    parent = flat + step[choice.ravel()]  # choice -1 -> the appended 0: the pixel itself
    too_far = np.sqrt(closest.ravel()) > max_dist
    parent[too_far] = flat[too_far]
    old = np.zeros_like(parent)
    while (old != parent).any():
        old = parent
        parent = parent[parent]
    return np.unique(parent, return_inverse=True)[1].reshape(h, w)
