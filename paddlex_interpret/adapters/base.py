"""What the Paddle adapters share: a :class:`~paddlex_interpret.core.classifier.Classifier` that
runs a ``paddle.nn.Layer`` through a :class:`~paddlex_interpret.runtime.policy.ModelRunner` and
composes LIME's perturbed batches directly as normalised model inputs.

When the model's input normalisation is a per-channel map of uint8 values (PaddleX
``Normalize``; ``LayerClassifier``'s default ``/255``; found by :func:`channel_lut`), the
normalised image and fill are computed once per explanation and a batch is then copies only
(:func:`~paddlex_interpret.core.perturbation.compose_normalised`): the same numbers as
normalising the composed uint8 images. The batches are spread over what runs the model by
:mod:`~paddlex_interpret.runtime.scheduling`.

Subclasses give ``_layer()`` (the network), ``preprocess(images)`` (uint8 ``(B, H, W, 3)`` ->
float ``(B, C, H, W)``) and ``_lut`` (the ``(3, 256)`` table, or None).
"""
import numpy as np

from ..core.classifier import Classifier, as_probabilities
from ..core.perturbation import compose_normalised, iter_batches, perturb
from ..runtime import scheduling
from ..runtime.devices import check_device, is_gpu, suggest_batch_size
from ..runtime.fingerprint import parameter_fingerprint
from ..runtime.policy import ModelRunner, check_backend, check_parallel

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
    """Backend selection, weight holding and LIME's fused perturbation path for a Paddle layer.

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
        parallel: how LIME's batches run on the CPU inference engine: ``'auto'`` (two
            single-thread workers for a fast model), an int ``k >= 2`` workers, or ``False``
            (the one predictor with all threads). Not used on a GPU or in dygraph.
    """

    _lut = None

    def __init__(self, backend="auto", device=None, num_threads=None, batch_size=None,
                 parallel="auto"):
        check_backend(backend)  # at construction: the runner is built lazily
        self.backend = backend
        self.device = check_device(device) if device else None
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.parallel = check_parallel(parallel)
        self._runner = None
        self._fused = None

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
                                       num_threads=self.num_threads, parallel=self.parallel)
        return self._runner

    @property
    def fused(self):
        """True when LIME's batches are composed directly as normalised inputs (the model's
        normalisation is a per-channel lookup table), which the workers need."""
        return self._lut is not None

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
        ``out``: a C-contiguous buffer to fill (e.g. a worker's input)."""
        if self._lut is None:
            x = self.preprocess(perturb(image, fill_image, segments, masks))
            if out is not None and out.shape == x.shape:
                np.copyto(out, x)
                return out
            return x
        img_n, fill_n = self._normalised(image, fill_image)
        if out is not None and (out.shape != (len(masks),) + img_n.shape
                                or not out.flags.c_contiguous):
            out = None
        return compose_normalised(img_n, fill_n, segments, masks, out=out)

    def prepare(self, image, batch_size):
        """Decide how the coming explanation's batches run (backend and workers, fixed for it),
        measuring on ``batch_size`` copies of ``image`` when the runner still has to (their
        outputs are thrown away). Later explanations of inputs of this size follow the same
        decision."""
        one = np.ascontiguousarray(self.preprocess(np.asarray(image)[None]), dtype=np.float32)
        shape = tuple(one.shape[1:])
        runner = self.runner
        probe = None
        if not runner.decided(shape) or (self.parallel and self.fused):
            probe = np.repeat(one, max(1, int(batch_size)), axis=0)
        return runner.plan(shape, probe=probe, parallel=self.parallel if self.fused else 0)

    def predict_masks(self, image, fill_image, segments, masks, batch_size, on_batch=None,
                      overlap=None, parallel=None):
        """Probabilities ``(N, C)`` of the perturbed images of ``masks`` ``(N, d)``, computed
        ``batch_size`` at a time: the same numbers as calling the classifier on
        ``perturb(image, fill_image, segments, masks)`` batch by batch.

        The path (backend, workers) is fixed before the first batch (:meth:`prepare`, measured
        on the first batch's inputs when the runner still has to) and kept for all of them:
        on the CPU engine, with ``parallel`` (default: the classifier's), the batches go to
        its single-thread workers, each composing its next batch directly into its predictor's
        input while the other computes. ``overlap`` (without workers): compose the next batch
        in a thread while the model runs; default only on a GPU.
        """
        if overlap is None:
            overlap = is_gpu(self.runner.device)
        use_workers = self.parallel if parallel is None else check_parallel(parallel)
        image = np.asarray(image)
        slices = list(iter_batches(len(masks), int(batch_size)))

        def compose(sl, out=None):
            return self.compose(image, fill_image, segments, masks[sl], out=out)

        def counted(fn):
            """``fn`` that also reports the rows it did to ``on_batch`` (progress)."""
            if on_batch is None:
                return fn

            def run(x):
                probs = fn(x)
                on_batch(len(probs))
                return probs
            return run

        forward, to_probs = counted(self._forward), counted(as_probabilities)
        with self.hold_weights():
            runner = self.runner
            first = compose(slices[0])
            shape = tuple(first.shape[1:])
            plan = runner.plan(shape, probe=first, parallel=use_workers if self.fused else 0)
            results = scheduling.run_batches(compose, forward, to_probs, slices, plan,
                                             overlap=overlap and not plan.workers,
                                             on_failure=runner.parallel_failed)
        return scheduling.gather(results, len(masks))
