"""paddlex_interpret.core.fill: the named fills, colours and images; ``fill='auto'`` takes the
blank the model is least sure about when the model is not sure of a class on it, else, per
image, the candidate whose fully hidden image leaves the model least certain; it is recorded in
the settings; and on a model that reads its objects' colour it gives explanations that point at
the object where black does not."""
import numpy as np
import pytest

from paddlex_interpret.core.classifier import Classifier
from paddlex_interpret.core.fill import AutoFill, fill_value, make_fill, resolve_fill
from paddlex_interpret.core.lime import LimeExplainer


def test_fills():
    img = np.zeros((4, 4, 3), np.uint8); img[:, :2] = 100; img[:, 2:] = 200
    seg = np.repeat(np.array([[0, 0, 1, 1]]), 4, axis=0)
    assert make_fill(img, seg, "black").max() == 0
    assert make_fill(img, seg, "median")[0, 0].tolist() == [150, 150, 150]
    np.testing.assert_array_equal(make_fill(img, seg, "mean"), img)
    assert make_fill(img, seg, (1, 2, 3))[0, 0].tolist() == [1, 2, 3]
    assert make_fill(img, seg, "blur").shape == img.shape
    with pytest.raises(ValueError, match="unknown fill"):
        make_fill(img, seg, "pink")


class DarkIsBlue(Classifier):
    """Class 0 "red" for a red object, class 1 "blue" for blue or dark pixels: black reads as
    blue to it, the failure black fills give."""

    label_names = ["red", "blue"]
    num_classes = 2

    def __call__(self, images):
        x = images.astype(np.float64) / 255.0
        red = (x[..., 0] - x[..., 2]).clip(0).mean(axis=(1, 2))
        blue = ((x[..., 2] - x[..., 0]).clip(0) + (x.max(axis=-1) < 0.15)).mean(axis=(1, 2))
        return np.stack([8 * red, 8 * blue], axis=1)


def blob_image(colour):
    img = np.full((32, 32, 3), 140, np.uint8)
    img[8:20, 8:20] = colour
    seg = (np.arange(32)[:, None] // 8) * 4 + np.arange(32)[None, :] // 8  # 16 squares
    return img, seg


def test_auto_takes_the_fill_the_model_is_least_sure_about_and_says_so():
    img, seg = blob_image((30, 30, 220))
    choice = AutoFill().choose(DarkIsBlue(), img, seg)
    assert choice.name != "black"  # a black image is "blue" to this model: certain
    assert choice.scores["black"] < choice.scores[choice.name]
    assert set(choice.scores) == {"black", "grey", "median", "mean", "blur"}
    exp = LimeExplainer(DarkIsBlue(), fill="auto", num_samples=200, seed=0).explain(
        img, segments=seg, labels=["blue"])
    s = exp.settings
    assert s["fill"] == "auto" and s["fill_chosen"] == choice.name
    assert s["fill_scores"]["black"] < s["fill_scores"][choice.name]
    np.testing.assert_array_equal(
        make_fill(img, seg, fill_value(exp)), make_fill(img, seg, choice.name))


def test_auto_puts_the_object_first_where_black_gives_it_a_negative_weight():
    img, seg = blob_image((30, 30, 220))
    on_object = np.unique(seg[8:20, 8:20])
    black = LimeExplainer(DarkIsBlue(), fill="black", num_samples=400, seed=0).explain(
        img, segments=seg, labels=[1])
    auto = LimeExplainer(DarkIsBlue(), fill="auto", num_samples=400, seed=0).explain(
        img, segments=seg, labels=[1])
    assert black.weights[0][on_object].max() < 0  # black: the object speaks against "blue"
    assert int(np.argmax(auto.weights[0])) in on_object
    assert auto.weights[0][on_object].min() > 0


def test_dataset_colour_candidate_and_resolution():
    img, seg = blob_image((200, 40, 40))
    auto = resolve_fill("auto", dataset_colour=(140.4, 139.6, 141))
    assert isinstance(auto, AutoFill) and auto.colours == {"dataset": (140, 140, 141)}
    choice = auto.choose(DarkIsBlue(), img, seg)
    assert "dataset" in choice.scores
    if choice.name == "dataset":
        assert choice.value == [140, 140, 141]
    assert resolve_fill("black") == "black" and resolve_fill((1, 2, 3)) == (1, 2, 3)
    with pytest.raises(ValueError, match="at least one"):
        AutoFill(candidates=())


def test_auto_is_the_same_for_the_same_image():
    img, seg = blob_image((30, 220, 30))
    a = AutoFill().choose(DarkIsBlue(), img, seg)
    b = AutoFill().choose(DarkIsBlue(), img.copy(), seg.copy())
    assert a.name == b.name and a.scores == b.scores


class ContrastReader(Classifier):
    """Three classes: bright, dark, and "textured" (pixel spread). A grey image is bright or dark
    to it about equally and not textured: not sure of a class (entropy about 0.8)."""

    num_classes = 3

    def __call__(self, images):
        x = images.astype(np.float64) / 255.0
        m = x.mean(axis=(1, 2, 3))
        return np.stack([4 * m, 4 * (1 - m), 16 * x.std(axis=(1, 2, 3))], axis=1)


class BlankIsClassZero(Classifier):
    """Any flat image is class 0 for sure; texture pulls it towards class 1."""

    num_classes = 2

    def __call__(self, images):
        x = images.astype(np.float64) / 255.0
        s = x.std(axis=(1, 2, 3))
        return np.stack([10 * (1 - 8 * s), np.zeros_like(s)], axis=1)


def stripes():
    img = np.zeros((32, 32, 3), np.uint8)
    img[:, ::2] = 255  # mean 0.5, spread: a blur keeps some of it
    seg = (np.arange(32)[:, None] // 8) * 4 + np.arange(32)[None, :] // 8
    return img, seg


def test_a_blank_the_model_is_not_sure_about_beats_an_image_derived_fill_it_is_less_sure_about():
    img, seg = stripes()
    choice = AutoFill().choose(ContrastReader(), img, seg)
    best_any = max(choice.scores, key=choice.scores.get)
    assert best_any not in ("black", "grey"), choice.scores  # an image-derived fill scores more
    assert choice.scores["grey"] >= 0.1
    assert (choice.name, choice.stage) == ("grey", "blank")
    assert choice.describe()["fill_stage"] == "blank"


def test_where_every_blank_is_evidence_every_candidate_competes_on_the_image():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    seg = (np.arange(32)[:, None] // 8) * 4 + np.arange(32)[None, :] // 8
    choice = AutoFill().choose(BlankIsClassZero(), img, seg)
    assert max(choice.scores["black"], choice.scores["grey"]) < 0.1
    assert choice.stage == "image"
    assert choice.name == max(choice.scores, key=choice.scores.get)
    assert choice.name not in ("black", "grey", "median")  # flat fills: sure of class 0
    # a stricter threshold sends a model that is fairly sure on grey to the same contest
    img2, seg2 = stripes()
    strict = AutoFill(neutral=0.99).choose(ContrastReader(), img2, seg2)
    assert strict.stage == "image" and strict.name == max(strict.scores, key=strict.scores.get)
