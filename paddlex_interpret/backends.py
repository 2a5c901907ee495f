"""Where the model runs: Paddle Inference (oneDNN on CPU; GPU / TensorRT on a GPU build) or dygraph.

LIME's cost is the model's forward passes over thousands of perturbed images, and on CPU Paddle
Inference with oneDNN runs a PaddleX classifier about 10x faster than dygraph. This module

* exports the live ``paddle.nn.Layer`` being explained with ``paddle.jit.save`` into a temporary
  directory (the layer itself is not modified: no ``to_static`` is left on it), builds a
  ``paddle.inference`` predictor from the files (Paddle 2.6 ``.pdmodel`` or Paddle 3.x ``.json``
  program, ``.pdiparams`` weights), and deletes the directory (on CPU when the engine is dropped);
* caches one predictor per (layer, input shape, device, options) for the process, tagged with the
  *parameter fingerprint* (a CRC of every parameter and buffer): when the weights change (training,
  ``set_state_dict``), the next verified call builds a new predictor. The program is traced
  (``paddle.jit.save``, the slow part: ~0.8 s for MobileNetV3_small on 2 cores) once per layer and
  input shape; for new weights only the params file is written again from the live tensors
  (:class:`TracedProgram`, checked byte for byte against ``jit.save``'s own file at the first
  export), so a weight change costs the predictor build (~0.15 s) instead of a full export;
* on CPU, builds on request :meth:`InferenceEngine.workers`: predictors of the same files with
  the threads split between them (2 x 1 thread on 2 cores), each run from its own Python thread
  with its input shared with a numpy buffer (no copy); LIME composes a batch on one while the
  other computes (:meth:`ModelRunner.workers`, ``parallel='auto'``). The engine's files stay in
  a temporary directory until the engine is dropped, for that;
* runs dygraph with all CPU cores (:func:`dygraph_threads`: Paddle sets ``OMP_NUM_THREADS=1`` at
  import when it is unset, and ``paddle.base.core.set_num_threads`` raises it at run time);
* picks the backend (:class:`ModelRunner`, ``backend='auto'``) by measuring, and falls back to
  dygraph, with the reason logged, when the export or the predictor fails.

The ``'auto'`` rule (per layer, input shape and device, remembered for the process): while the
model is cheap in dygraph (a call predicted to take under ``AUTO_EXPORT_SECONDS`` and less than
``AUTO_DYGRAPH_BUDGET`` seconds of dygraph so far) it stays in dygraph and nothing is exported.
Otherwise the model is exported; the first inference call at a batch shape is a warm-up, the
next one is timed and compared with dygraph's time per image (measured on 1-2 images of earlier
calls), and the faster one is kept.

Weights are verified (fingerprint recomputed: about 8 ms for MobileNetV3_small, 50 ms for
ResNet50 on CPU) on every call that uses the inference engine, except inside
:meth:`ModelRunner.hold_weights` (``LimeExplainer`` holds the weights for one explanation: they
are verified once on entry).

Example::

    import paddlex_interpret, paddle
    from paddlex_interpret.backends import ModelRunner
    runner = ModelRunner(net, backend="inference")      # net: any paddle.nn.Layer
    logits = runner(batch_nchw_float32)                 # numpy (B, C)
    runner.info                                         # {'backend': 'inference', ...}
"""
import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
import weakref
import zlib

import numpy as np

__all__ = ["BACKENDS", "ModelRunner", "InferenceEngine", "EngineWorker", "ExportError", "parameter_fingerprint",
           "export_layer", "inference_files", "get_engine", "TracedProgram", "release_engines",
           "clear_cache",
           "cache_info", "set_dygraph_threads", "dygraph_threads", "suggest_batch_size",
           "available_memory",
           "AUTO_EXPORT_SECONDS", "AUTO_DYGRAPH_BUDGET", "AUTO_WORKERS_SECONDS_PER_IMAGE",
           "check_parallel"]

logger = logging.getLogger("paddlex_interpret")

BACKENDS = ("auto", "dygraph", "inference")

#: 'auto' exports the model once a single call is predicted to take this long in dygraph...
AUTO_EXPORT_SECONDS = 0.25
#: ... or once the dygraph time spent by this layer in the process exceeds this.
AUTO_DYGRAPH_BUDGET = 3.0
#: ``parallel='auto'`` uses the single-thread workers only for models whose engine has run a
#: batch at most this fast per image (MobileNetV3_small at 224 px: ~1 ms on 2 cores; ResNet50:
#: ~24 ms). Composing a batch costs about the same for any model, so the workers matter for fast
#: models; for slow ones it is ~1% of the time and their second copy of the activations (GBs for
#: ResNet50 at batch 50) measured from as fast as the engine to 1.6x slower (BENCHMARKS.md).
AUTO_WORKERS_SECONDS_PER_IMAGE = 0.005
#: LIME's perturbed batches larger than this run on the CPU engine's one predictor in parts of
#: this many images (the workers and GPUs take LIME's batch as it is). MobileNetV3_small at 224
#: px, img/s by batch size over 6 alternated repeats: Paddle 3.3.1 20: 1112-1134, 25: 1153-1161,
#: 32: 1140-1160, 40: 673-971, 50: 645-864; Paddle 2.6.2 flat (32: 1054-1065, 50: 993-1064).
CPU_ENGINE_MAX_BATCH = 32
#: ``parallel='auto'`` stops using the workers (for the layer and input shape, for the process)
#: when, once warm, their threads were busy (CPU time / wall time) less than this fraction of the
#: time: they were taking turns. Paddle 3.x's ``predictor.run()`` keeps taking the GIL (3.3.1:
#: busy 0.36 and 0.73, a pure-Python thread got 3% of its speed during a run; LIME on the two
#: workers took 2.6x the one predictor's time); on Paddle 2.6.2 they were busy 0.98 and 1.0.
AUTO_WORKERS_MIN_BUSY = 0.7

_LOCK = threading.RLock()
_ENGINES = {}   # (id(layer), input_shape, device, options) -> _EngineEntry
_STATES = {}    # (id(layer), input_shape, device) -> _AutoState
_PROGRAMS = {}  # (id(layer), input_shape) -> TracedProgram
_MAX_ENGINES = 4


class ExportError(RuntimeError):
    """The layer could not be exported to / loaded by Paddle Inference."""


# --------------------------------------------------------------------------- threads
_threads = {"current": None}


def _current_threads():
    if _threads["current"] is None:
        try:
            _threads["current"] = max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))
        except ValueError:
            _threads["current"] = 1
    return _threads["current"]


def set_dygraph_threads(num_threads=None):
    """Set the CPU math threads of dygraph kernels (``paddle.base.core.set_num_threads``; OpenMP,
    MKL / OpenBLAS). ``None``: ``os.cpu_count()``. Returns the previous value, or None when this
    Paddle has no such call."""
    try:
        from paddle.base import core
    except ImportError:  # pragma: no cover - Paddle < 2.5
        from paddle.fluid import core
    setter = getattr(core, "set_num_threads", None)
    if setter is None:
        return None
    n = int(num_threads or os.cpu_count() or 1)
    prev = _current_threads()
    if n != prev:
        setter(n)
        _threads["current"] = n
    return prev


@contextlib.contextmanager
def dygraph_threads(num_threads=None):
    """Run a block with ``num_threads`` dygraph CPU threads (default all cores), then restore."""
    prev = set_dygraph_threads(num_threads)
    try:
        yield
    finally:
        if prev is not None:
            set_dygraph_threads(prev)


# --------------------------------------------------------------------------- fingerprint
def _named_state(layer):
    """``(name, tensor)`` of every parameter and persistable buffer of ``layer`` (what
    ``state_dict`` holds), without building the ``state_dict`` (4 ms for MobileNetV3_small on
    Paddle 2.6)."""
    for name, param in layer.named_parameters():
        yield name, param
    for name, buf in layer.named_buffers():
        if getattr(buf, "persistable", True):
            yield name, buf


def _raw_view(tensor):
    """``(shape, dtype name, bytes)`` of ``tensor``: its memory read in place (a ctypes view of
    ``data_ptr()``) when it is a contiguous CPU tensor, else a numpy copy."""
    import ctypes

    shape = tuple(int(s) for s in tensor.shape)
    dtype = str(tensor.dtype).replace("paddle.", "")
    try:
        on_cpu = tensor.place.is_cpu_place()
        contiguous = tensor.is_contiguous() if hasattr(tensor, "is_contiguous") else True
        nbytes = int(np.prod(shape, dtype=np.int64)) * int(tensor.element_size())
        ptr = tensor.data_ptr() if on_cpu and contiguous and nbytes else 0
    except Exception:  # an older Paddle without these methods: copy
        ptr = 0
    if ptr:
        return shape, dtype, memoryview((ctypes.c_char * nbytes).from_address(ptr)).cast("B")
    arr = np.ascontiguousarray(tensor.numpy())
    return shape, dtype, (memoryview(arr).cast("B") if arr.size else b"")


def parameter_fingerprint(layer):
    """A hex digest of every parameter and persistable buffer of ``layer`` (names, shapes, dtypes,
    values): CRC-32 and Adler-32 chained over the raw bytes, read in place on CPU (no copies:
    about 8 ms for MobileNetV3_small's 12 MB). Changes whenever a weight changes."""
    crc, adler = 0, 1
    for name, tensor in _named_state(layer):
        shape, dtype, data = _raw_view(tensor)
        head = ("%s|%s|%s;" % (name, shape, dtype)).encode()
        crc = zlib.crc32(data, zlib.crc32(head, crc))
        adler = zlib.adler32(data, zlib.adler32(head, adler))
    return "%08x%08x" % (crc & 0xFFFFFFFF, adler & 0xFFFFFFFF)


# --------------------------------------------------------------------------- device / memory
def _device():
    import paddle

    dev = paddle.get_device()
    if dev.startswith("gpu") and not paddle.is_compiled_with_cuda():
        return "cpu"
    return dev


def available_memory(device="cpu"):
    """Bytes available for batches: ``MemAvailable`` of ``/proc/meminfo`` on CPU (fallback:
    physical pages x page size / 2), the device's total memory / 2 on GPU."""
    if str(device).startswith("gpu"):
        try:
            import paddle

            idx = int(str(device).split(":")[1]) if ":" in str(device) else 0
            return int(paddle.device.cuda.get_device_properties(idx).total_memory) // 2
        except Exception:
            pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


#: Activation memory of one image in a forward pass, as a multiple of its float32 input.
ACTIVATION_FACTOR = 48
#: At most this fraction of the available memory (and at most ``MAX_BATCH_BYTES``) is used.
MEMORY_FRACTION = 0.25
MAX_BATCH_BYTES = 3 << 30


def suggest_batch_size(image_shape, device=None, cap=None):
    """The batch size used when the user gives none.

    Rule: one image costs its uint8 copy (perturbation) + its float32 input + about
    ``ACTIVATION_FACTOR`` (48) float32 inputs of activations (measured order for ResNet50 /
    MobileNetV3 in inference); the batch may use ``MEMORY_FRACTION`` (1/4) of the available memory,
    at most ``MAX_BATCH_BYTES`` (3 GiB); it is clipped to ``[1, cap]`` with ``cap`` 64 on CPU
    (throughput no longer grows past ~50 at 224x224 on CPU and a fixed shape keeps oneDNN's
    kernels cached) and 256 on GPU.

    >>> suggest_batch_size((224, 224, 3), device="cpu") <= 64
    True
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    c = int(image_shape[2]) if len(image_shape) > 2 else 3
    device = device or "cpu"
    per_image = h * w * c * (1 + 4 * (1 + ACTIVATION_FACTOR))
    budget = min(MEMORY_FRACTION * available_memory(device), MAX_BATCH_BYTES)
    if cap is None:
        cap = 256 if str(device).startswith("gpu") else 64
    return int(max(1, min(cap, budget // max(per_image, 1))))


# --------------------------------------------------------------------------- export
class _FirstOutput:
    """Built lazily (needs paddle): a Layer returning the first output of ``inner``."""

    cls = None

    @classmethod
    def make(cls, inner):
        if cls.cls is None:
            import paddle

            class FirstOutput(paddle.nn.Layer):
                def __init__(self, inner):
                    super().__init__()
                    self.inner = inner

                def forward(self, x):
                    out = self.inner(x)
                    if isinstance(out, (list, tuple)):
                        out = out[0]
                    return out

            cls.cls = FirstOutput
        return cls.cls(inner)


def inference_files(prefix):
    """``(program_file, params_file)`` written by ``paddle.jit.save(layer, prefix)``: Paddle 2.x
    writes ``prefix.pdmodel``, Paddle 3.x (PIR) ``prefix.json``; weights are ``prefix.pdiparams``.
    Raises :class:`ExportError` when neither program file exists."""
    params = prefix + ".pdiparams"
    for ext in (".pdmodel", ".json"):
        if os.path.exists(prefix + ext):
            return prefix + ext, params
    raise ExportError("no inference program next to %s (looked for .pdmodel and .json)" % prefix)


def export_layer(layer, input_shape, prefix):
    """Export ``layer`` for inputs ``(batch, *input_shape)`` float32 with ``paddle.jit.save``.

    The layer is exported in eval mode; the train/eval flag of every sub-layer is restored after,
    and so is its ``forward`` (Paddle's dygraph-to-static conversion replaces the ``forward`` of
    converted sub-layers by a transformed copy). Returns :func:`inference_files` of ``prefix``."""
    import paddle

    subs = layer.sublayers(include_self=True)
    modes = [(sub, sub.training) for sub in subs]
    forwards = [(sub, "forward" in sub.__dict__, sub.__dict__.get("forward")) for sub in subs]
    layer.eval()
    try:
        spec = [paddle.static.InputSpec([None] + [int(s) for s in input_shape], "float32", "x")]
        with paddle.no_grad():
            paddle.jit.save(_FirstOutput.make(layer), prefix, input_spec=spec)
    except Exception as exc:
        raise ExportError("paddle.jit.save failed: %s: %s" % (type(exc).__name__, exc)) from exc
    finally:
        for sub, mode in modes:
            sub.training = mode
        for sub, had, forward in forwards:
            if had:
                sub.__dict__["forward"] = forward
            else:
                sub.__dict__.pop("forward", None)
    return inference_files(prefix)


def _state_tensors(layer):
    """``{tensor name: tensor}`` of every parameter and persistable buffer of ``layer`` (the names
    ``paddle.jit.save`` gives them in the program)."""
    return {t.name: t for t in layer.state_dict().values()}


def _structure(layer):
    """Which sub-layer objects make up ``layer`` (a replaced sub-layer, even one without tensors,
    changes the computation: the traced program must not be reused then)."""
    return tuple((name, id(sub)) for name, sub in layer.named_sublayers(include_self=True))


def _tensor_bytes(tensor):
    arr = np.ascontiguousarray(tensor.numpy())
    return arr, (memoryview(arr).cast("B") if arr.size else b"")


class TracedProgram:
    """The inference program of one layer and input shape, traced once, so that new weights only
    need a new params file.

    ``paddle.jit.save`` spends most of its time (~0.8 s for MobileNetV3_small on 2 CPU cores)
    converting and tracing the dygraph code; the program it writes does not depend on the weights.
    Its ``.pdiparams`` file is ``save_combine``'s layout on Paddle 2.6 and 3.x alike: for every
    persistable variable, sorted by name, a small header (LoD and tensor versions, the serialized
    ``TensorDesc`` with dtype and dims) followed by the raw data. :meth:`from_export` reads the
    headers of the file ``jit.save`` wrote and keeps them only when writing the layer's tensors
    (named as in the program, sorted) after them reproduces that file byte for byte;
    :meth:`write` then writes the kept program bytes and a params file of the layer's *current*
    tensors (a few ms). Anything unexpected (other names, shapes or dtypes) raises, and the
    caller traces again.
    """

    def __init__(self, layer, input_shape, program_bytes, program_ext, layout):
        self.ref = weakref.ref(layer)
        self.input_shape = tuple(input_shape)
        self.structure = _structure(layer)
        self.program_bytes = program_bytes
        self.program_ext = program_ext
        self.layout = layout  # [(name, header bytes, shape, dtype str, nbytes)], file order

    @classmethod
    def from_export(cls, layer, input_shape, model_file, params_file):
        """The reusable program of an export just written to ``model_file`` / ``params_file``, or
        None (reason logged at debug level) when the params file is not reproduced exactly."""
        import struct

        try:
            with open(params_file, "rb") as f:
                raw = f.read()
            tensors = _state_tensors(layer)
            layout, i = [], 0
            for name in sorted(tensors):
                arr, data = _tensor_bytes(tensors[name])
                start = i
                i += 4  # uint32 LoDTensor version
                (lod_level,) = struct.unpack_from("<Q", raw, i)
                i += 8
                for _ in range(lod_level):
                    (size,) = struct.unpack_from("<Q", raw, i)
                    i += 8 + size
                i += 4  # uint32 Tensor version
                (desc_size,) = struct.unpack_from("<i", raw, i)
                i += 4 + desc_size
                header = raw[start:i]
                if raw[i:i + arr.nbytes] != bytes(data):
                    raise ValueError("data of %r differs from the layer's" % name)
                i += arr.nbytes
                layout.append((name, header, arr.shape, arr.dtype.str, arr.nbytes))
            if i != len(raw):
                raise ValueError("%d bytes left after the layer's %d tensors"
                                 % (len(raw) - i, len(layout)))
            with open(model_file, "rb") as f:
                program = f.read()
        except Exception as exc:
            logger.debug("paddle.inference: params layout not reproduced (%s: %s); every weight "
                         "change will trace again", type(exc).__name__, exc)
            return None
        return cls(layer, input_shape, program, os.path.splitext(model_file)[1], layout)

    def fits(self, layer, input_shape):
        """Same layer object, input shape and sub-layers as when traced."""
        return (self.ref() is layer and self.input_shape == tuple(input_shape)
                and self.structure == _structure(layer))

    def write(self, layer, prefix):
        """Write the program and ``layer``'s current tensors to ``prefix.{pdmodel|json}`` and
        ``prefix.pdiparams``; returns the two paths. Raises ``ValueError`` when the layer's
        tensors no longer match the traced layout."""
        tensors = _state_tensors(layer)
        if len(tensors) != len(self.layout):
            raise ValueError("the layer has %d tensors, the program %d"
                             % (len(tensors), len(self.layout)))
        model_file, params_file = prefix + self.program_ext, prefix + ".pdiparams"
        with open(params_file, "wb") as f:
            for name, header, shape, dtype, nbytes in self.layout:
                tensor = tensors.get(name)
                if tensor is None:
                    raise ValueError("tensor %r of the program is gone from the layer" % name)
                arr, data = _tensor_bytes(tensor)
                if arr.shape != shape or arr.dtype.str != dtype:
                    raise ValueError("tensor %r is now %s %s, was %s %s"
                                     % (name, arr.shape, arr.dtype.str, shape, dtype))
                f.write(header)
                f.write(data)
        with open(model_file, "wb") as f:
            f.write(self.program_bytes)
        return model_file, params_file


class InferenceEngine:
    """A Paddle Inference predictor built from a live layer.

    Args:
        layer: the ``paddle.nn.Layer`` (its current weights are exported).
        input_shape: ``(C, H, W)`` of one input; the batch dimension is dynamic.
        device: ``'cpu'`` or ``'gpu[:i]'`` (default: ``paddle.get_device()``).
        num_threads: CPU math threads (default ``os.cpu_count()``).
        use_mkldnn: oneDNN on CPU (default True).
        use_tensorrt: on a CUDA build with a GPU device, run subgraphs through TensorRT when
            Paddle was compiled with it (default False; untested here, no GPU).
        gpu_memory_mb: initial GPU memory pool.
        fingerprint: the parameter fingerprint (computed when None).
    """

    def __init__(self, layer, input_shape, device=None, num_threads=None, use_mkldnn=True,
                 use_tensorrt=False, gpu_memory_mb=512, fingerprint=None, max_batch_size=64,
                 program=None):
        import paddle.inference as pi

        self.input_shape = tuple(int(s) for s in input_shape)
        self.device = device or _device()
        self.num_threads = int(num_threads or os.cpu_count() or 1)
        self.fingerprint = fingerprint or parameter_fingerprint(layer)
        self.program = None   # the TracedProgram reusable for later weights (None: not verified)
        self.structure = _structure(layer)
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
        import paddle

        opts = {"device": self.device}
        if self.device.startswith("gpu") and paddle.is_compiled_with_cuda():
            # GPU (and TensorRT) path: kept behind the CUDA check; untested on these CPU machines.
            idx = int(self.device.split(":")[1]) if ":" in self.device else 0
            config.enable_use_gpu(int(gpu_memory_mb), idx)
            opts["gpu"] = idx
            if use_tensorrt:
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
        else:
            config.disable_gpu()
            threads = int(num_threads or self.num_threads)
            config.set_cpu_math_library_num_threads(threads)
            opts["threads"] = threads
            if use_mkldnn:
                enable = getattr(config, "enable_onednn", None) or config.enable_mkldnn
                enable()
                cache = getattr(config, "set_onednn_cache_capacity", None) or getattr(
                    config, "set_mkldnn_cache_capacity", None)
                if cache is not None:
                    cache(16)  # keep the kernels of a few batch shapes (full + last batch)
                opts["onednn"] = True
            else:
                (getattr(config, "disable_onednn", None) or config.disable_mkldnn)()
        config.switch_ir_optim(True)
        if getattr(self, "program_format", None) == "pdmodel" and hasattr(
                config, "enable_memory_optim"):
            # intermediate tensors share memory: MobileNetV3_small at batch 50 with the two
            # workers, RSS after a LIME run 1458 instead of 1973 MiB, same speed (BENCHMARKS.md).
            # Not for PIR (.json) programs: Paddle 3.x has no memory_optimize_pass for them
            # (create_predictor fails).
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
            self.predictor.run()
            return self._output.copy_to_cpu()


class _EngineEntry:
    def __init__(self, layer, engine):
        self.ref = weakref.ref(layer)
        self.engine = engine


def _options_key(options):
    return tuple(sorted((k, v) for k, v in options.items()))


def get_engine(layer, input_shape, fingerprint=None, device=None, **options):
    """The cached :class:`InferenceEngine` of ``layer`` with its current weights: rebuilt when the
    fingerprint differs from the cached one's. The program is traced once per layer and input
    shape (:class:`TracedProgram`); a weight change only writes new params and builds a new
    predictor. Raises :class:`ExportError` on failure."""
    device = device or _device()
    fingerprint = fingerprint or parameter_fingerprint(layer)
    shape = tuple(int(s) for s in input_shape)
    key = (id(layer), shape, device, _options_key(options))
    with _LOCK:
        _prune()
        entry = _ENGINES.get(key)
        structure = _structure(layer)
        if entry is not None and entry.ref() is layer and entry.engine.fingerprint == fingerprint \
                and entry.engine.structure == structure:
            return entry.engine
        if entry is not None and entry.ref() is layer:
            logger.info("paddle.inference: weights changed (fingerprint %s -> %s): new predictor",
                        entry.engine.fingerprint, fingerprint)
        _ENGINES.pop(key, None)
        program = _PROGRAMS.get((id(layer), shape))
        if program is not None and not program.fits(layer, shape):
            program = None
        try:
            engine = InferenceEngine(layer, shape, device=device, fingerprint=fingerprint,
                                     program=program, **options)
        except ExportError:
            if program is None:
                raise
            logger.info("paddle.inference: predictor from the traced program failed; tracing "
                        "again", exc_info=True)
            _PROGRAMS.pop((id(layer), shape), None)
            engine = InferenceEngine(layer, shape, device=device, fingerprint=fingerprint,
                                     **options)
        if engine.program is not None:
            _PROGRAMS[(id(layer), shape)] = engine.program
            while len(_PROGRAMS) > _MAX_ENGINES:
                _PROGRAMS.pop(next(iter(_PROGRAMS)))
        while len(_ENGINES) >= _MAX_ENGINES:
            _ENGINES.pop(next(iter(_ENGINES)))
        _ENGINES[key] = _EngineEntry(layer, engine)
        logger.info("paddle.inference: %s %s in %.2fs (+%.2fs predictor) %s",
                    "traced" if engine.export_kind == "traced" else "new weights for",
                    type(layer).__name__, engine.export_seconds, engine.build_seconds,
                    engine.options)
        return engine


def _prune():
    for key in [k for k, e in _ENGINES.items() if e.ref() is None]:
        del _ENGINES[key]
    for key in [k for k, s in _STATES.items() if s.ref() is None]:
        del _STATES[key]
    for key in [k for k, p in _PROGRAMS.items() if p.ref() is None]:
        del _PROGRAMS[key]


def release_engines(layer):
    """Drop the cached predictors of ``layer`` (their memory: weights, oneDNN kernels, buffers),
    keeping its traced programs and 'auto' decisions, so the next call only builds a predictor.
    The training integrations call it after each checkpoint: training goes on and changes the
    weights, so those predictors would not be used again. Returns how many were dropped."""
    with _LOCK:
        keys = [k for k, e in _ENGINES.items() if e.ref() is layer]
        for key in keys:
            del _ENGINES[key]
        return len(keys)


def clear_cache():
    """Drop every cached predictor, traced program and 'auto' decision."""
    with _LOCK:
        _ENGINES.clear()
        _STATES.clear()
        _PROGRAMS.clear()


def cache_info():
    """``[(layer class, input shape, device, fingerprint), ...]`` of the cached predictors."""
    with _LOCK:
        _prune()
        return [(type(e.ref()).__name__, k[1], k[2], e.engine.fingerprint)
                for k, e in _ENGINES.items()]


# --------------------------------------------------------------------------- runner
class _AutoState:
    """What 'auto' learnt about one (layer, input shape, device) in this process."""

    def __init__(self, layer):
        self.ref = weakref.ref(layer)
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

        from .predictors import eval_mode

        with dygraph_threads(self.num_threads), eval_mode(self.layer):
            out = self.layer(paddle.to_tensor(np.ascontiguousarray(x, dtype=np.float32)))
            if isinstance(out, (list, tuple)):
                out = out[0]
            return out.numpy()

    def _state(self, shape):
        key = (id(self.layer), shape, self.device or _device())
        with _LOCK:
            st = _STATES.get(key)
            if st is None or st.ref() is not self.layer:
                st = _STATES[key] = _AutoState(self.layer)
            return st

    def engine(self, input_shape):
        """The up-to-date :class:`InferenceEngine` for ``input_shape`` ``(C, H, W)``, or None
        (reason in ``info``) when the layer cannot be exported."""
        if self._failed is not None:
            return None
        try:
            return get_engine(self.layer, input_shape, fingerprint=self._fingerprint(),
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
        if self.backend == "auto" and self._state(shape).decision != "inference":
            return None
        engine = self.engine(shape)
        if engine is None or "gpu" in engine.options or engine.num_threads < 2:
            return None
        if parallel == "auto" and (engine.seconds_per_image is None
                                   or engine.seconds_per_image > AUTO_WORKERS_SECONDS_PER_IMAGE):
            return None  # not measured yet (the next batch runs on the engine) or a slow model
        if parallel == "auto" and self._state(shape).workers_slow is not None:
            self._workers_off = self._state(shape).workers_slow  # measured taking turns here
            return None
        try:
            workers = engine.workers(min(count, engine.num_threads))
        except Exception as exc:
            self.parallel_failed("workers not built (%s: %s)" % (type(exc).__name__, exc))
            return None
        reason = self.info.get("reason") if self.info.get("backend") == "inference" else None
        self.info = dict(engine.describe(), backend="inference",
                         reason=reason or ("forced" if self.backend == "inference" else
                                           self._state(shape).reason),
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
        self._state(shape).workers_slow = self._workers_off = reason
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
        st = self._state(shape)
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
