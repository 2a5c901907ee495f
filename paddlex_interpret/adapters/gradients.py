"""Gradients of a Paddle classifier for the core's saliency methods
(:mod:`~paddlex_interpret.core.saliency`), in dygraph (gradients need it).

:class:`GradientRunner` takes a :class:`~paddlex_interpret.adapters.base.PaddleClassifier`
(a PaddleX classifier or any ``paddle.nn.Layer`` with its preprocessing) and gives

* :meth:`~GradientRunner.input_gradients`: ``d logit[label] / d input`` of a batch of normalised
  inputs (SmoothGrad, Integrated Gradients);
* :meth:`~GradientRunner.layer_gradients`: a target layer's activations and their gradients
  (Grad-CAM). The target is found once per input shape: the last convolution, in the order the
  forward pass runs them, whose map keeps :data:`MIN_CELLS` cells a side; or the one named.

Around every call the network is in eval mode (its train/eval flags restored after), gradients
are on, no parameter's ``.grad`` is touched (``paddle.grad`` on the inputs only) and every hook
registered is removed again, also when the call fails.

Example::

    from paddlex_interpret.adapters.gradients import GradientRunner
    runner = GradientRunner(PaddleXClassifier(model))
    acts, grads = runner.layer_gradients(x[None], [2])[0]     # x: (3, H, W) normalised input
"""
import contextlib

import numpy as np

from ..errors import DeviceError, UnsupportedModelError
from .base import PaddleClassifier

__all__ = ["GradientRunner", "find_target_layer", "MIN_CELLS"]


@contextlib.contextmanager
def _gradient_mode(layer):
    """Eval mode with gradients on; every sub-layer's train/eval flag restored after."""
    import paddle

    flags = [(sub, sub.training) for sub in [layer] + list(layer.sublayers())]
    layer.eval()
    try:
        with paddle.set_grad_enabled(True):
            yield
    finally:
        for sub, training in flags:
            sub.training = training


@contextlib.contextmanager
def _hooked(layers, hook):
    """``hook(name, layer, output)`` on the forward outputs of ``layers`` (``{name: layer}``);
    the hooks are removed on exit."""
    handles = []
    try:
        for name, sub in layers.items():
            handles.append(sub.register_forward_post_hook(
                lambda s, inputs, output, name=name: hook(name, s, output)))
        yield
    finally:
        for h in handles:
            h.remove()


#: Grad-CAM's default target keeps at least this many cells a side: the 7 x 7 map it has on the
#: 224 px ImageNet models it was made for. On smaller inputs the last convolution's map is
#: coarser (2 x 2 for a 64 px MobileNetV3), too coarse for its peak to fall on an object.
MIN_CELLS = 7


def find_target_layer(layer, x, place=None):
    """The name of the last convolution run by ``layer(x)`` (``x`` put on ``place``) whose output
    map has at least :data:`MIN_CELLS` cells a side, else the last with a spatial map (Grad-CAM's
    default target)."""
    import paddle

    convs = {name: sub for name, sub in layer.named_sublayers()
             if isinstance(sub, paddle.nn.Conv2D)}
    seen = []
    with _gradient_mode(layer), paddle.no_grad(), _hooked(
            convs, lambda name, s, out: seen.append((name, tuple(out.shape)))):
        layer(paddle.to_tensor(np.asarray(x, np.float32), place=place))
    spatial = [(name, min(shape[2:])) for name, shape in seen
               if len(shape) == 4 and shape[2] * shape[3] > 1]
    if not spatial:
        raise UnsupportedModelError("Grad-CAM needs a convolution with a spatial output; this "
                                    "network has none (give target_layer=)")
    fine = [name for name, side in spatial if side >= MIN_CELLS]
    return fine[-1] if fine else spatial[-1][0]


class GradientRunner:
    """Input and layer gradients of ``classifier`` (see the module docstring).

    The gradients are taken on the classifier's device, which must be where the network's
    parameters are (:class:`~paddlex_interpret.errors.DeviceError` otherwise).

    Args:
        classifier: a :class:`~paddlex_interpret.adapters.base.PaddleClassifier`.
        target_layer: Grad-CAM's layer, by name (``dict(net.named_sublayers())``) or as the
            Layer; default :func:`find_target_layer`.
    """

    def __init__(self, classifier, target_layer=None):
        if not isinstance(classifier, PaddleClassifier):
            why = getattr(classifier, "gradient_unavailable", None)
            raise UnsupportedModelError(
                "gradient methods (Grad-CAM, SmoothGrad, Integrated Gradients, input x gradient, "
                "the class atlas) need a Paddle network, the model's Python one (a PaddleX "
                "classifier or a paddle.nn.Layer), got %s%s" % (type(classifier).__name__,
                                                                ": " + why() if why else ""))
        self.classifier = classifier
        self.layer = classifier.network()
        runner = classifier.runner
        if runner.elsewhere:
            raise DeviceError("gradient methods need the network on their device: "
                              + runner.elsewhere)
        self.device = runner.device
        self.target_layer = target_layer
        self._targets = {}

    def inputs(self, images):
        """The normalised ``(B, C, H, W)`` float32 inputs of ``(B, H, W, 3)`` uint8 images."""
        return np.asarray(self.classifier.preprocess(np.asarray(images)), np.float32)

    def input_gradients(self, x, label):
        """``d logit[label] / d x`` for a ``(B, C, H, W)`` batch (summed over the batch's rows:
        each row's gradient is its own)."""
        import paddle

        with _gradient_mode(self.layer):
            t = paddle.to_tensor(np.asarray(x, np.float32), place=self.device,
                                 stop_gradient=False)
            score = self.layer(t)[:, int(label)].sum()
            (grad,) = paddle.grad([score], [t])
        return grad.numpy()

    def target(self, x):
        """``(name, Layer)`` of Grad-CAM's target for inputs shaped like ``x``."""
        named = dict(self.layer.named_sublayers())
        spec = self.target_layer
        if spec is None:
            key = tuple(np.shape(x)[1:])
            if key not in self._targets:
                self._targets[key] = find_target_layer(self.layer, np.asarray(x)[:1],
                                                       self.device)
            spec = self._targets[key]
        if isinstance(spec, str):
            if spec not in named:
                raise ValueError("no sub-layer %r; the convolutions are %s" % (spec, [
                    n for n, s in named.items() if type(s).__name__ == "Conv2D"][-5:]))
            return spec, named[spec]
        name = next((n for n, s in named.items() if s is spec), None)
        if name is None:
            raise ValueError("target_layer is not a sub-layer of this network")
        return name, spec

    def layer_gradients(self, x, labels):
        """For a ``(1, C, H, W)`` input, per label ``(activations, gradients)`` of the target
        layer, ``(K, h, w)`` each; one forward pass for all labels."""
        import paddle

        name, sub = self.target(x)
        store = {}
        with _gradient_mode(self.layer), _hooked({name: sub}, lambda n, s, out: store.update(
                act=out)):
            t = paddle.to_tensor(np.asarray(x, np.float32), place=self.device,
                                 stop_gradient=False)
            logits = self.layer(t)
            act = store["act"]
            out = []
            for i, label in enumerate(labels):
                (grad,) = paddle.grad([logits[0, int(label)]], [act],
                                      retain_graph=i < len(labels) - 1)
                out.append((act.numpy()[0], grad.numpy()[0]))
        return out
