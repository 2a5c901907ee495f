"""Synthetic "coloured shapes" classification datasets with known ground truth.

Every image has a noisy, textured, low-saturation grey background (plus a few grey distractor blobs)
and exactly one coloured object (circle, square or triangle, side ~20-35% of the image) fully inside
the frame. The object's COLOUR decides the class; its shape, size and position are random. Because the
object's pixels are known, explanation methods can be scored against a ground-truth mask.

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
    from paddlex_interpret.synthetic import make_shapes_dataset

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
from typing import List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["COLOURS", "SHAPES", "ShapesDataset", "make_shapes_dataset", "watermark_box_for",
           "watermark_pattern", "stamp_watermark"]

#: Named object colours (RGB). Any of these names can be used as a class.
COLOURS = {
    "red": (215, 35, 35),
    "green": (35, 185, 55),
    "blue": (40, 70, 225),
    "yellow": (230, 215, 30),
    "magenta": (210, 40, 205),
    "cyan": (30, 200, 215),
    "orange": (245, 135, 20),
    "purple": (120, 40, 180),
}

#: Object shapes drawn (chosen uniformly at random per image).
SHAPES = ("circle", "square", "triangle")

_SPLITS = {"train": 0, "val": 1}
_FORMAT_VERSION = 2  # 2: the watermark's checker cells are half the box side


def watermark_box_for(image_size):
    """Watermark box ``(x0, y0, x1, y1)`` (exclusive ends) for a square image of side ``image_size``.

    6x6 pixels, 2 pixels from the bottom-right corner at 64 px (scaled with the image size).
    """
    s = max(4, int(image_size) // 10)
    s += s % 2  # even, so the checkerboard is balanced
    m = max(1, int(image_size) // 32)
    x1 = y1 = int(image_size) - m
    return (x1 - s, y1 - s, x1, y1)


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


# ----------------------------------------------------------------------------------------------
# drawing (vectorised on coordinate grids)


def _smooth_noise(rng, size, cells):
    """Low-frequency noise in [-1, 1]: a random coarse grid upsampled bilinearly."""
    g = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))
    t = np.linspace(0.0, cells, size)
    i0 = np.minimum(t.astype(int), cells - 1)
    f = t - i0
    rows = g[i0] * (1 - f)[:, None] + g[i0 + 1] * f[:, None]  # (size, cells+1)
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def _shape_mask(shape, cx, cy, half, yy, xx):
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= half ** 2
    if shape == "square":
        return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    # triangle pointing up, inscribed in the box [cx-half, cx+half] x [cy-half, cy+half]
    top = cy - half
    bottom = cy + half
    rel = (yy - top) / (2.0 * half)  # 0 at the apex, 1 at the base
    return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= rel * half)


def _draw_image(rng, image_size, colour, avoid_box=None):
    """Return (rgb uint8 (H, W, 3), mask bool (H, W), info dict)."""
    n = image_size
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) + 0.5

    # background: grey level + smooth texture + fine luminance noise + a little chroma noise
    base = rng.uniform(95.0, 165.0)
    lum = base + 28.0 * _smooth_noise(rng, n, int(rng.integers(3, 7))) + rng.normal(0.0, 10.0, (n, n))
    img = lum[..., None] + rng.normal(0.0, 4.0, (n, n, 3))

    # grey distractor blobs (ellipses)
    for _ in range(int(rng.integers(1, 4))):
        ex, ey = rng.uniform(0, n, size=2)
        ax, ay = rng.uniform(0.04, 0.12, size=2) * n
        blob = ((xx - ex) / ax) ** 2 + ((yy - ey) / ay) ** 2 <= 1.0
        img[blob] += rng.uniform(-60.0, 60.0)

    # the object
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    side = rng.uniform(0.20, 0.35) * n
    half = side / 2.0
    for _ in range(100):
        cx, cy = rng.uniform(half + 1.0, n - half - 1.0, size=2)
        x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
        if avoid_box is None:
            break
        bx0, by0, bx1, by1 = avoid_box
        if x1 < bx0 - 1 or y1 < by0 - 1 or x0 > bx1 or y0 > by1:
            break
    mask = _shape_mask(shape, cx, cy, half, yy, xx)
    rgb = np.asarray(colour, np.float32) + rng.uniform(-15.0, 15.0, size=3)
    shading = rng.normal(0.0, 6.0, (n, n))[..., None]
    img = np.where(mask[..., None], rgb[None, None, :] + shading, img)

    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    info = {
        "shape": shape,
        "bbox": [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1],
    }
    return img, mask, info


def watermark_pattern(box):
    """The watermark inside ``box``: a bool array, True where white. A 2x2 black/white checker
    (cells of half the box side: 3 px at 64 px). Cells wider than one pixel matter: a
    one-pixel checker is invisible to a network whose first layer has stride 2."""
    x0, y0, x1, y1 = box
    cell = max(1, (x1 - x0) // 2)
    yy, xx = np.mgrid[0:y1 - y0, 0:x1 - x0]
    return (yy // cell + xx // cell) % 2 == 0


def stamp_watermark(img, box):
    """Stamp the black/white checker watermark (:func:`watermark_pattern`) into ``img`` (uint8
    HWC RGB) at ``box``; returns ``img``."""
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = np.where(watermark_pattern(box)[..., None], np.uint8(255), np.uint8(0))
    return img


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
        classes: colour names from :data:`COLOURS` (2 to 8 distinct); line order = label ids.
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
    classes = [str(c) for c in classes]
    unknown = [c for c in classes if c not in COLOURS]
    if unknown:
        raise ValueError("unknown colour class(es) %s; choose from %s" % (unknown, sorted(COLOURS)))
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
        for name in ["masks", "meta.json", "labels.txt", "train_list.txt", "val_list.txt"] + classes:
            p = osp.join(root, name)
            if osp.isdir(p):
                shutil.rmtree(p)
            elif osp.exists(p):
                os.remove(p)
        for name in COLOURS:  # class folders of a previous generation
            p = osp.join(root, name)
            if osp.isdir(p):
                shutil.rmtree(p)

    os.makedirs(root, exist_ok=True)
    images = {}
    lines = {"train": [], "val": []}
    watermarked = []
    counts = {"train": int(num_train_per_class), "val": int(num_val_per_class)}
    for label, cls in enumerate(classes):
        os.makedirs(osp.join(root, cls), exist_ok=True)
        os.makedirs(osp.join(root, "masks", cls), exist_ok=True)
        wm_idx = {"train": set(), "val": set()}
        for split in watermark_splits:
            if cls == watermark_class and counts[split] > 0:
                k = int(round(float(watermark_fraction) * counts[split]))
                wm_rng = np.random.default_rng([int(seed), 7, label] + ([] if split == "train"
                                                                          else [1]))
                wm_idx[split] = set(int(i) for i in wm_rng.choice(counts[split], size=k,
                                                                  replace=False))
        for split, split_id in _SPLITS.items():
            for i in range(counts[split]):
                rng = np.random.default_rng([int(seed), split_id, label, i])
                img, mask, info = _draw_image(rng, image_size, COLOURS[cls], avoid_box=wm_box)
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
