"""paddlex_interpret.runtime.engine: a Paddle Inference predictor built from a live layer gives
dygraph's numbers (probabilities, LIME weights).

The trained model is the session's ``trained_classifier`` (MobileNetV3_small trained here on the
coloured-shapes data, 64 px).
"""
import os

import numpy as np

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.core.lime import LimeExplainer


def test_inference_gives_dygraph_probabilities_on_a_trained_model(trained, probe_images):
    dyg = PaddleXClassifier(trained.model, backend="dygraph")
    inf = PaddleXClassifier(trained.model, backend="inference")
    p_d, p_i = dyg(probe_images), inf(probe_images)
    info = inf.backend_info
    assert info["backend"] == "inference", info
    assert info["format"] in ("pdmodel", "json") and info.get("onednn") is True
    assert info["threads"] == (os.cpu_count() or 1)
    assert dyg.backend_info["backend"] == "dygraph"
    np.testing.assert_array_equal(p_d.argmax(1), p_i.argmax(1))
    np.testing.assert_allclose(p_i, p_d, atol=1e-4)
    np.testing.assert_allclose(p_i.sum(1), 1.0, atol=1e-6)
    assert p_d.max() > 0.5  # a trained model, not a flat one


def test_lime_through_inference_matches_dygraph(trained, probe_images):
    image = probe_images[1]
    kwargs = dict(num_samples=200, batch_size=50, seed=0, segmenter="slic")
    d = LimeExplainer(PaddleXClassifier(trained.model, backend="dygraph"), **kwargs).explain(image)
    i = LimeExplainer(PaddleXClassifier(trained.model, backend="inference"), **kwargs).explain(
        image)
    np.testing.assert_array_equal(d.segments, i.segments)
    np.testing.assert_allclose(i.weights, d.weights, atol=1e-4)
    assert d.top_segments(d.labels[0], 3).tolist() == i.top_segments(i.labels[0], 3).tolist()
