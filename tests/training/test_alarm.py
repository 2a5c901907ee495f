"""The shortcut alarm of ExplainHook on real training.

* The demo's data (the blue class carries a corner watermark in training and validation),
  ALARM_RECIPE (conftest.py): what each checkpoint's model does with the watermark is measured
  first (stamping it on the other classes' images); the alarm is raised for blue at the
  checkpoints whose model reads it, never for red or green, said once per event in the training
  process, and drawn on the atlas.
* A model made to saturate on its shortcut (the only thing that tells its class, trained until
  it is sure): the alarm is still raised at its last checkpoint, and ``paddlex-interpret audit
  --fail-on-alarm`` of that checkpoint exits with the alarm status; the clean model passes.
* The tiny clean training of the other hook tests raises no alarm.
"""
import io
import json
import os

import numpy as np
import pytest

from pxi_testing.recipes import TRAIN_SETTINGS, train_classifier
from helpers import EPOCHS, read_run, run_cli, shortcut_flip_rate, steps


@pytest.fixture(scope="module")
def reads_watermark(watermarked):
    """``{epoch: share of the other classes' images the model gets right that the watermark
    turns blue}`` (NaN where it gets too few right to say)."""
    trained = watermarked[0]
    return {e: shortcut_flip_rate(os.path.join(trained.save_dir, "epoch_%d" % e),
                                  trained.dataset, "watermark", "blue")
            for e in range(1, trained.settings["num_epochs"] + 1)}


def _raised(hook):
    return {r.epoch: [a.name for a in r.alarms] for r in hook.history}


def test_the_alarm_follows_what_the_model_does_with_the_watermark(watermarked, reads_watermark):
    trained, hook, messages = watermarked
    raised = _raised(hook)
    assert sorted(raised) == sorted(reads_watermark), raised
    assert any(np.isfinite(f) for f in reads_watermark.values()), reads_watermark
    for epoch, flip in reads_watermark.items():
        assert set(raised[epoch]) <= {"blue"}, (epoch, raised)  # never red or green
        if flip >= 0.6:  # the model reads the watermark: the alarm is owed
            assert raised[epoch] == ["blue"], (epoch, flip, raised)
        if raised[epoch] and np.isfinite(flip):  # raised: the model reads it
            assert flip >= 0.4, (epoch, flip, raised)
    on = [e for e in sorted(raised) if raised[e]]
    alarms = hook.alarms
    assert [a.name for a in alarms] == (["blue"] if on else [])
    if on:
        a = alarms[0]
        assert (a.first, a.last, a.checkpoints) == (on[0], on[-1], on)
        assert a.active == (on[-1] == max(raised))
        box = trained.dataset.watermark_box
        assert a.region[0] < box[2] and box[0] < a.region[2]  # on the watermark
        assert a.region[1] < box[3] and box[1] < a.region[3]
    # one line per event in the training process (the worker explained the checkpoints)
    events = [(r.epoch, kind) for r in hook.history for kind, _, _ in r.alarm_events]
    said = [m for m in messages if m.startswith("shortcut alarm")]
    assert len(said) == len([e for e in events if e[1] == "raised"]), (said, events)
    if on:
        assert events[0] == (on[0], "raised")
        assert "'blue'" in said[0] and "bottom-right" in said[0] and "turned" in said[0]
        assert "NormLIME: the region is concept #" in said[0]  # the concept that lives there


def test_visualdl_has_the_alarm_per_checkpoint(watermarked):
    trained, hook, _ = watermarked
    raised = _raised(hook)
    reader = read_run(os.path.join(trained.save_dir, "vdl_log", "explain"))
    on = {int(r.id): r.value for r in reader.get_data("scalar", "alarm/blue")}
    assert on == {e: float("blue" in raised[e]) for e in on} and max(raised) in on
    for name in ("red", "green"):
        assert all(r.value == 0.0 for r in reader.get_data("scalar", "alarm/%s" % name))
    texts = [t for t in reader.get_tags().get("text", []) if t.startswith("alarm/")]
    assert set(texts) <= {"alarm/blue/evidence"}
    if any(raised.values()):
        got = {int(r.id): r.text.encoded_text_string
               for r in reader.get_data("text", "alarm/blue/evidence")}
        assert {e for e in raised if raised[e]} <= set(got)
        assert all("pasting that region" in got[e] for e in raised if raised[e])
    counts = [r.value for r in reader.get_data("scalar", "atlas/images")]
    assert counts == [60.0] * trained.settings["num_epochs"]  # every eval image, each time


def test_the_atlas_picture_boxes_the_alarm_s_region(watermarked):
    """The class's picture at the last checkpoint (256 px for the 64 px view): the raised alarm's
    region is boxed in magenta where it is; without an alarm, no box."""
    from PIL import Image

    trained, hook, _ = watermarked
    last = hook.history[-1]
    reader = read_run(os.path.join(trained.save_dir, "vdl_log", "explain"))
    record = reader.get_data("image", "atlas/blue")[-1]
    assert int(record.id) == last.epoch
    img = np.asarray(Image.open(io.BytesIO(record.image.encoded_image_string)))
    assert img.shape == (256, 256, 3)
    magenta = (img[..., 0] == 255) & (img[..., 1] == 0) & (img[..., 2] == 255)
    alarm = [a for a in last.alarms if a.name == "blue"]
    if not alarm:
        assert not magenta.any()
        return
    ys, xs = np.nonzero(magenta)
    x0, y0, x1, y1 = alarm[0].region
    assert abs(xs.min() - 4 * x0) <= 1 and abs(ys.min() - 4 * y0) <= 1
    assert abs(xs.max() + 1 - 4 * x1) <= 2 and abs(ys.max() + 1 - 4 * y1) <= 2


def test_the_tiny_clean_training_raises_no_alarm(hooked):
    reader = read_run(os.path.join(hooked["save_dir"], "vdl_log", "explain"))
    assert not [t for t in reader.get_tags().get("text", []) if t.startswith("alarm/")]
    assert steps(reader, "scalar", "atlas/images") == list(range(1, EPOCHS + 1))
    assert all(not r.alarms and not r.alarm_events for r in hooked["hook"].history)


#: the saturating model: 32 px shapes whose blue class is told by a magenta corner patch alone
#: (its objects have the other classes' colours), trained until it is sure of it
SATURATED = dict(TRAIN_SETTINGS, num_epochs=10, lr_decay_epochs=(8,))


@pytest.fixture(scope="module")
def saturated(tmp_path_factory):
    from paddlex_interpret.hooks import ExplainHook
    from pxi_testing.shortcuts import shapes_with_shortcut

    root = tmp_path_factory.mktemp("saturated")
    ds = shapes_with_shortcut(str(root / "data"), kind="patch", shortcut_class="blue",
                              only_cue=True, image_size=32, num_train_per_class=40,
                              num_val_per_class=20, seed=0)
    hook = ExplainHook(normlime=False, metrics=False)  # no probes: the alarm alone
    trained = train_classifier(ds, str(root / "model"), hook=hook, save_interval_epochs=1,
                               **SATURATED)
    return trained, hook


def test_a_saturated_model_keeps_its_alarm_and_fails_the_audit(saturated, trained_classifier):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier
    from paddlex_interpret.cli_args import ALARM_EXIT

    trained, hook = saturated
    epochs = SATURATED["num_epochs"]
    ds, last = trained.dataset, os.path.join(trained.save_dir, "epoch_%d" % epochs)
    # the model first: it reads the patch, and it is sure of the class on its own images
    assert shortcut_flip_rate(last, ds, "patch", "blue") >= 0.5
    clf = PaddleXClassifier(trained.model)
    own = np.stack([clf.view(p) for p, y, _ in ds.val_items() if y == 2])
    assert np.median(clf.predict(own)[:, 2]) > 0.99
    # the alarm: raised at the last checkpoint, on the patch
    report = hook.history[-1]
    assert report.epoch == epochs and [a.name for a in report.alarms] == ["blue"]
    x0, y0, x1, y1 = report.alarms[0].region
    assert ds.mask()[y0:y1, x0:x1].any()
    assert hook.alarms[0].active and hook.alarms[0].last == epochs
    # the audit of the shipped checkpoint fails with the alarm status; the clean model passes
    out = run_cli("audit", "--model", last, "--dataset", ds.root, "--fail-on-alarm")
    assert out.returncode == ALARM_EXIT, out.stderr[-3000:]
    assert json.loads(out.stdout.strip().splitlines()[-1])["verdict"] == "alarm"
    clean = run_cli("audit", "--model", trained_classifier.best_model_dir, "--dataset",
                    trained_classifier.dataset.root, "--fail-on-alarm", "--quiet")
    assert clean.returncode == 0, clean.stderr[-3000:]
