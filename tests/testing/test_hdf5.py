"""The numpy-only HDF5 reader (:mod:`pxi_testing.hdf5`) on files written by h5py.

``data/hdf5_fixture.h5`` (73 KB) was written by h5py 3.16 (HDF5 1.14, default ``libver="earliest"``)
with the arrays of :func:`_expected` plus: ``compact`` (four float32, a compact layout: the data in the
object header), ``wide/d000`` .. ``wide/d149`` (int32 scalars 0..149: enough entries for a two-level
group B-tree) and 40 attributes on ``kernel`` (its object header continues in a second block).
``data/hdf5_chunked.h5`` holds one gzip-compressed chunked dataset, which the reader must refuse.
"""
import os
from collections import OrderedDict

import numpy as np
import pytest

from pxi_testing.hdf5 import read_hdf5_datasets

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def _expected():
    return OrderedDict([
        ("kernel", np.arange(24, dtype="<f4").reshape(2, 3, 4)),
        ("nested/deeper/big_endian", np.linspace(-1, 1, 5).astype(">f8")),
        ("nested/int16", np.array([-3, 0, 7], dtype="<i2")),
        ("nested/uint8", np.arange(250, 256, dtype=np.uint8)),
        ("scalar", np.array(7, dtype=np.int64)),
        ("empty", np.zeros((0, 3), np.float32)),
        ("half", np.array([0.5, -2.0, 1024.0], np.float16)),
        ("names", np.array([b"conv1", b"fire2/squeeze1x1"], dtype="S24")),
        ("compact", np.array([1.5, 2.5, 3.5, 4.5], np.float32)),
    ])


def test_reads_every_dataset_of_an_h5py_file():
    got = read_hdf5_datasets(os.path.join(DATA, "hdf5_fixture.h5"))
    expected = _expected()
    expected.update(("wide/d%03d" % i, np.array(i, np.int32)) for i in range(150))
    assert set(got) == set(expected)
    for key, want in expected.items():
        value = got[key]
        assert value.dtype == want.dtype.newbyteorder("=") and value.shape == want.shape, key
        np.testing.assert_array_equal(value, want, err_msg=key)
        assert value.flags.c_contiguous and value.flags.writeable, key
    wide = [k for k in got if k.startswith("wide/")]
    assert wide == sorted(wide)  # the order of the group's symbol table


def test_refuses_what_it_cannot_read(tmp_path):
    with pytest.raises(ValueError, match="filtered"):
        read_hdf5_datasets(os.path.join(DATA, "hdf5_chunked.h5"))
    path = tmp_path / "not.h5"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not an HDF5 file"):
        read_hdf5_datasets(str(path))


def test_agrees_with_h5py_when_installed():
    h5py = pytest.importorskip("h5py")
    path = os.path.join(DATA, "hdf5_fixture.h5")
    ref = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: ref.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    got = read_hdf5_datasets(path)
    assert list(got) == list(ref)
    for key, value in ref.items():
        np.testing.assert_array_equal(got[key], value, err_msg=key)
