"""paddlex_interpret.runtime.policy (ModelRunner): the forced backends and their fallback to
dygraph, the ``'auto'`` rule (cheap models stay in dygraph, expensive ones are measured), when the
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
from paddlex_interpret.core.perturbation import make_fill, sample_masks
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


def test_auto_keeps_a_cheap_model_in_dygraph_and_measures_an_expensive_one(trained,
                                                                          probe_images,
                                                                          monkeypatch):
    import paddle

    tiny = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.AdaptiveAvgPool2D(1),
                                paddle.nn.Flatten(), paddle.nn.Linear(4, 2))
    clf = LayerClassifier(tiny)  # backend='auto'
    clf(np.zeros((8, 16, 16, 3), np.uint8))
    assert clf.backend_info["backend"] == "dygraph"
    assert clf.backend_info["reason"].startswith("cheap in dygraph")
    assert not [c for c in cache.cache_info() if c[0] == "Sequential"]  # nothing exported

    # Make every call "expensive": auto exports, warms up, times, and keeps the faster backend.
    monkeypatch.setattr(policy, "AUTO_EXPORT_SECONDS", 0.0)
    model = fresh_model(trained, seed=3)
    auto = PaddleXClassifier(model)
    for _ in range(3):
        probs = auto(probe_images)
    state = auto.runner.auto_state((3,) + probe_images.shape[1:3])
    assert state.decision in ("inference", "dygraph")
    assert state.reason.startswith("auto: inference")
    faster = "inference" if state.inference_per_image <= state.dygraph_per_image else "dygraph"
    assert state.decision == faster
    assert auto.backend_info["backend"] == state.decision
    np.testing.assert_allclose(probs, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)


@pytest.mark.usefixtures("workers_not_ruled_out")
def test_no_workers_in_dygraph_off_or_before_auto_decides(trained, image):
    shape = (3,) + image.shape[:2]
    assert PaddleXClassifier(trained.model, backend="dygraph").runner.workers(shape) is None
    off = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    assert off.runner.workers(shape) is None
    assert off.runner.workers(shape, parallel=0) is None
    fresh = PaddleXClassifier(trained.model)  # 'auto', nothing measured yet in this runner
    state = fresh.runner.auto_state(shape)
    if state.decision != "inference":
        assert fresh.runner.workers(shape) is None
    one_thread = PaddleXClassifier(trained.model, backend="inference", num_threads=1)
    assert one_thread.runner.workers(shape) is None


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
def test_auto_turns_off_workers_slower_than_the_one_predictor(trained, image, monkeypatch,
                                                               caplog):
    """Once warm, how busy the workers' threads were is checked: 'auto' turns them off for the
    layer (the one predictor finishes, same numbers) when they took turns; ``parallel=2`` keeps
    them. Forced here by asking for more than 100% busy."""
    shape = (3,) + image.shape[:2]
    seg = grid_of(image.shape, 5)
    masks = sample_masks(400, 25, np.random.default_rng(4))
    fill = make_fill(image, seg, "black")
    ref = PaddleXClassifier(trained.model, backend="inference", parallel=False).predict_masks(
        image, fill, seg, masks, 20)
    monkeypatch.setattr(policy, "AUTO_WORKERS_MIN_BUSY", 1.5)
    forced = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    np.testing.assert_allclose(forced.predict_masks(image, fill, seg, masks, 20), ref, atol=1e-5)
    assert forced.backend_info.get("workers") == 2
    auto = PaddleXClassifier(trained.model, backend="inference")
    runs = []
    real_run = engine.EngineWorker.run
    monkeypatch.setattr(engine.EngineWorker, "run",
                        lambda self, b: runs.append(b) or real_run(self, b))
    with caplog.at_level(logging.INFO, logger="paddlex_interpret"):
        got = auto.predict_masks(image, fill, seg, masks, 20)
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert 6 <= len(runs) < 20  # warm-up + 2 timed batches per worker, then the one predictor
    monkeypatch.setattr(policy, "AUTO_WORKERS_MIN_BUSY", 0.0)
    assert not auto.runner.workers_busy(shape, 0.5)  # busy enough: kept
    assert "workers" not in auto.backend_info and "busy" in auto.backend_info["workers_off"]
    assert any("workers off" in r.getMessage() for r in caplog.records)
    assert auto.runner.workers(shape) is None
    assert PaddleXClassifier(trained.model, backend="inference").runner.workers(shape) is None
    assert auto.runner.workers(shape, parallel=2) is not None  # asked for: any rate


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
def test_auto_keeps_slow_models_on_the_one_predictor(trained, image, monkeypatch):
    shape = (3,) + image.shape[:2]
    clf = PaddleXClassifier(trained.model, backend="inference")
    clf(np.stack([image] * 4))  # the engine has run a batch: its time per image is known
    engine = clf.runner.engine(shape)
    assert engine.seconds_per_image is not None
    assert clf.runner.workers(shape) is not None  # a 64 px MobileNetV3_small is fast
    monkeypatch.setattr(policy, "AUTO_WORKERS_SECONDS_PER_IMAGE",
                        engine.seconds_per_image / 2)
    assert clf.runner.workers(shape) is None  # 'auto': too slow a model
    assert len(clf.runner.workers(shape, parallel=2)) == 2  # asked for: any model
    seg = grid_of(image.shape, 4)
    masks = sample_masks(60, 16, np.random.default_rng(0))
    fill = make_fill(image, seg, "black")
    slow = PaddleXClassifier(trained.model, backend="inference")
    got = slow.predict_masks(image, fill, seg, masks, 20)
    assert "workers" not in slow.backend_info
    forced = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    np.testing.assert_allclose(forced.predict_masks(image, fill, seg, masks, 20), got, atol=1e-5)
    assert forced.backend_info["workers"] == 2
