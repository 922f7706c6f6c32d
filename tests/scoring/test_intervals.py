"""Intervals: SRS special cases against statsmodels and scipy, boundary rules, properties, coverage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from scoring.intervals import (
    Reliability,
    ReliabilityRule,
    effective_n,
    proportion_intervals,
    reliability,
    t_quantile,
)

Z = stats.norm.ppf(0.975)


@pytest.mark.parametrize(("x", "n"), [(1, 10), (9, 10), (45, 50), (97, 100), (3, 400), (250, 500)])
def test_wilson_equals_statsmodels_for_a_simple_random_sample(x: int, n: int) -> None:
    p = x / n
    got = proportion_intervals(p, p * (1 - p) / n, n, np.inf, method="wilson")
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert float(got.lower) == pytest.approx(lo, abs=1e-12)
    assert float(got.upper) == pytest.approx(hi, abs=1e-12)


@pytest.mark.parametrize(("x", "n"), [(1, 10), (9, 10), (45, 50), (97, 100), (0, 30), (30, 30)])
def test_korn_graubard_at_deff_one_is_clopper_pearson(x: int, n: int) -> None:
    """With n* = n and df = n - 1 the degrees-of-freedom factor is 1: exactly Clopper-Pearson."""
    p = x / n
    got = proportion_intervals(p, p * (1 - p) / n, n, n - 1, method="korn-graubard")
    lo, hi = proportion_confint(x, n, alpha=0.05, method="beta")
    assert float(got.lower) == pytest.approx(lo, abs=1e-10)
    assert float(got.upper) == pytest.approx(hi, abs=1e-10)


def test_wilson_by_hand_with_effective_size_and_t() -> None:
    """p = 0.9, v = 0.0009 (n* = 100), df = 20, t = 2.0860: the textbook formula, worked in the test."""
    p, v, df = 0.9, 0.0009, 20
    t = stats.t.ppf(0.975, df)
    n_star = p * (1 - p) / v
    centre = (p + t**2 / (2 * n_star)) / (1 + t**2 / n_star)
    half = (t / (1 + t**2 / n_star)) * np.sqrt(p * (1 - p) / n_star + t**2 / (4 * n_star**2))
    got = proportion_intervals(p, v, 400, df)
    assert n_star == pytest.approx(100.0)
    assert float(got.lower) == pytest.approx(centre - half, abs=1e-12)
    assert float(got.upper) == pytest.approx(centre + half, abs=1e-12)
    assert float(got.deff) == pytest.approx(4.0)  # v / (p(1-p)/n) with n = 400


def test_effective_size_is_capped_at_n_and_falls_back_to_n_at_the_boundary() -> None:
    n_eff = effective_n(np.array([0.9, 0.9, 1.0, 0.0, 0.5]), np.array([0.0001, 0.01, 0.0, 0.0, 0.0]), 50)
    assert n_eff == pytest.approx([50.0, 9.0, 50.0, 50.0, 50.0])


def test_hundred_percent_gets_a_real_interval_never_zero_width() -> None:
    n, df = 40, 39
    t = stats.t.ppf(0.975, df)
    wilson = proportion_intervals(1.0, 0.0, n, df, method="wilson")
    assert float(wilson.upper) == 1.0
    assert float(wilson.lower) == pytest.approx(n / (n + t**2))
    kg = proportion_intervals(1.0, 0.0, n, df, method="korn-graubard")
    assert float(kg.upper) == 1.0 and float(kg.lower) == pytest.approx(0.025 ** (1 / n))
    zero = proportion_intervals(0.0, 0.0, n, df, method="logit")
    assert float(zero.lower) == 0.0 and float(zero.upper) == pytest.approx(t**2 / (n + t**2))


def test_no_interval_without_degrees_of_freedom_or_respondents() -> None:
    got = proportion_intervals(np.array([0.8, 0.8]), np.array([0.01, 0.01]), np.array([10, 0]), np.array([0, 5]))
    assert np.isnan(got.lower).all() and np.isnan(got.upper).all()
    flags = reliability(np.array([0.8, 0.8]), got, np.array([10, 0]), np.array([0, 5]))
    assert flags.tolist() == [Reliability.no_data, Reliability.no_data]


def test_t_quantiles() -> None:
    assert float(t_quantile(2, 0.95)) == pytest.approx(4.3027, abs=1e-4)
    assert float(t_quantile(7, 0.95)) == pytest.approx(2.3646, abs=1e-4)
    assert float(t_quantile(np.inf, 0.95)) == pytest.approx(Z)
    assert np.isnan(t_quantile(0, 0.95))


def test_unknown_method_and_level_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown interval method"):
        proportion_intervals(0.5, 0.01, 10, 9, method="agresti")
    with pytest.raises(ValueError, match="level"):
        proportion_intervals(0.5, 0.01, 10, 9, level=95)


def test_reliability_flags_follow_the_rule() -> None:
    p = np.array([0.9, 0.9, 0.9, 0.5, 0.9])
    n = np.array([200, 20, 200, 200, 200])
    df = np.array([199, 19, 5, 199, 199])
    var = np.array([0.0005, 0.0045, 0.0005, 0.03, 0.0005])
    got = proportion_intervals(p, var, n, df)
    flags = reliability(p, got, n, df, ReliabilityRule())
    assert flags.tolist() == [
        Reliability.ok,
        Reliability.unreliable,  # n < 30
        Reliability.review,  # df < 8
        Reliability.unreliable,  # wider than 0.30
        Reliability.ok,
    ]


shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
sizes = st.integers(min_value=2, max_value=5000)
deffs = st.floats(min_value=0.5, max_value=4.0)
methods = st.sampled_from(["wilson", "korn-graubard", "logit"])


@settings(max_examples=300, deadline=None)
@given(p=shares, n=sizes, deff=deffs, method=methods, df_share=st.floats(min_value=0.05, max_value=1.0))
def test_intervals_contain_the_point_inside_0_1_and_never_zero_width(
    p: float, n: int, deff: float, method: str, df_share: float
) -> None:
    df = max(1.0, np.floor(df_share * (n - 1)))
    got = proportion_intervals(p, deff * p * (1 - p) / n, n, df, method=method)
    lo, hi = float(got.lower), float(got.upper)
    assert 0.0 <= lo <= p <= hi <= 1.0
    assert hi - lo > 0


@settings(max_examples=200, deadline=None)
@given(p=st.floats(min_value=0.01, max_value=0.99), n=st.integers(min_value=5, max_value=2000), method=methods)
def test_intervals_narrow_as_n_grows(p: float, n: int, method: str) -> None:
    small = proportion_intervals(p, p * (1 - p) / n, n, n - 1, method=method)
    large = proportion_intervals(p, p * (1 - p) / (4 * n), 4 * n, 4 * n - 1, method=method)
    assert float(large.upper - large.lower) < float(small.upper - small.lower)


@pytest.mark.parametrize("method", ["wilson", "korn-graubard", "logit"])
def test_subnormal_shares_are_treated_as_the_boundary(method: str) -> None:
    """Hypothesis found p = 2.2e-311 overflowing scipy's Beta quantile; such shares are 0 in effect."""
    for p in (2.225073858507e-311, 1.0 - 1e-17):
        got = proportion_intervals(p, p * (1 - p) / 5, 5, 4, method=method)
        assert 0.0 <= float(got.lower) <= p <= float(got.upper) <= 1.0
        assert float(got.upper) - float(got.lower) > 0.1
