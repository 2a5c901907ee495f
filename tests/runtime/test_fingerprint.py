"""paddlex_interpret.runtime.fingerprint: the digest of a layer's weights."""
import numpy as np

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.runtime import fingerprint


def test_fingerprint_reads_the_weights_in_place_and_sees_any_change():
    """The fingerprint reads CPU tensors in place (ctypes views of ``data_ptr()``): it must hash
    the same bytes as numpy copies of the ``state_dict`` would, and change when one value of a
    parameter or of a persistable buffer changes."""
    import zlib

    import paddle

    paddle.seed(3)
    net = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.BatchNorm1D(3))

    def from_copies(layer):
        crc, adler = 0, 1
        for name, tensor in layer.state_dict().items():
            arr = np.ascontiguousarray(tensor.numpy())
            head = ("%s|%s|%s;" % (name, arr.shape, arr.dtype)).encode()
            data = memoryview(arr).cast("B")
            crc = zlib.crc32(data, zlib.crc32(head, crc))
            adler = zlib.adler32(data, zlib.adler32(head, adler))
        return "%08x%08x" % (crc & 0xFFFFFFFF, adler & 0xFFFFFFFF)

    before = fingerprint.parameter_fingerprint(net)
    assert before == from_copies(net)
    seen = {before}
    for tensor in (net[0].weight, net[1]._mean):  # a parameter, a persistable buffer
        value = tensor.numpy()
        value.flat[1] += 1e-6
        tensor.set_value(value)
        fp = fingerprint.parameter_fingerprint(net)
        assert fp == from_copies(net) and fp not in seen
        seen.add(fp)
