"""Synthetic "coloured shapes" classification datasets with known ground truth.

Every image has a noisy, textured, low-saturation grey background (plus a few grey distractor blobs)
and exactly one coloured object (circle, square or triangle, side ~20-35% of the image) fully inside
the frame. The object's COLOUR decides the class; its shape, size and position are random. Because the
object's pixels are known, explanation methods can be scored against a ground-truth mask. A class
named ``"none"`` (:data:`NO_OBJECT`) has images without an object: with it, a model cannot learn
one colour class as "none of the other colours", so every class provably depends on its object.

Optionally a "watermark" shortcut (a small black/white checker in the bottom-right corner) is stamped
into the *training* images of one class only (and, with ``watermark_splits=("train", "val")``, into its
validation images too: then accuracy cannot tell a model that uses the shortcut from one that does
not, but an explanation can), so that a model may learn the shortcut instead of the object.

Layout written under ``root`` (PaddleX 2.x ImageNet format)::

    root/labels.txt                 one class name per line (line i = label id i)
    root/train_list.txt             "red/train_0.png 0" ...
    root/val_list.txt               "red/val_0.png 0" ...
    root/<class>/<split>_<i>.png    RGB image (PNG)
    root/masks/<class>/<split>_<i>.png  object mask, 0/255
    root/meta.json                  generation parameters and per-image metadata

Example::

    import paddlex_interpret          # always before paddlex (Paddle 2.6 import shim)
    import paddlex as pdx
    from pxi_testing.synthetic import make_shapes_dataset

    ds = make_shapes_dataset("/tmp/shapes", num_train_per_class=40, num_val_per_class=10)
    T = pdx.transforms
    tf = T.Compose([T.Resize(64), T.Normalize()])
    train = pdx.datasets.ImageNet(ds.root, ds.train_list, ds.labels_file, tf, shuffle=True)
    path, label, mask_path = ds.val_items()[0]
    mask = ds.mask_for(path)          # bool array (H, W), True on the object
"""
import json
import os
import os.path as osp
import shutil
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from .drawing import (COLOURS, NO_OBJECT, SHAPES, draw_image, stamp_watermark,
                      watermark_box_for, watermark_pattern)

__all__ = ["COLOURS", "SHAPES", "NO_OBJECT", "ShapesDataset", "make_shapes_dataset", "watermark_box_for",
           "watermark_pattern", "stamp_watermark"]

_SPLITS = {"train": 0, "val": 1}
_FORMAT_VERSION = 2  # 2: the watermark's checker cells are half the box side


@dataclass
class ShapesDataset:
    """A generated dataset (see :func:`make_shapes_dataset`). Paths are absolute."""

    root: str
    train_list: str
    val_list: str
    labels_file: str
    labels: List[str]
    image_size: int = 64
    seed: int = 0
    watermark_class: Optional[str] = None
    #: (x0, y0, x1, y1), exclusive ends, of the watermark; None when no watermark was requested.
    watermark_box: Optional[Tuple[int, int, int, int]] = None
    #: relative paths (as in the list files) of the images that carry the watermark.
    watermarked: List[str] = field(default_factory=list)
    #: per relative image path: {"label", "shape", "bbox": [x0, y0, x1, y1], "colour", "watermark"}.
    meta: dict = field(default_factory=dict, repr=False)

    @property
    def num_classes(self):
        return len(self.labels)

    def _rel(self, image_path):
        p = osp.abspath(image_path)
        root = osp.abspath(self.root)
        if p.startswith(root + os.sep):
            return osp.relpath(p, root).replace(os.sep, "/")
        return str(image_path).replace(os.sep, "/")

    def mask_path_for(self, image_path):
        """Absolute path of the ground-truth mask PNG of an image (absolute or root-relative path)."""
        return osp.join(self.root, "masks", *self._rel(image_path).split("/"))

    def mask_for(self, image_path):
        """Ground-truth object mask of an image as a bool array (H, W)."""
        from PIL import Image

        with Image.open(self.mask_path_for(image_path)) as im:
            return np.asarray(im.convert("L")) > 127

    def _items(self, list_file):
        items = []
        with open(list_file) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 2:
                    continue
                rel, label = parts
                items.append((osp.join(self.root, rel), int(label), self.mask_path_for(rel)))
        return items

    def train_items(self):
        """List of ``(image_path, label_id, mask_path)`` of the training split (absolute paths)."""
        return self._items(self.train_list)

    def val_items(self):
        """List of ``(image_path, label_id, mask_path)`` of the validation split (absolute paths)."""
        return self._items(self.val_list)


def _write_png(path, rgb_or_grey):
    import cv2

    arr = rgb_or_grey
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[..., ::-1])  # RGB -> BGR for cv2
    if not cv2.imwrite(path, arr, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise IOError("could not write %s" % path)


# ----------------------------------------------------------------------------------------------


def make_shapes_dataset(root,
                        num_train_per_class=40,
                        num_val_per_class=10,
                        image_size=64,
                        classes=("red", "green", "blue"),
                        seed=0,
                        watermark_class=None,
                        watermark_fraction=1.0,
                        overwrite=False,
                        watermark_splits=("train",)):
    """Generate (or reuse) a coloured-shapes dataset under ``root`` and describe it.

    Args:
        root: output directory (created).
        num_train_per_class, num_val_per_class: images per class in each split.
        image_size: side of the square images in pixels (>= 16).
        classes: colour names from :data:`COLOURS` or :data:`NO_OBJECT` (2 to 9 distinct);
            line order = label ids.
        seed: generation seed. Each image is drawn from its own generator seeded by
            ``(seed, split, class, index)``, so output is byte-identical for the same arguments and
            earlier images do not change when the counts grow.
        watermark_class: class name whose TRAIN images get the corner checkerboard (None: none).
            Objects are kept clear of the watermark box in every image when a watermark is requested.
        watermark_fraction: fraction (0..1) of that class's images (per split) that get the
            watermark.
        watermark_splits: the splits whose images of ``watermark_class`` get it: ``("train",)``
            (default) or ``("train", "val")`` (the shortcut is then invisible to accuracy).
        overwrite: if ``root`` already holds a dataset generated with the same arguments it is
            reused unless ``overwrite``; a dataset with different arguments raises
            ``FileExistsError`` unless ``overwrite`` (then the generated files -- folders named
            after :data:`COLOURS`, ``masks/``, the list files and ``meta.json`` -- are removed and
            the dataset is regenerated).

    Returns:
        :class:`ShapesDataset`.
    """
    classes, image_size, watermark_splits = _checked(classes, image_size, watermark_class,
                                                     watermark_fraction, watermark_splits)
    root = osp.abspath(str(root))
    params = {
        "version": _FORMAT_VERSION,
        "num_train_per_class": int(num_train_per_class),
        "num_val_per_class": int(num_val_per_class),
        "image_size": image_size,
        "classes": classes,
        "seed": int(seed),
        "watermark_class": watermark_class,
        "watermark_fraction": float(watermark_fraction),
    }
    if watermark_splits != ("train",):  # recorded only when not the default (older metadata)
        params["watermark_splits"] = list(watermark_splits)
    wm_box = watermark_box_for(image_size) if watermark_class is not None else None
    meta_file = osp.join(root, "meta.json")

    if osp.exists(meta_file) and not overwrite:
        with open(meta_file) as f:
            stored = json.load(f)
        if stored.get("params") == params:
            return _dataset_from_meta(root, stored)
        raise FileExistsError("%s holds a dataset generated with other arguments; pass overwrite=True"
                              % root)
    if overwrite and osp.isdir(root):
        _remove_generated(root, classes)
    os.makedirs(root, exist_ok=True)
    counts = {"train": int(num_train_per_class), "val": int(num_val_per_class)}
    images, lines, watermarked = {}, {"train": [], "val": []}, []
    for label, cls in enumerate(classes):
        wm_idx = _watermarked_indices(cls, label, watermark_class, watermark_fraction,
                                      watermark_splits, counts, seed)
        _write_class(root, cls, label, counts, wm_idx, wm_box, image_size, seed, images, lines,
                     watermarked)
    with open(osp.join(root, "labels.txt"), "w") as f:
        f.write("".join(c + "\n" for c in classes))
    for split in ("train", "val"):
        with open(osp.join(root, "%s_list.txt" % split), "w") as f:
            f.write("".join(l + "\n" for l in lines[split]))
    stored = {
        "params": params,
        "watermark_box": list(wm_box) if wm_box is not None else None,
        "watermarked": watermarked,
        "images": images,
    }
    with open(meta_file, "w") as f:
        json.dump(stored, f, indent=1, sort_keys=True)
    return _dataset_from_meta(root, stored)


def _checked(classes, image_size, watermark_class, watermark_fraction, watermark_splits):
    """``(classes, image_size, watermark_splits)`` normalised; ValueError naming a bad one."""
    classes = [str(c) for c in classes]
    unknown = [c for c in classes if c not in COLOURS and c != NO_OBJECT]
    if unknown:
        raise ValueError("unknown colour class(es) %s; choose from %s or %r"
                         % (unknown, sorted(COLOURS), NO_OBJECT))
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError("classes must be >= 2 distinct colour names, got %s" % classes)
    image_size = int(image_size)
    if image_size < 16:
        raise ValueError("image_size must be >= 16")
    if watermark_class is not None and watermark_class not in classes:
        raise ValueError("watermark_class %r is not one of %s" % (watermark_class, classes))
    if not 0.0 <= float(watermark_fraction) <= 1.0:
        raise ValueError("watermark_fraction must be in [0, 1]")
    if isinstance(watermark_splits, str):
        watermark_splits = (watermark_splits,)
    watermark_splits = tuple(sorted(set(watermark_splits), key=list(_SPLITS).index)) \
        if all(sp in _SPLITS for sp in watermark_splits) else None
    if not watermark_splits:
        raise ValueError("watermark_splits must name 'train' and/or 'val'")
    return classes, image_size, watermark_splits


def _remove_generated(root, classes):
    """Remove what a previous generation wrote under ``root`` (and nothing else)."""
    for name in ["masks", "meta.json", "labels.txt", "train_list.txt", "val_list.txt"] + classes:
        p = osp.join(root, name)
        if osp.isdir(p):
            shutil.rmtree(p)
        elif osp.exists(p):
            os.remove(p)
    for name in list(COLOURS) + [NO_OBJECT]:  # class folders of a previous generation
        p = osp.join(root, name)
        if osp.isdir(p):
            shutil.rmtree(p)


def _watermarked_indices(cls, label, watermark_class, watermark_fraction, watermark_splits,
                         counts, seed):
    """Per split, the indices of ``cls``'s images that get the watermark (seeded)."""
    wm_idx = {"train": set(), "val": set()}
    for split in watermark_splits:
        if cls == watermark_class and counts[split] > 0:
            k = int(round(float(watermark_fraction) * counts[split]))
            wm_rng = np.random.default_rng([int(seed), 7, label] + ([] if split == "train"
                                                                      else [1]))
            wm_idx[split] = set(int(i) for i in wm_rng.choice(counts[split], size=k,
                                                              replace=False))
    return wm_idx


def _write_class(root, cls, label, counts, wm_idx, wm_box, image_size, seed, images, lines,
                 watermarked):
    """Draw and write every image (and mask) of one class; record them."""
    os.makedirs(osp.join(root, cls), exist_ok=True)
    os.makedirs(osp.join(root, "masks", cls), exist_ok=True)
    for split, split_id in _SPLITS.items():
        for i in range(counts[split]):
            rng = np.random.default_rng([int(seed), split_id, label, i])
            img, mask, info = draw_image(rng, image_size, COLOURS.get(cls), avoid_box=wm_box)
            rel = "%s/%s_%d.png" % (cls, split, i)
            has_wm = i in wm_idx[split]
            if has_wm:
                img = stamp_watermark(img, wm_box)
                watermarked.append(rel)
            _write_png(osp.join(root, cls, "%s_%d.png" % (split, i)), img)
            _write_png(osp.join(root, "masks", cls, "%s_%d.png" % (split, i)),
                       mask.astype(np.uint8) * 255)
            info.update(label=label, colour=cls, watermark=has_wm)
            images[rel] = info
            lines[split].append("%s %d" % (rel, label))


def _dataset_from_meta(root, stored):
    p = stored["params"]
    box = stored.get("watermark_box")
    return ShapesDataset(
        root=root,
        train_list=osp.join(root, "train_list.txt"),
        val_list=osp.join(root, "val_list.txt"),
        labels_file=osp.join(root, "labels.txt"),
        labels=list(p["classes"]),
        image_size=int(p["image_size"]),
        seed=int(p["seed"]),
        watermark_class=p["watermark_class"],
        watermark_box=tuple(box) if box is not None else None,
        watermarked=list(stored.get("watermarked", [])),
        meta=dict(stored.get("images", {})),
    )
