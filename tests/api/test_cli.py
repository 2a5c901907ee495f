"""The command line (paddlex_interpret.cli) on a saved PaddleX model."""
import os
import subprocess
import sys

import pytest

from helpers import ROOT


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
