"""LIME for images: explain one prediction of any classifier.

The explainer takes its parts as arguments (segmenter, fill, sampler, kernel, surrogate; captum's
``LimeBase`` style: GLIME is this explainer with another sampler and surrogate) and streams the
perturbed images through the classifier batch by batch, so memory does not grow with
``num_samples``. A ``seed`` fixes segmentation tie-breaking and mask sampling.

One pipeline: :meth:`LimeExplainer.run` segments, draws the masks, runs the model on them
(:meth:`Classifier.predict_masks <paddlex_interpret.core.classifier.Classifier.predict_masks>`),
fits the surrogate and returns a :class:`LimeRun` that keeps the masks, outputs and sample
weights for whoever needs them (split-half stability, adaptive sampling, metrics);
:meth:`LimeExplainer.explain` returns its :class:`~paddlex_interpret.core.explanation.Explanation`.

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
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ContextManager, Mapping, Optional, Sequence

import numpy as np
import numpy.typing as npt

from .budget import AutoBudget, resolve_budget
from .classifier import (ClassifierLike, as_classifier, as_probabilities, check_positive_int,
                         resolve_labels)
from .explanation import Explanation
from .fill import AutoFill, FillSpec, make_fill, resolve_fill
from .images import to_rgb_uint8
from .sampling import Kernel, Sampler, make_kernel, make_sampler
from .segmentation import SegmenterSpec, make_segmenter, relabel
from .surrogate import Prior, SurrogateFit, as_surrogate
from .uncertainty import ridge_covariance

__all__ = ["LimeExplainer", "LimeRun", "select_labels", "check_num_samples", "DEFAULT_SAMPLER",
           "DEFAULT_SEGMENTER", "DEFAULT_FILL", "DEFAULT_NUM_SAMPLES"]

#: the defaults every entry point shares (``LimeExplainer``, ``lime``, ``normlime``, ``glime``,
#: the training hook and callback, the CLI); BENCHMARKS.md, "Time to a stable explanation"
DEFAULT_SAMPLER = "stratified"
DEFAULT_SEGMENTER = "quickshift"
DEFAULT_FILL = "auto"
DEFAULT_NUM_SAMPLES = "auto"


def check_num_samples(value: int | str, name: str = "num_samples") -> int | str:
    """``'auto'`` (sample until the top superpixels are certified,
    :mod:`~paddlex_interpret.core.budget`) or an int >= 1 (exactly that many samples)."""
    if isinstance(value, str):
        if value == "auto":
            return value
        raise ValueError("%s must be 'auto' or an integer >= 1, got %r" % (name, value))
    return check_positive_int(value, name)


def select_labels(probabilities: np.ndarray, labels: npt.ArrayLike | None = None,
                  top_k: int = 1) -> np.ndarray:
    """The labels to explain: ``labels`` (ids) if given (validated), else the ``top_k`` most
    probable."""
    n = len(probabilities)
    if labels is not None:
        labels = np.atleast_1d(np.asarray(labels, dtype=np.int64))
        if labels.size == 0 or labels.min() < 0 or labels.max() >= n:
            raise ValueError("labels %s out of range for a model with %d classes"
                             % (labels.tolist(), n))
        return labels
    top_k = check_positive_int(top_k, "top_k")
    return np.argsort(-np.asarray(probabilities), kind="stable")[:min(top_k, n)].astype(np.int64)


@dataclass
class LimeRun:
    """One explanation and what it was fitted on: ``masks`` ``(N, d)``, the model's
    probabilities ``outputs`` ``(N, C)``, the surrogate's ``sample_weight`` ``(N,)``, the
    ``fill_image`` and the ``prior`` (``(L, d)`` or None)."""

    explanation: Explanation
    masks: np.ndarray
    outputs: np.ndarray
    sample_weight: np.ndarray
    fill_image: np.ndarray
    prior: Optional[np.ndarray] = None


class LimeExplainer:
    """Explain predictions of ``classifier_fn`` with LIME.

    Args:
        classifier_fn: a :class:`~paddlex_interpret.core.classifier.Classifier` (e.g.
            :class:`paddlex_interpret.PaddleXClassifier`) or a function ``(B, H, W, 3) uint8 ->
            (B, C)`` probabilities or logits.
        segmenter: ``'quickshift'`` (default, PaddleX 1.3's settings), ``'coarse'`` (its
            superpixels merged into at most 25 regions: a stable top 5 at 1000 calls, less
            faithful; :func:`~paddlex_interpret.core.segmentation.merge_regions`), ``'slic'``,
            ``'felzenszwalb'`` or a callable.
        segmenter_params: overrides for the named segmenter.
        fill: what hidden superpixels become: ``'auto'`` (chosen per image by measurement,
            :mod:`~paddlex_interpret.core.fill`; or an ``AutoFill`` with more candidates),
            ``'black'`` (PaddleX 1.3), ``'grey'``, ``'median'``, ``'mean'``, ``'blur'``, a colour
            or an image (:func:`~paddlex_interpret.core.fill.make_fill`).
        sampler: ``'stratified'`` (default: complementary pairs from LIME's kernel-weighted
            distribution, the number kept stratified; LIME's estimand with less noise),
            ``'bernoulli'`` (LIME's and PaddleX 1.3's: with an int ``num_samples``, their bits),
            ``'paired_kernel'`` or a :class:`~paddlex_interpret.core.sampling.Sampler`.
        kernel_width: width of the exponential kernel on cosine distance (PaddleX 1.3: 0.25).
        kernel: optional ``f(distances) -> weights`` replacing the exponential kernel.
        surrogate: a :class:`~paddlex_interpret.core.surrogate.Surrogate` (or a scikit-learn
            regressor); default ``WeightedRidge(alpha=1)`` (PaddleX 1.3's Ridge).
        num_samples: ``'auto'`` (default: rounds until the top superpixels of every explained
            label are certified, or ``budget``'s cap; :mod:`~paddlex_interpret.core.budget`) or
            an int: exactly that many samples.
        budget: the stop rule of ``'auto'``: an
            :class:`~paddlex_interpret.core.budget.AutoBudget` or a dict of its arguments
            (``top_k=5``, ``confidence=0.95``, ``cap=1000``).
        batch_size: the classifier batch size (``'auto'``: its ``suggest_batch_size``).
        seed: makes segmentation and sampling repeatable.
        label_names: class names for the result (default the classifier's).
        progress: show a tqdm progress bar over the samples (the numbers do not change).
        adaptive: off by default (PaddleX 1.3 draws exactly ``num_samples``). ``True``, a dict of
            :class:`~paddlex_interpret.core.adaptive.AdaptiveSampling` arguments or an instance:
            draw samples in rounds and stop once the top superpixels are certified (Slack et al.
            2021); ``num_samples`` is then the cap and ``settings['num_samples_used']`` tells
            how many were drawn.
    """

    def __init__(self, classifier_fn: ClassifierLike, segmenter: SegmenterSpec = DEFAULT_SEGMENTER,
                 segmenter_params: Mapping[str, Any] | None = None,
                 fill: FillSpec | AutoFill = DEFAULT_FILL, kernel_width: float = 0.25,
                 kernel: Kernel | None = None, surrogate: Any = None,
                 num_samples: int | str = DEFAULT_NUM_SAMPLES, batch_size: int | str = 50,
                 seed: int = 0, label_names: Sequence[str] | None = None, progress: bool = False,
                 adaptive: Any = None, sampler: str | Sampler = DEFAULT_SAMPLER,
                 budget: AutoBudget | dict[str, Any] | None = None):
        from .adaptive import resolve_adaptive

        self.classifier = as_classifier(classifier_fn)
        self.seed = seed
        self.segmenter = make_segmenter(segmenter, seed=seed, **(segmenter_params or {}))
        self.fill = fill
        self._fill = resolve_fill(fill)
        self.sampler = make_sampler(sampler)
        self.kernel_width = float(kernel_width)
        self.kernel = kernel
        self.kernel_fn = make_kernel(kernel, kernel_width)
        self.surrogate = as_surrogate(surrogate)
        self.num_samples = check_num_samples(num_samples)
        self.budget = resolve_budget(budget)
        self.batch_size = ("auto" if isinstance(batch_size, str) and batch_size == "auto"
                           else check_positive_int(batch_size, "batch_size"))
        self.label_names = (list(label_names) if label_names is not None
                            else self.classifier.label_names)
        self.progress = progress
        self.adaptive = resolve_adaptive(adaptive)
        self.last_timings: dict[str, float] = {}

    # --------------------------------------------------------------- pieces
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Probabilities ``(B, C)`` of uint8 images."""
        return as_probabilities(self.classifier.predict(images))

    def segment(self, image: np.ndarray) -> np.ndarray:
        return self.segmenter(image)

    def hold_weights(self) -> ContextManager[Any]:
        """The classifier's :meth:`~paddlex_interpret.core.classifier.Classifier.hold_weights`."""
        return self.classifier.hold_weights()

    def auto_batch_size(self, image: np.ndarray, num_samples: int | None = None) -> int:
        """``batch_size='auto'``: the classifier's ``suggest_batch_size(image)``, lowered to the
        largest size in ``[suggested / 2, suggested]`` that divides ``num_samples`` when there is
        one (every batch then has the same shape: no warm-up of a last, smaller batch in an
        inference engine)."""
        size = check_positive_int(int(self.classifier.suggest_batch_size(image)), "batch_size")
        if num_samples:
            for b in range(size, max(1, (size + 1) // 2) - 1, -1):
                if num_samples % b == 0:
                    return b
        return size

    def draw(self, n_segments: int, num_samples: int, seed: int) -> np.ndarray:
        """The sampler's ``(num_samples, n_segments)`` masks for ``seed`` (first row all on)."""
        masks = np.asarray(self.sampler.sample(num_samples, n_segments,
                                               np.random.default_rng(seed), self.kernel_fn),
                           dtype=bool)
        if masks.shape != (num_samples, n_segments):
            raise ValueError("the sampler returned masks of shape %s, expected %s"
                             % (masks.shape, (num_samples, n_segments)))
        return masks

    def sample_weight(self, masks: np.ndarray) -> np.ndarray:
        """The surrogate's sample weights of ``masks`` (the sampler's, with this kernel)."""
        return np.asarray(self.sampler.sample_weight(masks, self.kernel_fn), dtype=np.float64)

    def predict_masks(self, image: np.ndarray, fill_image: np.ndarray, segments: np.ndarray,
                      masks: np.ndarray, batch_size: int) -> np.ndarray:
        """Probabilities ``(len(masks), C)`` of the perturbed images of ``masks``."""
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(masks), desc="LIME samples", unit="img", leave=False)
        try:
            with self.hold_weights():
                out = self.classifier.predict_masks(image, fill_image, segments, masks,
                                                    batch_size,
                                                    on_batch=None if bar is None else bar.update)
        finally:
            if bar is not None:
                bar.close()
        return as_probabilities(out)

    def fill_for(self, image: np.ndarray, segments: np.ndarray
                 ) -> tuple[np.ndarray, dict[str, Any]]:
        """``(fill image, settings)``: the image hidden superpixels take, and what was chosen
        (for ``fill='auto'``: the candidate and every candidate's score)."""
        if isinstance(self._fill, AutoFill):
            choice = self._fill.choose(self.classifier, image, segments)
            return choice.fill_image, choice.describe()
        return make_fill(image, segments, self._fill), {}

    def sample(self, image: np.ndarray, segments: np.ndarray, num_samples: int, batch_size: int,
               seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Masks ``(N, d)`` and the classifier's probabilities ``(N, C)`` on the perturbed images."""
        masks = self.draw(int(segments.max()) + 1, num_samples, seed)
        fill_image, _ = self.fill_for(image, segments)
        return masks, self.predict_masks(image, fill_image, segments, masks, batch_size)

    def fit(self, masks: np.ndarray, outputs: np.ndarray, labels: np.ndarray,
            prior: np.ndarray | None = None, sample_weight: np.ndarray | None = None
            ) -> SurrogateFit:
        """The surrogate fitted on ``masks`` and the ``labels`` columns of ``outputs``."""
        weights = self.sample_weight(masks) if sample_weight is None else sample_weight
        return self.surrogate.fit(masks, outputs[:, labels], weights, prior=prior)

    def settings(self, num_samples: int | str, batch_size: int, seed: int) -> dict[str, Any]:
        fill = self.fill if isinstance(self.fill, str) else (
            "auto" if isinstance(self._fill, AutoFill) else "custom")
        s = {"method": "lime", "num_samples": num_samples, "batch_size": batch_size, "seed": seed,
             "fill": fill,
             "kernel": "exponential" if self.kernel is None else "custom",
             "kernel_width": self.kernel_width}
        s.update(self.segmenter.describe())
        s.update(self.surrogate.describe())
        s.update(self.sampler.describe())
        return s

    # --------------------------------------------------------------- explain
    def explain(self, image: npt.ArrayLike, labels: Any = None, top_k: int = 1,
                segments: npt.ArrayLike | None = None, num_samples: int | str | None = None,
                batch_size: int | str | None = None, seed: int | None = None,
                prior: Prior = None) -> Explanation:
        """Explain ``image``; returns an :class:`~paddlex_interpret.core.explanation.Explanation`
        (see :meth:`run`)."""
        return self.run(image, labels=labels, top_k=top_k, segments=segments,
                        num_samples=num_samples, batch_size=batch_size, seed=seed,
                        prior=prior).explanation

    def run(self, image: npt.ArrayLike, labels: Any = None, top_k: int = 1,
            segments: npt.ArrayLike | None = None, num_samples: int | str | None = None,
            batch_size: int | str | None = None, seed: int | None = None,
            prior: Prior = None) -> LimeRun:
        """Explain ``image`` (array; converted to uint8 RGB); returns a :class:`LimeRun`.

        ``labels`` names the classes to explain (ids, or class names when the classifier has
        ``label_names``), else the ``top_k`` predicted ones; ``segments`` gives a label map
        instead of segmenting; ``prior`` (``(L, d)`` or a function ``(segments, labels) ->
        (L, d)``) feeds a GLIME surrogate. The prediction explained is the output of the first
        sample, the unperturbed image (no separate forward pass). ``num_samples='auto'``
        samples in rounds until the top superpixels are certified (:mod:`.budget`).
        """
        num_samples = check_num_samples(self.num_samples if num_samples is None else num_samples)
        auto = num_samples == "auto"
        seed = self.seed if seed is None else seed
        image = to_rgb_uint8(image)
        labels = resolve_labels(labels, self.label_names)
        with self.hold_weights():
            t0 = time.perf_counter()
            segments = self.segment(image) if segments is None else relabel(segments, image.shape)
            t1 = time.perf_counter()
            d = int(segments.max()) + 1
            batch_size = self._batch_size(batch_size, image,
                                          None if isinstance(num_samples, str) else num_samples)
            plan = self.budget.plan(d, batch_size) if auto else None
            cap = plan[-1] if plan is not None else int(num_samples)
            n_classes = self.classifier.num_classes
            if labels is not None and isinstance(n_classes, int):
                select_labels(np.zeros(n_classes), labels, top_k)  # bad labels fail first
            masks = self.draw(d, cap, seed)
            fill_image, fill_info = self.fill_for(image, segments)
            masks, outputs, probs, labels, info, prior = self._sample(
                image, segments, fill_image, masks, plan, labels, top_k, batch_size, prior)
            t2 = time.perf_counter()
        if callable(prior):
            prior = prior(segments, labels)
        assert not callable(prior)
        weights = self.sample_weight(masks)
        fit = self.fit(masks, outputs, labels, prior=prior, sample_weight=weights)
        cov = self.covariance(masks, outputs, labels, weights, fit, prior)
        t3 = time.perf_counter()
        self.last_timings = {"segment": t1 - t0, "sample_and_predict": t2 - t1, "fit": t3 - t2}
        settings = self.settings(num_samples, batch_size, seed)
        settings["num_samples_used"] = int(len(masks))
        settings.update(fill_info)
        backend = self.classifier.backend_info
        if backend:
            settings.update(backend=backend.get("backend"), path=backend.get("path"))
        settings.update(info)
        if prior is not None and self.surrogate.uses_prior:
            settings["method"] = "glime"
        explanation = Explanation(
            image=image, segments=segments, probabilities=probs, labels=labels,
            weights=fit.coef, intercepts=fit.intercept, scores=fit.score,
            local_predictions=fit.local_prediction, label_names=self.label_names,
            settings=settings, weight_cov=cov)
        return LimeRun(explanation, masks, outputs, weights, fill_image, prior)

    def _sample(self, image, segments, fill_image, masks, plan, labels, top_k, batch_size,
                prior):
        """The model on ``masks`` (all of them, in adaptive rounds, or the looks of ``plan`` for
        ``num_samples='auto'``); returns ``(masks used, outputs, probabilities of the image,
        labels, settings of the stop rule, prior)``."""
        def predict(part):
            return self.predict_masks(image, fill_image, segments, part, batch_size)

        if self.adaptive is not None:  # the stop rule needs the labels before sampling
            probs = None if labels is not None else self.predict(image[None])[0]
            if probs is not None:
                labels = select_labels(probs, labels, top_k)
            masks, outputs, info, prior = self._sample_adaptive(
                image, segments, fill_image, masks, labels, batch_size, prior)
            if probs is None:
                probs = self._image_probabilities(image, masks, outputs)
                labels = select_labels(probs, labels, top_k)
            return masks, outputs, probs, labels, info, prior
        if plan is not None:
            from .budget import run_budget

            return run_budget(self, masks, plan, predict,
                              lambda probs: select_labels(probs, labels, top_k), segments, prior,
                              image)
        outputs = predict(masks)
        probs = self._image_probabilities(image, masks, outputs)
        return masks, outputs, probs, select_labels(probs, labels, top_k), {}, prior

    def _batch_size(self, batch_size: int | str | None, image: np.ndarray,
                    num_samples: int | None) -> int:
        batch_size = batch_size or self.batch_size
        if isinstance(batch_size, str) and batch_size == "auto":
            batch_size = self.auto_batch_size(image, num_samples)
        return check_positive_int(batch_size, "batch_size")

    def covariance(self, masks: np.ndarray, outputs: np.ndarray, labels: np.ndarray,
                   sample_weight: np.ndarray, fit: SurrogateFit, prior: np.ndarray | None = None
                   ) -> np.ndarray | None:
        """``(L, d, d)`` covariance of the fitted weights over the draw of the masks
        (:func:`~paddlex_interpret.core.uncertainty.ridge_covariance`), or None when the
        surrogate is not a ridge this module knows."""
        ridge = self.surrogate.ridge_diag(fit, len(labels), masks.shape[1], prior)
        if ridge is None or len(masks) <= masks.shape[1] + 1:
            return None
        return ridge_covariance(masks, outputs[:, labels], sample_weight, fit.coef,
                                fit.intercept, ridge,
                                cluster_size=getattr(self.sampler, "cluster_size", 1))

    def _image_probabilities(self, image, masks, outputs):
        """The prediction of the image itself: the output of the first sample when its mask keeps
        every superpixel (LIME's first sample), so no extra forward pass (and no batch of one)."""
        if len(masks) and masks[0].all():
            return outputs[0].copy()
        return self.predict(image[None])[0]

    def _sample_adaptive(self, image, segments, fill_image, masks, labels, batch_size, prior):
        """Adaptive sampling (:mod:`~paddlex_interpret.core.adaptive`): the masks plain LIME would
        draw, consumed in rounds until the top superpixels are certified."""
        from .adaptive import run_adaptive

        policy = self.adaptive
        assert policy is not None, "adaptive sampling is off"
        if callable(prior):
            prior = prior(segments, labels)
        used, outputs, info = run_adaptive(
            self, masks, labels, batch_size, policy,
            lambda part: self.predict_masks(image, fill_image, segments, part, batch_size),
            prior=prior)
        return masks[:used], outputs, info, prior
