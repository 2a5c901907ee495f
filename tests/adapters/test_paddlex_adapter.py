"""paddlex_interpret.adapters.paddlex (PaddleXClassifier): the image the model sees (its test
transforms' geometric steps), its probabilities against PaddleX's own ``predict``, and LIME's
fused composition (normalised inputs composed directly from the channel table) bit for bit
PaddleX's ``Normalize`` of the perturbed images, in every composition method.

The trained model is the session's ``trained_classifier`` (MobileNetV3_small, 64 px).
"""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import grid_of
from paddlex_interpret import PaddleXClassifier
from paddlex_interpret.core import native
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import (compose_normalised, iter_batches, perturb,
                                                 sample_masks)


@pytest.fixture(scope="module")
def image(trained):
    """The first val image of the session's trained classifier, as the model sees it."""
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    return clf.view(trained.dataset.val_items()[0][0])


@pytest.fixture(scope="module")
def val_items(trained_classifier):
    return trained_classifier.dataset.val_items()


def opencv_composes():
    """Whether OpenCV can compose (``compose_normalised(method='cv2')`` needs LUT and copyTo)."""
    try:
        import cv2
    except Exception:
        return False
    return hasattr(cv2, "LUT") and hasattr(cv2, "copyTo")


def test_explained_image_is_what_the_model_sees(model, val_items):
    from paddlex_interpret.adapters.paddlex import PaddleXClassifier

    clf = PaddleXClassifier(model)
    view = clf.view(val_items[0][0])
    # the view is the decoded image after the geometric steps (here Resize) and before Normalize
    sample = {"image": val_items[0][0]}
    for op in [model.test_transforms.decode_image] + model.test_transforms.transforms:
        if type(op).__name__ == "Normalize":
            break
        sample = op(sample)
    np.testing.assert_array_equal(view, np.rint(sample["image"]).astype(np.uint8))
    # our probabilities for the view equal PaddleX's own predict on the file
    ours = clf(view[None])[0]
    theirs = model.predict(val_items[0][0], topk=len(model.labels))
    by_id = {d["category_id"]: d["score"] for d in theirs}
    np.testing.assert_allclose([by_id[i] for i in range(len(ours))], ours, atol=2e-3)


def test_fused_perturbation_path_is_bit_identical(trained, probe_images):
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    image = probe_images[0]
    seg = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 16, 0), 16, 1)
    masks = sample_masks(37, 16, np.random.default_rng(0))
    for fill in ("black", "mean", "blur"):
        fill_image = make_fill(image, seg, fill)
        np.testing.assert_array_equal(
            clf.compose(image, fill_image, seg, masks),
            clf.preprocess(perturb(image, fill_image, seg, masks)))
    # LIME through predict_masks (fused) == LIME through plain calls.
    fast = LimeExplainer(clf, num_samples=120, batch_size=25, seed=0, segmenter="slic")
    slow = LimeExplainer(lambda imgs: clf(imgs), num_samples=120, batch_size=25, seed=0,
                         segmenter="slic")
    a, b = fast.explain(image), slow.explain(image)
    np.testing.assert_array_equal(a.weights, b.weights)
    masks = sample_masks(130, int(a.segments.max()) + 1, np.random.default_rng(1))
    fill_image = make_fill(image, a.segments, "black")
    plain = np.concatenate([clf(perturb(image, fill_image, a.segments, masks[sl]))
                            for sl in iter_batches(len(masks), 50)])
    np.testing.assert_array_equal(
        clf.predict_masks(image, fill_image, a.segments, masks, 50), plain)


@pytest.mark.parametrize("method", ["kernel", "cv2", "numpy"])
@pytest.mark.parametrize("cells", [5, 17])  # 25 and 289 (> 256: no cv2.LUT) superpixels
@pytest.mark.parametrize("fill", ["black", "mean", "blur"])
def test_every_composition_is_bit_identical_to_normalising_the_perturbed_images(
        trained, image, cells, fill, method):
    """The compiled kernel, OpenCV and numpy compose the same bits as PaddleX's Normalize of
    :func:`perturb`'s uint8 images, with more than 32 images (the kernel's group of 32)."""
    if method == "kernel" and not native.available():
        pytest.skip("the compiled kernels are not built")
    if method == "cv2" and not opencv_composes():
        pytest.skip("no OpenCV")
    clf = PaddleXClassifier(trained.model, backend="dygraph")
    seg = grid_of(image.shape, cells)
    masks = sample_masks(37, cells * cells, np.random.default_rng(cells))
    fill_image = make_fill(image, seg, fill)
    expect = clf.preprocess(perturb(image, fill_image, seg, masks))
    # the normalised image and fill: PaddleX's Normalize of the image and of the fill
    img_n, fill_n = clf.preprocess(image[None])[0], clf.preprocess(fill_image[None])[0]
    got = compose_normalised(img_n, fill_n, seg, masks, method=method)
    np.testing.assert_array_equal(got, expect)
    buf = np.full_like(expect, np.nan)
    assert compose_normalised(img_n, fill_n, seg, masks, out=buf, method=method) is buf
    np.testing.assert_array_equal(buf, expect)
    np.testing.assert_array_equal(clf.compose(image, fill_image, seg, masks), expect)
    # a label map that does not fit the masks is refused, whichever way
    for bad in (seg + 1, seg - 1):
        with pytest.raises(IndexError, match="outside"):
            compose_normalised(img_n, fill_n, bad, masks, method=method)
    with pytest.raises(ValueError, match="out must be"):
        compose_normalised(img_n, fill_n, seg, masks, out=buf[:, :2], method=method)


def test_the_channel_table_is_paddlex_normalize(model):
    """PaddleXClassifier's normalisation is a per-channel table (so LIME's inputs are composed
    fused) giving exactly what PaddleX's own ``Normalize`` op gives, on any image."""
    clf = PaddleXClassifier(model, backend="dygraph")
    assert clf.fused is True
    normalize = [op for op in model.test_transforms.transforms
                 if type(op).__name__ == "Normalize"]
    assert len(normalize) == 1
    images = np.random.default_rng(5).integers(0, 256, (4, 64, 64, 3)).astype(np.uint8)
    theirs = np.stack([np.asarray(normalize[0]({"image": im})["image"], np.float32)
                       .transpose(2, 0, 1) for im in images])
    np.testing.assert_array_equal(clf.preprocess(images), theirs)
