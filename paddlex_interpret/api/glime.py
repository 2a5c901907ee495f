"""``glime``: LIME with a global NormLIME prior, estimated with variance-reduced sampling.

Example::

    from paddlex_interpret.api.glime import glime
    exp = glime("val/0001.png", model, "prior.npz", beta="auto")
    exp.settings["beta"]
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import numpy.typing as npt

from ..core.budget import AutoBudget
from ..core.normlime.concepts import ConceptCodebook
from ..core.explanation import Explanation
from ..core.fill import AutoFill, FillSpec, resolve_fill
from ..core.images import ImageSource
from ..core.lime import (DEFAULT_FILL, DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLER, DEFAULT_SEGMENTER,
                         LimeExplainer)
from ..core.normlime import GlobalWeights, glime_prior
from ..core.sampling import Sampler
from ..core.segmentation import SegmenterSpec
from ..core.surrogate import EvidenceRidge, WeightedRidge
from .lime import prepare
from .output import save_explanation
from .weights import resolve_codebook

__all__ = ["glime"]


def glime(img_file_or_array: ImageSource, model_or_classifier: Any,
          global_weights: GlobalWeights | str, codebook: ConceptCodebook | str | None = None,
          beta: float | str = 10.0, num_samples: int | str = DEFAULT_NUM_SAMPLES,
          batch_size: int | str = 50, *, seed: int = 0, labels: Any = None, top_k: int = 1,
          alpha: float = 1.0, tau: float = 1.0, prior_normalize: str | None = "l1",
          prior_area_exponent: float = 0.5, sampler: str | Sampler = DEFAULT_SAMPLER,
          surrogate: Any = None, segmenter: SegmenterSpec = DEFAULT_SEGMENTER,
          segmenter_params: Mapping[str, Any] | None = None,
          fill: FillSpec | AutoFill = DEFAULT_FILL, kernel_width: float = 0.25,
          segments: npt.ArrayLike | None = None, save_dir: str | None = None,
          progress: bool = False, budget: AutoBudget | dict[str, Any] | None = None
          ) -> Explanation:
    """GLIME: LIME with a global NormLIME prior, estimated with variance-reduced sampling.

    Two parts, both pluggable:

    * the **surrogate** (default ``WeightedRidge(alpha, beta, tau)``) minimises
      ``sum_i pi_i (y_i - b - x_i.w)^2 + alpha ||w||^2 + beta ||w - tau w0||^2`` where ``w0[j]``
      is the global weight (``global_weights``) of superpixel ``j``'s concept for the explained
      class times ``(relative area) ** prior_area_exponent``, scaled to unit L1 norm per class
      (``prior_normalize='l1'``; None keeps the raw weights as PaddleX 1.3 / InterpretDL did); see
      :func:`~paddlex_interpret.core.normlime.glime_prior`. ``surrogate=`` replaces it, e.g.
      :class:`~paddlex_interpret.core.surrogate.PriorScaledRidge` (the prior as a per-superpixel
      penalty, as in G-LIME, Li et al. 2022);
    * the **sampler** (default ``'stratified'``, the default of every entry point,
      :class:`~paddlex_interpret.core.sampling.StratifiedPairedSampler`): masks drawn from
      LIME's kernel-weighted distribution in complementary pairs, the number kept stratified,
      with importance weights that keep LIME's estimand and less sampling noise;
      ``'paired_kernel'`` is the same without stratification.
      ``'bernoulli'`` is LIME's own sampling: ``glime(beta=0, sampler='bernoulli')`` is plain
      LIME, bit for bit.

    The defaults (paired sampler, ``beta=10`` with ``aggregate`` ``avg`` weights) were chosen on
    images other than the reported ones (BENCHMARKS.md, "Explanation quality vs the peers");
    how far to trust a prior is data-dependent ("NormLIME and GLIME"), hence ``beta='auto'``.
    PaddleX 1.3's ``fast`` weights are nearly one-hot per class: as a strong pull they drag
    every superpixel outside the top concept toward 0; use them with a small ``beta``. A large
    ``beta`` approaches ``tau w0``: the prior, not this image's evidence, then orders the
    superpixels.

    Args:
        img_file_or_array: image path or RGB array (through the model's view for a PaddleX model).
        model_or_classifier: a PaddleX classifier or an ``images -> probabilities`` callable.
        global_weights: :class:`GlobalWeights` or the path of a weights file.
        codebook: defaults to the one stored with the weights.
        beta, alpha, tau: prior strength, ridge penalty (PaddleX 1.3: 1), prior scale (ignored
            when ``surrogate`` is given). ``beta='auto'`` chooses it per image and label from
            the samples (:class:`~paddlex_interpret.core.surrogate.EvidenceRidge`, the
            marginal likelihood of the ridge fit; ``settings['beta']`` records the choice;
            BENCHMARKS.md, "GLIME's beta chosen from the samples").
        sampler: ``'stratified'``, ``'paired_kernel'`` (``'paired'``), ``'bernoulli'``
            (``'lime'``) or a
            :class:`~paddlex_interpret.core.sampling.Sampler`.
        surrogate: a :class:`~paddlex_interpret.core.surrogate.Surrogate` (default above).
        segments: a label map to use instead of segmenting.
        num_samples, budget: ``'auto'`` (rounds until the top superpixels are certified) or an
            int, as :func:`paddlex_interpret.lime`.
        save_dir: when given, write ``save_dir/<image name>/glime_s<N>-<k>.png`` (LIME layout).

    Returns:
        :class:`~paddlex_interpret.Explanation` with ``extra['prior']`` (``(L, n_segments)``);
        ``settings`` names the sampler, the surrogate and the prior.

    Raises:
        ValueError: no codebook, a codebook and weights with different concept counts, an
        unknown sampler, negative ``alpha``/``beta``. TypeError: a sampler that is not a
        :class:`~paddlex_interpret.core.sampling.Sampler`.
    """
    classifier, name, num_samples, batch_size = prepare(img_file_or_array, model_or_classifier,
                                                         num_samples, batch_size, save_dir)
    if isinstance(global_weights, (str, bytes, os.PathLike)):
        global_weights = GlobalWeights.load(os.fsdecode(global_weights))
    codebook = resolve_codebook(codebook) or global_weights.codebook
    if codebook is None:
        raise ValueError("glime needs a codebook: none given and none stored with the weights")
    if codebook.n_concepts != global_weights.n_concepts:
        raise ValueError("the codebook has %d concepts, the weights %d"
                         % (codebook.n_concepts, global_weights.n_concepts))
    image = classifier.view(img_file_or_array)
    if surrogate is None:
        if isinstance(beta, str):
            if beta != "auto":
                raise ValueError("beta must be a number >= 0 or 'auto', got %r" % (beta,))
            surrogate = EvidenceRidge(alpha=alpha, tau=tau)
        else:
            surrogate = WeightedRidge(alpha=alpha, beta=beta, tau=tau)
    explainer = LimeExplainer(classifier, sampler=sampler, segmenter=segmenter,
                              segmenter_params=segmenter_params,
                              fill=resolve_fill(fill, global_weights.info.get("mean_colour")),
                              kernel_width=kernel_width, surrogate=surrogate,
                              num_samples=num_samples, batch_size=batch_size, seed=seed,
                              progress=progress, budget=budget)
    prior = glime_prior(global_weights, codebook, image, normalize=prior_normalize,
                        area_exponent=prior_area_exponent)
    run = explainer.run(image, labels=labels, top_k=top_k, segments=segments,
                        prior=prior if explainer.surrogate.uses_prior else None)
    explanation = run.explanation
    explanation.extra["prior"] = (run.prior if run.prior is not None
                                  else prior(explanation.segments, explanation.labels))
    explanation.settings.update(prior="global_weights:%s" % global_weights.mode,
                                prior_normalize=prior_normalize,
                                prior_area_exponent=float(prior_area_exponent),
                                codebook=codebook.fingerprint())
    fitted = explainer.surrogate
    if isinstance(fitted, EvidenceRidge) and fitted.last_beta is not None:
        explanation.settings["beta"] = [float(b) for b in fitted.last_beta]
    if save_dir is not None:
        save_explanation(explanation, save_dir, name, "glime_s%s" % num_samples, figure="lime")
    return explanation
