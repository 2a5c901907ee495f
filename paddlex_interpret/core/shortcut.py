"""The shortcut alarm: regions proposed by maps, confirmed by intervention
(:mod:`~paddlex_interpret.core.intervention`), remembered across checkpoints.

At a checkpoint (or in an audit), for every class ``c`` with a template and targets:

1. *candidates*: the boxes remembered for ``c`` (confirmed or suspected at an earlier
   checkpoint), and the boxes each proposer gives: :func:`propose_boxes` of a map of the class
   (the gradient atlas: cheap, but it moves off a shortcut once the model is sure of the class),
   the transplant scan's best cells (predictions only, and it does not saturate) and the
   class's *shared* pixels (those its images carry the same and other classes' do not, tested
   as a mask in their bounding box: a frame around the image, which no box holds alone);
2. each candidate's transplant: how many of the images of other classes (those the model gives
   to them, surely and, where labels are known, rightly) it turns into ``c``;
3. the best candidate (most turned, then the smaller) is *confirmed* when it turns at least
   ``flip`` (:data:`FLIP_ALARM`, one half) of them; then its tight box (the smallest inside it
   that still turns at least :data:`KEEP` of what it turns, and no fewer than ``flip``) is what
   is reported, with the hide on it, if the class's images carry the same pixels there
   (:data:`~paddlex_interpret.core.intervention.MIN_SHARED` of them, which the other classes'
   images do not): a stamped shortcut is the same pixels in every image of its class, an object
   part that the class's median image shows at a fixed place (the centre of aligned garments,
   a blob a few images have in one place) is not.

Gradients never decide: they only say where to look. :class:`ShortcutMemory` raises a class's
alarm at the first checkpoint that confirms it, re-tests its box at every later one, keeps it
raised while a re-test confirms it and clears it at a checkpoint where none does; it records
which classes were raised when (``alarms``, ``events``). An audit is one checkpoint without a
memory. :func:`verdict` is ``'alarm'`` when an alarm is raised, else ``'none'``.

Example::

    test = InterventionTest(classifier, views)
    memory = ShortcutMemory()
    check = check_shortcuts(test, maps={"gradient": atlas.maps}, memory=memory,
                            label_names=names)
    events = memory.update(check, epoch=6)     # [("raised", Alarm), ...]
    [a.message() for _, a in events]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .atlas import place_name
from .intervention import MIN_SHARED, Evidence, InterventionTest
from .regions import Box, box_area, describe_box, propose_boxes, top_boxes

__all__ = ["FLIP_ALARM", "KEEP", "SUSPECT", "REMEMBER", "IMAGES", "VERDICTS", "ClassCheck",
           "ShortcutCheck", "check_class", "check_shortcuts", "Alarm", "alarm_of",
           "ShortcutMemory", "verdict", "cleared_message"]

#: the share of the other classes' images a region's transplant must turn into the class for
#: the alarm: a model that reads a few pixels as the class more often than not reads them
FLIP_ALARM = 0.5
#: the tight box keeps at least this share of what the proposed box turns
KEEP = 0.9
#: a best candidate turning at least this share is remembered as a suspect and re-tested later
#: (half the alarm's share: where a model is starting to read a region)
SUSPECT = 0.25
#: boxes remembered per class (the most recent distinct ones)
REMEMBER = 4
#: what :func:`verdict` says
VERDICTS = ("none", "alarm")
#: the images (of a dataset, stratified by label) the alarm and the class atlas look at by
#: default, in the training hook, :func:`~paddlex_interpret.api.audit.audit` and the command
#: line alike: 40 a class for 3 classes (a flip rate over 80 images of other classes)
IMAGES = 120
#: maps proposing regions: ``{source name: (n_classes, H, W) maps}`` (None: no maps)
Maps = Optional[Mapping[str, Optional[Union[np.ndarray, Sequence[np.ndarray]]]]]


@dataclass
class ClassCheck:
    """One class at one check: every candidate ``(source, box, turned, masked)`` (``masked``:
    its shared pixels only were moved), the class's ``targets`` (images of other classes), the
    best candidate's ``source`` and ``proposal`` box, and ``evidence`` (of the tight box when
    ``confirmed``, with its hide; else of the best candidate, without)."""

    cls: int
    name: str
    targets: int
    tested: List[Tuple[str, Box, int, bool]] = field(default_factory=list)
    source: Optional[str] = None
    proposal: Optional[Box] = None
    evidence: Optional[Evidence] = None
    confirmed: bool = False

    def found_by(self, source: str, flip: float = FLIP_ALARM) -> bool:
        """Whether ``source``'s candidates alone hold one that turns at least ``flip``."""
        need = math.ceil(flip * self.targets)
        return any(s == source and n >= need for s, _, n, _ in self.tested)


@dataclass
class ShortcutCheck:
    """The classes checked (``classes``: id -> :class:`ClassCheck`), those that could not be
    (fewer than ``MIN_OWN`` images of their own or ``MIN_TARGETS`` of others), the threshold and
    the forward passes spent."""

    classes: Dict[int, ClassCheck]
    untestable: List[int]
    flip: float
    passes: int

    def confirmed(self) -> list[ClassCheck]:
        return [k for k in self.classes.values() if k.confirmed]


#: a candidate: ``(source, box, masked)``
Candidate = Tuple[str, Box, bool]


def _candidates(test: InterventionTest, c: int, maps: Maps,
                memory: ShortcutMemory | None, scan: bool) -> list[Candidate]:
    """The remembered boxes, each map's proposals, the scan's, the shared pixels' box (masked)."""
    side = tuple(-(-s // 4) for s in test.shape)
    out = [("memory", b, m) for b, m in (memory.boxes(c) if memory is not None else [])]
    for source, class_maps in (maps or {}).items():
        if class_maps is not None and c < len(class_maps):
            out += [(source, b, False) for b in propose_boxes(class_maps[c], side)]
    if scan:
        out += [("scan", b, False) for b in top_boxes(*test.scan(c))]
    shared = test.shared_box(c)
    if shared is not None:
        out.append(("shared", shared, True))
    return out


def _tight_evidence(test, c, box, need, full, masked, fallback=None):
    """The evidence of the tight box inside ``box`` keeping :data:`KEEP` of ``full`` turned
    images (and no fewer than ``need``), from ``fallback`` when ``box`` holds fewer now."""
    keep = max(need, math.ceil(KEEP * full))
    tight = test.tighten(c, box, keep, masked)
    if fallback is not None and test.flips(c, tight, masked) < keep:
        tight = test.tighten(c, fallback, keep, masked)
    return test.evidence(c, tight, masked=masked)


def check_class(test: InterventionTest, c: int, name: str,
                maps: Maps = None,
                memory: ShortcutMemory | None = None, scan: bool = True, flip: float = FLIP_ALARM,
                exhaustive: bool = False) -> ClassCheck:
    """:class:`ClassCheck` of class ``c`` (see the module docstring). A remembered alarm region
    that still turns enough images is confirmed (and tightened again) without asking the
    proposers (``exhaustive``: ask them all the same, to compare them)."""
    targets = len(test.others(c))
    need = math.ceil(flip * targets)
    check = ClassCheck(int(c), name, targets)
    for box, masked in memory.tight_boxes(c) if memory is not None else []:
        turned = test.flips(c, box, masked)
        check.tested.append(("memory", box, turned, masked))
        if turned >= need and not exhaustive:
            # tightened again (the model may need less of it now), keeping what the box it
            # was first tightened from turns now
            assert memory is not None
            proposal = memory.alarms[int(c)].proposal or box
            ev = _tight_evidence(test, c, box, need,
                                 max(turned, test.flips(c, proposal, masked)), masked, proposal)
            if ev.shared >= MIN_SHARED:
                check.source, check.proposal, check.evidence = "memory", proposal, ev
                check.confirmed = True
                return check
    seen = {(b, m) for _, b, _, m in check.tested}
    for source, box, masked in _candidates(test, c, maps, memory, scan):
        if (box, masked) not in seen:  # a box two proposers give is tested (and named) once
            seen.add((box, masked))
            check.tested.append((source, box, test.flips(c, box, masked), masked))
    if not check.tested:
        return check
    # most turned, then the smaller box, then the first proposed (the memory's before the rest)
    source, box, turned, masked = max(check.tested, key=lambda t: (t[2], -box_area(t[1])))
    check.source, check.proposal = source, box
    if turned < need:
        control = test.turned(c, box, masked)[1]
        check.evidence = Evidence(box, turned, targets, control=control, view=test.shape,
                                  masked=masked)
        return check
    check.evidence = _tight_evidence(test, c, box, need, turned, masked)
    check.confirmed = check.evidence.shared >= MIN_SHARED
    return check


def check_shortcuts(test: InterventionTest,
                    maps: Maps = None,
                    memory: ShortcutMemory | None = None, scan: bool = True,
                    flip: float = FLIP_ALARM, label_names: Sequence[str] | None = None,
                    exhaustive: bool = False) -> ShortcutCheck:
    """:class:`ShortcutCheck` of every class of ``test``
    (:class:`~paddlex_interpret.core.intervention.InterventionTest`).

    Args:
        maps: ``{source name: (n_classes, H, W) maps}`` proposing regions (e.g. the gradient
            atlas's ``maps``), in the views' coordinates.
        memory: a :class:`ShortcutMemory` whose boxes are re-tested (it is not updated here).
        scan: propose with the transplant scan too.
        flip: the share of targets a region must turn (:data:`FLIP_ALARM`).
        exhaustive: test every proposer's boxes even when a remembered region confirms the
            alarm (to compare the proposers; :meth:`ClassCheck.found_by`).
    """
    if not 0 < flip <= 1:
        raise ValueError("flip must be in (0, 1], got %r" % (flip,))
    names = list(label_names) if label_names is not None else None
    classes, untestable = {}, []
    for c in range(test.n_classes):
        if not test.testable(c):
            untestable.append(c)
            continue
        name = names[c] if names and c < len(names) else str(c)
        classes[c] = check_class(test, c, name, maps, memory, scan, flip, exhaustive)
    return ShortcutCheck(classes, untestable, float(flip), test.passes)


@dataclass
class Alarm:
    """A class the model reads from a region: ``region`` (the confirmed tight box, latest),
    ``first`` / ``last`` (the checkpoints it was first raised / last confirmed at; None in an
    audit), ``checkpoints`` (every checkpoint that confirmed it), ``evidence`` (the latest
    confirmation's), ``active`` (confirmed at the latest check), ``proposal`` and ``source``
    (the box it was tightened from and who proposed it)."""

    cls: int
    name: str
    region: Box
    evidence: Evidence
    first: Optional[int] = None
    last: Optional[int] = None
    checkpoints: List[int] = field(default_factory=list)
    active: bool = True
    proposal: Optional[Box] = None
    source: Optional[str] = None

    @property
    def place(self) -> str:
        x0, y0, x1, y1 = self.region
        h, w = self.evidence.view
        region = np.zeros((max(h, y1), max(w, x1)), bool)
        region[y0:y1, x0:x1] = True
        return place_name(region)

    def message(self, epoch: int | None = None) -> str:
        """One paragraph a person can act on: which class, where, and what the two
        interventions did, with counts."""
        ev = self.evidence
        when = " at epoch %d" % epoch if epoch is not None else ""
        where = describe_box(self.region, ev.view)
        if ev.masked:
            where = "the %d pixels its images share in %s (a frame or stamped marks)" % (
                ev.shared, where)
        text = ("shortcut alarm%s: the model reads class %r from %s: pasting %s of the "
                "class's images onto %d images of other classes turned %d of them into %r"
                % (when, self.name, where, "those pixels" if ev.masked else "that region",
                   ev.targets, ev.flipped, self.name))
        if ev.control:
            text += (" (besides %d that the control, another class's median image there, turns "
                     "too)" % ev.control)
        if ev.shared and not ev.masked:
            text += ("; %d of its pixels are the same in the class's images and not in the other "
                     "classes'" % ev.shared)
        if ev.own and np.isfinite(ev.drop):
            fill = ("%s fill" % ev.fill if "/" not in (ev.fill or "") else
                    "fills chosen per image: %s" % (ev.fill or "").replace("/", ", "))
            text += ("; hiding it (%s) on the class's own %d images lowered p(%r) by %.2f on "
                     "average, and %d of them left the class" % (fill, ev.own, self.name,
                                                                  ev.drop, ev.left))
        text += (". A model that reads a watermark, a patch or a border there scores well on "
                 "data that carries it and fails on data that does not.")
        if self.first is not None and epoch is not None and self.first != epoch:
            text += " Raised at epoch %d." % self.first
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"class": self.cls, "name": self.name, "region": list(self.region),
                "place": self.place, "first": self.first, "last": self.last,
                "checkpoints": list(self.checkpoints), "active": self.active,
                "proposal": None if self.proposal is None else list(self.proposal),
                "source": self.source, "evidence": self.evidence.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Alarm:
        return cls(int(d["class"]), d["name"], tuple(d["region"]),
                   Evidence.from_dict(d["evidence"]), d.get("first"), d.get("last"),
                   list(d.get("checkpoints", [])), bool(d.get("active", True)),
                   None if d.get("proposal") is None else tuple(d["proposal"]), d.get("source"))


def alarm_of(check: ClassCheck, epoch: int | None = None) -> Alarm:
    """An :class:`Alarm` of a confirmed :class:`ClassCheck`."""
    ev = check.evidence
    if ev is None:
        raise ValueError("class %d was not confirmed: it has no evidence" % check.cls)
    return Alarm(check.cls, check.name, ev.box, ev, epoch, epoch,
                 [] if epoch is None else [epoch], True, check.proposal, check.source)


class ShortcutMemory:
    """The alarm over the checkpoints of one run (see the module docstring). Its state is plain
    data (:meth:`state` / :meth:`restore`), so that it can go on in another process."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        #: class id -> :class:`Alarm` of every class ever raised in this run
        self.alarms: Dict[int, Alarm] = {}
        #: class id -> remembered boxes (most recent last): confirmed ones and suspects
        self.suspects: Dict[int, List[Box]] = {}
        #: ``(epoch, "raised" | "cleared", class id)`` in order
        self.events: List[Tuple[Optional[int], str, int]] = []
        #: the checkpoints checked, in order
        self.checked: List[Optional[int]] = []

    def tight_boxes(self, c: int) -> list[tuple[Box, bool]]:
        """Class ``c``'s alarm region, ``(box, masked)`` (re-tested the way it was confirmed)."""
        a = self.alarms.get(int(c))
        return [(_as_box(a.region), a.evidence.masked)] if a is not None else []

    def boxes(self, c: int) -> list[tuple[Box, bool]]:
        """The ``(box, masked)`` to re-test for class ``c``: its alarm's region and proposal,
        then its suspects (boxes, moved whole)."""
        out = []
        a = self.alarms.get(int(c))
        if a is not None:
            out += [(_as_box(b), a.evidence.masked)
                    for b in [a.region] + ([a.proposal] if a.proposal is not None else [])]
        out += [(_as_box(b), False) for b in self.suspects.get(int(c), [])[::-1]]
        return list(dict.fromkeys(out))

    def _remember(self, c: int, box: Box | None) -> None:
        assert box is not None, "a suspect has a box"
        kept = [b for b in self.suspects.get(c, []) if b != box] + [_as_box(box)]
        self.suspects[c] = kept[-REMEMBER:]

    def update(self, check: ShortcutCheck, epoch: int | None = None) -> list[tuple[str, Alarm]]:
        """Take in a :class:`ShortcutCheck`; returns the events ``[(kind, Alarm)]`` it caused
        (``'raised'``: confirmed now and not at the previous check; ``'cleared'``: raised, and
        not confirmed now). A class that could not be tested now (too few images of its own or
        of other classes) keeps its state: nothing says the model stopped reading the region."""
        events = []
        for c, k in check.classes.items():
            # a suspect is a box re-tested whole: a masked one (the shared pixels' bounding box,
            # often most of the view) is proposed afresh at every check instead
            masked = k.evidence is not None and k.evidence.masked
            if k.evidence is not None and k.evidence.flip_rate >= SUSPECT and not masked:
                self._remember(c, k.proposal)
            old = self.alarms.get(c)
            if k.confirmed:
                if not masked:
                    self._remember(c, k.proposal)
                new = alarm_of(k, epoch)
                if old is not None:
                    new.first, new.checkpoints = old.first, old.checkpoints + new.checkpoints
                self.alarms[c] = new
                if old is None or not old.active:
                    events.append(("raised", new))
            elif old is not None and old.active:
                old.active = False
                events.append(("cleared", old))
        self.events += [(epoch, kind, a.cls) for kind, a in events]
        self.checked.append(epoch)
        return events

    def active(self) -> list[Alarm]:
        """The raised alarms, by class."""
        return [a for _, a in sorted(self.alarms.items()) if a.active]

    def state(self) -> dict[str, Any]:
        return {"alarms": {int(c): a.to_dict() for c, a in self.alarms.items()},
                "suspects": {int(c): [list(b) for b in bs] for c, bs in self.suspects.items()},
                "events": [list(e) for e in self.events], "checked": list(self.checked)}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.reset()
        self.alarms = {int(c): Alarm.from_dict(d) for c, d in state.get("alarms", {}).items()}
        self.suspects = {int(c): [_as_box(b) for b in bs]
                         for c, bs in state.get("suspects", {}).items()}
        self.events = [(e[0], e[1], e[2]) for e in state.get("events", [])]
        self.checked = list(state.get("checked", []))


def _as_box(b: Sequence[int]) -> Box:
    return b[0], b[1], b[2], b[3]


def verdict(alarms: Iterable[Alarm]) -> str:
    """``'alarm'`` when any of ``alarms`` is active, else ``'none'``."""
    return VERDICTS[int(any(a.active for a in alarms))]


def cleared_message(alarm: Alarm, epoch: int | None, check: ShortcutCheck | None = None) -> str:
    """The line said when a raised alarm is not confirmed any more."""
    k = check.classes.get(alarm.cls) if check is not None else None
    if k is None or k.evidence is None:
        now = "no region of it turns images of other classes now"
    else:
        now = "its best region now turns %d of %d images of other classes" % (
            k.evidence.flipped, k.evidence.targets)
    return ("shortcut alarm cleared at epoch %s: class %r (raised at epoch %s, region x %d..%d, "
            "y %d..%d): %s" % (epoch, alarm.name, alarm.first, alarm.region[0],
                               alarm.region[2] - 1, alarm.region[1], alarm.region[3] - 1, now))

