"""Ground truth for explanation checks: does a model decide on an image's object, and does an
explanation point at it.

A model "relies" on the object of a class when hiding the object alone (replacing its pixels
with mid-grey) takes the class's probability away; only then can an explanation that misses the
object be called wrong.
"""
import numpy as np

from paddlex_interpret.core.classifier import as_classifier
from paddlex_interpret.core.fill import make_fill

__all__ = ["object_reliance", "relied_classes", "top_on_object", "peak_on_object"]


def object_reliance(classifier, items, fill="grey"):
    """``{label: mean drop of p(label)}`` over ``items`` (``(view, label, mask)``: the image as
    the model sees it, its class, the object's boolean mask) when the object alone is hidden
    with ``fill``."""
    clf = as_classifier(classifier)
    drops = {}
    for view, label, mask in items:
        hidden = np.where(np.asarray(mask, bool)[..., None], make_fill(view, None, fill), view)
        p = clf.predict(np.stack([view, hidden]))[:, int(label)]
        drops.setdefault(int(label), []).append(float(p[0] - p[1]))
    return {c: float(np.mean(d)) for c, d in drops.items()}


def relied_classes(reliance, threshold=0.3):
    """The classes of :func:`object_reliance` whose drop exceeds ``threshold``, sorted."""
    return sorted(c for c, d in reliance.items() if d > threshold)


def top_on_object(weights, segments, mask):
    """Whether the superpixel with the largest weight lies mostly (over half) on the object."""
    top = int(np.argmax(weights))
    return bool(np.asarray(mask, bool)[segments == top].mean() > 0.5)


def peak_on_object(heatmap, mask):
    """Whether a map's maximum is on the object."""
    return bool(np.asarray(mask, bool)[np.unravel_index(np.argmax(heatmap), heatmap.shape)])
