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
batch and never changes inside it (unless the engine fails, logged): the runner decides the
backend of an input shape on the first call with that shape, before the batch runs, and every
later batch of the shape follows (:meth:`ModelRunner.plan` decides ahead of any call). On the
CPU the engine is one predictor with all threads; it takes a batch of more than
:data:`CPU_ENGINE_MAX_BATCH` images in near-equal parts (:func:`engine_parts`), and its outputs
do not depend on the batch size (tested), so that cut leaves the numbers alone.

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
from dataclasses import dataclass

import numpy as np

from .cache import ENGINES
from ..errors import DeviceError
from .devices import check_device, current_device, layer_device, parameters_elsewhere
from .fingerprint import parameter_fingerprint
from .modes import dygraph_threads, eval_mode

__all__ = ["BACKENDS", "ModelRunner", "Plan", "check_backend", "engine_parts",
           "CPU_ENGINE_MAX_BATCH"]

logger = logging.getLogger("paddlex_interpret")

BACKENDS = ("auto", "dygraph", "inference")

#: Batches larger than this run on the CPU engine's predictor in parts of at most this many
#: images (a GPU takes the batch as it is): on Paddle 3.3 batches of 40-50 ran much slower per
#: image than 20-32, on 2.6 it made no difference (BENCHMARKS.md, "Where MobileNetV3_small's LIME
#: time goes").
CPU_ENGINE_MAX_BATCH = 32


def engine_parts(n, max_batch=None):
    """``range(n)`` cut into the fewest near-equal slices of at most ``max_batch`` (default
    :data:`CPU_ENGINE_MAX_BATCH`) rows: 50 -> 25 + 25; ``[slice(0, n)]`` when ``max_batch`` is 0.

    >>> [(s.start, s.stop) for s in engine_parts(100)]
    [(0, 25), (25, 50), (50, 75), (75, 100)]
    """
    step = CPU_ENGINE_MAX_BATCH if max_batch is None else int(max_batch)
    if not step or n <= step:
        return [slice(0, n)]
    parts = -(-n // step)
    size, extra = divmod(n, parts)
    cuts = [0]
    for k in range(parts):
        cuts.append(cuts[-1] + size + (1 if k < extra else 0))
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


class _AutoState:
    """What ``'auto'`` decided for one (layer, input shape, device) in this process."""

    def __init__(self):
        self.decision = None        # None (not decided yet), 'dygraph' or 'inference'
        self.reason = "not decided"


@dataclass
class Plan:
    """How one piece of work runs: the ``backend`` (``'dygraph'`` or ``'inference'``) and
    whether the engine is on a GPU."""

    backend: str
    gpu: bool = False

    def describe(self):
        return "inference: one predictor" if self.backend == "inference" else self.backend


def check_backend(backend):
    """Raise ``ValueError`` naming the choices unless ``backend`` is one of :data:`BACKENDS`."""
    if backend not in BACKENDS:
        raise ValueError("backend must be one of %s, got %r" % (BACKENDS, backend))


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

    Attributes:
        info: ``{'backend': what ran last, 'reason': why, ...engine description}``.
        last_plan: the :class:`Plan` of the last call or :meth:`plan` (None before).
    """

    def __init__(self, layer, backend="auto", device=None, num_threads=None, use_mkldnn=True,
                 use_tensorrt=False):
        check_backend(backend)
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

    def plan(self, input_shape, probe=None):
        """The :class:`Plan` for an explanation's batches of ``input_shape``, decided now (see
        the module docstring); ``probe`` is a batch whose outputs are thrown away, run when
        ``'auto'`` still has to decide."""
        shape = tuple(int(s) for s in input_shape)
        backend = self.backend_for(shape, probe)
        gpu = False
        if backend == "inference":
            engine = self.engine(shape)
            if engine is None:
                backend = "dygraph"
            else:
                gpu = "gpu" in engine.options
                self.info = dict(engine.describe(), backend="inference",
                                 reason=self._reason(shape))
        plan = Plan(backend, gpu)
        self.last_plan = plan
        return plan

    # ------------------------------------------------------------------ calls
    def _run_engine(self, engine, x):
        """The engine's outputs for ``x``; on the CPU a batch of more than
        :data:`CPU_ENGINE_MAX_BATCH` runs in parts (:func:`engine_parts`: the same numbers)."""
        try:
            if "gpu" in engine.options or len(x) <= CPU_ENGINE_MAX_BATCH:
                return engine(x)
            return np.concatenate([engine(x[sl]) for sl in engine_parts(len(x))])
        except Exception as exc:
            return self._fail("inference", exc)

    def __call__(self, x):
        """The first output of the layer for the batch ``x``. The backend of ``x``'s shape is
        decided before the batch runs (``'auto'``: on its first image, that output thrown
        away), so every batch of that shape runs the same way."""
        x = np.asarray(x, dtype=np.float32)
        shape = tuple(int(s) for s in x.shape[1:])
        backend = self.backend_for(shape, probe=x[:1])
        if backend == "inference":
            engine = self.engine(shape)
            out = None if engine is None else self._run_engine(engine, x)
            if out is not None:
                self.info = dict(engine.describe(), backend="inference",
                                 reason=self._reason(shape))
                self.last_plan = Plan("inference", "gpu" in engine.options)
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
        self.last_plan = Plan("dygraph")
        return self._dygraph(x)

    def describe(self):
        """What ran last and why (for explanation settings / logs), with ``path``: the last
        plan's description."""
        info = dict(self.info)
        if self.last_plan is not None:
            info["path"] = self.last_plan.describe()
        return info
