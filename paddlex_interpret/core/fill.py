"""The fill: what hidden superpixels are replaced with. :func:`make_fill` builds a named fill,
a colour or a given image; ``fill='auto'`` (:class:`AutoFill`) chooses it by measuring what the
model makes of it, per model and, where the model needs it, per image.

LIME's weights say how the model's output changes when a superpixel is replaced by the *fill*,
so the fill defines "absent". A fill that the model reads as evidence (black read as a dark
class, the per-superpixel mean that keeps an object's colour, a blur that keeps its shape) makes
the weights measure the difference between two kinds of evidence instead of evidence against
none: the deciding object can even get a negative weight. The score of a candidate is how
uncertain the model is on the fully hidden image (every superpixel replaced): the entropy of its
predicted distribution, normalised by ``log(num_classes)`` (1 = uniform). The rule:

1. **A blank first.** Blanks (black, grey, a given colour such as the dataset's mean) carry
   nothing of the image, so their score is the model's, the same for every image. The blank with
   the highest score is taken if the model is not sure of a class on it (score at least
   ``neutral``, 0.1 by default: a 10-class model at about 96% on one class, a 3-class one at 99%).
   The image-derived fills are not preferred to it even when their score is higher: their
   uncertainty can be that of a blurred or flattened object, not of no object.
2. **Else, per image, every candidate.** Where the model reads every blank as one class (a blank
   is evidence to it), the candidate with the highest score on this image, the image-derived
   ``'median'``, ``'mean'`` and ``'blur'`` included.

One batch of ``len(candidates)`` forward passes per image; no randomness, so it is the same for
the same image and model; ties go to the earlier candidate. Measurements: BENCHMARKS.md, "The
fill rule, set on other images" (how the rule and its threshold were chosen) and "The fill:
chosen by measurement".

Candidates: ``'black'`` (PaddleX 1.3), ``'grey'``, ``'median'``, ``'mean'``, ``'blur'``, and named
colours given by the caller (e.g. ``{'dataset': mean RGB of the dataset}``, which the training
hook and NormLIME know).

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.fill import AutoFill
    >>> def model(images):  # p(bright) = mean brightness: certain on black, unsure on grey
    ...     m = images.mean(axis=(1, 2, 3)) / 255.0
    ...     return np.stack([1 - m, m], axis=1)
    >>> img = np.full((8, 8, 3), 200, np.uint8); seg = np.zeros((8, 8), np.int32)
    >>> AutoFill(candidates=("black", "grey")).choose(model, img, seg).name
    'grey'
    >>> AutoFill(candidates=("black", "grey")).choose(model, img, seg).stage
    'blank'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Sequence, TYPE_CHECKING, Union

import numpy as np
import numpy.typing as npt

from .classifier import ClassifierLike, as_classifier

if TYPE_CHECKING:
    from .explanation import Explanation

__all__ = ["make_fill", "FILLS", "FillSpec", "AutoFill", "FillChoice", "CANDIDATES", "BLANKS",
           "NEUTRAL", "RULE_VERSION", "FILL_CHOICES", "resolve_fill", "fill_value"]

#: The named fills of :func:`make_fill`.
FILLS = ("black", "grey", "median", "mean", "blur")

#: Every name ``fill=`` takes: ``'auto'`` and the named fills of :func:`make_fill`.
FILL_CHOICES = ("auto",) + FILLS
#: The fills ``'auto'`` tries, in the order ties are broken: every named fill.
CANDIDATES = FILLS
#: The named candidates that carry nothing of the image (colours given by the caller are blanks
#: too).
BLANKS = ("black", "grey")
#: The least normalised entropy at which the model is "not sure of a class" on a blank.
NEUTRAL = 0.1
#: Which rule ``'auto'`` follows; a weights file built with another one is not reused.
RULE_VERSION = 2
#: a fill :func:`make_fill` takes: a name of :data:`FILLS`, a grey level, an RGB colour or an
#: ``(H, W, 3)`` image
FillSpec = Union[str, float, Sequence[float], np.ndarray]


def make_fill(image: npt.ArrayLike, segments: np.ndarray, fill: FillSpec = "black") -> np.ndarray:
    """The image hidden superpixels are replaced with.

    ``fill`` is ``'black'`` (PaddleX 1.3), ``'grey'`` (mid-grey 128: what ImageNet-style
    normalisations map to about 0), ``'median'`` (the image's per-channel median colour: a
    constant close to the background of most photos, so hidden regions look less out of
    distribution than black), ``'mean'`` (each superpixel's own mean colour), ``'blur'`` (a strong
    Gaussian blur), a number or RGB triple (a constant colour), or an ``(H, W, 3)`` array.
    """
    image = np.asarray(image)
    if isinstance(fill, str):
        if fill == "black":
            return np.zeros_like(image)
        if fill == "grey":
            return np.full_like(image, 128)
        if fill == "median":
            colour = np.median(image.reshape(-1, image.shape[2]), axis=0)
            return np.broadcast_to(np.rint(colour).astype(np.uint8), image.shape).copy()
        if fill == "mean":
            n = int(segments.max()) + 1
            flat = segments.ravel()
            counts = np.bincount(flat, minlength=n).astype(np.float64)
            means = np.stack([np.bincount(flat, weights=image[..., c].ravel(), minlength=n)
                              for c in range(image.shape[2])], axis=1) / np.maximum(counts, 1)[:, None]
            return np.rint(means[segments]).astype(np.uint8)
        if fill == "blur":
            import cv2

            sigma = max(image.shape[:2]) / 16.0
            return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma)
        raise ValueError("unknown fill %r; choose one of %s, 'auto', a colour or an image"
                         % (fill, FILLS))
    arr = np.asarray(fill)
    if arr.shape == image.shape:
        return arr.astype(np.uint8)
    if arr.ndim <= 1 and arr.size in (1, image.shape[2]):
        return np.broadcast_to(np.clip(arr, 0, 255).astype(np.uint8), image.shape).copy()
    raise ValueError("fill array of shape %s does not fit an image of shape %s"
                     % (arr.shape, image.shape))


@dataclass
class FillChoice:
    """The fill chosen for one image: its ``name``, the ``fill_image``, every candidate's
    normalised entropy (``scores``) and the ``stage`` of the rule that decided: ``'blank'`` (the
    model is not sure of a class on the chosen blank) or ``'image'`` (every blank is evidence to
    the model, so every candidate competed on this image)."""

    name: str
    fill_image: np.ndarray
    scores: Dict[str, float] = field(default_factory=dict)
    value: object = None  # the name of a named fill, or the RGB of a colour candidate
    stage: str = "image"

    def describe(self) -> dict[str, Any]:
        return {"fill": "auto", "fill_chosen": self.name,
                "fill_value": self.value if self.value is not None else self.name,
                "fill_scores": {k: round(float(v), 4) for k, v in self.scores.items()},
                "fill_stage": self.stage,
                "fill_criterion": "the blank with the highest normalised entropy of the "
                                  "prediction on the fully hidden image if it is at least "
                                  "%g, else the candidate with the highest" % NEUTRAL}


def _normalised_entropy(probs: npt.ArrayLike) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-300, 1.0)
    n = p.shape[1]
    return -(p * np.log(p)).sum(axis=1) / np.log(n) if n > 1 else np.zeros(len(p))


class AutoFill:
    """Chooses the fill per image (see the module docstring).

    Args:
        candidates: names of :func:`make_fill`'s fills.
        colours: further candidates, ``{name: RGB}`` (e.g. the dataset's mean colour): blanks.
        neutral: the least normalised entropy on a blank for the rule's first stage.
    """

    def __init__(self, candidates: Sequence[str] = CANDIDATES,
                 colours: Mapping[str, Sequence[float]] | None = None, neutral: float = NEUTRAL):
        self.candidates = tuple(candidates)
        self.neutral = float(neutral)
        self.colours = {str(k): tuple(int(round(float(c))) for c in v)
                        for k, v in (colours or {}).items()}
        if not self.candidates and not self.colours:
            raise ValueError("AutoFill needs at least one candidate fill")

    def fills(self, image: np.ndarray, segments: np.ndarray) -> dict[str, np.ndarray]:
        """``{name: fill image}`` of every candidate for ``image``."""
        out = {name: make_fill(image, segments, name) for name in self.candidates}
        for name, colour in self.colours.items():
            out[name] = make_fill(image, segments, np.asarray(colour, dtype=np.uint8))
        return out

    def choose(self, classifier: ClassifierLike, image: np.ndarray, segments: np.ndarray
               ) -> FillChoice:
        """The :class:`FillChoice` for ``image`` and its superpixels, from one batch."""
        fills = self.fills(image, segments)
        names = list(fills)
        clf = as_classifier(classifier)
        with clf.hold_weights():
            probs = clf.predict(np.stack([fills[n] for n in names]))
        scores = dict(zip(names, _normalised_entropy(probs).tolist()))
        name, stage = self._decide(names, scores)
        value = list(self.colours[name]) if name in self.colours else name
        return FillChoice(name, fills[name], scores, value, stage)

    def _decide(self, names: list[str], scores: dict[str, float]) -> tuple[str, str]:
        """``(name, stage)`` by the module's rule; ``max`` keeps the first of equals."""
        blanks = [n for n in names if n in BLANKS or n in self.colours]
        if blanks:
            blank = max(blanks, key=lambda n: scores[n])
            if scores[blank] >= self.neutral:
                return blank, "blank"
        return max(names, key=lambda n: scores[n]), "image"

    def describe(self) -> dict[str, Any]:
        return {"fill": "auto", "fill_candidates": list(self.candidates) + list(self.colours),
                "fill_neutral": self.neutral}


def resolve_fill(fill: FillSpec | AutoFill, dataset_colour: Sequence[float] | None = None
                 ) -> FillSpec | AutoFill:
    """``'auto'`` -> :class:`AutoFill` (with the candidate ``'dataset'`` when the dataset's mean
    RGB ``dataset_colour`` is known); an :class:`AutoFill` as is; anything else (a name of
    :func:`make_fill`, a colour, an image) unchanged."""
    if isinstance(fill, str) and fill == "auto":
        return AutoFill(colours=None if dataset_colour is None else {"dataset": dataset_colour})
    return fill


def fill_value(explanation: Explanation, default: FillSpec = "black") -> FillSpec:
    """The fill an explanation was computed with, usable by
    :func:`make_fill` (e.g. for its metrics): the chosen one
    for ``fill='auto'``."""
    s = explanation.settings
    return s.get("fill_value", s.get("fill", default)) if s.get("fill") != "custom" else default
