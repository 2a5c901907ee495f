"""paddlex_interpret.adapters.classifier_for: which adapter a model gets."""
import numpy as np
import pytest

from helpers import BrightnessModel
from paddlex_interpret.adapters import classifier_for
from paddlex_interpret.core.classifier import FunctionClassifier
from paddlex_interpret.errors import UnsupportedModelError


def test_a_paddlex_classifier_gets_the_paddlex_adapter(model):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    clf, pdx_model = classifier_for(model, backend="dygraph")
    assert isinstance(clf, PaddleXClassifier) and pdx_model is model
    assert clf.backend == "dygraph" and clf.label_names == list(model.labels)


def test_classifiers_and_functions():
    mine = BrightnessModel()
    assert classifier_for(mine) == (mine, None)
    fn = lambda b: np.zeros((len(b), 2))  # noqa: E731
    clf, pdx_model = classifier_for(fn)
    assert isinstance(clf, FunctionClassifier) and clf.fn is fn and pdx_model is None
    with pytest.raises(UnsupportedModelError, match="PaddleX classifier, a deployed one"):
        classifier_for(42)

    class Detector:  # a PaddleX model that is not a classifier
        model_type = "detector"
        net = None

    with pytest.raises(UnsupportedModelError, match="detector"):
        classifier_for(Detector())
