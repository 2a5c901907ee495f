"""The model side of an explanation: ``(B, H, W, 3) uint8 RGB -> (B, C)`` class probabilities.

This is the one module that runs Paddle models. Two adapters:

* :class:`PaddleXClassifier` wraps a ``paddlex.cv.models`` classifier and reuses its own test
  transforms: :meth:`~PaddleXClassifier.view` runs the geometric steps (everything before
  ``Normalize``) to give the image the model sees; ``__call__`` runs the remaining steps
  (``Normalize`` and what follows) on perturbed batches of that image, then ``model.net``.
* :class:`LayerClassifier` wraps any ``paddle.nn.Layer`` with a preprocessing function.

Both run the network in eval mode under ``paddle.no_grad()`` and restore its previous mode.

Example::

    import paddlex_interpret, paddlex as pdx
    from paddlex_interpret.predictors import PaddleXClassifier
    clf = PaddleXClassifier(pdx.load_model("output/best_model"))
    image = clf.view("dog.jpg")            # uint8 HWC after Resize/CenterCrop
    probs = clf(image[None])               # (1, num_classes)
"""
import contextlib
import copy

import numpy as np

from .core.images import load_image, to_rgb_uint8
from .errors import UnsupportedModelError

__all__ = ["PaddleXClassifier", "LayerClassifier", "eval_mode", "check_paddlex_classifier"]


@contextlib.contextmanager
def eval_mode(layer):
    """Put ``layer`` in eval mode under ``paddle.no_grad()``; restore its train/eval mode after."""
    import paddle

    was_training = bool(getattr(layer, "training", False))
    layer.eval()
    try:
        with paddle.no_grad():
            yield layer
    finally:
        if was_training:
            layer.train()


def _softmax_if_needed(out):
    out = np.asarray(out, dtype=np.float64)
    sums = out.sum(axis=1)
    if np.all(np.abs(sums - 1.0) <= 1e-4) and out.min() >= 0:
        return out
    z = out - out.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _run_layer(layer, batch_nchw):
    import paddle

    x = paddle.to_tensor(np.ascontiguousarray(batch_nchw, dtype=np.float32))
    with eval_mode(layer):
        out = layer(x)
    if isinstance(out, (list, tuple)):
        out = out[0]
    return _softmax_if_needed(out.numpy())


def check_paddlex_classifier(model):
    """Raise :class:`UnsupportedModelError` naming the problem unless ``model`` is a usable PaddleX
    classifier (``model_type == 'classifier'``, a ``net`` and ``test_transforms``)."""
    model_type = getattr(model, "model_type", None)
    if model_type is None or not hasattr(model, "net"):
        raise UnsupportedModelError(
            "expected a paddlex.cv.models classifier (e.g. paddlex.cls.MobileNetV3_small or "
            "paddlex.load_model(...)), got %s" % type(model).__name__)
    if model_type != "classifier":
        raise UnsupportedModelError(
            "LIME/NormLIME explain image classifiers only; %s is a %s model"
            % (type(model).__name__, model_type))
    transforms = getattr(model, "test_transforms", None)
    if transforms is None or not getattr(transforms, "transforms", None):
        raise UnsupportedModelError(
            "%s has no test_transforms: train it with an eval_dataset, load it with "
            "paddlex.load_model, or set model.test_transforms = paddlex.transforms.Compose([...])"
            % type(model).__name__)
    return model


class PaddleXClassifier:
    """``images -> probabilities`` for a PaddleX 2.x classifier, through its own test transforms.

    Args:
        model: a ``paddlex.cv.models.BaseClassifier`` with ``test_transforms``.
        transforms: a ``paddlex.transforms.Compose`` to use instead of ``model.test_transforms``.
    """

    def __init__(self, model, transforms=None):
        if transforms is None:
            check_paddlex_classifier(model)
            transforms = model.test_transforms
        self.model = model
        self.label_names = list(model.labels) if getattr(model, "labels", None) else None
        ops = [op for op in transforms.transforms
               if type(op).__name__ not in ("Decode", "ArrangeClassifier")]
        split = next((i for i, op in enumerate(ops) if type(op).__name__ == "Normalize"), len(ops))
        self.view_ops = [copy.deepcopy(op) for op in ops[:split]]
        self.tail_ops = [copy.deepcopy(op) for op in ops[split:]]
        # Normalize is a per-channel map of uint8 values: run PaddleX's own Normalize once on the
        # 256 possible values of each channel and apply the result to whole batches as a lookup.
        self._lut = None
        if self.tail_ops and all(type(op).__name__ == "Normalize" for op in self.tail_ops):
            ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, None, None], 3, axis=2)
            x = ramp.astype(np.float32)
            for op in self.tail_ops:
                x = op.apply_im(x)
            self._lut = np.ascontiguousarray(np.asarray(x, np.float32)[:, 0, :].T)  # (3, 256)

    @property
    def num_classes(self):
        return getattr(self.model, "num_classes", None)

    def view(self, image):
        """The image the model sees: path or array (RGB) -> uint8 HWC after the geometric steps
        of the test transforms (PaddleX 1.3: ``test_transforms[:-2]``, rounded to uint8)."""
        img = load_image(image) if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__") \
            else to_rgb_uint8(image)
        sample = {"image": img, "im_shape": np.array(img.shape[:2], np.float32),
                  "scale_factor": np.array([1.0, 1.0], np.float32)}
        for op in self.view_ops:
            sample = op(sample)
        return to_rgb_uint8(np.rint(np.asarray(sample["image"], dtype=np.float64))
                            if sample["image"].dtype != np.uint8 else sample["image"])

    def preprocess(self, images):
        """``(B, H, W, 3)`` uint8 -> ``(B, 3, H, W)`` float32 via the transforms after the view."""
        images = np.asarray(images)
        if self._lut is not None and images.dtype == np.uint8:
            out = np.empty((images.shape[0], 3) + images.shape[1:3], dtype=np.float32)
            for c in range(3):
                np.take(self._lut[c], images[..., c], out=out[:, c])
            return out
        out = []
        for im in images:
            sample = {"image": im}
            for op in self.tail_ops:
                sample = op(sample)
            out.append(np.asarray(sample["image"], np.float32).transpose(2, 0, 1))
        return np.stack(out)

    def __call__(self, images):
        return _run_layer(self.model.net, self.preprocess(images))


class LayerClassifier:
    """``images -> probabilities`` for any ``paddle.nn.Layer``.

    Args:
        layer: the network; its outputs are logits or probabilities ``(B, C)``.
        preprocess: ``(B, H, W, 3) uint8 -> (B, C, H, W)`` float array; default scales to [0, 1]
            and moves channels first.
        label_names: optional class names.
    """

    def __init__(self, layer, preprocess=None, label_names=None):
        self.layer = layer
        self._preprocess = preprocess
        self.label_names = label_names

    def preprocess(self, images):
        if self._preprocess is not None:
            return self._preprocess(np.asarray(images))
        return np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) / 255.0

    def view(self, image):
        return load_image(image) if isinstance(image, str) else to_rgb_uint8(image)

    def __call__(self, images):
        return _run_layer(self.layer, self.preprocess(images))
