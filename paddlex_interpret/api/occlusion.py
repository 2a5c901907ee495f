"""``occlusion`` beside ``lime`` and the gradient methods: occlusion sensitivity
(:mod:`~paddlex_interpret.core.occlusion`), which needs predictions only, so it explains every
model this package takes, an exported inference model without its network included (PaddleX 2
``--export_inference``, PaddleX 3 / PaddleClas ``inference/``). Its result is a
:class:`~paddlex_interpret.core.saliency.SaliencyExplanation` (a map per label, and superpixel
means of it), which every metric and renderer takes.

Example::

    exp = paddlex_interpret.occlusion("val/0001.png", "output/best_model/inference",
                                      save_dir="explain")
    exp.heatmap(exp.labels[0])        # (H, W) map in [-1, 1]
"""
from __future__ import annotations

import logging
import time
from typing import Any, Mapping

from ..adapters import classifier_for
from ..core.fill import AutoFill, FillSpec, make_fill, resolve_fill
from ..core.images import ImageSource, check_image_path
from ..core.occlusion import cell_grid, default_cell, occlusion_maps
from ..core.saliency import SaliencyExplanation
from ..core.segmentation import SegmenterSpec, make_segmenter
from ..io import check_writable_dir
from .output import image_name, save_explanation
from .saliency import _labels

__all__ = ["occlusion"]

logger = logging.getLogger("paddlex_interpret")


def occlusion(img_file: ImageSource, model: Any, save_dir: str | None = None, *,
              labels: Any = None, top_k: int = 1, cell: int | None = None, window: int = 2,
              fill: FillSpec | AutoFill = "auto", segmenter: SegmenterSpec | None = "quickshift",
              segmenter_params: Mapping[str, Any] | None = None, seed: int = 0,
              batch_size: int = 50) -> SaliencyExplanation:
    """Occlusion sensitivity of ``model`` on ``img_file``.

    Args:
        img_file: image path or RGB array (the image the model sees is explained).
        model: anything :func:`~paddlex_interpret.adapters.classifier_for` takes (a PaddleX
            classifier or model directory, a deployed or exported model, a Classifier).
        save_dir: write ``<image name>/occlusion-<k>.png`` and ``.npz`` there (None: nothing).
        labels / top_k: which classes (ids or names; default the top-1).
        cell: cell side in px (default: 16 cells along the short side); window: window side in
            cells (default 2).
        fill: what a hidden window shows: ``'auto'`` (chosen as for LIME, on the cells), a
            name of :func:`~paddlex_interpret.core.fill.make_fill` or a colour.
        segmenter: superpixels for the explanation's weights (None: the whole image is one).

    Returns:
        :class:`~paddlex_interpret.core.saliency.SaliencyExplanation` (``method='occlusion'``).
    """
    if isinstance(img_file, str):
        img_file = check_image_path(img_file)
    if save_dir is not None:
        check_writable_dir(save_dir)
    classifier, _ = classifier_for(model)
    t0 = time.perf_counter()
    view = classifier.view(img_file)
    cell = cell if cell is not None else default_cell(view.shape)
    grid, _, _ = cell_grid(view.shape, int(cell))
    chosen = resolve_fill(fill)
    settings = {"method": "occlusion", "cell": int(cell), "window": int(window),
                "seed": int(seed)}
    if isinstance(chosen, AutoFill):
        choice = chosen.choose(classifier, view, grid)
        fill_image = choice.fill_image
        settings.update(choice.describe())
    else:
        fill_image = make_fill(view, grid, chosen)
        settings["fill"] = chosen if isinstance(chosen, str) else "custom"
    probabilities = classifier.predict(view[None])[0]
    chosen_labels = _labels(probabilities, labels, top_k, classifier.label_names)
    maps, _ = occlusion_maps(classifier, view, fill_image, chosen_labels, cell, window,
                             batch_size)
    segments = None
    if segmenter is not None:
        seg = make_segmenter(segmenter, seed=seed, **(segmenter_params or {}))
        segments = seg(view)
        settings.update(seg.describe())
    settings["seconds"] = time.perf_counter() - t0
    exp = SaliencyExplanation(view, segments, probabilities, chosen_labels, maps,
                              label_names=classifier.label_names, settings=settings)
    if save_dir is not None:
        save_explanation(exp, save_dir, image_name(img_file), "occlusion", figure="saliency")
    return exp
