"""The preprocessing of a PaddleX 3 / PaddleClas classifier, read from its ``inference.yml``, done
as PaddleX 3's classifier predictor does it.

``PreProcess.transform_ops`` of an exported classifier lists what PaddleClas's
``dump_infer_config`` writes: ``ResizeImage`` (``resize_short`` or ``size``; ``backend`` cv2 or
pil; ``interpolation``), ``CropImage`` (centre crop), ``NormalizeImage`` and ``ToCHWImage``
(``DecodeImage`` is dropped by the export; it is accepted here when it asks for RGB). PaddleX 3
runs them in a fixed order whatever the file's order (read, resize, crop, normalise, channels
first), and so does this module:

* read: a path is decoded by OpenCV (``cv2.imdecode`` with ``IMREAD_COLOR``: EXIF orientation
  applied, grey replicated, alpha dropped, 16 bits scaled to 8) and turned to RGB; an array is
  taken as RGB (this package's convention; PaddleX 3's ``predict`` takes arrays as BGR);
* ``ResizeImage``: ``resize_short`` scales the short side to it with Python's ``round`` (half to
  even) for the other side; ``size`` is an int or ``[w, h]``, aspect not kept; nothing happens
  when the size already fits;
* ``CropImage``: ``x1 = (w - cw) // 2``, ``y1 = (h - ch) // 2``; an image smaller than the crop
  is an error, as in PaddleX;
* ``NormalizeImage``: per channel (R, G, B) ``x = float32(v); x *= scale / std; x += -mean / std``
  in float32, the order of PaddleX's own arithmetic.

The image after resize and crop (uint8) is the image the model sees (:meth:`ClasTransforms.view`);
normalisation is a per-channel map of its 256 values, applied to whole batches as a lookup table
(the same bits as PaddleX's per-image arithmetic), so LIME's perturbed batches are composed as
model inputs directly.

Example::

    from paddlex_interpret.adapters.clas_transforms import ClasTransforms
    t = ClasTransforms([{"ResizeImage": {"resize_short": 256}}, {"CropImage": {"size": 224}},
                        {"NormalizeImage": {"scale": 0.00392156862745098}}, {"ToCHWImage": None}])
    x = t.preprocess(t.view("cat.jpg")[None])       # (1, 3, 224, 224) float32
"""
import json
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..core.images import check_image_path, load_image, to_rgb_uint8
from ..errors import UnsupportedModelError

__all__ = ["ClasTransforms", "read_image", "SUPPORTED_OPS"]

#: the preprocessing ops an exported classifier may list (what PaddleX 3's classifier runs)
SUPPORTED_OPS = ("ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage", "DecodeImage")

_CV2_INTERP = ("NEAREST", "LINEAR", "BICUBIC", "AREA", "LANCZOS4")
_PIL_INTERP = ("NEAREST", "BILINEAR", "BICUBIC", "BOX", "LANCZOS4")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def read_image(image: Any) -> np.ndarray:
    """uint8 RGB ``(H, W, 3)``: a path decoded as PaddleX 3 decodes it (OpenCV, ``IMREAD_COLOR``),
    an array converted as an RGB image (any bit depth, grey or alpha)."""
    if not (isinstance(image, (str, bytes)) or hasattr(image, "__fspath__")):
        return to_rgb_uint8(image)
    import cv2

    path = check_image_path(image)
    data = np.fromfile(path, dtype=np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:  # a format OpenCV lacks (GIF...): PaddleX 3 cannot read it; ours can
        return load_image(path)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def _args(name: str, args: Any, allowed: Sequence[str]) -> Dict[str, Any]:
    args = dict(args or {})
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise UnsupportedModelError("inference.yml: %s has argument(s) %s that PaddleX 3's "
                                    "classifier does not take (it takes %s)"
                                    % (name, ", ".join(unknown), ", ".join(allowed)))
    return args


def _size_pair(value: Any, what: str):
    """``(w, h)`` of an int or ``[w, h]``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0:
        return int(value), int(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and v > 0 for v in value):
        return int(value[0]), int(value[1])
    raise UnsupportedModelError("inference.yml: %s must be a positive int or [w, h], got %r"
                                % (what, value))


def _resize(args: Any) -> Callable[[np.ndarray], np.ndarray]:
    a = _args("ResizeImage", args, ("resize_short", "size", "backend", "interpolation"))
    short, size = a.get("resize_short"), a.get("size")
    if not short and not size:
        raise UnsupportedModelError("inference.yml: ResizeImage needs resize_short or size")
    backend = str(a.get("backend") or "cv2")
    interp = str(a.get("interpolation") or "LINEAR").upper()
    names = {"cv2": _CV2_INTERP, "pil": _PIL_INTERP}.get(backend)
    if names is None or interp not in names:
        raise UnsupportedModelError(
            "inference.yml: ResizeImage backend %r with interpolation %r; PaddleX 3 takes "
            "backend cv2 (%s) or pil (%s)" % (backend, a.get("interpolation"),
                                              ", ".join(_CV2_INTERP), ", ".join(_PIL_INTERP)))
    if short:
        short = _size_pair(short, "ResizeImage.resize_short")[0]
    else:
        size = _size_pair(size, "ResizeImage.size")

    def target(h, w):
        if short:
            scale = short / min(h, w)
            return round(w * scale), round(h * scale)  # Python's round: PaddleX's
        return size

    def resize(img):
        w2, h2 = target(*img.shape[:2])
        if (w2, h2) == (img.shape[1], img.shape[0]):
            return img
        if backend == "pil":
            from PIL import Image

            flag = {"LANCZOS4": Image.LANCZOS}.get(interp) or getattr(Image, interp)
            return np.asarray(Image.fromarray(img).resize((w2, h2), flag))
        import cv2

        flag = getattr(cv2, "INTER_CUBIC" if interp == "BICUBIC" else "INTER_" + interp)
        return cv2.resize(img, (w2, h2), interpolation=flag)

    return resize


def _crop(args: Any) -> Callable[[np.ndarray], np.ndarray]:
    a = _args("CropImage", args, ("size",))
    cw, ch = _size_pair(a.get("size", 224), "CropImage.size")

    def crop(img):
        h, w = img.shape[:2]
        if w < cw or h < ch:
            raise ValueError("the image (%d x %d after ResizeImage) is smaller than the model's "
                             "crop (%d x %d)" % (w, h, cw, ch))
        x1, y1 = (w - cw) // 2, (h - ch) // 2
        return img[y1:y1 + ch, x1:x1 + cw]

    return crop


def _scale(value: Any) -> float:
    if isinstance(value, str) and value.count("/") == 1:  # PaddleClas's training configs' "1.0/255.0"
        num, den = value.split("/")
        return float(num) / float(den)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise UnsupportedModelError("inference.yml: NormalizeImage.scale must be a number, got %r"
                                % (value,))


def _triple(value: Any, what: str) -> List[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)] * 3
    if isinstance(value, (list, tuple)) and len(value) == 3:
        return [float(v) for v in value]
    raise UnsupportedModelError("inference.yml: NormalizeImage.%s must be a number or three "
                                "numbers, got %r" % (what, value))


def _normalize_lut(args: Any) -> np.ndarray:
    """``(3, 256)`` float32: NormalizeImage of every uint8 value, per channel."""
    a = _args("NormalizeImage", args, ("scale", "mean", "std", "order", "channel_num"))
    if a.get("order", "") not in ("", "hwc") or int(a.get("channel_num", 3)) != 3:
        raise UnsupportedModelError(
            "inference.yml: NormalizeImage with order %r and channel_num %r; PaddleX 3's "
            "classifier takes order '' and 3 channels" % (a.get("order"), a.get("channel_num")))
    scale = _scale(a.get("scale", 1 / 255))
    mean = _triple(a.get("mean", _IMAGENET_MEAN), "mean")
    std = _triple(a.get("std", _IMAGENET_STD), "std")
    ramp = np.arange(256, dtype=np.uint8)
    lut = np.empty((3, 256), np.float32)
    for c in range(3):
        x = ramp.astype(np.float32)
        x *= scale / std[c]  # two float32 steps, as PaddleX's Normalize
        x += -mean[c] / std[c]
        lut[c] = x
    return lut


class ClasTransforms:
    """The preprocessing of ``transform_ops`` (a list of ``{op name: args}``; see the module
    docstring). Raises :class:`~paddlex_interpret.errors.UnsupportedModelError` naming an op or
    an argument PaddleX 3's classifier does not run, or a required op that is missing."""

    def __init__(self, transform_ops: Optional[List[Dict[str, Any]]]):
        if not isinstance(transform_ops, list) or not transform_ops:
            raise UnsupportedModelError("inference.yml has no PreProcess.transform_ops list")
        found = {}
        for item in transform_ops:
            if not isinstance(item, dict) or len(item) != 1:
                raise UnsupportedModelError("inference.yml: a transform op must be one "
                                            "{name: arguments} entry, got %r" % (item,))
            (name, args), = item.items()
            if name not in SUPPORTED_OPS:
                raise UnsupportedModelError(
                    "inference.yml: preprocessing op %r is not one PaddleX 3's classifier runs "
                    "(%s)" % (name, ", ".join(SUPPORTED_OPS[:-1])))
            found[name] = args
        missing = [n for n in ("ResizeImage", "NormalizeImage", "ToCHWImage") if n not in found]
        if missing:
            raise UnsupportedModelError("inference.yml: PreProcess lacks %s (PaddleX 3's "
                                        "classifier needs it)" % ", ".join(missing))
        if "DecodeImage" in found:
            _args("DecodeImage", found["DecodeImage"], ("to_rgb", "channel_first"))
            decode = dict(found["DecodeImage"] or {})
            if decode.get("to_rgb", True) is False or decode.get("channel_first"):
                raise UnsupportedModelError("inference.yml: DecodeImage must give RGB, channels "
                                            "last (PaddleX 3 reads images that way)")
        _args("ToCHWImage", found["ToCHWImage"], ())
        self.ops = transform_ops
        self._resize = _resize(found["ResizeImage"])
        self._crop = _crop(found["CropImage"]) if "CropImage" in found else None
        #: ``(3, 256)`` float32 normalisation table (channels R, G, B)
        self.lut = _normalize_lut(found["NormalizeImage"])

    def view(self, image: Any) -> np.ndarray:
        """The image the model sees: a path or an RGB array, read, resized and cropped (uint8)."""
        img = self._resize(read_image(image))
        if self._crop is not None:
            img = self._crop(img)
        return np.ascontiguousarray(img)

    def preprocess(self, images: np.ndarray) -> np.ndarray:
        """``(B, H, W, 3)`` uint8 views -> ``(B, 3, H, W)`` float32 model inputs."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            images = np.stack([to_rgb_uint8(im) for im in images])
        out = np.empty((images.shape[0], 3) + images.shape[1:3], dtype=np.float32)
        for c in range(3):
            np.take(self.lut[c], images[..., c], out=out[:, c])
        return out

    def describe(self) -> str:
        """The ops as canonical JSON (part of the model's fingerprint)."""
        return json.dumps(self.ops, sort_keys=True, default=str)
