"""NormLIME's result and its uses: per-class weights of concepts (:class:`GlobalWeights`, with
the codebook they refer to, how they were built and their fingerprint; saved and read as a
pickle-free ``.npz``), the NormLIME weights of an explanation's superpixels
(:func:`normlime_weights_for`, multiplied with LIME's by :func:`combine`, as PaddleX 1.3 did) and
GLIME's prior (:func:`glime_prior`).

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.normlime.weights import GlobalWeights
    >>> gw = GlobalWeights(np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]), ["cat", "dog"])
    >>> gw.top_concepts("cat", 2).tolist()
    [1, 2]
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ...errors import NormLimeCacheError
from ...io import atomic_write
from .concepts import ConceptCodebook

if TYPE_CHECKING:
    from ..explanation import Explanation

__all__ = ["GlobalWeights", "normlime_weights_for", "combine", "glime_prior"]

_FORMAT = "paddlex_interpret.GlobalWeights/1"


class GlobalWeights:
    """Per-class concept weights.

    Attributes:
        weights (ndarray): ``(num_classes, n_concepts)``; row ``c`` ranks the concepts for
            class ``c``.
        class_names (list of str): indexed by class id.
        mode (str): ``'fast'`` or ``'aggregate'`` (``settings['variant']`` tells normlime/avg).
        settings (dict): how they were built (JSON).
        fingerprint (dict): what they were built from (classes, codebook, model hash...), compared
            by the cache loader; empty unless the builder was told.
        counts (ndarray): ``(num_classes,)`` images that contributed to each class (predicted as
            it in ``fast`` mode, explained for it in ``aggregate`` mode).
        info (dict): images used, skipped (with reasons), seconds.
        codebook (ConceptCodebook or None): the concepts, saved along with the weights.
    """

    def __init__(self, weights: npt.ArrayLike, class_names: Sequence[str] | None = None,
                 mode: str = "fast", settings: Mapping[str, Any] | None = None,
                 fingerprint: Mapping[str, Any] | None = None, counts: npt.ArrayLike | None = None,
                 info: Mapping[str, Any] | None = None, codebook: ConceptCodebook | None = None):
        self.weights = np.asarray(weights, dtype=np.float64)
        if self.weights.ndim != 2:
            raise ValueError("weights must be (num_classes, n_concepts), got %s"
                             % (self.weights.shape,))
        n = self.weights.shape[0]
        self.class_names = ([str(c) for c in class_names] if class_names is not None
                            else [str(i) for i in range(n)])
        if len(self.class_names) != n:
            raise ValueError("%d class names for %d weight rows" % (len(self.class_names), n))
        self.mode = str(mode)
        self.settings = dict(settings or {})
        self.fingerprint = dict(fingerprint or {})
        self.counts = (np.zeros(n, dtype=np.int64) if counts is None
                       else np.asarray(counts, dtype=np.int64).reshape(n))
        self.info = dict(info or {})
        self.codebook = codebook

    @property
    def num_classes(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_concepts(self) -> int:
        return int(self.weights.shape[1])

    def _class(self, cls: int | str) -> int:
        if isinstance(cls, str):
            if cls not in self.class_names:
                raise KeyError("unknown class %r; classes: %s" % (cls, self.class_names))
            return self.class_names.index(cls)
        cls = int(cls)
        if not 0 <= cls < self.num_classes:
            raise IndexError("class %d out of range (%d classes)" % (cls, self.num_classes))
        return cls

    def top_concepts(self, cls: int | str, k: int = 5) -> np.ndarray:
        """Ids of the ``k`` concepts with the largest weight for class ``cls`` (id or name)."""
        row = self.weights[self._class(cls)]
        return np.argsort(-row, kind="stable")[:int(k)].astype(np.int64)

    def prior_for(self, concepts_of_segments: npt.ArrayLike, labels: npt.ArrayLike) -> np.ndarray:
        """``(L, n_segments)``: the weight of each superpixel's concept for each of ``labels``."""
        concepts = np.asarray(concepts_of_segments, dtype=np.int64).reshape(-1)
        labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        if concepts.size and (concepts.min() < 0 or concepts.max() >= self.n_concepts):
            raise ValueError("concept ids out of range for %d concepts" % self.n_concepts)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError("labels %s out of range for %d classes"
                             % (labels.tolist(), self.num_classes))
        return self.weights[labels][:, concepts]

    def mismatches(self, expected: Mapping[str, Any]) -> list[str]:
        """Keys of ``expected`` (a fingerprint dict) whose values differ from this one's."""
        mine = json.loads(json.dumps(self.fingerprint, sort_keys=True, default=str))
        theirs = json.loads(json.dumps(expected, sort_keys=True, default=str))
        return sorted(k for k in theirs if mine.get(k) != theirs[k])

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> str:
        """Write to ``path`` atomically (pickle-free ``.npz``, codebook inside); returns it."""
        meta = {"format": _FORMAT, "class_names": self.class_names, "mode": self.mode,
                "settings": self.settings, "fingerprint": self.fingerprint, "info": self.info}
        arrays: dict[str, Any] = {
            "weights": self.weights, "counts": self.counts,
            "meta_json": np.frombuffer(json.dumps(meta, default=str).encode("utf8"),
                                       dtype=np.uint8)}
        if self.codebook is not None:
            arrays.update(self.codebook.to_arrays(prefix="codebook__"))
        path = os.fspath(path)
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GlobalWeights:
        """Read weights written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            NormLimeCacheError: the file is corrupt or not a weights file (e.g. a PaddleX 1.3
                ``.npy``).
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError("NormLIME weights file does not exist: %r" % path)
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic == b"\x93NUMPY":
            raise NormLimeCacheError(
                "%r is a PaddleX 1.3 NormLIME weights file (a pickled .npy of weights over its "
                "downloaded ResNet50-stem concepts), which this package does not read: build "
                "new weights with paddlex_interpret.build_normlime_weights(model, dataset, "
                "save_path='normlime_weights.npz') or give normlime() a new "
                "normlime_weights_file" % path)
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            meta = json.loads(bytes(arrays["meta_json"]).decode("utf8"))
        except Exception as exc:
            raise NormLimeCacheError("cannot read NormLIME weights %r (corrupt or not a "
                                     "paddlex_interpret weights file): %s" % (path, exc)) from exc
        if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
            raise NormLimeCacheError("%r is not a paddlex_interpret NormLIME weights file" % path)
        codebook = None
        if "codebook__centers" in arrays:
            codebook = ConceptCodebook.from_arrays(arrays, prefix="codebook__")
        try:
            gw = cls(arrays["weights"], class_names=meta.get("class_names"),
                     mode=meta.get("mode", "fast"), settings=meta.get("settings"),
                     fingerprint=meta.get("fingerprint"), counts=arrays.get("counts"),
                     info=meta.get("info"), codebook=codebook)
        except Exception as exc:
            raise NormLimeCacheError("corrupt NormLIME weights %r: %s" % (path, exc)) from exc
        if not np.all(np.isfinite(gw.weights)):
            raise NormLimeCacheError("corrupt NormLIME weights %r: non-finite weights" % path)
        if codebook is not None and codebook.n_concepts != gw.n_concepts:
            raise NormLimeCacheError("corrupt NormLIME weights %r: %d concepts in the codebook, "
                                     "%d in the weights"
                                     % (path, codebook.n_concepts, gw.n_concepts))
        return gw

    def __repr__(self) -> str:
        return "GlobalWeights(mode=%r, classes=%d, concepts=%d, images=%s)" % (
            self.mode, self.num_classes, self.n_concepts, self.info.get("n_images"))


def normlime_weights_for(explanation: Explanation, concepts: npt.ArrayLike,
                         global_weights: GlobalWeights) -> np.ndarray:
    """``(L, n_segments)`` NormLIME weights of an explanation's superpixels: for each explained
    label, the global weight of each superpixel's concept (PaddleX 1.3's ``g_weights``).

    ``explanation`` is anything with ``labels``; ``concepts`` the ``(n_segments,)`` concept ids
    (``codebook.assign(explanation.image, explanation.segments)``).
    """
    return global_weights.prior_for(concepts, explanation.labels)


def combine(lime_weights: npt.ArrayLike, normlime_weights: npt.ArrayLike) -> np.ndarray:
    """PaddleX 1.3's combined weights: LIME x NormLIME, per superpixel."""
    a = np.asarray(lime_weights, dtype=np.float64)
    b = np.asarray(normlime_weights, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError("LIME weights %s and NormLIME weights %s differ in shape"
                         % (a.shape, b.shape))
    return a * b


def glime_prior(global_weights: GlobalWeights, codebook: ConceptCodebook | None = None,
                image: np.ndarray | None = None, normalize: str | None = "l1",
                area_exponent: float = 0.5) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A GLIME prior for :meth:`LimeExplainer.explain(prior=...) <LimeExplainer.explain>`:
    a callable ``(segments, labels) -> (L, n_segments)``.

    Superpixel ``j`` gets the global weight of its concept for each label, times
    ``(area_j / mean area) ** area_exponent``, and each row is scaled to unit L1 norm
    (``normalize='l1'``: one unit of evidence spread over the superpixels, the scale of a
    probability difference; ``None`` keeps the raw weights as PaddleX 1.3 / InterpretDL did).
    The area factor breaks the ties between superpixels of one concept (a larger piece of a
    concept carries more of it); ``area_exponent=0`` gives the plain concept weights. 0.5 is the
    measured compromise (BENCHMARKS.md, "NormLIME and GLIME"): 1 over-weights large background
    superpixels.

    ``image`` is the image being explained (its superpixels' concepts are computed from it).
    """
    codebook = codebook if codebook is not None else global_weights.codebook
    if codebook is None:
        raise ValueError("glime_prior needs a codebook (none given and none in the weights)")
    if image is None:
        raise ValueError("glime_prior needs the image being explained")
    if normalize not in ("l1", None):
        raise ValueError("normalize must be 'l1' or None, got %r" % (normalize,))
    area_exponent = float(area_exponent)

    def prior(segments: np.ndarray, labels: np.ndarray) -> np.ndarray:
        p = global_weights.prior_for(codebook.assign(image, segments), labels)
        if area_exponent:
            area = np.bincount(np.asarray(segments).ravel(), minlength=p.shape[1])
            p = p * (area / area.mean()) ** area_exponent
        if normalize == "l1":
            norm = np.abs(p).sum(axis=1, keepdims=True)
            p = np.where(norm > 0, p / np.maximum(norm, 1e-300), p)
        return p

    return prior
