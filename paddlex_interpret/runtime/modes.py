"""How a model is run without leaving a trace: eval mode, the training-state guard, CPU threads and
the process's rank.

* :func:`eval_mode` puts a layer in eval mode under ``paddle.no_grad()`` and restores its mode.
* :func:`preserve_training_state` is the guard the training integrations put around a checkpoint:
  RNG states, every sub-layer's train/eval flag, no gradients, GPU cache released after (when
  the current place is a GPU).
* :func:`dygraph_threads` raises dygraph's CPU math threads for a block: Paddle sets
  ``OMP_NUM_THREADS=1`` at import when it is unset, and ``core.set_num_threads`` changes it at run
  time.

Example::

    from paddlex_interpret.runtime.modes import eval_mode
    with eval_mode(net):
        logits = net(x)
"""
import contextlib
import logging
import os
import random

import numpy as np

from .devices import empty_cache, on_gpu

__all__ = ["eval_mode", "preserve_training_state", "set_dygraph_threads", "dygraph_threads",
           "current_threads", "get_rank", "release_device_memory"]

logger = logging.getLogger("paddlex_interpret")


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


def get_rank():
    """This process's rank in ``paddle.distributed`` (0 when not distributed or no Paddle)."""
    try:
        import paddle.distributed as dist

        return int(dist.get_rank())
    except Exception:  # not initialised, or no paddle: single process
        return 0


def release_device_memory():
    """Give cached GPU memory back when the current place is a GPU (no CUDA call otherwise:
    :func:`~paddlex_interpret.runtime.devices.empty_cache`)."""
    empty_cache()


@contextlib.contextmanager
def preserve_training_state(layer=None):
    """Run a block without leaving a trace on training.

    Saves and restores the RNG states of Paddle (and CUDA's when the current place is a GPU),
    NumPy's global generator and Python's ``random``, and the ``training`` flag of ``layer`` and
    every sub-layer (a frozen ``BatchNorm`` left in eval mode stays so); runs the block under
    ``paddle.no_grad()`` with ``layer`` in eval mode; releases GPU cache after (on a GPU only).
    A process on the CPU makes no CUDA call here, whatever its Paddle build.
    """
    import paddle

    np_state = np.random.get_state()
    py_state = random.getstate()
    pd_state = paddle.get_rng_state()
    cuda_state = None
    if on_gpu():
        try:
            cuda_state = paddle.get_cuda_rng_state()
        except Exception:
            cuda_state = None
    modes = []
    if layer is not None:
        modes = [(sub, sub.training) for sub in layer.sublayers(include_self=True)]
        layer.eval()
    try:
        with paddle.no_grad():
            yield
    finally:
        for sub, mode in modes:
            sub.training = mode
        np.random.set_state(np_state)
        random.setstate(py_state)
        paddle.set_rng_state(pd_state)
        if cuda_state is not None:
            with contextlib.suppress(Exception):
                paddle.set_cuda_rng_state(cuda_state)
        release_device_memory()


_threads = {"current": None}


def current_threads():
    """The dygraph CPU math threads as this module last set them (``OMP_NUM_THREADS`` before)."""
    if _threads["current"] is None:
        try:
            _threads["current"] = max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
        except ValueError:
            _threads["current"] = 1
    return _threads["current"]


def _core():
    try:
        from paddle.base import core
    except ImportError:  # pragma: no cover - Paddle < 2.5
        from paddle.fluid import core
    return core


def set_dygraph_threads(num_threads=None):
    """Set the CPU math threads of dygraph kernels (``core.set_num_threads``; OpenMP, MKL /
    OpenBLAS). ``None``: ``os.cpu_count()``. Returns the previous value, or None when this Paddle
    has no such call."""
    setter = getattr(_core(), "set_num_threads", None)
    if setter is None:
        return None
    n = int(num_threads or os.cpu_count() or 1)
    prev = current_threads()
    if n != prev:
        setter(n)
        _threads["current"] = n
    return prev


@contextlib.contextmanager
def math_threads_kept():
    """A block that creates or runs a Paddle Inference predictor, after which the process's CPU
    math threads are dygraph's again: a predictor sets them to its own on creation and on every
    run, process-wide, and a training in the same process would then compute with another
    thread count (other rounding: other weights than the same training without us)."""
    try:
        yield
    finally:
        setter = getattr(_core(), "set_num_threads", None)
        if setter is not None:
            setter(current_threads())


@contextlib.contextmanager
def dygraph_threads(num_threads=None):
    """Run a block with ``num_threads`` dygraph CPU threads (default all cores), then restore."""
    prev = set_dygraph_threads(num_threads)
    try:
        yield
    finally:
        if prev is not None:
            set_dygraph_threads(prev)
