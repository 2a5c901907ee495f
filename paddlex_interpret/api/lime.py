"""``lime``: LIME on a PaddleX 2.x classifier with PaddleX 1.3's semantics (classifier only; the
explained image is the one the model sees after its test transforms' geometric steps; the PNG is
written into ``save_dir/<image name>/``), returning the result instead of ``None``.

Example::

    from paddlex_interpret.api.lime import lime
    exp = lime("val/0001.png", model, num_samples=1000, save_dir="explain")
    exp.ranked(exp.labels[0])[:3]     # [(superpixel, weight), ...]
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

from ..adapters import classifier_for
from ..adapters.paddlex import check_paddlex_classifier, is_paddlex_model
from ..core.budget import AutoBudget
from ..core.classifier import Classifier, check_positive_int
from ..core.explanation import Explanation
from ..core.fill import AutoFill, FillSpec
from ..core.images import ImageSource, check_image_path
from ..core.lime import (DEFAULT_FILL, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER, DEFAULT_SEGMENTER,
                         LimeExplainer, check_num_samples)
from ..core.sampling import Sampler
from ..core.segmentation import SegmenterSpec
from ..io import check_writable_dir
from .output import image_name, save_explanation

__all__ = ["lime", "prepare", "samples_stem"]

logger = logging.getLogger("paddlex_interpret")


def prepare(img_file: ImageSource, model: Any, num_samples: int | str, batch_size: int | str,
            save_dir: str | None, backend: str = "auto"
            ) -> tuple[Classifier, str, int | str, int | str]:
    """Check the arguments every explaining function shares (before anything runs) and return
    ``(classifier, image name, num_samples, batch_size)``: the one way ``lime``, ``normlime``
    and ``glime`` get their model. ``model``: a PaddleX classifier, the directory of a saved or
    exported one (PaddleX 2, or PaddleX 3 / PaddleClas), a deployed one, a
    :class:`~paddlex_interpret.core.classifier.Classifier` or a callable ``images ->
    probabilities`` (:func:`~paddlex_interpret.adapters.classifier_for`; ``backend`` is the
    PaddleX model's). ``save_dir`` None: nothing is written."""
    from ..adapters.model_dir import find_model_dir

    if isinstance(model, (str, bytes, os.PathLike)):
        find_model_dir(model)  # before anything loads: what is missing there
    elif is_paddlex_model(model):
        check_paddlex_classifier(model)
    num_samples = check_num_samples(num_samples)
    if not (isinstance(batch_size, str) and batch_size == "auto"):
        batch_size = check_positive_int(batch_size, "batch_size")
    if isinstance(img_file, (str, bytes, os.PathLike)):
        img_file = check_image_path(img_file)
    if save_dir is not None:
        check_writable_dir(save_dir)
    classifier, _ = classifier_for(model, backend=backend)
    return classifier, image_name(img_file), num_samples, batch_size


def samples_stem(method: str, num_samples: int | str) -> str:
    """The file stem of a result: ``lime_s1000`` for an int budget (PaddleX 1.3's), ``lime_sauto``
    for ``num_samples='auto'``."""
    return "%s_s%s" % (method, num_samples)


def lime(img_file: ImageSource, model: Any, num_samples: int | str = DEFAULT_NUM_SAMPLES,
         batch_size: int | str = 50, save_dir: str = "./", *, seed: int = 0, top_k: int = 1,
         labels: Any = None, segmenter: SegmenterSpec = DEFAULT_SEGMENTER,
         segmenter_params: Mapping[str, Any] | None = None,
         fill: FillSpec | AutoFill = DEFAULT_FILL,
         kernel_width: float = 0.25, surrogate: Any = None, save_png: bool = True,
         progress: bool = False, backend: str = "auto", adaptive: Any = None,
         sampler: str | Sampler = DEFAULT_SAMPLER, budget: AutoBudget | dict[str, Any] | None = None
         ) -> Explanation:
    """Explain ``model``'s prediction on ``img_file`` with LIME (PaddleX 1.3 semantics).

    Args:
        img_file: image path (any bit depth, grey/RGBA/palette) or an RGB array.
        model: a PaddleX 2.x classifier (``paddlex.cls.*`` or ``paddlex.load_model``), or a
            deployed one: a ``paddlex.deploy.Predictor`` or an exported inference-model
            directory (its own transforms and class names are used), or a PaddleX 3 /
            PaddleClas exported classifier (``output/best_model/inference`` or the checkpoint
            ``output/best_model``: its ``inference.yml`` preprocessing and label list).
        num_samples: ``'auto'`` (default: samples in rounds until the top superpixels are
            certified, at most 1000; ``settings['num_samples_used']`` says how many ran,
            :mod:`~paddlex_interpret.core.budget`) or an int: exactly that many (PaddleX 1.3's
            ``num_samples=3000`` keeps its meaning).
        batch_size: the model batch size (>= 1; ``'auto'`` picks it from memory).
        save_dir: where ``<image name>/lime_s<N>-<k>.png`` (and ``.npz``) are written.
        seed: repeatable sampling and segmentation. top_k / labels: which classes to explain
            (``labels`` by id or class name).
        fill: ``'auto'`` (default: per image, the candidate fill the model is least certain
            about once everything is hidden, :mod:`~paddlex_interpret.core.fill`;
            ``settings['fill_chosen']`` and ``['fill_scores']`` say what was chosen and why),
            ``'black'`` (PaddleX 1.3's output exactly), ``'grey'``, ``'median'``, ``'mean'``,
            ``'blur'`` or a colour.
        segmenter, segmenter_params, kernel_width, surrogate, sampler, budget: see
            :class:`~paddlex_interpret.core.lime.LimeExplainer` (``sampler='bernoulli'``
            with an int ``num_samples`` is PaddleX 1.3's LIME bit for bit).
        backend: ``'auto'``, ``'dygraph'`` or ``'inference'``
            (:mod:`~paddlex_interpret.runtime.policy`).
        adaptive: optional adaptive sampling (see :class:`LimeExplainer`); off by default.

    Returns:
        :class:`paddlex_interpret.Explanation` with ``png_path`` (and ``npz_path``) set.

    Raises:
        UnsupportedModelError: not a classifier, or no test transforms.
        FileNotFoundError / IsADirectoryError / ImageReadError: a bad ``img_file``.
        ValueError: ``num_samples`` or ``batch_size`` < 1, an unknown label name.
        PermissionError / NotADirectoryError: ``save_dir`` not writable, or a file.
    """
    classifier, name, num_samples, batch_size = prepare(img_file, model, num_samples,
                                                        batch_size, save_dir, backend=backend)
    explainer = LimeExplainer(classifier, segmenter=segmenter, segmenter_params=segmenter_params,
                              fill=fill, kernel_width=kernel_width, surrogate=surrogate,
                              num_samples=num_samples, batch_size=batch_size, seed=seed,
                              progress=progress, adaptive=adaptive, sampler=sampler,
                              budget=budget)
    image = classifier.view(img_file)
    explanation = explainer.explain(image, labels=labels, top_k=top_k)
    logger.info("predicted %s with probability %.3f", explanation.label_name(
        explanation.predicted_label), explanation.predicted_probability)
    if save_png:
        save_explanation(explanation, save_dir, name, samples_stem("lime", num_samples),
                         figure="lime")
    return explanation
