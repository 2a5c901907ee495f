"""paddlex_interpret.core.sampling: LIME's kernel and distance, the Bernoulli and paired-kernel
samplers (same estimand as LIME, less noise), custom samplers and what is refused."""
import numpy as np
import pytest
from scipy.special import comb

from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.sampling import (BernoulliSampler, PairedKernelSampler, Sampler,
                                             cosine_distance_to_all_on, exponential_kernel,
                                             make_sampler)


def stripes_classifier(images):
    """No Paddle: p(class 1) = a sigmoid of the visibility of 10 vertical stripes, with two
    interactions (so LIME's linear surrogate is misspecified and its sampling noise is real)."""
    v = images[:, 0, ::4, 0].astype(np.float64) / 255.0
    z = v @ np.linspace(-1, 2, 10) - 2 + 1.5 * v[:, 0] * v[:, 1] - v[:, 2] * v[:, 5]
    p = 1 / (1 + np.exp(-z))
    return np.stack([1 - p, p], axis=1)


STRIPES = (np.full((4, 40, 3), 255, np.uint8),
           np.repeat(np.arange(10)[None, :], 4, axis=0).repeat(4, axis=1))


def test_kernel_and_distance_follow_paddlex_13():
    masks = np.array([[1, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    d = cosine_distance_to_all_on(masks)
    np.testing.assert_allclose(d, [0.0, 1 - np.sqrt(0.25), 1.0])
    np.testing.assert_allclose(exponential_kernel(d, 0.25), np.sqrt(np.exp(-d ** 2 / 0.0625)))


def test_paired_kernel_sampler_masks_and_weights():
    sampler = PairedKernelSampler()
    m = sampler.sample(101, 12, np.random.default_rng(0))
    assert m.shape == (101, 12) and m.dtype == bool and m[0].all() and not m[1].any()
    np.testing.assert_array_equal(m[0:100:2], ~m[1:101:2])   # complementary pairs
    assert (m[:100].sum(axis=0) == 50).all()                   # each superpixel on in half
    kern = lambda d: exponential_kernel(d, 0.25)              # noqa: E731
    w = sampler.sample_weight(m, kern)
    # importance weights: q(k) / m(k) x LIME's mean kernel weight, equal within a pair's k; the
    # laws computed here from their definitions (module docstring), not by the sampler:
    # q(k) ~ C(d, k) pi(k), its symmetrisation m(k), c = LIME's mean kernel weight under
    # Bernoulli(1/2) sampling
    d = 12
    ks = np.arange(d + 1)
    binom = comb(d, ks)
    pi = kern(1.0 - np.sqrt(ks / d))
    q = binom * pi / (binom * pi).sum()
    mix = 0.5 * (q + q[::-1])
    c = (binom / 2.0 ** d) @ pi
    k = m.sum(axis=1)
    np.testing.assert_allclose(w, c * q[k] / mix[k])
    # sum over k of m(k) w(k) is LIME's mean kernel weight: same total weight as LIME's fit
    one_per_k = np.arange(d)[None, :] < ks[:, None]  # a mask keeping k superpixels, k = 0..d
    np.testing.assert_allclose((mix * sampler.sample_weight(one_per_k, kern)).sum(), c)
    lime_m = BernoulliSampler().sample(50, 12, np.random.default_rng(0))
    np.testing.assert_array_equal(BernoulliSampler().sample_weight(lime_m, kern),
                                  kern(cosine_distance_to_all_on(lime_m)))


def test_paired_kernel_sampler_estimates_lime_with_less_noise():
    """Same estimand as LIME (seed mean at N=400 matches LIME at N=40000), lower seed-to-seed
    variance at equal N."""
    img, seg = STRIPES
    ref = LimeExplainer(stripes_classifier, sampler="bernoulli", num_samples=40000,
                        seed=0).explain(img, segments=seg, labels=[1]).weights[0]
    lime = [LimeExplainer(stripes_classifier, sampler="bernoulli", num_samples=400,
                          seed=s).explain(img, segments=seg, labels=[1]).weights[0]
            for s in range(10)]
    paired = [LimeExplainer(stripes_classifier, sampler="paired", num_samples=400,
                                   seed=s).explain(img, segments=seg, labels=[1]).weights[0]
              for s in range(10)]
    assert np.abs(np.mean(paired, axis=0) - ref).max() < 0.01
    assert np.var(paired, axis=0).sum() < 0.6 * np.var(lime, axis=0).sum()
    # bernoulli is LIME bit for bit; a custom kernel is honoured by the paired weights
    a = LimeExplainer(stripes_classifier, sampler="bernoulli", num_samples=64,
                      seed=5).explain(img, segments=seg)
    b = LimeExplainer(stripes_classifier, sampler="bernoulli", num_samples=64,
                      seed=5).explain(img, segments=seg)
    np.testing.assert_array_equal(a.weights, b.weights)
    flat = LimeExplainer(stripes_classifier, sampler="paired", num_samples=64, seed=5,
                                kernel=lambda d: np.ones_like(d))
    masks, _ = flat.sample(img, seg, 64, 64, 5)
    np.testing.assert_allclose(flat.sampler.sample_weight(masks, flat.kernel), 1.0)


def test_sampled_lime_accepts_a_custom_sampler():
    class Halves(Sampler):  # the left or the right half kept, alternately
        def sample(self, n, d, rng, kernel):
            m = np.zeros((n, d), bool)
            m[0::2, : d // 2] = True
            m[1::2, d // 2:] = True
            m[0] = True
            return m

        def sample_weight(self, masks, kernel):
            return np.ones(len(masks))

    img, seg = STRIPES
    e = LimeExplainer(stripes_classifier, sampler=Halves(), num_samples=20).explain(
        img, segments=seg, labels=[1])
    assert e.settings["sampler"] == "custom" and e.weights.shape == (1, 10)


def test_make_sampler_names_instances_and_refusals():
    for name, cls in (("bernoulli", BernoulliSampler), ("lime", BernoulliSampler),
                      ("paired_kernel", PairedKernelSampler), ("paired", PairedKernelSampler)):
        assert type(make_sampler(name)) is cls
    mine = PairedKernelSampler()
    assert make_sampler(mine) is mine
    with pytest.raises(ValueError, match="unknown sampler 'sobol'"):
        make_sampler("sobol")

    class LooksLikeASampler:  # the right methods, but not declared a Sampler
        def sample(self, n, d, rng, kernel):
            return np.ones((n, d), bool)

        def sample_weight(self, masks, kernel):
            return np.ones(len(masks))

    for bad in (object(), LooksLikeASampler(), BernoulliSampler, 3):
        with pytest.raises(TypeError, match="Sampler"):
            make_sampler(bad)
    with pytest.raises(TypeError, match="Sampler"):
        LimeExplainer(stripes_classifier, sampler=LooksLikeASampler())
