"""paddlex_interpret.runtime.policy (ModelRunner): the forced backends and their fallback to
dygraph, the ``'auto'`` rule (the engine from the first call, never timed), the plan decided
before an explanation's first batch, and the CPU engine's batches cut in parts of at most 32.

The trained model is the session's ``trained_classifier``; models that are measured or changed
are fresh copies.
"""
import logging

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import fresh_model, grid_of
from paddlex_interpret import LayerClassifier, PaddleXClassifier
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import perturb, sample_masks
from paddlex_interpret.runtime import engine, export, policy
from paddlex_interpret.runtime import engine as engine_mod


@pytest.fixture(scope="module")
def image(trained):
    """The first val image of the session's trained classifier, as the model sees it."""
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    return clf.view(trained.dataset.val_items()[0][0])


def test_forced_fallback_when_export_fails(trained, probe_images, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise export.ExportError("simulated export failure")

    model = fresh_model(trained, seed=2)
    monkeypatch.setattr(engine_mod, "export_layer", broken)
    clf = PaddleXClassifier(model, backend="inference")
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        probs = clf(probe_images)
    assert clf.backend_info["backend"] == "dygraph"
    assert "simulated export failure" in clf.backend_info["reason"]
    assert any("simulated export failure" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(
        probs, PaddleXClassifier(model, backend="dygraph")(probe_images))


def test_a_layer_that_cannot_be_exported_falls_back(caplog):
    import paddle

    class DygraphOnly(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.fc = paddle.nn.Linear(3, 2)

        def forward(self, x):
            if not paddle.in_dynamic_mode():  # e.g. Python-side logic with no static form
                raise NotImplementedError("this layer only runs in dygraph")
            return self.fc(x.mean(axis=[2, 3]))

    clf = LayerClassifier(DygraphOnly(), backend="inference")
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        probs = clf(images)
    assert clf.backend_info["backend"] == "dygraph"
    assert "export failed" in clf.backend_info["reason"]
    assert probs.shape == (4, 2) and np.allclose(probs.sum(1), 1)


def test_auto_is_the_engine_from_the_first_call_whatever_its_size(trained, probe_images):
    """'auto' is not timed: the first call, of any size, builds the engine and keeps it for the
    process, so the numbers do not depend on the machine's load or on the order of the calls;
    later calls of any size follow it, and the engine's bits do not depend on the batch."""
    model = fresh_model(trained, seed=3)
    auto = PaddleXClassifier(model)  # backend='auto'
    shape = (3,) + probe_images.shape[1:3]
    state = auto.runner.auto_state(shape)
    assert state.decision is None
    first = auto(probe_images[:1])
    assert (state.decision, state.reason) == ("inference", "auto: the inference engine")
    assert auto.backend_info["backend"] == "inference"
    probs = auto(probe_images)
    np.testing.assert_array_equal(probs[:1], first)
    forced = PaddleXClassifier(model, backend="inference")
    np.testing.assert_array_equal(forced(probe_images), probs)  # the same path as forced
    np.testing.assert_allclose(probs, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)


def test_auto_falls_back_to_dygraph_when_the_engine_cannot_be_built(trained, probe_images,
                                                                     monkeypatch):
    def broken(*args, **kwargs):
        raise export.ExportError("simulated export failure")

    model = fresh_model(trained, seed=4)
    monkeypatch.setattr(engine_mod, "export_layer", broken)
    auto = PaddleXClassifier(model)
    probs = auto(probe_images)
    state = auto.runner.auto_state((3,) + probe_images.shape[1:3])
    assert state.decision == "dygraph" and "simulated export failure" in state.reason
    assert auto.backend_info["backend"] == "dygraph"
    np.testing.assert_array_equal(
        probs, PaddleXClassifier(model, backend="dygraph")(probe_images))


def test_the_first_batch_of_a_shape_decides_its_backend_before_it_runs(trained, image,
                                                                       monkeypatch):
    """'auto' decides on the first call with a shape, on that batch's first image (its output
    thrown away), before the batch runs: the whole batch, and every later one, runs on what
    was decided; the plan names it."""
    model = fresh_model(trained, seed=5)
    shape = (3,) + image.shape[:2]
    auto = PaddleXClassifier(model)
    assert not auto.runner.decided(shape)
    probes = []
    decide = auto.runner._decide
    monkeypatch.setattr(auto.runner, "_decide",
                        lambda st, shp, probe: (probes.append(len(probe)), decide(st, shp, probe)))
    batch = np.stack([image, image[::-1], image[:, ::-1]])
    probs = auto(batch)
    assert probes == [1]
    assert auto.runner.decided(shape)
    assert auto.runner.auto_state(shape).decision == "inference"
    assert auto.runner.last_plan == policy.Plan("inference", gpu=False)
    assert auto.backend_info["path"] == "inference: one predictor"
    auto(batch[:2])
    assert probes == [1]   # decided once
    dyg = PaddleXClassifier(model, backend="dygraph")
    np.testing.assert_allclose(dyg(batch), probs, atol=1e-4)
    assert dyg.runner.last_plan == policy.Plan("dygraph")
    assert dyg.backend_info["path"] == "dygraph"


def test_the_cpu_engine_runs_batches_in_parts_of_at_most_32(trained, image, monkeypatch):
    """A batch of 50 runs as 25 + 25 on the CPU predictor (Paddle 3.3 ran batches of 40-50 up
    to 1.8x slower per image than 20-32), with the same bits as other cuts and whole batches."""
    seg = grid_of(image.shape, 5)
    masks = sample_masks(150, 25, np.random.default_rng(2))
    fill = make_fill(image, seg, "black")
    clf = PaddleXClassifier(trained.model, backend="inference")
    sizes = []
    real_call = engine.InferenceEngine.__call__
    monkeypatch.setattr(engine.InferenceEngine, "__call__",
                        lambda self, x: sizes.append(len(x)) or real_call(self, x))
    got = clf.predict_masks(image, fill, seg, masks, 50)
    assert sizes == [25] * 6
    del sizes[:]
    np.testing.assert_array_equal(clf(perturb(image, fill, seg, masks)), got)
    assert sizes == [30] * 5  # any call: 150 images in 5 parts
    del sizes[:]
    monkeypatch.setattr(policy, "CPU_ENGINE_MAX_BATCH", 0)  # off: whole batches
    np.testing.assert_array_equal(clf.predict_masks(image, fill, seg, masks, 50), got)
    assert sizes == [50] * 3
    assert [(c.start, c.stop) for c in policy.engine_parts(110, 32)] == \
        [(0, 28), (28, 56), (56, 83), (83, 110)]
    assert policy.engine_parts(20, 32) == [slice(0, 20)]
