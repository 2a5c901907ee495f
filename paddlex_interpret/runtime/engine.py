"""A Paddle Inference predictor built from a live layer, run with all CPU threads (or on a GPU).

:class:`InferenceEngine` exports the layer (:mod:`~paddlex_interpret.runtime.export`) into a
temporary directory, builds a ``paddle.inference`` predictor (oneDNN on CPU; GPU / TensorRT on a
GPU build) and deletes the files.

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

import numpy as np

from .devices import check_device, current_device, gpu_index, is_gpu, predictor_pool_mb
from .export import ExportError, TracedProgram, export_layer, layer_structure
from .fingerprint import parameter_fingerprint
from .modes import math_threads_kept

__all__ = ["InferenceEngine", "configure_device", "run_predictor"]

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
        t0 = time.perf_counter()
        tmp = tempfile.mkdtemp(prefix="pxi_export_")
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
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self.export_seconds = t1 - t0
        self.build_seconds = time.perf_counter() - t1
        self._input = self.predictor.get_input_handle(self.predictor.get_input_names()[0])
        self._output = self.predictor.get_output_handle(self.predictor.get_output_names()[0])
        self._lock = threading.Lock()

    def _configure(self, config, use_mkldnn, use_tensorrt, gpu_memory_mb, max_batch_size):
        opts = configure_device(config, self.device, self.num_threads, use_mkldnn, gpu_memory_mb)
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
            return run_predictor(self.predictor, self._input, self._output, x)

    def describe(self):
        return dict(self.options, engine="paddle.inference", format=self.program_format,
                    export=self.export_kind, export_seconds=round(self.export_seconds, 3),
                    build_seconds=round(self.build_seconds, 3), fingerprint=self.fingerprint)
