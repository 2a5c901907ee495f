"""Which device runs the model and how large a batch it can take.

Example::

    >>> from paddlex_interpret.runtime.devices import suggest_batch_size
    >>> suggest_batch_size((224, 224, 3), device="cpu") <= 64
    True
"""
import os

__all__ = ["current_device", "available_memory", "suggest_batch_size", "ACTIVATION_FACTOR",
           "MEMORY_FRACTION", "MAX_BATCH_BYTES"]

#: Activation memory of one image in a forward pass, as a multiple of its float32 input.
ACTIVATION_FACTOR = 48
#: At most this fraction of the available memory (and at most ``MAX_BATCH_BYTES``) is used.
MEMORY_FRACTION = 0.25
MAX_BATCH_BYTES = 3 << 30


def current_device():
    """``paddle.get_device()``, or ``'cpu'`` when it names a GPU this Paddle build cannot use."""
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


def suggest_batch_size(image_shape, device=None, cap=None):
    """The batch size used when the user gives none.

    Rule: one image costs its uint8 copy (perturbation) + its float32 input + about
    ``ACTIVATION_FACTOR`` float32 inputs of activations (the order measured for ResNet50 and
    MobileNetV3 in inference); the batch may use ``MEMORY_FRACTION`` of the available memory, at
    most ``MAX_BATCH_BYTES``; it is clipped to ``[1, cap]`` with ``cap`` 64 on CPU (throughput no
    longer grows there and a fixed shape keeps oneDNN's kernels cached) and 256 on GPU.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    c = int(image_shape[2]) if len(image_shape) > 2 else 3
    device = device or "cpu"
    per_image = h * w * c * (1 + 4 * (1 + ACTIVATION_FACTOR))
    budget = min(MEMORY_FRACTION * available_memory(device), MAX_BATCH_BYTES)
    if cap is None:
        cap = 256 if str(device).startswith("gpu") else 64
    return int(max(1, min(cap, budget // max(per_image, 1))))
