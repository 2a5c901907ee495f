"""The command line's ``--device`` and the parallel NormLIME build's devices: a GPU that is not there
is one line and status 2 (Paddle alone ends the process with status 255), ``--device cpu``
explains on the CPU of any build, and ``nproc`` processes on the CPU build the weights of one.

Run on every stack; on the GPU build (``PADDLE_STACK=paddlegpu``, no card here) the errors are the
build's real "no GPU" and ``nproc`` runs where a CUDA build used to ask Paddle for NCCL."""
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import ROOT
from paddlex_interpret import cli
from paddlex_interpret.api import weights as weights_api
from paddlex_interpret.api.weights import build_normlime_weights, rank_classifier
from paddlex_interpret.errors import UsageError

pytestmark = pytest.mark.device


@pytest.fixture(scope="module")
def saved(trained_classifier):
    """``(a saved model directory, an image)``: the session classifier's (read only)."""
    return trained_classifier.best_model_dir, trained_classifier.dataset.val_items()[0][0]


def no_gpu_reason():
    import paddle

    return "no GPU is visible" if paddle.is_compiled_with_cuda() else "CPU build"


def test_device_gpu_without_a_card_is_one_line_and_status_2(saved, tmp_path):
    model, image = saved
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "paddlex_interpret.cli", "lime",
                          "--model", model, "--image", image, "--device", "gpu",
                          "--save-dir", str(tmp_path / "explain")],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2, (out.returncode, out.stderr[-3000:])
    lines = [l for l in out.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("paddlex-interpret: error: device 'gpu'")
    assert no_gpu_reason() in lines[0]
    assert out.stdout == "" and not (tmp_path / "explain").exists()


@pytest.fixture
def quiet_cli():
    """``cli.main`` in this process sets the package logger's level: put it back after."""
    logger = logging.getLogger("paddlex_interpret")
    level = logger.level
    yield
    logger.setLevel(level)


@pytest.mark.parametrize("device,says", [("gpu:1", None), ("cuda:0", "'cpu', 'gpu' or 'gpu:N'")])
def test_device_errors_in_every_command(saved, tmp_path, capsys, quiet_cli, device, says):
    model, image = saved
    commands = [["lime", "--image", image], ["gradcam", "--image", image],
                ["audit", "--dataset", os.path.dirname(os.path.dirname(image))]]
    for command in commands:
        code = cli.main(command + ["--model", model, "--device", device, "--quiet"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1, (command, err)
        assert err[0].startswith("paddlex-interpret: error: device %r" % device)
        assert (says or no_gpu_reason()) in err[0]


def test_device_cpu_explains_on_the_cpu(saved, tmp_path, capsys, quiet_cli):
    import paddle

    model, image = saved
    code = cli.main(["lime", "--model", model, "--image", image, "--device", "cpu",
                     "--num-samples", "40", "--batch-size", "20", "--save-dir", str(tmp_path),
                     "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert os.path.isfile(summary["npz"]) and paddle.get_device() == "cpu"


def test_nproc_processes_on_the_cpu_build_the_weights_of_one(saved, trained_classifier,
                                                            tmp_path):
    """Two spawned processes, on the CPU (gloo; no card visible to them), on any build."""
    model, _ = saved
    items = [p for p, _, _ in trained_classifier.dataset.val_items()][::3]
    kw = dict(mode="fast", max_images=12, n_concepts=6, seed=1)
    one = build_normlime_weights(rank_classifier(model), items, **kw)
    two = build_normlime_weights(model, items, nproc=2, save_path=tmp_path / "nl.npz", **kw)
    assert two.info["ranks"] == 2 and one.info["ranks"] == 1
    assert np.array_equal(one.weights, two.weights)
    assert one.codebook.fingerprint() == two.codebook.fingerprint()


def test_nproc_above_the_visible_cards_is_named_before_anything_starts(saved, monkeypatch):
    """A process on a GPU with one card visible asks for 2 processes. No card here: the GPU
    place and the count are forced (the check reads them before spawning anything)."""
    monkeypatch.setattr(weights_api, "on_gpu", lambda: True)
    monkeypatch.setattr(weights_api, "gpu_count", lambda: 1)
    with pytest.raises(UsageError, match=r"nproc=2 needs a GPU per process and 1 are visible"):
        build_normlime_weights(saved[0], [saved[1]], nproc=2)
