"""Mask samplers for LIME-style explanations, and a LIME explainer that takes one (GLIME).

A sampler draws the binary masks (one bool per superpixel, first row all on) and gives the sample
weights of the surrogate fit:

* :class:`BernoulliSampler` is LIME's and PaddleX 1.3's: every superpixel on with probability 1/2,
  weights = LIME's kernel on the cosine distance to the all-on mask. With it
  :class:`SampledLimeExplainer` is :class:`~paddlex_interpret.core.lime.LimeExplainer`, bit for bit.
* :class:`PairedKernelSampler` (GLIME's default) estimates *the same* weighted least-squares
  surrogate with less variance at the same number of forward passes, by two standard devices:

  - **sampling from the kernel-weighted distribution** (as Tan et al., "GLIME: General, Stable and
    Local LIME Explanation", NeurIPS 2023, do for their local kernels): LIME's kernel depends only on
    ``k``, the number of superpixels kept, so the kernel-weighted distribution is "draw ``k`` with
    probability proportional to ``C(d, k) pi(k)``, then a uniformly random set of ``k``
    superpixels". Drawn that way, samples need no small kernel weights;
  - **antithetic pairs**: every mask comes with its complement (as paired sampling does for
    KernelSHAP, Covert & Lee 2021). Each superpixel is then on in exactly half of the samples, and
    the even-order interaction terms of the model's response cancel within a pair instead of
    adding noise to the weights. For the pairs to share one distribution, ``k`` is drawn from the
    symmetrised law ``m(k) = (q(k) + q(d - k)) / 2``.

  The sample weights ``c q(k) / m(k)`` (importance weights, ``c`` = LIME's mean kernel weight)
  make the expected weighted normal equations exactly LIME's, penalty included: the estimand is
  LIME's surrogate; what changes is the sampling noise. Pairs remove the noise that the even part
  of the model's response (pairwise interactions, the response to how much is hidden) puts into
  the weights, and double the weight of the odd part (e.g. third-order effects of a saturating
  response), so they help when the even part dominates. Measured (BENCHMARKS.md): on the
  Fashion-MNIST model at N=1000 the weights' seed-to-seed variance drops by about 30% with the
  same deletion / insertion AUC as LIME; on the tiny shapes model with 9-19 superpixels the gain
  is smaller and at N <= 100 the pairs can be worse than LIME's sampling.

A sampler is any object with ``sample(num_samples, n_segments, rng) -> (N, d) bool`` (first row
all on) and ``sample_weight(masks, kernel) -> (N,)``, where ``kernel`` maps cosine distances to
LIME's kernel weights (the explainer's ``kernel`` / ``kernel_width``).

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.sampling import PairedKernelSampler
    >>> m = PairedKernelSampler().sample(6, 4, np.random.default_rng(0))
    >>> bool(m[0].all()), bool((m[0::2] == ~m[1::2]).all())
    (True, True)
"""
import functools

import numpy as np

from .lime import LimeExplainer
from .perturbation import make_fill, sample_masks
from .surrogate import cosine_distance_to_all_on, exponential_kernel

__all__ = ["BernoulliSampler", "PairedKernelSampler", "SAMPLERS", "make_sampler",
           "SampledLimeExplainer"]


class BernoulliSampler:
    """LIME's sampler: superpixels on with probability 1/2, weights = the kernel (PaddleX 1.3)."""

    name = "bernoulli"

    def sample(self, num_samples, n_segments, rng):
        return sample_masks(num_samples, n_segments, rng)

    def sample_weight(self, masks, kernel):
        return kernel(cosine_distance_to_all_on(masks))

    def describe(self):
        return {"sampler": self.name}


def _log_binomial(d):
    from scipy.special import gammaln

    k = np.arange(d + 1)
    return gammaln(d + 1) - gammaln(k + 1) - gammaln(d - k + 1)


class PairedKernelSampler:
    """Antithetic pairs drawn from LIME's kernel-weighted distribution, with importance weights
    that keep LIME's estimand (see the module docstring).

    Rows come in pairs ``(z, ~z)``; the first row is all on (so the second is all off). With an
    odd ``num_samples`` the last pair is cut to its first row.
    """

    name = "paired_kernel"

    def _laws(self, d, kernel):
        """``q(k)`` (kernel-weighted law of the number kept), its symmetrisation ``m(k)`` and
        ``c`` = LIME's mean kernel weight under Bernoulli(1/2) sampling."""
        k = np.arange(d + 1)
        pi = np.asarray(kernel(1.0 - np.sqrt(k / float(d))), dtype=np.float64)
        if pi.shape != k.shape or not np.all(np.isfinite(pi)) or pi.min() < 0 or pi.max() <= 0:
            raise ValueError("the kernel must give finite, non-negative weights, not all zero")
        logb = _log_binomial(d)
        with np.errstate(divide="ignore"):
            logq = logb + np.log(pi)
        q = np.exp(logq - logq.max())
        q /= q.sum()
        m = 0.5 * (q + q[::-1])
        c = float(np.exp(logb - d * np.log(2.0)) @ pi)
        return q, m, c

    def sample(self, num_samples, n_segments, rng, kernel=None):
        d = int(n_segments)
        kernel = kernel or functools.partial(exponential_kernel, kernel_width=0.25)
        _, m, _ = self._laws(d, kernel)
        half = (int(num_samples) + 1) // 2
        ks = rng.choice(d + 1, size=half, p=m)
        # a uniformly random subset of size k per row: the k smallest of d random keys
        ranks = np.argsort(np.argsort(rng.random((half, d)), axis=1), axis=1)
        first = ranks < ks[:, None]
        first[0] = True
        masks = np.empty((2 * half, d), dtype=bool)
        masks[0::2] = first
        masks[1::2] = ~first
        return masks[:int(num_samples)]

    def sample_weight(self, masks, kernel):
        masks = np.asarray(masks, dtype=bool)
        q, m, c = self._laws(masks.shape[1], kernel)
        k = masks.sum(axis=1)
        return c * q[k] / m[k]

    def describe(self):
        return {"sampler": self.name}


SAMPLERS = {"bernoulli": BernoulliSampler, "lime": BernoulliSampler,
            "paired_kernel": PairedKernelSampler, "paired": PairedKernelSampler}


def make_sampler(sampler):
    """A sampler object from a name (``'bernoulli'``/``'lime'``, ``'paired_kernel'``/``'paired'``)
    or an object with ``sample`` and ``sample_weight`` (returned as is)."""
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise ValueError("unknown sampler %r; choose one of %s or pass an object with "
                             "sample() and sample_weight()" % (sampler, sorted(SAMPLERS)))
        return SAMPLERS[sampler]()
    if not (callable(getattr(sampler, "sample", None))
            and callable(getattr(sampler, "sample_weight", None))):
        raise TypeError("a sampler needs sample(num_samples, n_segments, rng) and "
                        "sample_weight(masks, kernel) methods, got %r" % (sampler,))
    return sampler


class SampledLimeExplainer(LimeExplainer):
    """:class:`~paddlex_interpret.core.lime.LimeExplainer` with a pluggable mask sampler (captum
    ``LimeBase`` style: sampler and surrogate are passed in). ``sampler='bernoulli'`` is plain
    LIME bit for bit; GLIME uses :class:`PairedKernelSampler`. Adaptive sampling is LIME's only.

    All other arguments are :class:`~paddlex_interpret.core.lime.LimeExplainer`'s.
    """

    def __init__(self, classifier_fn, sampler="bernoulli", **kwargs):
        if kwargs.get("adaptive") is not None:
            raise ValueError("adaptive sampling is available with LimeExplainer only")
        super().__init__(classifier_fn, **kwargs)
        self.sampler = make_sampler(sampler)

    def _kernel_fn(self):
        if self.kernel is not None:
            return self.kernel
        return functools.partial(exponential_kernel, kernel_width=self.kernel_width)

    def sample(self, image, segments, num_samples, batch_size, seed):
        rng = np.random.default_rng(seed)
        d = int(segments.max()) + 1
        if isinstance(self.sampler, PairedKernelSampler):
            masks = self.sampler.sample(num_samples, d, rng, kernel=self._kernel_fn())
        elif isinstance(self.sampler, BernoulliSampler):
            return super().sample(image, segments, num_samples, batch_size, seed)
        else:
            masks = np.asarray(self.sampler.sample(num_samples, d, rng), dtype=bool)
            if masks.shape != (num_samples, d):
                raise ValueError("the sampler returned masks of shape %s, expected %s"
                                 % (masks.shape, (num_samples, d)))
        fill_image = make_fill(image, segments, self.fill)
        return masks, self.predict_masks(image, fill_image, segments, masks, batch_size)

    def fit(self, masks, outputs, labels, prior=None):
        weights = np.asarray(self.sampler.sample_weight(masks, self._kernel_fn()),
                             dtype=np.float64)
        return self.surrogate.fit(masks, outputs[:, labels], weights, prior=prior)

    def settings(self, num_samples, batch_size, seed):
        s = super().settings(num_samples, batch_size, seed)
        s.update(getattr(self.sampler, "describe", lambda: {"sampler": "custom"})())
        return s
