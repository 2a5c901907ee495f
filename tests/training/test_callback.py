"""ExplainCallback (paddlex_interpret.training.callback) on real ``paddle.Model.fit`` runs (the
same checks as the PaddleX hook), with the fused composition and the inference engine of the
PaddleX path."""
import logging
import os
import random

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401
import paddle
from paddlex_interpret.training import session as es
from paddlex_interpret.callbacks import ExplainCallback, make_preprocess
from paddlex_interpret.core.images import load_image
from paddlex_interpret.core.normlime import GlobalWeights
from pxi_testing.synthetic import make_shapes_dataset

from helpers import EPOCHS, FAST, probe_images, read_run, steps

pytestmark = pytest.mark.filterwarnings("ignore:When training, we now always track")

PRE = make_preprocess()


class ArrayDataset(paddle.io.Dataset):
    """Preprocessed images with a random horizontal flip (so training consumes NumPy's RNG)."""

    def __init__(self, images, labels, augment=False):
        self.x = PRE(images)
        self.y = np.asarray(labels, dtype="int64").reshape(-1, 1)
        self.augment = augment

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        x = self.x[i]
        if self.augment and np.random.rand() < 0.5:
            x = x[:, :, ::-1].copy()
        return x, self.y[i]


def make_net(num_classes=3):
    nn = paddle.nn
    return nn.Sequential(
        nn.Conv2D(3, 8, 3, padding=1), nn.BatchNorm2D(8), nn.ReLU(), nn.MaxPool2D(2),
        nn.Conv2D(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2D(1), nn.Flatten(),
        nn.Dropout(0.2), nn.Linear(16, num_classes))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    ds = make_shapes_dataset(str(tmp_path_factory.mktemp("cb_shapes")), num_train_per_class=12,
                             num_val_per_class=5, image_size=32)

    def arrays(items):
        return (np.stack([load_image(p) for p, _, _ in items]),
                np.array([l for _, l, _ in items], dtype=np.int64))

    xtr, ytr = arrays(ds.train_items())
    xva, yva = arrays(ds.val_items())
    return {"ds": ds, "train": (xtr, ytr), "val": (xva, yva)}


def fit(data, root, callback=None, epochs=EPOCHS, seed=0, extra_callbacks=True, **fit_kwargs):
    paddle.seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    net = make_net()
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.Adam(learning_rate=0.01, parameters=net.parameters()),
                  paddle.nn.CrossEntropyLoss(), paddle.metric.Accuracy())
    callbacks = [callback] if callback is not None else []
    if extra_callbacks:
        callbacks.append(paddle.callbacks.VisualDL(log_dir=os.path.join(root, "vdl_log")))
    model.fit(ArrayDataset(*data["train"], augment=True), ArrayDataset(*data["val"]),
              epochs=epochs, batch_size=8, save_dir=os.path.join(root, "ckpt"), verbose=0,
              shuffle=True, callbacks=callbacks, **fit_kwargs)
    return model


def make_callback(data, root, **kw):
    xva, yva = data["val"]
    options = dict(FAST, preprocess=PRE, logdir=os.path.join(root, "vdl_log", "explain"),
                   save_dir=os.path.join(root, "ckpt"), normlime_data=(list(xva), yva),
                   label_names=data["ds"].labels, probe_labels=[int(yva[0]), None])
    options.update(kw)
    probes = kw.pop("probes", None) or [xva[0], data["ds"].val_items()[7][0]]
    options.pop("probes", None)
    return ExplainCallback(probes, **options)


@pytest.fixture(scope="module")
def with_callback(data, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fit_cb"))
    cb = make_callback(data, root)
    return {"model": fit(data, root, cb), "cb": cb, "root": root}


@pytest.fixture(scope="module")
def without_callback(data, tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fit_plain"))
    return {"model": fit(data, root), "root": root}


def test_images_scalars_and_texts_per_epoch(with_callback, data):
    reader = read_run(os.path.join(with_callback["root"], "vdl_log", "explain"))
    tags = reader.get_tags()
    per_epoch = list(range(1, EPOCHS + 1))
    expected = {"explain/probe_%d/%s" % (i, m) for i in range(2) for m in ("lime", "normlime")}
    assert probe_images(reader) == expected
    for tag in expected:
        assert steps(reader, "image", tag) == per_epoch
    for i in range(2):
        for name in ("deletion_auc", "insertion_auc", "stability_jaccard", "probability"):
            assert steps(reader, "scalar", "explain/probe_%d/%s" % (i, name)) == per_epoch
    assert steps(reader, "scalar", "normlime/drift") == per_epoch[1:]
    assert [r.value for r in reader.get_data("scalar", "explain/num_errors")] == [0.0] * EPOCHS
    for name in data["ds"].labels:  # one card per class
        top = reader.get_data("text", "normlime/top_concepts/%s" % name)
        assert [int(t.id) for t in top] == per_epoch
        body = top[-1].text.encoded_text_string
        assert body.startswith(name) and " c" in body and "colour #" in body
    history = with_callback["cb"].history
    assert history[0].explanations == {} and history[0].images == {}  # bounded memory
    assert history[-1].explanations["probe_0"].labels.tolist() == \
        [int(data["val"][1][0])]


def test_normlime_weights_next_to_paddle_checkpoints(with_callback, data):
    ckpt = os.path.join(with_callback["root"], "ckpt")
    fingerprints = []
    for epoch in range(EPOCHS):  # Paddle names checkpoints by the 0-based epoch
        assert os.path.isfile(os.path.join(ckpt, "%d.pdparams" % epoch))
        # the hook's file name, in a directory named as Paddle's checkpoint
        gw = GlobalWeights.load(os.path.join(ckpt, str(epoch), "normlime_weights.npz"))
        assert gw.class_names == data["ds"].labels and gw.codebook is not None
        fingerprints.append(gw.codebook.fingerprint())
    assert len(set(fingerprints)) == 1


def test_paddle_visualdl_curves_are_still_there(with_callback):
    vdl = os.path.join(with_callback["root"], "vdl_log")
    reader = read_run(vdl)
    scalars = reader.get_tags()["scalar"]
    assert "train/loss" in scalars and "eval/acc" in scalars
    assert steps(reader, "scalar", "eval/acc") == list(range(EPOCHS))  # Paddle's own steps
    assert not [t for t in scalars if t.startswith("explain/")]


def test_training_is_identical_to_a_fit_without_the_callback(with_callback, without_callback):
    a = with_callback["model"].network.state_dict()
    b = without_callback["model"].network.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)
    assert with_callback["model"].network.training == without_callback["model"].network.training


def test_a_failing_probe_does_not_stop_fit(data, tmp_path, caplog):
    root = str(tmp_path)
    cb = make_callback(data, root, probes=[str(tmp_path / "missing.png"), data["val"][0][0]],
                       normlime_data=None, probe_labels=None)
    with caplog.at_level(logging.ERROR, logger="paddlex_interpret"):
        model = fit(data, root, cb, epochs=1)
    assert os.path.isfile(os.path.join(root, "ckpt", "final.pdparams"))
    assert model.network is not None
    assert "missing.png" in caplog.text and "Traceback" in caplog.text
    reader = read_run(os.path.join(root, "vdl_log", "explain"))
    assert "missing.png" in reader.get_data("text", "explain/errors")[0].text.encoded_text_string
    assert probe_images(reader) == {"explain/probe_1/lime"}


def test_a_weights_file_of_the_former_name_is_left_and_the_new_place_said(data, tmp_path,
                                                                          caplog):
    """The callback once wrote ``<save_dir>/<epoch>.normlime_weights.npz``; now the hook's name
    in ``<save_dir>/<epoch>/``. A file of the former name (an earlier run's) stays as it was,
    and one warning names it and says where the weights go."""
    root = str(tmp_path)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    former = ckpt / "0.normlime_weights.npz"
    former.write_bytes(b"an earlier run's weights")
    cb = make_callback(data, root, probes=[data["val"][0][0]], probe_labels=None, metrics=False,
                       atlas=False, alarm=False)
    with caplog.at_level(logging.WARNING, logger="paddlex_interpret"):
        fit(data, root, cb, epochs=2, extra_callbacks=False)
    assert former.read_bytes() == b"an earlier run's weights"
    for epoch in (0, 1):
        gw = GlobalWeights.load(str(ckpt / str(epoch) / "normlime_weights.npz"))
        assert gw.class_names == data["ds"].labels
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1, said
    assert str(former) in said[0] and os.path.join(str(ckpt), "N", "normlime_weights.npz") \
        in said[0]


def test_eval_end_trigger_with_frequency(data, tmp_path):
    """``trigger='eval_end'``, ``freq=2`` over 3 epochs: epochs 1 and 3 (the last) are explained;
    ``model.evaluate`` outside ``fit`` triggers nothing."""
    root = str(tmp_path)
    cb = make_callback(data, root, trigger="eval_end", freq=2, normlime_data=None, metrics=False,
                       probes=[data["val"][0][0]], probe_labels=None)
    model = fit(data, root, cb, epochs=3, extra_callbacks=False)
    assert [r.epoch for r in cb.history] == [1, 3]
    model.evaluate(ArrayDataset(*data["val"]), batch_size=8, verbose=0, callbacks=[cb])
    assert [r.epoch for r in cb.history] == [1, 3]
    reader = read_run(os.path.join(root, "vdl_log", "explain"))
    assert steps(reader, "image", "explain/probe_0/lime") == [1, 3]


def test_only_rank_zero_writes(data, tmp_path, monkeypatch):
    """The rank-0 guard, simulated (every rank runs the callback; rank 1 must write nothing)."""
    monkeypatch.setattr(es, "get_rank", lambda: 1)
    root = str(tmp_path)
    cb = make_callback(data, root, save_dir=os.path.join(root, "elsewhere"))
    fit(data, root, cb, epochs=1, extra_callbacks=False)
    assert cb.history == []
    assert not os.path.exists(os.path.join(root, "vdl_log"))
    assert not os.path.exists(os.path.join(root, "elsewhere"))


def test_make_preprocess_matches_paddlex_normalize():
    import paddlex as pdx

    img = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3)).astype(np.uint8)
    ours = make_preprocess()(img)
    norm = pdx.transforms.Normalize()
    theirs = np.stack([norm.apply_im(im.astype(np.float32)).transpose(2, 0, 1) for im in img])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
    assert make_preprocess(size=16)(img).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="trigger"):
        ExplainCallback(["a.png"], trigger="batch_end")


def test_the_fit_path_uses_the_fused_composition_and_the_inference_engine(data, tmp_path):
    """The callback explains through a LayerClassifier of the network, like the PaddleX path:
    LIME's inputs composed directly as normalised planes (``fused``) and, with
    ``backend='inference'``, run by the Paddle Inference predictor -- which the report's backend
    info says."""
    root = str(tmp_path)
    cb = make_callback(data, root, backend="inference", metrics=False)
    model = fit(data, root, cb, epochs=1, extra_callbacks=False)
    assert cb.classifier is not None and cb.classifier.fused is True
    assert cb.classifier.layer is model.network
    report = cb.history[-1]
    assert report.epoch == 1 and not report.errors, report.errors
    info = report.backend
    assert info["backend"] == "inference", info
    assert info["path"] == "inference: one predictor", info
    exp = report.explanations["probe_0"]
    np.testing.assert_allclose(exp.probabilities, cb.classifier(exp.image[None])[0], atol=1e-4)


DIST_SCRIPT = r'''
import json, os, sys
import numpy as np
import paddlex_interpret
import paddle
import paddle.distributed as dist
from paddlex_interpret.callbacks import ExplainCallback


def main(out):
    dist.init_parallel_env()
    rank = dist.get_rank()
    paddle.seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((32, 3, 16, 16)).astype("float32")
    y = rng.integers(0, 2, (32, 1)).astype("int64")
    data = paddle.io.TensorDataset([paddle.to_tensor(x), paddle.to_tensor(y)])
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3), paddle.nn.AdaptiveAvgPool2D(1),
                               paddle.nn.Flatten(), paddle.nn.Linear(4, 2))
    model = paddle.Model(net)
    model.prepare(paddle.optimizer.SGD(learning_rate=0.1, parameters=net.parameters()),
                  paddle.nn.CrossEntropyLoss())
    probe = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    items = [(rng.random((16, 16, 3)) * 255).astype(np.uint8) for _ in range(6)]
    cb = ExplainCallback([probe], logdir=os.path.join(out, "vdl", "explain"),
                         save_dir=os.path.join(out, "weights"), normlime_data=items,
                         num_samples=40, batch_size=20, metric_steps=4, max_images=6,
                         n_concepts=3, segmenter="slic", segmenter_params={"n_segments": 6})
    model.fit(data, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    with open(os.path.join(out, "rank%d.json" % rank), "w") as f:
        json.dump({"world": dist.get_world_size(), "epochs": [r.epoch for r in cb.history],
                   "errors": sum(len(r.errors) for r in cb.history)}, f)


if __name__ == "__main__":
    dist.spawn(main, args=(sys.argv[1],), nprocs=2, backend="gloo")
'''


@pytest.mark.slow
def test_two_process_cpu_run_only_rank_zero_explains(tmp_path):
    """A real 2-process data-parallel ``fit`` on CPU (gloo): both ranks run the callback and
    build their share of the NormLIME weights, only rank 0 explains and writes (one VisualDL
    file, one weights file per epoch)."""
    import json
    import subprocess
    import sys

    script = tmp_path / "dist_fit.py"
    script.write_text(DIST_SCRIPT)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=str(tmp_path), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
    log = proc.stdout.decode("utf8", "replace")
    assert proc.returncode == 0, log[-3000:]
    ranks = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert ranks[0]["epochs"] == [1, 2] and ranks[0]["errors"] == 0
    assert ranks[1]["epochs"] == []
    assert len([f for f in os.listdir(str(out / "vdl" / "explain")) if "vdlrecords" in f]) == 1
    assert sorted(os.listdir(str(out / "weights"))) == ["0", "1"]
    assert all(os.listdir(str(out / "weights" / e)) == ["normlime_weights.npz"]
               for e in ("0", "1"))
    reader = read_run(str(out / "vdl" / "explain"))
    assert steps(reader, "image", "explain/probe_0/lime") == [1, 2]
    # both ranks built their share of every epoch's weights
    shared = GlobalWeights.load(str(out / "weights" / "1" / "normlime_weights.npz"))
    assert shared.info["ranks"] == 2 and shared.info["n_images"] == 6
