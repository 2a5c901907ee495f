"""Mask samplers for LIME-style explanations and the kernel that weights their samples.

A sampler draws the binary masks (one bool per superpixel, first row all on) and gives the sample
weights of the surrogate fit:

* :class:`BernoulliSampler` is LIME's and PaddleX 1.3's: every superpixel on with probability 1/2,
  weights = LIME's kernel on the cosine distance to the all-on mask (``sampler='bernoulli'``).
* :class:`StratifiedPairedSampler` (``'stratified'``, the default everywhere) is
  :class:`PairedKernelSampler` with the number kept stratified over a stream of masks.
* :class:`PairedKernelSampler` estimates *the same* weighted least-squares
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
  response), so they help when the even part dominates; with few superpixels and few samples
  they can be worse than LIME's sampling (BENCHMARKS.md, "Explanation quality vs the peers").

A sampler is a :class:`Sampler`: ``sample(num_samples, n_segments, rng, kernel) -> (N, d) bool``
(first row all on) and ``sample_weight(masks, kernel) -> (N,)``, where ``kernel`` maps cosine
distances to the all-on mask to LIME's kernel weights (:func:`make_kernel`). The explainer
computes every sample weight through its sampler, so LIME, GLIME and adaptive sampling share one
kernel.

Example::

    >>> import numpy as np
    >>> from paddlex_interpret.core.sampling import PairedKernelSampler
    >>> m = PairedKernelSampler().sample(6, 4, np.random.default_rng(0))
    >>> bool(m[0].all()), bool((m[0::2] == ~m[1::2]).all())
    (True, True)
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from .perturbation import sample_masks

__all__ = ["cosine_distance_to_all_on", "exponential_kernel", "make_kernel", "Sampler",
           "BernoulliSampler", "PairedKernelSampler", "StratifiedPairedSampler", "SAMPLERS",
           "SAMPLER_NAMES",
           "make_sampler"]


#: a kernel: cosine distances ``(N,)`` -> sample weights ``(N,)``
Kernel = Callable[[np.ndarray], np.ndarray]


def cosine_distance_to_all_on(masks: npt.ArrayLike) -> np.ndarray:
    """Cosine distance of every binary mask row to the all-on row (LIME's default distance).

    For a row with ``k`` of ``d`` superpixels on it is ``1 - sqrt(k / d)``; an all-off row is at 1.
    """
    masks = np.asarray(masks)
    k = masks.sum(axis=1, dtype=np.float64)
    return 1.0 - np.sqrt(k / masks.shape[1])


def exponential_kernel(distances: npt.ArrayLike, kernel_width: float = 0.25) -> np.ndarray:
    """LIME's kernel ``sqrt(exp(-d^2 / width^2))``; PaddleX 1.3 used width 0.25."""
    d = np.asarray(distances, dtype=np.float64)
    return np.sqrt(np.exp(-(d ** 2) / float(kernel_width) ** 2))


def make_kernel(kernel: Kernel | None = None, kernel_width: float = 0.25) -> Kernel:
    """The kernel ``distances -> weights``: ``kernel`` when given, else LIME's exponential kernel
    of width ``kernel_width``."""
    if kernel is not None:
        if not callable(kernel):
            raise TypeError("kernel must be a function of the distances, got %r" % (kernel,))
        return kernel
    return functools.partial(exponential_kernel, kernel_width=float(kernel_width))


class Sampler:
    """Draws LIME's masks and gives their sample weights (see the module docstring)."""

    name = "custom"
    #: consecutive rows drawn together (not independently): the error bars treat them as one draw
    cluster_size = 1

    def sample(self, num_samples: int, n_segments: int, rng: np.random.Generator,
               kernel: Kernel | None) -> np.ndarray:
        """``(num_samples, n_segments)`` bool masks, first row all on."""
        raise NotImplementedError

    def sample_weight(self, masks: np.ndarray, kernel: Kernel) -> np.ndarray:
        """``(N,)`` weights of the surrogate fit for ``masks``."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"sampler": self.name}


class BernoulliSampler(Sampler):
    """LIME's sampler: superpixels on with probability 1/2, weights = the kernel (PaddleX 1.3)."""

    name = "bernoulli"

    def sample(self, num_samples: int, n_segments: int, rng: np.random.Generator,
               kernel: Kernel | None = None) -> np.ndarray:
        return sample_masks(num_samples, n_segments, rng)

    def sample_weight(self, masks: np.ndarray, kernel: Kernel) -> np.ndarray:
        return kernel(cosine_distance_to_all_on(masks))


def _log_binomial(d):
    from scipy.special import gammaln

    k = np.arange(d + 1)
    return gammaln(d + 1) - gammaln(k + 1) - gammaln(d - k + 1)


class PairedKernelSampler(Sampler):
    """Antithetic pairs drawn from LIME's kernel-weighted distribution, with importance weights
    that keep LIME's estimand (see the module docstring).

    Rows come in pairs ``(z, ~z)``; the first row is all on (so the second is all off). With an
    odd ``num_samples`` the last pair is cut to its first row.
    """

    name = "paired_kernel"
    cluster_size = 2

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

    def sample(self, num_samples: int, n_segments: int, rng: np.random.Generator,
               kernel: Kernel | None = None) -> np.ndarray:
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

    def sample_weight(self, masks: np.ndarray, kernel: Kernel) -> np.ndarray:
        masks = np.asarray(masks, dtype=bool)
        q, m, c = self._laws(masks.shape[1], kernel)
        k = masks.sum(axis=1)
        return c * q[k] / m[k]


#: golden-ratio step of the low-discrepancy sequence that stratifies the number kept
_GOLDEN = (5 ** 0.5 - 1) / 2


class StratifiedPairedSampler(PairedKernelSampler):
    """:class:`PairedKernelSampler` with the number kept *stratified*, drawn as a stream.

    The pairs' ``k`` follow the symmetrised kernel law ``m(k)`` through a low-discrepancy
    sequence (``u_t = u_0 + t (sqrt(5) - 1) / 2 mod 1``, ``u_0`` from the seed, ``k_t`` the
    ``u_t``-quantile of ``m``) instead of independent draws: every prefix of the stream holds each
    ``k`` in close to its expected share, which removes the between-size part of the sampling
    noise (the model's response to *how much* is hidden) from the weights. Given ``k`` the kept
    set is uniformly random, so the expected normal equations, sample weights included, are
    :class:`PairedKernelSampler`'s: the same estimand as LIME's.

    What is left of the noise is the part of the model's response that is not linear in the
    mask (interactions between superpixels), which the pairs halve (its even part cancels
    within a pair). A control variate linear in the mask, such as a gradient map summed per
    superpixel, cannot lower it further: a least-squares fit already removes everything linear
    in the mask, so subtracting a linear approximation and adding its exact weights back gives
    the same fit (up to the ridge penalty's shrinkage of the approximation).

    Rows are generated in fixed blocks of pairs, so the first ``n`` masks of a draw of ``N > n``
    are the masks of a draw of ``n`` with the same seed: sampling in rounds (``num_samples=
    'auto'``) fits exactly the masks a fixed budget of the same size would.
    """

    name = "stratified"
    block = 32  # pairs per block of random keys (fixed: prefixes must not depend on N)

    def sample(self, num_samples: int, n_segments: int, rng: np.random.Generator,
               kernel: Kernel | None = None) -> np.ndarray:
        d = int(n_segments)
        kernel = kernel or functools.partial(exponential_kernel, kernel_width=0.25)
        _, m, _ = self._laws(d, kernel)
        half = (int(num_samples) + 1) // 2
        cdf = np.cumsum(m)
        cdf[-1] = 1.0
        u0 = float(rng.random())
        u = np.mod(u0 + _GOLDEN * np.arange(half), 1.0)
        ks = np.minimum(np.searchsorted(cdf, u, side="right"), d)
        first = np.empty((half, d), dtype=bool)
        for start in range(0, half, self.block):
            keys = rng.random((self.block, d))[:min(self.block, half - start)]
            ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
            first[start:start + len(keys)] = ranks < ks[start:start + len(keys), None]
        if half:
            first[0] = True
        masks = np.empty((2 * half, d), dtype=bool)
        masks[0::2] = first
        masks[1::2] = ~first
        return masks[:int(num_samples)]


SAMPLERS = {"bernoulli": BernoulliSampler, "lime": BernoulliSampler,
            "paired_kernel": PairedKernelSampler, "paired": PairedKernelSampler,
            "stratified": StratifiedPairedSampler}
#: The samplers' own names (the aliases ``'lime'`` and ``'paired'`` aside), the default first.
SAMPLER_NAMES = tuple(cls.name for cls in (StratifiedPairedSampler, PairedKernelSampler,
                                            BernoulliSampler))


def make_sampler(sampler: str | Sampler) -> Sampler:
    """A :class:`Sampler` from a name (``'bernoulli'``/``'lime'``, ``'paired_kernel'``/
    ``'paired'``, ``'stratified'``) or a :class:`Sampler` instance (returned as is)."""
    if isinstance(sampler, str):
        if sampler not in SAMPLERS:
            raise ValueError("unknown sampler %r; choose one of %s or pass a Sampler"
                             % (sampler, sorted(SAMPLERS)))
        return SAMPLERS[sampler]()
    if not isinstance(sampler, Sampler):
        raise TypeError("a sampler must be a name or a paddlex_interpret.core.sampling.Sampler "
                        "(sample(num_samples, n_segments, rng, kernel) and "
                        "sample_weight(masks, kernel)), got %r" % (sampler,))
    return sampler
