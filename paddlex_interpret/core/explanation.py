"""The result of explaining one prediction: a plain object of numpy arrays.

An :class:`Explanation` holds the image that was explained (uint8 HWC RGB, the image the model
sees), its superpixel label map, the predicted class probabilities, and for every explained label
the surrogate's per-superpixel weights, intercept, R^2 and local prediction. It knows nothing of
Paddle, PaddleX, files formats other than its own ``.npz`` or plotting.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.explanation import Explanation
    >>> seg = np.repeat(np.arange(4), 4).reshape(4, 4)
    >>> e = Explanation(image=np.zeros((4, 4, 3), np.uint8), segments=seg,
    ...                 probabilities=np.array([0.2, 0.8]), labels=np.array([1]),
    ...                 weights=np.array([[0.5, -0.1, 0.0, 0.2]]), intercepts=np.array([0.1]),
    ...                 scores=np.array([0.9]), local_predictions=np.array([0.7]))
    >>> e.ranked(1)[:2]
    [(0, 0.5), (3, 0.2)]
    >>> int(e.mask(1, num_features=2).sum())
    8
"""
from __future__ import annotations

import json
import os
from typing import Any, List, Mapping, Optional, Sequence, TypeVar

import numpy as np
import numpy.typing as npt

from ..io import atomic_write

__all__ = ["Explanation"]


_E = TypeVar("_E", bound="Explanation")


class Explanation:
    """Per-label superpixel weights of a local surrogate, with everything needed to use them.

    Attributes:
        image (ndarray): ``(H, W, 3)`` uint8 RGB, the image that was explained.
        segments (ndarray): ``(H, W)`` int32 superpixel ids ``0..n_segments-1``.
        probabilities (ndarray): ``(num_classes,)`` model probabilities for ``image``.
        labels (ndarray): ``(L,)`` explained class ids (top-k by default).
        weights (ndarray): ``(L, n_segments)`` surrogate coefficients, row ``i`` for ``labels[i]``.
        intercepts, scores, local_predictions (ndarray): ``(L,)`` intercept, weighted R^2 of the fit,
            and the surrogate's prediction for the all-on mask.
        label_names (list or None): class names indexed by class id.
        settings (dict): JSON-serialisable settings used (segmenter, fill, kernel, seed, ...).
        extra (dict): further named ``(L, n_segments)`` weight arrays (e.g. ``normlime``,
            ``combined``) that share ``labels`` and ``segments``.
        weight_cov (ndarray or None): ``(L, n_segments, n_segments)`` covariance of ``weights``
            over the random draw of LIME's samples (:mod:`~paddlex_interpret.core.uncertainty`);
            ``weight_se`` is the square root of its diagonal. None when the surrogate gives none.

    Set by the API functions that write or extend a result (absent otherwise): ``png_path``,
    ``npz_path`` (where it was saved); NormLIME's ``concepts`` (each superpixel's concept id),
    ``global_weights`` (the :class:`~paddlex_interpret.core.normlime.weights.GlobalWeights`) and
    ``weights_file``.
    """

    png_path: str
    npz_path: str
    concepts: np.ndarray
    global_weights: Any  # a GlobalWeights (core.normlime.weights imports this module)
    weights_file: str | None

    def __init__(self, image: npt.ArrayLike, segments: npt.ArrayLike,
                 probabilities: npt.ArrayLike, labels: npt.ArrayLike, weights: npt.ArrayLike,
                 intercepts: npt.ArrayLike, scores: npt.ArrayLike, local_predictions: npt.ArrayLike,
                 label_names: Sequence[str] | None = None,
             settings: Mapping[str, Any] | None = None,
                 extra: Mapping[str, npt.ArrayLike] | None = None,
                 weight_cov: npt.ArrayLike | None = None):
        self.image = np.asarray(image)
        self.segments = np.asarray(segments, dtype=np.int32)
        self.probabilities = np.asarray(probabilities, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self.weights = np.asarray(weights, dtype=np.float64).reshape(len(self.labels), -1)
        self.intercepts = np.asarray(intercepts, dtype=np.float64).reshape(-1)
        self.scores = np.asarray(scores, dtype=np.float64).reshape(-1)
        self.local_predictions = np.asarray(local_predictions, dtype=np.float64).reshape(-1)
        self.label_names = list(label_names) if label_names is not None else None
        self.settings: dict[str, Any] = dict(settings or {})
        self.extra = {k: np.asarray(v, dtype=np.float64) for k, v in (extra or {}).items()}
        self.weight_cov = (None if weight_cov is None else np.asarray(
            weight_cov, dtype=np.float64).reshape(len(self.labels), self.weights.shape[1], -1))

    # ------------------------------------------------------------------ queries
    @property
    def n_segments(self) -> int:
        return int(self.weights.shape[1])

    @property
    def predicted_label(self) -> int:
        """The top-1 class id of the model on ``image``."""
        return int(np.argmax(self.probabilities))

    @property
    def predicted_probability(self) -> float:
        return float(self.probabilities[self.predicted_label])

    def label_name(self, label: int) -> str:
        label = int(label)
        if self.label_names is not None and 0 <= label < len(self.label_names):
            return str(self.label_names[label])
        return str(label)

    def _row(self, label: int, kind: str = "lime") -> np.ndarray:
        idx = np.flatnonzero(self.labels == int(label))
        if idx.size == 0:
            raise KeyError("label %r was not explained; explained labels: %s"
                           % (label, self.labels.tolist()))
        table = self.weights if kind == "lime" else self.extra[kind]
        return table[idx[0]]

    @property
    def weight_se(self) -> Optional[np.ndarray]:
        """``(L, n_segments)`` standard errors of ``weights`` (None without a covariance)."""
        if self.weight_cov is None:
            return None
        return np.sqrt(np.maximum(np.diagonal(self.weight_cov, axis1=1, axis2=2), 0.0))

    def se_for(self, label: int) -> Optional[np.ndarray]:
        """``(n_segments,)`` standard errors of ``label``'s weights (None without them)."""
        se = self.weight_se
        if se is None:
            return None
        return se[self._index(label)].copy()

    def certified_top(self, k: int = 5, label: Optional[int] = None,
                      confidence: Optional[float] = None) -> List[int]:
        """Ids of the top superpixels (at most ``k``) of ``label`` (default the first explained)
        that are separated from all others at ``confidence`` (default the one the budget used,
        else 0.95): the largest top-``j`` set whose every member's weight exceeds every other
        superpixel's, one-sided with a Bonferroni correction
        (:func:`~paddlex_interpret.core.uncertainty.certified_top`; a budget that looked at its
        samples several times spends the error over its looks). ``[]`` when nothing is
        certified or there are no error bars."""
        from .uncertainty import certified_top

        if self.weight_cov is None:
            return []
        i = 0 if label is None else self._index(label)
        if confidence is None:
            confidence = self.settings.get("budget_confidence", 0.95)
        return certified_top(self.weights[i], self.weight_cov[i], k, confidence,
                             looks=self.settings.get("budget_looks", 1))

    def _index(self, label: int) -> int:
        idx = np.flatnonzero(self.labels == int(label))
        if idx.size == 0:
            raise KeyError("label %r was not explained; explained labels: %s"
                           % (label, self.labels.tolist()))
        return int(idx[0])

    def weights_for(self, label: int, kind: str = "lime") -> np.ndarray:
        """``(n_segments,)`` weights of ``label``; ``kind`` names an ``extra`` table or ``'lime'``."""
        return self._row(label, kind).copy()

    def ranked(self, label: int, kind: str = "lime") -> list[tuple[int, float]]:
        """``[(segment, weight), ...]`` sorted by decreasing ``|weight|`` (PaddleX 1.3's
        ``local_weights[label]`` format)."""
        w = self._row(label, kind)
        order = np.argsort(-np.abs(w), kind="stable")
        return [(int(i), float(w[i])) for i in order]

    @property
    def local_weights(self) -> dict[int, list[tuple[int, float]]]:
        """PaddleX 1.3 / ``lime`` style dict ``{label: [(segment, weight), ...]}``."""
        return {int(l): self.ranked(int(l)) for l in self.labels}

    def top_segments(self, label: int, k: int, positive_only: bool = True,
                     kind: str = "lime") -> np.ndarray:
        """Ids of the ``k`` superpixels with the largest (positive) weight for ``label``."""
        w = self._row(label, kind)
        order = np.argsort(-(w if positive_only else np.abs(w)), kind="stable")
        if positive_only:
            order = order[w[order] > 0]
        return order[:k].astype(np.int64)

    def mask(self, label: int, num_features: int = 5, positive_only: bool = True,
             kind: str = "lime") -> np.ndarray:
        """``(H, W)`` bool mask of the ``num_features`` most important superpixels."""
        keep = np.zeros(self.n_segments, dtype=bool)
        keep[self.top_segments(label, num_features, positive_only, kind)] = True
        return keep[self.segments]

    def heatmap(self, label: int, kind: str = "lime", normalize: bool = True) -> np.ndarray:
        """``(H, W)`` float map: every pixel carries its superpixel's weight (scaled to [-1, 1])."""
        w = self._row(label, kind)
        if normalize:
            m = np.max(np.abs(w))
            w = w / m if m > 0 else w
        return w[self.segments]

    def num_features_for_mass(self, label: int, fraction: float, kind: str = "lime") -> int:
        """How many superpixels (in ``ranked`` order) hold ``fraction`` of the positive weight.

        PaddleX 1.3's ``auto_choose_num_features_to_show``: superpixels smaller than 1/8 of the mean
        superpixel area do not count toward the mass; the fraction is lowered by 0.1 until it can be
        reached, and 5 is returned when it drops to 0.
        """
        ranked = self.ranked(label, kind)
        weights = np.array([w for _, w in ranked])
        ids = np.array([s for s, _ in ranked], dtype=np.int64)
        areas = np.bincount(self.segments.ravel(), minlength=self.n_segments)
        min_area = self.segments.size // max(self.n_segments, 1) // 8
        norm = weights[weights > 0].sum()
        while fraction > 0.0 and norm > 0:
            counted = (weights > 0) & (areas[ids] >= min_area)
            cum = np.cumsum(np.where(counted, weights / norm, 0.0))
            hit = np.flatnonzero(counted & (cum > fraction))
            if hit.size:
                return int(hit[0] + 1)
            fraction -= 0.1
        return 5

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image, "segments": self.segments, "probabilities": self.probabilities,
            "labels": self.labels, "weights": self.weights, "intercepts": self.intercepts,
            "scores": self.scores, "local_predictions": self.local_predictions,
            "label_names": self.label_names, "settings": self.settings, "extra": self.extra,
            "weight_cov": self.weight_cov,
        }

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write to ``path`` (``.npz``) atomically; returns the path."""
        arrays: dict[str, Any] = {k: v for k, v in self.to_dict().items()
                  if isinstance(v, np.ndarray)}
        for k, v in self.extra.items():
            arrays["extra__" + k] = v
        arrays.update(self._more_arrays())
        meta = {"label_names": self.label_names, "settings": self.settings,
                "format": "paddlex_interpret.Explanation/1"}
        arrays["meta_json"] = np.frombuffer(json.dumps(meta, default=str).encode("utf8"),
                                            dtype=np.uint8)
        path = os.fspath(path)
        if not path.endswith(".npz"):
            path += ".npz"
        with atomic_write(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path

    def _more_arrays(self) -> dict[str, np.ndarray]:
        """Arrays a subclass saves besides the base ones (read back by its ``load``)."""
        return {}

    @classmethod
    def load(cls: type[_E], path: str | os.PathLike[str]) -> _E:
        """Read an :class:`Explanation` written by :meth:`save`."""
        with np.load(os.fspath(path), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta_json"]).decode("utf8"))
            extra = {k[len("extra__"):]: z[k] for k in z.files if k.startswith("extra__")}
            return cls(image=z["image"], segments=z["segments"],
                       probabilities=z["probabilities"], labels=z["labels"],
                       weights=z["weights"], intercepts=z["intercepts"], scores=z["scores"],
                       local_predictions=z["local_predictions"],
                       label_names=meta.get("label_names"), settings=meta.get("settings"),
                       extra=extra,
                       weight_cov=z["weight_cov"] if "weight_cov" in z.files else None)

    def __repr__(self) -> str:
        return ("Explanation(image=%s, n_segments=%d, labels=%s, predicted=%s p=%.3f)"
                % (self.image.shape, self.n_segments, self.labels.tolist(),
                   self.label_name(self.predicted_label), self.predicted_probability))
