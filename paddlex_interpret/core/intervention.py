"""Does a model read a region as a class? Measured by intervention, on the model's predictions
alone (no gradients: it works for every :class:`~paddlex_interpret.core.classifier.Classifier`,
a live network, a ``paddle.nn.Layer`` or a deployed inference model).

Images are the model's views, ``(N, H, W, 3)`` uint8, grouped by the class the model gives them;
a *box* is ``(x0, y0, x1, y1)`` in view pixels, exclusive ends. For a class ``c`` and a box:

* the class's *template* is the per-pixel median of the images the model gives to ``c`` (those
  of ``c``, where the labels are known). A
  shortcut at a fixed place is what the class's images share there: the median keeps it intact
  (while more than half of the images carry it) and removes what moves or varies (objects,
  backgrounds). So a transplant moves what the class has in common at that place, never one
  image's object (per-image pairs would paste objects that happen to sit in the box).
* *transplant*: the template's box pasted onto every image the model gives to another class
  (surely: :data:`SURE`, and rightly where the labels are known); the *flip rate* is the share of
  those the model then gives to ``c``.
  This is the alarm's measure (:mod:`~paddlex_interpret.core.shortcut`): a few pixels that turn
  other classes' images into ``c`` are read by the model as ``c``, whatever its gradients say.
  It does not saturate: the images it is measured on are the ones the model is *not* sure are
  ``c``. A *control* transplant (another class's template in the same box) tells what the
  template brings from what the box takes away (:meth:`InterventionTest.turned`).
* *hide*: the box replaced on ``c``'s own images with a neutral fill (``fill='auto'``'s rule,
  :class:`~paddlex_interpret.core.fill.AutoFill`: a blank the model is not sure of a class
  on); the *drop* is how far p(c) falls on average, and *left* how many images leave ``c``. A
  shortcut beside the object can be sufficient without being necessary, so the drop is evidence
  for a person, not the verdict.
* the *tight* box (:meth:`InterventionTest.tighten`): the smallest box inside a confirmed one
  that still carries the effect, found by trimming each side as far as the transplant still
  turns the images.
* *masked* interventions move only the box's *shared* pixels (:meth:`InterventionTest.
  shared_mask`: those the class's images carry the same and the targets do not): a shortcut
  no box holds alone, a frame around the image or a few stamped marks, is tested as the pixels
  that make it (the box is then their bounding box, :meth:`InterventionTest.shared_box`), and
  the rest of the box (the object, the background) stays the target's own.
* the *scan* (:meth:`InterventionTest.scan`): the transplant of each cell of a grid (a quarter of
  the view a side, half-overlapping: 7 x 7 cells) onto a few of the other classes' images, scored
  by how many of them it turns into ``c``: a map of where the class's template carries the class,
  made of predictions only.

Example::

    test = InterventionTest(classifier, views)            # one batch of predictions
    ev = test.evidence(2, (56, 56, 62, 62))               # transplant + hide of class 2's box
    ev.flipped, ev.targets, ev.drop
    test.tighten(2, (48, 48, 64, 64), need=ev.flipped)    # the smallest box that still does it
    test.evidence(1, test.shared_box(1), masked=True)     # only the pixels class 1 shares
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

from .classifier import ClassifierLike, as_classifier, run_in_batches
from .fill import BLANKS, AutoFill, FillChoice, FillSpec, make_fill
from .regions import Box, clip_box

__all__ = ["Evidence", "InterventionTest", "paste", "MIN_OWN", "MIN_TARGETS", "SURE",
           "SAME", "SHARED_BY", "MIN_SHARED", "SCAN_CELLS", "SCAN_TARGETS"]

#: a class needs this many images of its own for a template: a median of fewer keeps what a few
#: of them have in one place by chance (an object), not what the class shares
MIN_OWN = 10
#: a transplant needs this many targets for its flip rate to mean anything
MIN_TARGETS = 8
#: a target is an image the model gives to another class at least this surely: an image on the
#: fence between classes turns with any change, which says nothing about the region pasted
SURE = 0.5
#: a pixel is *shared* by a class when at least SHARED_BY of its images are within SAME grey
#: levels of its template there (every channel) and fewer than half of the targets are; a
#: region must hold MIN_SHARED of them: a stamped shortcut is the same pixels in every image of
#: its class, an object part (a garment's centre in aligned photos, a blob a few images have in
#: one place) is not
SAME = 16
SHARED_BY = 0.75
MIN_SHARED = 4
#: the scan's grid: cells of 1/SCAN_CELLS of the view a side, half-overlapping
SCAN_CELLS = 4
#: the scan pastes each cell onto at most this many of the other classes' images
SCAN_TARGETS = 8
_EPS = 1e-12


def paste(images: npt.ArrayLike, source: npt.ArrayLike, box: Sequence[int],
          mask: npt.ArrayLike | None = None) -> np.ndarray:
    """Copies of ``images`` (``(N, H, W, 3)``) with ``source``'s pixels (one ``(H, W, 3)`` image, or
    one per image) inside ``box`` (only where ``mask``, an ``(H, W)`` bool, is set, if given)."""
    x0, y0, x1, y1 = box
    out = np.array(images, dtype=np.uint8, copy=True)
    src = np.asarray(source)
    if mask is None:
        out[:, y0:y1, x0:x1] = src[..., y0:y1, x0:x1, :]
        return out
    inside = np.zeros(out.shape[1:3], bool)
    inside[y0:y1, x0:x1] = np.asarray(mask, bool)[y0:y1, x0:x1]
    out[:, inside] = np.broadcast_to(src, out.shape)[:, inside] if src.ndim == 4 else src[inside]
    return out


@dataclass
class Evidence:
    """The two interventions on one box of one class.

    ``flipped`` of ``targets`` images of other classes turned into the class by the transplant
    and not by a control transplant (``control``: those a control turns too, left out:
    :meth:`InterventionTest.turned`); ``shared`` pixels of the box the class's images carry the
    same and the targets do not (:meth:`InterventionTest.shared`); ``masked``: the
    interventions moved those pixels only, not the whole box;
    ``left`` of ``own`` images of the class left it when the box was hidden with ``fill``, and
    ``drop`` is the mean fall of p(class) there (NaN when not measured: no own image, or not
    hidden). ``view`` is the ``(H, W)`` of the model's view the box is in."""

    box: Box
    flipped: int
    targets: int
    control: int = 0
    shared: int = 0
    own: int = 0
    left: int = 0
    drop: float = float("nan")
    fill: Optional[str] = None
    view: Tuple[int, int] = (0, 0)
    masked: bool = False

    @property
    def flip_rate(self) -> float:
        """``flipped / targets`` (NaN without targets)."""
        return self.flipped / self.targets if self.targets else float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"], d["view"] = list(self.box), list(self.view)
        d["flip_rate"] = self.flip_rate
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Evidence:
        keep = {k: v for k, v in d.items() if k != "flip_rate"}
        keep["box"], keep["view"] = tuple(d["box"]), tuple(d.get("view", (0, 0)))
        return cls(**keep)


class InterventionTest:
    """The interventions of the module docstring on ``views`` (``(N, H, W, 3)`` uint8, one shape)
    for ``classifier`` (a :class:`~paddlex_interpret.core.classifier.Classifier` or a function
    ``images -> probabilities``). The predictions of the unchanged views are made once, here.

    Args:
        labels: the views' true classes (``(N,)`` ints, ``-1`` where unknown), or None. With
            labels a class's images are those of the class the model gives to it, and the
            targets are images of other classes that the model gets right (turning an image it
            already gets wrong says little); without, the model's predictions stand for them.
        batch_size: images per forward pass.
        fill: how ``hide`` fills a box: ``'auto'`` (the blank rule of
            :class:`~paddlex_interpret.core.fill.AutoFill`, with the views' mean colour as
            a candidate) or a name/colour of
            :func:`~paddlex_interpret.core.fill.make_fill`.
    """

    def __init__(self, classifier: ClassifierLike, views: npt.ArrayLike,
                 labels: npt.ArrayLike | None = None, batch_size: int = 64,
                 fill: FillSpec = "auto"):
        views = np.asarray(views)
        if views.ndim != 4 or views.shape[-1] != 3 or views.dtype != np.uint8:
            raise ValueError("views must be (N, H, W, 3) uint8 images of one size, got %s %s"
                             % (views.dtype, views.shape))
        if labels is not None:
            labels = np.asarray(labels, np.int64).reshape(-1)
            if len(labels) != len(views):
                raise ValueError("%d labels for %d views" % (len(labels), len(views)))
        self.classifier = as_classifier(classifier)
        self.views = np.ascontiguousarray(views)
        self.batch_size = int(batch_size)
        self.fill = fill
        self.passes = 0
        self.base = self.predict(self.views)
        self.predicted = np.argmax(self.base, axis=1)
        self.n_classes = self.base.shape[1]
        #: where a view's true class is known and the model gets it right, or True everywhere
        self.right = (np.ones(len(views), bool) if labels is None else
                      (labels < 0) | (labels == self.predicted))
        self._templates: Dict[int, Optional[np.ndarray]] = {}
        self._flips: Dict[Tuple[int, Box, bool], Tuple[int, int]] = {}
        self._shared: Dict[int, np.ndarray] = {}
        self._fill_choice: AutoFill | None = None
        self._blank: np.ndarray | None = None
        self._hide_blank: FillChoice | None = None
        self._scans: Dict[int, Tuple[list[Box], np.ndarray]] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.views.shape[1]), int(self.views.shape[2])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities of ``images``, ``batch_size`` at a time (counted in ``passes``)."""
        images = np.asarray(images)
        self.passes += len(images)
        with self.classifier.hold_weights():
            return run_in_batches(lambda sl: self.classifier.predict(images[sl]), len(images),
                                  self.batch_size)

    def own(self, c: int) -> np.ndarray:
        """Indices of the views the model gives to ``c`` (rightly, where labels are known)."""
        return np.flatnonzero((self.predicted == int(c)) & self.right)

    def others(self, c: int) -> np.ndarray:
        """Indices of the *targets* of class ``c``: the views the model gives to another class
        (rightly, where labels are known), with a probability of at least :data:`SURE`."""
        return np.flatnonzero((self.predicted != int(c)) & self.right
                              & (self.base.max(axis=1) >= SURE))

    def testable(self, c: int) -> bool:
        """Whether class ``c`` has a template and targets (:data:`MIN_OWN`, :data:`MIN_TARGETS`)."""
        return len(self.own(c)) >= MIN_OWN and len(self.others(c)) >= MIN_TARGETS

    def template(self, c: int) -> np.ndarray | None:
        """The per-pixel median of class ``c``'s views (uint8), or None below :data:`MIN_OWN`."""
        c = int(c)
        if c not in self._templates:
            own = self.own(c)
            self._templates[c] = (np.rint(np.median(self.views[own], axis=0)).astype(np.uint8)
                                  if len(own) >= MIN_OWN else None)
        return self._templates[c]

    def _template(self, c: int) -> np.ndarray:
        """:meth:`template`, which class ``c`` must have (a class the test can test)."""
        t = self.template(c)
        if t is None:
            raise ValueError("class %d has fewer than %d views of its own" % (c, MIN_OWN))
        return t

    # ------------------------------------------------------------------ transplant
    def flips(self, c: int, box: Sequence[int], masked: bool = False) -> int:
        """How many of class ``c``'s targets the transplant of ``box`` (its shared pixels only
        when ``masked``) turns into ``c`` and no control transplant does (:meth:`turned`'s
        first count less its second)."""
        turned, control = self.turned(c, box, masked)
        return turned - control

    def turned(self, c: int, box: Sequence[int], masked: bool = False) -> tuple[int, int]:
        """``(turned, control)``: how many of class ``c``'s targets the transplant of ``box``
        turns into ``c``, and how many of those a *control* transplant turns into ``c`` too. The
        control tells what the template brings from what the box takes away: pasting one
        class's background over another class's watermark turns that class's images into
        whatever the model falls back to, whatever is pasted. A target's controls are the
        templates of (at most two) classes other than ``c`` and its own, or with two classes
        the blank ``fill='auto'`` would choose. ``masked``: the box's shared pixels only
        (:meth:`shared_mask`), for the transplant and its controls alike, and the blanks
        (black, grey, the views' mean colour) are controls too: a mask is drawn by how the
        class's images differ from the targets, so it can be an absence (the background where
        the targets have their object, such as the sleeves of a shirt on a T-shirt's
        silhouette), which any blank pasted there brings as well."""
        c, box, masked = int(c), clip_box(box, self.shape), bool(masked)
        key = (c, box, masked)
        if key not in self._flips:
            targets = self.others(c)
            mask = self.shared_mask(c) if masked else None
            probs = self.predict(paste(self.views[targets], self._template(c), box, mask))
            hit = targets[np.argmax(probs, axis=1) == c]
            control = 0
            for d in np.unique(self.predicted[hit]):
                group = hit[self.predicted[hit] == d]
                turned = np.zeros(len(group), bool)
                for source in self._controls(c, d, masked):
                    turned |= np.argmax(self.predict(paste(self.views[group], source, box,
                                                           mask)), axis=1) == c
                control += int(turned.sum())
            self._flips[key] = (len(hit), control)
        return self._flips[key]

    def _controls(self, c, d, masked=False):
        """What a control transplant pastes for a target the model gives to ``d``: see
        :meth:`turned`."""
        others = [e for e in range(self.n_classes) if e not in (c, d)
                  and self.template(e) is not None]
        blank = lambda colour: np.broadcast_to(np.asarray(colour, np.uint8),  # noqa: E731
                                               self.views.shape[1:])
        if masked:
            mean = np.rint(self.views.reshape(-1, 3).mean(axis=0))
            return ([self._template(e) for e in others[:2]]
                    + [blank(v) for v in ((0, 0, 0), (128, 128, 128), mean)])
        if others:
            return [self._template(e) for e in others[:2]]
        return [blank(self._blank_colour())]

    def _blank_colour(self):
        """The blank (black, grey, the views' mean colour) the model is least sure of a class
        on (``fill='auto'``'s first rule)."""
        if self._blank is None:
            mean = np.rint(self.views.reshape(-1, 3).mean(axis=0))
            chooser = AutoFill(candidates=BLANKS, colours={"dataset": mean})
            segments = np.zeros(self.shape, np.int32)
            choice = chooser.choose(self._counted, self.views[0], segments)
            self._blank = np.asarray(choice.fill_image[0, 0], np.uint8)
        return self._blank

    def tighten(self, c: int, box: Sequence[int], need: int, masked: bool = False) -> Box:
        """The smallest box inside ``box`` (trimming one side at a time, largest trim first by
        bisection, until a round trims nothing) whose transplant (``masked``: of its shared
        pixels) still turns at least ``need`` of class ``c``'s targets into ``c``."""
        box = list(clip_box(box, self.shape))
        changed = True
        while changed:
            changed = False
            for side in range(4):
                span = (box[2] - box[0]) if side in (0, 2) else (box[3] - box[1])
                lo, hi = 0, span - 1  # trims known to pass / the most that could
                while lo < hi:
                    mid = (lo + hi + 1) // 2
                    if self.flips(c, _trimmed(box, side, mid), masked) >= need:
                        lo = mid
                    else:
                        hi = mid - 1
                if lo:
                    box = list(_trimmed(box, side, lo))
                    changed = True
        x0, y0, x1, y1 = box
        return x0, y0, x1, y1

    def shared_mask(self, c: int) -> np.ndarray:
        """``(H, W)`` bool: the pixels class ``c``'s images carry the same (at least
        :data:`SHARED_BY` of them within :data:`SAME` grey levels of its template, every
        channel) and fewer than half of its targets do (made once per class)."""
        c = int(c)
        if c not in self._shared:
            template = self._template(c).astype(np.int16)

            def near(idx):
                return np.mean([np.abs(v.astype(np.int16) - template).max(axis=-1) <= SAME
                                for v in self.views[idx]], axis=0)

            self._shared[c] = (near(self.own(c)) >= SHARED_BY) & (near(self.others(c)) < 0.5)
        return self._shared[c]

    def shared(self, c: int, box: Sequence[int]) -> int:
        """How many pixels of ``box`` class ``c``'s images carry the same, and its targets do
        not (:meth:`shared_mask`)."""
        x0, y0, x1, y1 = clip_box(box, self.shape)
        return int(self.shared_mask(c)[y0:y1, x0:x1].sum())

    def shared_box(self, c: int) -> Box | None:
        """The bounding box of class ``c``'s shared pixels (:meth:`shared_mask`), or None when
        it has fewer than :data:`MIN_SHARED`."""
        mask = self.shared_mask(c)
        if mask.sum() < MIN_SHARED:
            return None
        ys, xs = np.nonzero(mask)
        return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1

    # ------------------------------------------------------------------ hide
    def _fills(self, images, region):
        """Per image, ``(fill image, fill name)`` for hiding ``region`` (an ``(H, W)`` bool; see
        the class docstring)."""
        segments = region.astype(np.int32)
        if not (isinstance(self.fill, str) and self.fill == "auto"):
            name = self.fill if isinstance(self.fill, str) else "colour"
            return [(make_fill(im, segments, self.fill), name) for im in images]
        if self._fill_choice is None:
            colour = self.views.reshape(-1, 3).mean(axis=0)
            self._fill_choice = AutoFill(colours={"dataset": colour})
            first = self._fill_choice.choose(self._counted, self.views[0], segments)
            self._hide_blank = first if first.stage == "blank" else None
        if self._hide_blank is not None:
            return [(self._hide_blank.fill_image, self._hide_blank.name) for _ in images]
        # every blank is evidence to this model: the fill is chosen per image
        chooser = self._fill_choice
        return [(choice.fill_image, choice.name) for choice in
                (chooser.choose(self._counted, im, segments) for im in images)]

    def _counted(self, images):
        self.passes += len(images)
        return self.classifier.predict(images)

    def hide(self, c: int, box: Sequence[int], masked: bool = False
             ) -> tuple[float, int, int, str | None]:
        """``(drop, left, own, fill name)`` of hiding ``box`` (``masked``: its shared pixels) on
        class ``c``'s own views."""
        c, (x0, y0, x1, y1) = int(c), clip_box(box, self.shape)
        own = self.own(c)
        if not len(own):
            return float("nan"), 0, 0, None
        region = np.zeros(self.shape, bool)
        region[y0:y1, x0:x1] = self.shared_mask(c)[y0:y1, x0:x1] if masked else True
        fills = self._fills(self.views[own], region)
        hidden = np.array(self.views[own], copy=True)
        for i, (fill, _) in enumerate(fills):
            hidden[i, region] = fill[region]
        probs = self.predict(hidden)
        drop = float(np.mean(self.base[own, c] - probs[:, c]))
        left = int(np.sum(np.argmax(probs, axis=1) != c))
        names = sorted({n for _, n in fills})
        return drop, left, len(own), "/".join(names)

    def evidence(self, c: int, box: Sequence[int], hide: bool = True,
                 masked: bool = False) -> Evidence:
        """:class:`Evidence` of ``box`` for class ``c`` (the hide only when ``hide``; both
        interventions on the box's shared pixels only when ``masked``)."""
        box = clip_box(box, self.shape)
        turned, control = self.turned(c, box, masked)
        ev = Evidence(box, turned - control, len(self.others(c)), control=control,
                      shared=self.shared(c, box), view=self.shape, masked=bool(masked))
        if hide:
            ev.drop, ev.left, ev.own, ev.fill = self.hide(c, box, masked)
        return ev

    # ------------------------------------------------------------------ scan
    def scan_boxes(self) -> list[Box]:
        """The scan's cells: side ``1/SCAN_CELLS`` of the view, stride half a side."""
        h, w = self.shape
        sy, sx = max(2, -(-h // SCAN_CELLS)), max(2, -(-w // SCAN_CELLS))
        ys = sorted({min(y, h - sy) for y in range(0, h - sy + sy // 2, sy // 2)})
        xs = sorted({min(x, w - sx) for x in range(0, w - sx + sx // 2, sx // 2)})
        return [(x, y, x + sx, y + sy) for y in ys for x in xs]

    def scan_targets(self, c: int) -> np.ndarray:
        """At most :data:`SCAN_TARGETS` of class ``c``'s targets, spread evenly over them."""
        others = self.others(c)
        if len(others) <= SCAN_TARGETS:
            return others
        return others[np.linspace(0, len(others) - 1, SCAN_TARGETS).round().astype(int)]

    def scan(self, c: int) -> tuple[list[Box], np.ndarray]:
        """``(boxes, scores)``: per scan cell, how many of the scan's targets pasting the
        template's cell onto them turns into ``c``, plus (below 1, to break ties) the mean rise
        of log p(c) on them over 100 (made once per class). Counting turned images ranks the
        cells as the test will judge them; the mean rise alone favours cells that move p(c) a
        little on every image over the one that turns most of them."""
        c = int(c)
        if c in self._scans:
            return self._scans[c]
        boxes, targets = self.scan_boxes(), self.scan_targets(c)
        template = self._template(c)
        batch = np.concatenate([paste(self.views[targets], template, b) for b in boxes])
        probs = self.predict(batch).reshape(len(boxes), len(targets), -1)
        turned = (np.argmax(probs, axis=2) == c).sum(axis=1)
        rise = np.log(probs[..., c] + _EPS) - np.log(self.base[targets, c] + _EPS)[None]
        self._scans[c] = boxes, turned + np.clip(rise.mean(axis=1), 0.0, 99.0) / 100.0
        return self._scans[c]

def _trimmed(box: Sequence[int], side: int, t: int) -> Box:
    x0, y0, x1, y1 = box
    return ((x0 + t, y0, x1, y1), (x0, y0 + t, x1, y1), (x0, y0, x1 - t, y1),
            (x0, y0, x1, y1 - t))[side]
