"""``normlime``: LIME, NormLIME and their product for one image, PaddleX 1.3's
``paddlex.interpret.normlime``; the NormLIME weights are learned from a dataset once and cached
(:mod:`~paddlex_interpret.api.weights`).

Example::

    from paddlex_interpret.api.normlime import normlime
    exp = normlime("val/0001.png", model, dataset=eval_dataset, num_samples=1000, save_dir="out")
    exp.extra["normlime"], exp.extra["combined"]        # (L, n_superpixels) each
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping

import numpy as np

from ..core.budget import AutoBudget
from ..core.normlime.concepts import ConceptCodebook
from ..core.explanation import Explanation
from ..core.fill import AutoFill, FillSpec, resolve_fill
from ..core.images import ImageSource
from ..core.lime import (DEFAULT_FILL, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER, DEFAULT_SEGMENTER,
                         LimeExplainer)
from ..core.normlime import combine, normlime_weights_for
from ..core.sampling import Sampler
from ..core.segmentation import SegmenterSpec
from .lime import prepare, samples_stem
from .output import save_explanation
from .weights import normalise_mode
from .weights import default_weights_path, load_or_build_normlime_weights

__all__ = ["normlime"]

logger = logging.getLogger("paddlex_interpret")


def normlime(img_file: ImageSource, model: Any, dataset: Any = None,
             num_samples: int | str = DEFAULT_NUM_SAMPLES, batch_size: int | str = 50,
             save_dir: str = "./", normlime_weights_file: str | None = None, *, seed: int = 0,
             mode: str = "fast", max_images: int | None = None,
             codebook: ConceptCodebook | str | None = None, top_k: int = 1, labels: Any = None,
             segmenter: SegmenterSpec = DEFAULT_SEGMENTER,
             segmenter_params: Mapping[str, Any] | None = None,
             fill: FillSpec | AutoFill = DEFAULT_FILL, kernel_width: float = 0.25,
             n_concepts: int = 16, build_num_samples: int = 1000, save_png: bool = True,
             progress: bool = False, backend: str = "auto",
             sampler: str | Sampler = DEFAULT_SAMPLER,
             budget: AutoBudget | dict[str, Any] | None = None) -> Explanation:
    """Explain ``model``'s prediction on ``img_file`` with LIME and NormLIME (PaddleX 1.3
    semantics).

    The NormLIME weights are learned from ``dataset`` once and cached in ``normlime_weights_file``
    (relative to ``save_dir``, as in PaddleX 1.3; default
    ``save_dir/normlime_weights-<model>-<mode>.npz``). A file that fits the model and classes is
    used whatever budget built it (e.g. a checkpoint's file written by the training hook); one
    that does not is left as it is when it was named (an error says why) and rebuilt, logged,
    when it is the default cache (:mod:`~paddlex_interpret.api.weights`).

    Args:
        img_file, model, num_samples, batch_size, save_dir: as :func:`paddlex_interpret.lime`.
        dataset: required (a ``paddlex.datasets.ImageNet``, a folder or a list of images).
        normlime_weights_file: the weights file (computed when absent, loaded when it fits;
            relative paths are taken from ``save_dir``).
        mode, max_images, codebook, n_concepts, build_num_samples: how the weights are built
            (:func:`build_normlime_weights`; ``build_num_samples`` is LIME's budget per dataset
            image in aggregate mode).
        seed, top_k, labels, segmenter, segmenter_params, fill, kernel_width, sampler, budget:
            the LIME run (:func:`paddlex_interpret.lime`).
        backend: passed on to :func:`paddlex_interpret.lime`'s model adapter when given.
        save_png: write ``save_dir/<image name>/normlime_s<N>-<k>.png`` (rows: image,
            LIME, NormLIME, combined) and the ``.npz`` next to it.

    Returns:
        :class:`~paddlex_interpret.Explanation`; ``extra['normlime']`` and ``extra['combined']``
        (``(L, n_segments)``), ``concepts`` (concept id per superpixel), ``global_weights``,
        ``weights_file``, ``png_path``.

    Raises:
        ValueError: ``dataset`` is None. DatasetError: empty dataset or classes that do not match
        the model. Plus everything :func:`paddlex_interpret.lime` raises.
    """
    if dataset is None:
        raise ValueError("normlime needs a dataset: the NormLIME weights are learned from the "
                         "model's predictions on it (pass e.g. your paddlex.datasets.ImageNet "
                         "validation set, a folder or a list of image paths)")
    classifier, name, num_samples, batch_size = prepare(img_file, model, num_samples,
                                                         batch_size, save_dir, backend)
    build_batch_size = batch_size if isinstance(batch_size, (int, np.integer)) else 50
    mode_n, variant = normalise_mode(mode, "normlime")
    explicit = normlime_weights_file is not None
    path = (os.path.join(os.fspath(save_dir), os.fspath(normlime_weights_file))
            if normlime_weights_file is not None
            else default_weights_path(save_dir, model, mode if mode_n == "fast" else variant))
    gw = load_or_build_normlime_weights(
        path, model, dataset, keep_existing=explicit or None, mode=mode_n, codebook=codebook, max_images=max_images, seed=seed,
        num_samples=build_num_samples, batch_size=build_batch_size, progress=progress,
        variant=variant, n_concepts=n_concepts, segmenter=segmenter,
        segmenter_params=segmenter_params, fill=fill, kernel_width=kernel_width)
    explainer = LimeExplainer(classifier, segmenter=segmenter, segmenter_params=segmenter_params,
                              fill=resolve_fill(fill, gw.info.get("mean_colour")),
                              kernel_width=kernel_width, num_samples=num_samples,
                              batch_size=batch_size, seed=seed, progress=progress,
                              sampler=sampler, budget=budget)
    image = classifier.view(img_file)
    explanation = explainer.explain(image, labels=labels, top_k=top_k)
    book = gw.codebook
    assert book is not None, "weights are loaded or built with their codebook"
    concepts = book.assign(explanation.image, explanation.segments)
    nl = normlime_weights_for(explanation, concepts, gw)
    explanation.extra["normlime"] = nl
    explanation.extra["combined"] = combine(explanation.weights, nl)
    explanation.settings.update(method="normlime", normlime_mode=gw.mode,
                                normlime_variant=gw.settings.get("variant"),
                                normlime_weights_file=path, codebook=book.fingerprint())
    explanation.concepts = concepts
    explanation.global_weights = gw
    explanation.weights_file = path
    logger.info("predicted %s with probability %.3f", explanation.label_name(
        explanation.predicted_label), explanation.predicted_probability)
    if save_png:
        save_explanation(explanation, save_dir, name, samples_stem("normlime", num_samples),
                         figure="normlime")
    return explanation
