"""The model side of an explanation: ``(B, H, W, 3) uint8 RGB -> (B, C)`` class probabilities.

This is the one module that runs Paddle models. Two adapters:

* :class:`PaddleXClassifier` wraps a ``paddlex.cv.models`` classifier and reuses its own test
  transforms: :meth:`~PaddleXClassifier.view` runs the geometric steps (everything before
  ``Normalize``) to give the image the model sees; ``__call__`` runs the remaining steps
  (``Normalize`` and what follows) on perturbed batches of that image, then ``model.net``.
* :class:`LayerClassifier` wraps any ``paddle.nn.Layer`` with a preprocessing function.

Both run the network in eval mode under ``paddle.no_grad()`` and restore its previous mode, through a
:class:`~paddlex_interpret.backends.ModelRunner`: ``backend='auto'`` (default) exports the network to
Paddle Inference (oneDNN on CPU) when that is faster, ``'dygraph'`` / ``'inference'`` force one (see
:mod:`paddlex_interpret.backends`). When the model's input normalisation is a per-channel map of
uint8 values (PaddleX ``Normalize``; ``LayerClassifier``'s default ``/255``), :meth:`predict_masks`
composes LIME's perturbed batches directly in float32 (the normalised image where a superpixel is
kept, the normalised fill elsewhere: the same numbers as normalising the composed uint8 images) and
prepares the next batch in a thread while the model runs the current one.

Example::

    import paddlex_interpret, paddlex as pdx
    from paddlex_interpret.predictors import PaddleXClassifier
    clf = PaddleXClassifier(pdx.load_model("output/best_model"))
    image = clf.view("dog.jpg")            # uint8 HWC after Resize/CenterCrop
    probs = clf(image[None])               # (1, num_classes)
    clf.backend_info                       # {'backend': 'inference', 'reason': ..., ...}
"""
import contextlib
import copy

import numpy as np

from .backends import ModelRunner, check_backend, suggest_batch_size
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


def _channel_lut(fn):
    """``(3, 256)`` float32 table of a per-channel map of uint8 values, or None if ``fn`` is not
    one (checked on a random image)."""
    ramp = np.repeat(np.arange(256, dtype=np.uint8)[None, :, None], 3, axis=2)  # (1, 256, 3)
    try:
        lut = np.asarray(fn(ramp[None]), dtype=np.float32)  # (1, 3, 1, 256)
        if lut.shape != (1, 3, 1, 256):
            return None
        lut = np.ascontiguousarray(lut[0, :, 0, :])
        probe = np.random.default_rng(0).integers(0, 256, (2, 7, 5, 3), dtype=np.uint8)
        expect = np.asarray(fn(probe), dtype=np.float32)
        got = np.stack([lut[c][probe[..., c]] for c in range(3)], axis=1)
        return lut if expect.shape == got.shape and np.array_equal(expect, got) else None
    except Exception:
        return None


class _RunnerMixin:
    """Backend selection, weight holding and LIME's fused perturbation path, shared by the two
    adapters (which define ``_layer()``, ``preprocess`` and ``_lut``)."""

    def _init_runner(self, backend, device, num_threads, batch_size):
        check_backend(backend)  # at construction: the runner is built lazily
        self.backend = backend
        self.device = device
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._runner = None
        self._fused = None

    @property
    def runner(self):
        """The :class:`~paddlex_interpret.backends.ModelRunner` of the current network."""
        layer = self._layer()
        if self._runner is None or self._runner.layer is not layer:
            self._runner = ModelRunner(layer, backend=self.backend, device=self.device,
                                       num_threads=self.num_threads)
        return self._runner

    @property
    def backend_info(self):
        """Which backend ran the last batch and why (``{'backend': ..., 'reason': ...}``)."""
        return self.runner.describe()

    def hold_weights(self):
        """Context: the weights do not change inside (verified once, not at every call)."""
        return self.runner.hold_weights()

    def suggest_batch_size(self, image):
        """Batch size when the user gives none: see
        :func:`paddlex_interpret.backends.suggest_batch_size`."""
        if self.batch_size:
            return int(self.batch_size)
        from .backends import _device

        return suggest_batch_size(np.shape(image), device=self.device or _device())

    def _forward(self, batch_nchw):
        return _softmax_if_needed(self.runner(batch_nchw))

    def __call__(self, images):
        return self._forward(self.preprocess(images))

    def _normalised(self, image, fill_image):
        """The normalised ``(3, H, W)`` float32 image and fill, memoised for the last pair."""
        cached = self._fused
        if cached is not None and cached[0] is image and cached[1] is fill_image:
            return cached[2], cached[3]
        img_n = np.stack([self._lut[c][image[..., c]] for c in range(3)])
        fill_n = np.stack([self._lut[c][fill_image[..., c]] for c in range(3)])
        self._fused = (image, fill_image, img_n, fill_n)
        return img_n, fill_n

    def compose(self, image, fill_image, segments, masks, out=None):
        """``(B, 3, H, W)`` float32 model inputs for mask rows ``masks`` (kept superpixels from
        ``image``, the rest from ``fill_image``), bit for bit ``preprocess(perturb(...))``.

        The normalised image and fill are computed once per explanation; a batch is the fill
        copied in, then the image copied over it where the pixel's superpixel is kept (two
        vectorised copies, no per-sample loop; measured faster than a bitwise select)."""
        if self._lut is None:
            from .core.perturbation import perturb

            return self.preprocess(perturb(image, fill_image, segments, masks))
        img_n, fill_n = self._normalised(image, fill_image)
        b = len(masks)
        keep = np.take(np.asarray(masks, dtype=bool), segments, axis=1)  # (B, H, W)
        if out is None or out.shape[0] != b:
            out = np.empty((b,) + img_n.shape, dtype=np.float32)
        np.copyto(out, fill_n[None])
        np.copyto(out, img_n[None], where=keep[:, None])
        return out

    def predict_masks(self, image, fill_image, segments, masks, batch_size, overlap=None):
        """Probabilities ``(N, C)`` of the perturbed images of ``masks`` ``(N, d)``, computed
        ``batch_size`` at a time; with ``overlap`` the next batch is composed in a thread while
        the model runs (numpy and Paddle release the GIL). Same numbers as calling the
        classifier on ``perturb(image, fill_image, segments, masks)`` batch by batch.

        ``overlap=None`` (default): only when the model runs on a GPU. On CPU the model's math
        threads already use every core, and composing in parallel measured slower (BENCHMARKS.md).
        """
        from .core.perturbation import iter_batches

        if overlap is None:
            from .backends import _device

            overlap = str(self.device or _device()).startswith("gpu")
        image = np.asarray(image)
        slices = list(iter_batches(len(masks), int(batch_size)))
        outputs = None
        with self.hold_weights():
            if not overlap or len(slices) < 2:
                buf = None
                for sl in slices:
                    buf = self.compose(image, fill_image, segments, masks[sl], out=buf)
                    probs = self._forward(buf)
                    if outputs is None:
                        outputs = np.empty((len(masks), probs.shape[1]), dtype=np.float64)
                    outputs[sl] = probs
                return outputs
            from concurrent.futures import ThreadPoolExecutor

            bufs = [None, None]
            with ThreadPoolExecutor(max_workers=1) as pool:
                job = pool.submit(self.compose, image, fill_image, segments, masks[slices[0]])
                for i, sl in enumerate(slices):
                    batch = job.result()
                    bufs[i % 2] = batch
                    if i + 1 < len(slices):
                        job = pool.submit(self.compose, image, fill_image, segments,
                                          masks[slices[i + 1]], bufs[(i + 1) % 2])
                    probs = self._forward(batch)
                    if outputs is None:
                        outputs = np.empty((len(masks), probs.shape[1]), dtype=np.float64)
                    outputs[sl] = probs
        return outputs


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


class PaddleXClassifier(_RunnerMixin):
    """``images -> probabilities`` for a PaddleX 2.x classifier, through its own test transforms.

    Args:
        model: a ``paddlex.cv.models.BaseClassifier`` with ``test_transforms``.
        transforms: a ``paddlex.transforms.Compose`` to use instead of ``model.test_transforms``.
        backend: ``'auto'`` (default: Paddle Inference when measured faster), ``'dygraph'`` or
            ``'inference'`` (see :mod:`paddlex_interpret.backends`).
        device: ``'cpu'``, ``'gpu:0'``... (default ``paddle.get_device()``).
        num_threads: CPU threads (default all cores).
        batch_size: batch size suggested to LIME when it is given none (default: from memory,
            :func:`paddlex_interpret.backends.suggest_batch_size`).
    """

    def __init__(self, model, transforms=None, *, backend="auto", device=None, num_threads=None,
                 batch_size=None):
        self._init_runner(backend, device, num_threads, batch_size)
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

    def _layer(self):
        return self.model.net

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



class LayerClassifier(_RunnerMixin):
    """``images -> probabilities`` for any ``paddle.nn.Layer``.

    Args:
        layer: the network; its outputs are logits or probabilities ``(B, C)``.
        preprocess: ``(B, H, W, 3) uint8 -> (B, C, H, W)`` float array; default scales to [0, 1]
            and moves channels first.
        label_names: optional class names.
        backend, device, num_threads, batch_size: as for :class:`PaddleXClassifier`.
    """

    def __init__(self, layer, preprocess=None, label_names=None, *, backend="auto", device=None,
                 num_threads=None, batch_size=None):
        self._init_runner(backend, device, num_threads, batch_size)
        self.layer = layer
        self._preprocess = preprocess
        self.label_names = label_names
        self._lut = _channel_lut(self.preprocess)

    def _layer(self):
        return self.layer

    def preprocess(self, images):
        if self._preprocess is not None:
            return self._preprocess(np.asarray(images))
        return np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) / 255.0

    def view(self, image):
        return load_image(image) if isinstance(image, str) else to_rgb_uint8(image)
