"""Which device runs the model, whether it can, and how large a batch it can take.

One rule runs through the package: the device a user names (``device=``, the hook's
``worker_device``, the command line's ``--device``) is the only one touched.

* :func:`check_device` turns a device name into ``'cpu'`` or ``'gpu:N'``, and raises
  :class:`~paddlex_interpret.errors.DeviceError` (one line naming the device and why) for a GPU
  this process cannot use: a CPU build of Paddle, no card visible
  (``paddle.device.cuda.device_count()`` is 0), an index past the visible cards. Paddle's own
  ``paddle.set_device('gpu')`` ends the process (status 255) in those cases; :func:`use_device`
  checks first. :func:`device_or_cpu` is the fallback of the training hook and its worker: the
  error is logged and the CPU is used.
* :func:`on_gpu` says whether the current place is a GPU: CUDA calls (:func:`empty_cache`, the
  CUDA RNG state) are made only then, so a CPU process of a CUDA build opens no context on any
  card. :func:`child_env` is the environment of a process started on a device: a CPU process
  sees no card (``CUDA_VISIBLE_DEVICES`` empty), a GPU process sees its card only.
* :func:`free_memory` and :func:`suggest_batch_size`: batches from the memory the device has
  left, never from its total.

Example::

    >>> from paddlex_interpret.runtime.devices import check_device, suggest_batch_size
    >>> check_device("cpu")
    'cpu'
    >>> suggest_batch_size((224, 224, 3), device="cpu") <= 64
    True
"""
import logging
import os

from ..errors import DeviceError

__all__ = ["current_device", "check_device", "use_device", "device_or_cpu", "gpu_count",
           "on_gpu", "is_gpu", "gpu_index", "layer_device", "parameters_elsewhere", "empty_cache", "child_env",
           "free_memory", "available_memory", "suggest_batch_size", "predictor_pool_mb",
           "ACTIVATION_FACTOR", "MEMORY_FRACTION", "MAX_BATCH_BYTES", "MAX_POOL_MB"]

logger = logging.getLogger("paddlex_interpret")

#: Activation memory of one image in a forward pass, as a multiple of its float32 input.
ACTIVATION_FACTOR = 48
#: At most this fraction of the available memory (and at most ``MAX_BATCH_BYTES``) is used.
MEMORY_FRACTION = 0.25
MAX_BATCH_BYTES = 3 << 30
#: The initial GPU memory pool of a Paddle Inference predictor, at most (MiB).
MAX_POOL_MB = 512
#: What a Paddle rank of a launched job or a spawned build is told about its card; a process
#: started on another device must not inherit them (Paddle initialises the cards they name).
_SELECTION_VARIABLES = ("FLAGS_selected_gpus", "FLAGS_selected_accelerators")


def current_device() -> str:
    """``paddle.get_device()``, or ``'cpu'`` when it names a GPU this Paddle build cannot use."""
    import paddle

    dev = paddle.get_device()
    if dev.startswith("gpu") and not paddle.is_compiled_with_cuda():
        return "cpu"
    return dev


def _parse(device):
    """``('cpu', None)``, ``('gpu', None)`` or ``('gpu', N)`` of a device name."""
    text = str(device).strip().lower()
    if text == "cpu":
        return "cpu", None
    if text == "gpu":
        return "gpu", None
    kind, _, index = text.partition(":")
    if kind == "gpu" and index.isdigit():
        return "gpu", int(index)
    raise DeviceError("device %r: use 'cpu', 'gpu' or 'gpu:N' (N: a visible card)" % (device,))


def _selected_gpu():
    """The card a bare ``'gpu'`` means: Paddle's (the launcher's ``FLAGS_selected_gpus``, else
    the first visible card)."""
    first = os.environ.get("FLAGS_selected_gpus", "").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def gpu_count() -> int:
    """GPUs this process can use: 0 on a CPU build, else
    ``paddle.device.cuda.device_count()`` (the cards ``CUDA_VISIBLE_DEVICES`` leaves; no CUDA
    context is opened)."""
    import paddle

    if not paddle.is_compiled_with_cuda():
        return 0
    return int(paddle.device.cuda.device_count())


def check_device(device) -> str:
    """``'cpu'`` or ``'gpu:N'`` for ``device`` (``'gpu'``: the card Paddle would take).

    Raises:
        DeviceError: not a device name, or a GPU that this process cannot use (the message
            says which: a CPU build, no card visible, or fewer cards than the index).
    """
    kind, index = _parse(device)
    if kind == "cpu":
        return "cpu"
    import paddle

    if index is None:
        index = _selected_gpu()
    name = "gpu:%d" % index
    if not paddle.is_compiled_with_cuda():
        raise DeviceError("device %r: this Paddle is a CPU build (paddlepaddle; a GPU needs "
                          "paddlepaddle-gpu); use 'cpu'" % (device,))
    count = gpu_count()
    if count == 0:
        raise DeviceError("device %r: no GPU is visible to this process "
                          "(paddle.device.cuda.device_count() is 0, CUDA_VISIBLE_DEVICES=%r); "
                          "use 'cpu'" % (device, os.environ.get("CUDA_VISIBLE_DEVICES")))
    if index >= count:
        raise DeviceError("device %r: %d GPU(s) visible (gpu:0 to gpu:%d)"
                          % (device, count, count - 1))
    return name


def use_device(device) -> str:
    """:func:`check_device`, then ``paddle.set_device``; returns the checked name."""
    import paddle

    name = check_device(device)
    paddle.set_device(name)
    return name


def device_or_cpu(device, what) -> str:
    """``check_device(device)``, or ``'cpu'`` when it raises: the error is logged (``what``
    names who asked) and the CPU is used. For work that must go on (the training hook)."""
    try:
        return check_device(device)
    except DeviceError as exc:
        logger.error("%s: %s; explaining on the CPU instead", what, exc)
        return "cpu"


def is_gpu(device) -> bool:
    """Whether a device name names a GPU (no check that it exists)."""
    return str(device).strip().lower().startswith("gpu")


def gpu_index(device) -> int:
    """The card of a GPU name (``'gpu'``: the card Paddle would take)."""
    kind, index = _parse(device)
    if kind != "gpu":
        raise DeviceError("device %r is not a GPU" % (device,))
    return _selected_gpu() if index is None else index


def on_gpu() -> bool:
    """Whether the current place (``paddle.get_device()``) is a GPU. False on a CPU build and on
    a CUDA build that runs on the CPU (no card, or ``paddle.set_device('cpu')``)."""
    try:
        import paddle

        return paddle.is_compiled_with_cuda() and paddle.get_device().startswith("gpu")
    except Exception:  # no paddle: nothing runs on a GPU
        return False


def layer_device(layer):
    """``'cpu'`` or ``'gpu:N'``: where the parameters of ``layer`` are (None: it has none)."""
    for param in layer.parameters():
        place = param.place
        if place.is_gpu_place():
            return "gpu:%d" % place.gpu_device_id()
        return "cpu"
    return None


def parameters_elsewhere(device, here):
    """Why dygraph cannot run on ``device`` when a network's parameters are on ``here`` (None:
    it can, or the network has none). Dygraph runs where the parameters are; nothing here
    moves a user's network."""
    if here is None or here == device:
        return None
    return ("device %r: the network's parameters are on %s, where dygraph and gradients run "
            "(move it with layer.to(%r), or leave device unset)" % (device, here, device))


def empty_cache() -> None:
    """Give the GPU memory Paddle caches back, when the current place is a GPU (no CUDA call
    otherwise: a CPU process must not open a context on a card)."""
    if not on_gpu():
        return
    try:
        import paddle

        paddle.device.cuda.empty_cache()
    except Exception:  # best effort only
        logger.debug("could not release device memory", exc_info=True)


def child_env(device, env=None):
    """``(environment, device inside)`` for a process started to run on ``device`` (a checked
    name): on the CPU, no card visible (``CUDA_VISIBLE_DEVICES`` empty); on ``gpu:N``, the
    N-th card this process sees, alone (``gpu:0`` inside). Paddle's card selection for ranks
    (``FLAGS_selected_gpus``) is not inherited."""
    env = dict(os.environ if env is None else env)
    for name in _SELECTION_VARIABLES:
        env.pop(name, None)
    if not is_gpu(device):
        env["CUDA_VISIBLE_DEVICES"] = ""
        return env, "cpu"
    index = gpu_index(device)
    visible = env.get("CUDA_VISIBLE_DEVICES")
    cards = [c.strip() for c in visible.split(",")] if visible else []
    env["CUDA_VISIBLE_DEVICES"] = cards[index] if index < len(cards) else str(index)
    return env, "gpu:0"


def _meminfo():
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


def _gpu_free(index):
    """``(bytes, source)`` of what card ``index`` has left, or None when Paddle cannot tell."""
    import paddle

    try:
        from paddle.base import core
    except ImportError:  # pragma: no cover - Paddle < 2.5
        from paddle.fluid import core
    query = getattr(core, "gpu_memory_available", None)
    current = paddle.get_device()
    if query is not None and current == "gpu:%d" % index:
        # cudaMemGetInfo of the current card: what every process on it has left
        return int(query()), "free on the card"
    try:
        total = int(paddle.device.cuda.get_device_properties(index).total_memory)
        held = int(paddle.device.cuda.memory_reserved(index))
    except Exception:
        return None
    # other processes on the card are not counted: an upper bound
    return max(0, total - held), "total less this process's reserved"


def free_memory(device="cpu"):
    """``(bytes, source)``: memory ``device`` has left. On the CPU ``MemAvailable`` of
    ``/proc/meminfo`` (fallback: physical pages x page size / 2). On a GPU, the card's free
    memory (``core.gpu_memory_available``: cudaMemGetInfo, when the card is the current
    device), else its total less what this process's allocator reserved there (other
    processes unseen), else nothing (0)."""
    if is_gpu(device):
        try:
            found = _gpu_free(gpu_index(device))
        except Exception:
            found = None
        return found if found is not None else (0, "unknown")
    return _meminfo(), "MemAvailable"


def available_memory(device="cpu") -> int:
    """Bytes ``device`` has left (:func:`free_memory`)."""
    return free_memory(device)[0]


def suggest_batch_size(image_shape, device=None, cap=None, memory=None) -> int:
    """The batch size used when the user gives none.

    Rule: one image costs its uint8 copy (perturbation) + its float32 input + about
    ``ACTIVATION_FACTOR`` float32 inputs of activations (the order measured for ResNet50 and
    MobileNetV3 in inference); the batch may use ``MEMORY_FRACTION`` of the memory the device
    has left (``memory``, default :func:`available_memory`: a card's free memory, not its total,
    since training may hold most of it; nothing where Paddle cannot tell), at most
    ``MAX_BATCH_BYTES``; it is clipped to ``[1, cap]`` with ``cap`` 64 on CPU (throughput no
    longer grows there and a fixed shape keeps oneDNN's kernels cached) and 256 on GPU.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    c = int(image_shape[2]) if len(image_shape) > 2 else 3
    device = device or "cpu"
    per_image = h * w * c * (1 + 4 * (1 + ACTIVATION_FACTOR))
    left = available_memory(device) if memory is None else int(memory)
    budget = min(MEMORY_FRACTION * left, MAX_BATCH_BYTES)
    if cap is None:
        cap = 256 if is_gpu(device) else 64
    return int(max(1, min(cap, budget // max(per_image, 1))))


def predictor_pool_mb(device, memory=None) -> int:
    """The initial memory pool (MiB) of a Paddle Inference predictor on a GPU: at most
    :data:`MAX_POOL_MB` and at most ``MEMORY_FRACTION`` of what the card has left (``memory``,
    default :func:`available_memory`), at least 64."""
    left = available_memory(device) if memory is None else int(memory)
    return int(max(64, min(MAX_POOL_MB, MEMORY_FRACTION * left / (1 << 20))))
