"""The shortcut audit of a saved model on a dataset: the same test the training hook's alarm runs
at every checkpoint (:mod:`paddlex_interpret.core.shortcut`), on one model.

Regions are proposed by the transplant scan (predictions only) and, for a Paddle network, by the
class atlas of gradient maps; each is tested by intervention (does pasting it from a class's
images onto the other classes' images turn them into that class?), and a region that turns at
least half of them is an alarm, reported as its tightest box with the evidence in counts. A
deployed inference model is audited the same way (the test needs only predictions; it then has
no gradient atlas).

The class atlas is the mean gradient map (input x gradient by default: one forward and one
backward pass per image, at the input's resolution; Grad-CAM's map is its target layer's, 8 x 8
at 64 px) of each class's images in the model's view.

Example::

    result = audit(model, "data/val")             # or an exported inference-model directory
    result.verdict                                # 'alarm' or 'none'
    [a.to_dict() for a in result.alarms]          # class, region, evidence
    print(result.alarms[0].message())
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

from .. import rendering
from ..adapters import classifier_for
from ..adapters.base import PaddleClassifier
from ..core import atlas as atlas_mod
from ..core import saliency
from ..core.classifier import Classifier
from ..core.normlime.dataset_pass import select_stratified
from ..core.images import describe_item, load_item
from ..core.intervention import InterventionTest
from ..core.regions import cells_map
from ..core.shortcut import (FLIP_ALARM, IMAGES, Alarm, ShortcutCheck, alarm_of,
                             check_shortcuts, verdict)
from ..io import atomic_write, check_writable_dir
from .datasets import resolve_dataset

__all__ = ["audit", "AuditResult", "dataset_atlas", "read_views", "view_labels", "gradient_atlas",
           "class_pictures", "ATLAS_METHODS"]

#: the maps an atlas can be made of (the first is the default)
ATLAS_METHODS = atlas_mod.ATLAS_METHODS

logger = logging.getLogger("paddlex_interpret")


@dataclass
class AuditResult:
    """``verdict``: ``'alarm'`` or ``'none'``; ``alarms``: the
    :class:`~paddlex_interpret.core.shortcut.Alarm` of every class the model reads from a
    region; ``check``: every class's test (:class:`~paddlex_interpret.core.shortcut.
    ShortcutCheck`); ``atlas``: the gradient class atlas (None for a model without gradients);
    ``mean_images[c]``: the mean of class ``c``'s views (uint8); ``pictures``: the files
    written; ``settings``: what ran."""

    verdict: str
    alarms: List[Alarm]
    check: ShortcutCheck
    atlas: Optional[atlas_mod.ClassAtlas]
    mean_images: np.ndarray
    settings: Dict = field(default_factory=dict)
    pictures: Dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (what ``paddlex-interpret audit`` prints)."""
        classes: dict[str, dict[str, Any]] = {}
        for c, k in sorted(self.check.classes.items()):
            ev = k.evidence
            classes[k.name] = {
                "tested_regions": len({(b, m) for _, b, _, m in k.tested}),
                "best_region": None if ev is None else list(ev.box),
                "flipped": None if ev is None else ev.flipped, "targets": k.targets,
                "alarm": k.confirmed}
            if self.atlas is not None and np.isfinite(self.atlas.concentration[c]):
                classes[k.name]["concentration"] = round(float(self.atlas.concentration[c]), 3)
                spec = self.atlas.specificity[c]
                classes[k.name]["specificity"] = (round(float(spec), 3) if np.isfinite(spec)
                                                  else None)
        return {"verdict": self.verdict, "alarms": [a.to_dict() for a in self.alarms],
                "classes": classes, "images": self.settings.get("images"),
                "pictures": dict(self.pictures), "settings": dict(self.settings)}


def view_labels(labels: Sequence[Any] | None, chosen: Sequence[int] | np.ndarray,
                kept: Sequence[int]) -> list[int] | None:
    """The labels of the views :func:`read_views` kept of the ``chosen`` items (None without
    labels)."""
    return None if labels is None else [int(labels[chosen[k]]) for k in kept]


def read_views(classifier: Classifier, items: Iterable[Any]
               ) -> tuple[np.ndarray, list[int], list[str]]:
    """``(views, kept, skipped)``: the model's views of ``items`` (``(N, H, W, 3)`` uint8, the
    first view's size), the indices of the items they come from, and the items left out (not
    readable, or a view of another size) as printable strings."""
    views: list[np.ndarray] = []
    kept: list[int] = []
    skipped: list[str] = []
    for i, item in enumerate(items):
        try:
            view = classifier.view(load_item(item))
        except Exception as exc:  # a bad file does not stop the audit: it is reported
            skipped.append("%s (%s)" % (describe_item(item), exc))
            continue
        if views and view.shape != views[0].shape:
            skipped.append("%s (a view of %s, not %s)" % (describe_item(item), view.shape[:2],
                                                          views[0].shape[:2]))
            continue
        views.append(view)
        kept.append(i)
    if not views:
        raise ValueError("no image of the dataset could be read: %s" % skipped[:3])
    return np.stack(views), kept, skipped


def _map(runner, x, label, size, method, target_layer=None):
    if method == "gradcam":
        (act, grad), = runner.layer_gradients(x, [label])
        return saliency.gradcam_map(act, grad, size)
    if method == "integrated_gradients":
        m = saliency.integrated_gradients(runner.input_gradients, x[0], label, steps=8)
    else:
        m = saliency.input_x_gradient(runner.input_gradients, x[0], label)
    return m if m.shape == tuple(size) else saliency.resize(m, size)


def gradient_atlas(classifier: PaddleClassifier, views: np.ndarray, predicted: np.ndarray,
                   n_classes: int, method: str = ATLAS_METHODS[0], seed: int = 0,
                   target_layer: str | None = None, label_names: Sequence[str] | None = None
                   ) -> tuple[atlas_mod.ClassAtlas, np.ndarray]:
    """``(ClassAtlas, mean images)`` of ``method``'s map of each view's ``predicted`` class."""
    from ..adapters.gradients import GradientRunner

    if method not in ATLAS_METHODS:
        raise ValueError("the atlas method must be one of %s, got %r" % (ATLAS_METHODS, method))
    runner = GradientRunner(classifier, target_layer=target_layer)
    size = views.shape[1:3]
    maps = [_map(runner, runner.inputs(v[None]), int(p), size, method)
            for v, p in zip(views, predicted)]
    result = atlas_mod.class_atlas(maps, predicted, n_classes, seed=seed, label_names=label_names)
    return result, mean_images(views, predicted, n_classes)


def mean_images(views: np.ndarray, predicted: npt.ArrayLike, n_classes: int) -> np.ndarray:
    """``(n_classes, H, W, 3)`` uint8: the mean view of each class (zeros without one)."""
    means = np.zeros((n_classes,) + views.shape[1:], np.uint8)
    for c in range(n_classes):
        own = views[np.asarray(predicted) == c]
        if len(own):
            means[c] = np.rint(own.mean(axis=0)).astype(np.uint8)
    return means


def dataset_atlas(classifier: PaddleClassifier, items: Iterable[Any], n_classes: int | None = None,
                  method: str = ATLAS_METHODS[0], seed: int = 0, target_layer: str | None = None,
                  label_names: Sequence[str] | None = None
                  ) -> tuple[atlas_mod.ClassAtlas, np.ndarray, list[str]]:
    """``(ClassAtlas, mean images, skipped items)`` of ``method``'s maps over ``items``
    (``n_classes``: default the model's outputs)."""
    if method not in ATLAS_METHODS:
        raise ValueError("the atlas method must be one of %s, got %r" % (ATLAS_METHODS, method))
    views, _, skipped = read_views(classifier, items)
    probs = np.concatenate([classifier.predict(views[i:i + 64]) for i in range(0, len(views), 64)])
    n = probs.shape[1] if n_classes is None else int(n_classes)
    result, means = gradient_atlas(classifier, views, np.argmax(probs, 1), n, method, seed,
                                   target_layer, label_names)
    return result, means, skipped


def class_pictures(test: InterventionTest, check: ShortcutCheck, alarms: Sequence[Alarm],
                   atlas: atlas_mod.ClassAtlas | None, means: np.ndarray,
                   names: Sequence[str] | None) -> dict[str, np.ndarray]:
    """``{class name: (H, W, 3) uint8}``: per class in the atlas or tested, its mean view under
    its gradient atlas (or, without one, its transplant-scan map), the atlas's hot region
    outlined in cyan and the region of its alarm, when raised, boxed in magenta."""
    raised = {a.cls: a.region for a in alarms}
    shown = set(check.classes)
    if atlas is not None:
        shown |= {c for c in range(len(atlas.counts)) if atlas.counts[c]}
    out = {}
    for c in sorted(shown):
        box = raised.get(c)
        if atlas is not None and atlas.counts[c]:
            mass, hot = atlas.maps[c], atlas.hot(c)
        else:
            mass = cells_map(*test.scan(c), test.shape)
            hot = None
        out[names[c] if names else str(c)] = rendering.atlas_image(means[c], mass, hot, box=box)
    return out


def _save(result, pictures, save_dir):
    import cv2

    for name, img in pictures.items():
        path = os.path.join(save_dir, "atlas_%s.png" % name)
        with atomic_write(path, "wb") as f:
            f.write(cv2.imencode(".png", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes())
        result.pictures[name] = path
    with atomic_write(os.path.join(save_dir, "audit.json"), "w") as f:
        json.dump(result.to_dict(), f, indent=1)


def audit(model: Any, dataset: Any, max_images: int = IMAGES, seed: int = 0,
          method: str = ATLAS_METHODS[0], target_layer: str | None = None,
          flip: float = FLIP_ALARM, scan: bool = True, save_dir: str | None = None
          ) -> AuditResult:
    """Audit ``model`` (a PaddleX classifier, a deployed one: ``paddlex.deploy.Predictor`` or an
    exported inference-model directory, any :class:`~paddlex_interpret.core.classifier.
    Classifier` or ``images -> probabilities`` function) on ``dataset`` (anything
    :func:`~paddlex_interpret.api.datasets.resolve_dataset` reads).

    Args:
        max_images: images (stratified by label when the dataset has labels, seeded), the
            hook's default too.
        seed: selection and shuffled-baseline seed.
        method: the gradient atlas's maps, one of :data:`ATLAS_METHODS` (Paddle networks).
        target_layer: Grad-CAM's layer (default: found).
        flip: the share of the other classes' images a region must turn (default one half).
        scan: propose regions with the transplant scan (predictions only) too.
        save_dir: write ``atlas_<class>.png`` and ``audit.json`` there (checked, and created,
            before the work).

    Returns:
        :class:`AuditResult`; every alarm is logged at WARNING.
    """
    t0 = time.perf_counter()
    if method not in ATLAS_METHODS:
        raise ValueError("the atlas method must be one of %s, got %r" % (ATLAS_METHODS, method))
    if save_dir is not None:
        check_writable_dir(save_dir)
        os.makedirs(save_dir, exist_ok=True)
    classifier, _ = classifier_for(model)
    names = classifier.label_names
    items, labels, _ = resolve_dataset(dataset, class_names=names)
    chosen = select_stratified(len(items), labels, max_images, seed)
    views, kept, skipped = read_views(classifier, [items[i] for i in chosen])
    if skipped:
        logger.warning("audit: %d image(s) were left out, e.g. %s", len(skipped), skipped[0])
    test = InterventionTest(classifier, views, view_labels(labels, chosen, kept))
    n_classes = len(names) if names else test.n_classes
    atlas, means = None, mean_images(views, test.predicted, n_classes)
    if isinstance(classifier, PaddleClassifier):
        atlas, means = gradient_atlas(classifier, views, test.predicted, n_classes, method, seed,
                                      target_layer, names)
    check = check_shortcuts(test, {"gradient": atlas.maps} if atlas is not None else None,
                            scan=scan, flip=flip, label_names=names)
    alarms = [alarm_of(k) for k in check.confirmed()]
    for a in alarms:
        logger.warning("%s", a.message())
    settings = {"method": method if atlas is not None else None, "images": len(views),
                "seed": int(seed), "skipped": len(skipped), "flip": float(flip),
                "scan": bool(scan), "forward_passes": test.passes,
                "seconds": round(time.perf_counter() - t0, 3)}
    result = AuditResult(verdict(alarms), alarms, check, atlas, means, settings)
    if save_dir is not None:
        _save(result, class_pictures(test, check, alarms, atlas, means, names), save_dir)
    return result
