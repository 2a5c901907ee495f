"""paddlex_interpret.core.intervention, core.regions and core.shortcut: the shortcut alarm's test
on models with a known answer (numpy functions of the generated shapes: the object's colour
decides the class, and a model may read the demo's corner watermark as blue besides)."""
import numpy as np
import pytest

from helpers import SHAPE_CLASSES, colour_model, shapes
from paddlex_interpret.core.intervention import Evidence, InterventionTest, paste
from paddlex_interpret.core.regions import (box_area, cells_map, clip_box, describe_box,
                                            propose_boxes, top_boxes)
from paddlex_interpret.core.shortcut import (FLIP_ALARM, Alarm, ShortcutMemory, alarm_of,
                                             check_shortcuts,
                                             verdict)
from pxi_testing.drawing import watermark_box_for

H = 64
BOX = watermark_box_for(H)
NAMES = SHAPE_CLASSES


def in_box(inner, outer):
    return (inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2]
            and inner[3] <= outer[3])


def test_the_transplant_turns_other_classes_into_the_shortcut_class():
    views = shapes()
    test = InterventionTest(colour_model(30), views)
    assert (test.predicted == np.arange(60) % 3).all()  # the model is right on every image
    blue_box = test.evidence(2, BOX)
    assert blue_box.targets == 40 and blue_box.flipped >= 38 and blue_box.control == 0
    assert blue_box.own == 20 and 0 <= blue_box.left <= 20 and np.isfinite(blue_box.drop)
    elsewhere = test.evidence(2, (8, 8, 14, 14))
    assert elsewhere.flipped == 0
    # a clean model reads no corner
    assert InterventionTest(colour_model(0), views).evidence(2, BOX).flipped == 0


def test_the_template_is_what_the_class_shares_not_one_image():
    views = shapes()
    test = InterventionTest(colour_model(30), views)
    x0, y0, x1, y1 = BOX
    assert np.array_equal(test.template(2)[y0:y1, x0:x1], views[2, y0:y1, x0:x1])  # the checker
    red = test.template(0).astype(int)
    # objects move: the red class's median has no red object left anywhere
    assert (red[..., 0] - red[..., 1:].mean(-1) < 40).all()


def test_the_tight_box_is_inside_the_watermark():
    test = InterventionTest(colour_model(30), shapes())
    need = test.flips(2, (48, 48, 64, 64))
    tight = test.tighten(2, (48, 48, 64, 64), need=int(0.9 * need))
    assert in_box(tight, BOX) and box_area(tight) <= box_area(BOX), tight
    assert test.flips(2, tight) >= int(0.9 * need)


def test_pasting_a_background_over_a_watermark_is_not_the_pasted_class_shortcut():
    """Green's template pasted over the blue images' watermark takes blue's evidence away: the
    images fall to another class, which the control transplant (red's template there) shows."""
    def fallback(images):  # blue from the watermark alone; a blue object without it: green
        x = images.astype(np.float64)
        chroma = np.maximum(x - x.mean(-1, keepdims=True), 0).mean((1, 2)) / 2.0
        x0, y0, x1, y1 = BOX
        mark = (np.abs(x[:, y0:y1, x0:x1].mean(-1) - 127.5) > 100).mean((1, 2))
        logits = np.stack([chroma[:, 0], chroma[:, 1] + chroma[:, 2], 30 * mark], 1)
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    test = InterventionTest(fallback, shapes())
    assert (test.predicted == np.arange(60) % 3).all()
    turned, control = test.turned(1, BOX)
    assert turned == 20 and control == 20 and test.flips(1, BOX) == 0  # the 20 blue images
    check = check_shortcuts(test, label_names=NAMES)
    assert [k.name for k in check.confirmed()] == ["blue"]


def test_the_check_finds_the_shortcut_by_the_scan_alone():
    test = InterventionTest(colour_model(30), shapes())
    check = check_shortcuts(test, label_names=NAMES)
    assert [k.name for k in check.confirmed()] == ["blue"]
    blue = check.classes[2]
    assert blue.source == "scan" and in_box(blue.evidence.box, BOX)
    assert blue.evidence.flip_rate >= FLIP_ALARM and blue.found_by("scan")
    assert check.passes == test.passes > 0
    clean = check_shortcuts(InterventionTest(colour_model(0), shapes()), label_names=NAMES)
    assert clean.confirmed() == [] and sorted(clean.classes) == [0, 1, 2]


def test_a_map_proposes_where_its_mass_is():
    m = np.zeros((H, H))
    m[57:61, 57:61] = 1.0
    m[10:12, 30:34] = 0.5
    boxes = propose_boxes(m, (16, 16))
    assert in_box((57, 57, 61, 61), boxes[0]) and in_box((30, 10, 34, 12), boxes[1])
    assert propose_boxes(np.zeros((H, H)), (16, 16)) == []
    assert top_boxes([(0, 0, 4, 4), (1, 1, 5, 5), (8, 8, 12, 12)], [3.0, 2.0, 1.0]) == [
        (0, 0, 4, 4), (8, 8, 12, 12)]
    # a gradient map that points at the watermark is tested without the scan
    maps = np.zeros((3, H, H))
    maps[2] = m
    check = check_shortcuts(InterventionTest(colour_model(30), shapes()), {"gradient": maps},
                            scan=False, label_names=NAMES)
    assert check.classes[2].confirmed and check.classes[2].source == "gradient"


def test_the_memory_keeps_the_alarm_while_the_model_reads_the_shortcut():
    views = shapes()
    memory = ShortcutMemory()
    events = []
    for epoch, strength in enumerate([0, 30, 30, 30, 0], start=1):
        test = InterventionTest(colour_model(strength), views)
        scan = epoch <= 2  # later checkpoints: only the remembered region is re-tested
        events += [(epoch, kind, a.name) for kind, a in memory.update(
            check_shortcuts(test, memory=memory, scan=scan, label_names=NAMES), epoch)]
    assert events == [(2, "raised", "blue"), (5, "cleared", "blue")]
    (alarm,) = memory.alarms.values()
    assert (alarm.first, alarm.last, alarm.checkpoints, alarm.active) == (2, 4, [2, 3, 4], False)
    assert memory.events == [(2, "raised", 2), (5, "cleared", 2)]
    again = ShortcutMemory()
    again.restore(memory.state())
    assert again.state() == memory.state() and again.alarms[2].region == alarm.region


def test_the_message_gives_the_region_and_the_counts():
    test = InterventionTest(colour_model(30), shapes())
    (k,) = check_shortcuts(test, label_names=NAMES).confirmed()
    alarm = Alarm(k.cls, k.name, k.evidence.box, k.evidence, 6, 6, [6])
    text = alarm.message(6)
    x0, y0, x1, y1 = k.evidence.box
    assert "epoch 6" in text and "'blue'" in text and "bottom-right corner" in text
    assert "x %d..%d, y %d..%d" % (x0, x1 - 1, y0, y1 - 1) in text
    assert "onto 40 images of other classes turned %d of them" % k.evidence.flipped in text
    assert "on the class's own 20 images" in text
    assert Alarm.from_dict(alarm.to_dict()).to_dict() == alarm.to_dict()
    assert Evidence.from_dict(k.evidence.to_dict()) == k.evidence
    assert verdict([alarm]) == "alarm" and verdict([]) == "none"


def test_a_model_that_gives_every_image_to_one_class_cannot_be_tested():
    def one_class(images):
        return np.tile([0.1, 0.1, 0.8], (len(images), 1))

    check = check_shortcuts(InterventionTest(one_class, shapes()))
    assert check.classes == {} and check.untestable == [0, 1, 2]


def test_helpers_and_bad_input():
    assert clip_box((-3, 60, 70, 90), (64, 64)) == (0, 60, 64, 64)
    assert describe_box((56, 56, 62, 62), (64, 64)) == (
        "a 6x6 region in the bottom-right corner (x 56..61, y 56..61 of the 64x64 view)")
    assert "a 4x4 region in the centre" in describe_box((30, 30, 34, 34), (64, 64))
    views = shapes(6)
    out = paste(views[:2], views[5], (0, 0, 4, 4))
    assert np.array_equal(out[:, :4, :4], np.broadcast_to(views[5, :4, :4], (2, 4, 4, 3)))
    assert np.array_equal(out[:, 4:], views[:2, 4:])
    m = cells_map([(0, 0, 2, 2), (1, 1, 3, 3)], [1.0, 3.0], (4, 4))
    assert m[1, 1] == 2.0 and m[0, 0] == 1.0 and m[3, 3] == 0.0
    with pytest.raises(ValueError, match="uint8"):
        InterventionTest(colour_model(), views.astype(np.float32))
    with pytest.raises(ValueError, match="flip"):
        check_shortcuts(InterventionTest(colour_model(), views), flip=1.5)


def test_with_labels_the_targets_are_images_the_model_gets_right():
    views = shapes()
    labels = np.arange(60) % 3
    labels[:6] = (labels[:6] + 1) % 3  # six images the model "gets wrong" now
    test = InterventionTest(colour_model(30), views, labels)
    assert not set(test.own(2)) & set(range(6)) and not set(test.others(2)) & set(range(6))
    assert len(test.others(2)) == 36 and len(test.own(2)) == 18
    assert test.evidence(2, BOX).flipped >= 34
    with pytest.raises(ValueError, match="labels"):
        InterventionTest(colour_model(30), views, labels[:5])


def test_a_class_that_cannot_be_tested_keeps_its_alarm():
    views = shapes()
    memory = ShortcutMemory()
    memory.update(check_shortcuts(InterventionTest(colour_model(30), views), memory=memory,
                                  label_names=SHAPE_CLASSES), 1)
    few = InterventionTest(colour_model(30), views[:24])  # 8 images a class: no template
    check = check_shortcuts(few, memory=memory, label_names=SHAPE_CLASSES)
    assert check.untestable == [0, 1, 2] and memory.update(check, 2) == []
    assert memory.alarms[2].active and memory.alarms[2].last == 1


def test_an_object_part_at_a_fixed_place_is_not_a_shortcut():
    """Every blue image has its object at the same place, each of its own shade: the model reads
    it (pasting the class's median there turns the other images blue) but the class's images do
    not carry the same pixels there, as a stamp would be: no alarm."""
    views = shapes(mark=False)
    rng = np.random.default_rng(1)
    for i in range(2, 60, 3):
        views[i, 24:40, 24:40] = np.rint(np.array([40, 70, 225]) * rng.uniform(0.5, 1.0))
    test = InterventionTest(colour_model(0), views)
    check = check_shortcuts(test, label_names=SHAPE_CLASSES)
    blue = check.classes[2]
    assert test.flips(2, (24, 24, 40, 40)) >= 20  # the model reads it
    assert test.shared(2, (24, 24, 40, 40)) == 0 and not blue.confirmed
    assert check.confirmed() == []


def frame_model(images):
    """Green from its object's colour, or from a yellow frame around the image once at least
    three quarters of the frame is there: no box short of the whole view holds it."""
    from pxi_testing.shortcuts import BORDER_COLOUR, shortcut_mask

    frame = shortcut_mask("border", images.shape[1])
    x = images.astype(np.float64)
    logits = np.maximum(x - x.mean(-1, keepdims=True), 0).mean((1, 2)) / 2.0
    on = (np.abs(x[:, frame] - np.array(BORDER_COLOUR)).max(-1) <= 8).mean(1)
    logits[:, 1] += 60 * (on >= 0.75)
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def framed(n=60):
    from pxi_testing.shortcuts import stamp

    views = shapes(n, mark=False)
    views[1::3] = [stamp("border", v) for v in views[1::3]]
    return views


def test_a_frame_is_tested_as_the_pixels_the_class_shares():
    """A frame no box holds alone: the boxes the scan proposes turn nothing, the class's shared
    pixels (the frame, pasted without what lies inside it) turn every other image green; the
    alarm says so, and its memory re-tests those pixels, not their bounding box."""
    from pxi_testing.shortcuts import shortcut_mask

    views = framed()
    test = InterventionTest(frame_model, views)
    assert (test.predicted == np.arange(60) % 3).all()
    frame = shortcut_mask("border", H)
    shared = test.shared_mask(1)  # the frame (and a background pixel or so, by chance)
    assert shared[frame].all() and shared[~frame].mean() < 0.01
    assert test.shared_box(1) == (0, 0, H, H)
    assert test.shared_box(0) is None and test.shared_box(2) is None
    assert test.flips(1, (0, 0, H, H), masked=True) == 40
    # the whole box moves the class's median background too; the mask moves the frame alone
    pasted = paste(views[:3], test.template(1), (0, 0, H, H), shared)
    assert np.array_equal(pasted[:, ~shared], views[:3, ~shared])
    assert np.array_equal(pasted[:, shared], np.broadcast_to(test.template(1)[shared],
                                                              (3, shared.sum(), 3)))
    check = check_shortcuts(test, label_names=NAMES)
    green = check.classes[1]
    assert [k.name for k in check.confirmed()] == ["green"]
    assert green.source == "shared" and green.evidence.masked
    assert not green.found_by("scan")  # no box of the scan does it
    assert green.evidence.flipped >= 36 and green.evidence.shared >= 0.75 * frame.sum() - 1
    memory = ShortcutMemory()
    memory.update(check, 1)
    assert memory.suspects == {}  # the bounding box is not re-tested whole
    again = check_shortcuts(InterventionTest(frame_model, views), memory=memory, scan=False,
                            label_names=NAMES)
    assert again.classes[1].confirmed and again.classes[1].source == "memory"
    assert again.classes[1].evidence.masked
    text = alarm_of(again.classes[1], 2).message(2)
    assert "pixels its images share" in text and "onto 40 images" in text
    assert Evidence.from_dict(green.evidence.to_dict()) == green.evidence
    # a clean model reads no frame
    assert check_shortcuts(InterventionTest(colour_model(0), views)).confirmed() == []


def test_an_absence_the_mask_finds_is_controlled_by_the_blanks():
    """Green's images are black along the top where the other classes' images have a grey bar,
    and the model reads that absence as green: the mask of green's shared pixels is the bar's
    place, and pasting it turns the others green, but so does pasting any blank there: the
    blanks' control takes those images out (the mask brought nothing of green's own)."""
    views = shapes(mark=False)
    views[:, :4] = 128
    views[1::3, :4] = 0

    def absence_model(images):
        x = images.astype(np.float64)
        logits = np.maximum(x - x.mean(-1, keepdims=True), 0).mean((1, 2)) / 2.0
        logits[:, 1] += 60 * (x[:, :4].mean((1, 2, 3)) < 20)
        z = np.exp(logits - logits.max(1, keepdims=True))
        return z / z.sum(1, keepdims=True)

    test = InterventionTest(absence_model, views)
    assert (test.predicted == np.arange(60) % 3).all()
    assert test.shared_mask(1)[:4].all()
    box = test.shared_box(1)
    assert test.turned(1, box, masked=True) == (40, 40) and test.flips(1, box, masked=True) == 0
    # the frame's mask is not an absence: no blank there turns the images green
    framed_test = InterventionTest(frame_model, framed())
    assert framed_test.turned(1, framed_test.shared_box(1), masked=True) == (40, 0)
