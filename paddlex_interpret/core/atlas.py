"""The class atlas: where, in image coordinates, a model's explanations of each class sit across a
dataset, and how much sharper that place is than the class's own images would make it.

Each image's explanation map (a gradient map, or LIME painted over its superpixels) becomes a mass
distribution: its positive part, summed to 1. A class's *atlas* is the mean of its images' maps.
Its *hot region* is the smallest set of pixels holding :data:`HOT_MASS` of the atlas's mass.

*Concentration* compares how little of the image that region covers with what the same maps give
once their positions are shuffled (each map rolled by a random offset, the same as moving its
evidence elsewhere in the image): ``concentration = shuffled hot area / hot area``. Evidence that
follows objects spread over the image makes a broad atlas whose area shuffling barely changes
(about 1); evidence that sits in one place in every image (a watermark in a fixed corner) makes a
sharp atlas that shuffling spreads out (several times larger). *Specificity* is the share of the
hot region's mass that is this class's, against the mean of the other classes' atlases there
(``own / (own + others)``: 0.5 when every class looks there, as at objects centred in every photo,
1 when only this class does); NaN when the model gives no image to another class (nothing to
compare with).

The atlas is a picture of where the gradients look and a source of regions to test; whether the
model *reads* a region is decided by intervention (:mod:`~paddlex_interpret.core.shortcut`):
gradient maps move off a shortcut once the model is sure of the class.

Example::

    atlas = class_atlas(maps, predicted, n_classes=3, seed=0)
    atlas.concentration          # (3,) NaN for a class with too few images
    atlas.region(2)              # (x0, y0, x1, y1) of class 2's hot region
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["ClassAtlas", "class_atlas", "mass_map", "hot_region", "HOT_MASS", "MIN_IMAGES",
           "place_name", "ATLAS_METHODS"]

#: the gradient maps an atlas can be made of (names of
#: :data:`~paddlex_interpret.core.saliency.METHODS`), the default first
ATLAS_METHODS = ("input_x_gradient", "gradcam", "integrated_gradients")

#: share of a map's mass its hot region holds (0.5 let the diffuse half of a map that also reads
#: the object hide a watermark)
HOT_MASS = 0.2
#: a class with fewer images gets no score (too few maps for a mean)
MIN_IMAGES = 4


def mass_map(m: npt.ArrayLike) -> np.ndarray | None:
    """The positive part of a ``(H, W)`` map summed to 1, or None when it has no positive mass."""
    m = np.maximum(np.asarray(m, np.float64), 0.0)
    total = m.sum()
    if not np.isfinite(total) or total <= 0:
        return None
    return m / total


def hot_region(atlas: np.ndarray, mass: float = HOT_MASS) -> np.ndarray:
    """``(H, W)`` bool: the fewest pixels of ``atlas`` (a mass map) holding ``mass`` of it."""
    flat = atlas.ravel()
    order = np.argsort(-flat, kind="stable")
    k = int(np.searchsorted(np.cumsum(flat[order]), mass * flat.sum())) + 1
    out = np.zeros(flat.size, bool)
    out[order[:min(k, flat.size)]] = True
    return out.reshape(atlas.shape)


def _shuffled_area(maps, rng, shuffles, mass):
    h, w = maps.shape[1:]
    areas = []
    for _ in range(shuffles):
        dy = rng.integers(0, h, len(maps))
        dx = rng.integers(0, w, len(maps))
        moved = np.mean([np.roll(m, (a, b), axis=(0, 1)) for m, a, b in zip(maps, dy, dx)], 0)
        areas.append(hot_region(moved, mass).mean())
    return float(np.mean(areas))


def place_name(region: np.ndarray) -> str:
    """Where a ``(H, W)`` bool region's centre of mass lies, in words ("bottom-right", "centre")."""
    ys, xs = np.nonzero(region)
    h, w = region.shape
    row = ("top", "middle", "bottom")[min(int(3 * ys.mean() / h), 2)]
    col = ("left", "centre", "right")[min(int(3 * xs.mean() / w), 2)]
    if row == "middle":
        return "centre" if col == "centre" else "middle-" + col
    return row + ("" if col == "centre" else "-" + col)


@dataclass
class ClassAtlas:
    """Per class ``c`` of ``n_classes``: ``maps[c]`` its atlas (``(H, W)`` mass map, zeros when it
    has no images), ``counts[c]`` its images, ``concentration[c]`` and ``specificity[c]`` (NaN
    below :data:`MIN_IMAGES`), ``hot_area[c]`` and ``shuffled_area[c]`` (shares of the image)."""

    maps: np.ndarray
    counts: np.ndarray
    concentration: np.ndarray
    specificity: np.ndarray
    hot_area: np.ndarray
    shuffled_area: np.ndarray
    settings: Dict = field(default_factory=dict)
    label_names: Optional[List[str]] = None

    def hot(self, c: int) -> np.ndarray:
        """``(H, W)`` bool hot region of class ``c``."""
        return hot_region(self.maps[c], self.settings.get("hot_mass", HOT_MASS))

    def region(self, c: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` (exclusive ends) bounding class ``c``'s hot region."""
        ys, xs = np.nonzero(self.hot(c))
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    def name(self, c: int) -> str:
        return self.label_names[c] if self.label_names else str(c)

    def scores(self) -> dict[str, tuple[float, float, int]]:
        """``{class name: (concentration, specificity, images)}`` of the scored classes."""
        return {self.name(c): (float(self.concentration[c]), float(self.specificity[c]),
                               int(self.counts[c]))
                for c in range(len(self.counts)) if np.isfinite(self.concentration[c])}


def class_atlas(maps: Sequence[np.ndarray] | np.ndarray, classes: npt.ArrayLike, n_classes: int,
                seed: int = 0, shuffles: int = 16, mass: float = HOT_MASS,
                min_images: int = MIN_IMAGES, label_names: Sequence[str] | None = None
                ) -> ClassAtlas:
    """:class:`ClassAtlas` of explanation ``maps`` (``(N, H, W)`` or a list of equal-sized maps,
    image coordinates) grouped by ``classes`` (``(N,)`` ints: the predicted or true class of each
    image). Maps without positive mass are left out; ``seed`` drives the shuffled baseline."""
    classes = np.asarray(classes, np.int64).reshape(-1)
    if len(classes) != len(maps):
        raise ValueError("%d maps but %d classes" % (len(maps), len(classes)))
    if len(classes) and (classes.min() < 0 or classes.max() >= n_classes):
        raise ValueError("classes must lie in [0, %d)" % n_classes)
    masses = {i: m for i, m in enumerate(mass_map(m) for m in maps) if m is not None}
    keep = list(masses)
    if not keep:
        raise ValueError("no map has positive mass")
    shape = masses[keep[0]].shape
    if any(masses[i].shape != shape for i in keep):
        raise ValueError("the maps must share one shape (image coordinates), got %s"
                         % sorted({masses[i].shape for i in keep}))
    rng = np.random.default_rng(seed)
    atlas = np.zeros((n_classes,) + shape)
    counts = np.zeros(n_classes, np.int64)
    conc, spec, area, shuffled = (np.full(n_classes, np.nan) for _ in range(4))
    for c in range(n_classes):
        own = np.stack([masses[i] for i in keep if classes[i] == c] or [np.zeros(shape)])
        counts[c] = sum(1 for i in keep if classes[i] == c)
        if counts[c]:
            atlas[c] = own.mean(0)
        if counts[c] >= min_images:
            hot = hot_region(atlas[c], mass)
            area[c] = hot.mean()
            shuffled[c] = _shuffled_area(own, rng, shuffles, mass)
            conc[c] = shuffled[c] / area[c]
    for c in np.flatnonzero(np.isfinite(conc)).tolist():
        others = [o for o in range(n_classes) if o != c and counts[o]]
        if not others:  # no other class to compare with: undefined, not "only this class"
            continue
        hot = hot_region(atlas[c], mass)
        elsewhere = np.mean([atlas[o][hot].sum() for o in others])
        own = atlas[c][hot].sum()
        spec[c] = own / (own + elsewhere)
    return ClassAtlas(atlas, counts, conc, spec, area, shuffled,
                      settings={"hot_mass": float(mass), "shuffles": int(shuffles),
                                "seed": int(seed), "min_images": int(min_images)},
                      label_names=list(label_names) if label_names is not None else None)
