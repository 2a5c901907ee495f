"""NormLIME and GLIME on PaddleX 2.x classifiers, learned offline from the user's data and model.

* :func:`build_normlime_weights` fits a concept codebook on a dataset (or takes one) and builds the
  per-class concept weights (:class:`~paddlex_interpret.core.normlime.GlobalWeights`), ``fast``
  (PaddleX 1.3's logistic regression, about one forward pass per image) or ``aggregate`` (LIME on
  every image, the NormLIME paper).
* :func:`load_or_build_normlime_weights` is the cache: a weights file carries a fingerprint of what
  it was built from (class names, codebook, mode and settings, a hash of the model's parameters); a
  corrupt or stale file is rebuilt with a warning, never silently used; writes are atomic.
* :func:`normlime` is PaddleX 1.3's ``paddlex.interpret.normlime``: LIME, NormLIME and their
  product, one PNG with the three rows.
* :func:`glime` is LIME with the global weights as a prior: the ridge fit is pulled toward the
  global weight of each superpixel's concept (strength ``beta``), and the masks are drawn in
  complementary pairs from LIME's kernel-weighted distribution (same estimand as LIME, less
  sampling noise); ``glime(beta=0, sampler='bernoulli')`` is plain LIME.

Example::

    import paddlex_interpret
    import paddlex as pdx
    model = pdx.load_model("output/best_model")
    ds = pdx.datasets.ImageNet("data", "data/val_list.txt", "data/labels.txt",
                               model.test_transforms)
    exp = pdx.interpret.normlime("data/red/val_0.png", model, ds, num_samples=1000, save_dir="out")
    exp.extra["normlime"], exp.extra["combined"]        # (L, n_superpixels) each
    gw = exp.global_weights                              # cached in out/normlime_weights-...npz
    g = paddlex_interpret.normlime_api.glime("data/red/val_1.png", model, gw, beta=10)
"""
import hashlib
import json
import logging
import os
import warnings

import numpy as np

from .core.concepts import ConceptCodebook
from .core.images import load_image, to_rgb_uint8
from .core.lime import LimeExplainer, check_positive_int
from .core.normlime import (GlobalWeights, build_global_weights_aggregate,
                            build_global_weights_fast, combine, glime_prior,
                            normlime_weights_for, select_stratified)
from .core.sampling import SampledLimeExplainer
from .core.surrogate import WeightedRidge
from .errors import DatasetError, NormLimeCacheError, UnsupportedModelError

__all__ = ["build_normlime_weights", "load_or_build_normlime_weights", "normlime", "glime",
           "resolve_dataset", "model_fingerprint", "expected_fingerprint",
           "default_weights_path", "DEFAULT_MAX_IMAGES"]

logger = logging.getLogger("paddlex_interpret")

#: images used when ``max_images`` is None, per mode (aggregate runs LIME on each one).
DEFAULT_MAX_IMAGES = {"fast": 1000, "aggregate": 100}
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")
_FINGERPRINT_VERSION = 1


# ---------------------------------------------------------------------------- inputs
def _is_paddlex_model(obj):
    return hasattr(obj, "model_type") or (hasattr(obj, "net") and hasattr(obj, "labels"))


def _classifier(model):
    """``(classifier_fn, the PaddleX model or None)`` for a PaddleX model or any classifier."""
    from .predictors import PaddleXClassifier, check_paddlex_classifier

    if _is_paddlex_model(model):
        check_paddlex_classifier(model)
        return PaddleXClassifier(model), model
    if callable(model):
        return model, getattr(model, "model", None)
    raise UnsupportedModelError("expected a PaddleX classifier or a callable images -> "
                                "probabilities, got %s" % type(model).__name__)


def _class_names(classifier, pdx_model):
    names = getattr(pdx_model, "labels", None) if pdx_model is not None else None
    if not names:
        names = getattr(classifier, "label_names", None)
    return [str(n) for n in names] if names else None


def _num_classes(classifier, pdx_model, names):
    n = getattr(pdx_model, "num_classes", None) if pdx_model is not None else None
    if n is None:
        n = getattr(classifier, "num_classes", None)
    if n is None and names:
        n = len(names)
    return int(n) if n is not None else None


def resolve_dataset(dataset, class_names=None, num_classes=None):
    """Turn a dataset into ``(items, labels or None, dataset class names or None)``.

    ``dataset`` is a ``paddlex.datasets.ImageNet`` (its ``file_list`` and ``labels``), a directory
    (its image files, recursively, sorted), a list of image paths or arrays, a list of
    ``(image, label)`` pairs, or an ``(N, H, W, 3)`` array.

    Raises:
        DatasetError: None or empty, or its class names / label ids do not fit the model's.
    """
    if dataset is None:
        raise DatasetError("a dataset is needed to learn the NormLIME weights: pass a "
                           "paddlex.datasets.ImageNet, a folder, or a list of images")
    names = None
    labels = None
    if hasattr(dataset, "file_list") and hasattr(dataset, "labels"):  # paddlex.datasets.ImageNet
        names = [str(n) for n in dataset.labels] if dataset.labels is not None else None
        items, labels = [], []
        for entry in dataset.file_list:
            if isinstance(entry, dict):
                items.append(entry["image"])
                labels.append(int(np.asarray(entry.get("label", -1))))
            else:  # PaddleX 1.x: (path, label)
                items.append(entry[0])
                labels.append(int(entry[1]))
    elif isinstance(dataset, (str, bytes, os.PathLike)):
        root = os.fsdecode(dataset)
        if not os.path.isdir(root):
            raise DatasetError("dataset %r is not a directory (pass a list for single images)"
                               % root)
        items = sorted(os.path.join(d, f) for d, _, files in os.walk(root) for f in files
                       if f.lower().endswith(_IMAGE_EXTS))
    elif isinstance(dataset, np.ndarray):
        if dataset.ndim == 3:
            dataset = dataset[None]
        if dataset.ndim != 4:
            raise DatasetError("an array dataset must be (N, H, W, C), got %s" % (dataset.shape,))
        items = [im for im in dataset]
    else:
        try:
            items = list(dataset)
        except TypeError:
            raise DatasetError("unsupported dataset type %s" % type(dataset).__name__) from None
        if items and all(isinstance(it, tuple) and len(it) == 2 for it in items):
            labels = [int(l) for _, l in items]
            items = [x for x, _ in items]
    if not items:
        raise DatasetError("the dataset is empty: NormLIME needs images to learn from")
    if names is not None and class_names is not None and list(names) != list(class_names):
        raise DatasetError("the dataset's classes %s do not match the model's %s"
                           % (names, list(class_names)))
    if labels is not None:
        if len(labels) and any(l < 0 for l in labels):
            raise DatasetError("the dataset has negative label ids")
        n = num_classes if num_classes is not None else (len(class_names) if class_names else None)
        if n is not None and labels and max(labels) >= n:
            raise DatasetError("the dataset has label id %d but the model has %d classes"
                               % (max(labels), n))
    return items, labels, names


def model_fingerprint(model):
    """A short hash of a model's parameters (names, shapes, a strided sample of the values, so a
    ResNet50 costs a few milliseconds) and of its test transforms; None when unknown."""
    layer = None
    if _is_paddlex_model(model):
        layer = model.net
    elif hasattr(model, "model") and _is_paddlex_model(model.model):
        layer = model.model.net
    elif hasattr(model, "layer"):
        layer = model.layer
    elif hasattr(model, "state_dict"):
        layer = model
    if layer is None:
        fp = getattr(model, "fingerprint", None)
        return str(fp() if callable(fp) else fp) if fp is not None else None
    h = hashlib.blake2b(digest_size=12)
    for name, tensor in sorted(layer.state_dict().items()):
        arr = np.asarray(tensor.numpy() if hasattr(tensor, "numpy") else tensor)
        flat = arr.reshape(-1)
        step = max(1, flat.size // 4096)
        h.update(("%s%s%s" % (name, arr.shape, arr.dtype)).encode())
        h.update(np.ascontiguousarray(flat[::step]).tobytes())
    pdx_model = model if _is_paddlex_model(model) else getattr(model, "model", None)
    transforms = getattr(pdx_model, "test_transforms", None)
    for op in getattr(transforms, "transforms", None) or []:
        attrs = {k: v for k, v in sorted(vars(op).items())
                 if isinstance(v, (int, float, str, bool, tuple, list))}
        h.update((type(op).__name__ + json.dumps(attrs, default=str)).encode())
    return h.hexdigest()


def _normalise_mode(mode, variant):
    if mode in ("normlime", "avg"):
        return "aggregate", mode
    if mode not in ("fast", "aggregate"):
        raise ValueError("mode must be 'fast' or 'aggregate' (or 'normlime'/'avg'), got %r"
                         % (mode,))
    return mode, variant


def _build_settings(mode, variant, max_images, seed, num_samples, top_k, grid, fill,
                    kernel_width, segmenter, segmenter_params):
    s = {"mode": mode, "max_images": int(max_images), "seed": int(seed),
         "segmenter": segmenter if isinstance(segmenter, str) else "custom",
         "segmenter_params": {k: v for k, v in sorted((segmenter_params or {}).items())
                              if np.isscalar(v)}}
    if mode == "fast":
        s["grid"] = None if grid is None else int(grid)
    else:
        s.update(variant=variant, num_samples=int(num_samples), top_k=int(top_k),
                 fill=fill if isinstance(fill, str) else "custom", kernel_width=float(kernel_width))
    return s


def expected_fingerprint(model, class_names, num_classes, mode, settings, codebook=None,
                         n_concepts=16):
    """The fingerprint a weights file must carry to be reused. With a ``codebook`` it must have
    been built on that codebook; without one, on a codebook of ``n_concepts`` concepts over the
    same segmenter (the codebook seed is the build seed, part of ``settings``)."""
    fp = {"version": _FINGERPRINT_VERSION, "class_names": class_names, "num_classes": num_classes,
          "mode": mode, "settings": settings, "model": model_fingerprint(model)}
    if codebook is not None:
        fp["codebook"] = codebook.fingerprint()
    else:
        fp["codebook_settings"] = {"n_concepts": int(n_concepts),
                                   "segmenter": settings["segmenter"]}
    return fp


def _resolve_codebook(codebook):
    if codebook is None or isinstance(codebook, ConceptCodebook):
        return codebook
    if isinstance(codebook, (str, bytes, os.PathLike)):
        return ConceptCodebook.load(os.fsdecode(codebook))
    raise TypeError("codebook must be a ConceptCodebook, a path to one, or None")


# ---------------------------------------------------------------------------- build
def build_normlime_weights(model, dataset, save_path=None, mode="fast", max_images=None,
                           codebook=None, seed=0, num_samples=1000, batch_size=50, progress=False,
                           *, variant="normlime", n_concepts=16, segmenter="quickshift",
                           segmenter_params=None, grid=None, top_k=1, fill="black",
                           kernel_width=0.25, _expected=None):
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
        progress: tqdm progress bars.

    Returns:
        :class:`GlobalWeights` (``.codebook`` set, ``.fingerprint`` filled).

    Raises:
        DatasetError: empty dataset, classes or labels that do not match the model, or no
            readable image in it.
    """
    mode, variant = _normalise_mode(mode, variant)
    batch_size = check_positive_int(batch_size, "batch_size")
    num_samples = check_positive_int(num_samples, "num_samples")
    max_images = check_positive_int(DEFAULT_MAX_IMAGES[mode] if max_images is None else max_images,
                                    "max_images")
    classifier, pdx_model = _classifier(model)
    names = _class_names(classifier, pdx_model)
    num_classes = _num_classes(classifier, pdx_model, names)
    items, labels, ds_names = resolve_dataset(dataset, names, num_classes)
    if names is None and ds_names is not None:
        names = ds_names
    codebook = _resolve_codebook(codebook)
    settings = _build_settings(mode, variant, max_images, seed, num_samples, top_k, grid, fill,
                               kernel_width, segmenter, segmenter_params)
    load = getattr(classifier, "view", None)
    seg_spec = segmenter
    if segmenter_params and isinstance(segmenter, str):
        from .core.segmentation import make_segmenter

        seg_spec = make_segmenter(segmenter, seed=seed, **segmenter_params)
    indices = select_stratified(len(items), labels, max_images, seed)
    chosen = [items[i] for i in indices]
    chosen_labels = None if labels is None else [labels[i] for i in indices]
    if codebook is None:
        try:
            codebook = ConceptCodebook().fit(chosen, segmenter=seg_spec, n_concepts=n_concepts,
                                             seed=seed, load=load, progress=progress)
        except ValueError as exc:
            if "no readable image" in str(exc):
                raise DatasetError("NormLIME: %s" % exc) from exc
            raise
    common = dict(labels=chosen_labels, seed=seed, num_classes=num_classes, class_names=names,
                  load=load, progress=progress, segmenter=seg_spec)
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
    gw.settings.update(settings)
    gw.info["dataset_size"] = len(items)
    fp = dict(_expected) if _expected else expected_fingerprint(
        model, names or gw.class_names, num_classes or gw.num_classes, mode, settings)
    fp["codebook"] = codebook.fingerprint()
    fp["codebook_settings"] = {
        "n_concepts": int(codebook.settings.get("n_concepts", codebook.n_concepts)),
        "segmenter": settings["segmenter"]}
    gw.fingerprint = fp
    if gw.info.get("n_skipped"):
        logger.warning("NormLIME weights built on %d image(s); %d unreadable image(s) skipped",
                       gw.info["n_images"], gw.info["n_skipped"])
    if save_path is not None:
        save_path = os.fspath(save_path)
        parent = os.path.dirname(os.path.abspath(save_path))
        os.makedirs(parent, exist_ok=True)
        gw.save(save_path)
        logger.info("NormLIME weights saved in %s", save_path)
    return gw


def load_or_build_normlime_weights(path, model, dataset=None, mode="fast", codebook=None,
                                   max_images=None, seed=0, num_samples=1000, batch_size=50,
                                   progress=False, **kwargs):
    """Load the weights at ``path`` if they were built for this model, classes, codebook, mode and
    settings; otherwise (absent, corrupt or stale) build them from ``dataset`` and save them there
    atomically. A corrupt or stale file is reported with ``warnings.warn`` before being rebuilt.

    Other arguments as for :func:`build_normlime_weights`.
    """
    path = os.fspath(path)
    mode_n, variant = _normalise_mode(mode, kwargs.get("variant", "normlime"))
    kwargs["variant"] = variant
    max_images_n = DEFAULT_MAX_IMAGES[mode_n] if max_images is None else max_images
    classifier, pdx_model = _classifier(model)
    names = _class_names(classifier, pdx_model)
    num_classes = _num_classes(classifier, pdx_model, names)
    if dataset is not None:  # check it even when the cache is good: a wrong dataset is an error
        resolve_dataset(dataset, names, num_classes)
    codebook = _resolve_codebook(codebook)
    settings = _build_settings(mode_n, variant, check_positive_int(max_images_n, "max_images"),
                               seed, num_samples, kwargs.get("top_k", 1), kwargs.get("grid"),
                               kwargs.get("fill", "black"), kwargs.get("kernel_width", 0.25),
                               kwargs.get("segmenter", "quickshift"),
                               kwargs.get("segmenter_params"))
    expected = expected_fingerprint(model, names, num_classes, mode_n, settings, codebook,
                                    kwargs.get("n_concepts", 16))
    if os.path.exists(path):
        try:
            gw = GlobalWeights.load(path)
        except (NormLimeCacheError, OSError) as exc:
            warnings.warn("NormLIME weights file %r is unusable (%s); rebuilding it" % (path, exc),
                          RuntimeWarning, stacklevel=2)
        else:
            stale = gw.mismatches(expected)
            if gw.codebook is None:
                stale.append("codebook")
            if not stale:
                logger.info("NormLIME weights loaded from %s", path)
                return gw
            warnings.warn("NormLIME weights file %r was built for a different %s; rebuilding it"
                          % (path, ", ".join(stale)), RuntimeWarning, stacklevel=2)
    if dataset is None:
        raise DatasetError("no usable NormLIME weights at %r and no dataset to build them from"
                           % path)
    return build_normlime_weights(model, dataset, save_path=path, mode=mode_n,
                                  max_images=max_images, codebook=codebook, seed=seed,
                                  num_samples=num_samples, batch_size=batch_size,
                                  progress=progress, _expected=expected, **kwargs)


def default_weights_path(save_dir, model, mode="fast"):
    """``save_dir/normlime_weights-<model class>-<mode>.npz``: the file :func:`normlime` uses when
    ``normlime_weights_file`` is None (PaddleX 1.3 crashed there)."""
    name = type(model).__name__ if _is_paddlex_model(model) else "model"
    return os.path.join(os.fspath(save_dir), "normlime_weights-%s-%s.npz" % (name, mode))


# ---------------------------------------------------------------------------- explain
def normlime(img_file, model, dataset=None, num_samples=3000, batch_size=50, save_dir="./",
             normlime_weights_file=None, *, seed=0, mode="fast", max_images=None, codebook=None,
             top_k=1, labels=None, segmenter="quickshift", segmenter_params=None, fill="black",
             kernel_width=0.25, n_concepts=16, build_num_samples=1000, save_png=True,
             progress=False, backend=None):
    """Explain ``model``'s prediction on ``img_file`` with LIME and NormLIME (PaddleX 1.3
    semantics).

    The NormLIME weights are learned from ``dataset`` once and cached in ``normlime_weights_file``
    (default ``save_dir/normlime_weights-<model>-<mode>.npz``); a cache built for another model,
    classes, codebook or settings, or a corrupt one, is rebuilt with a warning.

    Args:
        img_file, model, num_samples, batch_size, save_dir: as :func:`paddlex_interpret.lime`.
        dataset: required (a ``paddlex.datasets.ImageNet``, a folder or a list of images).
        normlime_weights_file: the weights cache (computed when absent, loaded when present).
        mode, max_images, codebook, n_concepts, build_num_samples: how the weights are built
            (:func:`build_normlime_weights`; ``build_num_samples`` is LIME's budget per dataset
            image in aggregate mode).
        seed, top_k, labels, segmenter, segmenter_params, fill, kernel_width: the LIME run.
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
    from .paddlex_api import _prepare, _save

    if dataset is None:
        raise ValueError("normlime needs a dataset: the NormLIME weights are learned from the "
                         "model's predictions on it (pass e.g. your paddlex.datasets.ImageNet "
                         "validation set, a folder or a list of image paths)")
    prepare_kw = {} if backend is None else {"backend": backend}
    classifier, name, num_samples, batch_size = _prepare(img_file, model, num_samples,
                                                         batch_size, save_dir, **prepare_kw)
    build_batch_size = batch_size if isinstance(batch_size, (int, np.integer)) else 50
    mode_n, variant = _normalise_mode(mode, "normlime")
    path = (os.fspath(normlime_weights_file) if normlime_weights_file is not None
            else default_weights_path(save_dir, model, mode if mode_n == "fast" else variant))
    gw = load_or_build_normlime_weights(
        path, model, dataset, mode=mode_n, codebook=codebook, max_images=max_images, seed=seed,
        num_samples=build_num_samples, batch_size=build_batch_size, progress=progress,
        variant=variant, n_concepts=n_concepts, segmenter=segmenter,
        segmenter_params=segmenter_params, fill=fill, kernel_width=kernel_width)
    explainer = LimeExplainer(classifier, segmenter=segmenter, segmenter_params=segmenter_params,
                              fill=fill, kernel_width=kernel_width, num_samples=num_samples,
                              batch_size=batch_size, seed=seed, progress=progress)
    image = classifier.view(img_file)
    explanation = explainer.explain(image, labels=labels, top_k=top_k)
    concepts = gw.codebook.assign(explanation.image, explanation.segments)
    nl = normlime_weights_for(explanation, concepts, gw)
    explanation.extra["normlime"] = nl
    explanation.extra["combined"] = combine(explanation.weights, nl)
    explanation.settings.update(method="normlime", normlime_mode=gw.mode,
                                normlime_variant=gw.settings.get("variant"),
                                normlime_weights_file=path, codebook=gw.codebook.fingerprint())
    explanation.concepts = concepts
    explanation.global_weights = gw
    explanation.weights_file = path
    logger.info("predicted %s with probability %.3f", explanation.label_name(
        explanation.predicted_label), explanation.predicted_probability)
    if save_png:
        _save(explanation, save_dir, name, "normlime_s%d" % num_samples, figure="normlime")
    return explanation


def glime(img_file_or_array, model_or_classifier, global_weights, codebook=None, beta=10.0,
          num_samples=1000, batch_size=50, *, seed=0, labels=None, top_k=1, alpha=1.0, tau=1.0,
          prior_normalize="l1", prior_area_exponent=0.5, sampler="paired_kernel", surrogate=None,
          segmenter="quickshift", segmenter_params=None, fill="black", kernel_width=0.25,
          segments=None, save_dir=None, progress=False):
    """GLIME: LIME with a global NormLIME prior, estimated with variance-reduced sampling.

    Two parts, both pluggable:

    * the **surrogate** (default ``WeightedRidge(alpha, beta, tau)``) minimises
      ``sum_i pi_i (y_i - b - x_i.w)^2 + alpha ||w||^2 + beta ||w - tau w0||^2`` where ``w0[j]``
      is the global weight (``global_weights``) of superpixel ``j``'s concept for the explained
      class times ``(relative area) ** prior_area_exponent``, scaled to unit L1 norm per class
      (``prior_normalize='l1'``; None keeps the raw weights as PaddleX 1.3 / InterpretDL did); see
      :func:`~paddlex_interpret.core.normlime.glime_prior`. ``surrogate=`` replaces it, e.g.
      :class:`~paddlex_interpret.core.surrogate.PriorScaledRidge` (the prior as a per-superpixel
      penalty, as in G-LIME, Li et al. 2022);
    * the **sampler** (default ``'paired_kernel'``,
      :class:`~paddlex_interpret.core.sampling.PairedKernelSampler`): masks drawn from LIME's
      kernel-weighted distribution in complementary pairs, with importance weights that keep
      LIME's estimand; at N=1000 on the Fashion-MNIST model its weights vary about 30% less
      across seeds than LIME's (its docstring says when pairs do not help). ``'bernoulli'``
      is LIME's own sampling: ``glime(beta=0, sampler='bernoulli')`` is plain LIME, bit for bit.

    Defaults measured on Fashion-MNIST test images other than the ones reported
    (BENCHMARKS.md, "Explanation quality vs the peers"): the paired sampler alone makes the top-5
    superpixels and the ranking more stable across seeds at the same deletion / insertion AUC;
    ``beta=10`` with ``aggregate`` weights (``variant='avg'``: the mean LIME weight of each
    concept per class, so every concept is ranked) adds a little more stability at equal
    faithfulness, larger ``beta`` starts to trade faithfulness for agreement with the prior.
    How much to trust the prior is data-dependent: on the generated shapes data, where the
    object's colour decides the class and the prior is reliable, ``beta=100`` is the setting
    that makes GLIME at N=250 as stable as LIME at N=1000 (BENCHMARKS.md, "NormLIME and
    GLIME"); ``beta=10`` is not enough there.
    PaddleX 1.3's ``fast`` weights are nearly one-hot per class: as a pull they drag every
    superpixel outside the top concept toward 0 and, at ``beta`` >= 30, cost stability and
    faithfulness; use them with a small ``beta`` or not at all. A large ``beta`` approaches
    ``tau w0``: the prior, not this image's evidence, then orders the superpixels.

    Args:
        img_file_or_array: image path or RGB array (through the model's view for a PaddleX model).
        model_or_classifier: a PaddleX classifier or an ``images -> probabilities`` callable.
        global_weights: :class:`GlobalWeights` or the path of a weights file.
        codebook: defaults to the one stored with the weights.
        beta, alpha, tau: prior strength, ridge penalty (PaddleX 1.3: 1), prior scale (ignored
            when ``surrogate`` is given). ``beta='auto'`` chooses it per image and label from
            the samples (:class:`~paddlex_interpret.core.surrogate.EvidenceRidge`, the
            marginal likelihood of the ridge fit; ``settings['beta']`` records the choice):
            close to the best fixed beta on both benchmark data sets, where each fixed beta is
            best on one and worst on the other (BENCHMARKS.md, "GLIME's beta chosen from the
            samples").
        sampler: ``'paired_kernel'`` (``'paired'``), ``'bernoulli'`` (``'lime'``) or an object
            with ``sample(num_samples, n_segments, rng)`` and ``sample_weight(masks, kernel)``.
        surrogate: an object with ``fit(X, Y, sample_weight, prior=None)`` (default above).
        segments: a label map to use instead of segmenting.
        save_dir: when given, write ``save_dir/<image name>/glime_s<N>-<k>.png`` (LIME layout).

    Returns:
        :class:`~paddlex_interpret.Explanation` with ``extra['prior']`` (``(L, n_segments)``);
        ``settings`` names the sampler, the surrogate and the prior.

    Raises:
        ValueError: no codebook, a codebook and weights with different concept counts, an
        unknown sampler, negative ``alpha``/``beta``. TypeError: a sampler object without
        ``sample``/``sample_weight``.
    """
    if isinstance(global_weights, (str, bytes, os.PathLike)):
        global_weights = GlobalWeights.load(os.fsdecode(global_weights))
    codebook = _resolve_codebook(codebook) or global_weights.codebook
    if codebook is None:
        raise ValueError("glime needs a codebook: none given and none stored with the weights")
    if codebook.n_concepts != global_weights.n_concepts:
        raise ValueError("the codebook has %d concepts, the weights %d"
                         % (codebook.n_concepts, global_weights.n_concepts))
    classifier, _ = _classifier(model_or_classifier)
    view = getattr(classifier, "view", None)
    if isinstance(img_file_or_array, (str, bytes, os.PathLike)):
        image = view(img_file_or_array) if view else load_image(img_file_or_array)
        name = os.path.splitext(os.path.basename(os.fsdecode(img_file_or_array)))[0]
    else:
        image = view(img_file_or_array) if view else to_rgb_uint8(img_file_or_array)
        name = "image"
    if surrogate is None:
        if isinstance(beta, str):
            if beta != "auto":
                raise ValueError("beta must be a number >= 0 or 'auto', got %r" % (beta,))
            from .core.surrogate import EvidenceRidge

            surrogate = EvidenceRidge(alpha=alpha, tau=tau)
        else:
            surrogate = WeightedRidge(alpha=alpha, beta=beta, tau=tau)
    explainer = SampledLimeExplainer(classifier, sampler=sampler, segmenter=segmenter,
                                     segmenter_params=segmenter_params, fill=fill,
                                     kernel_width=kernel_width, surrogate=surrogate,
                                     num_samples=num_samples, batch_size=batch_size, seed=seed,
                                     progress=progress)
    prior_fn = glime_prior(global_weights, codebook, image, normalize=prior_normalize,
                           area_exponent=prior_area_exponent)
    captured = {}

    def prior(segs, labs):
        captured["prior"] = prior_fn(segs, labs)
        return captured["prior"]

    explanation = explainer.explain(image, labels=labels, top_k=top_k, segments=segments,
                                    prior=prior if getattr(surrogate, "beta", 1) > 0 else None)
    if "prior" not in captured:
        prior(explanation.segments, explanation.labels)
    explanation.extra["prior"] = captured["prior"]
    explanation.settings.update(prior="global_weights:%s" % global_weights.mode,
                                prior_normalize=prior_normalize,
                                prior_area_exponent=float(prior_area_exponent),
                                codebook=codebook.fingerprint())
    if getattr(surrogate, "last_beta", None) is not None:
        explanation.settings["beta"] = [float(b) for b in surrogate.last_beta]
    if save_dir is not None:
        from .io import ensure_writable_dir
        from .paddlex_api import _save

        ensure_writable_dir(save_dir)
        _save(explanation, save_dir, name, "glime_s%d" % num_samples, figure="lime")
    return explanation
