"""Which backend runs a layer: :class:`ModelRunner` and its ``'auto'`` policy.

``backend='dygraph'`` runs the layer itself (all CPU cores, eval mode, no gradients);
``'inference'`` runs it on a Paddle Inference engine (:mod:`~paddlex_interpret.runtime.engine`)
and falls back to dygraph, with the reason logged, when the export or the predictor fails;
``'auto'`` measures and keeps the faster, per layer, input shape and device, for the process
(the measurements live in :data:`~paddlex_interpret.runtime.cache.ENGINES`).

The ``'auto'`` rule: while the model is cheap in dygraph (a call predicted to take under
``AUTO_EXPORT_SECONDS`` and less than ``AUTO_DYGRAPH_BUDGET`` seconds of dygraph so far) it stays
in dygraph and nothing is exported. Otherwise the model is exported; the first inference call at
a batch shape is a warm-up, the next one is timed and compared with dygraph's time per image, and
the faster one is kept.

Weights are verified (fingerprint recomputed) on every call that uses the inference engine,
except inside :meth:`ModelRunner.hold_weights`, where they are verified once.

Example::

    from paddlex_interpret.runtime.policy import ModelRunner
    runner = ModelRunner(net, backend="inference")      # net: any paddle.nn.Layer
    logits = runner(batch_nchw_float32)                 # numpy (B, C)
    runner.info                                         # {'backend': 'inference', ...}
"""
import contextlib
import logging
import time

import numpy as np

from .cache import ENGINES
from .devices import current_device
from .fingerprint import parameter_fingerprint
from .modes import dygraph_threads, eval_mode

__all__ = ["BACKENDS", "ModelRunner", "check_backend", "check_parallel", "AUTO_EXPORT_SECONDS",
           "AUTO_DYGRAPH_BUDGET", "AUTO_WORKERS_SECONDS_PER_IMAGE", "AUTO_WORKERS_MIN_BUSY"]

logger = logging.getLogger("paddlex_interpret")

BACKENDS = ("auto", "dygraph", "inference")

#: 'auto' exports the model once a single call is predicted to take this long in dygraph...
AUTO_EXPORT_SECONDS = 0.25
#: ... or once the dygraph time spent by this layer in the process exceeds this.
AUTO_DYGRAPH_BUDGET = 3.0
#: ``parallel='auto'`` uses the single-thread workers only for models whose engine has run a
#: batch at most this fast per image: composing a batch costs about the same for any model, so
#: the workers matter for fast models; for slow ones their second copy of the activations costs
#: more than it saves (BENCHMARKS.md, "Speed vs the floor and the peers").
AUTO_WORKERS_SECONDS_PER_IMAGE = 0.005
#: ``parallel='auto'`` stops using the workers (for the layer and input shape, for the process)
#: when, once warm, their threads were busy (CPU time / wall time) less than this fraction of the
#: time: they were taking turns, as Paddle 3.x's ``predictor.run()`` makes them do by holding the
#: GIL (BENCHMARKS.md, "Where MobileNetV3_small's LIME time goes").
AUTO_WORKERS_MIN_BUSY = 0.7


class _AutoState:
    """What 'auto' learnt about one (layer, input shape, device) in this process."""

    def __init__(self):
        self.decision = None        # None (measuring), 'dygraph' or 'inference'
        self.reason = "measuring"
        self.dygraph_per_image = None
        self.inference_per_image = None
        self.dygraph_seconds = 0.0
        self.warm_shapes = set()    # batch shapes the engine has run once (warm-up)
        self.probed_batch = False
        self.workers_slow = None    # why 'auto' stopped using the workers, once it did


def check_backend(backend):
    """Raise ``ValueError`` naming the choices unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError("backend must be one of %s, got %r" % (BACKENDS, backend))


def check_parallel(parallel):
    """``'auto'``, ``True`` (= ``'auto'``), ``False`` / ``None`` (= 0) or an int >= 0."""
    if parallel is True or (isinstance(parallel, str) and parallel == "auto"):
        return "auto"
    if parallel is None or parallel is False:
        return 0
    if isinstance(parallel, (int, np.integer)) and parallel >= 0:
        return int(parallel)
    raise ValueError("parallel must be 'auto', True, False or an int >= 0, got %r" % (parallel,))


class ModelRunner:
    """Run ``layer`` on ``(B, C, H, W)`` float32 batches with the chosen backend.

    Args:
        layer: a ``paddle.nn.Layer``; its first output is returned.
        backend: ``'auto'`` (measure, keep the faster), ``'dygraph'`` or ``'inference'``
            (Paddle Inference; falls back to dygraph with a logged warning if export fails).
        device: ``'cpu'`` / ``'gpu:0'``... (default ``paddle.get_device()``).
        num_threads: CPU threads for both backends (default ``os.cpu_count()``).
        use_mkldnn, use_tensorrt: Paddle Inference options (see :class:`InferenceEngine`).
        parallel: how LIME's batches run once the engine is in use (:meth:`workers`):
            ``'auto'`` (default) on CPU with 2 or more threads, for a model whose engine has run
            a batch at :data:`AUTO_WORKERS_SECONDS_PER_IMAGE` (5 ms) per image or faster, 2
            predictors splitting the threads, each run from its own Python thread
            (:meth:`InferenceEngine.workers`);
            an int ``k >= 2``: ``k`` predictors; ``False`` / ``0`` / ``1``: the one predictor
            with all threads. Never on a GPU.

    Attributes:
        info: ``{'backend': what ran last, 'reason': why, ...engine description}``.
    """

    def __init__(self, layer, backend="auto", device=None, num_threads=None, use_mkldnn=True,
                 use_tensorrt=False, parallel="auto"):
        check_backend(backend)
        self.parallel = check_parallel(parallel)
        self._parallel_failed = None
        self._workers_off = None    # why 'auto' stopped using the workers (measured)
        self.layer = layer
        self.backend = backend
        self.device = device
        self.num_threads = num_threads
        self.engine_options = {"use_mkldnn": bool(use_mkldnn), "use_tensorrt": bool(use_tensorrt)}
        if num_threads:
            self.engine_options["num_threads"] = int(num_threads)
        self.info = {"backend": None, "reason": "not run yet"}
        self._hold = 0
        self._held_fingerprint = None
        self._failed = None   # reason the engine cannot be used for this layer

    # ------------------------------------------------------------------ weights
    @contextlib.contextmanager
    def hold_weights(self):
        """A block in which the weights do not change: the fingerprint is computed once (on the
        first engine call) instead of on every call. Nested holds are free."""
        self._hold += 1
        try:
            yield self
        finally:
            self._hold -= 1
            if self._hold == 0:
                self._held_fingerprint = None

    def _fingerprint(self):
        if self._hold and self._held_fingerprint is not None:
            return self._held_fingerprint
        fp = parameter_fingerprint(self.layer)
        if self._hold:
            self._held_fingerprint = fp
        return fp

    # ------------------------------------------------------------------ backends
    def _dygraph(self, x):
        import paddle

        with dygraph_threads(self.num_threads), eval_mode(self.layer):
            out = self.layer(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32)))
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.numpy()

    def auto_state(self, input_shape):
        """What ``'auto'`` measured and decided for ``input_shape`` ``(C, H, W)`` on this
        runner's layer and device (shared by every runner of the layer in the process)."""
        shape = tuple(int(s) for s in input_shape)
        return ENGINES.state(self.layer, ("auto", shape, self.device or current_device()),
                             _AutoState)


    @property
    def parallel_failure(self):
        """Why the workers were turned off after a failure, or None."""
        return self._parallel_failed

    def engine(self, input_shape):
        """The up-to-date :class:`InferenceEngine` for ``input_shape`` ``(C, H, W)``, or None
        (reason in ``info``) when the layer cannot be exported."""
        if self._failed is not None:
            return None
        try:
            return ENGINES.get_engine(self.layer, input_shape, fingerprint=self._fingerprint(),
                              device=self.device, **self.engine_options)
        except Exception as exc:
            self._failed = "export failed (%s: %s); using dygraph" % (type(exc).__name__, exc)
            logger.warning("paddle.inference backend unavailable for %s: %s",
                           type(self.layer).__name__, self._failed)
            return None

    def workers(self, input_shape, parallel=None):
        """The :class:`EngineWorker` s to run batches of ``input_shape`` ``(C, H, W)`` on, or
        None: when ``parallel`` (default: the runner's) is off, the model runs in dygraph or on
        a GPU, 'auto' has not decided for the inference engine yet, or the workers failed once
        (logged). The weights are verified as for a call (held inside :meth:`hold_weights`)."""
        parallel = self.parallel if parallel is None else check_parallel(parallel)
        count = 2 if parallel == "auto" else int(parallel)
        if count < 2 or self._parallel_failed is not None or self.backend == "dygraph":
            return None
        shape = tuple(int(s) for s in input_shape)
        if self.backend == "auto" and self.auto_state(shape).decision != "inference":
            return None
        engine = self.engine(shape)
        if engine is None or "gpu" in engine.options or engine.num_threads < 2:
            return None
        if parallel == "auto" and (engine.seconds_per_image is None
                                   or engine.seconds_per_image > AUTO_WORKERS_SECONDS_PER_IMAGE):
            return None  # not measured yet (the next batch runs on the engine) or a slow model
        if parallel == "auto" and self.auto_state(shape).workers_slow is not None:
            self._workers_off = self.auto_state(shape).workers_slow  # measured taking turns here
            return None
        try:
            workers = engine.workers(min(count, engine.num_threads))
        except Exception as exc:
            self.parallel_failed("workers not built (%s: %s)" % (type(exc).__name__, exc))
            return None
        reason = self.info.get("reason") if self.info.get("backend") == "inference" else None
        self.info = dict(engine.describe(), backend="inference",
                         reason=reason or ("forced" if self.backend == "inference" else
                                           self.auto_state(shape).reason),
                         workers=len(workers), worker_threads=[w.num_threads for w in workers])
        return workers

    def workers_busy(self, input_shape, busy, parallel=None):
        """Report how busy the warm workers' threads were (CPU time / wall time, mean over the
        workers; their math runs in their own thread) for ``input_shape``. With
        ``parallel='auto'``, under :data:`AUTO_WORKERS_MIN_BUSY` they were taking turns: the
        workers are turned off for this layer and shape in the process (logged; the one
        predictor takes over) and this returns True. An explicit ``parallel=k`` keeps them."""
        parallel = self.parallel if parallel is None else check_parallel(parallel)
        if parallel != "auto" or busy >= AUTO_WORKERS_MIN_BUSY:
            return False
        shape = tuple(int(s) for s in input_shape)
        reason = ("the workers' threads were busy %.0f%% of the time (they take turns on this "
                  "Paddle): using the one predictor" % (100 * busy))
        self.auto_state(shape).workers_slow = self._workers_off = reason
        logger.info("paddle.inference workers off for %s: %s", type(self.layer).__name__, reason)
        return True

    def parallel_failed(self, reason):
        """Stop using workers for this runner (the one predictor takes over), logged."""
        self._parallel_failed = reason
        logger.warning("paddle.inference workers off for %s: %s", type(self.layer).__name__,
                       reason)

    def _run_engine(self, engine, x):
        try:
            return engine(x)
        except Exception as exc:
            self._failed = "inference failed (%s: %s); using dygraph" % (type(exc).__name__, exc)
            logger.warning("paddle.inference backend failed for %s: %s",
                           type(self.layer).__name__, self._failed)
            return None

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float32)
        shape = tuple(int(s) for s in x.shape[1:])
        if self.backend == "dygraph":
            self.info = {"backend": "dygraph", "reason": "forced"}
            return self._dygraph(x)
        if self.backend == "inference":
            engine = self.engine(shape)
            out = None if engine is None else self._run_engine(engine, x)
            if out is not None:
                self.info = dict(engine.describe(), backend="inference", reason="forced")
                return out
            self.info = {"backend": "dygraph", "reason": self._failed}
            return self._dygraph(x)
        return self._auto(x, shape)

    # ------------------------------------------------------------------ auto
    def _auto(self, x, shape):
        st = self.auto_state(shape)
        if self._failed is not None and st.decision != "dygraph":
            st.decision, st.reason = "dygraph", self._failed
        if st.decision == "inference":
            engine = self.engine(shape)
            out = None if engine is None else self._run_engine(engine, x)
            if out is not None:
                self.info = dict(engine.describe(), backend="inference", reason=st.reason)
                return out
            st.decision, st.reason = "dygraph", self._failed
        if st.decision == "dygraph":
            self.info = {"backend": "dygraph", "reason": st.reason}
            return self._dygraph(x)
        # measuring: time dygraph on 1-2 images of the first calls
        b = len(x)
        probe = None
        if st.dygraph_per_image is None or (b >= 2 and not st.probed_batch):
            k = min(b, 2)
            t = time.perf_counter()
            probe = self._dygraph(x[:k])
            dt = time.perf_counter() - t
            st.dygraph_seconds += dt
            per = dt / k
            st.dygraph_per_image = per if st.dygraph_per_image is None else min(
                st.dygraph_per_image, per)
            st.probed_batch = st.probed_batch or k >= 2
        predicted = b * st.dygraph_per_image
        if predicted < AUTO_EXPORT_SECONDS and st.dygraph_seconds < AUTO_DYGRAPH_BUDGET:
            self.info = {"backend": "dygraph", "reason": "cheap in dygraph (%.3fs/call)"
                         % predicted}
            if probe is not None and len(probe) == b:
                return probe
            t = time.perf_counter()
            rest = self._dygraph(x if probe is None else x[len(probe):])
            st.dygraph_seconds += time.perf_counter() - t
            return rest if probe is None else np.concatenate([probe, rest])
        engine = self.engine(shape)
        if engine is None:
            st.decision, st.reason = "dygraph", self._failed
            self.info = {"backend": "dygraph", "reason": st.reason}
            return self._dygraph(x)
        t = time.perf_counter()
        out = self._run_engine(engine, x)
        dt = time.perf_counter() - t
        if out is None:
            st.decision, st.reason = "dygraph", self._failed
            self.info = {"backend": "dygraph", "reason": st.reason}
            return self._dygraph(x)
        if b in st.warm_shapes:
            st.inference_per_image = dt / b
            faster = st.inference_per_image <= st.dygraph_per_image
            st.decision = "inference" if faster else "dygraph"
            st.reason = ("auto: inference %.1f img/s vs dygraph %.1f img/s"
                         % (1.0 / max(st.inference_per_image, 1e-9),
                            1.0 / max(st.dygraph_per_image, 1e-9)))
            logger.info("backend for %s %s: %s", type(self.layer).__name__, shape, st.reason)
        else:
            st.warm_shapes.add(b)
        self.info = dict(engine.describe(), backend="inference", reason=st.reason)
        return out

    def describe(self):
        """What ran last and why (for explanation settings / logs); ``workers_off`` says why
        'auto' does not use the workers any more, once it measured them taking turns."""
        info = dict(self.info)
        if self._workers_off is not None:
            info["workers_off"] = self._workers_off
            if info.get("backend") == "inference" and self.parallel == "auto":
                info.pop("workers", None)
                info.pop("worker_threads", None)
        return info