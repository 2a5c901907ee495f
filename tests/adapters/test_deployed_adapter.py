"""paddlex_interpret.adapters.deployed: explaining the model a user ships, without its training
code: an exported inference-model directory or a ``paddlex.deploy.Predictor`` gives the dygraph
model's probabilities (within 1e-4) and the same top superpixels."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.adapters.deployed import DeployedClassifier, is_deployed_model
from paddlex_interpret.errors import UnsupportedModelError


@pytest.fixture(scope="module")
def exported(trained_classifier, tmp_path_factory):
    d = tmp_path_factory.mktemp("deployed")
    trained_classifier.model._export_inference_model(str(d))
    return str(d / "inference_model")


def test_a_deployed_model_explains_like_the_live_one(pdx, trained_classifier, exported,
                                                     tmp_path):
    model = trained_classifier.model
    image = trained_classifier.dataset.val_items()[7][0]
    kw = dict(num_samples=200, batch_size=50, save_dir=str(tmp_path), seed=2, fill="grey")
    live = pdx.interpret.lime(image, model, **kw)
    for deployed in (exported, pdx.deploy.Predictor(exported)):
        assert is_deployed_model(deployed)
        got = pdx.interpret.lime(image, deployed, **kw)
        np.testing.assert_allclose(got.probabilities, live.probabilities, atol=1e-4)
        label = int(live.labels[0])
        assert got.labels.tolist() == live.labels.tolist()
        assert got.top_segments(label, 3).tolist() == live.top_segments(label, 3).tolist()
        assert got.label_names == list(model.labels)
        assert got.settings["path"] == "deployed predictor"
    clf = DeployedClassifier(exported)
    assert clf.fingerprint() == DeployedClassifier(exported).fingerprint()


def test_what_is_not_a_deployed_classifier_is_named(tmp_path):
    assert not is_deployed_model(str(tmp_path))
    with pytest.raises(UnsupportedModelError, match="not an exported PaddleX inference model"):
        DeployedClassifier(str(tmp_path))
