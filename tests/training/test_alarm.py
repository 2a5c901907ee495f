"""The class atlas and the shortcut alarm of ExplainHook on real training: the demo's data (the
blue class carries a corner watermark in training and validation), ALARM_RECIPE (conftest.py).
The alarm fires once, for blue, naming the bottom-right corner, in VisualDL and in the training
process's log; on the tiny clean training of the other hook tests it stays silent."""
import os

import numpy as np

from helpers import EPOCHS, read_run, steps
from paddlex_interpret.core.atlas import ALARM_CONCENTRATION


def test_the_alarm_fires_once_for_the_watermarked_class(watermarked):
    trained, hook, messages = watermarked
    alarms = [(r.epoch, a) for r in hook.history for a in r.alarms]
    assert len(alarms) == 1, alarms
    epoch, text = alarms[0]
    assert epoch >= 2 and "'blue'" in text and "bottom-right" in text, text
    assert "NormLIME: the region is concept #" in text, text  # the concept that lives there
    # said in the training process too (the worker explained the checkpoint)
    assert any("shortcut alarm" in m and "'blue'" in m for m in messages), messages
    reader = read_run(os.path.join(trained.save_dir, "vdl_log", "explain"))
    texts = reader.get_tags()["text"]
    assert [t for t in texts if t.startswith("alarm/")] == ["alarm/blue/evidence"]
    assert steps(reader, "text", "alarm/blue/evidence") == [epoch]
    assert "bottom-right" in reader.get_data("text", "alarm/blue/evidence")[0].text \
        .encoded_text_string
    on = {int(r.id): r.value for r in reader.get_data("scalar", "alarm/blue")}
    assert on == {e: float(e >= epoch) for e in on}, on  # on from the alarm's checkpoint
    for name in ("red", "green"):
        assert all(r.value == 0.0 for r in reader.get_data("scalar", "alarm/%s" % name))
    conc = reader.get_data("scalar", "atlas/blue/concentration")
    assert conc[-1].value >= ALARM_CONCENTRATION


def test_an_atlas_image_per_class_and_checkpoint(watermarked):
    trained, _, _ = watermarked
    reader = read_run(os.path.join(trained.save_dir, "vdl_log", "explain"))
    from PIL import Image
    import io

    last = reader.get_data("image", "atlas/blue")[-1]
    img = np.asarray(Image.open(io.BytesIO(last.image.encoded_image_string)))
    assert img.shape == (256, 256, 3) and img.std() > 0  # a picture, not a blank
    # the hot region's outline (cyan) is drawn in the bottom-right quarter
    cyan = (img[..., 0] < 60) & (img[..., 1] > 200) & (img[..., 2] > 200)
    ys, xs = np.nonzero(cyan)
    assert len(ys) and ys.mean() > 160 and xs.mean() > 160
    counts = [r.value for r in reader.get_data("scalar", "atlas/images")]
    assert len(counts) == 6 and all(58 <= c <= 60 for c in counts), counts  # 60 eval images


def test_the_tiny_clean_training_raises_no_alarm(hooked):
    reader = read_run(os.path.join(hooked["save_dir"], "vdl_log", "explain"))
    assert not [t for t in reader.get_tags().get("text", []) if t.startswith("alarm/")]
    assert steps(reader, "scalar", "atlas/images") == list(range(1, EPOCHS + 1))
    assert all(not r.alarms for r in hooked["hook"].history)
