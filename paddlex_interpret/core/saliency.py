"""Gradient explanations (Grad-CAM, SmoothGrad, Integrated Gradients, input x gradient), the pure
part: the maths on numpy arrays, and their result as an
:class:`~paddlex_interpret.core.explanation.Explanation`.

A gradient method gives a heat map per explained label, in image coordinates.
:class:`SaliencyExplanation` keeps those maps (``maps``, ``(L, H, W)``) and, as its superpixel
``weights``, each superpixel's mean of the map: so every metric (deletion/insertion, pointing)
and every renderer that reads superpixel weights works on it unchanged, and ``heatmap()`` gives
the map itself. Without a segmentation the whole image is one superpixel.

The model side is a ``gradient_fn(batch, label) -> d score / d input`` (``(B, C, H, W)`` float
inputs, the model's normalised input space) for SmoothGrad and Integrated Gradients, and a target
layer's activations and gradients for Grad-CAM; the Paddle adapter
(:mod:`~paddlex_interpret.adapters.gradients`) provides both.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.saliency import gradcam_map
    >>> acts = np.zeros((2, 2, 2)); acts[0, 1, 1] = 1.0      # one channel fires bottom-right
    >>> grads = np.ones((2, 2, 2))                            # and raises the class score
    >>> m = gradcam_map(acts, grads, (8, 8))
    >>> m.shape, bool(m[7, 7] > m[0, 0])
    ((8, 8), True)
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from .explanation import Explanation

__all__ = ["SaliencyExplanation", "segment_means", "gradcam_map", "resize", "smoothgrad",
           "integrated_gradients", "input_x_gradient", "METHODS"]

METHODS = ("gradcam", "smoothgrad", "integrated_gradients", "input_x_gradient")
#: gradients of a class's score: ``(inputs (B, C, H, W) float32, label) -> (B, C, H, W)``
GradientFn = Callable[[np.ndarray, int], npt.ArrayLike]


def segment_means(maps: Sequence[npt.ArrayLike] | np.ndarray, segments: npt.ArrayLike
                  ) -> np.ndarray:
    """``(L, n_segments)``: the mean of every map of ``maps`` (``(L, H, W)``) per superpixel."""
    segments = np.asarray(segments)
    n = int(segments.max()) + 1
    flat = segments.ravel()
    counts = np.maximum(np.bincount(flat, minlength=n), 1)
    return np.stack([np.bincount(flat, weights=np.asarray(m, np.float64).ravel(), minlength=n)
                     / counts for m in maps])


def resize(m: npt.ArrayLike, size: Sequence[int]) -> np.ndarray:
    """``m`` (``(h, w)``) resized bilinearly to ``size`` ``(H, W)``, float32."""
    import cv2

    h, w = int(size[0]), int(size[1])
    return cv2.resize(np.asarray(m, np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def gradcam_map(activations: npt.ArrayLike, gradients: npt.ArrayLike, size: Sequence[int]
                ) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017): ``relu(sum_k mean(dy/dA_k) A_k)`` of a layer's
    ``(K, h, w)`` activations and gradients, bilinearly resized to ``size`` ``(H, W)``."""
    a = np.asarray(activations, np.float64)
    g = np.asarray(gradients, np.float64)
    if a.ndim != 3 or a.shape != g.shape:
        raise ValueError("Grad-CAM needs (K, h, w) activations and gradients of one shape, got "
                         "%s and %s" % (a.shape, g.shape))
    cam = np.maximum(np.tensordot(g.mean(axis=(1, 2)), a, axes=1), 0.0)
    return resize(cam, size).astype(np.float64)


def _batched(gradient_fn: GradientFn, inputs: np.ndarray, label: int, batch_size: int
             ) -> np.ndarray:
    return np.concatenate([np.asarray(gradient_fn(inputs[i:i + batch_size], label))
                           for i in range(0, len(inputs), batch_size)])


def smoothgrad(gradient_fn: GradientFn, x: npt.ArrayLike, label: int, n_samples: int = 25,
               noise: float = 0.15, seed: int = 0, batch_size: int = 25) -> np.ndarray:
    """SmoothGrad (Smilkov et al. 2017): the mean over ``n_samples`` noisy copies of ``x``
    (``(C, H, W)``; Gaussian noise of ``noise`` times the input's range, seeded) of the absolute
    input gradient, summed over channels: ``(H, W)``."""
    x = np.asarray(x, np.float32)
    rng = np.random.default_rng(seed)
    sigma = float(noise) * float(x.max() - x.min() or 1.0)
    noisy = x[None] + rng.normal(0.0, sigma, (int(n_samples),) + x.shape).astype(np.float32)
    grads = _batched(gradient_fn, noisy, label, int(batch_size))
    return np.abs(grads).mean(axis=0).sum(axis=0).astype(np.float64)


def integrated_gradients(gradient_fn: GradientFn, x: npt.ArrayLike, label: int,
                         baseline: npt.ArrayLike | None = None, steps: int = 32,
                         batch_size: int = 32) -> np.ndarray:
    """Integrated Gradients (Sundararajan et al. 2017) from ``baseline`` (default zeros: the
    normalised input's mean) to ``x`` (``(C, H, W)``), midpoint rule over ``steps``, summed
    over channels: ``(H, W)``, signed; its sum approximates ``f(x) - f(baseline)``."""
    x = np.asarray(x, np.float32)
    base = np.zeros_like(x) if baseline is None else np.asarray(baseline, np.float32)
    alphas = ((np.arange(int(steps)) + 0.5) / int(steps)).astype(np.float32)
    path = base[None] + alphas[:, None, None, None] * (x - base)[None]
    grads = _batched(gradient_fn, path, label, int(batch_size))
    return ((x - base) * grads.mean(axis=0)).sum(axis=0).astype(np.float64)


def input_x_gradient(gradient_fn: GradientFn, x: npt.ArrayLike, label: int) -> np.ndarray:
    """Input x gradient (Shrikumar et al. 2016; captum's ``InputXGradient``): ``x * d score / d x``
    of ``x`` (``(C, H, W)``), summed over channels: ``(H, W)``, signed. One backward pass, at the
    input's resolution (Grad-CAM's map is the target layer's, 8 x 8 at 64 px)."""
    x = np.asarray(x, np.float32)
    grad = np.asarray(gradient_fn(x[None], label))[0]
    return (x * grad).sum(axis=0).astype(np.float64)


class SaliencyExplanation(Explanation):
    """An :class:`~paddlex_interpret.core.explanation.Explanation` of a gradient method.

    Extra attribute ``maps``: ``(L, H, W)`` float heat maps, row ``i`` for ``labels[i]``;
    ``weights`` are their superpixel means (``intercepts`` 0, ``scores`` and
    ``local_predictions`` NaN: there is no surrogate). ``settings["method"]`` names the method.
    """

    def __init__(self, image: npt.ArrayLike, segments: npt.ArrayLike | None,
                 probabilities: npt.ArrayLike, labels: npt.ArrayLike, maps: npt.ArrayLike,
                 label_names: Sequence[str] | None = None,
             settings: Mapping[str, Any] | None = None,
                 weights: npt.ArrayLike | None = None, **_ignored: Any):
        maps = np.asarray(maps, dtype=np.float64)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if maps.ndim != 3 or len(maps) != len(labels):
            raise ValueError("maps must be (labels, H, W), got %s for %d label(s)"
                             % (maps.shape, len(labels)))
        if segments is None:
            segments = np.zeros(maps.shape[1:], dtype=np.int32)
        L = len(labels)
        super().__init__(image, segments, probabilities, labels,
                         segment_means(maps, segments) if weights is None else weights,
                         np.zeros(L), np.full(L, np.nan), np.full(L, np.nan),
                         label_names=label_names, settings=settings)
        self.maps = maps

    def _more_arrays(self) -> dict[str, np.ndarray]:
        return {"saliency_maps": self.maps}

    def heatmap(self, label: int, kind: str = "map", normalize: bool = True) -> np.ndarray:
        """The method's ``(H, W)`` map of ``label`` (scaled to [-1, 1]); ``kind='lime'`` the
        superpixel means, as for LIME."""
        if kind != "map":
            return super().heatmap(label, kind, normalize)
        idx = np.flatnonzero(self.labels == int(label))
        if idx.size == 0:
            raise KeyError("label %r was not explained; explained labels: %s"
                           % (label, self.labels.tolist()))
        m = self.maps[idx[0]]
        peak = np.max(np.abs(m))
        return m / peak if normalize and peak > 0 else m.copy()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SaliencyExplanation:
        """Read a :class:`SaliencyExplanation` written by ``save``."""
        exp = Explanation.load(path)
        with np.load(os.fspath(path), allow_pickle=False) as z:
            maps = z["saliency_maps"]
        return cls(exp.image, exp.segments, exp.probabilities, exp.labels, maps,
                   label_names=exp.label_names, settings=exp.settings, weights=exp.weights)

    def __repr__(self) -> str:
        return ("SaliencyExplanation(%s, image=%s, labels=%s, predicted=%s p=%.3f)"
                % (self.settings.get("method"), self.image.shape, self.labels.tolist(),
                   self.label_name(self.predicted_label), self.predicted_probability))
