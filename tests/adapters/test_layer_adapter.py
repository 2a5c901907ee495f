"""paddlex_interpret.adapters.layer (LayerClassifier) and the shared adapter base: the channel
table (``channel_lut``) that decides whether LIME's inputs are composed directly as normalised
planes, that composition bit for bit the preprocessing of the perturbed images, and ``view``'s
resize to the network's input size. Small dygraph networks, no training."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401  (before paddlex)
from helpers import grid_of
from paddlex_interpret import LayerClassifier
from paddlex_interpret.adapters.base import channel_lut
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import iter_batches, perturb, sample_masks
from paddlex_interpret.training.callback import make_preprocess


@pytest.fixture(scope="module")
def net():
    import paddle

    paddle.seed(0)
    nn = paddle.nn
    return nn.Sequential(nn.Conv2D(3, 4, 3), nn.AdaptiveAvgPool2D(1), nn.Flatten(),
                         nn.Linear(4, 3))


def grey(images):
    """Not a per-channel map: every output channel is the mean of the three inputs."""
    x = np.asarray(images, np.float32).mean(axis=3, keepdims=True) / 255.0
    return np.repeat(x, 3, axis=3).transpose(0, 3, 1, 2)


def ramp(images):
    """Not a per-channel map: the output depends on the pixel's column."""
    x = np.asarray(images, np.float32).transpose(0, 3, 1, 2) / 255.0
    return x + np.arange(x.shape[3], dtype=np.float32)[None, None, None, :]


def test_channel_lut_is_the_table_of_a_per_channel_map_and_none_otherwise():
    pre = make_preprocess()
    lut = channel_lut(pre)
    assert lut.shape == (3, 256) and lut.dtype == np.float32
    values = np.arange(256, dtype=np.uint8)
    for c in range(3):
        image = np.zeros((1, 1, 256, 3), np.uint8)
        image[0, 0, :, c] = values
        np.testing.assert_array_equal(lut[c], pre(image)[0, c, 0])
    images = np.random.default_rng(0).integers(0, 256, (3, 9, 7, 3)).astype(np.uint8)
    np.testing.assert_array_equal(np.stack([lut[c][images[..., c]] for c in range(3)], axis=1),
                                  pre(images))
    assert channel_lut(grey) is None
    assert channel_lut(ramp) is None
    assert channel_lut(make_preprocess(size=16)) is None  # resizes: no per-pixel table

    def broken(images):
        raise RuntimeError("no")

    assert channel_lut(broken) is None
    assert channel_lut(lambda images: np.zeros((len(images), 1))) is None  # not (B, 3, H, W)


@pytest.mark.parametrize("preprocess, fused", [(None, True), (make_preprocess(), True),
                                               (grey, False), (ramp, False)],
                         ids=["default", "normalize", "grey", "ramp"])
def test_composition_is_bit_identical_to_preprocessing_the_perturbed_images(net, preprocess,
                                                                            fused):
    clf = LayerClassifier(net, preprocess=preprocess, backend="dygraph")
    assert clf.fused is fused
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)
    seg = grid_of(image.shape, 5)
    masks = sample_masks(45, 25, rng)
    for fill in ("black", "mean", "blur"):
        fill_image = make_fill(image, seg, fill)
        images = perturb(image, fill_image, seg, masks)
        expect = clf.preprocess(images)
        composed = clf.compose(image, fill_image, seg, masks)
        # with a table the normalised inputs directly; without, the images predict preprocesses
        np.testing.assert_array_equal(composed, expect if fused else images)
        buf = np.full(expect.shape, np.nan, np.float32) if fused else np.zeros_like(images)
        assert clf.compose(image, fill_image, seg, masks, out=buf) is buf  # filled in place
        np.testing.assert_array_equal(buf if fused else clf.preprocess(buf), expect)
    # LIME's batches: the classifier's own numbers on the perturbed images, batch by batch
    fill_image = make_fill(image, seg, "mean")
    got = clf.predict_masks(image, fill_image, seg, masks, 20)
    ref = np.concatenate([clf(perturb(image, fill_image, seg, masks[sl]))
                          for sl in iter_batches(45, 20)])
    np.testing.assert_array_equal(got, ref)
    assert clf.backend_info["backend"] == "dygraph"


def test_view_resizes_to_the_input_size_and_names_the_classes(net):
    clf = LayerClassifier(net, label_names=["a", "b", "c"], input_size=16, backend="dygraph")
    assert clf.label_names == ["a", "b", "c"] and clf.num_classes == 3
    assert clf.input_size == (16, 16)
    big = np.random.default_rng(2).integers(0, 256, (32, 48, 3)).astype(np.uint8)
    view = clf.view(big)
    import cv2

    np.testing.assert_array_equal(view, cv2.resize(big, (16, 16), interpolation=cv2.INTER_AREA))
    same = big[:16, :16]
    np.testing.assert_array_equal(clf.view(same), same)
    tall = LayerClassifier(net, input_size=(8, 12), backend="dygraph")
    assert tall.view(big).shape == (8, 12, 3)
    free = LayerClassifier(net, backend="dygraph")
    assert free.view(big).shape == big.shape and free.label_names is None
    probs = clf(view[None])
    assert probs.shape == (1, 3) and np.allclose(probs.sum(1), 1)
