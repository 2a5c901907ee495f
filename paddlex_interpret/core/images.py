"""Reading and normalising images to the one form the core works on: ``(H, W, 3)`` uint8 RGB.

Grey, grey+alpha, RGBA, palette, 16-bit and float images are converted, not crashed on.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.images import to_rgb_uint8
    >>> to_rgb_uint8(np.full((2, 2), 65535, np.uint16))[0, 0].tolist()
    [255, 255, 255]
"""
from __future__ import annotations

import os
from typing import Any, Callable, Union

import numpy as np
import numpy.typing as npt

from ..errors import ImageReadError

__all__ = ["to_rgb_uint8", "load_image", "check_image_path", "load_item", "describe_item",
           "ImageSource"]

#: an image the API takes: a file path or an image array
ImageSource = Union[str, "os.PathLike[str]", np.ndarray]


def _to_uint8(a):
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a.astype(np.float64))
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if np.issubdtype(a.dtype, np.integer):
        hi = int(a.max()) if a.size else 0
        if a.dtype == np.uint16 or hi > 255:
            # 16-bit (or 16-bit stored in a wider int, as PIL's mode 'I' does).
            scale = 65535.0 if hi <= 65535 else float(hi)
            return np.clip(np.rint(a.astype(np.float64) * (255.0 / scale)), 0, 255).astype(np.uint8)
        return np.clip(a, 0, 255).astype(np.uint8)
    raise ImageReadError("unsupported image dtype %s" % a.dtype)


def to_rgb_uint8(image: npt.ArrayLike) -> np.ndarray:
    """Convert an image array (HxW, HxWx1, HxWx2, HxWx3 or HxWx4; any numeric dtype) to uint8 RGB.

    Alpha is dropped (the colour channels are kept as they are). Raises ImageReadError for
    anything that is not a 2-D image.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (1, 2):
        a = a[:, :, 0]
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ImageReadError("expected an image array of shape (H, W), (H, W, 1|3|4); got %s"
                             % (a.shape,))
    return np.ascontiguousarray(_to_uint8(a))


def check_image_path(path: str | os.PathLike[str]) -> str:
    """Raise FileNotFoundError / IsADirectoryError naming ``path`` unless it is a file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError("expected an image file, got a directory: %r" % path)
    if not os.path.exists(path):
        raise FileNotFoundError("image file does not exist: %r" % path)
    return path


def load_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as uint8 RGB (any bit depth, grey, palette or alpha).

    Raises:
        FileNotFoundError, IsADirectoryError: ``path`` is missing or a directory.
        ImageReadError: the file exists but is not a decodable image.
    """
    path = check_image_path(path)
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is not None:
        if img.ndim == 3 and img.shape[2] == 3:
            img = img[:, :, ::-1]
        elif img.ndim == 3 and img.shape[2] == 4:
            img = img[:, :, [2, 1, 0, 3]]
        return to_rgb_uint8(img)
    try:  # formats OpenCV lacks (GIF, some palettes): Pillow
        from PIL import Image

        with Image.open(path) as im:
            return to_rgb_uint8(np.asarray(im.convert("RGBA") if im.mode == "P" else im))
    except Exception as exc:
        raise ImageReadError("cannot read image file %r: %s" % (path, exc)) from exc


def load_item(item: Any, load: Callable[[Any], npt.ArrayLike] | None = None) -> np.ndarray:
    """An image from a dataset item: ``load(item)`` if given, else a path is read and an array
    converted (uint8 RGB). Raises whatever the reader raises for a bad item."""
    if load is not None:
        return to_rgb_uint8(load(item))
    if isinstance(item, (str, bytes)) or hasattr(item, "__fspath__"):
        return load_image(os.fsdecode(item) if isinstance(item, bytes) else item)
    return to_rgb_uint8(item)


def describe_item(item: Any, limit: int = 120) -> str:
    """A short printable name for a dataset item (path or array), for skip reports."""
    if isinstance(item, (str, bytes)) or hasattr(item, "__fspath__"):
        return os.fsdecode(os.fspath(item) if not isinstance(item, bytes) else item)[:limit]
    shape = getattr(item, "shape", None)
    return ("array%s" % (tuple(shape),)) if shape is not None else type(item).__name__
