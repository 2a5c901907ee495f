"""paddlex_interpret.runtime.cache: one engine per layer, input shape and weights -- reused while
the weights are the same, rebuilt from the kept traced program when they change (bit for bit a
fresh trace), traced again when the network changes, released without losing the program.

Models whose weights are changed are fresh copies (helpers.fresh_model), never the shared one.
"""
import os

import numpy as np

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import fresh_model
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.runtime import cache, export, fingerprint, policy
from paddlex_interpret.runtime import engine as engine_mod


def test_engine_is_cached_and_re_exported_when_weights_change(trained, probe_images,
                                                               monkeypatch, tmp_path):
    import paddle

    model = fresh_model(trained, seed=1)
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


def test_a_changed_network_is_traced_again(trained, probe_images):
    """Sub-layers replaced after the first export: the traced program no longer fits, the layer
    is traced again and the results follow the new network -- whether the replaced sub-layer has
    tensors (other names) or none at all (same tensors, other computation)."""
    import paddle

    model = fresh_model(trained, seed=4)
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
    model = fresh_model(trained, seed=5)
    clf = PaddleXClassifier(model, backend="inference")
    p1 = clf(probe_images)
    assert cache.release_engines(model.net) == 1
    assert not [c for c in cache.cache_info() if c[3] == clf.backend_info["fingerprint"]]
    np.testing.assert_array_equal(clf(probe_images), p1)
    assert clf.backend_info["export"] == "params"  # rebuilt from the kept program
