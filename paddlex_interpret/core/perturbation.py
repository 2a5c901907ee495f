"""Binary masks over superpixels and the perturbed images they stand for, built batch by batch.

A mask row ``z`` (one bool per superpixel) keeps superpixel ``j`` where ``z[j]`` and replaces it with
the *fill* elsewhere. Images are composed with one vectorised ``np.where`` per batch, never a Python
loop over samples or pixels, and never all at once.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.perturbation import sample_masks, make_fill, perturb
    >>> img = np.full((4, 4, 3), 200, np.uint8); seg = np.repeat(np.arange(2), 8).reshape(4, 4)
    >>> masks = sample_masks(5, 2, np.random.default_rng(0)); masks[0].all()
    True
    >>> perturb(img, make_fill(img, seg, "black"), seg, np.array([[True, False]]))[0, :, :, 0].tolist()
    [[200, 200, 200, 200], [200, 200, 200, 200], [0, 0, 0, 0], [0, 0, 0, 0]]
"""
import numpy as np

__all__ = ["sample_masks", "make_fill", "perturb", "iter_batches", "FILLS"]

FILLS = ("black", "median", "mean", "blur")


def sample_masks(num_samples, n_segments, rng):
    """``(num_samples, n_segments)`` bool masks, each superpixel on with probability 1/2;
    the first row is all on (the unperturbed image), as in LIME and PaddleX 1.3."""
    masks = rng.integers(0, 2, size=(num_samples, n_segments)).astype(bool)
    masks[0] = True
    return masks


def make_fill(image, segments, fill="black"):
    """The image hidden superpixels are replaced with.

    ``fill`` is ``'black'`` (PaddleX 1.3), ``'median'`` (the image's per-channel median colour: a
    constant close to the background of most photos, so hidden regions look less out of
    distribution than black), ``'mean'`` (each superpixel's own mean colour), ``'blur'`` (a strong
    Gaussian blur), a number or RGB triple (a constant colour), or an ``(H, W, 3)`` array.
    """
    image = np.asarray(image)
    if isinstance(fill, str):
        if fill == "black":
            return np.zeros_like(image)
        if fill == "median":
            colour = np.median(image.reshape(-1, image.shape[2]), axis=0)
            return np.broadcast_to(np.rint(colour).astype(np.uint8), image.shape).copy()
        if fill == "mean":
            n = int(segments.max()) + 1
            flat = segments.ravel()
            counts = np.bincount(flat, minlength=n).astype(np.float64)
            means = np.stack([np.bincount(flat, weights=image[..., c].ravel(), minlength=n)
                              for c in range(image.shape[2])], axis=1) / np.maximum(counts, 1)[:, None]
            return np.rint(means[segments]).astype(np.uint8)
        if fill == "blur":
            import cv2

            sigma = max(image.shape[:2]) / 16.0
            return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
        raise ValueError("unknown fill %r; choose one of %s, a colour or an image" % (fill, FILLS))
    arr = np.asarray(fill)
    if arr.shape == image.shape:
        return arr.astype(np.uint8)
    if arr.ndim <= 1 and arr.size in (1, image.shape[2]):
        return np.broadcast_to(np.clip(arr, 0, 255).astype(np.uint8), image.shape).copy()
    raise ValueError("fill array of shape %s does not fit an image of shape %s"
                     % (arr.shape, image.shape))


def perturb(image, fill_image, segments, masks, out=None):
    """``(B, H, W, 3)`` uint8 images for ``B`` mask rows: kept superpixels from ``image``, the rest
    from ``fill_image``. ``out`` may be a preallocated buffer to reuse across batches."""
    keep = masks[:, segments]  # (B, H, W) by fancy indexing of the label map
    if out is None or out.shape[0] != len(masks):
        out = np.empty((len(masks),) + image.shape, dtype=np.uint8)
    np.copyto(out, fill_image[None])
    np.copyto(out, image[None], where=keep[..., None])
    return out


def iter_batches(n, batch_size):
    """Yield ``slice`` objects covering ``range(n)`` in chunks of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
