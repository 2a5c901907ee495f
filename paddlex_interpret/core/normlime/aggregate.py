"""NormLIME weights the paper's way (Ahern et al. 2019, as InterpretDL does it): LIME on every
image of a dataset, then per class the mean over a concept's superpixels of the normalised local
weights. :func:`build_global_weights_aggregate` is re-exported by
:mod:`~paddlex_interpret.core.normlime`, which describes both ways.

Example::

    from paddlex_interpret.core.normlime import build_global_weights_aggregate
    gw = build_global_weights_aggregate(classifier, images, codebook, num_samples=300)
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from ..classifier import ClassifierLike, as_classifier
from .concepts import ConceptCodebook
from .dataset_pass import (ShareLoader, as_items, image_colour, label_names, mean_colour,
                           report_skipped, select_stratified)
from ..fill import AutoFill, FillSpec
from .weights import GlobalWeights
from ..lime import LimeExplainer
from ..segmentation import SegmenterSpec
from ..sharding import LOCAL, Collective, checked, gather_in_order

__all__ = ["VARIANTS", "build_global_weights_aggregate"]

logger = logging.getLogger("paddlex_interpret")

VARIANTS = ("normlime", "avg")


def build_global_weights_aggregate(classifier_fn: ClassifierLike, images: Iterable[Any],
                                   codebook: ConceptCodebook, variant: str = "normlime",
                                   labels: npt.ArrayLike | None = None,
                                   max_images: int | None = None, seed: int = 0,
                                   num_samples: int = 1000, batch_size: int | str = 50,
                                   top_k: int = 1, segmenter: SegmenterSpec | None = None,
                                   fill: FillSpec | AutoFill = "black", kernel_width: float = 0.25,
                                   num_classes: int | None = None,
                                   class_names: Sequence[str] | None = None,
                                   load: Callable[[Any], npt.ArrayLike] | None = None,
                                   progress: bool = False, collective: Collective | None = None
                                   ) -> GlobalWeights:
    """Global concept weights, the NormLIME paper's way: LIME on each image, then per class and
    concept the mean over the concept's superpixels of ``w^2 / ||w||_1`` (``'normlime'``, as PaddleX
    1.3 and InterpretDL) or of ``w`` (``'avg'``). Concepts never seen for a class get 0, classes
    never explained uniform weights ``1/K``. Costs ``num_samples`` forward passes per image.

    ``top_k`` predicted labels are explained per image; image ``i`` is sampled with seed
    ``seed + i``. With a ``collective`` every rank explains its share of the images, and the
    explanations' concepts, labels and weights are gathered and added up in image order (the
    bits of one process). Other arguments as for :func:`build_global_weights_fast`.
    """
    if variant not in VARIANTS:
        raise ValueError("variant must be one of %s, got %r" % (VARIANTS, variant))
    t0 = time.perf_counter()
    items = as_items(images)
    indices = select_stratified(len(items), labels, max_images, seed)
    seg_spec = codebook.make_segmenter() if segmenter is None else segmenter
    loader = ShareLoader(items, indices, load, progress, "NormLIME", collective)
    classifier_fn = as_classifier(classifier_fn)
    mine = []

    def work():  # this rank's share: a LIME per image
        with classifier_fn.hold_weights():  # weights verified once for the whole build
            for p, i, image in loader:
                explainer = LimeExplainer(classifier_fn, segmenter=seg_spec, fill=fill,
                                          kernel_width=kernel_width, num_samples=num_samples,
                                          batch_size=batch_size, seed=seed + i)
                exp = explainer.explain(image, top_k=top_k)
                mine.append((p, (len(exp.probabilities),
                                 codebook.assign(exp.image, exp.segments),
                                 [int(label) for label in exp.labels],
                                 [np.asarray(w) for w in exp.weights], image_colour(image))))

    checked(collective, work)
    rows = [r for _, r in gather_in_order(collective, mine)]
    skipped = [m for _, m in gather_in_order(collective, loader.skipped)]
    report_skipped(skipped, len(indices), "NormLIME", collective)
    if not rows:
        raise ValueError("NormLIME: no readable image among %d (%d skipped)"
                         % (len(indices), len(skipped)))
    weights, counts_ck, explained, seen = _fold_aggregate(rows, codebook.n_concepts, variant,
                                                          num_classes)
    settings = {"mode": "aggregate", "variant": variant, "num_samples": int(num_samples),
                "top_k": int(top_k), "fill": fill if isinstance(fill, str) else "custom",
                "kernel_width": float(kernel_width),
                "max_images": None if max_images is None else int(max_images), "seed": int(seed)}
    info = {"n_images": len(rows), "n_selected": int(len(indices)), "n_skipped": len(skipped),
            "skipped": skipped[:20], "seconds": time.perf_counter() - t0,
            "support": counts_ck.astype(np.int64).tolist(),
            "mean_colour": mean_colour([r[4] for r in rows]),
            "concept_frequency": np.round(seen / len(rows), 4).tolist(),
            "ranks": int((collective or LOCAL).world)}
    return GlobalWeights(weights, label_names(classifier_fn, class_names, weights.shape[0]),
                         mode="aggregate", settings=settings, counts=explained, info=info,
                         codebook=codebook)


def _fold_aggregate(rows, K, variant, num_classes):
    """Per class and concept the mean contribution of the explanations ``rows`` (in image
    order: ``(n classes, concept per superpixel, labels, weights per label, colour)``)."""
    nc = int(num_classes or rows[0][0])
    sums, counts_ck = np.zeros((nc, K)), np.zeros((nc, K))
    explained, seen = np.zeros(nc, dtype=np.int64), np.zeros(K)
    for _, concepts, labels, label_weights, _ in rows:
        seen[np.unique(concepts)] += 1
        for label, w in zip(labels, label_weights):
            if variant == "normlime":
                l1 = np.abs(w).sum()
                contrib = w * w / l1 if l1 > 0 else np.zeros_like(w)
            else:
                contrib = w
            np.add.at(sums[label], concepts, contrib)
            np.add.at(counts_ck[label], concepts, 1.0)
            explained[label] += 1
    weights = np.where(counts_ck > 0, sums / np.maximum(counts_ck, 1), 0.0)
    never = explained == 0
    weights[never] = 1.0 / K
    if never.any():
        logger.warning("NormLIME: %d class(es) were never explained (%s); they get uniform "
                       "weights", int(never.sum()), np.flatnonzero(never).tolist()[:10])
    return weights, counts_ck, explained, seen
