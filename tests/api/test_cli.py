"""The command line (paddlex_interpret.cli) on a saved PaddleX model."""
import os
import subprocess
import sys

import pytest

from helpers import ROOT, run_cli


@pytest.fixture(scope="module")
def val_items(trained_classifier):
    return trained_classifier.dataset.val_items()


def test_cli_lime_on_a_saved_model(trained_classifier, val_items, tmp_path):
    import json

    model_dir = trained_classifier.best_model_dir
    out = subprocess.run([sys.executable, "-W", "ignore", "-m", "paddlex_interpret.cli", "lime",
                          "--model", model_dir, "--image", val_items[0][0], "--num-samples", "40",
                          "--batch-size", "20", "--save-dir", str(tmp_path), "--seed", "3",
                          "--top-k", "2"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert os.path.exists(summary["png"]) and summary["png"].endswith("lime_s40-0.png")
    assert summary["predicted"] in trained_classifier.model.labels



def test_user_errors_are_one_line_and_status_2(trained_classifier, val_items, tmp_path, pdx):
    model_dir = trained_classifier.best_model_dir
    import paddle

    seg_dir = str(tmp_path / "segmenter")
    seg = pdx.seg.BiSeNetV2(num_classes=2)
    seg.optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=seg.net.parameters())
    seg.save_model(seg_dir)  # a saved model that is not a classifier
    cases = [
        (["lime", "--model", model_dir, "--image", str(tmp_path / "nope.png")], "does not exist"),
        (["lime", "--model", model_dir, "--image", val_items[0][0], "--num-samples", "zero"],
         "num-samples"),
        (["lime", "--model", str(tmp_path), "--image", val_items[0][0]], "no model.yml in it"),
        (["lime", "--model", str(tmp_path / "nothing"), "--image", val_items[0][0]],
         "does not exist"),
        (["lime", "--model", seg_dir, "--image", val_items[0][0], "--num-samples", "10"],
         "classifiers only"),
        (["lime", "--model", model_dir, "--image", val_items[0][0], "--fill", "purple"],
         "--fill"),
        (["lime", "--model", model_dir, "--image", val_items[0][0], "--num-samples", "10",
          "--labels", "violet"], "unknown class"),
    ]
    for args, says in cases:
        out = run_cli(*args)
        assert out.returncode == 2, (args, out.stderr[-2000:])
        last = [l for l in out.stderr.strip().splitlines() if l.strip()][-1]
        assert says in last, (args, out.stderr[-2000:])
        assert "Traceback" not in out.stderr, out.stderr[-2000:]
    debug = run_cli("--debug", "lime", "--model", model_dir, "--image", val_items[0][0],
                    "--num-samples", "10", "--labels", "violet")
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_help_shows_each_default_once():
    from paddlex_interpret.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in subs.choices.items():
        for action in sub._actions:
            text = sub.formatter_class(prog=name)._get_help_string(action) or ""
            shown = text.replace("%(default)s", "X")
            assert shown.count("default") <= 1, (name, action.option_strings, text)
            if isinstance(action.default, bool) or action.default is None:
                assert "%(default)" not in text, (name, action.option_strings, text)
    assert "(default" not in subs.choices["lime"].format_help().split("--no-progress")[1] \
        .splitlines()[0]


def test_fill_labels_glime_and_version(trained_classifier, val_items, fast_weights, tmp_path):
    import json

    from paddlex_interpret import __version__

    model_dir = trained_classifier.best_model_dir
    out = run_cli("lime", "--model", model_dir, "--image", val_items[0][0], "--num-samples",
                  "40", "--batch-size", "20", "--save-dir", str(tmp_path), "--fill", "median",
                  "--labels", trained_classifier.labels[1], "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert os.path.exists(summary["png"]) and summary["fill"] == "median"
    assert summary["explained"] == [trained_classifier.labels[1]]
    assert "predicted" in out.stderr and "New Executor" not in out.stderr
    assert "pkg_resources" not in out.stderr
    prior = str(tmp_path / "prior.npz")
    fast_weights.save(prior)
    out = run_cli("glime", "--model", model_dir, "--image", val_items[1][0], "--prior", prior,
                  "--num-samples", "40", "--save-dir", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert os.path.exists(summary["png"]) and "glime_s40" in summary["png"]
    assert "INFO" not in out.stderr  # --quiet
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip().endswith(__version__)


def test_build_weights_with_two_processes_writes_the_weights_of_one(trained_classifier, tmp_path):
    import json

    import numpy as np

    from paddlex_interpret.core.normlime.weights import GlobalWeights

    common = ["build-weights", "--model", trained_classifier.best_model_dir, "--dataset",
              trained_classifier.dataset.root, "--max-images", "20", "--seed", "1"]
    files = {}
    for n in (1, 2):
        files[n] = str(tmp_path / ("nl%d.npz" % n))
        out = run_cli(*(common + ["--out", files[n], "--nproc", str(n)]), timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        assert json.loads(out.stdout.strip().splitlines()[-1])["weights_file"] == files[n]
    one, two = GlobalWeights.load(files[1]), GlobalWeights.load(files[2])
    assert two.info["ranks"] == 2
    assert np.array_equal(one.weights, two.weights) and one.fingerprint == two.fingerprint


def test_gradient_commands_write_what_the_library_does(trained_classifier, val_items, pdx,
                                                       tmp_path):
    import json

    import numpy as np

    from paddlex_interpret.core.saliency import SaliencyExplanation

    model_dir = trained_classifier.best_model_dir
    image = val_items[2][0]
    label = trained_classifier.labels[val_items[2][1]]
    out = run_cli("gradcam", "--model", model_dir, "--image", image, "--labels", label,
                  "--save-dir", str(tmp_path), "--segmenter", "slic")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["png"].endswith("gradcam-0.png") and os.path.exists(summary["png"])
    assert summary["explained"] == [label]
    saved = SaliencyExplanation.load(summary["npz"])
    model = pdx.load_model(model_dir)
    here = pdx.interpret.gradcam(image, model, labels=[label], segmenter="slic")
    np.testing.assert_allclose(saved.maps, here.maps, rtol=1e-5, atol=1e-7)
    out = run_cli("integrated-gradients", "--model", model_dir, "--image", image, "--steps",
                  "0")
    assert out.returncode == 2 and "steps" in out.stderr.strip().splitlines()[-1]
    out = run_cli("smoothgrad", "--model", model_dir, "--image", image, "--n-samples", "3",
                  "--save-dir", str(tmp_path), "--quiet")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "smoothgrad-0.png" in json.loads(out.stdout.strip().splitlines()[-1])["png"]
