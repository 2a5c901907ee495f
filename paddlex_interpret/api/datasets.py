"""The one dataset reader: a dataset in any form a user has turns into ``(items, labels, class
names)``, checked against the model's classes.

Accepted: a ``paddlex.datasets.ImageNet`` (its ``file_list`` and ``labels``), a directory (its
image files, recursively, sorted), a list of image paths or arrays, a list of ``(image, label)``
pairs, or an ``(N, H, W, 3)`` array. :func:`dataset_from_dir` reads a dataset directory's
evaluation list (PaddleX 3 / PaddleClas ``val.txt`` + ``label.txt``, PaddleX 2 ``val_list.txt`` +
``labels.txt``) with its class names.

Example::

    from paddlex_interpret.api.datasets import resolve_dataset
    items, labels, names = resolve_dataset(eval_dataset, class_names=model.labels)
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..errors import DatasetError

__all__ = ["resolve_dataset", "dataset_from_dir", "IMAGE_EXTS", "LAYOUTS"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def resolve_dataset(dataset: Any, class_names: Sequence[str] | None = None,
                    num_classes: int | None = None
                    ) -> tuple[list[Any], list[int] | None, list[str] | None]:
    """Turn a dataset into ``(items, labels or None, dataset class names or None)``.

    ``dataset`` is a ``paddlex.datasets.ImageNet`` (its ``file_list`` and ``labels``), a directory
    (its image files, recursively, sorted), a list of image paths or arrays, a list of
    ``(image, label)`` pairs, or an ``(N, H, W, 3)`` array.

    Raises:
        DatasetError: None or empty, or its class names / label ids do not fit the model's.
    """
    if dataset is None:
        raise DatasetError("a dataset is needed to learn the NormLIME weights: pass a "
                           "paddlex.datasets.ImageNet, a folder, or a list of images")
    names = None
    labels = None
    if hasattr(dataset, "file_list") and hasattr(dataset, "labels"):  # paddlex.datasets.ImageNet
        names = [str(n) for n in dataset.labels] if dataset.labels is not None else None
        items, labels = [], []
        for entry in dataset.file_list:
            if isinstance(entry, dict):
                items.append(entry["image"])
                labels.append(int(np.asarray(entry.get("label", -1))))
            else:  # PaddleX 1.x: (path, label)
                items.append(entry[0])
                labels.append(int(entry[1]))
    elif isinstance(dataset, (str, bytes, os.PathLike)):
        root = os.fsdecode(dataset)
        if not os.path.isdir(root):
            raise DatasetError("dataset %r is not a directory (pass a list for single images)"
                               % root)
        items = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                       if f.lower().endswith(IMAGE_EXTS))
    elif isinstance(dataset, np.ndarray):
        if dataset.ndim == 3:
            dataset = dataset[None]
        if dataset.ndim != 4:
            raise DatasetError("an array dataset must be (N, H, W, C), got %s" % (dataset.shape,))
        items = [im for im in dataset]
    else:
        try:
            items = list(dataset)
        except TypeError:
            raise DatasetError("unsupported dataset type %s" % type(dataset).__name__) from None
        if items and all(isinstance(it, tuple) and len(it) == 2 for it in items):
            labels = [int(l) for _, l in items]
            items = [x for x, _ in items]
    if not items:
        raise DatasetError("the dataset is empty: NormLIME needs images to learn from")
    if names is not None and class_names is not None and list(names) != list(class_names):
        raise DatasetError("the dataset's classes %s do not match the model's %s"
                           % (names, list(class_names)))
    if labels is not None:
        if len(labels) and any(l < 0 for l in labels):
            raise DatasetError("the dataset has negative label ids")
        n = num_classes if num_classes is not None else (len(class_names) if class_names else None)
        if n is not None and labels and max(labels) >= n:
            raise DatasetError("the dataset has label id %d but the model has %d classes"
                               % (max(labels), n))
    return items, labels, names


#: ``(file list, label list, label lines hold "id name")`` of the dataset layouts a directory may
#: have, in the order they are looked for: PaddleX 3 / PaddleClas's ClsDataset, PaddleX 2's ImageNet
LAYOUTS = (("val.txt", "label.txt", True), ("val_list.txt", "labels.txt", False))


def _read_names(path: str, with_ids: bool) -> list[str]:
    names: list[str] = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if with_ids:
                parts = line.split(None, 1)
                if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names):
                    raise DatasetError("%s:%d: expected '<id> <name>' with ids 0, 1, 2... in "
                                       "order, got %r" % (path, n, line))
                line = parts[1]
            names.append(line)
    return names


def _read_pairs(root: str, path: str) -> list[tuple[str, int]]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            parts = line.strip().rsplit(None, 1)
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise DatasetError("%s:%d: expected '<image path> <label id>', got %r"
                                   % (path, n, line.strip()))
            pairs.append((os.path.join(root, parts[0]), int(parts[1])))
    return pairs


def dataset_from_dir(root: str | os.PathLike[str], file_list: str | None = None,
                     label_list: str | None = None) -> tuple[Any, list[str] | None, str]:
    """``(dataset, class names or None, layout)`` of a dataset directory, for
    :func:`resolve_dataset`: ``(image path, label)`` pairs of its evaluation list, or the
    directory itself (a folder of images, unlabelled).

    The layouts: PaddleX 3 / PaddleClas (``val.txt`` of ``"<path> <id>"`` lines and ``label.txt``
    of ``"<id> <name>"`` lines), PaddleX 2 (``val_list.txt`` and ``labels.txt``, a name per line),
    looked for in that order; ``file_list`` / ``label_list`` (relative to ``root``) name others
    (a label list of ``"<id> <name>"`` lines or of names). Paths in a list are relative to
    ``root``.

    Raises:
        DatasetError: ``root`` is not a directory, or a list file is malformed.
    """
    root = os.fsdecode(root)
    if not os.path.isdir(root):
        raise DatasetError("dataset %r is not a directory" % root)
    layouts: Sequence[tuple[str, str, bool | None]] = LAYOUTS
    if file_list is not None or label_list is not None:
        layouts = [(file_list or "val.txt", label_list or "label.txt", None)]
    for files, labels, with_ids in layouts:
        files, labels = os.path.join(root, files), os.path.join(root, labels)
        if not (os.path.isfile(files) and os.path.isfile(labels)):
            continue
        if with_ids is None:  # named lists: "<id> <name>" lines or a name per line
            with open(labels, encoding="utf-8") as f:
                first = f.readline().split(None, 1)
            with_ids = len(first) == 2 and first[0] == "0"
        layout = "ClsDataset" if with_ids else "ImageNet"
        return _read_pairs(root, files), _read_names(labels, with_ids), layout
    if file_list is not None or label_list is not None:
        raise DatasetError("dataset %r has no %s with %s" % (root, file_list, label_list))
    return root, None, "folder"
