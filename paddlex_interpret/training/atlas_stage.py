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


def alarm_message(suspect, epoch):
    """One line a user reads: which class, where, since when, on what evidence."""
    x0, y0, x1, y1 = suspect["region"]
    return ("shortcut alarm at epoch %d: the explanations of class %r sit in the %s of the image "
            "(pixels x %d-%d, y %d-%d of the model's view) for %d checkpoints in a row: "
            "concentration %.1f (that region is %.1fx sharper than the class's images give "
            "with their positions shuffled), specificity %.2f (its share of the region's "
            "explanation mass against the other classes), over %d eval images. See the "
            "atlas/%s image; a model that reads a watermark, a patch or a border there "
            "scores well on data that carries it and fails on data that does not."
            % (epoch, suspect["name"], suspect["place"], x0, x1, y0, y1,
               suspect["checkpoints"], suspect["concentration"], suspect["concentration"],
               suspect["specificity"], suspect["images"], suspect["name"]))


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

    def run(self, context, report):
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
            message = alarm_message(s, report.epoch)
            report.texts["alarm/%s/evidence" % s["name"]] = message
            report.alarms.append(message)
            logger.warning(message)
        return atlas
