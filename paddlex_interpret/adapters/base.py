"""What the Paddle adapters share: a :class:`~paddlex_interpret.core.classifier.Classifier` that
runs a ``paddle.nn.Layer`` through a :class:`~paddlex_interpret.runtime.policy.ModelRunner`.

When the model's input normalisation is a per-channel map of uint8 values (PaddleX
``Normalize``; ``LayerClassifier``'s default ``/255``; found by :func:`channel_lut`), the
classifier gives that table (:meth:`~paddlex_interpret.core.classifier.Classifier.input_table`)
and LIME's perturbed batches are composed directly as normalised model inputs by the core's
:meth:`~paddlex_interpret.core.classifier.Classifier.predict_masks` (copies only: the same
numbers as normalising the composed uint8 images); this module says how such a batch is
predicted.

Subclasses give ``_layer()`` (the network), ``preprocess(images)`` (uint8 ``(B, H, W, 3)`` ->
float ``(B, C, H, W)``) and ``_lut`` (the ``(3, 256)`` table, or None).
"""
import numpy as np

from ..core.classifier import Classifier, as_probabilities
from ..runtime.devices import check_device, suggest_batch_size
from ..runtime.fingerprint import parameter_fingerprint
from ..runtime.policy import ModelRunner, check_backend

__all__ = ["PaddleClassifier", "channel_lut"]


def channel_lut(fn):
    """``(3, 256)`` float32 table of ``fn`` when it is a per-channel map of uint8 values (checked
    on a random image: the table must give ``fn``'s numbers exactly), else None. ``fn`` takes
    ``(B, H, W, 3)`` uint8 and returns ``(B, 3, H, W)``."""
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


class PaddleClassifier(Classifier):
    """Backend selection, weight holding and the normalised inputs of LIME for a Paddle layer.

    Args:
        backend: ``'auto'``, ``'dygraph'`` or ``'inference'`` (see
            :mod:`~paddlex_interpret.runtime.policy`).
        device: ``'cpu'``, ``'gpu:0'``... (default: where the network's parameters are).
            Dygraph, the gradient methods and Paddle Inference all run there; a device other
            than the parameters' leaves Paddle Inference only, and a GPU that is not there
            raises :class:`~paddlex_interpret.errors.DeviceError` here, before anything runs.
        num_threads: CPU threads (default all cores).
        batch_size: the batch size suggested to LIME when it is given none (default: from
            memory, :func:`~paddlex_interpret.runtime.devices.suggest_batch_size`).
    """

    _lut = None

    def __init__(self, backend="auto", device=None, num_threads=None, batch_size=None):
        check_backend(backend)  # at construction: the runner is built lazily
        self.backend = backend
        self.device = check_device(device) if device else None
        self.num_threads = num_threads
        self.batch_size = batch_size
        self._runner = None

    def _layer(self):
        raise NotImplementedError

    def network(self):
        """The ``paddle.nn.Layer`` that runs (the gradient methods differentiate it)."""
        return self._layer()

    def preprocess(self, images):
        raise NotImplementedError

    @property
    def runner(self):
        """The :class:`~paddlex_interpret.runtime.policy.ModelRunner` of the current network."""
        layer = self._layer()
        if self._runner is None or self._runner.layer is not layer:
            self._runner = ModelRunner(layer, backend=self.backend, device=self.device,
                                       num_threads=self.num_threads)
        return self._runner

    @property
    def fused(self):
        """True when LIME's batches are composed directly as normalised inputs (the model's
        normalisation is a per-channel lookup table, :meth:`input_table`)."""
        return self._lut is not None

    def input_table(self):
        return self._lut

    @property
    def backend_info(self):
        """Which backend ran the last batch and why (``{'backend': ..., 'reason': ...}``)."""
        return self.runner.describe()

    def hold_weights(self):
        """Context: the weights do not change inside (verified once, not at every call)."""
        return self.runner.hold_weights()

    def suggest_batch_size(self, image):
        if self.batch_size:
            return int(self.batch_size)
        return suggest_batch_size(np.shape(image), device=self.runner.device)

    def fingerprint(self):
        return parameter_fingerprint(self._layer())

    def _forward(self, batch_nchw):
        return as_probabilities(self.runner(batch_nchw))

    def __call__(self, images):
        return self._forward(self.preprocess(images))

    def predict(self, images):
        return self(images)

    def predict_inputs(self, inputs):
        """Probabilities of a batch of normalised inputs (the runner's backend; on the CPU
        engine in parts of at most
        :data:`~paddlex_interpret.runtime.policy.CPU_ENGINE_MAX_BATCH` images)."""
        return self._forward(inputs)
