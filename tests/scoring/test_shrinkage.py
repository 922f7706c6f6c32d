"""Beta-binomial empirical Bayes (STATISTICS.md 5.1): the MLE against an independent fit, posterior
identities, the no-variation and 100 % cases, and properties of the shrunk estimates."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import optimize, stats

from scoring.shrinkage import MODEL_LABEL, beta_binomial_eb, beta_binomial_log_likelihood


def _overdispersed_counts(seed: int, units: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = rng.integers(15, 300, size=units)
    x = rng.binomial(n, rng.beta(12, 3, size=units))
    return x, n


def test_mle_matches_independent_fit() -> None:
    x, n = _overdispersed_counts(20240601)

    # Independent fit: scipy's beta-binomial pmf (with the binomial coefficient), Nelder-Mead, own start.
    def negative_log_likelihood(theta: np.ndarray) -> float:
        a, b = np.exp(theta)
        return -float(np.sum(stats.betabinom.logpmf(x, n, a, b)))

    reference = optimize.minimize(
        negative_log_likelihood,
        x0=np.zeros(2),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000, "maxfev": 40_000},
    )
    assert reference.success
    a_ref, b_ref = np.exp(reference.x)

    fit = beta_binomial_eb(x, n)
    assert not fit.indistinguishable
    assert fit.a == pytest.approx(a_ref, rel=1e-4)
    assert fit.b == pytest.approx(b_ref, rel=1e-4)
    assert fit.prior_mean == pytest.approx(a_ref / (a_ref + b_ref), rel=1e-6)
    assert fit.prior_strength == pytest.approx(fit.a + fit.b, rel=1e-15)
    # The reported log-likelihood differs from scipy's only by the binomial coefficients.
    log_choose = np.sum(stats.binom.logpmf(x, n, 0.5) - x * np.log(0.5) - (n - x) * np.log(0.5))
    assert fit.log_likelihood + log_choose == pytest.approx(-reference.fun, abs=1e-6)


def test_non_integer_effective_counts_give_a_local_maximum() -> None:
    x, n = _overdispersed_counts(11, units=25)
    n_eff = n / 1.7  # design effect 1.7
    x_eff = n_eff * (x / n)
    fit = beta_binomial_eb(x_eff, n_eff)
    assert not fit.indistinguishable
    best = beta_binomial_log_likelihood(fit.a, fit.b, x_eff, n_eff)
    assert best == pytest.approx(fit.log_likelihood)
    for da in (0.999, 1.0, 1.001):
        for db in (0.999, 1.0, 1.001):
            if da == db == 1.0:
                continue
            assert beta_binomial_log_likelihood(fit.a * da, fit.b * db, x_eff, n_eff) < best


def test_posterior_mean_is_precision_weighted_average() -> None:
    x, n = _overdispersed_counts(3)
    fit = beta_binomial_eb(x, n)
    p_hat = x / n
    b_i = n / (n + fit.a + fit.b)
    np.testing.assert_allclose(fit.shrinkage, b_i, rtol=1e-14)
    np.testing.assert_allclose(fit.posterior_mean, b_i * p_hat + (1 - b_i) * fit.prior_mean, rtol=1e-12)
    np.testing.assert_allclose(fit.posterior_mean, (x + fit.a) / (n + fit.a + fit.b), rtol=1e-14)
    np.testing.assert_array_equal(fit.p_hat, p_hat)
    # Smaller units are shrunk more.
    order = np.argsort(n)
    assert np.all(np.diff(fit.shrinkage[order]) >= 0)


def test_credible_interval_is_beta_posterior_quantiles() -> None:
    x, n = _overdispersed_counts(5, units=12)
    fit = beta_binomial_eb(x, n, level=0.9)
    assert fit.level == 0.9
    np.testing.assert_allclose(fit.lower, stats.beta.ppf(0.05, fit.a + x, fit.b + n - x), rtol=1e-12)
    np.testing.assert_allclose(fit.upper, stats.beta.isf(0.05, fit.a + x, fit.b + n - x), rtol=1e-9)


def test_no_between_unit_variation_is_indistinguishable() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(20, 300, size=30)
    x = rng.binomial(n, 0.85)
    fit = beta_binomial_eb(x, n, max_prior_strength=1e6)
    assert fit.indistinguishable
    assert fit.prior_strength == pytest.approx(1e6)
    assert fit.prior_mean == pytest.approx(x.sum() / n.sum(), rel=1e-12)
    assert np.all(fit.shrinkage < 1e-3)
    np.testing.assert_allclose(fit.posterior_mean, x.sum() / n.sum(), atol=1e-3)


def test_optimiser_stopping_short_of_infinity_is_still_indistinguishable() -> None:
    # With a very high cap the optimiser stops where the likelihood surface is flat but still rising; the
    # limit as a + b → ∞ is higher, so the units are reported as indistinguishable.
    rng = np.random.default_rng(1)
    n = rng.integers(20, 300, size=30)
    x = rng.binomial(n, 0.85)
    pooled = x.sum() / n.sum()
    along_pooled = [beta_binomial_log_likelihood(pooled * s, (1 - pooled) * s, x, n) for s in (1e3, 1e5, 1e7)]
    binomial_limit = np.sum(x * np.log(pooled) + (n - x) * np.log(1 - pooled))
    assert np.all(np.diff([*along_pooled, binomial_limit]) > 0)
    fit = beta_binomial_eb(x, n, max_prior_strength=1e9)
    assert fit.indistinguishable
    assert fit.prior_strength == pytest.approx(1e9)
    assert fit.prior_mean == pytest.approx(pooled, rel=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_no_between_unit_variation_shrinks_hard(seed: int) -> None:
    # Under the null the MLE of a + b is infinite or, by chance, finite but large: either way every unit
    # keeps less than half of its own share.
    rng = np.random.default_rng(seed)
    n = rng.integers(20, 300, size=30)
    x = rng.binomial(n, 0.85)
    fit = beta_binomial_eb(x, n)
    assert fit.indistinguishable or fit.prior_strength > n.max()
    assert np.all(fit.shrinkage < 0.5)


def test_small_unit_at_100_percent() -> None:
    x, n = _overdispersed_counts(8, units=30)
    x = np.append(x, 4)
    n = np.append(n, 4)
    fit = beta_binomial_eb(x, n)
    assert fit.p_hat[-1] == 1.0
    assert fit.posterior_mean[-1] < 1.0
    assert abs(fit.posterior_mean[-1] - fit.prior_mean) < 1.0 - fit.prior_mean  # pulled towards m
    assert 0.0 < fit.lower[-1] < fit.posterior_mean[-1] < fit.upper[-1] <= 1.0
    assert fit.upper[-1] < 1.0


def test_label_and_frozen_results() -> None:
    x, n = _overdispersed_counts(1, units=10)
    fit = beta_binomial_eb(x, n)
    assert fit.label == MODEL_LABEL == "model-based (empirical Bayes beta-binomial)"
    with pytest.raises(AttributeError):
        fit.a = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        fit.posterior_mean[0] = 0.5


@pytest.mark.parametrize(
    ("x", "n", "kwargs", "message"),
    [
        ([1, 2], [3, 4], {"level": 1.0}, "level"),
        ([5, 2], [3, 4], {}, r"\[0, n\]"),
        ([1, 2], [0, 4], {}, "positive"),
        ([3], [3], {}, "two units"),
        ([3, 4], [3, 4], {}, "100 %"),
        ([0, 0], [3, 4], {}, "0 %"),
        ([1, 2], [3, 4], {"max_prior_strength": 0.0}, "max_prior_strength"),
    ],
)
def test_rejects_bad_input(x: list[int], n: list[int], kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        beta_binomial_eb(x, n, **kwargs)


units = st.lists(
    st.tuples(
        st.floats(min_value=1.0, max_value=500.0),
        st.one_of(st.just(0.0), st.just(1.0), st.floats(min_value=1e-6, max_value=1.0 - 1e-6)),
    ),
    min_size=2,
    max_size=25,
)


@settings(max_examples=100, deadline=None)
@given(data=units, level=st.sampled_from([0.8, 0.95]))
def test_shrunk_estimate_properties(data: list[tuple[float, float]], level: float) -> None:
    n = np.array([d[0] for d in data])
    x = n * np.array([d[1] for d in data])
    assume(not (np.all(x == 0) or np.all(x == n)))
    fit = beta_binomial_eb(x, n, level=level)
    m = fit.prior_mean
    assert 0 < m < 1
    assert np.all((fit.shrinkage > 0) & (fit.shrinkage < 1))
    # Posterior means lie between the unit's own share and the prior mean.
    low = np.minimum(fit.p_hat, m) - 1e-12
    high = np.maximum(fit.p_hat, m) + 1e-12
    assert np.all((fit.posterior_mean >= low) & (fit.posterior_mean <= high))
    # Intervals lie in [0, 1] and contain the posterior mean wherever the posterior is unimodal
    # (both Beta shapes at least 1); with a U-shaped prior and a unit at 0 % or 100 % an equal-tailed
    # interval can miss the mean.
    assert np.all((fit.lower >= 0) & (fit.lower <= fit.upper) & (fit.upper <= 1))
    unimodal = (fit.a + x >= 1) & (fit.b + n - x >= 1)
    assert np.all(fit.lower[unimodal] <= fit.posterior_mean[unimodal])
    assert np.all(fit.posterior_mean[unimodal] <= fit.upper[unimodal])
    # The optimiser did not stop short: no point of a coarse grid of priors does better.
    tolerance = 1e-7 * max(1.0, abs(fit.log_likelihood))
    for mean in (x.sum() / n.sum(), float(np.mean(fit.p_hat)), 0.5):
        mean = min(max(mean, 0.01), 0.99)
        for strength in (0.1, 1.0, 10.0, 100.0, 1000.0):
            alternative = beta_binomial_log_likelihood(mean * strength, (1 - mean) * strength, x, n)
            assert fit.log_likelihood >= alternative - tolerance
