"""Reading the datasets of a classic HDF5 file with numpy alone (no h5py).

Covers what HDF5 writes by default for uncompressed arrays (h5py's ``libver="earliest"``, Keras
``save_weights`` files): superblock version 0 or 1, groups kept as symbol tables (version 1 B-trees,
local heaps), version 1 object headers with continuation blocks, and contiguous or compact datasets of
integers, floats or fixed-length strings in either byte order. Anything else (chunked or filtered
data, the version 2 object headers of ``libver="latest"``, link messages, variable-length data) is
refused with :class:`ValueError` rather than misread. Attributes are not read.

Example::

    from pxi_testing.hdf5 import read_hdf5_datasets
    arrays = read_hdf5_datasets("weights.h5")     # {"group/sub/name": numpy array}
"""
from collections import OrderedDict

import numpy as np

__all__ = ["read_hdf5_datasets"]

_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_UNDEFINED = 0xFFFFFFFFFFFFFFFF

# object header message types
_DATASPACE, _DATATYPE, _LAYOUT, _FILTERS, _CONTINUATION, _SYMBOL_TABLE = 0x1, 0x3, 0x8, 0xB, 0x10, 0x11
_LINK, _LINK_INFO = 0x6, 0x2


class _File:
    def __init__(self, data):
        self.data = data
        base = self._find_superblock()
        version = data[base + 8]
        if version not in (0, 1):
            raise ValueError("HDF5 superblock version %d is not supported" % version)
        self.size_offsets, self.size_lengths = data[base + 13], data[base + 14]
        pos = base + 24 + (4 if version == 1 else 0)
        self.base_address = self._uint(pos, self.size_offsets)
        pos += 4 * self.size_offsets  # base, free space, end of file, driver information
        self.root_entry = pos

    def _find_superblock(self):
        for base in [0] + [512 << i for i in range(20)]:
            if base >= len(self.data):
                break
            if self.data[base:base + 8] == _SIGNATURE:
                return base
        raise ValueError("not an HDF5 file (no superblock signature)")

    def _uint(self, pos, size):
        if pos + size > len(self.data):
            raise ValueError("HDF5 structure points past the end of the file")
        return int.from_bytes(self.data[pos:pos + size], "little")

    def addr(self, pos):
        a = self._uint(pos, self.size_offsets)
        return a if a == (1 << (8 * self.size_offsets)) - 1 else a + self.base_address

    # ---------------------------------------------------------------- object headers
    def messages(self, header):
        """``[(type, data start, data size)]`` of a version 1 object header, continuations followed."""
        if self.data[header] != 1:
            raise ValueError("HDF5 object header version %d is not supported" % self.data[header])
        count = self._uint(header + 2, 2)
        blocks = [(header + 16, self._uint(header + 8, 4))]
        out = []
        while blocks and len(out) < count:
            pos, length = blocks.pop(0)
            end = pos + length
            while pos + 8 <= end and len(out) < count:
                mtype, msize = self._uint(pos, 2), self._uint(pos + 2, 2)
                out.append((mtype, pos + 8, msize))
                if mtype == _CONTINUATION:
                    blocks.append((self.addr(pos + 8),
                                   self._uint(pos + 8 + self.size_offsets, self.size_lengths)))
                pos += 8 + msize
        return out

    # ---------------------------------------------------------------- groups
    def children(self, header, messages=None):
        """``[(name, object header address)]`` of a group kept as a symbol table."""
        for mtype, pos, _ in messages or self.messages(header):
            if mtype == _SYMBOL_TABLE:
                btree, heap = self.addr(pos), self.addr(pos + self.size_offsets)
                return self._btree_entries(btree, self._heap_data(heap))
            if mtype in (_LINK, _LINK_INFO):
                raise ValueError("HDF5 groups stored as links (libver='latest') are not supported")
        return []

    def _heap_data(self, heap):
        if self.data[heap:heap + 4] != b"HEAP":
            raise ValueError("bad HDF5 local heap signature")
        return self.addr(heap + 8 + 2 * self.size_lengths)

    def _name(self, heap_data, offset):
        start = heap_data + offset
        return self.data[start:self.data.index(b"\0", start)].decode("utf8")

    def _btree_entries(self, node, heap_data):
        if self.data[node:node + 4] != b"TREE" or self.data[node + 4] != 0:
            raise ValueError("bad HDF5 group B-tree node")
        level, used = self.data[node + 5], self._uint(node + 6, 2)
        pos = node + 8 + 2 * self.size_offsets + self.size_lengths  # past siblings and key 0
        out = []
        for _ in range(used):
            child = self.addr(pos)
            pos += self.size_offsets + self.size_lengths
            if level > 0:
                out.extend(self._btree_entries(child, heap_data))
            else:
                out.extend(self._symbol_node(child, heap_data))
        return out

    def _symbol_node(self, node, heap_data):
        if self.data[node:node + 4] != b"SNOD":
            raise ValueError("bad HDF5 symbol table node")
        entry = 2 * self.size_offsets + 24
        starts = [node + 8 + i * entry for i in range(self._uint(node + 6, 2))]
        return [(self._name(heap_data, self._uint(p, self.size_offsets)),
                 self.addr(p + self.size_offsets)) for p in starts]

    # ---------------------------------------------------------------- datasets
    def dataset(self, messages):
        found = {t: (p, s) for t, p, s in messages}
        if _FILTERS in found:
            raise ValueError("filtered (compressed) HDF5 datasets are not supported")
        shape = self._dataspace(*found[_DATASPACE])
        dtype = self._datatype(found[_DATATYPE][0])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        raw = self._layout(found[_LAYOUT][0], count * dtype.itemsize)
        if raw is None:
            return np.zeros(shape, dtype.newbyteorder("="))
        return np.frombuffer(raw, dtype, count=count).reshape(shape).astype(
            dtype.newbyteorder("="), copy=True)

    def _dataspace(self, pos, _size):
        version, rank = self.data[pos], self.data[pos + 1]
        if version == 1:
            dims = pos + 8
        elif version == 2:
            if self.data[pos + 3] == 2:  # null dataspace
                return ()
            dims = pos + 4
        else:
            raise ValueError("HDF5 dataspace version %d is not supported" % version)
        return tuple(self._uint(dims + i * self.size_lengths, self.size_lengths) for i in range(rank))

    def _datatype(self, pos):
        cls, bits0, size = self.data[pos] & 0x0F, self.data[pos + 1], self._uint(pos + 4, 4)
        order = ">" if bits0 & 1 else "<"
        if cls == 0:  # fixed point
            return np.dtype("%s%s%d" % (order, "i" if bits0 & 0x08 else "u", size))
        if cls == 1 and size in (2, 4, 8):
            return np.dtype("%sf%d" % (order, size))
        if cls == 3:  # fixed-length string
            return np.dtype("S%d" % size)
        raise ValueError("HDF5 datatype class %d (size %d) is not supported" % (cls, size))

    def _layout(self, pos, nbytes):
        version = self.data[pos]
        if version == 3:
            layout = self.data[pos + 1]
            if layout == 0:  # compact: size, then the data in the header
                size = self._uint(pos + 2, 2)
                return self.data[pos + 4:pos + 4 + size]
            if layout == 1:
                address = self.addr(pos + 2)
            else:
                raise ValueError("chunked or virtual HDF5 datasets are not supported")
        elif version in (1, 2):
            layout = self.data[pos + 2]  # after the version and the rank
            if layout != 1:
                raise ValueError("HDF5 layout class %d (layout version %d) is not supported"
                                 % (layout, version))
            address = self.addr(pos + 8)
        else:
            raise ValueError("HDF5 data layout version %d is not supported" % version)
        if address == _UNDEFINED or nbytes == 0:  # never written: HDF5 reads it as zeros
            return None
        if address + nbytes > len(self.data):
            raise ValueError("HDF5 dataset data lie past the end of the file")
        return self.data[address:address + nbytes]


def read_hdf5_datasets(path):
    """``OrderedDict`` of every dataset in the HDF5 file at ``path``: ``"a/b/name"`` -> numpy array.

    Groups are walked depth first in the order of their symbol tables (names sorted, as HDF5
    keeps them). Arrays are new, writable and in native byte order.
    """
    with open(path, "rb") as f:
        h5 = _File(f.read())
    out = OrderedDict()

    def walk(prefix, header):
        messages = h5.messages(header)
        types = {t for t, _, _ in messages}
        if _DATASPACE in types and _LAYOUT in types:
            out[prefix] = h5.dataset(messages)
            return
        for name, child in h5.children(header, messages):
            walk("%s/%s" % (prefix, name) if prefix else name, child)

    walk("", h5.addr(h5.root_entry + h5.size_offsets))
    return out
