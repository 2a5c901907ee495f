"""Reading a torch ``.pth`` state dict without torch: a restricted unpickler that resolves
torch's tensor-rebuild calls to numpy arrays over the raw storages (the legacy and the zip
format), honouring strides and offsets (converted checkpoints are often stored non-contiguously).

Example::

    from pxi_testing.torch_pickle import read_torch_state_dict
    state = read_torch_state_dict("model.pth")     # {name: numpy array}
"""
import pickle
import zipfile
from collections import OrderedDict

import numpy as np

__all__ = ["read_torch_state_dict"]


_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "LongStorage": "i8",
    "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1", "ByteStorage": "u1",
    "BoolStorage": "?",
}


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Storage:
    """One raw torch storage: its element dtype, element count, and (once read) its flat array."""

    def __init__(self, dtype, numel):
        self.dtype, self.numel, self.array = dtype, numel, None


class _TensorRef:
    """A tensor met while unpickling; its storage's bytes may come later in the file (legacy format)."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        flat = self.storage.array
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, flat.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= flat.size:
            raise pickle.UnpicklingError("tensor view lies outside its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * flat.itemsize for s in self.stride])
        return view.astype(flat.dtype.newbyteorder("="), order="C", copy=True)


def _rebuild_tensor(storage, offset, size, stride, *args):
    return _TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data, *args):
    return data


class _Unpickler(pickle.Unpickler):
    """Unpickles a torch state dict without torch; refuses every global it does not know."""

    _GLOBALS = {("collections", "OrderedDict"): OrderedDict,
                ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
                ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}

    def __init__(self, file, byteorder, storages, read_storage=None):
        super().__init__(file)
        self.byteorder, self.storages, self.read_storage = byteorder, storages, read_storage

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        try:
            return self._GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError("refusing to load %s.%s" % (module, name)) from None

    def persistent_load(self, pid):
        if pid[0] != "storage":
            raise pickle.UnpicklingError("unsupported persistent id %r" % (pid[0],))
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4 files) are not supported")
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError("unsupported storage type %r" % (storage_type,))
        if key not in self.storages:
            dtype = np.dtype(self.byteorder + _STORAGE_DTYPES[storage_type.name])
            storage = _Storage(dtype, numel)
            if self.read_storage is not None:
                storage.array = self.read_storage(key, dtype, numel)
            self.storages[key] = storage
        return self.storages[key]


def _resolve(obj):
    if isinstance(obj, _TensorRef):
        return obj.to_numpy()
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v) for v in obj)
    return obj


def _read_legacy(f):
    magic = pickle.load(f)
    if magic != 0x1950A86A20F9469CFC6C:
        raise pickle.UnpicklingError("not a torch .pth file (bad magic number)")
    pickle.load(f)  # protocol version
    sys_info = pickle.load(f)
    byteorder = "<" if sys_info.get("little_endian", True) else ">"
    storages = {}
    result = _Unpickler(f, byteorder, storages).load()
    for key in pickle.load(f):  # then each storage: int64 element count, raw elements
        storage = storages[key]
        count = int(np.frombuffer(f.read(8), byteorder + "i8")[0])
        if count != storage.numel:
            raise pickle.UnpicklingError("storage %s: %d elements, expected %d"
                                         % (key, count, storage.numel))
        nbytes = count * storage.dtype.itemsize
        data = f.read(nbytes)
        if len(data) != nbytes:
            raise pickle.UnpicklingError("truncated storage %s" % key)
        storage.array = np.frombuffer(data, storage.dtype)
    return result


def _read_zip(path):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next(n for n in names if n == "data.pkl" or n.endswith("/data.pkl"))
        prefix = pkl[:-len("data.pkl")]
        byteorder = "<"
        if prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() == b"big":
            byteorder = ">"

        def read_storage(key, dtype, numel):
            data = zf.read("%sdata/%s" % (prefix, key))
            return np.frombuffer(data, dtype, count=numel)

        with zf.open(pkl) as f:
            return _Unpickler(f, byteorder, {}, read_storage).load()


def read_torch_state_dict(path):
    """The ``OrderedDict`` saved by ``torch.save`` at ``path``, with numpy arrays for tensors.

    Reads both the zip format (torch >= 1.6) and the legacy pickle stream; only plain containers,
    tensors and parameters are accepted, so the file cannot run code.
    """
    if zipfile.is_zipfile(path):
        return _resolve(_read_zip(path))
    with open(path, "rb") as f:
        return _resolve(_read_legacy(f))
