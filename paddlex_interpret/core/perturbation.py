"""Binary masks over superpixels and the perturbed images they stand for, built batch by batch.

A mask row ``z`` (one bool per superpixel) keeps superpixel ``j`` where ``z[j]`` and replaces it with
the *fill* (:mod:`~paddlex_interpret.core.fill`) elsewhere. Images are composed batch by batch, never all at once and never with a Python
loop over pixels: :func:`perturb` gives the uint8 images (one masked ``np.copyto`` per batch);
:func:`compose_normalised` gives a model's normalised float32 inputs directly from the normalised
image and fill (the compiled kernel of :mod:`~paddlex_interpret.core.native`, else OpenCV, else
numpy), the path LIME takes for PaddleX classifiers.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.fill import make_fill
    >>> from paddlex_interpret.core.perturbation import sample_masks, perturb
    >>> img = np.full((4, 4, 3), 200, np.uint8); seg = np.repeat(np.arange(2), 8).reshape(4, 4)
    >>> masks = sample_masks(5, 2, np.random.default_rng(0)); masks[0].all()
    True
    >>> perturb(img, make_fill(img, seg, "black"), seg, np.array([[True, False]]))[0, :, :, 0].tolist()
    [[200, 200, 200, 200], [200, 200, 200, 200], [0, 0, 0, 0], [0, 0, 0, 0]]
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import numpy.typing as npt

__all__ = ["sample_masks", "perturb", "compose_normalised", "iter_batches", "COMPOSE_METHODS"]


def sample_masks(num_samples: int, n_segments: int, rng: np.random.Generator) -> np.ndarray:
    """``(num_samples, n_segments)`` bool masks, each superpixel on with probability 1/2;
    the first row is all on (the unperturbed image), as in LIME and PaddleX 1.3."""
    masks = rng.integers(0, 2, size=(num_samples, n_segments)).astype(bool)
    masks[0] = True
    return masks


def perturb(image: np.ndarray, fill_image: np.ndarray, segments: np.ndarray, masks: np.ndarray,
            out: np.ndarray | None = None) -> np.ndarray:
    """``(B, H, W, 3)`` uint8 images for ``B`` mask rows: kept superpixels from ``image``, the rest
    from ``fill_image``. ``out`` may be a preallocated buffer to reuse across batches."""
    keep = masks[:, segments]  # (B, H, W) by fancy indexing of the label map
    if out is None or out.shape[0] != len(masks):
        out = np.empty((len(masks),) + image.shape, dtype=np.uint8)
    np.copyto(out, fill_image[None])
    np.copyto(out, image[None], where=keep[..., None])
    return out


COMPOSE_METHODS = ("auto", "kernel", "cv2", "numpy")

_CV2: dict[str, Any] = {}


def _cv2() -> Any:
    """OpenCV (``cv2``) when it is importable and has ``copyTo`` / ``LUT``, else None."""
    if "mod" not in _CV2:
        try:
            import cv2

            _CV2["mod"] = cv2 if hasattr(cv2, "copyTo") and hasattr(cv2, "LUT") else None
        except Exception:
            _CV2["mod"] = None
    return _CV2["mod"]


def compose_normalised(image_planes: npt.ArrayLike, fill_planes: npt.ArrayLike,
                       segments: npt.ArrayLike, masks: npt.ArrayLike, out: np.ndarray | None = None,
                       method: str = "auto") -> np.ndarray:
    """``(B, C, H, W)`` float32 model inputs for the mask rows ``masks`` ``(B, d)``: the pixels of
    kept superpixels from ``image_planes`` (the normalised image, ``(C, H, W)`` float32), the
    others from ``fill_planes`` (the normalised fill, same shape). Copies only, no arithmetic, so
    the result is bit for bit the normalisation of :func:`perturb`'s images when the planes are
    the normalised image and fill. A label outside ``[0, d)`` raises ``IndexError``.

    ``out``: a C-contiguous ``(B, C, H, W)`` float32 buffer to fill (e.g. a predictor's input).
    ``method``: ``'auto'`` (the first available of the others), ``'kernel'`` (the compiled
    ``pxi_compose`` of :mod:`~paddlex_interpret.core.native`: 32 images per pass over the label
    map, BENCHMARKS.md "Composing the perturbed inputs"; the GIL released), ``'cv2'``
    (per image: ``cv2.LUT`` of the label map, then ``cv2.copyTo`` per plane) or ``'numpy'``.

    Example::

        >>> import numpy as np
        >>> img = np.ones((3, 2, 2), np.float32); fill = np.zeros_like(img)
        >>> seg = np.array([[0, 0], [1, 1]], np.int32)
        >>> compose_normalised(img, fill, seg, np.array([[True, False]]))[0, 0].tolist()
        [[1.0, 1.0], [0.0, 0.0]]
    """
    if method not in COMPOSE_METHODS:
        raise ValueError("method must be one of %s, got %r" % (COMPOSE_METHODS, method))
    image_planes = np.ascontiguousarray(image_planes, dtype=np.float32)
    fill_planes = np.ascontiguousarray(fill_planes, dtype=np.float32)
    masks = np.ascontiguousarray(masks, dtype=bool)
    segments = np.asarray(segments)
    if masks.ndim != 2 or image_planes.ndim != 3 or fill_planes.shape != image_planes.shape \
            or segments.shape != image_planes.shape[1:]:
        raise ValueError("expected (C, H, W) image and fill planes, an (H, W) label map and "
                         "(B, d) masks; got %s, %s, %s and %s" % (image_planes.shape,
                         fill_planes.shape, segments.shape, masks.shape))
    shape = (len(masks),) + image_planes.shape
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous float32 array of shape %s, got %s %s"
                         % (shape, out.dtype, out.shape))
    if method in ("auto", "kernel"):
        from . import native

        fns = native.kernels()
        if fns is not None:
            return _compose_kernel(fns["compose"], image_planes, fill_planes, segments, masks, out)
        if method == "kernel":
            raise RuntimeError("the compiled kernels are not available")
    d = masks.shape[1]
    if segments.size and (segments.min() < 0 or segments.max() >= d):
        raise IndexError("the label map has labels outside [0, %d): masks have %d columns"
                         % (d, d))
    cv2 = _cv2() if method in ("auto", "cv2") else None
    if cv2 is None:
        if method == "cv2":
            raise RuntimeError("OpenCV is not available")
        keep = np.take(masks, segments, axis=1)  # (B, H, W)
        np.copyto(out, fill_planes[None])
        np.copyto(out, image_planes[None], where=keep[:, None])
        return out
    return _compose_cv2(cv2, image_planes, fill_planes, segments, masks, out)


def _compose_kernel(fn, image_planes, fill_planes, segments, masks, out):
    """:func:`compose_normalised` by the compiled ``pxi_compose``."""
    seg = np.ascontiguousarray(segments, dtype=np.int32)
    words = np.empty(max(1, masks.shape[1]), dtype=np.uint32)
    pixel_words = np.empty(seg.size, dtype=np.uint32)
    status = fn(image_planes.ctypes.data, fill_planes.ctypes.data, image_planes.shape[0],
                seg.size, seg.ctypes.data, masks.ctypes.data, masks.shape[1], len(masks),
                words.ctypes.data, pixel_words.ctypes.data, out.ctypes.data)
    if status == -2:
        d = masks.shape[1]
        raise IndexError("the label map has labels outside [0, %d): masks have %d columns"
                         % (d, d))
    if status != 0:
        raise RuntimeError("the compose kernel failed (%d)" % status)
    return out


def _compose_cv2(cv2, image_planes, fill_planes, segments, masks, out):
    """:func:`compose_normalised` with OpenCV, one image at a time (its planes stay in cache
    between the two copies): the fill, then the image where kept; the kept-pixel map from
    ``cv2.LUT`` of the label map (at most 256 superpixels), else numpy's take."""
    rows = masks.view(np.uint8)
    d = masks.shape[1]
    if d <= 256:
        seg_u8 = np.ascontiguousarray(segments, dtype=np.uint8)
        lut = np.zeros(256, dtype=np.uint8)
        k = np.empty(seg_u8.shape, dtype=np.uint8)
    else:
        seg_u8 = None
        keep = np.take(rows, segments, axis=1)
    for i in range(len(masks)):
        if seg_u8 is not None:
            lut[:rows.shape[1]] = rows[i]
            cv2.LUT(seg_u8, lut, dst=k)
        else:
            k = keep[i]
        o = out[i]
        np.copyto(o, fill_planes)
        for c in range(image_planes.shape[0]):
            cv2.copyTo(image_planes[c], k, dst=o[c])
    return out


def iter_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Yield ``slice`` objects covering ``range(n)`` in chunks of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
