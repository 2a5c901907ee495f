"""paddlex_interpret.runtime.scheduling: LIME's batches on the inference engine's single-thread
workers give the one predictor's numbers, a failing worker hands over to it, the one CPU predictor
takes batches in parts of at most 32, and the last round of batches is cut in halves.

The trained model is the session's ``trained_classifier`` (MobileNetV3_small, 64 px).
"""
import logging
import os

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import grid_of, multi_core
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import iter_batches, perturb, sample_masks
from paddlex_interpret.runtime import engine, policy, scheduling


@pytest.fixture(scope="module")
def image(trained):
    """The first val image of the session's trained classifier, as the model sees it."""
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    return clf.view(trained.dataset.val_items()[0][0])


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
def test_workers_give_the_one_predictor_probabilities_and_lime_weights(trained, image):
    # parallel=2: 'auto' could turn slow workers off in the LIME below (it does on Paddle 3.x)
    par = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    one = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    seg = grid_of(image.shape, 6)
    masks = sample_masks(130, 36, np.random.default_rng(3))  # 50 + 50 + 30: two batch shapes
    fill = make_fill(image, seg, "mean")
    p_par = par.predict_masks(image, fill, seg, masks, 50)
    info = par.backend_info
    assert info["backend"] == "inference" and info["workers"] == 2, info
    assert sum(info["worker_threads"]) == info["threads"] == (os.cpu_count() or 1)
    p_one = one.predict_masks(image, fill, seg, masks, 50)
    assert "workers" not in one.backend_info
    np.testing.assert_array_equal(p_par, p_one)  # the engine's outputs do not depend on the path
    # ... and the plain path: classifier on the perturbed uint8 images
    np.testing.assert_allclose(p_par, one(perturb(image, fill, seg, masks)), atol=1e-5)
    kwargs = dict(num_samples=200, batch_size=50, seed=0, segmenter="slic")
    a = LimeExplainer(par, **kwargs).explain(image)
    b = LimeExplainer(one, **kwargs).explain(image)
    np.testing.assert_array_equal(a.segments, b.segments)
    np.testing.assert_array_equal(a.weights, b.weights)  # the engine's bits: any predictor
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    assert par.backend_info.get("workers") == 2
    # the same run twice gives the same numbers (whichever worker takes which batch)
    np.testing.assert_array_equal(par.predict_masks(image, fill, seg, masks, 50), p_par)


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
@pytest.mark.parametrize("fail_at", [3, 6])  # a full batch; a half of the last round
def test_a_failing_worker_hands_over_to_the_one_predictor(trained, image, monkeypatch,
                                                           caplog, fail_at):
    clf = PaddleXClassifier(trained.model, backend="inference", parallel=2)  # no probe first
    seg = grid_of(image.shape, 5)
    masks = sample_masks(120, 25, np.random.default_rng(0))
    fill = make_fill(image, seg, "black")
    ref = PaddleXClassifier(trained.model, backend="inference", parallel=False).predict_masks(
        image, fill, seg, masks, 20)

    calls = {"n": 0}
    real_run = engine.EngineWorker.run

    def flaky(self, batch):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise RuntimeError("worker broke")
        return real_run(self, batch)

    monkeypatch.setattr(engine.EngineWorker, "run", flaky)
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        got = clf.predict_masks(image, fill, seg, masks, 20)
    np.testing.assert_array_equal(got, ref)
    assert "worker broke" in clf.runner.parallel_failure
    assert any("workers off" in r.getMessage() for r in caplog.records)
    assert clf.runner.plan((3,) + image.shape[:2]).workers == []  # not tried again


@pytest.mark.usefixtures("workers_not_ruled_out")
@multi_core
def test_a_worker_failing_on_the_probe_leaves_the_work_to_the_one_predictor(trained, image,
                                                                            monkeypatch):
    seg = grid_of(image.shape, 5)
    masks = sample_masks(120, 25, np.random.default_rng(0))
    fill = make_fill(image, seg, "black")
    ref = PaddleXClassifier(trained.model, backend="inference", parallel=False).predict_masks(
        image, fill, seg, masks, 20)

    def broken(self, batch):
        raise RuntimeError("worker broke on the probe")

    monkeypatch.setattr(engine.EngineWorker, "run", broken)
    monkeypatch.setattr(policy, "AUTO_WORKERS_SECONDS_PER_IMAGE", 1.0)  # whatever the load
    clf = PaddleXClassifier(trained.model, backend="inference")
    np.testing.assert_array_equal(clf.predict_masks(image, fill, seg, masks, 20), ref)
    assert "on the probe" in clf.runner.parallel_failure


@pytest.mark.usefixtures("workers_not_ruled_out")
def test_the_one_cpu_predictor_runs_batches_in_parts_of_at_most_32(trained, image,
                                                                    monkeypatch):
    """LIME's batch of 50 runs as 25 + 25 on the one CPU predictor (Paddle 3.3 ran batches of
    40-50 up to 1.8x slower per image than 20-32), with the same numbers as whole batches."""
    seg = grid_of(image.shape, 5)
    masks = sample_masks(150, 25, np.random.default_rng(2))
    fill = make_fill(image, seg, "black")
    clf = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    sizes = []
    real_call = engine.InferenceEngine.__call__
    monkeypatch.setattr(engine.InferenceEngine, "__call__",
                        lambda self, x: sizes.append(len(x)) or real_call(self, x))
    got = clf.predict_masks(image, fill, seg, masks, 50)
    assert sizes == [25] * 6  # the path is fixed before the first batch
    np.testing.assert_array_equal(got, clf(perturb(image, fill, seg, masks)))
    plan = clf.runner.last_plan
    cuts = scheduling.engine_slices(slice(10, 110), plan)
    assert [(c.start, c.stop) for c in cuts] == [(10, 35), (35, 60), (60, 85), (85, 110)]
    monkeypatch.setattr(scheduling, "CPU_ENGINE_MAX_BATCH", 0)  # off
    assert scheduling.engine_slices(slice(0, 50), plan) == [slice(0, 50)]


@pytest.mark.usefixtures("workers_not_ruled_out")
def test_the_last_round_of_batches_is_cut_in_halves():
    sizes = [[s.stop - s.start for s in scheduling.split_tail(list(iter_batches(n, b)), w)]
             for n, b, w in ((150, 50, 2), (95, 50, 2), (60, 50, 2), (150, 50, 1), (40, 50, 2))]
    assert sizes == [[50, 25, 25, 25, 25], [25, 25, 25, 20], [25, 25, 10], [50, 50, 50], [40]]
    cuts = scheduling.split_tail(list(iter_batches(1000, 50)), 2)
    assert [s.start for s in cuts] == sorted(s.start for s in cuts)
    assert cuts[0].start == 0 and cuts[-1].stop == 1000
    assert all(a.stop == b.start for a, b in zip(cuts, cuts[1:]))
