"""The class atlas at a checkpoint and the shortcut alarm: a thin stage over
:mod:`paddlex_interpret.core.shortcut` (the test) and :mod:`paddlex_interpret.api.audit` (views
and gradient maps).

On a stratified, seeded share of the eval images (``atlas_max_images``, the same images at every
checkpoint):

* the class atlas (``atlas``, Paddle networks): a gradient map of each image, grouped by
  predicted class; logged per class as the image ``atlas/<class>`` (its mean view under its
  explanation mass, the hot region outlined in cyan, the alarm's region boxed in magenta) and the
  scalars ``atlas/<class>/concentration`` and ``.../specificity``;
* the alarm (``alarm``, any classifier): regions proposed by the atlas, the transplant scan and
  the memory of earlier checkpoints, tested by intervention. Logged per class: ``alarm/<class>``
  (1 while raised) and ``alarm/<class>/flip_rate`` (of the best region tested); per checkpoint
  ``alarm/seconds``, ``alarm/forward_passes`` and ``atlas/seconds``; while raised
  the text ``alarm/<class>/evidence`` (the region and the two interventions' counts). A raised
  or cleared alarm is one event: one line on the ``paddlex_interpret`` logger (WARNING when
  raised, INFO when cleared), in the training process. (A text may not share its tag with a
  scalar: VisualDL's reader mixes the two up.)

``report.alarms`` holds the raised :class:`~paddlex_interpret.core.shortcut.Alarm` objects
(class, region, first and last checkpoint, evidence), ``report.alarm_events`` the events of this
checkpoint and ``report.alarm_state`` the memory, as plain data (a process that goes on from the
worker's reports restores it).
"""
import logging
import time

import numpy as np

from .. import rendering
from ..api.audit import class_pictures, gradient_atlas, mean_images, read_views, view_labels
from ..api.datasets import resolve_dataset
from ..core.normlime.dataset_pass import select_stratified
from ..core.intervention import InterventionTest
from ..core.shortcut import ShortcutMemory, check_shortcuts, cleared_message

__all__ = ["AtlasStage", "concept_in_region"]

logger = logging.getLogger("paddlex_interpret")


def concept_in_region(box, mean_image, c, global_weights, codebook, segmenter):
    """``(concept id, its NormLIME weight for class c, its rank among the class's concepts)``
    of the superpixel of class ``c``'s mean image that covers most of ``box``."""
    segments = segmenter(mean_image)
    concepts = codebook.assign(mean_image, segments)
    x0, y0, x1, y1 = box
    overlap = np.bincount(segments[y0:y1, x0:x1].ravel(), minlength=int(segments.max()) + 1)
    k = int(concepts[int(np.argmax(overlap))])
    row = np.asarray(global_weights.weights[c], np.float64)
    return k, float(row[k]), int(np.sum(row > row[k])) + 1


def _ordinal(n):
    return "%d%s" % (n, "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        n % 10, "th"))


def _concept_text(concept):
    k, w, rank = concept
    return (" NormLIME: the region is concept #%d, weight %.3f for this class (its %s strongest "
            "concept)." % (k, w, _ordinal(rank)))


class AtlasStage:
    """The atlas and the alarm (see the module docstring); the alarm's memory lives across the
    checkpoints of one run (:meth:`reset` starts a new one). ``announce``: log the alarm's
    events here (a worker process leaves that to the training process, which gets its
    reports)."""

    def __init__(self, options):
        self.options = options
        self.memory = ShortcutMemory()
        self.announce = True

    def reset(self):
        self.memory.reset()

    @staticmethod
    def supports_gradients(classifier):
        """The atlas needs gradients: a Paddle network (PaddleX classifier, Layer, not a deployed
        predictor or a plain function)."""
        from ..adapters.base import PaddleClassifier

        return isinstance(classifier, PaddleClassifier)

    def run(self, context, report, global_weights=None, codebook=None, segmenter=None,
            atlas=True):
        """Atlas (when ``atlas``), scores and alarm of this checkpoint; with NormLIME weights,
        their codebook and a segmenter, a raised alarm also names the concept in its region."""
        o = self.options
        names = context.label_names or context.classifier.label_names
        items, labels, _ = resolve_dataset(context.dataset, class_names=names)
        chosen = select_stratified(len(items), labels, o.atlas_max_images, o.seed)
        views, kept, skipped = read_views(context.classifier, [items[i] for i in chosen])
        test = InterventionTest(context.classifier, views, view_labels(labels, chosen, kept),
                                batch_size=o.batch_size)
        n_classes = len(names) if names else test.n_classes
        class_atlas, means = None, mean_images(views, test.predicted, n_classes)
        if atlas:
            t0 = time.perf_counter()
            class_atlas, means = gradient_atlas(context.classifier, views, test.predicted,
                                                n_classes, o.atlas_method, o.seed,
                                                label_names=names)
            self._atlas_scalars(report, class_atlas)
            report.scalars["atlas/seconds"] = time.perf_counter() - t0
        report.scalars["atlas/images"] = float(len(views))
        if skipped:
            report.scalars["atlas/skipped"] = float(len(skipped))
        if not o.alarm:
            if class_atlas is not None and o.log_images:
                for c in range(n_classes):
                    if class_atlas.counts[c]:
                        report.images["atlas/%s" % class_atlas.name(c)] = rendering.atlas_image(
                            means[c], class_atlas.maps[c], class_atlas.hot(c))
            return class_atlas
        maps = {"gradient": class_atlas.maps} if class_atlas is not None else None
        t0 = time.perf_counter()
        check = check_shortcuts(test, maps, self.memory, flip=o.alarm_flip, label_names=names)
        report.scalars["alarm/seconds"] = time.perf_counter() - t0
        events = self.memory.update(check, report.epoch)
        report.alarms = self.memory.active()
        report.alarm_state = self.memory.state()
        report.scalars["alarm/forward_passes"] = float(test.passes)
        self._alarm_scalars(report, check, names)
        if o.log_images:
            report.images.update({"atlas/%s" % n: img for n, img in class_pictures(
                test, check, report.alarms, class_atlas, means, names).items()})
        self._events(report, events, check, means, global_weights, codebook, segmenter)
        return class_atlas

    @staticmethod
    def _atlas_scalars(report, atlas):
        for c in range(len(atlas.counts)):
            name = atlas.name(c)
            for what, values in (("concentration", atlas.concentration),
                                 ("specificity", atlas.specificity)):
                if np.isfinite(values[c]):
                    report.scalars["atlas/%s/%s" % (name, what)] = float(values[c])

    def _alarm_scalars(self, report, check, names):
        raised = {a.cls for a in report.alarms}
        for c, k in check.classes.items():
            report.scalars["alarm/%s" % k.name] = float(c in raised)
            if k.evidence is not None:
                report.scalars["alarm/%s/flip_rate" % k.name] = float(k.evidence.flip_rate)
        for a in self.memory.alarms.values():  # an alarm of a class not tested now is off
            report.scalars.setdefault("alarm/%s" % a.name, float(a.cls in raised))
        for a in report.alarms:
            report.texts["alarm/%s/evidence" % a.name] = a.message(report.epoch)

    def _events(self, report, events, check, means, global_weights, codebook, segmenter):
        for kind, a in events:
            if kind == "cleared":
                message = cleared_message(a, report.epoch, check)
                report.texts["alarm/%s/evidence" % a.name] = message
            else:
                message = a.message(report.epoch)
                if global_weights is not None and codebook is not None and segmenter is not None:
                    try:
                        message += _concept_text(concept_in_region(
                            a.region, means[a.cls], a.cls, global_weights, codebook, segmenter))
                    except Exception as exc:  # the alarm goes out without the concept
                        logger.debug("alarm: no NormLIME concept for %r: %s", a.name, exc)
                report.texts["alarm/%s/evidence" % a.name] = message
            report.alarm_events.append((kind, a.name, message))
            if self.announce:
                (logger.warning if kind == "raised" else logger.info)("%s", message)
