"""The one fingerprint of a model's weights: a digest of every parameter and persistable buffer,
read in place.

It tags cached inference predictors (a changed weight means a new predictor), and, with the
model's preprocessing, NormLIME weights files (:func:`model_fingerprint`: a file is reused only
for the model that built it). Cost: BENCHMARKS.md, "Composing the perturbed inputs".

Example::

    from paddlex_interpret.runtime.fingerprint import parameter_fingerprint
    before = parameter_fingerprint(net)
    optimizer.step()
    assert parameter_fingerprint(net) != before
"""
import ctypes
import json
import zlib

import numpy as np

__all__ = ["parameter_fingerprint", "transforms_fingerprint", "model_fingerprint"]


def _named_state(layer):
    """``(name, tensor)`` of every parameter and persistable buffer of ``layer`` (what
    ``state_dict`` holds), without building the ``state_dict``."""
    for name, param in layer.named_parameters():
        yield name, param
    for name, buf in layer.named_buffers():
        if getattr(buf, "persistable", True):
            yield name, buf


def _raw_view(tensor):
    """``(shape, dtype name, bytes)`` of ``tensor``: its memory read in place (a ctypes view of
    ``data_ptr()``) when it is a contiguous CPU tensor, else a numpy copy."""
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
    values): CRC-32 and Adler-32 chained over the raw bytes, read in place on CPU (no copies).
    Changes whenever a weight changes."""
    crc, adler = 0, 1
    for name, tensor in _named_state(layer):
        shape, dtype, data = _raw_view(tensor)
        head = ("%s|%s|%s;" % (name, shape, dtype)).encode()
        crc = zlib.crc32(data, zlib.crc32(head, crc))
        adler = zlib.adler32(data, zlib.adler32(head, adler))
    return "%08x%08x" % (crc & 0xFFFFFFFF, adler & 0xFFFFFFFF)


def transforms_fingerprint(ops):
    """A digest of preprocessing steps (class names and scalar settings of each op, e.g. a
    PaddleX ``Compose``'s ``transforms``); ``'-'`` for none."""
    if not ops:
        return "-"
    text = []
    for op in ops:
        attrs = {k: v for k, v in sorted(vars(op).items())
                 if isinstance(v, (int, float, str, bool, tuple, list))}
        text.append(type(op).__name__ + json.dumps(attrs, default=str))
    return "%08x" % (zlib.crc32("|".join(text).encode()) & 0xFFFFFFFF)


def model_fingerprint(layer, ops=None):
    """What a model computes: :func:`parameter_fingerprint` of ``layer`` and
    :func:`transforms_fingerprint` of its preprocessing ``ops``."""
    return "%s-%s" % (parameter_fingerprint(layer), transforms_fingerprint(ops))
