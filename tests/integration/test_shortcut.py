"""An explanation catches what accuracy cannot: a model that learned a watermark shortcut.

The blue class carries a corner watermark in its training AND validation images, so validation
accuracy is high whether or not the model relies on it. LIME shows that it does: the watermark's
superpixel is among the top evidence for blue images, and stamping the watermark onto red and
green images turns them blue.
"""
import numpy as np
import pytest

from pxi_testing.recipes import train_classifier
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.adapters.paddlex import PaddleXClassifier
from pxi_testing.synthetic import make_shapes_dataset, stamp_watermark

pytestmark = pytest.mark.slow  # trains a classifier on the watermarked data


@pytest.fixture(scope="module")
def shortcut_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("shortcut")
    ds = make_shapes_dataset(root / "data", num_train_per_class=80, num_val_per_class=20,
                             image_size=64, watermark_class="blue",
                             watermark_splits=("train", "val"))
    return train_classifier(ds, root / "out")


def _explain(clf, image):
    return LimeExplainer(clf, num_samples=300, seed=0, fill="median", segmenter="slic",
                         segmenter_params={"n_segments": 40}).explain(image)


def test_lime_reveals_the_watermark_shortcut_that_accuracy_hides(shortcut_model):
    ds, clf = shortcut_model.dataset, PaddleXClassifier(shortcut_model.model)
    assert shortcut_model.accuracy >= 0.9  # accuracy: nothing to see
    blue = ds.labels.index("blue")
    x0, y0, x1, y1 = ds.watermark_box
    in_box = np.zeros((ds.image_size, ds.image_size), bool)
    in_box[y0:y1, x0:x1] = True

    val = ds.val_items()
    # the model's behaviour first: the watermark alone turns other classes blue
    others = np.stack([clf.view(p) for p, l, _ in val if l != blue])
    stamped = np.stack([stamp_watermark(im.copy(), ds.watermark_box) for im in others])
    assert (clf(others).argmax(1) == blue).mean() <= 0.1
    assert (clf(stamped).argmax(1) == blue).mean() >= 0.5, "the model does not read the watermark"

    # then the explanation: the watermark is among the top evidence for blue
    blue_imgs = [clf.view(p) for p, l, _ in val if l == blue][:8]
    hits = 0
    for image in blue_imgs:
        exp = _explain(clf, image)
        assert exp.labels[0] == blue
        top = exp.top_segments(blue, 2)
        hits += any((exp.segments == t)[in_box].any() for t in top)
    assert hits >= 6, "watermark in the top-2 superpixels of %d/8 blue images" % hits

    # control: on an unmarked red image the corner carries no evidence for its class
    red = next(clf.view(p) for p, l, _ in val if ds.labels[l] == "red")
    exp = _explain(clf, red)
    assert not (exp.segments == exp.top_segments(exp.labels[0], 1)[0])[in_box].any()
