"""Error bars, certified top superpixels and num_samples='auto' on models whose LIME weights are
known in closed form: an additive model over superpixels (the weights are its coefficients) and
one with interactions (the weights are the kernel-weighted least-squares fit over all 2^d masks,
computed exactly by enumeration). No Paddle."""
import itertools

import numpy as np
import pytest

from paddlex_interpret.core.budget import AutoBudget
from paddlex_interpret.core.explanation import Explanation
from paddlex_interpret.core.lime import LimeExplainer
from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
from paddlex_interpret.core.uncertainty import certified_top, top_k_certified

D = 8
IMAGE = np.full((16, 16, 3), 255, np.uint8)
SEGMENTS = np.repeat(np.arange(D)[None, :], 16, axis=0).repeat(2, axis=1)  # 8 stripes
COEF = np.array([0.25, 0.18, 0.12, 0.08, 0.04, 0.0, 0.0, 0.0])


def shown(images):
    """``(B, D)`` which stripes are shown (white) rather than hidden (black fill)."""
    return images[:, 0, 0::2, 0] > 127


def additive(images):
    z = shown(images).astype(np.float64)
    p = 0.1 + z @ COEF
    return np.stack([1 - p, p], axis=1)


def interacting_response(z):
    z = np.asarray(z, dtype=np.float64)
    k = z.sum(axis=-1) / D
    return (0.05 + z @ (0.6 * COEF) + 0.25 * z[..., 0] * z[..., 1]
            - 0.2 * z[..., 2] * z[..., 3] * z[..., 4] + 0.2 * k ** 3)


def interacting(images):
    p = interacting_response(shown(images))
    return np.stack([1 - p, p], axis=1)


def exact_lime(response, n):
    """LIME's weights at ``n`` samples in closed form: the ridge (alpha=1) fit with the kernel
    over all 2^D masks, each weighted by its probability under LIME's sampling times ``n``."""
    z = np.array(list(itertools.product([0, 1], repeat=D)), dtype=np.float64)
    w = exponential_kernel(cosine_distance_to_all_on(z)) * n / 2.0 ** D
    y = response(z)
    xm = (w @ z) / w.sum()
    ym = (w @ y) / w.sum()
    zc = z - xm
    gram = zc.T @ (zc * w[:, None]) + np.eye(D)
    return np.linalg.solve(gram, zc.T @ (w * (y - ym)))


def explain(seed, n, classifier=interacting, **kwargs):
    return LimeExplainer(classifier, fill="black", num_samples=n, batch_size=100, seed=seed,
                         **kwargs).explain(IMAGE, segments=SEGMENTS, labels=[1])


def test_recovers_an_additive_model_and_certifies_its_ranking():
    exp = explain(0, 600, additive)
    np.testing.assert_allclose(exp.weights[0], COEF, atol=0.005)
    # nothing is left unexplained but the ridge penalty's shrinkage: tiny error bars
    assert exp.weight_se.shape == (1, D) and np.all(exp.weight_se < 0.01 * COEF.max())
    assert exp.certified_top(4) == [0, 1, 2, 3]


@pytest.mark.parametrize("sampler", ["stratified", "bernoulli"])
def test_error_bars_cover_the_closed_form_weights_at_the_stated_rate(sampler):
    n = 400
    truth = exact_lime(interacting_response, n)
    inside, claims, right = [], 0, 0
    for seed in range(150):
        exp = explain(seed, n, sampler=sampler)
        inside.append(np.abs(exp.weights[0] - truth) < 1.96 * exp.weight_se[0])
        top = exp.certified_top(3, confidence=0.9)
        if top:
            claims += 1
            right += top == sorted(np.argsort(-truth, kind="stable")[:len(top)].tolist())
    coverage = np.mean(inside)
    assert coverage >= 0.93, coverage            # 95% intervals, per weight
    assert claims >= 75                            # the certification says something ...
    assert right >= 0.9 * claims                   # ... and is right as often as it claims


def test_the_default_sampler_estimates_lime_with_less_noise():
    n = 400
    truth = exact_lime(interacting_response, n)
    strat = np.array([explain(s, n).weights[0] for s in range(40)])
    lime = np.array([explain(s, n, sampler="bernoulli").weights[0] for s in range(40)])
    assert np.abs(strat.mean(axis=0) - truth).max() < 3 * strat.std(axis=0).max() / np.sqrt(40)
    assert np.abs(lime.mean(axis=0) - truth).max() < 3 * lime.std(axis=0).max() / np.sqrt(40)
    assert strat.var(axis=0).sum() < 0.7 * lime.var(axis=0).sum()


def test_auto_budget_stops_when_certified_and_is_the_fixed_budget_of_that_size():
    exp = explain(3, "auto", additive)
    s = exp.settings
    assert s["num_samples"] == "auto" and s["budget_certified"] is True
    used = s["num_samples_used"]
    assert used < s["budget_cap"] and used == s["budget_plan"][0]
    fixed = explain(3, used, additive)
    np.testing.assert_array_equal(exp.weights, fixed.weights)
    np.testing.assert_array_equal(exp.weight_cov, fixed.weight_cov)


def test_auto_budget_runs_to_the_cap_on_noise_and_certifies_nothing():
    rng = np.random.default_rng(0)

    def noise(images):
        p = rng.uniform(0.2, 0.8, len(images))
        return np.stack([1 - p, p], axis=1)

    exp = explain(0, "auto", noise, budget=dict(cap=600))
    assert exp.settings["num_samples_used"] == 600
    assert exp.settings["budget_certified"] is False
    assert exp.certified_top(5) == []


def test_error_bars_are_saved_and_read_back(tmp_path):
    exp = explain(1, 300)
    back = Explanation.load(exp.save(str(tmp_path / "e.npz")))
    np.testing.assert_array_equal(back.weight_cov, exp.weight_cov)
    assert back.certified_top(3) == exp.certified_top(3)


def test_bad_budgets_are_named():
    with pytest.raises(ValueError, match="num_samples"):
        LimeExplainer(additive, num_samples="many")
    with pytest.raises(ValueError, match="confidence"):
        AutoBudget(confidence=1.5)
    with pytest.raises(TypeError, match="budget"):
        LimeExplainer(additive, budget=5)


def test_certified_top_needs_separation_from_every_other_superpixel():
    coef = np.array([1.0, 0.5, 0.49, 0.0])
    cov = np.diag([1e-4] * 4)
    assert certified_top(coef, cov, k=3) == [0, 1, 2]    # a set, in any order inside
    assert certified_top(coef, cov, k=2) == [0]          # 1 and 2 are not told apart
    assert certified_top(coef, cov, k=2, tolerance=0.05) == [0, 1]  # unless ties may count
    assert certified_top(coef, None, k=3) == []
    assert top_k_certified(coef, cov, k=3) and not top_k_certified(coef, cov, k=2)
