"""LIME's batches on the inference engine's single-thread workers (``parallel='auto'``) against
the one predictor with all threads, and the three ways to compose the inputs.

The trained model is the session's ``trained_classifier`` (MobileNetV3_small, 64 px).
"""
import logging
import os

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.runtime import cache, engine, export, policy, scheduling
from paddlex_interpret.core import native, perturbation
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.perturbation import (compose_normalised, iter_batches, make_fill,
                                                 perturb, sample_masks)
from paddlex_interpret import LayerClassifier, PaddleXClassifier

multi_core = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="workers need 2+ cores")


@pytest.fixture(scope="module")
def trained(trained_classifier):
    return trained_classifier


@pytest.fixture(scope="module")
def image(trained):
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    return clf.view(trained.dataset.val_items()[0][0])


@pytest.fixture(autouse=True)
def workers_not_ruled_out(monkeypatch):
    """'auto' turns the workers off for a layer once they ran slower than the one predictor
    (Paddle 3.x, where predictor.run() holds the GIL), for the process; an earlier test on the
    shared model may have done so. Each test here starts without that (restored after it)."""
    for st in cache.ENGINES.states("auto"):
        monkeypatch.setattr(st, "workers_slow", None)


def _grid(shape, cells):
    h, w = shape[:2]
    ys = np.minimum(np.arange(h) * cells // h, cells - 1)
    xs = np.minimum(np.arange(w) * cells // w, cells - 1)
    return (ys[:, None] * cells + xs[None, :]).astype(np.int64)


@multi_core
def test_workers_give_the_one_predictor_probabilities_and_lime_weights(trained, image):
    # parallel=2: 'auto' could turn slow workers off in the LIME below (it does on Paddle 3.x)
    par = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    one = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    seg = _grid(image.shape, 6)
    masks = sample_masks(130, 36, np.random.default_rng(3))  # 50 + 50 + 30: two batch shapes
    fill = make_fill(image, seg, "mean")
    p_par = par.predict_masks(image, fill, seg, masks, 50)
    info = par.backend_info
    assert info["backend"] == "inference" and info["workers"] == 2, info
    assert sum(info["worker_threads"]) == info["threads"] == (os.cpu_count() or 1)
    p_one = one.predict_masks(image, fill, seg, masks, 50)
    assert "workers" not in one.backend_info
    np.testing.assert_allclose(p_par, p_one, atol=1e-5)
    # ... and the plain path: classifier on the perturbed uint8 images
    np.testing.assert_allclose(p_par, one(perturb(image, fill, seg, masks)), atol=1e-5)
    kwargs = dict(num_samples=200, batch_size=50, seed=0, segmenter="slic")
    a = LimeExplainer(par, **kwargs).explain(image)
    b = LimeExplainer(one, **kwargs).explain(image)
    np.testing.assert_array_equal(a.segments, b.segments)
    np.testing.assert_allclose(a.weights, b.weights, atol=1e-5)
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-5)
    assert par.backend_info.get("workers") == 2
    # the same run twice gives the same numbers (whichever worker takes which batch)
    np.testing.assert_array_equal(par.predict_masks(image, fill, seg, masks, 50), p_par)


@multi_core
def test_worker_inputs_are_shared_or_copied_with_the_same_outputs(trained, image):
    clf = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    x = clf.preprocess(np.stack([image] * 5))
    engine = clf.runner.engine(x.shape[1:])
    ref = engine(x)
    workers = engine.workers(2)
    assert engine.workers(2) is workers  # built once
    assert [w.num_threads for w in workers] == [1, 1] or (os.cpu_count() or 1) > 2
    for w in workers:
        for b in (5, 3, 5):  # re-sharing when the batch size changes
            buf = w.buffer(b)
            np.copyto(buf, x[:b])
            np.testing.assert_allclose(w.run(b), ref[:b], atol=1e-5)
        assert w.zero_copy in (True, False)
    with pytest.raises(export.ExportError):
        engine.workers((os.cpu_count() or 1) + 1)


@multi_core
@pytest.mark.parametrize("fail_at", [3, 6])  # a full batch; a half of the last round
def test_a_failing_worker_hands_over_to_the_one_predictor(trained, image, monkeypatch,
                                                           caplog, fail_at):
    clf = PaddleXClassifier(trained.model, backend="inference")
    seg = _grid(image.shape, 5)
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
    np.testing.assert_allclose(got, ref, atol=1e-5)
    assert "worker broke" in clf.runner.parallel_failure
    assert any("workers off" in r.getMessage() for r in caplog.records)
    assert clf.runner.workers((3,) + image.shape[:2]) is None  # not tried again


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


@pytest.mark.parametrize("method", ["kernel", "cv2", "numpy"])
@pytest.mark.parametrize("cells", [5, 17])  # 25 and 289 (> 256: no cv2.LUT) superpixels
@pytest.mark.parametrize("fill", ["black", "mean", "blur"])
def test_every_composition_is_bit_identical_to_normalising_the_perturbed_images(
        trained, image, cells, fill, method):
    """The compiled kernel, OpenCV and numpy compose the same bits as PaddleX's Normalize of
    :func:`perturb`'s uint8 images, with more than 32 images (the kernel's group of 32)."""
    if method == "kernel" and not native.available():
        pytest.skip("the compiled kernels are not built")
    if method == "cv2" and perturbation._cv2() is None:
        pytest.skip("no OpenCV")
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    seg = _grid(image.shape, cells)
    masks = sample_masks(37, cells * cells, np.random.default_rng(cells))
    fill_image = make_fill(image, seg, fill)
    expect = clf.preprocess(perturb(image, fill_image, seg, masks))
    img_n, fill_n = clf._normalised(image, fill_image)
    got = compose_normalised(img_n, fill_n, seg, masks, method=method)
    np.testing.assert_array_equal(got, expect)
    buf = np.full_like(expect, np.nan)
    assert compose_normalised(img_n, fill_n, seg, masks, out=buf, method=method) is buf
    np.testing.assert_array_equal(buf, expect)
    np.testing.assert_array_equal(clf.compose(image, fill_image, seg, masks), expect)
    # a label map that does not fit the masks is refused, whichever way
    for bad in (seg + 1, seg - 1):
        with pytest.raises(IndexError, match="outside"):
            compose_normalised(img_n, fill_n, bad, masks, method=method)
    with pytest.raises(ValueError, match="out must be"):
        compose_normalised(img_n, fill_n, seg, masks, out=buf[:, :2], method=method)


def test_the_one_cpu_predictor_runs_batches_in_parts_of_at_most_32(trained, image,
                                                                    monkeypatch):
    """LIME's batch of 50 runs as 25 + 25 on the one CPU predictor (Paddle 3.3 ran batches of
    40-50 up to 1.8x slower per image than 20-32), with the same numbers as whole batches."""
    seg = _grid(image.shape, 5)
    masks = sample_masks(150, 25, np.random.default_rng(2))
    fill = make_fill(image, seg, "black")
    clf = PaddleXClassifier(trained.model, backend="inference", parallel=False)
    sizes = []
    real_call = engine.InferenceEngine.__call__
    monkeypatch.setattr(engine.InferenceEngine, "__call__",
                        lambda self, x: sizes.append(len(x)) or real_call(self, x))
    got = clf.predict_masks(image, fill, seg, masks, 50)
    assert sizes[0] == 50 and sizes[1:] == [25] * 4  # the first, before the engine was chosen
    np.testing.assert_allclose(got, clf(perturb(image, fill, seg, masks)), atol=1e-5)
    cuts = scheduling.engine_slices(slice(10, 110), clf.runner.info)
    assert [(c.start, c.stop) for c in cuts] == [(10, 35), (35, 60), (60, 85), (85, 110)]
    monkeypatch.setattr(scheduling, "CPU_ENGINE_MAX_BATCH", 0)  # off
    assert scheduling.engine_slices(slice(0, 50), clf.runner.info) == [slice(0, 50)]


def test_the_last_round_of_batches_is_cut_in_halves():
    sizes = [[s.stop - s.start for s in scheduling.split_tail(list(iter_batches(n, b)), w)]
             for n, b, w in ((150, 50, 2), (95, 50, 2), (60, 50, 2), (150, 50, 1), (40, 50, 2))]
    assert sizes == [[50, 25, 25, 25, 25], [25, 25, 25, 20], [25, 25, 10], [50, 50, 50], [40]]
    cuts = scheduling.split_tail(list(iter_batches(1000, 50)), 2)
    assert [s.start for s in cuts] == sorted(s.start for s in cuts)
    assert cuts[0].start == 0 and cuts[-1].stop == 1000
    assert all(a.stop == b.start for a, b in zip(cuts, cuts[1:]))


@multi_core
def test_auto_turns_off_workers_slower_than_the_one_predictor(trained, image, monkeypatch,
                                                               caplog):
    """Once warm, how busy the workers' threads were is checked: 'auto' turns them off for the
    layer (the one predictor finishes, same numbers) when they took turns; ``parallel=2`` keeps
    them. Forced here by asking for more than 100% busy."""
    shape = (3,) + image.shape[:2]
    seg = _grid(image.shape, 5)
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
    seg = _grid(image.shape, 4)
    masks = sample_masks(60, 16, np.random.default_rng(0))
    fill = make_fill(image, seg, "black")
    slow = PaddleXClassifier(trained.model, backend="inference")
    got = slow.predict_masks(image, fill, seg, masks, 20)
    assert "workers" not in slow.backend_info
    forced = PaddleXClassifier(trained.model, backend="inference", parallel=2)
    np.testing.assert_allclose(forced.predict_masks(image, fill, seg, masks, 20), got, atol=1e-5)
    assert forced.backend_info["workers"] == 2
