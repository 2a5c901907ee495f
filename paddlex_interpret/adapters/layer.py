"""Any ``paddle.nn.Layer`` as a :class:`~paddlex_interpret.core.classifier.Classifier`, with a
preprocessing function (default: scale to [0, 1], channels first) and, optionally, the input
size the network expects (``view`` resizes to it).

Example::

    from paddlex_interpret import LayerClassifier
    clf = LayerClassifier(net, preprocess=my_fn, label_names=["cat", "dog"], input_size=224)
    probs = clf(clf.view("cat.png")[None])
"""
import numpy as np

from .base import PaddleClassifier, channel_lut

__all__ = ["LayerClassifier"]


class LayerClassifier(PaddleClassifier):
    """``images -> probabilities`` for any ``paddle.nn.Layer``.

    Args:
        layer: the network; its outputs are logits or probabilities ``(B, C)``.
        preprocess: ``(B, H, W, 3) uint8 -> (B, C, H, W)`` float array; default scales to [0, 1]
            and moves channels first.
        label_names: optional class names.
        input_size: optional int or ``(h, w)``: :meth:`view` resizes images to it (area
            interpolation), so probes of any size can be explained.
        backend, device, num_threads, batch_size: see
            :class:`~paddlex_interpret.adapters.base.PaddleClassifier`.
    """

    def __init__(self, layer, preprocess=None, label_names=None, *, input_size=None,
                 backend="auto", device=None, num_threads=None, batch_size=None):
        super().__init__(backend, device, num_threads, batch_size)
        self.layer = layer
        self._preprocess = preprocess
        self.label_names = list(label_names) if label_names is not None else None
        self.num_classes = len(self.label_names) if self.label_names is not None else None
        if input_size is not None and np.isscalar(input_size):
            input_size = (int(input_size), int(input_size))
        self.input_size = None if input_size is None else tuple(int(s) for s in input_size)
        self._lut = channel_lut(self.preprocess)

    def _layer(self):
        return self.layer

    def preprocess(self, images):
        if self._preprocess is not None:
            return self._preprocess(np.asarray(images))
        return np.asarray(images, dtype=np.float32).transpose(0, 3, 1, 2) / 255.0

    def view(self, image):
        img = super().view(image)
        if self.input_size is not None and img.shape[:2] != self.input_size:
            import cv2

            img = cv2.resize(img, (self.input_size[1], self.input_size[0]),
                             interpolation=cv2.INTER_AREA)
        return img
