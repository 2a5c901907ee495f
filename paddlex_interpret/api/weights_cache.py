"""NormLIME weights files as a cache: used when they fit the model, never overwritten when a
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

Example::

    from paddlex_interpret.api.weights_cache import load_or_build_normlime_weights
    gw = load_or_build_normlime_weights("output/epoch_4/normlime_weights.npz", model)
"""
from __future__ import annotations

import logging
import os
import warnings
from typing import Any

from ..adapters import classifier_for
from ..core.classifier import check_positive_int
from ..core.normlime.concepts import ConceptCodebook
from ..core.normlime.weights import GlobalWeights
from ..core.lime import DEFAULT_SEGMENTER
from ..errors import DatasetError, NormLimeCacheError
from .datasets import resolve_dataset
from .weights import (DEFAULT_MAX_IMAGES, build_normlime_weights, build_settings,
                      expected_fingerprint, names_and_classes, normalise_mode, resolve_codebook,
                      resolve_collective, save_weights, stamp)

__all__ = ["load_or_build_normlime_weights", "default_weights_path", "in_checkpoint",
           "FIT_KEYS"]

logger = logging.getLogger("paddlex_interpret")

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
