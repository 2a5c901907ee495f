"""One pass over the chosen images of a dataset, shared by the NormLIME builders: the seeded,
class-stratified choice, a loader over this rank's share that skips unreadable items, a
predictor that streams them through the model a batch at a time, and the dataset's mean colour.

Example::

    from paddlex_interpret.core.normlime.dataset_pass import ShareLoader, select_stratified
    indices = select_stratified(len(items), labels, max_images=60, seed=0)
    for position, index, image in ShareLoader(items, indices, None, False, "NormLIME"):
        ...
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt

from ..classifier import ClassifierLike, as_classifier
from ..images import describe_item, load_item
from ..sharding import LOCAL, Collective, is_local, positions

__all__ = ["select_stratified", "ShareLoader", "report_skipped", "image_colour", "mean_colour",
           "as_items", "label_names", "StreamingPredictor"]

logger = logging.getLogger("paddlex_interpret")


def select_stratified(n_items: int, labels: npt.ArrayLike | None = None,
                      max_images: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices (sorted) of at most ``max_images`` of ``n_items`` items.

    With ``labels``, classes take turns (round robin over classes, a seeded random order inside
    each class), so every class gets an equal share while it has images; without, a seeded random
    subset. All items when ``max_images`` is None or >= ``n_items``.
    """
    n_items = int(n_items)
    if max_images is None or int(max_images) >= n_items:
        return np.arange(n_items, dtype=np.int64)
    max_images = int(max_images)
    if max_images < 1:
        raise ValueError("max_images must be >= 1, got %r" % max_images)
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n_items, max_images, replace=False)).astype(np.int64)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != n_items:
        raise ValueError("%d labels for %d items" % (len(labels), n_items))
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < max_images:
        for q in queues:
            if q and len(chosen) < max_images:
                chosen.append(q.pop())
    return np.sort(np.asarray(chosen, dtype=np.int64))


class ShareLoader:
    """Iterates this rank's share of the chosen items (all of them in one process), loads them,
    skips and records the ones that fail. Yields ``(position, item index, image)``."""

    def __init__(self, items: Sequence[Any], indices: Sequence[int] | np.ndarray,
                 load: Callable[[Any], npt.ArrayLike] | None, progress: bool, desc: str,
                 collective: Collective | None = None):
        self.items, self.indices, self.load = items, indices, load
        self.progress, self.desc, self.collective = progress, desc, collective
        self.skipped: list[tuple[int, str]] = []  # (position, reason)

    def _bar(self) -> Any:
        """A tqdm bar over the whole list on rank 0 (none on the others): in a job rank 0
        advances it by ``world`` per image of its own, as if every rank went at its pace."""
        c = self.collective or LOCAL
        if not self.progress or (not is_local(c) and c.rank != 0):
            return None
        from tqdm import tqdm

        return tqdm(total=len(self.indices), desc=self.desc, unit="img")

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        bar = self._bar()
        c = self.collective or LOCAL
        step = 1 if is_local(c) else int(c.world)
        try:
            for p in positions(len(self.indices), self.collective):
                i = int(self.indices[p])
                item = self.items[i]
                if bar is not None:
                    bar.update(min(step, bar.total - bar.n))
                try:
                    image = load_item(item, self.load)
                except Exception as exc:  # never crash halfway through a dataset on one bad file
                    self.skipped.append((int(p), "%s: %s" % (describe_item(item), exc)))
                    continue
                yield int(p), i, image
        finally:
            if bar is not None:
                bar.close()


def report_skipped(skipped: Sequence[Any], n: int, what: str,
                   collective: Collective | None = None) -> None:
    """Log the skipped images once (on rank 0 of a job)."""
    if skipped and (collective is None or is_local(collective) or collective.rank == 0):
        logger.warning("%s: skipped %d unreadable image(s) of %d, e.g. %s", what, len(skipped),
                       n, skipped[0])


def image_colour(image: npt.ArrayLike) -> np.ndarray:
    """The mean RGB colour of one image (float64, 3 values)."""
    return np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)


def as_items(images: Iterable[Any]) -> list[Any]:
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [im for im in images]
    return list(images)


def label_names(classifier_fn: ClassifierLike, class_names: Sequence[str] | None,
                num_classes: int) -> list[str]:
    names = class_names if class_names is not None else as_classifier(classifier_fn).label_names
    if names is not None and len(names) == num_classes:
        return [str(n) for n in names]
    if names is not None:
        raise ValueError("%d class names for a model with %d classes" % (len(names), num_classes))
    return [str(i) for i in range(num_classes)]


def mean_colour(colours: Sequence[np.ndarray]) -> list[float] | None:
    """The mean of per-image mean colours, added in list order (each image weighs the same): the
    dataset colour that ``fill='auto'`` may try (:mod:`~paddlex_interpret.core.fill`)."""
    if not len(colours):
        return None
    total = np.zeros(3)
    for c in colours:
        total += c
    return [round(float(c), 2) for c in total / len(colours)]


class StreamingPredictor:
    """Collects images and runs the classifier a batch at a time (a batch holds images of one
    shape), so memory stays at one batch whatever the dataset size."""

    def __init__(self, classifier_fn: ClassifierLike, batch_size: int):
        self.classifier_fn, self.batch_size = as_classifier(classifier_fn), int(batch_size)
        self.pending: list[np.ndarray] = []
        self.probs: list[np.ndarray] = []
        self.seconds = 0.0
        self.colours: list[np.ndarray] = []

    def add(self, image: np.ndarray) -> None:
        self.colours.append(image_colour(image))
        if self.pending and (image.shape != self.pending[0].shape
                             or len(self.pending) >= self.batch_size):
            self.flush()
        self.pending.append(image)

    def flush(self) -> None:
        if self.pending:
            t0 = time.perf_counter()
            self.probs.append(self.classifier_fn.predict(np.stack(self.pending)))
            self.seconds += time.perf_counter() - t0
            self.pending = []

    def result(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.probs) if self.probs else np.zeros((0, 0))
