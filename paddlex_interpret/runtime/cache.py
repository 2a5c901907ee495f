"""What the process keeps per model: its inference engines, traced programs and the ``'auto'``
policy's measurements, held weakly by layer (a layer that is garbage-collected takes its entries
with it).

One :class:`EngineCache` serves the process (:data:`ENGINES`); the functions below are its
methods. An engine is rebuilt when the layer's fingerprint or its sub-layers changed; the traced
program is kept, so new weights cost a predictor build, not a trace.

Example::

    from paddlex_interpret.runtime.cache import get_engine, release_engines
    engine = get_engine(net, (3, 224, 224))     # built, or the cached one for these weights
    release_engines(net)                        # free the predictors, keep the traced program
"""
import logging
import threading
import weakref
from collections import OrderedDict

from .devices import current_device
from .engine import InferenceEngine
from .export import ExportError, layer_structure
from .fingerprint import parameter_fingerprint

__all__ = ["EngineCache", "ENGINES", "get_engine", "release_engines", "clear_cache",
           "cache_info"]

logger = logging.getLogger("paddlex_interpret")


class _LayerEntry:
    def __init__(self):
        self.engines = OrderedDict()   # (input shape, device, options) -> InferenceEngine
        self.programs = OrderedDict()  # input shape -> TracedProgram
        self.states = {}               # any key -> a policy's state object


class EngineCache:
    """Engines, traced programs and policy states per layer (weak keys), at most ``max_engines``
    engines and traced programs in all (the oldest go first: each holds a copy of the weights)."""

    def __init__(self, max_engines=4):
        self.max_engines = int(max_engines)
        self._lock = threading.RLock()
        self._layers = weakref.WeakKeyDictionary()
        self._stamps = weakref.WeakKeyDictionary()  # engine or program -> when it was cached
        self._tick = 0

    def _entry(self, layer):
        entry = self._layers.get(layer)
        if entry is None:
            entry = self._layers[layer] = _LayerEntry()
        return entry

    def _add(self, entry, attr, key, value):
        """Store ``value`` in ``entry.<attr>[key]``, then drop the oldest engines (or programs)
        of any layer beyond ``max_engines``."""
        getattr(entry, attr)[key] = value
        self._tick += 1
        self._stamps[value] = self._tick
        items = sorted(((self._stamps.get(v, 0), k, e) for e in list(self._layers.values())
                        for k, v in getattr(e, attr).items()), key=lambda t: t[0])
        for _, k, e in items[:max(0, len(items) - self.max_engines)]:
            getattr(e, attr).pop(k, None)

    def state(self, layer, key, factory):
        """The policy state stored for ``layer`` under ``key``, created by ``factory()``."""
        with self._lock:
            states = self._entry(layer).states
            if key not in states:
                states[key] = factory()
            return states[key]

    def get_engine(self, layer, input_shape, fingerprint=None, device=None, **options):
        """The :class:`~paddlex_interpret.runtime.engine.InferenceEngine` of ``layer`` with its
        current weights: rebuilt when the fingerprint or the sub-layers differ from the cached
        one's. The program is traced once per layer and input shape; a weight change only writes
        new params and builds a new predictor. Raises
        :class:`~paddlex_interpret.runtime.export.ExportError` on failure."""
        device = device or current_device()
        fingerprint = fingerprint or parameter_fingerprint(layer)
        shape = tuple(int(s) for s in input_shape)
        key = (shape, device, tuple(sorted(options.items())))
        with self._lock:
            entry = self._entry(layer)
            engine = entry.engines.get(key)
            structure = layer_structure(layer)
            if engine is not None and engine.fingerprint == fingerprint \
                    and engine.structure == structure:
                return engine
            if engine is not None:
                logger.info("paddle.inference: weights changed (fingerprint %s -> %s): new "
                            "predictor", engine.fingerprint, fingerprint)
            entry.engines.pop(key, None)
            program = entry.programs.get(shape)
            if program is not None and not program.fits(layer, shape):
                program = None
            try:
                engine = InferenceEngine(layer, shape, device=device, fingerprint=fingerprint,
                                         program=program, **options)
            except ExportError:
                if program is None:
                    raise
                logger.info("paddle.inference: predictor from the traced program failed; "
                            "tracing again", exc_info=True)
                entry.programs.pop(shape, None)
                engine = InferenceEngine(layer, shape, device=device, fingerprint=fingerprint,
                                         **options)
            if engine.program is not None:
                self._add(entry, "programs", shape, engine.program)
            self._add(entry, "engines", key, engine)
            logger.info("paddle.inference: %s %s in %.2fs (+%.2fs predictor) %s",
                        "traced" if engine.export_kind == "traced" else "new weights for",
                        type(layer).__name__, engine.export_seconds, engine.build_seconds,
                        engine.options)
            return engine

    def release(self, layer):
        """Drop the engines of ``layer`` (their memory: weights, oneDNN kernels, buffers),
        keeping its traced programs and policy states, so the next call only builds a predictor.
        Returns how many were dropped."""
        with self._lock:
            entry = self._layers.get(layer)
            if entry is None:
                return 0
            n = len(entry.engines)
            entry.engines.clear()
            return n

    def clear(self):
        """Drop every engine, traced program and policy state."""
        with self._lock:
            self._layers.clear()

    def info(self):
        """``[(layer class, input shape, device, fingerprint), ...]`` of the cached engines."""
        with self._lock:
            return [(type(layer).__name__, key[0], key[1], engine.fingerprint)
                    for layer, entry in list(self._layers.items())
                    for key, engine in entry.engines.items()]


#: The process's cache.
ENGINES = EngineCache()


def get_engine(layer, input_shape, fingerprint=None, device=None, **options):
    """:meth:`EngineCache.get_engine` of the process's cache."""
    return ENGINES.get_engine(layer, input_shape, fingerprint=fingerprint, device=device,
                              **options)


def release_engines(layer):
    """:meth:`EngineCache.release` of the process's cache. The training integrations call it
    after each checkpoint: training changes the weights next, so those predictors would not be
    used again."""
    return ENGINES.release(layer)


def clear_cache():
    """:meth:`EngineCache.clear` of the process's cache."""
    ENGINES.clear()


def cache_info():
    """:meth:`EngineCache.info` of the process's cache."""
    return ENGINES.info()
