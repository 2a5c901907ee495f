"""Datasets with a shortcut stamped into every image of one class (training and validation), with
the stamp known: what the shortcut alarm's tests and benchmark train on.

Kinds of shortcut, each at a fixed place (:data:`KINDS`): ``'watermark'`` (the demo's black/white
checker near the bottom-right corner), ``'patch'`` (a magenta square in the top-left corner) and
``'border'`` (a yellow frame around the image). :func:`stamp` puts one on an image and
:func:`shortcut_mask` says which pixels it takes.

Data:

* :func:`shapes_with_shortcut`: the generated coloured shapes (the class is the colour of one
  object). With ``kind='watermark'`` and the defaults these are the demo's images exactly
  (:func:`~pxi_testing.synthetic.make_shapes_dataset` with the watermark on blue,
  training and validation). ``only_cue=True`` gives the shortcut class objects of the other
  classes' colours, so that the shortcut is the one thing that tells it: a model that learns the
  class reads the shortcut.
* :func:`fashion_mnist_with_shortcut`: real photos, a class-balanced subset of Fashion-MNIST from
  Debian's ``dataset-fashion-mnist`` (gzipped idx files in ``/usr/share/datasets/fashion-mnist``;
  ``FASHION_MNIST_DIR`` overrides), 28 px grey resized to ``image_size`` RGB; by default three
  classes that look alike (T-shirt, pullover, shirt), where a shortcut is easier than the cloth.

Both write PaddleX's ImageNet layout (``labels.txt``, ``train_list.txt``, ``val_list.txt``, PNGs)
and return a :class:`ShortcutDataset`.

Example::

    ds = shapes_with_shortcut("/tmp/patch0", kind="patch", shortcut_class="red", seed=0)
    stamped = stamp(ds.kind, load_image(ds.val_items()[0][0]))
"""
import gzip
import os
import struct
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .drawing import COLOURS, draw_image, stamp_watermark, watermark_box_for

__all__ = ["KINDS", "stamp", "shortcut_mask", "ShortcutDataset", "shapes_with_shortcut",
           "fashion_mnist_with_shortcut", "fashion_mnist_available", "FASHION_MNIST_CLASSES"]

KINDS = ("watermark", "patch", "border")
PATCH_COLOUR = (255, 0, 255)
BORDER_COLOUR = (230, 215, 30)
FASHION_MNIST_CLASSES = ("T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle_boot")
_SPLITS = {"train": 0, "val": 1}


def _patch_box(size):
    s = max(3, size // 8)
    return 0, 0, s, s


def shortcut_mask(kind, size):
    """``(size, size)`` bool: the pixels a ``kind`` stamp takes in a square image."""
    mask = np.zeros((size, size), bool)
    if kind == "border":
        w = max(1, size // 32)
        mask[:w], mask[-w:], mask[:, :w], mask[:, -w:] = True, True, True, True
        return mask
    x0, y0, x1, y1 = {"watermark": watermark_box_for, "patch": _patch_box}[_kind(kind)](size)
    mask[y0:y1, x0:x1] = True
    return mask


def _kind(kind):
    if kind not in KINDS:
        raise ValueError("unknown shortcut kind %r; the kinds are %s" % (kind, KINDS))
    return kind


def stamp(kind, img):
    """A copy of ``img`` (uint8 RGB, square) with the ``kind`` shortcut stamped on."""
    img = np.array(img, dtype=np.uint8, copy=True)
    size = img.shape[0]
    if _kind(kind) == "watermark":
        return stamp_watermark(img, watermark_box_for(size))
    img[shortcut_mask(kind, size)] = PATCH_COLOUR if kind == "patch" else BORDER_COLOUR
    return img


@dataclass
class ShortcutDataset:
    """A written dataset (paths absolute); ``kind`` and ``shortcut_class`` are None for a clean
    one."""

    root: str
    labels: List[str]
    image_size: int
    kind: Optional[str] = None
    shortcut_class: Optional[str] = None

    @property
    def train_list(self):
        return os.path.join(self.root, "train_list.txt")

    @property
    def val_list(self):
        return os.path.join(self.root, "val_list.txt")

    @property
    def labels_file(self):
        return os.path.join(self.root, "labels.txt")

    def _items(self, path):
        with open(path) as f:
            return [(os.path.join(self.root, rel), int(label), None)
                    for rel, label in (line.split() for line in f if line.strip())]

    def train_items(self):
        """``[(path, label, None)]`` of the training split (as ShapesDataset's)."""
        return self._items(self.train_list)

    def val_items(self):
        return self._items(self.val_list)

    def mask(self):
        """The shortcut's pixels (None for a clean dataset)."""
        return None if self.kind is None else shortcut_mask(self.kind, self.image_size)


def _write(root, splits, labels, size, kind, shortcut_class):
    """Write ``splits`` (``{split: [(rgb image, label id)]}``), stamping ``kind`` on the images of
    ``shortcut_class``; returns the :class:`ShortcutDataset`."""
    import cv2

    target = labels.index(shortcut_class) if kind is not None else None
    for name in labels:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    for split, items in splits.items():
        lines = []
        for i, (img, y) in enumerate(items):
            if y == target:
                img = stamp(kind, img)
            rel = "%s/%s_%d.png" % (labels[y], split, i)
            if not cv2.imwrite(os.path.join(root, rel), np.ascontiguousarray(img[:, :, ::-1])):
                raise IOError("could not write %s" % os.path.join(root, rel))
            lines.append("%s %d\n" % (rel, y))
        with open(os.path.join(root, "%s_list.txt" % split), "w") as f:
            f.writelines(lines)
    with open(os.path.join(root, "labels.txt"), "w") as f:
        f.writelines(n + "\n" for n in labels)
    return ShortcutDataset(os.path.abspath(root), list(labels), size, kind,
                           shortcut_class if kind is not None else None)


def shapes_with_shortcut(root, kind=None, shortcut_class="blue", classes=("red", "green", "blue"),
                         num_train_per_class=80, num_val_per_class=20, image_size=64, seed=0,
                         only_cue=False):
    """Coloured shapes with the ``kind`` shortcut (None: clean) on ``shortcut_class`` (see the
    module docstring). Each image is drawn from its own generator seeded by ``(seed, split,
    class, index)`` with objects kept clear of the watermark's box, as the demo's."""
    if kind is not None:
        _kind(kind)
        if shortcut_class not in classes:
            raise ValueError("shortcut_class %r is not one of %s" % (shortcut_class, classes))
    avoid = watermark_box_for(image_size)
    counts = {"train": num_train_per_class, "val": num_val_per_class}
    splits = {}
    for split, n in counts.items():
        items = []
        for label, name in enumerate(classes):
            for i in range(n):
                rng = np.random.default_rng([int(seed), _SPLITS[split], label, i])
                colour = COLOURS[name]
                if only_cue and name == shortcut_class:
                    colour = COLOURS[[c for c in classes if c != name][i % (len(classes) - 1)]]
                img, _, _ = draw_image(rng, image_size, colour, avoid_box=avoid)
                items.append((img, label))
        splits[split] = items
    return _write(root, splits, list(classes), image_size, kind, shortcut_class)


def _fmnist_dir(data_dir=None):
    return data_dir or os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")


def fashion_mnist_available(data_dir=None):
    """Whether Debian's ``dataset-fashion-mnist`` files are there."""
    return os.path.exists(os.path.join(_fmnist_dir(data_dir), "train-images-idx3-ubyte.gz"))


def read_idx(path):
    """An idx file (optionally gzipped) as a numpy array: magic (2 zero bytes, dtype code 0x08 =
    uint8, number of dimensions), big-endian int32 sizes, then the data."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        zero, dtype, ndim = struct.unpack(">HBB", f.read(4))
        if zero != 0 or dtype != 0x08:
            raise ValueError("%s: not a uint8 idx file" % path)
        shape = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(shape)


def fashion_mnist_with_shortcut(root, kind=None, shortcut_class="Shirt",
                                classes=("T-shirt_top", "Pullover", "Shirt"),
                                num_train_per_class=100, num_val_per_class=30, image_size=32,
                                seed=0, data_dir=None):
    """A class-balanced, seeded subset of Fashion-MNIST (training images from its training set,
    validation images from its test set) with the ``kind`` shortcut (None: clean) on
    ``shortcut_class``. Raises ``FileNotFoundError`` naming the Debian package when the files
    are missing."""
    import cv2

    directory = _fmnist_dir(data_dir)
    if not fashion_mnist_available(directory):
        raise FileNotFoundError("Fashion-MNIST is not in %s: apt-get install "
                                "dataset-fashion-mnist (or set FASHION_MNIST_DIR)" % directory)
    unknown = [c for c in classes if c not in FASHION_MNIST_CLASSES]
    if unknown:
        raise ValueError("unknown Fashion-MNIST classes %s; the classes are %s"
                         % (unknown, FASHION_MNIST_CLASSES))
    rng = np.random.default_rng(seed)
    files = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       num_train_per_class),
             "val": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                     num_val_per_class)}
    splits = {}
    for split, (img_file, label_file, n) in files.items():
        images = read_idx(os.path.join(directory, img_file))
        labels = read_idx(os.path.join(directory, label_file))
        items = []
        for label, name in enumerate(classes):
            source = FASHION_MNIST_CLASSES.index(name)
            for i in rng.permutation(np.flatnonzero(labels == source))[:n]:
                grey = cv2.resize(images[i], (image_size, image_size),
                                  interpolation=cv2.INTER_LINEAR)
                items.append((np.repeat(grey[..., None], 3, axis=2), label))
        splits[split] = items
    return _write(root, splits, list(classes), image_size, kind, shortcut_class)
