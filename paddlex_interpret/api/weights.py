"""NormLIME weights from a dataset and a model: built, cached in a file and checked.

* :func:`build_normlime_weights` fits a concept codebook on a dataset (or takes one) and builds the
  per-class concept weights (:class:`~paddlex_interpret.core.normlime.GlobalWeights`), ``fast``
  (PaddleX 1.3's logistic regression, about one forward pass per image) or ``aggregate`` (LIME on
  every image, the NormLIME paper).
* every weights file carries a fingerprint of what it was built from (class names, codebook, mode
  and settings, the model's fingerprint): :mod:`~paddlex_interpret.api.weights_cache` reads it
  to decide whether a file fits a model.

Example::

    import paddlex_interpret
    gw = paddlex_interpret.build_normlime_weights(model, eval_dataset, save_path="nl.npz")
    gw.top_concepts(0, 5)
"""
from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..adapters import classifier_for
from ..core.classifier import Classifier, check_positive_int
from ..core.normlime.concepts import ConceptCodebook
from ..core.fill import RULE_VERSION, AutoFill, FillSpec
from ..core.lime import DEFAULT_SEGMENTER
from ..core.normlime import (MODES, VARIANTS, GlobalWeights, build_global_weights_aggregate,
                             build_global_weights_fast, select_stratified)
from ..core.segmentation import SegmenterSpec
from ..core.sharding import LOCAL, Collective
from ..errors import DatasetError
from .datasets import resolve_dataset

__all__ = ["build_normlime_weights", "expected_fingerprint", "stamp", "build_settings",
           "normalise_mode", "resolve_codebook", "resolve_collective", "names_and_classes",
           "DEFAULT_MAX_IMAGES"]

logger = logging.getLogger("paddlex_interpret")

#: images used when ``max_images`` is None, per mode (aggregate runs LIME on each one).
DEFAULT_MAX_IMAGES = {"fast": 1000, "aggregate": 100}
_FINGERPRINT_VERSION = 2


def names_and_classes(classifier: Classifier) -> tuple[list[str] | None, int | None]:
    """``(class names or None, number of classes or None)`` of a classifier."""
    names = classifier.label_names
    names = [str(n) for n in names] if names else None
    n = classifier.num_classes
    if n is None and names:
        n = len(names)
    return names, (int(n) if n is not None else None)


def normalise_mode(mode: str, variant: str) -> tuple[str, str]:
    if mode in VARIANTS:
        return "aggregate", mode
    if mode not in MODES:
        raise ValueError("mode must be 'fast' or 'aggregate' (or 'normlime'/'avg'), got %r"
                         % (mode,))
    return mode, variant


def build_settings(mode: str, variant: str, max_images: int, seed: int, num_samples: int,
                   top_k: int, grid: int | None, fill: FillSpec | AutoFill, kernel_width: float,
                   segmenter: SegmenterSpec, segmenter_params: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
    s = {"mode": mode, "max_images": int(max_images), "seed": int(seed),
         "segmenter": segmenter if isinstance(segmenter, str) else "custom",
         "segmenter_params": {k: v for k, v in sorted((segmenter_params or {}).items())
                              if np.isscalar(v)}}
    if mode == "fast":
        s["grid"] = None if grid is None else int(grid)
    else:
        s.update(variant=variant, num_samples=int(num_samples), top_k=int(top_k),
                 fill=fill if isinstance(fill, str) else "custom", kernel_width=float(kernel_width))
        if fill == "auto":
            s["fill_rule"] = RULE_VERSION
    return s


def expected_fingerprint(classifier: Classifier, class_names: Sequence[str] | None,
                         num_classes: int | None, mode: str, settings: Mapping[str, Any],
                         codebook: ConceptCodebook | None = None, n_concepts: int = 16
                         ) -> dict[str, Any]:
    """The fingerprint a weights file must carry to be reused for ``classifier`` (a
    :class:`~paddlex_interpret.core.classifier.Classifier`: its ``fingerprint()``). With a
    ``codebook`` it must have been built on that codebook; without one, on a codebook of
    ``n_concepts`` concepts over the same segmenter (the codebook seed is the build seed, part of
    ``settings``)."""
    fp = {"version": _FINGERPRINT_VERSION, "class_names": class_names, "num_classes": num_classes,
          "mode": mode, "settings": settings, "model": classifier.fingerprint()}
    if codebook is not None:
        fp["codebook"] = codebook.fingerprint()
    else:
        fp["codebook_settings"] = {"n_concepts": int(n_concepts),
                                   "segmenter": settings["segmenter"]}
    return fp


def resolve_codebook(codebook: ConceptCodebook | str | os.PathLike[str] | None
                     ) -> ConceptCodebook | None:
    if codebook is None or isinstance(codebook, ConceptCodebook):
        return codebook
    if isinstance(codebook, (str, bytes, os.PathLike)):
        return ConceptCodebook.load(os.fsdecode(codebook))
    raise TypeError("codebook must be a ConceptCodebook, a path to one, or None")


def build_normlime_weights(model: Any, dataset: Any,
                           save_path: str | os.PathLike[str] | None = None,
                           mode: str = "fast", max_images: int | None = None,
                           codebook: ConceptCodebook | str | None = None, seed: int = 0,
                           num_samples: int = 1000, batch_size: int | str = 50,
                           progress: bool = False, *, variant: str = "normlime",
                           n_concepts: int = 16, segmenter: SegmenterSpec = DEFAULT_SEGMENTER,
                           segmenter_params: Mapping[str, Any] | None = None,
                           grid: int | None = None, top_k: int = 1,
                           fill: FillSpec | AutoFill = "auto", kernel_width: float = 0.25,
                           collective: Collective | str | None = None, nproc: int | None = None
                           ) -> GlobalWeights:
    """Learn NormLIME's per-class concept weights from ``dataset`` and ``model``.

    Args:
        model: a PaddleX 2.x classifier (images go through its test transforms' geometric steps,
            :meth:`PaddleXClassifier.view`), or any ``images -> probabilities`` callable (a
            ``view`` method is used when it has one).
        dataset: a ``paddlex.datasets.ImageNet``, a folder, a list of paths/arrays (or
            ``(image, label)`` pairs), or an ``(N, H, W, 3)`` array. Its class names and label ids
            must fit the model. Unreadable images are skipped and counted (``weights.info``).
        save_path: write the weights (with their codebook and fingerprint) there, atomically.
        mode: ``'fast'`` (default; PaddleX 1.3's) or ``'aggregate'`` (LIME per image;
            ``variant`` ``'normlime'`` or ``'avg'``; ``mode='normlime'``/``'avg'`` also work).
        max_images: budget, stratified by class and seeded (None: 1000 fast, 100 aggregate).
        codebook: a :class:`ConceptCodebook` (or its path) to reuse; None fits one with
            ``n_concepts`` on the chosen images (seeded by ``seed``).
        seed: selection, codebook and LIME sampling seed.
        num_samples, batch_size: LIME samples per image (aggregate) and the model batch size.
        segmenter, segmenter_params: superpixels for the codebook and the explanations;
            ``grid=n`` makes fast mode use PaddleX 1.3's n x n grid for the occurrence vectors.
        progress: tqdm progress bars (on rank 0 only in a job).
        collective: ``'job'`` (the running ``paddle.distributed`` job: call this on every rank)
            or a :class:`~paddlex_interpret.core.sharding.Collective`: every rank works on its
            share of the images and gets the weights one process would build; rank 0 alone
            writes ``save_path``.
        nproc: build with this many processes on this machine
            (:func:`~paddlex_interpret.api.weights_parallel.build_in_processes`; ``model`` and
            ``dataset`` must then be paths or picklable).

    Returns:
        :class:`GlobalWeights` (``.codebook`` set, ``.fingerprint`` filled).

    Raises:
        DatasetError: empty dataset, classes or labels that do not match the model, or no
            readable image in it.
    """
    if nproc is not None and check_positive_int(nproc, "nproc") > 1:
        from .weights_parallel import build_in_processes

        return build_in_processes(
            build_normlime_weights, int(nproc), model, dataset, save_path=save_path, mode=mode,
            max_images=max_images, codebook=codebook, seed=seed, num_samples=num_samples,
            batch_size=batch_size, progress=progress, variant=variant, n_concepts=n_concepts, segmenter=segmenter,
            segmenter_params=segmenter_params, grid=grid, top_k=top_k, fill=fill,
            kernel_width=kernel_width)
    collective = resolve_collective(collective)
    mode, variant = normalise_mode(mode, variant)
    batch_size = check_positive_int(batch_size, "batch_size")
    num_samples = check_positive_int(num_samples, "num_samples")
    max_images = check_positive_int(DEFAULT_MAX_IMAGES[mode] if max_images is None else max_images,
                                    "max_images")
    classifier, _ = classifier_for(model)
    names, num_classes = names_and_classes(classifier)
    items, labels, ds_names = resolve_dataset(dataset, names, num_classes)
    if names is None and ds_names is not None:
        names = ds_names
    codebook = resolve_codebook(codebook)
    settings = build_settings(mode, variant, max_images, seed, num_samples, top_k, grid, fill,
                               kernel_width, segmenter, segmenter_params)
    load = classifier.view
    seg_spec = segmenter
    if segmenter_params and isinstance(segmenter, str):
        from ..core.segmentation import make_segmenter

        seg_spec = make_segmenter(segmenter, seed=seed, **segmenter_params)
    indices = select_stratified(len(items), labels, max_images, seed)
    chosen = [items[i] for i in indices]
    chosen_labels = None if labels is None else [labels[i] for i in indices]
    if codebook is None:
        codebook = _fit_codebook(chosen, seg_spec, n_concepts, seed, load, progress, collective)
    common = dict(labels=chosen_labels, seed=seed, num_classes=num_classes, class_names=names,
                  load=load, progress=progress, segmenter=seg_spec, collective=collective)
    try:
        if mode == "fast":
            gw = build_global_weights_fast(classifier, chosen, codebook, grid=grid,
                                           batch_size=batch_size, **common)
        else:
            gw = build_global_weights_aggregate(classifier, chosen, codebook, variant=variant,
                                                num_samples=num_samples, batch_size=batch_size,
                                                top_k=top_k, fill=fill,
                                                kernel_width=kernel_width, **common)
    except ValueError as exc:
        if "no readable image" in str(exc):
            raise DatasetError(str(exc)) from exc
        raise
    gw.info["dataset_size"] = len(items)
    stamp(gw, classifier, mode, settings, codebook, class_names=names, num_classes=num_classes)
    if collective.rank == 0:  # one report and one writer in a job
        if gw.info.get("n_skipped"):
            logger.warning("NormLIME weights built on %d image(s); %d unreadable image(s) "
                           "skipped", gw.info["n_images"], gw.info["n_skipped"])
        if save_path is not None:
            save_weights(gw, save_path)
    return gw


def save_weights(gw: GlobalWeights, save_path: str | os.PathLike[str]) -> None:
    """Write ``gw`` to ``save_path`` atomically (its directory made), and say so."""
    save_path = os.fspath(save_path)
    os.makedirs(os.path.dirname(os.path.abspath(save_path)), exist_ok=True)
    gw.save(save_path)
    logger.info("NormLIME weights saved in %s", save_path)


def resolve_collective(collective: Collective | str | None) -> Collective:
    """The :class:`~paddlex_interpret.core.sharding.Collective` a build runs with: ``None`` one
    process, ``'job'`` the running ``paddle.distributed`` job, or the one given."""
    if collective is None:
        return LOCAL
    if isinstance(collective, str) and collective == "job":
        from ..adapters.collective import job_collective

        return job_collective()
    if isinstance(collective, Collective):
        return collective
    raise TypeError("collective must be None, 'job' or a Collective, got %r" % (collective,))


def _fit_codebook(chosen: list[Any], segmenter: SegmenterSpec, n_concepts: int, seed: int,
                  load: Callable[[Any], Any], progress: bool, collective: Collective
                  ) -> ConceptCodebook:
    try:
        return ConceptCodebook().fit(chosen, segmenter=segmenter, n_concepts=n_concepts,
                                     seed=seed, load=load, progress=progress,
                                     collective=collective)
    except ValueError as exc:
        if "no readable image" in str(exc):
            raise DatasetError("NormLIME: %s" % exc) from exc
        raise


def stamp(gw: GlobalWeights, classifier: Classifier, mode: str, settings: Mapping[str, Any],
          codebook: ConceptCodebook, expected: Mapping[str, Any] | None = None,
          class_names: Sequence[str] | None = None, num_classes: int | None = None
          ) -> GlobalWeights:
    """Give ``gw`` its build ``settings`` and the fingerprint the weights cache
    (:mod:`~paddlex_interpret.api.weights_cache`) checks (``expected``, or the one of ``classifier`` and ``settings``), naming the codebook it
    was built on. Returns ``gw``."""
    gw.settings.update(settings)
    fp = dict(expected) if expected else expected_fingerprint(
        classifier, class_names or gw.class_names, num_classes or gw.num_classes, mode, settings)
    fp["codebook"] = codebook.fingerprint()
    fp["codebook_settings"] = {
        "n_concepts": int(codebook.settings.get("n_concepts", codebook.n_concepts)),
        "segmenter": settings["segmenter"]}
    gw.fingerprint = fp
    return gw
