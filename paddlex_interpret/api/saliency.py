"""``gradcam``, ``smoothgrad`` and ``integrated_gradients`` beside ``lime``: gradient explanations
of a PaddleX classifier (or any ``paddle.nn.Layer`` wrapped in a ``LayerClassifier``), as
:class:`~paddlex_interpret.core.saliency.SaliencyExplanation` results that every metric and
renderer takes. They run in dygraph: one forward and one backward pass for Grad-CAM (all labels),
``n_samples`` / ``steps`` backward passes for SmoothGrad / Integrated Gradients, against LIME's
``num_samples`` forward passes. Grad-CAM is the cheapest and the coarsest: it averages each
channel's gradient over the map, and on a model that decides on a small object it can miss the
object for some classes where Integrated Gradients finds it.

Example::

    exp = pdx.interpret.gradcam("val/0001.png", model, save_dir="explain")
    exp.heatmap(exp.labels[0])        # (H, W) map in [-1, 1]
    exp.ranked(exp.labels[0])[:3]     # superpixels by their mean of the map
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Sequence

import numpy as np
import numpy.typing as npt

from ..adapters import classifier_for
from ..adapters.gradients import GradientRunner
from ..core import saliency
from ..core.classifier import check_positive_int, resolve_labels
from ..core.images import ImageSource, check_image_path
from ..core.segmentation import SegmenterSpec, make_segmenter
from ..io import check_writable_dir
from .output import image_name, save_explanation

__all__ = ["gradcam", "smoothgrad", "integrated_gradients", "input_x_gradient",
           "explain_gradients"]

logger = logging.getLogger("paddlex_interpret")


def _labels(probabilities: np.ndarray, labels: Any, top_k: int,
            label_names: Sequence[str] | None) -> list[int]:
    chosen = resolve_labels(labels, label_names)
    if chosen is None:
        chosen = np.argsort(-probabilities, kind="stable")[:check_positive_int(top_k, "top_k")]
    return [int(l) for l in chosen]


def explain_gradients(image: ImageSource, model: Any, method: str, labels: Any = None,
                      top_k: int = 1, segmenter: SegmenterSpec | None = "quickshift",
                      segmenter_params: Mapping[str, Any] | None = None, seed: int = 0,
                      save_dir: str | None = None, target_layer: str | None = None,
                      n_samples: int = 25, noise: float = 0.15, steps: int = 32,
                      baseline: npt.ArrayLike | None = None, batch_size: int = 25
                      ) -> saliency.SaliencyExplanation:
    """``method`` (one of :data:`~paddlex_interpret.core.saliency.METHODS`) on ``image``;
    the arguments as for :func:`gradcam` and the others."""
    if method not in saliency.METHODS:
        raise ValueError("method must be one of %s, got %r" % (saliency.METHODS, method))
    if isinstance(image, str):
        image = check_image_path(image)
    if save_dir is not None:
        check_writable_dir(save_dir)
    classifier, _ = classifier_for(model)
    runner = GradientRunner(classifier, target_layer=target_layer)
    t0 = time.perf_counter()
    view = classifier.view(image)
    x = runner.inputs(view[None])
    probabilities = classifier.predict(view[None])[0]
    chosen = _labels(probabilities, labels, top_k, classifier.label_names)
    size = view.shape[:2]
    settings = {"method": method, "seed": int(seed)}
    if method == "gradcam":
        maps = [saliency.gradcam_map(a, g, size) for a, g in runner.layer_gradients(x, chosen)]
        settings["target_layer"] = runner.target(x)[0]
    elif method == "smoothgrad":
        maps = [saliency.smoothgrad(runner.input_gradients, x[0], label, n_samples, noise, seed,
                                    batch_size) for label in chosen]
        settings.update(n_samples=int(n_samples), noise=float(noise))
    elif method == "input_x_gradient":
        maps = [saliency.input_x_gradient(runner.input_gradients, x[0], label)
                for label in chosen]
    else:
        maps = [saliency.integrated_gradients(runner.input_gradients, x[0], label, baseline,
                                              steps, batch_size) for label in chosen]
        settings["steps"] = int(steps)
    segments = None
    if segmenter is not None:
        seg = make_segmenter(segmenter, seed=seed, **(segmenter_params or {}))
        segments = seg(view)
        settings.update(seg.describe())
    settings["seconds"] = time.perf_counter() - t0
    exp = saliency.SaliencyExplanation(view, segments, probabilities, chosen, np.stack(maps),
                                       label_names=classifier.label_names, settings=settings)
    if save_dir is not None:
        save_explanation(exp, save_dir, image_name(image), method, figure="saliency")
    return exp


def gradcam(img_file: ImageSource, model: Any, save_dir: str | None = None, *, labels: Any = None,
            top_k: int = 1, target_layer: str | None = None,
            segmenter: SegmenterSpec | None = "quickshift",
            segmenter_params: Mapping[str, Any] | None = None, seed: int = 0
            ) -> saliency.SaliencyExplanation:
    """Grad-CAM of ``model`` on ``img_file``: the target layer's activations weighted by the mean
    gradient of the class logit (default target: the last convolution with a spatial map).

    Args:
        img_file: image path or RGB array (read as :func:`~paddlex_interpret.api.lime.lime`
            does: the image the model sees).
        model: a PaddleX classifier, or a ``LayerClassifier`` of any ``paddle.nn.Layer``.
        save_dir: write ``<image name>/gradcam-<k>.png`` and ``.npz`` there (None: nothing).
        labels / top_k: which classes (ids or names; default the top-1).
        target_layer: a sub-layer name (``dict(net.named_sublayers())``) or the Layer.
        segmenter: superpixels for the explanation's weights (None: the whole image is one).

    Returns:
        :class:`~paddlex_interpret.core.saliency.SaliencyExplanation`.
    """
    return explain_gradients(img_file, model, "gradcam", labels=labels, top_k=top_k,
                             segmenter=segmenter, segmenter_params=segmenter_params, seed=seed,
                             save_dir=save_dir, target_layer=target_layer)


def smoothgrad(img_file: ImageSource, model: Any, save_dir: str | None = None, *,
               labels: Any = None, top_k: int = 1, n_samples: int = 25, noise: float = 0.15,
               segmenter: SegmenterSpec | None = "quickshift",
               segmenter_params: Mapping[str, Any] | None = None, seed: int = 0,
               batch_size: int = 25) -> saliency.SaliencyExplanation:
    """SmoothGrad: the mean absolute input gradient over ``n_samples`` noisy copies (Gaussian,
    ``noise`` times the input range, seeded). Other arguments as for :func:`gradcam`."""
    return explain_gradients(img_file, model, "smoothgrad", labels=labels, top_k=top_k,
                             segmenter=segmenter, segmenter_params=segmenter_params, seed=seed,
                             save_dir=save_dir, n_samples=n_samples, noise=noise,
                             batch_size=batch_size)


def integrated_gradients(img_file: ImageSource, model: Any, save_dir: str | None = None, *,
                         labels: Any = None, top_k: int = 1, steps: int = 32,
                         baseline: npt.ArrayLike | None = None,
                         segmenter: SegmenterSpec | None = "quickshift",
                         segmenter_params: Mapping[str, Any] | None = None, seed: int = 0,
                         batch_size: int = 32) -> saliency.SaliencyExplanation:
    """Integrated Gradients from ``baseline`` (a normalised ``(C, H, W)`` input; default zeros)
    in ``steps`` (midpoint rule). Other arguments as for :func:`gradcam`."""
    return explain_gradients(img_file, model, "integrated_gradients", labels=labels,
                             top_k=top_k, segmenter=segmenter, segmenter_params=segmenter_params,
                             seed=seed, save_dir=save_dir, steps=steps, baseline=baseline,
                             batch_size=batch_size)


def input_x_gradient(img_file: ImageSource, model: Any, save_dir: str | None = None, *,
                     labels: Any = None, top_k: int = 1,
                     segmenter: SegmenterSpec | None = "quickshift",
                     segmenter_params: Mapping[str, Any] | None = None, seed: int = 0
                     ) -> saliency.SaliencyExplanation:
    """Input x gradient: one backward pass, a map at the input's resolution (the class atlas's
    default). Arguments as for :func:`gradcam`."""
    return explain_gradients(img_file, model, "input_x_gradient", labels=labels, top_k=top_k,
                             segmenter=segmenter, segmenter_params=segmenter_params, seed=seed,
                             save_dir=save_dir)
