"""ExplainHook (paddlex_interpret.training.hook) on real PaddleX 2.1 training.

A tiny MobileNetV3_small is trained for 2 epochs on 32 px coloured shapes, once with the hook
(the session fixture ``hooked``, conftest.py; its worker process explains the checkpoints) and
once without (same seeds). The logs are read back with VisualDL's own LogReader and served by a
real VisualDL server.
"""
import io
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import (EPOCHS, FAST, probe_images, read_run, state_arrays, steps,
                     train_tiny)
from paddlex_interpret.core.classifier import Classifier
from paddlex_interpret.core.normlime import GlobalWeights
from paddlex_interpret.hooks import ExplainHook
from paddlex_interpret.training.report import CheckpointContext
from paddlex_interpret.training.session import ExplainSession

VENV_BIN = os.path.dirname(sys.executable)


# ------------------------------------------------------------------------------ training + hook
def test_one_image_per_probe_and_method_per_checkpoint(hooked):
    reader = read_run(os.path.join(hooked["save_dir"], "vdl_log", "explain"))
    tags = reader.get_tags()
    expected = {"explain/probe_%d/%s" % (i, m) for i in range(2) for m in ("lime", "normlime")}
    assert probe_images(reader) == expected
    from PIL import Image

    for tag in expected:
        records = reader.get_data("image", tag)
        assert [int(r.id) for r in records] == list(range(1, EPOCHS + 1))
        img = np.asarray(Image.open(io.BytesIO(records[-1].image.encoded_image_string)))
        assert img.ndim == 3 and img.shape[0] > 150 and img.shape[1] > 400
        assert img.std() > 0  # a picture, not a blank


def test_scalars_and_texts_per_checkpoint(hooked, tiny_shapes):
    reader = read_run(os.path.join(hooked["save_dir"], "vdl_log", "explain"))
    scalars = set(reader.get_tags()["scalar"])
    per_epoch = list(range(1, EPOCHS + 1))
    for i in range(2):
        for name in ("deletion_auc", "insertion_auc", "stability_jaccard", "stability_spearman",
                     "probability", "normlime_deletion_auc"):
            tag = "explain/probe_%d/%s" % (i, name)
            assert tag in scalars
            assert steps(reader, "scalar", tag) == per_epoch
            values = [r.value for r in reader.get_data("scalar", tag)]
            assert all(0.0 <= v <= 1.0 + 1e-6 or "spearman" in tag for v in values), (tag, values)
    for tag in ("explain/mean_deletion_auc", "explain/seconds", "explain/seconds_normlime"):
        assert steps(reader, "scalar", tag) == per_epoch
    # drift needs a previous checkpoint
    assert steps(reader, "scalar", "normlime/drift") == per_epoch[1:]
    assert [r.value for r in reader.get_data("scalar", "explain/num_errors")] == [0.0] * EPOCHS
    for name in tiny_shapes.labels:  # one card per class
        texts = reader.get_data("text", "normlime/top_concepts/%s" % name)
        assert [int(t.id) for t in texts] == per_epoch
        body = texts[-1].text.encoded_text_string
        assert body.startswith(name) and "colour #" in body and "of images" in body
    assert "explain/errors" not in reader.get_tags().get("text", [])
    # the same numbers are in the Python-side history
    assert [r.epoch for r in hooked["hook"].history] == per_epoch
    assert all(not r.errors for r in hooked["hook"].history)


def test_normlime_weights_in_every_checkpoint_dir(hooked, tiny_shapes):
    import paddlex as pdx

    fingerprints = []
    for epoch in range(1, EPOCHS + 1):
        ckpt = os.path.join(hooked["save_dir"], "epoch_%d" % epoch)
        path = ExplainHook.weights_file(ckpt)
        assert os.path.isfile(path)
        gw = GlobalWeights.load(path)
        assert gw.weights.shape[0] == len(tiny_shapes.labels)
        assert gw.class_names == tiny_shapes.labels
        assert gw.codebook is not None and np.all(np.isfinite(gw.weights))
        fingerprints.append(gw.codebook.fingerprint())
        # the checkpoint itself is complete and still loads
        assert os.path.isfile(os.path.join(ckpt, ".success"))
        assert pdx.load_model(ckpt).labels == tiny_shapes.labels
        assert not [f for f in os.listdir(ckpt) if f.startswith(".tmp")]
    assert len(set(fingerprints)) == 1  # one codebook per run: weights are comparable
    assert hooked["hook"].history[-1].weights_file == ExplainHook.weights_file(
        os.path.join(hooked["save_dir"], "epoch_%d" % EPOCHS))
    # best_model is PaddleX's copy: left alone
    assert not os.path.exists(ExplainHook.weights_file(
        os.path.join(hooked["save_dir"], "best_model")))


def test_paddlex_curves_are_still_there(hooked):
    vdl = os.path.join(hooked["save_dir"], "vdl_log")
    reader = read_run(vdl)
    scalars = reader.get_tags()["scalar"]
    assert steps(reader, "scalar", "-Metrics/Eval(Epoch): acc1") == list(range(1, EPOCHS + 1))
    assert "-Metrics/Training(Step): loss" in scalars
    assert not [t for t in scalars if t.startswith("explain/")]  # ours are in their own run
    from visualdl import LogReader

    runs = {os.path.relpath(r, vdl) for r in LogReader(logdir=vdl).runs()}
    assert runs == {".", "explain"}  # one `visualdl --logdir vdl_log` shows both


#: two trainings with the same seeds, without and with the hook, in a process of their own: the
#: suite's earlier in-process work (predictors, threads) must not stand between the two
IDENTICAL_RUNS = """
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import paddlex_interpret
from helpers import FAST, state_arrays, train_tiny
from paddlex_interpret.hooks import ExplainHook
from pxi_testing.synthetic import make_shapes_dataset
out = sys.argv[2]
ds = make_shapes_dataset(os.path.join(out, "data"), num_train_per_class=12, num_val_per_class=5,
                         image_size=32)
probe = ds.val_items()[0][0]
plain = train_tiny(ds, os.path.join(out, "plain"))
hooked = train_tiny(ds, os.path.join(out, "hooked"), hook=ExplainHook([probe], **FAST))
np.savez(os.path.join(out, "plain.npz"), **state_arrays(plain))
np.savez(os.path.join(out, "hooked.npz"), **state_arrays(hooked))
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump([plain.eval_metrics, hooked.eval_metrics], f, default=float)
"""


def test_training_is_identical_to_a_run_without_the_hook(tmp_path):
    from paddlex_interpret.compat import quiet_import_noise

    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", IDENTICAL_RUNS, tests, str(tmp_path)],
                          capture_output=True, text=True, timeout=900,
                          env=quiet_import_noise(dict(os.environ)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = np.load(tmp_path / "hooked.npz"), np.load(tmp_path / "plain.npz")
    assert set(a.files) == set(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    with open(tmp_path / "metrics.json") as f:
        plain_metrics, hooked_metrics = json.load(f)
    assert hooked_metrics == plain_metrics
    for epoch in range(1, EPOCHS + 1):  # the same checkpoints, plus our weights file
        ours = set(os.listdir(tmp_path / "hooked" / ("epoch_%d" % epoch)))
        theirs = set(os.listdir(tmp_path / "plain" / ("epoch_%d" % epoch)))
        assert ours - theirs == {"normlime_weights.npz"} and theirs <= ours


def test_detach_restores_the_model(hooked):
    model = hooked["model"]
    assert hooked["hook"].model is None  # the with-block detached it
    assert "train" not in vars(model) and "save_model" not in vars(model)
    assert model.train.__func__ is type(model).train
    assert model.save_model.__func__ is type(model).save_model
    hook = ExplainHook(["unused.png"])
    hook.attach(model)
    assert getattr(model.train, "_explain_hook") is hook and "train" in vars(model)
    with pytest.raises(RuntimeError, match="already"):
        ExplainHook(["unused.png"]).attach(model)
    assert hook.detach() is model
    assert "train" not in vars(model) and "save_model" not in vars(model)


def test_probes_are_seen_through_the_test_transforms(hooked, probes):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    report = hooked["hook"].history[-1]
    exp = report.explanations["probe_1"]  # a 48 px array; the eval transforms resize to 32
    assert exp.image.shape == (32, 32, 3)
    np.testing.assert_array_equal(exp.image, PaddleXClassifier(hooked["model"]).view(probes[0][1]))
    assert report.explanations["probe_0"].labels.tolist() == [probes[1][0]]  # the true label
    assert "normlime" in exp.extra and "combined" in exp.extra
    np.testing.assert_allclose(exp.extra["combined"], exp.weights * exp.extra["normlime"])


def test_hook_leaves_mode_rng_and_gradients_alone(hooked, probes):
    import paddle
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    model = hooked["model"]
    net = model.net
    net.train()
    frozen = [l for l in net.sublayers() if "BatchNorm" in type(l).__name__][0]
    frozen.eval()  # a user's frozen BN must stay frozen
    modes = [l.training for l in net.sublayers(include_self=True)]
    params = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    grads = [None if p.grad is None else p.grad.numpy().copy() for p in net.parameters()]
    np_state, py_state, pd_state = np.random.get_state(), random.getstate(), paddle.get_rng_state()
    inner = PaddleXClassifier(model)

    class RngHungry(Classifier):
        """Draws from all three global generators on every call, as user code might."""
        label_names = inner.label_names
        view = staticmethod(inner.view)

        def __call__(self, images):
            np.random.rand(), random.random(), paddle.rand([1])
            return inner(images)

    session = ExplainSession(probes[0][:1], stability="reseed", **FAST)
    report = session.explain_checkpoint(CheckpointContext(
        epoch=1, classifier=RngHungry(), layer=net))
    assert not report.errors and report.explanations
    assert [l.training for l in net.sublayers(include_self=True)] == modes
    for before, p in zip(grads, net.parameters()):  # gradients untouched
        assert (p.grad is None) == (before is None)
        if before is not None:
            np.testing.assert_array_equal(p.grad.numpy(), before)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), params[k])  # BN statistics untouched
    draws = (np.random.rand(3), random.random(), paddle.rand([3]).numpy())
    np.random.set_state(np_state)
    random.setstate(py_state)
    paddle.set_rng_state(pd_state)
    expected = (np.random.rand(3), random.random(), paddle.rand([3]).numpy())
    np.testing.assert_array_equal(draws[0], expected[0])
    assert draws[1] == expected[1]
    np.testing.assert_array_equal(draws[2], expected[2])
    net.eval()


def test_failures_inside_the_hook_never_stop_training(hooked, tiny_shapes, probes, tmp_path,
                                                      caplog):
    """Fine-tune a ``paddlex.load_model`` model with a probe that raises and a NormLIME builder
    that raises: training finishes, the checkpoint is intact, the errors are logged (Python
    logging and VisualDL text) and the good probe is still explained."""
    import paddlex as pdx

    def broken_builder(context):
        raise RuntimeError("forced NormLIME failure")

    model = pdx.load_model(os.path.join(hooked["save_dir"], "epoch_%d" % EPOCHS))
    hook = ExplainHook([str(tmp_path / "missing.png"), probes[0][0]],
                       weights_builder=broken_builder, **FAST)
    save_dir = tmp_path / "finetune"
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        train_tiny(tiny_shapes, save_dir, hook=hook, model=model, epochs=1)
    ckpt = save_dir / "epoch_1"
    assert (ckpt / ".success").exists() and (ckpt / "model.pdparams").exists()
    assert not (ckpt / "normlime_weights.npz").exists()
    logged = caplog.text
    assert "forced NormLIME failure" in logged and "Traceback" in logged
    assert "missing.png" in logged
    reader = read_run(str(save_dir / "vdl_log" / "explain"))
    errors = reader.get_data("text", "explain/errors")
    assert [int(e.id) for e in errors] == [1]
    text = errors[0].text.encoded_text_string
    assert "forced NormLIME failure" in text and "FileNotFoundError" in text
    assert [r.value for r in reader.get_data("scalar", "explain/num_errors")] == [2.0]
    assert probe_images(reader) == {"explain/probe_1/lime"}


def test_an_unexpected_crash_is_contained(tiny_shapes, probes, tmp_path, monkeypatch, caplog):
    def crash(self, context):
        raise RuntimeError("forced crash")

    monkeypatch.setattr(ExplainSession, "explain_checkpoint", crash)
    hook = ExplainHook(probes[0][:1], background=False, **FAST)  # the patch is in this process
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        model = train_tiny(tiny_shapes, tmp_path / "out", hook=hook, epochs=1)
    assert model.completed_epochs == 1
    assert (tmp_path / "out" / "epoch_1" / ".success").exists()
    assert "forced crash" in caplog.text
    reader = read_run(str(tmp_path / "out" / "vdl_log" / "explain"))
    assert "forced crash" in reader.get_data("text", "explain/errors")[0].text.encoded_text_string


def test_checkpoints_are_explained_in_a_worker_process(hooked):
    """By default the hook explains each checkpoint in a worker process, from the checkpoint's
    files: the last report is of the final weights, and the time training waited is counted."""
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    hook = hooked["hook"]
    assert all(r.pid not in (0, os.getpid()) for r in hook.history)
    assert len({r.pid for r in hook.history}) == 1  # one worker per run, model loaded once
    exp = hook.history[-1].explanations["probe_0"]
    np.testing.assert_allclose(exp.probabilities,
                               PaddleXClassifier(hooked["model"])(exp.image[None])[0], atol=1e-4)
    assert hook.worker_pid is None  # joined at the end of train()
    waited = hook.blocked_seconds  # counted: training waits at least for the last checkpoint
    assert waited > 0
    assert hook.worker_peak_rss_mib > 100  # a real process with Paddle in it


def test_real_visualdl_server_lists_the_probe_tags(hooked):
    """Start ``visualdl`` on the log directory and find the probes' image tags via its HTTP API."""
    vdl = os.path.join(hooked["save_dir"], "vdl_log")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [os.path.join(VENV_BIN, "visualdl"), "--logdir", vdl, "--host", "127.0.0.1", "--port",
         str(port), "--disable-telemetry"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        cwd=vdl)
    base = "http://127.0.0.1:%d/app/api/" % port

    def get(path):
        with urllib.request.urlopen(base + path, timeout=5) as r:
            return json.loads(r.read().decode("utf8"))

    try:
        deadline = time.monotonic() + 60
        images = None
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stdout.read().decode("utf8", "replace")
            try:
                images = get("image/tags")
                break
            except OSError:
                time.sleep(0.5)
        assert images is not None, "VisualDL did not answer within 60 s"
        assert images["status"] == 0
        runs = images["data"]["runs"]
        explain_run = [r for r in runs if r.rstrip("/").endswith("explain")]
        assert len(explain_run) == 1
        tags = images["data"]["tags"][runs.index(explain_run[0])]
        for i in range(2):
            assert "explain/probe_%d/lime" % i in tags
            assert "explain/probe_%d/normlime" % i in tags
        listing = get("image/list?run=%s&tag=%s" % (urllib.request.quote(explain_run[0]),
                                                     urllib.request.quote("explain/probe_0/lime")))
        assert [item["step"] for item in listing["data"]] == list(range(1, EPOCHS + 1))
        scalars = get("scalar/tags")["data"]
        flat = [t for run_tags in scalars["tags"] for t in run_tags]
        assert "-Metrics/Eval(Epoch): acc1" in flat and "explain/probe_0/deletion_auc" in flat
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_hook_refuses_models_that_are_not_classifiers():
    from paddlex_interpret.errors import UnsupportedModelError

    class Detector:
        model_type = "detector"
        net = None

    with pytest.raises(UnsupportedModelError, match="classifier"):
        ExplainHook(["a.png"]).attach(Detector())


def test_checkpoint_weights_are_reused_by_paddlex_interpret_normlime(hooked, tiny_shapes,
                                                                     tmp_path):
    """Explain a checkpoint later with the weights of its own time: ``pdx.interpret.normlime``
    with that checkpoint's model accepts the file as is (no rebuild, no warning)."""
    import warnings

    import paddlex as pdx

    ckpt = os.path.join(hooked["save_dir"], "epoch_1")
    model = pdx.load_model(ckpt)
    weights_file = ExplainHook.weights_file(ckpt)
    before = open(weights_file, "rb").read()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a stale cache would warn and rebuild
        exp = pdx.interpret.normlime(
            tiny_shapes.val_items()[0][0], model, dataset=[tiny_shapes.val_items()[0][0]],
            num_samples=60, batch_size=30, save_dir=str(tmp_path), save_png=False,
            normlime_weights_file=weights_file, max_images=FAST["max_images"],
            n_concepts=FAST["n_concepts"], seed=0)
    assert open(weights_file, "rb").read() == before
    np.testing.assert_array_equal(exp.global_weights.weights,
                                  GlobalWeights.load(weights_file).weights)
