"""Which backend runs a layer, decided before the work: :class:`ModelRunner` and its ``'auto'``
policy.

``backend='dygraph'`` runs the layer itself (all CPU cores, eval mode, no gradients);
``'inference'`` runs it on a Paddle Inference engine (:mod:`~paddlex_interpret.runtime.engine`)
and falls back to dygraph, with the reason logged, when the export or the predictor fails;
``'auto'`` is ``'inference'`` decided on the first call, per layer, input shape and device, for
the process (:data:`~paddlex_interpret.runtime.cache.ENGINES`): the engine when it builds and
runs, else dygraph. It is not timed: the engine ran these CPU models 2-12x faster than dygraph
(BENCHMARKS.md, "Speed vs the floor and the peers"), and a choice timed on a busy machine would
make the last bits of an explanation depend on the load.

The rule that keeps results repeatable: a path is chosen **before** a piece of work's first
batch and never changes inside it. An explanation asks for a :class:`Plan`
(:meth:`ModelRunner.plan`) before its batches. On a CPU engine with ``parallel='auto'`` the plan
also says whether the single-thread workers run (measured once on a probe whose outputs are
thrown away: they take turns where ``predictor.run()`` holds the GIL); the engine's outputs do
not depend on the batch size or on which predictor ran them (tested), so that choice leaves the
numbers alone.

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
from dataclasses import dataclass, field
from typing import List

import numpy as np

from .cache import ENGINES
from ..errors import DeviceError
from .devices import check_device, current_device, layer_device, parameters_elsewhere
from .fingerprint import parameter_fingerprint
from .modes import dygraph_threads, eval_mode

__all__ = ["BACKENDS", "ModelRunner", "Plan", "check_backend", "check_parallel",
           "AUTO_WORKERS_SECONDS_PER_IMAGE", "AUTO_WORKERS_MIN_BUSY"]

logger = logging.getLogger("paddlex_interpret")

BACKENDS = ("auto", "dygraph", "inference")

#: ``parallel='auto'`` uses the single-thread workers only for models whose engine ran the probe at
#: most this fast per image: composing a batch costs about the same for any model, so the workers
#: matter for fast models; for slow ones their second copy of the activations costs more than it
#: saves (BENCHMARKS.md, "Speed vs the floor and the peers").
AUTO_WORKERS_SECONDS_PER_IMAGE = 0.005
#: ``parallel='auto'`` does not use the workers (for the layer and input shape, for the process)
#: when, run at once on the probe, their threads were busy (CPU time / wall time) less than this
#: fraction of the time: they were taking turns, as Paddle 3.x's ``predictor.run()`` makes them
#: do by holding the GIL (BENCHMARKS.md, "Speed vs the floor and the peers").
AUTO_WORKERS_MIN_BUSY = 0.7


class _AutoState:
    """What ``'auto'`` learnt about one (layer, input shape, device) in this process."""

    def __init__(self):
        self.decision = None        # None (not decided yet), 'dygraph' or 'inference'
        self.reason = "not decided"
        self.inference_per_image = None  # measured for the workers' rule only
        self.workers_checked = False
        self.workers_busy = None
        self.workers_slow = None    # why the workers are not used here, once measured


@dataclass
class Plan:
    """How one piece of work runs: the ``backend`` (``'dygraph'`` or ``'inference'``), on the
    CPU engine the single-thread ``workers`` (empty: the one predictor), and whether the engine
    is on a GPU."""

    backend: str
    workers: List = field(default_factory=list)
    gpu: bool = False

    def describe(self):
        if self.backend != "inference":
            return self.backend
        if self.workers:
            return "inference: %d workers x %s threads" % (
                len(self.workers), "/".join(str(w.num_threads) for w in self.workers))
        return "inference: one predictor"


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
        backend: ``'auto'`` (the engine when it builds and runs, else dygraph; decided on the
            first call, never timed), ``'dygraph'`` or ``'inference'`` (Paddle Inference;
            falls back to dygraph with a logged warning if export fails).
        device: ``'cpu'`` / ``'gpu:0'``... (default: the layer's parameters'; another leaves
            Paddle Inference only, see :attr:`elsewhere`; a GPU not there raises DeviceError).
        num_threads: CPU threads for both backends (default ``os.cpu_count()``).
        use_mkldnn, use_tensorrt: Paddle Inference options (see
            :class:`~paddlex_interpret.runtime.engine.InferenceEngine`).
        parallel: how an explanation's batches run on the CPU engine (:meth:`plan`): ``'auto'``
            (default): 2 single-thread predictors, each run from its own Python thread, for a
            model of at most :data:`AUTO_WORKERS_SECONDS_PER_IMAGE` per image whose workers can
            run at once; an int ``k >= 2``: ``k`` predictors; ``False`` / ``0`` / ``1``: the one
            predictor with all threads. Never on a GPU.

    Attributes:
        info: ``{'backend': what ran last, 'reason': why, ...engine description}``.
        last_plan: the last :meth:`plan` (None before).
    """

    def __init__(self, layer, backend="auto", device=None, num_threads=None, use_mkldnn=True,
                 use_tensorrt=False, parallel="auto"):
        check_backend(backend)
        self.parallel = check_parallel(parallel)
        self._parallel_failed = None
        self.layer = layer
        self.backend = backend
        here = layer_device(layer)
        self.device = check_device(device) if device else (here or current_device())
        self.elsewhere = parameters_elsewhere(self.device, here)  # why no dygraph on device
        self.num_threads = num_threads
        self.engine_options = {"use_mkldnn": bool(use_mkldnn), "use_tensorrt": bool(use_tensorrt)}
        if num_threads:
            self.engine_options["num_threads"] = int(num_threads)
        self.info = {"backend": None, "reason": "not run yet"}
        self.last_plan = None
        self._plan_shape = None
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

        if self.elsewhere:
            raise DeviceError("no dygraph: " + self.elsewhere)
        with dygraph_threads(self.num_threads), eval_mode(self.layer):
            out = self.layer(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32),
                                              place=self.device))
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.numpy()

    def auto_state(self, input_shape):
        """What ``'auto'`` measured and decided for ``input_shape`` ``(C, H, W)`` on this
        runner's layer and device (shared by every runner of the layer in the process)."""
        shape = tuple(int(s) for s in input_shape)
        return ENGINES.state(self.layer, ("auto", shape, self.device), _AutoState)

    @property
    def parallel_failure(self):
        """Why the workers were turned off after a failure, or None."""
        return self._parallel_failed

    def engine(self, input_shape):
        """The up-to-date :class:`~paddlex_interpret.runtime.engine.InferenceEngine` for
        ``input_shape`` ``(C, H, W)``, or None (reason logged) when the layer cannot be
        exported."""
        if self._failed is not None:
            return None
        try:
            return ENGINES.get_engine(self.layer, input_shape, fingerprint=self._fingerprint(),
                                      device=self.device, **self.engine_options)
        except Exception as exc:
            return self._fail("export", exc)

    def _reason(self, shape):
        return "forced" if self.backend == "inference" else (
            "auto: " + self.elsewhere if self.elsewhere else self.auto_state(shape).reason)

    def _fail(self, what, exc):
        """The engine cannot be used for this layer any more: say why (logged); returns None."""
        self._failed = "%s failed (%s: %s); using dygraph" % (what, type(exc).__name__, exc)
        logger.warning("paddle.inference backend unusable for %s: %s", type(self.layer).__name__,
                       self._failed)
        return None

    # ------------------------------------------------------------------ the decision
    def decided(self, input_shape):
        """Whether work of ``input_shape`` has a fixed backend now (forced, failed, or decided by
        ``'auto'``)."""
        return (self.backend != "auto" or self._failed is not None
                or self.auto_state(input_shape).decision is not None)

    def backend_for(self, input_shape, probe=None):
        """``'dygraph'`` or ``'inference'`` for work of ``input_shape``; with ``'auto'`` still
        undecided, decided now: the engine is built and run once on ``probe`` (a batch whose
        outputs are thrown away; default one zero image), dygraph if either fails."""
        shape = tuple(int(s) for s in input_shape)
        if self.backend == "dygraph":
            return "dygraph"
        if self._failed is not None:
            return "dygraph"
        if self.backend == "inference" or self.elsewhere:
            return "inference"  # the engine is built (or fails, logged) by its caller
        st = self.auto_state(shape)
        if st.decision is None:
            self._decide(st, shape, probe)
        return st.decision

    def _decide(self, st, shape, probe):
        """``'auto'``: the engine when it builds and runs on the probe, else dygraph."""
        probe = (np.zeros((1,) + shape, np.float32) if probe is None
                 else np.ascontiguousarray(probe, dtype=np.float32))
        engine = self.engine(shape)
        if engine is None or self._run_engine(engine, probe) is None:
            st.decision, st.reason = "dygraph", "auto: " + str(self._failed)
            return
        st.decision, st.reason = "inference", "auto: the inference engine"
        logger.debug("backend for %s %s: inference", type(self.layer).__name__, shape)

    def plan(self, input_shape, probe=None, parallel=None):
        """The :class:`Plan` for an explanation's batches of ``input_shape``, decided now (see
        the module docstring); ``probe`` is a batch whose outputs are thrown away, used when a
        measurement is still needed."""
        shape = tuple(int(s) for s in input_shape)
        backend = self.backend_for(shape, probe)
        workers, gpu = [], False
        if backend == "inference":
            engine = self.engine(shape)
            if engine is None:
                backend = "dygraph"
            else:
                gpu = "gpu" in engine.options
                workers = self._workers_for(shape, probe, parallel) or []
                self.info = dict(engine.describe(), backend="inference",
                                 reason=self._reason(shape))
        plan = Plan(backend, workers, gpu)
        self.last_plan, self._plan_shape = plan, shape
        return plan

    # ------------------------------------------------------------------ workers
    def _workers_for(self, shape, probe, parallel):
        from .workers import probe_busy

        parallel = self.parallel if parallel is None else check_parallel(parallel)
        count = 2 if parallel == "auto" else int(parallel)
        if count < 2 or self._parallel_failed is not None:
            return None
        engine = self.engine(shape)
        if engine is None or "gpu" in engine.options or engine.num_threads < 2:
            return None
        st = self.auto_state(shape)
        if parallel == "auto":
            if st.inference_per_image is None and probe is not None:
                engine(probe)
                t = time.perf_counter()
                engine(probe)
                st.inference_per_image = (time.perf_counter() - t) / len(probe)
            if st.inference_per_image is None \
                    or st.inference_per_image > AUTO_WORKERS_SECONDS_PER_IMAGE:
                return None  # a slow model (or not measured yet): the one predictor
            if st.workers_slow is not None:
                return None
        try:
            workers = engine.workers(min(count, engine.num_threads))
        except Exception as exc:
            self.parallel_failed("workers not built (%s: %s)" % (type(exc).__name__, exc))
            return None
        if parallel == "auto" and not st.workers_checked and probe is not None:
            st.workers_checked = True
            try:
                st.workers_busy = probe_busy(workers, probe)
            except Exception as exc:
                self.parallel_failed("workers failed on the probe (%s: %s)"
                                     % (type(exc).__name__, exc))
                return None
            if st.workers_busy < AUTO_WORKERS_MIN_BUSY:
                st.workers_slow = ("the workers' threads were busy %.0f%% of the time run at once "
                                   "(they take turns on this Paddle): using the one predictor"
                                   % (100 * st.workers_busy))
                logger.info("paddle.inference workers off for %s: %s",
                            type(self.layer).__name__, st.workers_slow)
                return None
        return workers

    def parallel_failed(self, reason):
        """Stop using workers for this runner (the one predictor takes over), logged."""
        self._parallel_failed = reason
        logger.warning("paddle.inference workers off for %s: %s", type(self.layer).__name__,
                       reason)

    # ------------------------------------------------------------------ calls
    def _run_engine(self, engine, x):
        try:
            return engine(x)
        except Exception as exc:
            return self._fail("inference", exc)

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float32)
        shape = tuple(int(s) for s in x.shape[1:])
        backend = self.backend_for(shape, probe=x)
        if backend == "inference":
            engine = self.engine(shape)
            out = None if engine is None else self._run_engine(engine, x)
            if out is not None:
                self.info = dict(engine.describe(), backend="inference",
                                 reason=self._reason(shape))
                return out
            if self.backend == "auto":
                st = self.auto_state(shape)
                st.decision, st.reason = "dygraph", self._failed
        if self.backend == "dygraph":
            reason = "forced"
        elif self._failed is not None:
            reason = self._failed
        else:
            reason = self.auto_state(shape).reason
        self.info = {"backend": "dygraph", "reason": reason}
        return self._dygraph(x)

    def describe(self):
        """What ran last and why (for explanation settings / logs), with ``path``: the last
        plan's description, and ``workers_off`` when ``'auto'`` measured the workers taking
        turns."""
        info = dict(self.info)
        plan = self.last_plan
        if plan is not None:
            info["path"] = plan.describe()
            if plan.workers:
                info.update(backend="inference", workers=len(plan.workers),
                            worker_threads=[w.num_threads for w in plan.workers])
            slow = self.auto_state(self._plan_shape).workers_slow
            if slow is not None and self.parallel == "auto":
                info["workers_off"] = slow
        return info
