"""LIME for images: explain one prediction of any ``images -> probabilities`` function.

The explainer takes its parts as arguments (segmenter, fill, kernel, surrogate) and streams the
perturbed images through the classifier batch by batch, so memory does not grow with
``num_samples``. A ``seed`` fixes segmentation tie-breaking and mask sampling: two runs with the
same seed are identical.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.lime import LimeExplainer
    >>> def classifier(images):  # "class 1" = the left half is bright
    ...     left = images[:, :, :16].mean(axis=(1, 2, 3)) / 255.0
    ...     return np.stack([1 - left, left], axis=1)
    >>> img = np.full((32, 32, 3), 255, np.uint8)
    >>> seg = np.repeat(np.arange(4)[None, :], 32, axis=0).repeat(8, axis=1)  # 4 vertical stripes
    >>> exp = LimeExplainer(classifier, num_samples=200, seed=0).explain(img, segments=seg)
    >>> sorted(exp.top_segments(1, 2).tolist())
    [0, 1]
"""
import contextlib
import time

import numpy as np

from .explanation import Explanation
from .images import to_rgb_uint8
from .perturbation import iter_batches, make_fill, perturb, sample_masks
from .segmentation import make_segmenter, relabel
from .surrogate import WeightedRidge, cosine_distance_to_all_on, exponential_kernel

__all__ = ["LimeExplainer", "as_probabilities", "select_labels", "check_positive_int",
           "hold_weights"]


def hold_weights(classifier_fn):
    """``classifier_fn.hold_weights()`` (a block in which its weights are verified once, not at
    every call: :meth:`paddlex_interpret.backends.ModelRunner.hold_weights`) when it has one,
    else a no-op context. Use it around many calls with weights that cannot change (one LIME,
    a NormLIME build, a checkpoint)."""
    hold = getattr(classifier_fn, "hold_weights", None)
    return hold() if callable(hold) else contextlib.nullcontext()


def check_positive_int(value, name):
    """Return ``int(value)`` or raise ValueError naming ``name`` when it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError("%s must be an integer >= 1, got %r" % (name, value))
    return int(value)


def as_probabilities(outputs):
    """Model outputs ``(B, C)`` as probabilities: rows that do not sum to 1 get a softmax
    (PaddleX 1.3's rule)."""
    out = np.asarray(outputs, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError("the classifier must return a (batch, num_classes) array, got shape %s"
                         % (out.shape,))
    sums = out.sum(axis=1)
    bad = np.abs(sums - 1.0) > 1e-4
    if bad.any():
        z = out[bad] - out[bad].max(axis=1, keepdims=True)
        e = np.exp(z)
        out[bad] = e / e.sum(axis=1, keepdims=True)
    return out


def select_labels(probabilities, labels=None, top_k=1):
    """The labels to explain: ``labels`` if given (validated), else the ``top_k`` most probable."""
    n = len(probabilities)
    if labels is not None:
        labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        if labels.size == 0 or labels.min() < 0 or labels.max() >= n:
            raise ValueError("labels %s out of range for a model with %d classes"
                             % (labels.tolist(), n))
        return labels
    top_k = check_positive_int(top_k, "top_k")
    return np.argsort(-np.asarray(probabilities), kind="stable")[:min(top_k, n)].astype(np.int64)


class LimeExplainer:
    """Explain predictions of ``classifier_fn`` (``(B, H, W, 3) uint8 -> (B, C)`` probabilities
    or logits) with LIME.

    Args:
        classifier_fn: the model side; any callable, e.g. :class:`paddlex_interpret.PaddleXClassifier`.
        segmenter: ``'quickshift'`` (PaddleX 1.3 settings), ``'slic'``, ``'felzenszwalb'`` or a callable.
        segmenter_params: overrides for the named segmenter.
        fill: what hidden superpixels become: ``'black'`` (PaddleX 1.3), ``'mean'``, ``'blur'``, a colour.
        kernel_width: width of the exponential kernel on cosine distance (PaddleX 1.3: 0.25).
        kernel: optional ``f(distances) -> weights`` replacing the exponential kernel.
        surrogate: an object with ``fit(X, Y, sample_weight, prior=None)``; default
            ``WeightedRidge(alpha=1)`` (PaddleX 1.3's Ridge).
        num_samples, batch_size: perturbed samples and the classifier batch size (``'auto'``:
            the classifier's ``suggest_batch_size(image)`` if it has one, else 50).
        seed: makes segmentation and sampling repeatable.
        label_names: class names for the result.
        progress: show a tqdm progress bar.
        adaptive: off by default (PaddleX 1.3 draws exactly ``num_samples``). ``True``, a dict of
            :class:`~paddlex_interpret.core.adaptive.AdaptiveSampling` arguments or an instance:
            draw samples in rounds and stop once the top superpixels are certified (Slack et al.
            2021); ``num_samples`` is then the cap and ``settings['num_samples_used']`` tells
            how many were drawn.

    A classifier may offer ``hold_weights()`` (a context in which its weights are verified once)
    and ``predict_masks(image, fill_image, segments, masks, batch_size)`` (the perturbed batches
    composed and run by the classifier itself, same numbers as ``classifier(perturb(...))``): both
    are used when present (``predict_masks`` not with ``progress``).
    """

    def __init__(self, classifier_fn, segmenter="quickshift", segmenter_params=None, fill="black",
                 kernel_width=0.25, kernel=None, surrogate=None, num_samples=3000, batch_size=50,
                 seed=0, label_names=None, progress=False, adaptive=None):
        from .adaptive import resolve_adaptive

        self.classifier_fn = classifier_fn
        self.seed = seed
        self.segmenter = make_segmenter(segmenter, seed=seed, **(segmenter_params or {}))
        self.fill = fill
        self.kernel_width = float(kernel_width)
        self.kernel = kernel
        self.surrogate = surrogate if surrogate is not None else WeightedRidge(alpha=1.0)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.batch_size = ("auto" if isinstance(batch_size, str) and batch_size == "auto"
                           else check_positive_int(batch_size, "batch_size"))
        self.label_names = label_names if label_names is not None else getattr(
            classifier_fn, "label_names", None)
        self.progress = progress
        self.adaptive = resolve_adaptive(adaptive)
        self.last_timings = {}

    # --------------------------------------------------------------- pieces
    def predict(self, images):
        return as_probabilities(self.classifier_fn(images))

    def segment(self, image):
        return self.segmenter(image)

    def hold_weights(self):
        """The classifier's ``hold_weights()`` context, or a no-op (:func:`hold_weights`)."""
        return hold_weights(self.classifier_fn)

    def _fast_predict(self):
        """The classifier's ``predict_masks`` when it can replace the batch loop."""
        fast = getattr(self.classifier_fn, "predict_masks", None)
        if callable(fast) and not self.progress and type(self).predict is LimeExplainer.predict:
            return fast
        return None

    def auto_batch_size(self, image, num_samples=None):
        """``batch_size='auto'``: the classifier's ``suggest_batch_size(image)`` (else 50), lowered
        to the largest size in ``[suggested / 2, suggested]`` that divides ``num_samples`` when
        there is one (every batch then has the same shape: no extra warm-up of a last, smaller
        batch in an inference engine)."""
        suggest = getattr(self.classifier_fn, "suggest_batch_size", None)
        size = check_positive_int(int(suggest(image)), "batch_size") if callable(suggest) else 50
        if num_samples:
            for b in range(size, max(1, (size + 1) // 2) - 1, -1):
                if num_samples % b == 0:
                    return b
        return size

    def predict_masks(self, image, fill_image, segments, masks, batch_size):
        """Probabilities ``(len(masks), C)`` of the perturbed images of ``masks``."""
        fast = self._fast_predict()
        if fast is not None:
            with self.hold_weights():
                return as_probabilities(fast(image, fill_image, segments, masks, batch_size))
        outputs = None
        buffer = None
        for sl in iter_batches(len(masks), batch_size):
            buffer = perturb(image, fill_image, segments, masks[sl], out=buffer)
            probs = self.predict(buffer)
            if outputs is None:
                outputs = np.empty((len(masks), probs.shape[1]), dtype=np.float64)
            outputs[sl] = probs
        return outputs

    def sample(self, image, segments, num_samples, batch_size, seed):
        """Masks ``(N, d)`` and the classifier's probabilities ``(N, C)`` on the perturbed images."""
        rng = np.random.default_rng(seed)
        masks = sample_masks(num_samples, int(segments.max()) + 1, rng)
        fill_image = make_fill(image, segments, self.fill)
        if self._fast_predict() is not None:
            return masks, self.predict_masks(image, fill_image, segments, masks, batch_size)
        outputs = None
        buffer = None
        batches = iter_batches(num_samples, batch_size)
        if self.progress:
            from tqdm import tqdm

            batches = tqdm(list(batches), desc="LIME", unit="batch")
        for sl in batches:
            buffer = perturb(image, fill_image, segments, masks[sl], out=buffer)
            probs = self.predict(buffer)
            if outputs is None:
                outputs = np.empty((num_samples, probs.shape[1]), dtype=np.float64)
            outputs[sl] = probs
        return masks, outputs

    def _image_probabilities(self, image, masks, outputs):
        """The prediction of the image itself: the output of the first sample when its mask keeps
        every superpixel (LIME's first sample), so no extra forward pass (and no batch of one)."""
        if len(masks) and masks[0].all():
            return outputs[0].copy()
        return self.predict(image[None])[0]

    def fit(self, masks, outputs, labels, prior=None):
        distances = cosine_distance_to_all_on(masks)
        weights = (self.kernel(distances) if self.kernel is not None
                   else exponential_kernel(distances, self.kernel_width))
        return self.surrogate.fit(masks, outputs[:, labels], weights, prior=prior)

    def settings(self, num_samples, batch_size, seed):
        s = {"method": "lime", "num_samples": num_samples, "batch_size": batch_size, "seed": seed,
             "fill": self.fill if isinstance(self.fill, str) else "custom",
             "kernel": "exponential" if self.kernel is None else "custom",
             "kernel_width": self.kernel_width}
        s.update(self.segmenter.describe())
        s.update(getattr(self.surrogate, "describe", lambda: {})())
        return s

    # --------------------------------------------------------------- explain
    def explain(self, image, labels=None, top_k=1, segments=None, num_samples=None,
                batch_size=None, seed=None, prior=None):
        """Explain ``image`` (array; converted to uint8 RGB). Returns an :class:`Explanation`.

        ``labels`` names the classes to explain, else the ``top_k`` predicted ones; ``segments``
        gives a label map instead of segmenting; ``prior`` (``(L, d)`` or a function
        ``(segments, labels) -> (L, d)``) feeds a GLIME surrogate.
        """
        num_samples = check_positive_int(num_samples or self.num_samples, "num_samples")
        seed = self.seed if seed is None else seed
        image = to_rgb_uint8(image)
        batch_size = batch_size or self.batch_size
        if isinstance(batch_size, str) and batch_size == "auto":
            batch_size = self.auto_batch_size(image, num_samples)
        batch_size = check_positive_int(batch_size, "batch_size")
        adaptive_info = None
        with self.hold_weights():
            t0 = time.perf_counter()
            segments = self.segment(image) if segments is None else relabel(segments, image.shape)
            t1 = time.perf_counter()
            n_classes = getattr(self.classifier_fn, "num_classes", None)
            if labels is not None and isinstance(n_classes, int):
                select_labels(np.zeros(n_classes), labels, top_k)  # bad labels fail first
            if self.adaptive is None:
                masks, outputs = self.sample(image, segments, num_samples, batch_size, seed)
                probs = self._image_probabilities(image, masks, outputs)
                labels = select_labels(probs, labels, top_k)
            else:  # the stop rule needs the labels before sampling
                probs = None if labels is not None else self.predict(image[None])[0]
                if probs is not None:
                    labels = select_labels(probs, labels, top_k)
                masks, outputs, adaptive_info, prior = self._sample_adaptive(
                    image, segments, np.atleast_1d(np.asarray(labels, dtype=np.int64)),
                    num_samples, batch_size, seed, prior)
                if probs is None:
                    probs = self._image_probabilities(image, masks, outputs)
                    labels = select_labels(probs, labels, top_k)
            t2 = time.perf_counter()
        if callable(prior):
            prior = prior(segments, labels)
        fit = self.fit(masks, outputs, labels, prior=prior)
        t3 = time.perf_counter()
        self.last_timings = {"segment": t1 - t0, "sample_and_predict": t2 - t1, "fit": t3 - t2}
        settings = self.settings(num_samples, batch_size, seed)
        if adaptive_info is not None:
            settings.update(adaptive_info)
        if prior is not None and getattr(self.surrogate, "beta", 0) > 0:
            settings["method"] = "glime"
        return Explanation(image=image, segments=segments, probabilities=probs, labels=labels,
                           weights=fit.coef, intercepts=fit.intercept, scores=fit.score,
                           local_predictions=fit.local_prediction, label_names=self.label_names,
                           settings=settings)

    def _sample_adaptive(self, image, segments, labels, num_samples, batch_size, seed, prior):
        """Adaptive sampling (:mod:`~paddlex_interpret.core.adaptive`): the masks plain LIME would
        draw, consumed in rounds until the top superpixels are certified."""
        from .adaptive import run_adaptive

        rng = np.random.default_rng(seed)
        masks = sample_masks(num_samples, int(segments.max()) + 1, rng)
        fill_image = make_fill(image, segments, self.fill)
        if callable(prior):
            prior = prior(segments, labels)
        used, outputs, info = run_adaptive(
            self, image, segments, fill_image, masks, labels, batch_size, self.adaptive,
            lambda part: self.predict_masks(image, fill_image, segments, part, batch_size),
            prior=prior)
        return masks[:used], outputs, info, prior
