"""NormLIME: global, per-class weights of concepts, learned from a dataset and a model.

Two ways to build them (both take ``classifier_fn``: a
:class:`~paddlex_interpret.core.classifier.Classifier` or a function ``(B, H, W, 3) uint8 ->
(B, C)`` probabilities or logits, and a :class:`~paddlex_interpret.core.concepts.ConceptCodebook`):

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
    >>> from paddlex_interpret.core.concepts import ConceptCodebook
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
import logging
import time
import warnings

import numpy as np

from .classifier import as_classifier
from .concepts import describe_item, load_item
from .global_weights import GlobalWeights, combine, glime_prior, normlime_weights_for
from .lime import LimeExplainer
from .segmentation import make_segmenter

__all__ = ["GlobalWeights", "select_stratified", "grid_segments", "concept_occurrences",
           "build_global_weights_fast", "build_global_weights_aggregate", "normlime_weights_for",
           "combine", "glime_prior", "softmax_weights"]

logger = logging.getLogger("paddlex_interpret")

MODES = ("fast", "aggregate")
VARIANTS = ("normlime", "avg")


# ---------------------------------------------------------------------------- helpers
def softmax_weights(coef, scale=10.0):
    """PaddleX 1.3's normalisation of a coefficient row: ``softmax(scale * coef)``."""
    w = np.asarray(coef, dtype=np.float64) * float(scale)
    w = w - w.max()
    e = np.exp(w)
    return e / e.sum()


def select_stratified(n_items, labels=None, max_images=None, seed=0):
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
    chosen = []
    while len(chosen) < max_images:
        for q in queues:
            if q and len(chosen) < max_images:
                chosen.append(q.pop())
    return np.sort(np.asarray(chosen, dtype=np.int64))


def grid_segments(shape, num_blocks=10):
    """PaddleX 1.3's fixed grid: ``num_blocks x num_blocks`` cells over an image of ``shape``."""
    h, w = int(shape[0]), int(shape[1])
    rows = np.arange(h) // (h // num_blocks + 1)
    cols = np.arange(w) // (w // num_blocks + 1)
    return (rows[:, None] * num_blocks + cols[None, :]).astype(np.int32)


class _Loader:
    """Iterates the chosen items, loads them, skips and records the ones that fail."""

    def __init__(self, items, indices, load, progress, desc):
        self.items, self.indices, self.load = items, indices, load
        self.progress, self.desc = progress, desc
        self.skipped = []

    def __iter__(self):
        indices = self.indices
        if self.progress:
            from tqdm import tqdm

            indices = tqdm(indices, desc=self.desc, unit="img")
        for i in indices:
            item = self.items[int(i)]
            try:
                image = load_item(item, self.load)
            except Exception as exc:  # never crash halfway through a dataset on one bad file
                self.skipped.append("%s: %s" % (describe_item(item), exc))
                continue
            yield int(i), image

    def report(self, what):
        if self.skipped:
            logger.warning("%s: skipped %d unreadable image(s) of %d, e.g. %s", what,
                           len(self.skipped), len(self.indices), self.skipped[0])


def _as_items(images):
    if isinstance(images, np.ndarray) and images.ndim == 4:
        return [im for im in images]
    return list(images)


def _label_names(classifier_fn, class_names, num_classes):
    names = class_names if class_names is not None else as_classifier(classifier_fn).label_names
    if names is not None and len(names) == num_classes:
        return [str(n) for n in names]
    if names is not None:
        raise ValueError("%d class names for a model with %d classes" % (len(names), num_classes))
    return [str(i) for i in range(num_classes)]


class MeanColour:
    """The mean RGB colour of the images seen (each image weighs the same): the dataset colour
    that ``fill='auto'`` may try (:mod:`~paddlex_interpret.core.baseline`)."""

    def __init__(self):
        self.total, self.count = np.zeros(3), 0

    def add(self, image):
        self.total += np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0)
        self.count += 1

    def value(self):
        return [round(float(c), 2) for c in self.total / self.count] if self.count else None


class _StreamingPredictor:
    """Collects images and runs the classifier a batch at a time (a batch holds images of one
    shape), so memory stays at one batch whatever the dataset size."""

    def __init__(self, classifier_fn, batch_size):
        self.classifier_fn, self.batch_size = as_classifier(classifier_fn), int(batch_size)
        self.pending, self.probs, self.seconds = [], [], 0.0
        self.colour = MeanColour()

    def add(self, image):
        self.colour.add(image)
        if self.pending and (image.shape != self.pending[0].shape
                             or len(self.pending) >= self.batch_size):
            self.flush()
        self.pending.append(image)

    def flush(self):
        if self.pending:
            t0 = time.perf_counter()
            self.probs.append(self.classifier_fn.predict(np.stack(self.pending)))
            self.seconds += time.perf_counter() - t0
            self.pending = []

    def result(self):
        self.flush()
        return np.concatenate(self.probs) if self.probs else np.zeros((0, 0))


# ---------------------------------------------------------------------------- fast mode
def concept_occurrences(images, codebook, segmenter=None, grid=None, labels=None,
                        max_images=None, seed=0, load=None, progress=False, on_image=None):
    """Which concepts occur in each image (model-independent, so reusable across checkpoints).

    Returns a dict: ``X`` ``(n, n_concepts)`` bool, ``indices`` of the items used, ``skipped``
    (reasons) and ``n_selected``. ``on_image(image)`` is called on every loaded image.
    """
    items = _as_items(images)
    indices = select_stratified(len(items), labels, max_images, seed)
    seg_fn = None
    if grid is None:
        seg_fn = (codebook.make_segmenter() if segmenter is None
                  else make_segmenter(segmenter, seed=seed))
    loader = _Loader(items, indices, load, progress, "concepts")
    X, used = [], []
    for i, image in loader:
        segments = grid_segments(image.shape, int(grid)) if grid is not None else seg_fn(image)
        X.append(codebook.occurrences(image, segments))
        used.append(i)
        if on_image is not None:
            on_image(image)
    loader.report("NormLIME")
    X = np.stack(X) if X else np.zeros((0, codebook.n_concepts), dtype=bool)
    return {"X": X, "indices": np.asarray(used, dtype=np.int64), "skipped": loader.skipped,
            "n_selected": len(indices)}


def _fit_fast(X, y, num_classes, scale, C):
    """PaddleX 1.3: multinomial logistic regression, softmax(scale * coef) per predicted class."""
    K = X.shape[1]
    weights = np.full((num_classes, K), 1.0 / K)
    classes = np.unique(y)
    if len(classes) < 2:
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


def build_global_weights_fast(classifier_fn, images, codebook, labels=None, max_images=None,
                              seed=0, segmenter=None, grid=None, batch_size=50, softmax_scale=10.0,
                              C=1.0, num_classes=None, class_names=None, load=None,
                              occurrences=None, progress=False):
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
    """
    t0 = time.perf_counter()
    predictor = _StreamingPredictor(classifier_fn, batch_size)
    with predictor.classifier_fn.hold_weights():  # weights verified once for the whole build
        if occurrences is None:
            occurrences = concept_occurrences(images, codebook, segmenter=segmenter, grid=grid,
                                              labels=labels, max_images=max_images, seed=seed,
                                              load=load, progress=progress,
                                              on_image=predictor.add)
        else:  # the occurrences were computed before (e.g. at an earlier checkpoint)
            items = _as_items(images)
            for i in occurrences["indices"]:
                predictor.add(load_item(items[int(i)], load))
        probs = predictor.result()
    if not len(probs):
        raise ValueError("NormLIME: no readable image among %d (%d skipped)"
                         % (occurrences["n_selected"], len(occurrences["skipped"])))
    t_forward = predictor.seconds
    num_classes = int(num_classes or probs.shape[1])
    y = np.argmax(probs, axis=1)
    weights = _fit_fast(occurrences["X"], y, num_classes, softmax_scale, C)
    settings = {"mode": "fast", "softmax_scale": float(softmax_scale), "C": float(C),
                "occurrence": "grid%d" % int(grid) if grid is not None else "superpixels",
                "max_images": None if max_images is None else int(max_images), "seed": int(seed)}
    seconds = time.perf_counter() - t0
    info = {"n_images": int(len(probs)), "n_selected": int(occurrences["n_selected"]),
            "n_skipped": len(occurrences["skipped"]), "skipped": occurrences["skipped"][:20],
            "seconds": seconds, "seconds_forward": t_forward,
            "seconds_concepts": seconds - t_forward, "mean_colour": predictor.colour.value(),
            "concept_frequency": np.round(occurrences["X"].mean(axis=0), 4).tolist()}
    return GlobalWeights(weights, _label_names(classifier_fn, class_names, num_classes),
                         mode="fast", settings=settings,
                         counts=np.bincount(y, minlength=num_classes), info=info,
                         codebook=codebook)


# ---------------------------------------------------------------------------- aggregate mode
def build_global_weights_aggregate(classifier_fn, images, codebook, variant="normlime",
                                   labels=None, max_images=None, seed=0, num_samples=1000,
                                   batch_size=50, top_k=1, segmenter=None, fill="black",
                                   kernel_width=0.25, num_classes=None, class_names=None,
                                   load=None, progress=False):
    """Global concept weights, the NormLIME paper's way: LIME on each image, then per class and
    concept the mean over the concept's superpixels of ``w^2 / ||w||_1`` (``'normlime'``, as PaddleX
    1.3 and InterpretDL) or of ``w`` (``'avg'``). Concepts never seen for a class get 0, classes
    never explained uniform weights ``1/K``. Costs ``num_samples`` forward passes per image.

    ``top_k`` predicted labels are explained per image; image ``i`` is sampled with seed
    ``seed + i``. Other arguments as for :func:`build_global_weights_fast`.
    """
    if variant not in VARIANTS:
        raise ValueError("variant must be one of %s, got %r" % (VARIANTS, variant))
    t0 = time.perf_counter()
    items = _as_items(images)
    indices = select_stratified(len(items), labels, max_images, seed)
    seg_spec = codebook.make_segmenter() if segmenter is None else segmenter
    K = codebook.n_concepts
    sums = counts_ck = None
    explained = None
    loader = _Loader(items, indices, load, progress, "NormLIME")
    n_used = 0
    colour = MeanColour()
    seen = np.zeros(K)
    classifier_fn = as_classifier(classifier_fn)
    with classifier_fn.hold_weights():  # weights verified once for the whole build
        for i, image in loader:
            explainer = LimeExplainer(classifier_fn, segmenter=seg_spec, fill=fill,
                                      kernel_width=kernel_width, num_samples=num_samples,
                                      batch_size=batch_size, seed=seed + i)
            exp = explainer.explain(image, top_k=top_k)
            if sums is None:
                nc = int(num_classes or len(exp.probabilities))
                sums = np.zeros((nc, K))
                counts_ck = np.zeros((nc, K))
                explained = np.zeros(nc, dtype=np.int64)
            concepts = codebook.assign(exp.image, exp.segments)
            seen[np.unique(concepts)] += 1
            for label, w in zip(exp.labels, exp.weights):
                if variant == "normlime":
                    l1 = np.abs(w).sum()
                    contrib = w * w / l1 if l1 > 0 else np.zeros_like(w)
                else:
                    contrib = w
                np.add.at(sums[label], concepts, contrib)
                np.add.at(counts_ck[label], concepts, 1.0)
                explained[label] += 1
            n_used += 1
            colour.add(image)
    loader.report("NormLIME")
    if n_used == 0:
        raise ValueError("NormLIME: no readable image among %d (%d skipped)"
                         % (len(indices), len(loader.skipped)))
    weights = np.where(counts_ck > 0, sums / np.maximum(counts_ck, 1), 0.0)
    never = explained == 0
    weights[never] = 1.0 / K
    if never.any():
        logger.warning("NormLIME: %d class(es) were never explained (%s); they get uniform "
                       "weights", int(never.sum()), np.flatnonzero(never).tolist()[:10])
    settings = {"mode": "aggregate", "variant": variant, "num_samples": int(num_samples),
                "top_k": int(top_k), "fill": fill if isinstance(fill, str) else "custom",
                "kernel_width": float(kernel_width),
                "max_images": None if max_images is None else int(max_images), "seed": int(seed)}
    info = {"n_images": n_used, "n_selected": int(len(indices)), "n_skipped": len(loader.skipped),
            "skipped": loader.skipped[:20], "seconds": time.perf_counter() - t0,
            "support": counts_ck.astype(np.int64).tolist(), "mean_colour": colour.value(),
            "concept_frequency": np.round(seen / max(n_used, 1), 4).tolist()}
    return GlobalWeights(weights, _label_names(classifier_fn, class_names, weights.shape[0]),
                         mode="aggregate", settings=settings, counts=explained, info=info,
                         codebook=codebook)
