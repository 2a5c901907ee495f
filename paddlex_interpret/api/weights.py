"""NormLIME weights from a dataset and a model: built, cached in a file and checked, on one
process or several.

* :func:`build_normlime_weights` fits a concept codebook on a dataset (or takes one) and builds the
  per-class concept weights (:class:`~paddlex_interpret.core.normlime.GlobalWeights`), ``fast``
  (PaddleX 1.3's logistic regression, about one forward pass per image) or ``aggregate`` (LIME on
  every image, the NormLIME paper).
* every weights file carries a fingerprint of what it was built from (class names, codebook, mode
  and settings, the model's fingerprint): :func:`load_or_build_normlime_weights` reads it to
  decide whether a file fits a model (below, *the weights file as a cache*).
* ``nproc=N`` builds on several processes of this machine (below, *several processes*).

Example::

    import paddlex_interpret
    gw = paddlex_interpret.build_normlime_weights(model, eval_dataset, save_path="nl.npz")
    gw.top_concepts(0, 5)

**The weights file as a cache.** NormLIME weights files as a cache: used when they fit the model, never overwritten when a
user or the training hook made them.

A weights file *fits* a model when it was built for the same model (its fingerprint: weights
and preprocessing), the same classes and, when a codebook is given, that codebook. Then it is
used whatever budget built it (mode, ``max_images``, seed...): those settings are read from the
file and reported. A file that does not fit (another model, other classes, corrupt):

* at a path the caller chose (``normlime_weights_file``) or in a checkpoint directory (a
  ``model.pdparams`` beside it: the training hook's) is left as it is, and
  :class:`~paddlex_interpret.errors.NormLimeCacheError` names the mismatch and the fix;
* at the default path (:func:`default_weights_path`, this package's own cache) is rebuilt there.

Every such decision is logged on the package's logger at WARNING (visible with Python's default
logging; ``import paddlex`` turns Python warnings off) and also issued as a ``RuntimeWarning``.

    gw = load_or_build_normlime_weights("output/epoch_4/normlime_weights.npz", model)

**Several processes.** NormLIME weights built by several processes of this machine: ``build_normlime_weights(...,
nproc=N)`` and ``paddlex-interpret build-weights --nproc N``, for datasets one process would take
hours on.

The ranks are started with ``paddle.distributed.spawn``, not the launcher: the build is a function
call, and spawn starts the ranks from it, returns when they end, keeps their output on this
terminal (rank 0's progress bar over the whole dataset) and raises a rank's exception here;
``paddle.distributed.launch`` needs a script, restarts failed ranks and writes each rank's output
into log files. As with any ``multiprocessing`` spawn, a script calling this must do so under
``if __name__ == "__main__":``. Inside a job started by the launcher, call
``build_normlime_weights(..., collective='job')`` on every rank instead.

Every rank loads the model from its directory and runs Paddle Inference on its share of the
images, whose outputs depend neither on the batch split nor on the threads: the weights are the
bits of a one-process build with ``backend='inference'`` (tested on the CPU; no card was here to
test GPU ranks). Where the ranks run follows the calling process: on a GPU
(``paddle.set_device('gpu')``, ``--device gpu``) a rank per card, NCCL, and ``nproc`` at most
the visible cards (checked before anything starts); otherwise on the CPU with ``cores // N``
threads, gloo, and no card visible to them.

    if __name__ == "__main__":
        gw = build_normlime_weights("output/best_model", "data/val_list.txt", nproc=4,
                                    save_path="nl.npz")
"""
from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..adapters import classifier_for
from ..core.classifier import Classifier, check_positive_int
from ..core.fill import RULE_VERSION, AutoFill, FillSpec
from ..core.lime import DEFAULT_SEGMENTER
from ..core.normlime import (MODES, VARIANTS, GlobalWeights, build_global_weights_aggregate,
                             build_global_weights_fast, select_stratified)
from ..core.normlime.concepts import ConceptCodebook
from ..core.segmentation import SegmenterSpec
from ..core.sharding import LOCAL, Collective
from ..errors import DatasetError, NormLimeCacheError, UsageError
from ..runtime.devices import child_env, gpu_count, on_gpu
from .datasets import resolve_dataset

__all__ = ["build_normlime_weights", "load_or_build_normlime_weights", "default_weights_path",
           "in_checkpoint", "FIT_KEYS", "expected_fingerprint", "stamp", "save_weights",
           "build_settings", "normalise_mode", "resolve_codebook", "resolve_collective",
           "names_and_classes", "build_in_processes", "rank_classifier", "DEFAULT_MAX_IMAGES"]

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
            (:func:`~paddlex_interpret.api.weights.build_in_processes`; ``model`` and
            ``dataset`` must then be paths or picklable).

    Returns:
        :class:`GlobalWeights` (``.codebook`` set, ``.fingerprint`` filled).

    Raises:
        DatasetError: empty dataset, classes or labels that do not match the model, or no
            readable image in it.
    """
    if nproc is not None and check_positive_int(nproc, "nproc") > 1:
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
    (:mod:`~paddlex_interpret.api.weights`) checks (``expected``, or the one of ``classifier`` and ``settings``), naming the codebook it
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


# --------------------------------------------------- the weights file as a cache
#: What a weights file must share with the model to be used.
FIT_KEYS = ("model", "class_names", "num_classes")


def warn(message: str) -> None:
    """A decision the user must know about: the package logger at WARNING and a RuntimeWarning."""
    logger.warning("%s", message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def in_checkpoint(path: str) -> bool:
    """Whether ``path`` lies in a PaddleX checkpoint directory (``model.pdparams`` beside it)."""
    return os.path.exists(os.path.join(os.path.dirname(os.path.abspath(path)), "model.pdparams"))


def _settings_text(settings):
    keys = ("mode", "variant", "max_images", "seed", "num_samples", "fill", "segmenter")
    return ", ".join("%s=%r" % (k, settings[k]) for k in keys if k in settings)


def _read(path, expected, codebook):
    """``(weights or None, why they do not fit or None)``."""
    try:
        gw = GlobalWeights.load(path)
    except (NormLimeCacheError, OSError) as exc:
        return None, "unusable (%s)" % exc
    keys = list(FIT_KEYS) + (["codebook"] if codebook is not None else [])
    wrong = [k for k in gw.mismatches({k: expected[k] for k in keys if k in expected})]
    if gw.codebook is None:
        wrong.append("codebook (none stored)")
    return gw, ("built for another %s" % ", ".join(wrong) if wrong else None)


def load_or_build_normlime_weights(path: str, model: Any, dataset: Any = None, mode: str = "fast",
                                   codebook: ConceptCodebook | str | None = None,
                                   max_images: int | None = None, seed: int = 0,
                                   num_samples: int = 1000, batch_size: int | str = 50,
                                   progress: bool = False, keep_existing: bool | None = None,
                                   **kwargs: Any) -> GlobalWeights:
    """The weights at ``path`` when they fit ``model`` (see the module docstring), else built
    from ``dataset`` and saved there atomically.

    Args:
        keep_existing: never replace a file at ``path`` that does not fit (raise instead);
            default: when ``path`` is in a checkpoint directory.
        Other arguments: as for :func:`~paddlex_interpret.api.weights.build_normlime_weights`.

    Raises:
        NormLimeCacheError: the file does not fit and is kept (the message says why and what to
            do). DatasetError: no usable file and no dataset to build one from.
    """
    path = os.fspath(path)
    mode_n, variant = normalise_mode(mode, kwargs.get("variant", "normlime"))
    kwargs["variant"] = variant
    max_images_n = DEFAULT_MAX_IMAGES[mode_n] if max_images is None else max_images
    classifier, _ = classifier_for(model)
    names, num_classes = names_and_classes(classifier)
    if dataset is not None:  # check it even when the cache is good: a wrong dataset is an error
        resolve_dataset(dataset, names, num_classes)
    codebook = resolve_codebook(codebook)
    settings = build_settings(mode_n, variant, check_positive_int(max_images_n, "max_images"),
                              seed, num_samples, kwargs.get("top_k", 1), kwargs.get("grid"),
                              kwargs.get("fill", "auto"), kwargs.get("kernel_width", 0.25),
                              kwargs.get("segmenter", DEFAULT_SEGMENTER),
                              kwargs.get("segmenter_params"))
    expected = expected_fingerprint(classifier, names, num_classes, mode_n, settings, codebook,
                                    kwargs.get("n_concepts", 16))
    if keep_existing is None:
        keep_existing = in_checkpoint(path)
    if os.path.exists(path):
        gw, problem = _read(path, expected, codebook)
        if problem is None:
            logger.info("NormLIME weights loaded from %s (built with %s)", path,
                        _settings_text(gw.settings))
            if gw.settings.get("mode") != mode_n:
                logger.info("NormLIME weights %s are %r weights, this call asked for %r: using "
                            "the file's", path, gw.settings.get("mode"), mode_n)
            return gw
        if keep_existing:
            raise NormLimeCacheError(
                "NormLIME weights file %r is %s; it is left as it is. Explain with the model it "
                "was built for, or pass a new normlime_weights_file path to build weights for "
                "this model" % (path, problem))
        warn("NormLIME weights file %r is %s; rebuilding it" % (path, problem))
    if dataset is None:
        raise DatasetError("no usable NormLIME weights at %r and no dataset to build them from"
                           % path)
    gw = build_normlime_weights(classifier, dataset, mode=mode_n, max_images=max_images,
                                codebook=codebook, seed=seed, num_samples=num_samples,
                                batch_size=batch_size, progress=progress, **kwargs)
    # the fingerprint this cache checks (the file is found by it next time), then one writer
    assert gw.codebook is not None, "a build keeps its codebook"
    stamp(gw, classifier, mode_n, gw.settings, gw.codebook, expected=expected)
    if resolve_collective(kwargs.get("collective")).rank == 0:
        save_weights(gw, path)
    return gw


def default_weights_path(save_dir: str, model: Any, mode: str = "fast") -> str:
    """``save_dir/normlime_weights-<model class>-<mode>.npz``: the file :func:`normlime` uses when
    ``normlime_weights_file`` is None (PaddleX 1.3 crashed there)."""
    from ..adapters.paddlex import is_paddlex_model

    name = type(model).__name__ if is_paddlex_model(model) else "model"
    return os.path.join(os.fspath(save_dir), "normlime_weights-%s-%s.npz" % (name, mode))


# ------------------------------------------------------------- several processes
_WEIGHTS_NAME = "normlime_weights.npz"


def _check_inputs(model, dataset):
    """Everything the ranks would fail on alike, checked here: a rank that fails before every
    rank has joined the job leaves the others waiting at its rendezvous."""
    from ..adapters.model_dir import find_model_dir

    if not isinstance(model, (str, os.PathLike)) or not os.path.isdir(os.fspath(model)):
        raise UsageError("nproc needs the model as a directory (a saved PaddleX model or an "
                         "exported inference model), got %r" % (type(model).__name__,))
    find_model_dir(model)  # names what is missing there
    try:
        pickle.dumps(dataset)
    except Exception as exc:
        raise UsageError("nproc needs a dataset that can be sent to other processes (a path, "
                         "a list of paths or a paddlex.datasets.ImageNet): %s" % exc) from None


def rank_classifier(model_dir: str, num_threads: int | None = None) -> Classifier:
    """The classifier a rank of a parallel build explains with: the model of ``model_dir`` on
    Paddle Inference (one predictor of ``num_threads`` threads)."""
    from ..adapters import classifier_for
    from ..adapters.deployed import is_deployed_model
    from ..adapters.paddleclas import is_paddleclas_dir
    from ..adapters.paddlex import PaddleXClassifier
    from ..compat import ensure_paddlex

    if is_deployed_model(model_dir) or is_paddleclas_dir(model_dir):
        return classifier_for(model_dir)[0]
    model = ensure_paddlex().load_model(model_dir)
    return PaddleXClassifier(model, backend="inference", num_threads=num_threads)


def _ranks_device(nproc):
    """``'gpu'`` (a rank per card, NCCL) when this process runs on a GPU, else ``'cpu'``
    (gloo). Raises :class:`~paddlex_interpret.errors.UsageError` when ``nproc`` exceeds the
    visible cards."""
    if not on_gpu():
        return "cpu"
    cards = gpu_count()
    if nproc > cards:
        raise UsageError("nproc=%d needs a GPU per process and %d are visible "
                         "(CUDA_VISIBLE_DEVICES=%r): give nproc <= %d, or build on the CPU "
                         "(paddle.set_device('cpu'), --device cpu)"
                         % (nproc, cards, os.environ.get("CUDA_VISIBLE_DEVICES"), cards))
    return "gpu"


@contextlib.contextmanager
def _environment(env):
    """``os.environ`` is ``env`` inside (what the spawned ranks inherit), restored after; only
    the variables that differ are touched."""
    saved = dict(os.environ)
    changed = {k for k in set(saved) | set(env) if saved.get(k) != env.get(k)}

    def put(values):
        for key in changed:
            if key in values:
                os.environ[key] = values[key]
            else:
                os.environ.pop(key, None)

    put(env)
    try:
        yield
    finally:
        put(saved)


def _rank_main(build, model_dir, dataset, out_path, kwargs, num_threads, device="cpu"):
    """One rank: its share of ``build`` (``build_normlime_weights``; rank 0 writes ``out_path``)."""
    import paddle

    from ..adapters.collective import PaddleCollective

    os.environ.setdefault("GLOG_minloglevel", "2")
    if device == "cpu":
        paddle.set_device("cpu")
    from ..core.sharding import checked

    collective = PaddleCollective()
    # every rank has joined the job before any can fail: a failure is raised on all of them here
    classifier = checked(collective, lambda: rank_classifier(model_dir, num_threads))
    build(classifier, dataset, save_path=out_path, collective=collective, **kwargs)


def build_in_processes(build: Callable[..., Any], nproc: int, model: Any, dataset: Any,
                       save_path: str | os.PathLike[str] | None = None, **kwargs: Any
                       ) -> GlobalWeights:
    """``build(model, dataset, ...)`` (``build_normlime_weights``, handed in: it calls this) with
    ``nproc`` processes (see the module docstring); returns the
    :class:`~paddlex_interpret.core.normlime.weights.GlobalWeights` rank 0 wrote to
    ``save_path`` (or to a temporary file, removed after)."""
    import paddle.distributed as dist

    _check_inputs(model, dataset)
    nproc = int(nproc)
    device = _ranks_device(nproc)
    threads = max(1, (os.cpu_count() or 1) // nproc)
    tmp = None
    if save_path is None:
        tmp = tempfile.mkdtemp(prefix="pxi-weights-")
        out_path = os.path.join(tmp, _WEIGHTS_NAME)
    else:
        out_path = os.path.abspath(os.fspath(save_path))
    options: dict[str, Any] = {}
    env = dict(os.environ)
    if device == "cpu":  # the ranks see no card, so that none opens a context on one
        options, env = {"backend": "gloo"}, child_env("cpu")[0]
    logger.info("NormLIME weights: %d processes (paddle.distributed.spawn, %s), %d thread(s) "
                "each", nproc, options.get("backend", "one card each"), threads)
    try:
        with _environment(env):
            dist.spawn(_rank_main, args=(build, os.fspath(model), dataset, out_path, kwargs,
                                         threads, device),
                       nprocs=nproc, **options)
        gw = GlobalWeights.load(out_path)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return gw
