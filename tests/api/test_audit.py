"""paddlex_interpret.api.audit (and ``paddlex-interpret audit``) on saved models: the verdict
follows what the model does with the demo's watermark (measured first, by stamping it on the
other classes' images), the same on the exported inference model; the clean model of the other
tests passes; the save directory is made, or refused, before the work."""
import json
import os

import numpy as np
import pytest

from helpers import shortcut_flip_rate
from paddlex_interpret.api.audit import audit
from paddlex_interpret.core.classifier import Classifier


def _last_checkpoint(trained):
    return os.path.join(trained.save_dir, "epoch_%d" % trained.settings["num_epochs"])


def _overlaps(box, other):
    return box[0] < other[2] and other[0] < box[2] and box[1] < other[3] and other[1] < box[3]


@pytest.fixture(scope="module")
def last_audit(watermarked, pdx):
    """The audit of the watermarked training's last checkpoint, and how much that model reads
    the watermark."""
    trained, _, _ = watermarked
    ckpt = _last_checkpoint(trained)
    flip = shortcut_flip_rate(ckpt, trained.dataset, "watermark", "blue")
    val = [(p, y) for p, y, _ in trained.dataset.val_items()]  # labelled, as the hook's
    return audit(pdx.load_model(ckpt), val), flip


def test_the_verdict_follows_what_the_model_does_with_the_watermark(last_audit, watermarked):
    result, flip = last_audit
    trained = watermarked[0]
    assert np.isfinite(flip), "the last model gets too few images of red and green right"
    assert flip >= 0.6 or flip <= 0.4, "too near the threshold to say (%.2f)" % flip
    if flip <= 0.4:  # this training did not make a model that reads it
        assert result.verdict == "none", result.to_dict()
        return
    assert result.verdict == "alarm" and [a.name for a in result.alarms] == ["blue"]
    alarm = result.alarms[0]
    assert _overlaps(alarm.region, trained.dataset.watermark_box), alarm.to_dict()
    x0, y0, x1, y1 = alarm.region
    assert (x1 - x0) * (y1 - y0) <= 64 * 64 // 16  # tight: not most of the image
    ev = alarm.evidence
    assert ev.flipped >= 0.5 * ev.targets and ev.targets >= 8 and alarm.place == "bottom-right"
    assert "turned %d of them into 'blue'" % ev.flipped in alarm.message()
    assert result.atlas is not None and result.settings["images"] == 60


def test_the_deployed_model_gets_the_same_verdict(last_audit, watermarked, pdx, tmp_path):
    result, _ = last_audit
    trained = watermarked[0]
    pdx.load_model(_last_checkpoint(trained))._export_inference_model(str(tmp_path))
    deployed = audit(str(tmp_path / "inference_model"),
                     [(p, y) for p, y, _ in trained.dataset.val_items()])
    assert deployed.atlas is None and deployed.settings["method"] is None  # no gradients
    assert deployed.verdict == result.verdict
    assert [a.name for a in deployed.alarms] == [a.name for a in result.alarms]


def test_the_clean_model_passes(trained_classifier):
    result = audit(trained_classifier.model, trained_classifier.eval_dataset)
    assert result.verdict == "none" and result.alarms == [], result.to_dict()
    assert sorted(result.check.classes) == [0, 1, 2]  # every class was tested
    assert result.settings["images"] == 60 and result.settings["method"] == "input_x_gradient"


def test_bad_method_is_named(trained_classifier):
    with pytest.raises(ValueError, match="atlas method"):
        audit(trained_classifier.model, trained_classifier.eval_dataset, method="lime")


class Counting(Classifier):
    """A live model seen as a plain Classifier (no gradients), counting its images."""

    def __init__(self, inner):
        self.inner, self.images, self.label_names = inner, 0, inner.label_names

    def view(self, image):
        return self.inner.view(image)

    def __call__(self, images):
        self.images += len(images)
        return self.inner.predict(images)


def test_the_save_dir_is_made_or_refused_before_the_work(trained_classifier, tmp_path):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    clf = Counting(PaddleXClassifier(trained_classifier.model))
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError):
        audit(clf, trained_classifier.eval_dataset, save_dir=str(tmp_path / "a_file" / "out"))
    assert clf.images == 0  # refused before a single prediction
    out = tmp_path / "new" / "audit"
    result = audit(clf, trained_classifier.eval_dataset, save_dir=str(out))
    assert clf.images and sorted(os.listdir(out)) == sorted(
        ["audit.json"] + ["atlas_%s.png" % n for n in trained_classifier.labels])
    saved = json.loads((out / "audit.json").read_text())
    assert saved["verdict"] == result.verdict and saved["pictures"] == result.pictures
    assert result.atlas is None  # a plain function has no gradients: the scan's map is drawn


def test_the_command_line_audit(last_audit, watermarked, trained_classifier, tmp_path):
    from helpers import run_cli

    from paddlex_interpret.cli_args import ALARM_EXIT

    result, _ = last_audit
    trained = watermarked[0]
    out = run_cli("audit", "--model", _last_checkpoint(trained), "--dataset",
                  trained.dataset.root, "--save-dir", str(tmp_path / "made"), "--fail-on-alarm")
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["verdict"] == result.verdict
    assert out.returncode == (ALARM_EXIT if result.verdict == "alarm" else 0), out.stderr[-3000:]
    assert [a["name"] for a in summary["alarms"]] == [a.name for a in result.alarms]
    assert os.path.exists(summary["pictures"]["blue"])
    assert out.stderr.count("shortcut alarm") == len(result.alarms)  # one line per alarm
    clean = run_cli("audit", "--model", trained_classifier.best_model_dir, "--dataset",
                    trained_classifier.dataset.root, "--fail-on-alarm", "--quiet")
    assert clean.returncode == 0, clean.stderr[-3000:]
    assert json.loads(clean.stdout.strip().splitlines()[-1])["verdict"] == "none"
    (tmp_path / "a_file").write_text("")
    bad = run_cli("audit", "--model", trained_classifier.best_model_dir, "--dataset",
                  trained_classifier.dataset.root, "--save-dir", str(tmp_path / "a_file" / "x"))
    assert bad.returncode == 2 and "--save-dir" in bad.stderr and "Traceback" not in bad.stderr
    assert "seconds" in result.settings  # the audit reports its time; benches judge it
