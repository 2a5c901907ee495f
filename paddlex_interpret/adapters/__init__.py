"""Adapters: each turns a model into a :class:`~paddlex_interpret.core.classifier.Classifier`
(a PaddleX 2.x classifier, any ``paddle.nn.Layer``, a deployed PaddleX model, a PaddleX 3 /
PaddleClas exported classifier or its checkpoint's network).
:func:`classifier_for` picks one."""
from ..core.classifier import Classifier, as_classifier
from ..errors import UnsupportedModelError

__all__ = ["classifier_for"]


def classifier_for(model, **options):
    """``(classifier, the PaddleX model or None)`` for a PaddleX classifier or the directory of
    a saved one (wrapped in a
    :class:`~paddlex_interpret.adapters.paddlex.PaddleXClassifier` with ``options``), a deployed
    one (a ``paddlex.deploy.Predictor`` or an exported inference-model directory:
    :class:`~paddlex_interpret.adapters.deployed.DeployedClassifier`), a PaddleX 3 / PaddleClas
    exported classifier's directory or checkpoint
    (:class:`~paddlex_interpret.adapters.paddleclas.PaddleClasClassifier`), a
    :class:`~paddlex_interpret.core.classifier.Classifier`, or a callable ``images ->
    probabilities``.

    Raises:
        UnsupportedModelError: anything else, or a PaddleX model that is not a usable classifier.
        FileNotFoundError / NotADirectoryError: a model path that is missing or a file
            (:func:`~paddlex_interpret.adapters.model_dir.find_model_dir`).
    """
    from .deployed import DeployedClassifier, is_deployed_model
    from .model_dir import open_model
    from .paddlex import PaddleXClassifier, check_paddlex_classifier, is_paddlex_model

    model = open_model(model)

    if is_deployed_model(model):
        return DeployedClassifier(model), getattr(model, "_model", None)
    if is_paddlex_model(model):
        check_paddlex_classifier(model)
        return PaddleXClassifier(model, **options), model
    if isinstance(model, Classifier):
        return model, getattr(model, "model", None)
    if callable(model):
        return as_classifier(model), None
    raise UnsupportedModelError("expected a PaddleX classifier, a deployed one (a "
                                "paddlex.deploy.Predictor or an exported inference-model "
                                "directory) or a callable images -> probabilities, got %r"
                                % (model,))
