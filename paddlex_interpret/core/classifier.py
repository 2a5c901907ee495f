"""The model side of an explanation, declared: the :class:`Classifier` protocol, its defaults, and
the one rule that turns model outputs into probabilities.

Everything the core asks of a model is a method of :class:`Classifier`; the core never probes a
model with ``getattr``. A subclass must give ``__call__`` (uint8 images to outputs); the rest
have defaults a faster adapter overrides:

* :meth:`~Classifier.predict_masks` -- the outputs of LIME's perturbed images for a block of
  mask rows: the one loop that composes them batch by batch (:meth:`~Classifier.compose`) and
  predicts each batch. A model whose preprocessing is a per-channel table of uint8 values
  (:meth:`~Classifier.input_table`, the Paddle adapters) gets its normalised inputs composed
  directly (copies only) and predicts them with :meth:`~Classifier.predict_inputs`; any other
  gets the uint8 images through :meth:`~Classifier.predict`. Adapters override how a batch is
  predicted, never the loop;
* :meth:`~Classifier.hold_weights` -- a block in which the weights cannot change (default a
  no-op; the Paddle adapters verify their weights once inside it instead of at every call);
* :meth:`~Classifier.suggest_batch_size`, :meth:`~Classifier.view`,
  :meth:`~Classifier.fingerprint`, :attr:`~Classifier.backend_info`, ``label_names``,
  ``num_classes``.

A plain function ``images -> outputs`` becomes one with :func:`as_classifier`.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.classifier import as_classifier
    >>> clf = as_classifier(lambda b: b.reshape(len(b), -1)[:, :2].astype(float))
    >>> clf.predict(np.zeros((1, 2, 2, 3), np.uint8)).tolist()   # logits -> softmax
    [[0.5, 0.5]]
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Sequence, Union

import numpy as np
import numpy.typing as npt

from .images import load_image, to_rgb_uint8
from .perturbation import compose_normalised, iter_batches, perturb

__all__ = ["Classifier", "FunctionClassifier", "as_classifier", "as_probabilities",
           "check_positive_int", "resolve_labels", "run_in_batches", "ClassifierLike"]


def check_positive_int(value: Any, name: str) -> int:
    """Return ``int(value)`` or raise ValueError naming ``name`` when it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError("%s must be an integer >= 1, got %r" % (name, value))
    return int(value)


def as_probabilities(outputs: npt.ArrayLike) -> np.ndarray:
    """Model outputs ``(B, C)`` as float64 probabilities: a row that is not a probability vector
    (a negative entry, or a sum off 1 by more than 1e-4) gets a softmax, so logits and
    probabilities are both accepted (PaddleX 1.3's rule, per row)."""
    out = np.array(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError("the classifier must return a (batch, num_classes) array, got shape %s"
                         % (out.shape,))
    bad = (np.abs(out.sum(axis=1) - 1.0) > 1e-4) | (out.min(axis=1, initial=0.0) < 0)
    if bad.all():
        return _softmax(out)
    if bad.any():
        out[bad] = _softmax(out[bad])
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def resolve_labels(labels: Any, label_names: Sequence[Any] | None = None) -> np.ndarray | None:
    """Class ids for ``labels`` given as ids or class names (``['blue']``); None stays None.
    A name that is not a class raises ``ValueError`` listing the classes."""
    if labels is None:
        return None
    items = [labels] if isinstance(labels, (str, int, np.integer)) else list(
        np.atleast_1d(labels) if isinstance(labels, np.ndarray) else labels)
    out = []
    for item in items:
        if isinstance(item, str):
            names = [str(n) for n in label_names] if label_names is not None else None
            if names is None or item not in names:
                raise ValueError("unknown class %r; the classes are %s"
                                 % (item, names if names is not None else "unnamed (use ids)"))
            out.append(names.index(item))
        else:
            out.append(int(item))
    return np.asarray(out, dtype=np.int64)


def run_in_batches(batch: Callable[[slice], np.ndarray], n_rows: int, batch_size: int,
                   on_batch: Callable[[int], object] | None = None) -> np.ndarray:
    """``(n_rows, C)`` float64: ``batch(rows)`` (a slice of rows -> probabilities) run
    ``batch_size`` rows at a time; ``on_batch(n)`` after each. No rows: a ``(0, 0)`` array."""
    outputs: np.ndarray | None = None
    for sl in iter_batches(int(n_rows), int(batch_size)):
        probs = batch(sl)
        if outputs is None:
            outputs = np.empty((int(n_rows), probs.shape[1]), dtype=np.float64)
        outputs[sl] = probs
        if on_batch is not None:
            on_batch(sl.stop - sl.start)
    return outputs if outputs is not None else np.empty((0, 0), dtype=np.float64)


class Classifier:
    """``(B, H, W, 3) uint8 RGB -> (B, C)`` outputs (logits or probabilities) of one model, and
    what the core may ask of it. Subclasses give :meth:`__call__`; see the module docstring."""

    #: class names indexed by class id, or None
    label_names: list[str] | None = None
    #: number of classes, or None when unknown before the first call
    num_classes: int | None = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities ``(B, C)`` (:func:`as_probabilities` of :meth:`__call__`)."""
        return as_probabilities(self(images))

    def view(self, image: Any) -> np.ndarray:
        """The image the model sees, as uint8 HWC RGB, from a path or an array."""
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            return load_image(image)
        return to_rgb_uint8(image)

    def input_table(self) -> np.ndarray | None:
        """The ``(3, 256)`` float32 table of the model's preprocessing when it maps each uint8
        value of a channel to one number (input plane ``c`` of an image is ``table[c][image[...,
        c]]``, no resize), else None (the default). With a table, LIME's perturbed inputs are
        composed already normalised (:meth:`compose`: copies only, the same numbers as
        preprocessing the perturbed images) and predicted by :meth:`predict_inputs`."""
        return None

    def predict_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities ``(B, C)`` of ``(B, 3, H, W)`` float32 model inputs made with
        :meth:`input_table`; a classifier that gives a table gives this too."""
        raise NotImplementedError("%s gives an input table but no predict_inputs"
                                  % type(self).__name__)

    def compose(self, image: np.ndarray, fill_image: np.ndarray, segments: np.ndarray,
                masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """What the model is given for the mask rows ``masks`` (kept superpixels from
        ``image``, the rest from ``fill_image``): with an :meth:`input_table`, the normalised
        ``(B, 3, H, W)`` float32 inputs, bit for bit the table applied to :func:`perturb`'s
        images; else those ``(B, H, W, 3)`` uint8 images. ``out``: a buffer to fill when it
        fits (else a new array)."""
        return self._composer(image, fill_image, segments)(masks, out)

    def _composer(self, image: np.ndarray, fill_image: np.ndarray, segments: np.ndarray
                  ) -> Callable[[np.ndarray, np.ndarray | None], np.ndarray]:
        """``compose(masks, out)`` for one image and fill (normalised once)."""
        table = self.input_table()
        if table is None:
            def images(masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
                return perturb(image, fill_image, segments, masks, out=out)
            return images
        image_planes = np.stack([table[c][image[..., c]] for c in range(3)])
        fill_planes = np.stack([table[c][fill_image[..., c]] for c in range(3)])

        def compose(masks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
            if out is not None and (out.shape != (len(masks),) + image_planes.shape
                                    or out.dtype != np.float32 or not out.flags.c_contiguous):
                out = None
            return compose_normalised(image_planes, fill_planes, segments, masks, out=out)
        return compose

    def predict_masks(self, image: np.ndarray, fill_image: np.ndarray, segments: np.ndarray,
                      masks: np.ndarray, batch_size: int,
                      on_batch: Callable[[int], object] | None = None) -> np.ndarray:
        """Probabilities ``(len(masks), C)`` of the perturbed images of ``masks`` (kept
        superpixels from ``image``, the rest from ``fill_image``), ``batch_size`` at a time:
        each batch composed (:meth:`compose`, into one reused buffer) and predicted
        (:meth:`predict_inputs` with an :meth:`input_table`, else :meth:`predict`), inside
        :meth:`hold_weights`. ``on_batch(n)`` is called after every ``n`` rows done
        (progress)."""
        image = np.asarray(image)
        compose = self._composer(image, np.asarray(fill_image), segments)
        predict = self.predict if self.input_table() is None else self.predict_inputs
        buffer: list[np.ndarray | None] = [None]

        def batch(sl: slice) -> np.ndarray:
            inputs = buffer[0] = compose(masks[sl], buffer[0])
            return predict(inputs)

        with self.hold_weights():
            return run_in_batches(batch, len(masks), batch_size, on_batch)

    def hold_weights(self) -> ContextManager[Any]:
        """A block in which the weights do not change (one explanation, one NormLIME build)."""
        return contextlib.nullcontext(self)

    def suggest_batch_size(self, image: np.ndarray) -> int:
        """The batch size to use for ``image`` when the user gives none."""
        return 50

    def fingerprint(self) -> str | None:
        """A string that changes when what the model computes changes (weights, preprocessing),
        or None when unknown: NormLIME weights files are reused only for an equal fingerprint."""
        return None

    @property
    def backend_info(self) -> dict[str, Any]:
        """What ran the last batch and why (``{'backend': ..., ...}``); empty when not known."""
        return {}


class FunctionClassifier(Classifier):
    """A plain function ``images -> outputs`` as a :class:`Classifier`.

    Args:
        fn: ``(B, H, W, 3) uint8 -> (B, C)`` logits or probabilities.
        label_names: optional class names.
        fingerprint: optional string naming what ``fn`` computes (see
            :meth:`Classifier.fingerprint`).
    """

    def __init__(self, fn: Callable[[np.ndarray], Any],
                 label_names: Sequence[str] | None = None, fingerprint: str | None = None):
        if not callable(fn):
            raise TypeError("a classifier must be callable (images -> probabilities), got %s"
                            % type(fn).__name__)
        self.fn = fn
        self.label_names = list(label_names) if label_names is not None else None
        self.num_classes = len(self.label_names) if self.label_names is not None else None
        self._fingerprint = fingerprint

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.fn(images)

    def fingerprint(self) -> str | None:
        return self._fingerprint


#: what the core takes as a model: a :class:`Classifier`, or a function ``images -> outputs``
ClassifierLike = Union[Classifier, Callable[[np.ndarray], Any]]


def as_classifier(model: ClassifierLike, label_names: Sequence[str] | None = None
                  ) -> Classifier:
    """``model`` itself when it is a :class:`Classifier`, else a :class:`FunctionClassifier` of
    the callable ``model``."""
    if isinstance(model, Classifier):
        return model
    return FunctionClassifier(model, label_names=label_names)
