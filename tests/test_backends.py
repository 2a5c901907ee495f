"""The Paddle Inference prediction backend (paddlex_interpret.runtime) against dygraph.

The trained model is the session's ``trained_classifier`` (MobileNetV3_small trained here on the
coloured-shapes data, 64 px). Models whose weights are changed are fresh copies, never the shared
one.
"""
import logging
import os

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from paddlex_interpret.runtime import cache, devices, export, fingerprint, modes, policy
from paddlex_interpret.runtime import engine as engine_mod
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.perturbation import make_fill, perturb, sample_masks
from paddlex_interpret import LayerClassifier, PaddleXClassifier


@pytest.fixture(scope="module")
def trained(trained_classifier):
    return trained_classifier


@pytest.fixture(scope="module")
def probe_images(trained):
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    items = trained.dataset.val_items()
    return np.stack([clf.view(path) for path, _, _ in items[::max(1, len(items) // 6)][:6]])


def _fresh_model(trained, num_classes=3, seed=0):
    """An untrained MobileNetV3_small with the trained model's test transforms."""
    import paddle
    import paddlex as pdx

    paddle.seed(seed)
    model = pdx.cls.MobileNetV3_small(num_classes=num_classes)
    model.test_transforms = trained.model.test_transforms
    model.labels = list(trained.dataset.labels)
    return model


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


def test_export_leaves_the_model_untouched(trained, probe_images):
    model = _fresh_model(trained)
    net = model.net
    net.train()
    forward = net.forward
    before = PaddleXClassifier(model, backend="dygraph")(probe_images)
    PaddleXClassifier(model, backend="inference")(probe_images)
    assert net.training and net.forward == forward  # still train mode, no to_static left on it
    assert all(sub.training for sub in net.sublayers())
    np.testing.assert_array_equal(PaddleXClassifier(model, backend="dygraph")(probe_images), before)


def test_engine_is_cached_and_re_exported_when_weights_change(trained, probe_images,
                                                               monkeypatch, tmp_path):
    import paddle

    model = _fresh_model(trained, seed=1)
    clf = PaddleXClassifier(model, backend="inference")
    p1 = clf(probe_images)
    shape = (3,) + probe_images.shape[1:3]
    engine = clf.runner.engine(shape)
    fp1 = clf.backend_info["fingerprint"]
    clf(probe_images)
    assert clf.runner.engine(shape) is engine  # same weights: the cached predictor

    # Train one SGD step: weights (and BatchNorm statistics) change in place.
    net = model.net
    net.train()
    opt = paddle.optimizer.SGD(learning_rate=0.5, parameters=net.parameters())
    x = paddle.to_tensor(clf.preprocess(probe_images))
    loss = paddle.nn.functional.cross_entropy(net(x), paddle.to_tensor(np.arange(len(x)) % 3))
    loss.backward()
    opt.step()
    net.eval()

    p2 = clf(probe_images)
    assert clf.backend_info["fingerprint"] != fp1
    refreshed = clf.runner.engine(shape)
    assert refreshed is not engine  # a new predictor for the new weights...
    assert engine.export_kind == "traced" and refreshed.export_kind == "params"  # ...not traced
    assert clf.backend_info["export"] == "params"
    assert not np.allclose(p1, p2, atol=1e-4)
    np.testing.assert_allclose(p2, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)
    # The refreshed predictor is exactly a fully re-traced one: same outputs bit for bit, and the
    # params file written for it is byte for byte the one paddle.jit.save writes now.
    full = engine_mod.InferenceEngine(net, shape)
    assert full.export_kind == "traced"
    batch = clf.preprocess(probe_images)
    np.testing.assert_array_equal(refreshed(batch), full(batch))
    jit_files = export.export_layer(net, shape, str(tmp_path / "jit" / "model"))
    (tmp_path / "ours").mkdir()
    ours = refreshed.program.write(net, str(tmp_path / "ours" / "model"))
    # (the program files differ: each trace numbers its temporary variables anew)
    assert os.path.splitext(jit_files[0])[1] == os.path.splitext(ours[0])[1]
    with open(jit_files[1], "rb") as fa, open(ours[1], "rb") as fb:
        assert fa.read() == fb.read()

    # Loading other weights with set_state_dict is seen too.
    state = {k: v * 0.5 if v.dtype == paddle.float32 and "weight" in k else v
             for k, v in net.state_dict().items()}
    net.set_state_dict(state)
    p3 = clf(probe_images)
    np.testing.assert_allclose(p3, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)
    assert clf.backend_info["export"] == "params"
    np.testing.assert_array_equal(
        clf.runner.engine(shape)(batch), engine_mod.InferenceEngine(net, shape)(batch))

    # Inside hold_weights the fingerprint is computed once, not at every call.
    calls = []
    real = fingerprint.parameter_fingerprint
    monkeypatch.setattr(policy, "parameter_fingerprint",
                        lambda layer: calls.append(1) or real(layer))
    with clf.hold_weights():
        for _ in range(3):
            clf(probe_images)
    assert len(calls) == 1
    clf(probe_images)
    assert len(calls) == 2  # outside a hold: verified on every call


def test_forced_fallback_when_export_fails(trained, probe_images, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise export.ExportError("simulated export failure")

    model = _fresh_model(trained, seed=2)
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
    model = _fresh_model(trained, seed=3)
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


def test_fused_perturbation_path_is_bit_identical(trained, probe_images):
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    image = probe_images[0]
    seg = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 16, 0), 16, 1)
    masks = sample_masks(37, 16, np.random.default_rng(0))
    for fill in ("black", "mean", "blur"):
        fill_image = make_fill(image, seg, fill)
        np.testing.assert_array_equal(
            clf.compose(image, fill_image, seg, masks),
            clf.preprocess(perturb(image, fill_image, seg, masks)))
    # LIME through predict_masks (fused, overlapped) == LIME through plain calls.
    fast = LimeExplainer(clf, num_samples=120, batch_size=25, seed=0, segmenter="slic")
    slow = LimeExplainer(lambda imgs: clf(imgs), num_samples=120, batch_size=25, seed=0,
                         segmenter="slic")
    a, b = fast.explain(image), slow.explain(image)
    np.testing.assert_array_equal(a.weights, b.weights)
    masks = sample_masks(130, int(a.segments.max()) + 1, np.random.default_rng(1))
    fill_image = make_fill(image, a.segments, "black")
    np.testing.assert_array_equal(
        clf.predict_masks(image, fill_image, a.segments, masks, 50, overlap=True),
        clf.predict_masks(image, fill_image, a.segments, masks, 50, overlap=False))


def test_lime_through_inference_matches_dygraph(trained, probe_images):
    image = probe_images[1]
    kwargs = dict(num_samples=200, batch_size=50, seed=0, segmenter="slic")
    d = LimeExplainer(PaddleXClassifier(trained.model, backend="dygraph"), **kwargs).explain(image)
    i = LimeExplainer(PaddleXClassifier(trained.model, backend="inference"), **kwargs).explain(
        image)
    np.testing.assert_array_equal(d.segments, i.segments)
    np.testing.assert_allclose(i.weights, d.weights, atol=1e-4)
    assert d.top_segments(d.labels[0], 3).tolist() == i.top_segments(i.labels[0], 3).tolist()


def test_paddlex_api_backend_passthrough(trained, tmp_path):
    import paddlex as pdx

    path = trained.dataset.val_items()[0][0]
    exp = pdx.interpret.lime(path, trained.model, num_samples=60, batch_size="auto",
                             save_dir=str(tmp_path), save_png=False, backend="dygraph",
                             segmenter="slic")
    assert exp.settings["backend"] == "dygraph"
    suggested = devices.suggest_batch_size(exp.image.shape)
    assert suggested // 2 <= exp.settings["batch_size"] <= suggested
    assert 60 % exp.settings["batch_size"] == 0  # divides num_samples: one batch shape
    with pytest.raises(ValueError, match="backend"):
        PaddleXClassifier(trained.model, backend="tensorrt")


def test_batch_size_rule():
    small = devices.suggest_batch_size((64, 64, 3), device="cpu")
    big = devices.suggest_batch_size((224, 224, 3), device="cpu")
    assert small == 64 and 1 <= big <= 64
    assert devices.suggest_batch_size((4096, 4096, 3), device="cpu") >= 1
    per_image = 224 * 224 * 3 * (1 + 4 * (1 + devices.ACTIVATION_FACTOR))
    budget = min(devices.MEMORY_FRACTION * devices.available_memory("cpu"),
                 devices.MAX_BATCH_BYTES)
    assert big == max(1, min(64, int(budget // per_image)))


def test_program_file_layouts(tmp_path):
    prefix = str(tmp_path / "model")
    with pytest.raises(export.ExportError):
        export.inference_files(prefix)
    open(prefix + ".json", "w").close()  # Paddle 3.x (PIR) program
    assert export.inference_files(prefix) == (prefix + ".json", prefix + ".pdiparams")
    open(prefix + ".pdmodel", "w").close()  # Paddle 2.x program
    assert export.inference_files(prefix)[0] == prefix + ".pdmodel"


def test_dygraph_threads_can_be_raised_at_run_time():
    from paddle.base import core

    assert hasattr(core, "set_num_threads")  # Paddle 2.6 and 3.x
    before = modes.current_threads()
    with modes.dygraph_threads(2):
        assert modes.current_threads() == 2
    assert modes.current_threads() == before


def test_a_changed_network_is_traced_again(trained, probe_images):
    """Sub-layers replaced after the first export: the traced program no longer fits, the layer
    is traced again and the results follow the new network -- whether the replaced sub-layer has
    tensors (other names) or none at all (same tensors, other computation)."""
    import paddle

    model = _fresh_model(trained, seed=4)
    clf = PaddleXClassifier(model, backend="inference")
    clf(probe_images)
    net = model.net
    net.hardswish = paddle.nn.ReLU()  # no tensors: only the structure tells
    probs = clf(probe_images)  # same weights, but the engine must not be the old one
    assert clf.backend_info["export"] == "traced"
    np.testing.assert_allclose(probs, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)
    old = net.fc
    net.fc = paddle.nn.Linear(old.weight.shape[0], old.weight.shape[1])  # new tensor names
    probs = clf(probe_images)
    assert clf.backend_info["export"] == "traced"
    np.testing.assert_allclose(probs, PaddleXClassifier(model, backend="dygraph")(probe_images),
                               atol=1e-4)


def test_release_engines_keeps_the_traced_program(trained, probe_images):
    model = _fresh_model(trained, seed=5)
    clf = PaddleXClassifier(model, backend="inference")
    p1 = clf(probe_images)
    assert cache.release_engines(model.net) == 1
    assert not [c for c in cache.cache_info() if c[3] == clf.backend_info["fingerprint"]]
    np.testing.assert_array_equal(clf(probe_images), p1)
    assert clf.backend_info["export"] == "params"  # rebuilt from the kept program


def test_fingerprint_reads_the_weights_in_place_and_sees_any_change():
    """The fingerprint reads CPU tensors in place (ctypes views of ``data_ptr()``): it must hash
    the same bytes as numpy copies of the ``state_dict`` would, and change when one value of a
    parameter or of a persistable buffer changes."""
    import zlib

    import paddle

    paddle.seed(3)
    net = paddle.nn.Sequential(paddle.nn.Linear(4, 3), paddle.nn.BatchNorm1D(3))

    def from_copies(layer):
        crc, adler = 0, 1
        for name, tensor in layer.state_dict().items():
            arr = np.ascontiguousarray(tensor.numpy())
            head = ("%s|%s|%s;" % (name, arr.shape, arr.dtype)).encode()
            data = memoryview(arr).cast("B")
            crc = zlib.crc32(data, zlib.crc32(head, crc))
            adler = zlib.adler32(data, zlib.adler32(head, adler))
        return "%08x%08x" % (crc & 0xFFFFFFFF, adler & 0xFFFFFFFF)

    before = fingerprint.parameter_fingerprint(net)
    assert before == from_copies(net)
    seen = {before}
    for tensor in (net[0].weight, net[1]._mean):  # a parameter, a persistable buffer
        value = tensor.numpy()
        value.flat[1] += 1e-6
        tensor.set_value(value)
        fp = fingerprint.parameter_fingerprint(net)
        assert fp == from_copies(net) and fp not in seen
        seen.add(fp)
