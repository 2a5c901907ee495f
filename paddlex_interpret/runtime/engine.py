"""Paddle Inference predictors built from a live layer: the one predictor with all threads, and
single-thread workers of the same program.

:class:`InferenceEngine` exports the layer (:mod:`~paddlex_interpret.runtime.export`) into a
temporary directory, builds a ``paddle.inference`` predictor (oneDNN on CPU; GPU / TensorRT on a
GPU build) and deletes the files (on CPU they stay until the engine is dropped, for the workers).
:class:`EngineWorker` is one predictor of :meth:`InferenceEngine.workers`, run from its own Python
thread, whose input is shared with a numpy buffer (no copy of the batch into the predictor).

Example::

    from paddlex_interpret.runtime.engine import InferenceEngine
    engine = InferenceEngine(net, (3, 224, 224))
    logits = engine(batch_nchw_float32)
"""
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref

import numpy as np

from .devices import check_device, current_device, gpu_index, is_gpu, predictor_pool_mb
from .export import ExportError, TracedProgram, export_layer, layer_structure
from .fingerprint import parameter_fingerprint
from .modes import math_threads_kept

__all__ = ["InferenceEngine", "EngineWorker", "configure_device", "run_predictor"]

logger = logging.getLogger("paddlex_interpret")


def run_predictor(predictor, input_handle, output_handle, x):
    """One run of a Paddle Inference ``predictor`` on ``x`` (float32, made contiguous) through its
    input and output handles; the process's math threads are left as dygraph had them."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    input_handle.reshape(list(x.shape))
    input_handle.copy_from_cpu(x)
    with math_threads_kept():
        predictor.run()
    return output_handle.copy_to_cpu()


def configure_device(config, device, num_threads, use_mkldnn=True, gpu_memory_mb=None):
    """Put a ``paddle.inference.Config`` on ``device`` (a checked name): on ``gpu:N`` that card
    (``enable_use_gpu`` with an initial pool of ``gpu_memory_mb``, default
    :func:`~paddlex_interpret.runtime.devices.predictor_pool_mb`: at most 512 MiB and a quarter
    of what the card has left), else the CPU with ``num_threads`` math threads and oneDNN when
    ``use_mkldnn``. Returns what was set (``{"device", "gpu" | "threads", "onednn"}``)."""
    opts = {"device": device}
    if is_gpu(device):
        idx = gpu_index(device)
        pool = int(gpu_memory_mb or predictor_pool_mb(device))
        config.enable_use_gpu(pool, idx)
        opts.update(gpu=idx, pool_mb=pool)
        return opts
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(int(num_threads))
    opts["threads"] = int(num_threads)
    if use_mkldnn:
        (getattr(config, "enable_onednn", None) or config.enable_mkldnn)()
        opts["onednn"] = True
    else:
        (getattr(config, "disable_onednn", None) or config.disable_mkldnn)()
    return opts


class InferenceEngine:
    """A Paddle Inference predictor built from a live layer.

    Args:
        layer: the ``paddle.nn.Layer`` (its current weights are exported).
        input_shape: ``(C, H, W)`` of one input; the batch dimension is dynamic.
        device: ``'cpu'`` or ``'gpu[:i]'`` (default: ``paddle.get_device()``); a GPU that is not
            there raises :class:`~paddlex_interpret.errors.DeviceError`.
        num_threads: CPU math threads (default ``os.cpu_count()``).
        use_mkldnn: oneDNN on CPU (default True).
        use_tensorrt: on a CUDA build with a GPU device, run subgraphs through TensorRT when
            Paddle was compiled with it (default False; untested here, no GPU).
        gpu_memory_mb: initial GPU memory pool (default: at most 512 MiB and a quarter of what
            the card has left).
        fingerprint: the parameter fingerprint (computed when None).
    """

    def __init__(self, layer, input_shape, device=None, num_threads=None, use_mkldnn=True,
                 use_tensorrt=False, gpu_memory_mb=None, fingerprint=None, max_batch_size=64,
                 program=None):
        import paddle.inference as pi

        self.input_shape = tuple(int(s) for s in input_shape)
        self.device = check_device(device) if device else current_device()
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        self.fingerprint = fingerprint or parameter_fingerprint(layer)
        self.program = None   # the TracedProgram reusable for later weights (None: not verified)
        self.structure = layer_structure(layer)
        self._build_args = (bool(use_mkldnn), bool(use_tensorrt), gpu_memory_mb, max_batch_size)
        self._files = None    # (model, params) kept on CPU for the single-thread workers
        self._workers = {}    # number of workers -> [EngineWorker]
        t0 = time.perf_counter()
        tmp = tempfile.mkdtemp(prefix="pxi_export_")
        keep = False
        try:
            prefix = os.path.join(tmp, "model")
            files = None
            if program is not None:
                try:
                    files = program.write(layer, prefix)
                    self.program, self.export_kind = program, "params"
                except Exception as exc:  # layout changed: trace again
                    logger.info("paddle.inference: cannot reuse the traced program (%s: %s); "
                                "tracing again", type(exc).__name__, exc)
                    files = None
            if files is None:
                files = export_layer(layer, self.input_shape, prefix)
                self.export_kind = "traced"
                self.program = TracedProgram.from_export(layer, self.input_shape, *files)
            model_file, params_file = files
            self.program_format = os.path.splitext(model_file)[1].lstrip(".")
            t1 = time.perf_counter()
            config = pi.Config(model_file, params_file)
            self.options = self._configure(config, *self._build_args)
            try:
                with math_threads_kept():
                    self.predictor = pi.create_predictor(config)
            except Exception as exc:
                raise ExportError("paddle.inference.create_predictor failed: %s: %s"
                                  % (type(exc).__name__, exc)) from exc
            # On CPU the files stay (deleted with the engine) so that single-thread workers
            # (:meth:`workers`) can be built later from the same program and weights.
            keep = "gpu" not in self.options and self.num_threads >= 2
            if keep:
                self._files = files
                weakref.finalize(self, shutil.rmtree, tmp, True)
        finally:
            if not keep:
                shutil.rmtree(tmp, ignore_errors=True)
        self.export_seconds = t1 - t0
        self.build_seconds = time.perf_counter() - t1
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self._lock = threading.Lock()
        self.calls = 0
        #: the fastest time per image of a call with 2+ images so far (None before)
        self.seconds_per_image = None

    def workers(self, count):
        """``count`` :class:`EngineWorker` s: predictors of the same program and weights with
        ``num_threads // count`` CPU math threads each (the first gets the remainder), built
        once per count from the engine's files. Run from ``count`` Python threads (the predictor
        releases the GIL), they keep the cores as busy as this engine's one predictor does, and
        the work between forward passes (composing the next batch) runs on one core while the
        other workers compute, instead of between the engine's passes.

        CPU only; raises :class:`ExportError` on a GPU engine, when ``count`` exceeds the
        threads, or when a predictor cannot be built."""
        count = int(count)
        with self._lock:
            cached = self._workers.get(count)
            if cached is not None:
                return cached
            if self._files is None or not 1 <= count <= self.num_threads:
                raise ExportError("no %d single-thread workers for this engine (device %s, %d "
                                  "threads)" % (count, self.device, self.num_threads))
            import paddle.inference as pi

            t = time.perf_counter()
            out = []
            for i in range(count):
                threads = self.num_threads // count + (1 if i < self.num_threads % count else 0)
                config = pi.Config(*self._files)
                self._configure(config, *self._build_args, num_threads=threads)
                try:
                    with math_threads_kept():
                        predictor = pi.create_predictor(config)
                except Exception as exc:
                    raise ExportError("paddle.inference.create_predictor failed: %s: %s"
                                      % (type(exc).__name__, exc)) from exc
                out.append(EngineWorker(predictor, self.input_shape, threads))
            self._workers = {count: out}  # one set at a time (memory: weights per predictor)
            logger.info("paddle.inference: %d workers x %s threads built in %.2fs", count,
                        "/".join(str(w.num_threads) for w in out), time.perf_counter() - t)
            return out

    def _configure(self, config, use_mkldnn, use_tensorrt, gpu_memory_mb, max_batch_size,
                   num_threads=None):
        opts = configure_device(config, self.device, int(num_threads or self.num_threads),
                                use_mkldnn, gpu_memory_mb)
        if "gpu" in opts and use_tensorrt:
            # TensorRT: kept behind the GPU place; untested on these CPU machines.
            try:
                import paddle.inference as pi

                if pi.get_trt_compile_version() != (0, 0, 0):
                    config.enable_tensorrt_engine(
                        workspace_size=1 << 30, max_batch_size=int(max_batch_size),
                        min_subgraph_size=3, precision_mode=pi.PrecisionType.Float32,
                        use_static=False, use_calib_mode=False)
                    opts["tensorrt"] = True
            except Exception as exc:
                logger.warning("TensorRT not enabled: %s", exc)
        elif "gpu" not in opts and use_mkldnn:
            cache = getattr(config, "set_onednn_cache_capacity", None) or getattr(
                config, "set_mkldnn_cache_capacity", None)
            if cache is not None:
                cache(16)  # keep the kernels of a few batch shapes (full + last batch)
        config.switch_ir_optim(True)
        if getattr(self, "program_format", None) == "pdmodel" and hasattr(
                config, "enable_memory_optim"):
            # intermediate tensors share memory: less RSS at the same speed (BENCHMARKS.md,
            # "Where MobileNetV3_small's LIME time goes"). Not for PIR (.json) programs: Paddle
            # 3.x has no memory_optimize_pass for them (create_predictor fails).
            config.enable_memory_optim()
        if hasattr(config, "switch_use_feed_fetch_ops"):
            config.switch_use_feed_fetch_ops(False)
        if hasattr(config, "disable_glog_info"):
            config.disable_glog_info()
        return opts

    def __call__(self, batch):
        """``(B, C, H, W)`` float32 -> ``(B, num_outputs)`` float32 numpy (the first output)."""
        x = np.ascontiguousarray(batch, dtype=np.float32)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ValueError("engine built for inputs %s, got %s" % (self.input_shape,
                                                                     x.shape[1:]))
        with self._lock:
            t = time.perf_counter()
            self._input.reshape(list(x.shape))
            self._input.copy_from_cpu(x)
            with math_threads_kept():
                self.predictor.run()
            out = self._output.copy_to_cpu()
            per = (time.perf_counter() - t) / len(x)
        self.calls += 1
        if len(x) >= 2 and (self.seconds_per_image is None or per < self.seconds_per_image):
            self.seconds_per_image = per
        return out

    def describe(self):
        return dict(self.options, engine="paddle.inference", format=self.program_format,
                    export=self.export_kind, export_seconds=round(self.export_seconds, 3),
                    build_seconds=round(self.build_seconds, 3), fingerprint=self.fingerprint)


def _zero_copy_tensor(array):
    """A CPU ``paddle.Tensor`` sharing ``array``'s memory (no copy), or None when this Paddle
    cannot make one. Checked once per process on a small array: a write to the array must show
    in the tensor."""
    import paddle

    try:
        from paddle.base import core
    except ImportError:  # pragma: no cover - Paddle < 2.5
        from paddle.fluid import core

    def make(arr):
        return core.eager.Tensor(value=arr, place=paddle.CPUPlace(), persistable=False,
                                 zero_copy=True)

    ok = _ZERO_COPY.get("ok")
    if ok is None:
        try:
            probe = np.zeros((2, 3), np.float32)
            t = make(probe)
            probe[1, 2] = 7.0
            ok = bool(np.asarray(t.numpy())[1, 2] == 7.0)
        except Exception as exc:
            logger.debug("zero-copy paddle tensors unavailable: %s: %s", type(exc).__name__, exc)
            ok = False
        _ZERO_COPY["ok"] = ok
    if not ok:
        return None
    try:
        return make(array)
    except Exception:
        return None


_ZERO_COPY = {}


class EngineWorker:
    """One predictor of :meth:`InferenceEngine.workers`, used by one thread at a time.

    Its input is a float32 numpy buffer per batch size (:meth:`buffer`) which the predictor
    reads in place when Paddle can share numpy memory (``share_external_data`` of a zero-copy
    tensor: no copy of the batch into the predictor), else copied in by :meth:`run`. Write the
    whole batch into ``buffer(b)``, then ``run(b)`` returns the first output ``(b, ...)``; hold
    :attr:`lock` from the write to the run when other threads may use the same worker."""

    def __init__(self, predictor, input_shape, num_threads):
        self.predictor = predictor
        self.input_shape = tuple(input_shape)
        self.num_threads = num_threads
        self._input = predictor.get_input_handle(predictor.get_input_names()[0])
        self._output = predictor.get_output_handle(predictor.get_output_names()[0])
        self._buffers = {}      # batch size -> (array, zero-copy tensor or None)
        self._shared = None     # batch size whose buffer the predictor's input points to
        self.zero_copy = None   # None until the first run, then whether input is shared
        #: held from writing a batch into :meth:`buffer` to :meth:`run` by the thread using it
        self.lock = threading.RLock()

    def buffer(self, batch):
        """The ``(batch, C, H, W)`` float32 input buffer for a batch of ``batch`` images."""
        entry = self._buffers.get(batch)
        if entry is None:
            arr = np.empty((batch,) + self.input_shape, dtype=np.float32)
            tensor = _zero_copy_tensor(arr) if self.zero_copy is not False else None
            entry = self._buffers[batch] = (arr, tensor)
        return entry[0]

    def run(self, batch):
        """Run the predictor on ``buffer(batch)``; returns a copy of the first output."""
        arr, tensor = self._buffers[batch]
        with self.lock:
            if tensor is not None and self.zero_copy is not False:
                if self._shared != batch:
                    try:
                        self._input.share_external_data(tensor)
                        self.zero_copy, self._shared = True, batch
                    except Exception as exc:
                        if self.zero_copy:  # shared before: never mix with copies
                            raise
                        logger.debug("share_external_data failed (%s: %s): copying inputs",
                                     type(exc).__name__, exc)
                        self.zero_copy = False
            elif self.zero_copy:  # the input points to shared memory: never copy into it
                raise RuntimeError("no zero-copy input for a batch of %d" % batch)
            else:
                self.zero_copy = False
            if not self.zero_copy:
                self._input.reshape(list(arr.shape))
                self._input.copy_from_cpu(arr)
            with math_threads_kept():
                self.predictor.run()
            return self._output.copy_to_cpu()

