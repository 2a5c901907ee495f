"""paddlex_interpret.api.audit (and ``paddlex-interpret audit``) on saved models: the model
trained on the demo's watermark data is flagged for blue, in the bottom-right corner; the clean
model of the other tests is not."""
import json
import os

import pytest

from paddlex_interpret.api.audit import audit


def test_the_watermark_model_is_flagged_for_blue_only(watermarked, pdx):
    trained, _, _ = watermarked
    result = audit(pdx.load_model(trained.best_model_dir),
                   [p for p, _, _ in trained.dataset.val_items()], max_images=None)
    assert [s["name"] for s in result.suspects] == ["blue"], result.atlas.scores()
    x0, y0, x1, y1 = result.suspects[0]["region"]
    wx0, wy0, wx1, wy1 = trained.dataset.watermark_box
    assert x0 < wx1 and wx0 < x1 and y0 < wy1 and wy0 < y1  # the region covers the watermark
    assert result.suspects[0]["place"] == "bottom-right"


def test_the_clean_model_has_no_suspect(trained_classifier):
    result = audit(trained_classifier.model, trained_classifier.eval_dataset, max_images=None)
    assert result.suspects == [], result.atlas.scores()
    assert result.settings["images"] == 60 and result.settings["method"] == "input_x_gradient"


def test_bad_method_is_named(trained_classifier):
    with pytest.raises(ValueError, match="atlas method"):
        audit(trained_classifier.model, trained_classifier.eval_dataset, method="lime")


def test_the_command_line_audit(watermarked, trained_classifier, tmp_path):
    from test_cli import run_cli

    trained, _, _ = watermarked
    out = run_cli("audit", "--model", trained.best_model_dir, "--dataset", trained.dataset.root,
                  "--save-dir", str(tmp_path), "--fail-on-alarm")
    assert out.returncode == 1, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert [s["name"] for s in summary["suspects"]] == ["blue"]
    assert os.path.exists(summary["atlas_images"]["blue"])
    assert "shortcut suspect" in out.stderr
    clean = run_cli("audit", "--model", trained_classifier.best_model_dir, "--dataset",
                    trained_classifier.dataset.root, "--fail-on-alarm", "--quiet")
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert json.loads(clean.stdout.strip().splitlines()[-1])["suspects"] == []
