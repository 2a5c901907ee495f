"""Adaptive sampling (paddlex_interpret.core.adaptive): early stop on an easy case, never a
converged claim on noise, and no change at all when it is off."""
import numpy as np
import pytest

from paddlex_interpret.core.adaptive import (AdaptiveSampling, certify_topk, posterior,
                                             resolve_adaptive)
from paddlex_interpret.core.classifier import as_probabilities
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.fill import make_fill
from paddlex_interpret.core.perturbation import perturb, sample_masks
from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
from paddlex_interpret.core.surrogate import WeightedRidge

SIZE = 48
STRIPES = 12
SEGMENTS = np.repeat(np.arange(STRIPES)[None, :], SIZE, axis=0).repeat(SIZE // STRIPES, axis=1)
IMAGE = np.full((SIZE, SIZE, 3), 230, np.uint8)


#: PaddleX 1.3's LIME (the sampler and fill adaptive sampling was built on)
LIME13 = dict(sampler="bernoulli", fill="black")


def easy_classifier(images):
    """p(class 1) grows with the brightness of stripes 0-3, most with stripe 0; a smooth
    nonlinearity on top (not exactly linear)."""
    cols = images[..., 0].reshape(len(images), SIZE, STRIPES, -1).mean(axis=(1, 3)) / 255.0
    score = cols[:, :4] @ np.array([3.0, 2.0, 1.5, 1.0]) - 3.0
    p = 1.0 / (1.0 + np.exp(-score))
    return np.stack([1 - p, p], axis=1)


class NoiseClassifier:
    """Outputs that do not depend on the input at all."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def __call__(self, images):
        p = self.rng.random(len(images))
        return np.stack([1 - p, p], axis=1)


def test_stops_early_on_an_easy_case_with_the_right_ranking():
    exp = LimeExplainer(easy_classifier, **LIME13, num_samples=3000, batch_size=50, seed=0,
                        adaptive=dict(top_k=3)).explain(IMAGE, segments=SEGMENTS, labels=[1])
    s = exp.settings
    assert s["adaptive_converged"] is True
    assert s["num_samples_used"] <= 600 and s["num_samples_used"] < 3000
    assert s["num_samples_used"] % 50 == 0  # whole batches
    assert exp.top_segments(1, 3).tolist() == [0, 1, 2]
    # The stopped ranking is the one plain LIME finds with all 3000 samples.
    full = LimeExplainer(easy_classifier, **LIME13, num_samples=3000, batch_size=50,
                         seed=0).explain(
        IMAGE, segments=SEGMENTS, labels=[1])
    assert full.top_segments(1, 3).tolist() == exp.top_segments(1, 3).tolist()


@pytest.mark.parametrize("seed", range(6))
def test_never_claims_convergence_on_noise(seed):
    exp = LimeExplainer(NoiseClassifier(seed), **LIME13, num_samples=1500, batch_size=50, seed=seed,
                        adaptive=True).explain(IMAGE, segments=SEGMENTS, labels=[1])
    s = exp.settings
    assert s["adaptive_converged"] is False
    assert s["num_samples_used"] == 1500  # ran to the cap
    assert s["adaptive_rounds"] > 1


def test_noise_is_not_certified_even_with_a_loose_tolerance():
    for seed in range(3):
        exp = LimeExplainer(NoiseClassifier(seed), **LIME13, num_samples=1000, batch_size=50,
                            seed=seed,
                            adaptive=dict(top_k=1, tolerance=0.3, confidence=0.8)).explain(
            IMAGE, segments=SEGMENTS, labels=[1])
        assert exp.settings["adaptive_converged"] is False


def test_off_by_default_and_bit_identical_to_plain_lime():
    """adaptive=None is the unchanged algorithm: the same masks, outputs and ridge fit."""
    explainer = LimeExplainer(easy_classifier, **LIME13, num_samples=400, batch_size=64, seed=3)
    assert explainer.adaptive is None
    exp = explainer.explain(IMAGE, segments=SEGMENTS, labels=[1])
    assert exp.settings["num_samples_used"] == 400 and "adaptive_converged" not in exp.settings
    rng = np.random.default_rng(3)
    masks = sample_masks(400, STRIPES, rng)
    fill = make_fill(IMAGE, SEGMENTS, "black")
    outputs = np.concatenate([as_probabilities(easy_classifier(perturb(IMAGE, fill, SEGMENTS,
                                                                       masks[i:i + 64])))
                              for i in range(0, 400, 64)])
    w = exponential_kernel(cosine_distance_to_all_on(masks), 0.25)
    ref = WeightedRidge(alpha=1.0).fit(masks, outputs[:, [1]], w)
    np.testing.assert_array_equal(exp.weights, ref.coef)
    np.testing.assert_array_equal(exp.intercepts, ref.intercept)


def test_an_unconverged_adaptive_run_is_plain_lime():
    """Same seed: the adaptive masks are the first rows of plain LIME's, so a run that never
    stops early gives exactly plain LIME's weights."""
    kwargs = dict(num_samples=600, batch_size=50, seed=1)
    plain = LimeExplainer(NoiseClassifier(7), **LIME13, **kwargs).explain(IMAGE, segments=SEGMENTS,
                                                                labels=[1])
    adaptive = LimeExplainer(NoiseClassifier(7), **LIME13, adaptive=True, **kwargs).explain(
        IMAGE, segments=SEGMENTS, labels=[1])
    assert adaptive.settings["adaptive_converged"] is False
    np.testing.assert_array_equal(plain.weights, adaptive.weights)


def test_posterior_mean_is_the_lime_surrogate():
    rng = np.random.default_rng(0)
    X = sample_masks(300, 10, rng)
    Y = X @ rng.normal(size=(10, 2)) + rng.normal(scale=0.1, size=(300, 2))
    w = exponential_kernel(cosine_distance_to_all_on(X))
    mean, sd = posterior(X, Y, w, alpha=1.0)
    np.testing.assert_allclose(mean, WeightedRidge(alpha=1.0).fit(X, Y, w).coef, atol=1e-10)
    assert sd.shape == mean.shape and np.all(sd > 0)
    # more samples, smaller posterior sd (about 1/sqrt(n))
    X2 = sample_masks(1200, 10, rng)
    Y2 = X2 @ rng.normal(size=(10, 2)) + rng.normal(scale=0.1, size=(1200, 2))
    _, sd2 = posterior(X2, Y2, exponential_kernel(cosine_distance_to_all_on(X2)))
    assert np.median(sd2) < 0.7 * np.median(sd)
    # too few samples for the parameters: infinite uncertainty, never certified
    _, sd3 = posterior(X[:5], Y[:5], w[:5])
    assert np.all(np.isinf(sd3))
    assert certify_topk(mean[0], sd3[0], 2)[0] is False


def test_certification_rule():
    m = np.array([0.50, 0.40, 0.05, 0.0, -0.1])
    ok, top, factor = certify_topk(m, np.full(5, 0.01), 2)
    assert ok is True and top == [0, 1] and factor < 1
    assert certify_topk(m, np.full(5, 0.2), 2)[0] is False
    # near-ties within the tolerance may swap: top-3 boundary 0.01 vs 0.0 is a near-tie
    tie = np.array([1.0, 0.9, 0.01, 0.0, -0.5])
    sd = np.full(5, 0.005)
    assert certify_topk(tie, sd, 3, tolerance=0.0)[0] is False
    assert certify_topk(tie, sd, 3, tolerance=0.05)[0] is True
    # 'abs' ranks by magnitude
    assert certify_topk(np.array([0.1, -0.9, 0.0]), np.full(3, 0.01), 1, rank_by="abs")[1] == [1]


def test_settings_validation_and_resolution():
    assert resolve_adaptive(None) is None and resolve_adaptive(False) is None
    assert isinstance(resolve_adaptive(True), AdaptiveSampling)
    assert resolve_adaptive({"top_k": 2}).top_k == 2
    with pytest.raises(TypeError):
        resolve_adaptive("yes")
    for bad in (dict(top_k=0), dict(tolerance=1.5), dict(confidence=1.0), dict(rank_by="x")):
        with pytest.raises(ValueError):
            AdaptiveSampling(**bad)
    size, minimum = AdaptiveSampling().plan(3000, 50)
    assert size % 50 == 0 and size >= 100 and minimum == 2 * size
    assert AdaptiveSampling(round_size=30, min_samples=10).plan(100, 50) == (30, 10)


def test_adaptive_works_with_a_glime_prior():
    prior = np.zeros((1, STRIPES))
    prior[0, :4] = [0.3, 0.2, 0.1, 0.05]
    exp = LimeExplainer(easy_classifier, **LIME13, num_samples=2000, batch_size=50, seed=0,
                        surrogate=WeightedRidge(alpha=1.0, beta=5.0),
                        adaptive=dict(top_k=2)).explain(IMAGE, segments=SEGMENTS, labels=[1],
                                                        prior=prior)
    assert exp.settings["method"] == "glime"
    assert exp.settings["adaptive_converged"] is True
    assert exp.top_segments(1, 2).tolist() == [0, 1]


def test_adaptive_sampling_with_the_paired_kernel_sampler():
    """GLIME's sampler in rounds: the run stops once certified, records how many samples it
    used, and its masks are the first rows of the ones the paired sampler draws for the seed
    (whole pairs)."""
    explainer = LimeExplainer(easy_classifier, fill="black", sampler="paired_kernel",
                              num_samples=3000,
                              batch_size=50, seed=0, adaptive=dict(top_k=3))
    run = explainer.run(IMAGE, segments=SEGMENTS, labels=[1])
    s = run.explanation.settings
    assert s["sampler"] == "paired_kernel"
    used = s["num_samples_used"]
    assert s["adaptive_converged"] is True and used < 3000 and used % 50 == 0
    assert s["adaptive_rounds"] >= 1 and len(run.masks) == len(run.outputs) == used
    np.testing.assert_array_equal(run.masks, explainer.draw(STRIPES, 3000, 0)[:used])
    np.testing.assert_array_equal(run.masks[0:used:2], ~run.masks[1:used:2])  # whole pairs
    assert run.explanation.top_segments(1, 3).tolist() == [0, 1, 2]
    refit = explainer.fit(run.masks, run.outputs, [1], sample_weight=run.sample_weight)
    np.testing.assert_array_equal(refit.coef, run.explanation.weights)
