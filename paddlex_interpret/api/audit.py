"""The shortcut audit of a model on a dataset: a gradient map of the predicted class on a
stratified, seeded share of the images, grouped by the predicted class into a class atlas
(:mod:`paddlex_interpret.core.atlas`), and the classes whose explanations sit in one place of
their own (a watermark, a patch, a border).

The default map is input x gradient: one forward and one backward pass per image, in dygraph, at
the input's resolution; Grad-CAM's map is the target layer's (8 x 8 at 64 px), too coarse for a
6 px watermark. The maps are aligned in the model's view (its test transforms' geometry),
resized to the first image's size when views differ.

Example::

    result = audit(model, "data/val", max_images=200)
    result.suspects           # [{'name': 'blue', 'place': 'bottom-right', ...}]
    result.atlas.scores()     # {class name: (concentration, specificity, images)}
"""
import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ..adapters import classifier_for
from ..adapters.gradients import GradientRunner
from ..core import atlas as atlas_mod
from ..core.dataset_pass import select_stratified
from ..core.images import describe_item, load_item
from ..core import saliency
from .datasets import resolve_dataset

__all__ = ["audit", "AuditResult", "dataset_atlas", "ATLAS_METHODS"]

#: the maps an atlas can be made of (the first is the default)
ATLAS_METHODS = ("input_x_gradient", "gradcam", "integrated_gradients")

logger = logging.getLogger("paddlex_interpret")


@dataclass
class AuditResult:
    """``atlas``: the :class:`~paddlex_interpret.core.atlas.ClassAtlas`; ``suspects``: its classes
    past the alarm's thresholds; ``mean_images[c]``: the mean of class ``c``'s views (uint8, for
    the pictures); ``settings``: what ran."""

    atlas: atlas_mod.ClassAtlas
    suspects: List[dict]
    mean_images: np.ndarray
    settings: Dict = field(default_factory=dict)


def _map(runner, x, label, size, method):
    if method == "gradcam":
        (act, grad), = runner.layer_gradients(x, [label])
        return saliency.gradcam_map(act, grad, size)
    if method == "integrated_gradients":
        m = saliency.integrated_gradients(runner.input_gradients, x[0], label, steps=8)
    else:
        m = saliency.input_x_gradient(runner.input_gradients, x[0], label)
    return m if m.shape == tuple(size) else saliency.resize(m, size)


def _maps(classifier, runner, items, method):
    """The map of the predicted class, the prediction and the view, per loadable item."""
    maps, predicted, views, skipped, size, n_out = [], [], [], [], None, None
    for item in items:
        try:
            view = classifier.view(load_item(item))
        except Exception as exc:  # a bad file does not stop the audit: it is reported
            skipped.append("%s (%s)" % (describe_item(item), exc))
            continue
        size = size or view.shape[:2]
        probabilities = classifier.predict(view[None])[0]
        n_out = len(probabilities)
        label = int(np.argmax(probabilities))
        maps.append(_map(runner, runner.inputs(view[None]), label, size, method))
        predicted.append(label)
        views.append(view if view.shape[:2] == size else None)
    return maps, predicted, views, skipped, n_out


def dataset_atlas(classifier, items, n_classes=None, method=ATLAS_METHODS[0], seed=0,
                  target_layer=None, label_names=None):
    """``(ClassAtlas, mean images, skipped items)`` of ``method``'s maps over ``items``
    (``n_classes``: default the model's outputs)."""
    if method not in ATLAS_METHODS:
        raise ValueError("the atlas method must be one of %s, got %r" % (ATLAS_METHODS, method))
    runner = GradientRunner(classifier, target_layer=target_layer)
    maps, predicted, views, skipped, n_out = _maps(classifier, runner, items, method)
    if not maps:
        raise ValueError("no image of the dataset could be read: %s" % skipped[:3])
    n_classes = n_out if n_classes is None else int(n_classes)
    result = atlas_mod.class_atlas(maps, predicted, n_classes, seed=seed,
                                   label_names=label_names)
    h, w = maps[0].shape
    means = np.zeros((n_classes, h, w, 3), np.uint8)
    for c in range(n_classes):
        own = [v for v, p in zip(views, predicted) if p == c and v is not None]
        if own:
            means[c] = np.rint(np.mean(own, axis=0)).astype(np.uint8)
    return result, means, skipped


def audit(model, dataset, max_images=120, seed=0, method=ATLAS_METHODS[0], target_layer=None,
          concentration=atlas_mod.ALARM_CONCENTRATION, specificity=atlas_mod.ALARM_SPECIFICITY):
    """Audit ``model`` (a PaddleX classifier, a saved model directory's loaded model, or any
    Paddle classifier) on ``dataset`` (anything
    :func:`~paddlex_interpret.api.datasets.resolve_dataset` reads).

    Args:
        max_images: images (stratified by label when the dataset has labels, seeded).
        seed: selection and shuffled-baseline seed.
        method: the maps, one of :data:`ATLAS_METHODS`.
        target_layer: Grad-CAM's layer (default: found).
        concentration / specificity: the alarm's thresholds.

    Returns:
        :class:`AuditResult`; the suspects are logged at WARNING.
    """
    t0 = time.perf_counter()
    classifier, _ = classifier_for(model)
    names = classifier.label_names
    items, labels, _ = resolve_dataset(dataset, class_names=names)
    chosen = select_stratified(len(items), labels, max_images, seed)
    result, means, skipped = dataset_atlas(classifier, [items[i] for i in chosen],
                                           len(names) if names else None,
                                           method=method, seed=seed, target_layer=target_layer,
                                           label_names=names)
    if skipped:
        logger.warning("audit: %d image(s) could not be read and were left out, e.g. %s",
                       len(skipped), skipped[0])
    found = atlas_mod.suspects(result, concentration, specificity)
    for s in found:
        logger.warning("shortcut suspect: class %r's explanations sit in the %s (pixels %s), "
                       "concentration %.1f, specificity %.2f over %d images", s["name"],
                       s["place"], s["region"], s["concentration"], s["specificity"],
                       s["images"])
    settings = {"method": method, "images": int(sum(result.counts)), "seed": int(seed),
                "skipped": len(skipped), "concentration": float(concentration),
                "specificity": float(specificity), "seconds": time.perf_counter() - t0}
    return AuditResult(result, found, means, settings)
