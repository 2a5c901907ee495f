"""paddlex_interpret.runtime.policy (ModelRunner): the forced backends and their fallback to
dygraph, the ``'auto'`` rule (the engine from the first call, never timed), when the
inference workers are used and when ``'auto'`` turns them off, and the ``parallel`` option.

The trained model is the session's ``trained_classifier``; models that are measured or changed
are fresh copies.
"""
import logging

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import fresh_model, grid_of, multi_core
from paddlex_interpret import LayerClassifier, PaddleXClassifier
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import sample_masks
from paddlex_interpret.runtime import cache, engine, export, policy
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


@pytest.mark.usefixtures("workers_not_ruled_out")
def test_no_workers_in_dygraph_off_or_with_one_thread(trained, image):
    shape = (3,) + image.shape[:2]
    probe = np.repeat(PaddleXClassifier(trained.model).preprocess(image[None]), 20, axis=0)
    plan = PaddleXClassifier(trained.model, backend="dygraph").runner.plan(shape, probe)
    assert plan.backend == "dygraph" and plan.workers == []
    off = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    assert off.runner.plan(shape, probe).workers == []
    assert off.runner.plan(shape, probe, parallel=0).workers == []
    one_thread = PaddleXClassifier(trained.model, backend="inference", num_threads=1)
    assert one_thread.runner.plan(shape, probe).workers == []


@pytest.mark.usefixtures("workers_not_ruled_out")
def test_parallel_option_is_validated():
    assert policy.check_parallel("auto") == "auto"
    assert policy.check_parallel(True) == "auto"
    assert policy.check_parallel(False) == 0
    assert policy.check_parallel(3) == 3
    for bad in ("yes", -1, 1.5):
        with pytest.raises(ValueError, match="parallel"):
            policy.check_parallel(bad)
    with pytest.raises(ValueError, match="parallel"):
        LayerClassifier(lambda x: x, parallel="fast")


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
def test_auto_checks_the_workers_before_the_first_batch(trained, image, monkeypatch, caplog):
    """Whether the workers can run at once is measured on a probe before an explanation's first
    batch (warm-up + 2 runs each, outputs thrown away); when they take turns ('auto', forced here
    by asking for more than 100% busy) no batch runs on them, in this explanation or later ones,
    and the numbers are the one predictor's bit for bit. ``parallel=2`` keeps them."""
    shape = (3,) + image.shape[:2]
    seg = grid_of(image.shape, 5)
    masks = sample_masks(400, 25, np.random.default_rng(4))
    fill = make_fill(image, seg, "black")
    ref = PaddleXClassifier(trained.model, backend="inference", parallel=False).predict_masks(
        image, fill, seg, masks, 20)
    monkeypatch.setattr(policy, "AUTO_WORKERS_MIN_BUSY", 1.5)
    # a loaded machine may time the model above the workers' threshold: not what is tested here
    monkeypatch.setattr(policy, "AUTO_WORKERS_SECONDS_PER_IMAGE", 1.0)
    forced = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    np.testing.assert_array_equal(forced.predict_masks(image, fill, seg, masks, 20), ref)
    assert forced.backend_info.get("workers") == 2
    assert forced.backend_info["path"].startswith("inference: 2 workers")
    auto = PaddleXClassifier(trained.model, backend="inference")
    runs = []
    real_run = engine.EngineWorker.run
    monkeypatch.setattr(engine.EngineWorker, "run",
                        lambda self, b: runs.append(b) or real_run(self, b))
    with caplog.at_level(logging.INFO, logger="paddlex_interpret"):
        got = auto.predict_masks(image, fill, seg, masks, 20)
    np.testing.assert_array_equal(got, ref)
    assert len(runs) == 6  # the probe only: a warm-up and 2 runs on each of the 2 workers
    assert "workers" not in auto.backend_info and "busy" in auto.backend_info["workers_off"]
    assert auto.backend_info["path"] == "inference: one predictor"
    assert any("workers off" in r.getMessage() for r in caplog.records)
    auto.predict_masks(image, fill, seg, masks, 20)
    assert len(runs) == 6  # measured once: the next explanation follows
    assert PaddleXClassifier(trained.model, backend="inference").runner.plan(shape).workers == []
    assert auto.runner.plan(shape, parallel=2).workers  # asked for: kept


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
def test_auto_keeps_slow_models_on_the_one_predictor(trained, image, monkeypatch):
    shape = (3,) + image.shape[:2]
    monkeypatch.setattr(policy, "AUTO_WORKERS_MIN_BUSY", 0.0)  # whatever this Paddle does
    monkeypatch.setattr(policy, "AUTO_WORKERS_SECONDS_PER_IMAGE", 1.0)  # whatever the load
    clf = PaddleXClassifier(trained.model, backend="inference")
    plan = clf.prepare(image, 20)  # measures the engine and the workers on 20 copies
    state = clf.runner.auto_state(shape)
    assert state.inference_per_image is not None
    assert plan.workers  # a fast model
    monkeypatch.setattr(policy, "AUTO_WORKERS_SECONDS_PER_IMAGE", state.inference_per_image / 2)
    assert clf.runner.plan(shape).workers == []  # 'auto': too slow a model
    assert len(clf.runner.plan(shape, parallel=2).workers) == 2  # asked for: any model
    seg = grid_of(image.shape, 4)
    masks = sample_masks(60, 16, np.random.default_rng(0))
    fill = make_fill(image, seg, "black")
    slow = PaddleXClassifier(trained.model, backend="inference")
    got = slow.predict_masks(image, fill, seg, masks, 20)
    assert "workers" not in slow.backend_info
    forced = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    np.testing.assert_array_equal(forced.predict_masks(image, fill, seg, masks, 20), got)
    assert forced.backend_info["workers"] == 2
