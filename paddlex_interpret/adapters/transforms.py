"""A PaddleX ``Compose`` of test transforms, split where the model's view ends.

:class:`TransformSplit` runs the geometric steps (everything before ``Normalize``: resize,
crop) to give the image the model sees (PaddleX 1.3: ``test_transforms[:-2]``, rounded to uint8),
and the rest (``Normalize``: PaddleX's own, evaluated once on the 256 values of each channel and
applied to whole batches as a lookup table when it is a per-channel map) to give model inputs.
Shared by the adapters of a live PaddleX model and of a deployed one.
"""
import copy

import numpy as np

from ..core.images import load_image, to_rgb_uint8
from .base import channel_lut

__all__ = ["TransformSplit"]


class TransformSplit:
    """The view steps and the input steps of ``transforms`` (a ``paddlex.transforms.Compose``)."""

    def __init__(self, transforms):
        ops = [op for op in transforms.transforms
               if type(op).__name__ not in ("Decode", "ArrangeClassifier")]
        split = next((i for i, op in enumerate(ops) if type(op).__name__ == "Normalize"),
                     len(ops))
        self.ops = ops
        self.view_ops = [copy.deepcopy(op) for op in ops[:split]]
        self.tail_ops = [copy.deepcopy(op) for op in ops[split:]]
        self.lut = channel_lut(self._apply_tail) if self.tail_ops else None

    def view(self, image):
        """Path or array (RGB) -> uint8 HWC after the view steps."""
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            img = load_image(image)
        else:
            img = to_rgb_uint8(image)
        sample = {"image": img, "im_shape": np.array(img.shape[:2], np.float32),
                  "scale_factor": np.array([1.0, 1.0], np.float32)}
        for op in self.view_ops:
            sample = op(sample)
        return to_rgb_uint8(np.rint(np.asarray(sample["image"], dtype=np.float64))
                            if sample["image"].dtype != np.uint8 else sample["image"])

    def _apply_tail(self, images):
        """The steps after the view, one image at a time (PaddleX's own ops)."""
        out = []
        for im in np.asarray(images):
            sample = {"image": im}
            for op in self.tail_ops:
                sample = op(sample)
            out.append(np.asarray(sample["image"], np.float32).transpose(2, 0, 1))
        return np.stack(out)

    def preprocess(self, images):
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 via the steps after the view."""
        images = np.asarray(images)
        if self.lut is not None and images.dtype == np.uint8:
            out = np.empty((images.shape[0], 3) + images.shape[1:3], dtype=np.float32)
            for c in range(3):
                np.take(self.lut[c], images[..., c], out=out[:, c])
            return out
        return self._apply_tail(images)
