"""Drawing the generated images: a textured grey background with grey distractor blobs, one
coloured object (circle, square or triangle) and, optionally, a black/white checker watermark.
Vectorised on coordinate grids; every draw comes from the generator it is given.

Example::

    >>> import numpy as np
    >>> from pxi_testing.drawing import COLOURS, draw_image
    >>> img, mask, info = draw_image(np.random.default_rng(0), 64, COLOURS["red"])
    >>> img.shape, bool(mask.any()), info["shape"] in ("circle", "square", "triangle")
    ((64, 64, 3), True, True)
"""
import numpy as np

__all__ = ["COLOURS", "SHAPES", "NO_OBJECT", "draw_image", "watermark_box_for", "watermark_pattern",
           "stamp_watermark"]

#: Named object colours (RGB). Any of these names can be used as a class.
COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 185, 55),
    "blue": (40, 70, 225),
    "yellow": (230, 215, 30),
    "magenta": (210, 40, 205),
    "cyan": (30, 200, 215),
    "orange": (245, 135, 20),
    "purple": (120, 40, 180),
}

#: The class name of images without an object (background and distractors only): a class that
#: makes a model learn every colour class from its object, not as "none of the others".
NO_OBJECT = "none"

#: Object shapes drawn (chosen uniformly at random per image).
SHAPES = ("circle", "square", "triangle")


def watermark_box_for(image_size):
    """Watermark box ``(x0, y0, x1, y1)`` (exclusive ends) for a square image of side ``image_size``.

    6x6 pixels, 2 pixels from the bottom-right corner at 64 px (scaled with the image size).
    """
    s = max(4, int(image_size) // 10)
    s += s % 2  # even, so the checkerboard is balanced
    m = max(1, int(image_size) // 32)
    x1 = y1 = int(image_size) - m
    return (x1 - s, y1 - s, x1, y1)


# ----------------------------------------------------------------------------------------------


def _smooth_noise(rng, size, cells):
    """Low-frequency noise in [-1, 1]: a random coarse grid upsampled bilinearly."""
    g = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))
    t = np.linspace(0.0, cells, size)
    i0 = np.minimum(t.astype(int), cells - 1)
    f = t - i0
    rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]  # (size, cells+1)
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def _shape_mask(shape, cx, cy, half, yy, xx):
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= half ** 2
    if shape == "square":
        return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    # triangle pointing up, inscribed in the box [cx-half, cx+half] x [cy-half, cy+half]
    top = cy - half
    bottom = cy + half
    rel = (yy - top) / (2.0 * half)  # 0 at the apex, 1 at the base
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= rel * half)


def draw_image(rng, image_size, colour, avoid_box=None):
    """Return (rgb uint8 (H, W, 3), mask bool (H, W), info dict); ``colour`` None draws no
    object (the mask is empty)."""
    n = image_size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5

    # background: grey level + smooth texture + fine luminance noise + a little chroma noise
    base = rng.uniform(95.0, 165.0)
    lum = base + 28.0 * _smooth_noise(rng, n, int(rng.integers(3, 7))) + rng.normal(0.0, 10.0, (n, n))
    img = lum[..., None] + rng.normal(0.0, 4.0, (n, n, 3))

    # grey distractor blobs (ellipses)
    for _ in range(int(rng.integers(1, 4))):
        ex, ey = rng.uniform(0, n, size=2)
        ax, ay = rng.uniform(0.04, 0.12, size=2) * n
        blob = ((xx - ex) / ax) ** 2 + ((yy - ey) / ay) ** 2 <= 1.0
        img[blob] += rng.uniform(-60.0, 60.0)

    if colour is None:
        img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        return img, np.zeros((n, n), dtype=bool), {"shape": None, "bbox": None}

    # the object
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    side = rng.uniform(0.20, 0.35) * n
    half = side / 2.0
    for _ in range(100):
        cx, cy = rng.uniform(half + 1.0, n - half - 1.0, size=2)
        x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        if avoid_box is None:
            break
        bx0, by0, bx1, by1 = avoid_box
        if x1 < bx0 - 1 or y1 < by0 - 1 or x0 > bx1 or y0 > by1:
            break
    mask = _shape_mask(shape, cx, cy, half, yy, xx)
    rgb = np.asarray(colour, np.float32) + rng.uniform(-15.0, 15.0, size=3)
    shading = rng.normal(0.0, 6.0, (n, n))[..., None]
    img = np.where(mask[..., None], rgb[None, None, :] + shading, img)

    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    info = {
        "shape": shape,
        "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
    }
    return img, mask, info


def watermark_pattern(box):
    """The watermark inside ``box``: a bool array, True where white. A 2x2 black/white checker
    (cells of half the box side: 3 px at 64 px). Cells wider than one pixel matter: a
    one-pixel checker is invisible to a network whose first layer has stride 2."""
    x0, y0, x1, y1 = box
    cell = max(1, (x1 - x0) // 2)
    yy, xx = np.mgrid[0:y1 - y0, 0:x1 - x0]
    return (yy // cell + xx // cell) % 2 == 0


def stamp_watermark(img, box):
    """Stamp the black/white checker watermark (:func:`watermark_pattern`) into ``img`` (uint8
    HWC RGB) at ``box``; returns ``img``."""
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = np.where(watermark_pattern(box)[..., None], np.uint8(255), np.uint8(0))
    return img
