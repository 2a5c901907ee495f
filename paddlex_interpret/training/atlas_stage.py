"""The class atlas at a checkpoint and the shortcut alarm.

A gradient map (``atlas_method``, input x gradient by default:
:mod:`~paddlex_interpret.api.audit`) of each of a stratified, seeded share of the eval images
(``atlas_max_images``, the same images at every checkpoint), grouped by predicted class
(:mod:`paddlex_interpret.core.atlas`). Logged per class: the atlas image (``atlas/<class>``: its
mean image under its explanation mass, the hot region outlined), its concentration and specificity (``atlas/<class>/concentration``,
``.../specificity``) and ``alarm/<class>`` (1 while the alarm is on). When a class has passed
both thresholds at ``alarm_patience`` checkpoints in a row, a text ``alarm/<class>/evidence``
names the class, the region, the checkpoint and the evidence, and the ``paddlex_interpret`` logger
warns. (A text may not share its tag with a scalar: VisualDL's reader mixes the two up.)
"""
import logging

import numpy as np

from .. import rendering
from ..api.audit import dataset_atlas
from ..api.datasets import resolve_dataset
from ..core import atlas as atlas_mod
from ..core.dataset_pass import select_stratified

__all__ = ["AtlasStage", "alarm_message"]

logger = logging.getLogger("paddlex_interpret")


def concept_in_region(atlas, mean_image, c, global_weights, codebook, segmenter):
    """``(concept id, its NormLIME weight for class c, its rank among the class's concepts)``
    of the superpixel of class ``c``'s mean image that covers most of its hot region."""
    segments = segmenter(mean_image)
    concepts = codebook.assign(mean_image, segments)
    overlap = np.bincount(segments[atlas.hot(c)], minlength=int(segments.max()) + 1)
    k = int(concepts[int(np.argmax(overlap))])
    row = np.asarray(global_weights.weights[c], np.float64)
    return k, float(row[k]), int(np.sum(row > row[k])) + 1


def alarm_message(suspect, epoch):
    """One line a user reads: which class, where, since when, on what evidence."""
    x0, y0, x1, y1 = suspect["region"]
    concept = ""
    if suspect.get("concept") is not None:
        k, w, rank = suspect["concept"]
        concept = (" NormLIME: the region is concept #%d, weight %.3f for this class (its "
                   "%s strongest concept)." % (k, w, _ordinal(rank)))
    return ("shortcut alarm at epoch %d: the explanations of class %r sit in the %s of the image "
            "(pixels x %d-%d, y %d-%d of the model's view) for %d checkpoints in a row: "
            "concentration %.1f (that region is %.1fx sharper than the class's images give "
            "with their positions shuffled), specificity %.2f (its share of the region's "
            "explanation mass against the other classes), over %d eval images. See the "
            "atlas/%s image; a model that reads a watermark, a patch or a border there "
            "scores well on data that carries it and fails on data that does not.%s"
            % (epoch, suspect["name"], suspect["place"], x0, x1, y0, y1,
               suspect["checkpoints"], suspect["concentration"], suspect["concentration"],
               suspect["specificity"], suspect["images"], suspect["name"], concept))


def _ordinal(n):
    return "%d%s" % (n, "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(
        n % 10, "th"))


class AtlasStage:
    """The atlas and the alarm (see the module docstring); the alarm's streaks live across the
    checkpoints of one run (:meth:`reset` starts a new one)."""

    def __init__(self, options):
        self.options = options
        self.alarm = atlas_mod.ShortcutAlarm(options.alarm_patience)

    def reset(self):
        self.alarm.reset()

    @staticmethod
    def supports(classifier):
        """The atlas needs gradients: a Paddle network (PaddleX classifier, Layer, not a deployed
        predictor or a plain function)."""
        from ..adapters.base import PaddleClassifier

        return isinstance(classifier, PaddleClassifier)

    def run(self, context, report, global_weights=None, codebook=None, segmenter=None):
        """Atlas, scores and alarm of this checkpoint; with NormLIME weights, their codebook and
        a segmenter, an alarm also names the concept in the region."""
        o = self.options
        names = context.label_names or context.classifier.label_names
        items, labels, _ = resolve_dataset(context.dataset, class_names=names)
        chosen = select_stratified(len(items), labels, o.atlas_max_images, o.seed)
        atlas, means, skipped = dataset_atlas(context.classifier, [items[i] for i in chosen],
                                              len(names) if names else None,
                                              method=o.atlas_method, seed=o.seed,
                                              label_names=names)
        n_classes = len(atlas.counts)
        found = atlas_mod.suspects(atlas, o.alarm_concentration, o.alarm_specificity)
        fired = self.alarm.update(found)
        report.alarm_state = self.alarm.state()
        on = {s["class"] for s in found if self.alarm.streak[s["class"]] >= o.alarm_patience}
        for c in range(n_classes):
            if not np.isfinite(atlas.concentration[c]):
                continue
            name = atlas.name(c)
            report.scalars["atlas/%s/concentration" % name] = float(atlas.concentration[c])
            report.scalars["atlas/%s/specificity" % name] = float(atlas.specificity[c])
            report.scalars["alarm/%s" % name] = float(c in on)
            if o.log_images:
                report.images["atlas/%s" % name] = rendering.atlas_image(
                    means[c], atlas.maps[c], atlas.hot(c))
        report.scalars["atlas/images"] = float(sum(atlas.counts))
        if skipped:
            report.scalars["atlas/skipped"] = float(len(skipped))
        for s in fired:
            if global_weights is not None and codebook is not None and segmenter is not None:
                try:
                    s["concept"] = concept_in_region(atlas, means[s["class"]], s["class"],
                                                     global_weights, codebook, segmenter)
                except Exception as exc:  # the alarm goes out without the concept
                    logger.debug("alarm: no NormLIME concept for %r: %s", s["name"], exc)
            message = alarm_message(s, report.epoch)
            report.texts["alarm/%s/evidence" % s["name"]] = message
            report.alarms.append(message)
            logger.warning(message)
        return atlas
