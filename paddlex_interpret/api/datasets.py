"""The one dataset reader: a dataset in any form a user has turns into ``(items, labels, class
names)``, checked against the model's classes.

Accepted: a ``paddlex.datasets.ImageNet`` (its ``file_list`` and ``labels``), a directory (its
image files, recursively, sorted), a list of image paths or arrays, a list of ``(image, label)``
pairs, or an ``(N, H, W, 3)`` array.

Example::

    from paddlex_interpret.api.datasets import resolve_dataset
    items, labels, names = resolve_dataset(eval_dataset, class_names=model.labels)
"""
import os

import numpy as np

from ..errors import DatasetError

__all__ = ["resolve_dataset", "IMAGE_EXTS"]

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def resolve_dataset(dataset, class_names=None, num_classes=None):
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
