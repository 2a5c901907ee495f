"""NormLIME: global, per-class weights of concepts, learned from a dataset and a model.

Two ways to build them (both take ``classifier_fn``: a
:class:`~paddlex_interpret.core.classifier.Classifier` or a function ``(B, H, W, 3) uint8 ->
(B, C)`` probabilities or logits, and a :class:`~paddlex_interpret.core.normlime.concepts.ConceptCodebook`):

* :func:`build_global_weights_fast` -- PaddleX 1.3's shipped method, about one forward pass per
  image: per image a binary vector of the concepts that occur (on its superpixels, or on a fixed
  grid) against the model's predicted label; a multinomial logistic regression; per class the
  softmax of 10x its coefficients (classes never predicted get uniform weights).
* :func:`build_global_weights_aggregate` -- the NormLIME paper (Ahern et al. 2019) as InterpretDL
  does it: LIME on every image, then per class the average over a concept's superpixels of the
  normalised local weights ``w^2 / ||w||_1`` (``variant='normlime'``) or of the raw weights
  (``variant='avg'``).

A :class:`GlobalWeights` maps the superpixels of any explained image to weights through their
concepts (:func:`normlime_weights_for`), which NormLIME multiplies with LIME's (:func:`combine`, as
PaddleX 1.3 did) and GLIME uses as the prior of its ridge fit (:func:`glime_prior`).

Datasets: a sequence of items (paths or arrays, or whatever ``load`` reads), optional ``labels``
for a class-stratified, seeded budget of ``max_images``. Items that fail to load are skipped,
counted (``GlobalWeights.info``) and logged, never a crash halfway. Nothing here imports Paddle.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.normlime.concepts import ConceptCodebook
    >>> from paddlex_interpret.core.normlime import build_global_weights_fast
    >>> rng = np.random.default_rng(0)
    >>> def make(c):  # grey noise with a red (class 0) or blue (class 1) square
    ...     im = rng.integers(90, 140, (32, 32, 3)).astype(np.uint8)
    ...     im[8:20, 8:20] = [(220, 30, 30), (30, 30, 220)][c]
    ...     return im
    >>> imgs = [make(i % 2) for i in range(20)]
    >>> clf = lambda b: np.stack([b[..., 0].mean((1, 2)), b[..., 2].mean((1, 2))], 1)
    >>> quads = lambda im: np.repeat(np.repeat(np.arange(16).reshape(4, 4), 8, 0), 8, 1)
    >>> cb = ConceptCodebook().fit(imgs, segmenter=quads, n_concepts=4, seed=0)
    >>> gw = build_global_weights_fast(clf, imgs, cb, segmenter=quads)
    >>> gw.weights.shape
    (2, 4)
"""
from __future__ import annotations

import logging
import time
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ..classifier import ClassifierLike
from .concepts import ConceptCodebook
from .dataset_pass import (ShareLoader, StreamingPredictor, as_items, label_names, mean_colour,
                           report_skipped, select_stratified)
from ..images import load_item
from .weights import GlobalWeights, combine, glime_prior, normlime_weights_for
from .aggregate import VARIANTS, build_global_weights_aggregate
from ..segmentation import SegmenterSpec, make_segmenter
from ..sharding import LOCAL, Collective, checked, gather_in_order, is_local

__all__ = ["GlobalWeights", "select_stratified", "grid_segments", "concept_occurrences",
           "build_global_weights_fast", "build_global_weights_aggregate", "normlime_weights_for",
           "combine", "glime_prior", "softmax_weights"]

logger = logging.getLogger("paddlex_interpret")

MODES = ("fast", "aggregate")
__all__ += ["MODES", "VARIANTS"]


# ---------------------------------------------------------------------------- helpers
def softmax_weights(coef: npt.ArrayLike, scale: float = 10.0) -> np.ndarray:
    """PaddleX 1.3's normalisation of a coefficient row: ``softmax(scale * coef)``."""
    w = np.asarray(coef, dtype=np.float64) * float(scale)
    w = w - w.max()
    e = np.exp(w)
    return e / e.sum()


def grid_segments(shape: Sequence[int], num_blocks: int = 10) -> np.ndarray:
    """PaddleX 1.3's fixed grid: ``num_blocks x num_blocks`` cells over an image of ``shape``."""
    h, w = int(shape[0]), int(shape[1])
    rows = np.arange(h) // (h // num_blocks + 1)
    cols = np.arange(w) // (w // num_blocks + 1)
    return (rows[:, None] * num_blocks + cols[None, :]).astype(np.int32)


# ---------------------------------------------------------------------------- fast mode
def concept_occurrences(images: Iterable[Any], codebook: ConceptCodebook,
                        segmenter: SegmenterSpec | None = None, grid: int | None = None,
                        labels: npt.ArrayLike | None = None, max_images: int | None = None,
                        seed: int = 0, load: Callable[[Any], npt.ArrayLike] | None = None,
                        progress: bool = False,
                        on_image: Callable[[np.ndarray], object] | None = None,
                        collective: Collective | None = None) -> dict[str, Any]:
    """Which concepts occur in each image (model-independent, so reusable across checkpoints).

    Returns a dict: ``X`` ``(n, n_concepts)`` bool, ``indices`` of the items used and their
    ``positions`` in the chosen list, ``skipped`` (``(position, reason)``) and ``n_selected``.
    ``on_image(image)`` is called on every loaded image. With a ``collective`` (a
    :class:`~paddlex_interpret.core.sharding.Collective`) all of it is this rank's share only.
    """
    items = as_items(images)
    indices = select_stratified(len(items), labels, max_images, seed)
    seg_fn = None
    if grid is None:
        seg_fn = (codebook.make_segmenter() if segmenter is None
                  else make_segmenter(segmenter, seed=seed))
    loader = ShareLoader(items, indices, load, progress, "concepts", collective)
    rows: list[np.ndarray] = []
    used: list[int] = []
    at: list[int] = []
    for p, i, image in loader:
        if grid is not None:
            segments = grid_segments(image.shape, int(grid))
        else:
            assert seg_fn is not None
            segments = seg_fn(image)
        rows.append(codebook.occurrences(image, segments))
        used.append(i)
        at.append(p)
        if on_image is not None:
            on_image(image)
    if is_local(collective):
        report_skipped([m for _, m in loader.skipped], len(indices), "NormLIME")
    X = np.stack(rows) if rows else np.zeros((0, codebook.n_concepts), dtype=bool)
    return {"X": X, "indices": np.asarray(used, dtype=np.int64),
            "positions": np.asarray(at, dtype=np.int64), "skipped": loader.skipped,
            "n_selected": len(indices)}


def _fit_fast(X, y, num_classes, scale, C, speak=True):
    """PaddleX 1.3: multinomial logistic regression, softmax(scale * coef) per predicted class.
    ``speak``: this process says what the fit found (in a job, rank 0 alone: once per build)."""
    K = X.shape[1]
    weights = np.full((num_classes, K), 1.0 / K)
    classes = np.unique(y)
    if len(classes) < 2:
        if not speak:
            return weights
        logger.warning("NormLIME: the model predicted only %d class(es) on the dataset images; "
                       "all classes get uniform concept weights", len(classes))
        warnings.warn("NormLIME: the model predicted only %d class(es) on the dataset images; all "
                      "classes get uniform concept weights. Use more (or more varied) images."
                      % len(classes), RuntimeWarning, stacklevel=3)
        return weights
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, max_iter=1000)
    clf.fit(X.astype(np.float64), y)
    coef = clf.coef_
    if len(clf.classes_) == 2:  # binary: one row, the second class's log-odds
        coef = np.stack([-coef[0], coef[0]])
    for row, cls in zip(coef, clf.classes_):
        weights[int(cls)] = softmax_weights(row, scale)
    return weights


def build_global_weights_fast(classifier_fn: ClassifierLike, images: Iterable[Any],
                              codebook: ConceptCodebook, labels: npt.ArrayLike | None = None,
                              max_images: int | None = None, seed: int = 0,
                              segmenter: SegmenterSpec | None = None, grid: int | None = None,
                              batch_size: int = 50, softmax_scale: float = 10.0, C: float = 1.0,
                              num_classes: int | None = None,
                              class_names: Sequence[str] | None = None,
                              load: Callable[[Any], npt.ArrayLike] | None = None,
                              occurrences: dict[str, Any] | None = None, progress: bool = False,
                              collective: Collective | None = None) -> GlobalWeights:
    """Global concept weights, PaddleX 1.3's fast way (about one forward pass per image).

    Args:
        classifier_fn: ``(B, H, W, 3) uint8 -> (B, C)`` probabilities or logits.
        images: sequence of image paths / arrays (or items ``load`` reads), or ``(N, H, W, 3)``.
        codebook: a fitted :class:`ConceptCodebook`.
        labels: optional class id per item, for the stratified budget.
        max_images: at most this many images (stratified by ``labels``, seeded).
        segmenter: superpixels for the occurrence vectors (default: the codebook's);
            ``grid=n`` uses PaddleX 1.3's fixed ``n x n`` grid instead.
        softmax_scale, C: the softmax scale (1.3: 10) and the inverse regularisation of the
            logistic regression (1.3: 1).
        occurrences: a :func:`concept_occurrences` result to reuse (skips segmentation).
        progress: tqdm progress bar.
        collective: a :class:`~paddlex_interpret.core.sharding.Collective`: every rank segments
            and runs its share of the images, the occurrence vectors and predicted labels are
            gathered in image order and every rank fits the same weights (those of one process).
    """
    t0 = time.perf_counter()
    predictor = StreamingPredictor(classifier_fn, batch_size)

    def work() -> tuple[dict[str, Any], np.ndarray]:
        # this rank's share: segmentation, occurrences, forward passes
        occ = occurrences
        with predictor.classifier_fn.hold_weights():  # weights verified once for the build
            if occ is None:
                occ = concept_occurrences(images, codebook, segmenter=segmenter, grid=grid,
                                          labels=labels, max_images=max_images, seed=seed,
                                          load=load, progress=progress, on_image=predictor.add,
                                          collective=collective)
            else:  # the occurrences were computed before (e.g. at an earlier checkpoint)
                items = as_items(images)
                for i in occ["indices"]:
                    predictor.add(load_item(items[int(i)], load))
            return occ, predictor.result()

    occurrences, probs = checked(collective, work)
    mine = [(int(p), (x, int(np.argmax(row)), colour, row.shape[0])) for p, x, row, colour
            in zip(occurrences["positions"], occurrences["X"], probs, predictor.colours)]
    rows = [r for _, r in gather_in_order(collective, mine)]
    skipped = [m for _, m in gather_in_order(collective, occurrences["skipped"])]
    if not is_local(collective):  # one process reported them in concept_occurrences
        report_skipped(skipped, occurrences["n_selected"], "NormLIME", collective)
    if not rows:
        raise ValueError("NormLIME: no readable image among %d (%d skipped)"
                         % (occurrences["n_selected"], len(skipped)))
    X = np.stack([r[0] for r in rows])
    y = np.asarray([r[1] for r in rows], dtype=np.int64)
    num_classes = int(num_classes or rows[0][3])
    job = collective or LOCAL
    weights = _fit_fast(X, y, num_classes, softmax_scale, C, speak=is_local(job) or job.rank == 0)
    settings = {"mode": "fast", "softmax_scale": float(softmax_scale), "C": float(C),
                "occurrence": "grid%d" % int(grid) if grid is not None else "superpixels",
                "max_images": None if max_images is None else int(max_images), "seed": int(seed)}
    seconds = time.perf_counter() - t0
    info = {"n_images": len(rows), "n_selected": int(occurrences["n_selected"]),
            "n_skipped": len(skipped), "skipped": skipped[:20], "seconds": seconds,
            "seconds_forward": predictor.seconds, "seconds_concepts": seconds - predictor.seconds,
            "mean_colour": mean_colour([r[2] for r in rows]),
            "concept_frequency": np.round(X.mean(axis=0), 4).tolist(),
            "ranks": 1 if is_local(job) else int(job.world)}
    return GlobalWeights(weights, label_names(classifier_fn, class_names, num_classes),
                         mode="fast", settings=settings,
                         counts=np.bincount(y, minlength=num_classes), info=info,
                         codebook=codebook)
