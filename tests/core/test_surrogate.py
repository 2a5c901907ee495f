"""paddlex_interpret.core.surrogate: LIME's weighted ridge (scikit-learn's Ridge exactly), ridge
with a prior (GLIME), the evidence-chosen prior strength, scikit-learn regressors as surrogates."""
import numpy as np
import pytest
from sklearn.linear_model import Ridge

from paddlex_interpret.core.sampling import cosine_distance_to_all_on, exponential_kernel
from paddlex_interpret.core.surrogate import (EvidenceRidge, PriorScaledRidge, SklearnSurrogate,
                                              Surrogate, WeightedRidge, as_surrogate)


def test_surrogate_matches_sklearn_ridge_with_sample_weight():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (400, 30)).astype(bool)
    Y = rng.normal(size=(400, 2))
    w = exponential_kernel(cosine_distance_to_all_on(X))
    fit = WeightedRidge(alpha=1.0).fit(X, Y, w)
    for j in range(2):
        ref = Ridge(alpha=1.0).fit(X, Y[:, j], sample_weight=w)
        np.testing.assert_allclose(fit.coef[j], ref.coef_, atol=1e-10)
        np.testing.assert_allclose(fit.intercept[j], ref.intercept_, atol=1e-10)
        np.testing.assert_allclose(fit.score[j], ref.score(X, Y[:, j], sample_weight=w), atol=1e-10)


def test_evidence_ridge_trusts_a_prior_the_samples_agree_with():
    """EvidenceRidge (``glime(beta='auto')``) on a linear model with known weights: a prior equal
    to the truth is trusted (large beta; the fit is WeightedRidge's at that beta), a prior with
    the wrong signs is not (small beta, the weights keep the samples' signs)."""
    rng = np.random.default_rng(0)
    truth = np.array([2.0, 0.0, -1.0, 0.5, 0.0, 0.0, 1.0, 0.0])
    X = rng.integers(0, 2, (400, 8)).astype(float)
    y = X @ truth + 0.3 + 0.2 * rng.normal(size=400)
    w = rng.uniform(0.2, 1.0, 400)
    good = EvidenceRidge().fit(X, y, w, prior=truth[None] / 5)  # right direction, other units
    assert good.beta[0] >= 10 and 3 < good.tau[0] < 7
    ref = WeightedRidge(1.0, good.beta[0], good.tau[0]).fit(X, y, w, prior=truth[None] / 5)
    np.testing.assert_allclose(good.coef, ref.coef, atol=1e-10)
    np.testing.assert_allclose(good.intercept, ref.intercept, atol=1e-10)
    bad = EvidenceRidge().fit(X, y, w, prior=-truth[None])
    assert bad.beta[0] <= 0.1
    fixed = EvidenceRidge(fit_tau=False).fit(X, y, w, prior=truth[None] / 5)
    assert fixed.beta[0] < good.beta[0]  # in the wrong units the prior is trusted less
    big = np.abs(truth) >= 1
    assert np.all(np.sign(bad.coef[0][big]) == np.sign(truth[big]))


def test_a_scikit_learn_ridge_is_wrapped_and_fits_like_weighted_ridge():
    rng = np.random.default_rng(7)
    X = rng.integers(0, 2, (300, 12)).astype(bool)
    X[0] = True
    Y = X @ rng.normal(size=(12, 3)) + 0.1 * rng.normal(size=(300, 3))
    w = exponential_kernel(cosine_distance_to_all_on(X))
    wrapped = as_surrogate(Ridge(alpha=2.0))
    assert isinstance(wrapped, SklearnSurrogate) and isinstance(wrapped, Surrogate)
    assert wrapped.describe() == {"surrogate": "Ridge"}
    assert wrapped.uses_prior is False and wrapped.penalties()[0] == 2.0
    ours = WeightedRidge(alpha=2.0).fit(X, Y, w)
    theirs = wrapped.fit(X, Y, w)
    for name in ("coef", "intercept", "score", "local_prediction"):
        assert getattr(theirs, name).shape == getattr(ours, name).shape, name
        np.testing.assert_allclose(getattr(theirs, name), getattr(ours, name), rtol=0,
                                   atol=1e-8, err_msg=name)
    # None is PaddleX 1.3's Ridge(alpha=1); a Surrogate is kept; anything else is refused
    default = as_surrogate(None)
    assert type(default) is WeightedRidge and default.alpha == 1.0 and default.beta == 0.0
    mine = PriorScaledRidge()
    assert as_surrogate(mine) is mine
    for bad in (object(), "ridge", 1.0):
        with pytest.raises(TypeError, match="surrogate"):
            as_surrogate(bad)


def test_uses_prior_says_whether_the_fit_reads_the_prior():
    assert WeightedRidge(beta=0.5).uses_prior is True
    assert WeightedRidge(beta=0.0).uses_prior is False
    assert WeightedRidge().uses_prior is False
    assert PriorScaledRidge(lam=1.0).uses_prior is True
    assert EvidenceRidge().uses_prior is True
    # ...and it is what the fit does: with beta=0 a prior changes nothing, with beta>0 it does
    rng = np.random.default_rng(1)
    X = rng.integers(0, 2, (100, 5)).astype(float)
    y = X @ np.array([1.0, -1.0, 0.5, 0.0, 0.2])
    w = np.ones(100)
    prior = np.full((1, 5), 3.0)
    np.testing.assert_array_equal(WeightedRidge(beta=0.0).fit(X, y, w, prior=prior).coef,
                                  WeightedRidge(beta=0.0).fit(X, y, w).coef)
    assert not np.allclose(WeightedRidge(beta=50.0).fit(X, y, w, prior=prior).coef,
                           WeightedRidge(beta=0.0).fit(X, y, w).coef)
