"""paddlex_interpret.adapters.gradients on real Paddle layers: the gradients of a network whose
decision provably depends on one region, the default Grad-CAM target, and a network left as it
was (hooks, train/eval flags, parameter gradients)."""
import numpy as np
import pytest

import paddlex_interpret  # noqa: F401
import paddle
import paddlex_interpret as pxi
from paddlex_interpret.adapters.gradients import GradientRunner, find_target_layer
from paddlex_interpret.adapters.layer import LayerClassifier
from paddlex_interpret.errors import UnsupportedModelError

from helpers import REGION


class RegionNet(paddle.nn.Layer):
    """Two convolutions, then class 1's logit is the mean feature over ``REGION`` only (class
    0's its negative): nothing outside the region can change the decision."""

    def __init__(self):
        super().__init__()
        paddle.seed(0)
        self.conv = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.drop = paddle.nn.Dropout(0.5)  # eval mode must switch it off
        self.head = paddle.nn.Conv2D(8, 4, 3, padding=1)
        self.register_buffer("mask", paddle.to_tensor(REGION.astype("float32"))[None, None])

    def forward(self, x):
        a = paddle.nn.functional.relu(self.head(self.drop(paddle.nn.functional.relu(
            self.conv(x)))))
        s = (a * self.mask).sum(axis=[1, 2, 3]) / float(REGION.sum())
        return paddle.stack([-s, s], axis=1)


def preprocess(images):
    return (np.asarray(images, np.float32) / 255.0).transpose(0, 3, 1, 2)


@pytest.fixture
def region_classifier():
    net = RegionNet()
    net.train()
    return LayerClassifier(net, preprocess=preprocess, label_names=["out", "in"])


def image():
    return np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)


@pytest.mark.parametrize("method", ["smoothgrad", "integrated_gradients"])
def test_input_gradients_live_in_the_region_the_model_uses(region_classifier, method):
    exp = getattr(pxi, method)(image(), region_classifier, labels=[1], segmenter=None)
    m = np.abs(exp.maps[0])
    # the two 3 x 3 convolutions see 2 pixels around the region; nothing further away counts
    reach = np.zeros_like(REGION)
    rows, cols = np.nonzero(REGION)
    reach[max(rows.min() - 2, 0):rows.max() + 3, max(cols.min() - 2, 0):cols.max() + 3] = True
    assert m[~reach].max() == 0.0 and m[REGION].max() > 0
    assert REGION[np.unravel_index(np.argmax(m), m.shape)]
    assert exp.settings["method"] == method


def test_the_network_is_left_as_it_was(region_classifier):
    net = region_classifier.network()
    flags = [s.training for s in net.sublayers()]
    for method in ("gradcam", "smoothgrad", "integrated_gradients"):
        getattr(pxi, method)(image(), region_classifier, segmenter=None)
    assert [s.training for s in net.sublayers()] == flags and net.training
    assert all(not s._forward_post_hooks for s in net.sublayers())
    assert all(p.grad is None for p in net.parameters())


def test_eval_mode_makes_the_gradients_deterministic(region_classifier):
    runner = GradientRunner(region_classifier)
    x = runner.inputs(image()[None])
    assert np.array_equal(runner.input_gradients(x, 1), runner.input_gradients(x, 1))


def test_the_default_target_keeps_seven_cells_a_side():
    paddle.seed(0)
    net = paddle.nn.Sequential(paddle.nn.Conv2D(3, 4, 3, stride=2, padding=1),   # 32 -> 16
                               paddle.nn.Conv2D(4, 4, 3, stride=2, padding=1),   # 8
                               paddle.nn.Conv2D(4, 4, 3, stride=2, padding=1),   # 4
                               paddle.nn.AdaptiveAvgPool2D(1), paddle.nn.Flatten(),
                               paddle.nn.Linear(4, 2))
    assert find_target_layer(net, np.zeros((1, 3, 32, 32), np.float32)) == "1"
    assert find_target_layer(net, np.zeros((1, 3, 16, 16), np.float32)) == "0"
    assert find_target_layer(net, np.zeros((1, 3, 8, 8), np.float32)) == "1"  # none keeps 7
    flat = paddle.nn.Sequential(paddle.nn.Flatten(), paddle.nn.Linear(3 * 4 * 4, 2))
    with pytest.raises(UnsupportedModelError, match="spatial"):
        find_target_layer(flat, np.zeros((1, 3, 4, 4), np.float32))
    clf = LayerClassifier(net, preprocess=preprocess)
    with pytest.raises(ValueError, match="no sub-layer"):
        pxi.gradcam(image(), clf, target_layer="nope", segmenter=None)


def test_a_model_without_a_network_is_refused():
    with pytest.raises(UnsupportedModelError, match="Paddle network"):
        pxi.gradcam(image(), lambda batch: np.ones((len(batch), 2)), segmenter=None)
