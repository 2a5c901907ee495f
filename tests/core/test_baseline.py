"""paddlex_interpret.core.baseline: ``fill='auto'`` takes, per image, the candidate fill whose
fully hidden image leaves the model least certain; it is recorded in the settings; and on a
model that reads its objects' colour it gives explanations that point at the object where black
does not."""
import numpy as np
import pytest

from paddlex_interpret.core.baseline import AutoFill, fill_value, resolve_fill
from paddlex_interpret.core.classifier import Classifier
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.perturbation import make_fill


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
