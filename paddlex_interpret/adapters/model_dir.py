"""A model named by its directory, and what is missing when a directory is not one.

PaddleX 2.x writes two kinds: a model *saved* by training (``save_dir/epoch_N``, ``best_model``:
``model.yml`` and ``model.pdparams``) and an *exported* inference model (``paddlex
--export_inference`` / ``model.export_inference_model``: ``model.yml``, ``model.pdmodel`` or
``model.json``, and ``model.pdiparams``). ``paddlex --export_inference --save_dir D`` writes the
model one level down, into ``D/inference_model``; ``D`` is accepted for it (said at INFO).
PaddleX 3 / PaddleClas write an exported model (``inference.yml``, ``inference.json`` or
``inference.pdmodel``, ``inference.pdiparams``) into every checkpoint's ``inference/``; the
checkpoint directory is accepted for it, and it opens as a
:class:`~paddlex_interpret.adapters.paddleclas.PaddleClasClassifier`.

Example::

    from paddlex_interpret.adapters.model_dir import find_model_dir, open_model
    find_model_dir("output/inference_model")   # 'output/inference_model/inference_model'
    model = open_model("output/best_model")     # a paddlex model, or an exported model's directory
    find_model_dir("pdx3_output/best_model")   # 'pdx3_output/best_model/inference'
"""
import logging
import os
from typing import Any, Union

from ..errors import UnsupportedModelError
from .paddleclas import PaddleClasClassifier, find_inference_dir, is_paddleclas_dir, program_files
from .program import check_loadable

__all__ = ["find_model_dir", "is_exported_dir", "open_model", "EXPORT_SUBDIR"]

logger = logging.getLogger("paddlex_interpret")

#: where ``paddlex --export_inference --save_dir D`` puts the model: ``D/inference_model``
EXPORT_SUBDIR = "inference_model"

PathLike = Union[str, bytes, "os.PathLike[str]"]

_KINDS = ("a PaddleX model directory has model.yml with model.pdparams (saved by model.train or "
          "model.save_model) or with model.pdmodel / model.json and model.pdiparams (exported by "
          "paddlex --export_inference); a PaddleX 3 / PaddleClas one has inference.yml, "
          "inference.json or inference.pdmodel, and inference.pdiparams (a checkpoint's "
          "inference/ directory)")


def is_exported_dir(path: str) -> bool:
    """True when ``path`` holds an exported inference model (a program and its parameters)."""
    from .deployed import program_files

    return program_files(path) is not None


def find_model_dir(path: PathLike) -> str:
    """The directory of the model ``path`` names: ``path`` itself, or for the directory given to
    ``paddlex --export_inference --save_dir`` the ``inference_model`` inside it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        NotADirectoryError: ``path`` is a file.
        UnsupportedModelError: a directory without a model; the message names what is missing.
    """
    path = os.fsdecode(path)
    if not os.path.exists(path):
        raise FileNotFoundError("model directory %r does not exist" % path)
    if not os.path.isdir(path):
        raise NotADirectoryError("%r is a file, not a model directory (%s)" % (path, _KINDS))
    if not os.path.isfile(os.path.join(path, "model.yml")):
        exported = find_inference_dir(path)
        if exported is not None:  # PaddleX 3 / PaddleClas: a checkpoint's inference/ or itself
            if exported != path:
                logger.info("using the exported model in %s", exported)
            check_loadable(program_files(exported)[0])
            return exported
        nested = os.path.join(path, EXPORT_SUBDIR)
        if os.path.isfile(os.path.join(nested, "model.yml")):
            logger.info("using the exported model in %s (paddlex --export_inference writes it "
                        "one level below its --save_dir)", nested)
            return find_model_dir(nested)
        raise UnsupportedModelError("%r is not a PaddleX model: no model.yml in it (%s)"
                                    % (path, _KINDS))
    if not (os.path.isfile(os.path.join(path, "model.pdparams")) or is_exported_dir(path)):
        raise UnsupportedModelError(
            "%r has model.yml but no weights: neither model.pdparams nor model.pdiparams with "
            "model.pdmodel / model.json (%s)" % (path, _KINDS))
    return path


def open_model(model: Any) -> Any:
    """``model`` as the rest of the package takes it: a path becomes the PaddleX model saved
    there (``paddlex.load_model``), for an exported model its directory (explained by
    :class:`~paddlex_interpret.adapters.deployed.DeployedClassifier`), for a PaddleX 3 /
    PaddleClas one its :class:`~paddlex_interpret.adapters.paddleclas.PaddleClasClassifier`;
    anything else is returned as it is."""
    if not isinstance(model, (str, bytes, os.PathLike)):
        return model
    path = find_model_dir(model)
    if is_paddleclas_dir(path):
        return PaddleClasClassifier(path)
    if is_exported_dir(path) and not os.path.isfile(os.path.join(path, "model.pdparams")):
        return path
    from ..compat import ensure_paddlex

    return ensure_paddlex().load_model(path)
