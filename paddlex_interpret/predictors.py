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
kept, the normalised fill elsewhere: the same numbers as normalising the composed uint8 images).
On CPU with the inference engine (``parallel='auto'``) the batches go to two single-thread
predictors of the same program and weights, one Python thread each: each composes its next batch
straight into its predictor's input (shared with Paddle, no copy) while the other computes, so
composition no longer adds to the forward passes (issue 5; ``parallel=False`` turns it off). On a
GPU the next batch is composed in a thread while the model runs the current one.

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

from .backends import ModelRunner, check_backend, check_parallel, suggest_batch_size
from .core.images import load_image, to_rgb_uint8
from .core.perturbation import compose_normalised
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


#: Timed batches (of a size the worker ran before) each worker runs before 'auto' checks how
#: busy their threads were (see :meth:`_RunnerMixin._predict_workers`).
_RATED_BATCHES = 2


def _engine_slices(sl, runner):
    """``sl`` cut into the fewest near-equal parts of at most
    :data:`~paddlex_interpret.backends.CPU_ENGINE_MAX_BATCH` images (50 -> 25 + 25) once the
    runner uses the CPU inference engine with its one predictor (the same numbers; only the
    forward batch is smaller); else ``[sl]``."""
    from .backends import CPU_ENGINE_MAX_BATCH

    info = runner.info
    n, step = sl.stop - sl.start, CPU_ENGINE_MAX_BATCH
    if info.get("backend") != "inference" or "gpu" in info or not step or n <= step:
        return [sl]
    parts = -(-n // step)
    size, extra = divmod(n, parts)
    cuts = [sl.start]
    for k in range(parts):
        cuts.append(cuts[-1] + size + (1 if k < extra else 0))
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


def _split_tail(slices, workers):
    """``slices`` with the last ``workers`` of them (the last round, one batch per worker) cut in
    two halves each. With a shared counter the workers then finish at most half a batch apart
    instead of a whole batch (measured: one of two MobileNetV3_small workers idled up to 0.09 s,
    about 6% of a 1000-sample LIME, waiting for the other's last batch of 50). Only two batch
    shapes are ever used (the halves of a full batch), so an inference engine warms up at most
    one more shape (two when the last batch is not full). Example: sizes ``[50, 50, 50]`` with
    2 workers -> ``[50, 25, 25, 25, 25]``."""
    if workers < 2 or len(slices) < 2:
        return list(slices)
    half = (slices[0].stop - slices[0].start + 1) // 2
    cut = max(0, len(slices) - workers)
    out = list(slices[:cut])
    for sl in slices[cut:]:
        out.extend(slice(a, min(a + half, sl.stop)) for a in range(sl.start, sl.stop, half))
    return out


class _RunnerMixin:
    """Backend selection, weight holding and LIME's fused perturbation path, shared by the two
    adapters (which define ``_layer()``, ``preprocess`` and ``_lut``)."""

    def _init_runner(self, backend, device, num_threads, batch_size, parallel="auto"):
        check_backend(backend)  # at construction: the runner is built lazily
        self.backend = backend
        self.device = device
        self.num_threads = num_threads
        self.batch_size = batch_size
        self.parallel = check_parallel(parallel)
        self._runner = None
        self._fused = None

    @property
    def runner(self):
        """The :class:`~paddlex_interpret.backends.ModelRunner` of the current network."""
        layer = self._layer()
        if self._runner is None or self._runner.layer is not layer:
            self._runner = ModelRunner(layer, backend=self.backend, device=self.device,
                                       num_threads=self.num_threads, parallel=self.parallel)
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

        The normalised image and fill are computed once per explanation (PaddleX's Normalize
        as a per-channel lookup of the 256 uint8 values); a batch is then copies only
        (:func:`~paddlex_interpret.core.perturbation.compose_normalised`: the compiled kernel,
        else OpenCV, else numpy), so the numbers are exactly the normalised pixels.
        ``out``: a ``(B, 3, H, W)`` float32 buffer to fill (C-contiguous), e.g. a worker's
        input."""
        if self._lut is None:
            from .core.perturbation import perturb

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

    def predict_masks(self, image, fill_image, segments, masks, batch_size, overlap=None,
                      parallel=None):
        """Probabilities ``(N, C)`` of the perturbed images of ``masks`` ``(N, d)``, computed
        ``batch_size`` at a time. Same numbers as calling the classifier on
        ``perturb(image, fill_image, segments, masks)`` batch by batch.

        ``parallel`` (default: the classifier's ``parallel``, ``'auto'``): once the model runs
        on the CPU inference engine, the batches go to its single-thread workers
        (:meth:`~paddlex_interpret.backends.ModelRunner.workers`: 2 predictors with half the
        threads each on 2+ cores), one Python thread per worker, each composing its next batch
        directly into its predictor's input while the other computes. ``False``: the one
        predictor with all threads.

        ``overlap`` (without workers): compose the next batch in a thread while the model runs.
        ``None`` (default): only when the model runs on a GPU. On CPU the model's math threads
        already use every core, and composing in parallel measured slower (BENCHMARKS.md).
        """
        from .core.perturbation import iter_batches

        if overlap is None:
            from .backends import _device

            overlap = str(self.device or _device()).startswith("gpu")
        use_workers = self.parallel if parallel is None else check_parallel(parallel)
        image = np.asarray(image)
        slices = list(iter_batches(len(masks), int(batch_size)))
        results = {}
        with self.hold_weights():
            runner = self.runner
            shape = (3,) + image.shape[:2] if self._lut is not None else None
            pos = 0
            buf = None
            while pos < len(slices):
                workers = None
                if use_workers and shape is not None and len(slices) - pos >= 2:
                    workers = runner.workers(shape, parallel=use_workers)
                if workers:
                    pos = self._predict_workers(workers, image, fill_image, segments, masks,
                                                slices, pos, results, parallel=use_workers)
                    workers = None
                    continue
                if overlap and len(slices) - pos >= 2:
                    self._predict_overlap(image, fill_image, segments, masks, slices[pos:],
                                          results)
                    break
                for sl in _engine_slices(slices[pos], runner):
                    buf = self.compose(image, fill_image, segments, masks[sl], out=buf)
                    shape = tuple(buf.shape[1:])
                    results[sl.start] = (sl, self._forward(buf))
                pos += 1
        outputs = None
        for sl, probs in results.values():
            if outputs is None:
                outputs = np.empty((len(masks), probs.shape[1]), dtype=np.float64)
            outputs[sl] = probs
        return outputs

    def _predict_workers(self, workers, image, fill_image, segments, masks, slices, pos,
                         results, parallel="auto"):
        """Run ``slices[pos:]`` on ``workers``, one thread each (the calling thread is the
        first), taking the next batch from a shared counter; the last round of batches is cut
        in halves (:func:`_split_tail`) so that the workers finish together. Once every worker
        has run :data:`_RATED_BATCHES` batches of a size it ran before (not warm-ups), how busy
        their threads were goes to
        :meth:`~paddlex_interpret.backends.ModelRunner.workers_busy`, which may turn them off
        (``parallel='auto'``: they took turns, as on Paddle 3.x). Returns the
        index of the first slice not done: ``len(slices)``, or less when the workers stopped
        (turned off, or one failed: logged, and the runner stops using them); the caller
        finishes with the one predictor."""
        import threading
        import time

        todo = _split_tail(slices[pos:], len(workers))
        shape = tuple(workers[0].input_shape)
        lock = threading.Lock()
        state = {"next": 0, "error": None, "stop": False, "rated": False}
        done = {}
        # per worker: CPU seconds of its thread and wall seconds over its timed batches (not
        # the first of each batch size: warm-ups), and how many
        clocks = [[0.0, 0.0, 0] for _ in workers]

        def busy_when_ready():
            """The workers' mean CPU time / wall time (their math runs in their own thread),
            once, when every worker has :data:`_RATED_BATCHES` timed batches."""
            if state["rated"] or any(c[2] < _RATED_BATCHES for c in clocks):
                return None
            state["rated"] = True
            return sum(c[0] / max(c[1], 1e-9) for c in clocks) / len(clocks)

        def work(k, worker):
            try:
                seen = set()
                while True:
                    with lock:
                        i = state["next"]
                        if i >= len(todo) or state["error"] is not None or state["stop"]:
                            return
                        state["next"] = i + 1
                    sl = todo[i]
                    b = sl.stop - sl.start
                    t, cpu = time.perf_counter(), time.thread_time()
                    with worker.lock:  # the buffer is the worker's until its run is done
                        buf = worker.buffer(b)
                        x = self.compose(image, fill_image, segments, masks[sl], out=buf)
                        if x is not buf:
                            raise ValueError("composed batch %s does not fit the worker's "
                                             "input %s" % (x.shape, buf.shape))
                        out = worker.run(b)
                    probs = _softmax_if_needed(out)
                    cpu, t = time.thread_time() - cpu, time.perf_counter() - t
                    with lock:
                        done[i] = probs
                        if b in seen:
                            clock = clocks[k]
                            clock[0], clock[1], clock[2] = (clock[0] + cpu, clock[1] + t,
                                                            clock[2] + 1)
                        seen.add(b)
                        busy = busy_when_ready()
                    if busy is not None and self.runner.workers_busy(shape, busy,
                                                                     parallel=parallel):
                        with lock:
                            state["stop"] = True
            except BaseException as exc:  # noqa: B902 - reported by the calling thread
                with lock:
                    if state["error"] is None:
                        state["error"] = exc

        threads = [threading.Thread(target=work, args=(k, w), daemon=True)
                   for k, w in enumerate(workers) if k]
        for t in threads:
            t.start()
        try:
            work(0, workers[0])
        finally:
            for t in threads:
                t.join()
        for i, probs in done.items():
            results[todo[i].start] = (todo[i], probs)
        if state["error"] is None and not state["stop"]:
            return len(slices)
        if state["error"] is not None:
            exc = state["error"]
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise exc
            self.runner.parallel_failed("%s: %s" % (type(exc).__name__, exc))
        # the caller goes on from the first slice not covered; drop the parts of later ones
        covered = {todo[i].start: todo[i].stop for i in done}
        for k in range(pos, len(slices)):
            start, stop = slices[k].start, slices[k].stop
            while start in covered and start < stop:
                start = covered[start]
            if start < stop:
                for j in [j for j in results if j >= slices[k].start]:
                    del results[j]
                return k
        return len(slices)

    def _predict_overlap(self, image, fill_image, segments, masks, slices, results):
        """Compose the next batch in a thread while the model runs the current one."""
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
                results[sl.start] = (sl, self._forward(batch))


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
        parallel: how LIME's perturbed batches run on the CPU inference engine: ``'auto'``
            (default: with 2+ CPU threads and a fast model, at most
            ``backends.AUTO_WORKERS_SECONDS_PER_IMAGE`` per image, 2 single-predictor workers
            with half the threads each, one Python thread each, so composing a batch overlaps
            the other's forward pass), an int ``k >= 2`` workers (any model), or ``False``
            (the one predictor with all threads). Not used on a GPU or in dygraph. See
            :meth:`predict_masks`.
    """

    def __init__(self, model, transforms=None, *, backend="auto", device=None, num_threads=None,
                 batch_size=None, parallel="auto"):
        self._init_runner(backend, device, num_threads, batch_size, parallel)
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
        backend, device, num_threads, batch_size, parallel: as for :class:`PaddleXClassifier`.
    """

    def __init__(self, layer, preprocess=None, label_names=None, *, backend="auto", device=None,
                 num_threads=None, batch_size=None, parallel="auto"):
        self._init_runner(backend, device, num_threads, batch_size, parallel)
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
