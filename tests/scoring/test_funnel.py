"""Funnel plots (Spiegelhalter 2005): limits against hand and scipy computations, over-dispersion step by
step, the clipping rule of STATISTICS.md 3.4, and properties of the limits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scoring.funnel import (
    DispersionEstimate,
    arcsine_z_scores,
    estimate_dispersion,
    funnel,
    funnel_limits,
)

Z975 = 1.959963984540054  # Φ⁻¹(0.975)
Z999 = 3.090232306167813  # Φ⁻¹(0.999)

# A small made-up over-dispersed dataset: ten service centres, satisfied x of n respondents.
OD_N = np.array([30, 45, 60, 80, 100, 120, 150, 200, 250, 400], dtype=float)
OD_X = np.array([18, 42, 42, 76, 78, 79, 135, 144, 215, 320], dtype=float)


# --- normal and exact limits -------------------------------------------------------------------------


def test_normal_limits_match_hand_computation() -> None:
    # θ₀ = 0.8: sd = √(0.16/n) = 0.08 at n = 25 and 0.04 at n = 100.
    limits = funnel_limits(0.8, [25, 100], method="normal")
    assert limits.levels == (0.95, 0.998)
    np.testing.assert_allclose(limits.lower[0], [0.8 - Z975 * 0.08, 0.8 - Z975 * 0.04], rtol=0, atol=1e-12)
    np.testing.assert_allclose(limits.upper[0], [0.8 + Z975 * 0.08, 0.8 + Z975 * 0.04], rtol=0, atol=1e-12)
    np.testing.assert_allclose(limits.lower[1], [0.8 - Z999 * 0.08, 0.8 - Z999 * 0.04], rtol=0, atol=1e-12)
    # 0.8 + 3.0902 × 0.08 = 1.0472 is clipped to 1.
    np.testing.assert_allclose(limits.upper[1], [1.0, 0.8 + Z999 * 0.04], rtol=0, atol=1e-12)
    np.testing.assert_allclose(limits.lower[0], [0.64320288, 0.72160144], atol=5e-9)
    lower, upper = limits.at(0.998)
    np.testing.assert_array_equal(lower, limits.lower[1])
    np.testing.assert_array_equal(upper, limits.upper[1])


def test_exact_limits_hand_example() -> None:
    # Bin(10, ½): P(R ≤ 1) = 11/1024 < 0.025 ≤ P(R ≤ 2) = 56/1024, P(R = 2) = 45/1024
    #   → a = (56/1024 − 0.025)/(45/1024) = 30.4/45, lower = (2 − a)/10.
    # The upper limit is the same formula on the failures n − R ~ Bin(10, ½): by symmetry 1 − lower.
    limits = funnel_limits(0.5, [10], levels=(0.95,), method="exact")
    assert limits.lower[0, 0] == pytest.approx((2 - 30.4 / 45) / 10, abs=1e-12)
    assert limits.upper[0, 0] == pytest.approx((8 + 30.4 / 45) / 10, abs=1e-12)


def _interpolated_binomial_limit(n: int, theta: float, p: float) -> float:
    """Spiegelhalter's appendix formula, written out with a plain loop over the binomial pmf."""
    pmf = stats.binom.pmf(np.arange(n + 1), n, theta)
    cumulative = 0.0
    for r in range(n + 1):
        cumulative += pmf[r]
        if cumulative >= p:
            a = (cumulative - p) / pmf[r]
            return min(max((r - a) / n, 0.0), 1.0)
    return 1.0


@pytest.mark.parametrize("n", [1, 7, 30, 143, 1000])
@pytest.mark.parametrize("theta", [0.12, 0.5, 0.83, 0.97])
def test_exact_limits_match_direct_binomial_computation(n: int, theta: float) -> None:
    limits = funnel_limits(theta, [n], method="exact")
    for j, level in enumerate((0.95, 0.998)):
        tail = (1 - level) / 2
        assert limits.lower[j, 0] == pytest.approx(_interpolated_binomial_limit(n, theta, tail), abs=1e-10)
        failures = _interpolated_binomial_limit(n, 1 - theta, tail)
        assert limits.upper[j, 0] == pytest.approx(1 - failures, abs=1e-10)


def test_exact_lower_flag_agrees_with_one_sided_binomial_test() -> None:
    # Below the interpolated lower limit ⇔ P(R ≤ r) < p: the lower tail of the appendix formula is exact.
    n, theta = 40, 0.8
    r = np.arange(n + 1)
    result = funnel(r / n, np.full(n + 1, n), target=theta, method="exact")
    below_95 = result.flags <= -1
    below_998 = result.flags <= -2
    np.testing.assert_array_equal(below_95, stats.binom.cdf(r, n, theta) < 0.025)
    np.testing.assert_array_equal(below_998, stats.binom.cdf(r, n, theta) < 0.001)
    assert below_95.any() and below_998.any()


def test_exact_upper_flag_agrees_with_one_sided_binomial_test() -> None:
    # Above the upper limit ⇔ P(R ≥ r) < p, and a small unit at 100% is not an outlier (P(R = 5) = 0.59).
    n, theta = 40, 0.8
    r = np.arange(n + 1)
    result = funnel(r / n, np.full(n + 1, n), target=theta, method="exact")
    np.testing.assert_array_equal(result.flags >= 1, stats.binom.sf(r - 1, n, theta) < 0.025)
    np.testing.assert_array_equal(result.flags >= 2, stats.binom.sf(r - 1, n, theta) < 0.001)
    small = funnel(np.array([1.0, 0.9, 0.8]), np.array([5, 50, 50]), target=0.9, method="exact")
    assert small.flags[0] == 0


def test_exact_rounds_effective_sizes() -> None:
    rounded = funnel_limits(0.7, [9.6, 20.2], method="exact")
    integer = funnel_limits(0.7, [10, 20], method="exact")
    np.testing.assert_array_equal(rounded.n, [10, 20])
    np.testing.assert_array_equal(rounded.lower, integer.lower)
    np.testing.assert_array_equal(rounded.upper, integer.upper)
    with pytest.raises(ValueError, match="at least 1"):
        funnel_limits(0.7, [0.4], method="exact")


def test_default_method_is_exact_without_and_arcsine_with_overdispersion() -> None:
    assert funnel_limits(0.7, [50]).method == "exact"
    assert funnel_limits(0.7, [50], overdispersion="additive", tau2=0.01).method == "arcsine"


# --- over-dispersion --------------------------------------------------------------------------------


def _type7_quantile(values: np.ndarray, q: float) -> float:
    """R's default quantile (type 7), written out: interpolate the sorted values at h = (I − 1)q."""
    ordered = np.sort(values)
    h = (ordered.size - 1) * q
    below = int(np.floor(h))
    above = min(below + 1, ordered.size - 1)
    return float(ordered[below] + (h - below) * (ordered[above] - ordered[below]))


def test_phi_and_tau2_step_by_step_on_small_dataset() -> None:
    p = OD_X / OD_N
    target = OD_X.sum() / OD_N.sum()  # 1149/1435
    assert target == pytest.approx(1149 / 1435)
    y = np.arcsin(np.sqrt(p))
    s = 1 / (2 * np.sqrt(OD_N))
    centre = np.arcsin(np.sqrt(target))
    z = (y - centre) / s
    lo, hi = _type7_quantile(z, 0.1), _type7_quantile(z, 0.9)
    z_w = np.where(z < lo, lo, np.where(z > hi, hi, z))
    phi = np.sum(z_w**2) / 10
    w = 1 / s**2
    tau2 = max(0.0, (10 * phi - 9) / (w.sum() - (w**2).sum() / w.sum()))
    assert phi > 1 and tau2 > 0  # the example is over-dispersed

    additive = funnel(p, OD_N, overdispersion="additive")
    assert additive.target == pytest.approx(target, rel=1e-14)
    np.testing.assert_allclose(additive.z, z, rtol=1e-12)
    assert additive.dispersion is not None
    assert additive.dispersion.bounds == pytest.approx((lo, hi), rel=1e-12)
    np.testing.assert_allclose(additive.dispersion.z_used, z_w, rtol=1e-12)
    assert additive.phi == pytest.approx(phi, rel=1e-12)
    assert additive.tau2 == pytest.approx(tau2, rel=1e-12)
    se = np.sqrt(s**2 + tau2)
    expected_upper = np.sin(np.clip(centre + Z999 * se, 0, np.pi / 2)) ** 2
    expected_lower = np.sin(np.clip(centre - Z975 * se, 0, np.pi / 2)) ** 2
    np.testing.assert_allclose(additive.upper[1], expected_upper, rtol=1e-12)
    np.testing.assert_allclose(additive.lower[0], expected_lower, rtol=1e-12)
    np.testing.assert_allclose(additive.z_adjusted, (y - centre) / se, rtol=1e-12)

    multiplicative = funnel(p, OD_N, overdispersion="multiplicative")
    assert multiplicative.tau2 is None
    assert multiplicative.phi == pytest.approx(phi, rel=1e-12)
    expected_upper = np.sin(np.clip(centre + Z975 * np.sqrt(phi) * s, 0, np.pi / 2)) ** 2
    np.testing.assert_allclose(multiplicative.upper[0], expected_upper, rtol=1e-12)
    np.testing.assert_allclose(multiplicative.z_adjusted, z / np.sqrt(phi), rtol=1e-12)


def test_drop_leaves_out_units_beyond_the_percentiles() -> None:
    p = OD_X / OD_N
    target = OD_X.sum() / OD_N.sum()
    z = (np.arcsin(np.sqrt(p)) - np.arcsin(np.sqrt(target))) * 2 * np.sqrt(OD_N)
    lo, hi = _type7_quantile(z, 0.1), _type7_quantile(z, 0.9)
    keep = (z >= lo) & (z <= hi)
    assert keep.sum() == 8  # the lowest and the highest z go
    phi = np.mean(z[keep] ** 2)
    w = 4 * OD_N[keep]
    tau2 = max(0.0, (8 * phi - 7) / (w.sum() - (w**2).sum() / w.sum()))

    estimate = estimate_dispersion(z, OD_N, trim="drop")
    np.testing.assert_array_equal(estimate.included, keep)
    assert np.isnan(estimate.z_used[~keep]).all()
    assert estimate.phi == pytest.approx(phi, rel=1e-12)
    assert estimate.tau2 == pytest.approx(tau2, rel=1e-12)
    winsorised = estimate_dispersion(z, OD_N)
    assert winsorised.phi != pytest.approx(estimate.phi)


def test_funnel_limits_estimate_phi_from_given_z_scores() -> None:
    p = OD_X / OD_N
    fitted = funnel(p, OD_N, overdispersion="additive")
    grid = np.array([10.0, 100.0, 1000.0])
    from_z = funnel_limits(fitted.target, grid, overdispersion="additive", z_scores_for_phi=fitted.z, n_for_phi=OD_N)
    from_tau2 = funnel_limits(fitted.target, grid, overdispersion="additive", tau2=fitted.tau2)
    assert from_z.tau2 == pytest.approx(fitted.tau2, rel=1e-14)
    np.testing.assert_allclose(from_z.upper, from_tau2.upper, rtol=1e-14)
    np.testing.assert_allclose(from_z.upper, fitted.curve(grid).upper, rtol=1e-14)
    mult = funnel_limits(fitted.target, grid, overdispersion="multiplicative", z_scores_for_phi=fitted.z)
    assert mult.phi == pytest.approx(fitted.phi, rel=1e-14)


def test_phi_near_one_without_overdispersion() -> None:
    rng = np.random.default_rng(20050415)
    n = rng.integers(50, 500, size=2000).astype(float)
    x = rng.binomial(n.astype(int), 0.8)
    z = arcsine_z_scores(x / n, n, 0.8)
    # No winsorisation: E φ̂ = 1 under the null; sd ≈ √(2/2000) = 0.032.
    plain = estimate_dispersion(z, n, winsor=(0.0, 1.0))
    assert plain.phi == pytest.approx(1.0, abs=0.1)
    # Winsorised at 10 %/90 %, E φ̂ = E[min(max(Z, −c), c)²] with c = Φ⁻¹(0.9), about 0.68 for normal z.
    c = stats.norm.ppf(0.9)
    expected = (0.8 - 2 * c * stats.norm.pdf(c)) + 0.2 * c**2
    winsorised = estimate_dispersion(z, n)
    assert winsorised.phi == pytest.approx(expected, abs=0.06)
    assert winsorised.tau2 == 0.0
    fitted = funnel(x / n, n, target=0.8, overdispersion="additive")
    assert fitted.tau2 == 0.0
    plain_arcsine = funnel_limits(0.8, n, method="arcsine")
    np.testing.assert_allclose(fitted.upper, plain_arcsine.upper, rtol=1e-14)


def test_multiplicative_limits_never_narrower_than_binomial() -> None:
    # φ̂ < 1 (under-dispersion, or winsorising null data) must not narrow the limits.
    narrow = funnel_limits(0.8, [20, 200], overdispersion="multiplicative", phi=0.5)
    plain = funnel_limits(0.8, [20, 200], method="arcsine")
    np.testing.assert_allclose(narrow.lower, plain.lower, rtol=1e-14)
    np.testing.assert_allclose(narrow.upper, plain.upper, rtol=1e-14)
    wide = funnel_limits(0.8, [20, 200], overdispersion="multiplicative", phi=2.0)
    assert np.all(wide.upper > plain.upper) and np.all(wide.lower < plain.lower)


# --- clipping on the transformed scale (STATISTICS.md 3.4) ----------------------------------------------


@pytest.mark.parametrize("model", ["multiplicative", "additive"])
def test_small_unit_at_100_percent_is_not_flagged(model: Any) -> None:
    rng = np.random.default_rng(7)
    n = np.concatenate([rng.integers(150, 600, size=30), [5]]).astype(float)
    x = np.concatenate([rng.binomial(n[:-1].astype(int), rng.beta(90, 10, size=30)), [5]])
    result = funnel(x / n, n, overdispersion=model)
    small = n.size - 1
    assert result.p_hat[small] == 1.0
    assert result.flags[small] == 0
    np.testing.assert_array_equal(result.upper[:, small], [1.0, 1.0])
    # Without the clip, sin² of the upper limit folds back below 1 and the unit would be an "alarm".
    centre = np.arcsin(np.sqrt(result.target))
    s = 1 / (2 * np.sqrt(5.0))
    assert result.phi is not None
    se = s * np.sqrt(max(result.phi, 1.0)) if model == "multiplicative" else np.sqrt(s**2 + result.tau2)
    assert centre + Z999 * se > np.pi / 2
    assert np.sin(centre + Z999 * se) ** 2 < 1.0


def test_arcsine_limits_clip_before_back_transforming() -> None:
    limits = funnel_limits(0.9, [2, 5, 10, 10_000], method="arcsine")
    centre = np.arcsin(np.sqrt(0.9))
    raw_upper = centre + Z999 / (2 * np.sqrt(np.array([2, 5, 10, 10_000])))
    folded = raw_upper > np.pi / 2
    np.testing.assert_array_equal(folded, [True, True, True, False])
    np.testing.assert_array_equal(limits.upper[1, folded], 1.0)
    assert limits.upper[1, 3] < 1.0
    assert np.all(np.diff(limits.upper[1]) <= 0)


# --- the funnel: target, flags, curve ---------------------------------------------------------------


def test_pooled_target_is_sum_x_over_sum_n() -> None:
    p = np.array([0.5, 0.9, 0.75])
    n = np.array([10.0, 30.0, 60.0])
    assert funnel(p, n).target == pytest.approx((5 + 27 + 45) / 100, rel=1e-14)
    assert funnel(p, n, target=0.6).target == 0.6


def test_flags_use_strict_inequality_and_both_levels() -> None:
    limits = funnel_limits(0.5, [100], method="normal")
    lo95, hi95 = limits.lower[0, 0], limits.upper[0, 0]
    lo998, hi998 = limits.lower[1, 0], limits.upper[1, 0]
    p = np.array(
        [
            hi95,
            np.nextafter(hi95, 1),
            np.nextafter(hi998, 1),
            lo95,
            np.nextafter(lo95, 0),
            np.nextafter(lo998, 0),
            0.5,
            hi998,
        ]
    )
    result = funnel(p, np.full(p.size, 100.0), target=0.5, method="normal")
    np.testing.assert_array_equal(result.flags, [0, 1, 2, 0, -1, -2, 0, 1])
    assert result.flags.dtype == np.int8
    np.testing.assert_array_equal(result.at(0.95)[1], np.full(p.size, hi95))
    with pytest.raises(ValueError, match="not among"):
        result.at(0.99)


def test_curve_defaults_to_log_spaced_grid_and_matches_unit_limits() -> None:
    p = OD_X / OD_N
    for kwargs in ({"method": "normal"}, {"method": "exact"}, {"overdispersion": "additive"}):
        result = funnel(p, OD_N, **kwargs)  # type: ignore[arg-type]
        curve = result.curve()
        assert curve.n.size == 100
        assert curve.n[0] == pytest.approx(30) and curve.n[-1] == pytest.approx(400)
        assert curve.method == result.method and curve.tau2 == result.tau2
        at_units = result.curve(result.n)
        np.testing.assert_allclose(at_units.lower, result.lower, rtol=1e-14)
        np.testing.assert_allclose(at_units.upper, result.upper, rtol=1e-14)
    grid = funnel(p, OD_N, method="normal").curve().n
    np.testing.assert_allclose(np.diff(np.log(grid)), np.log(400 / 30) / 99, rtol=1e-10)


def test_results_are_frozen() -> None:
    result = funnel(OD_X / OD_N, OD_N)
    with pytest.raises(AttributeError):
        result.target = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        result.flags[0] = 2
    assert isinstance(estimate_dispersion([0.1, -0.3, 2.0]), DispersionEstimate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "wald"}, "unknown funnel method"),
        ({"overdispersion": "both"}, "unknown over-dispersion model"),
        ({"method": "exact", "overdispersion": "additive"}, "arcsine"),
        ({"overdispersion": "additive", "trim": "cut"}, "unknown trim"),
        ({"overdispersion": "additive", "winsor": (0.9, 0.1)}, "winsor"),
        ({"levels": (0.998, 0.95)}, "increasing"),
        ({"levels": (0.95, 1.0)}, "between 0 and 1"),
        ({"target": 1.0}, "target"),
    ],
)
def test_funnel_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        funnel(OD_X / OD_N, OD_N, **kwargs)


def test_funnel_limits_reject_inconsistent_dispersion_arguments() -> None:
    with pytest.raises(ValueError, match="over-dispersion model"):
        funnel_limits(0.8, [10], phi=2.0)
    with pytest.raises(ValueError, match="additive model takes tau2"):
        funnel_limits(0.8, [10], overdispersion="additive", phi=2.0)
    with pytest.raises(ValueError, match="n_for_phi"):
        funnel_limits(0.8, [10], overdispersion="additive", z_scores_for_phi=[0.1, 2.0, -1.0])
    with pytest.raises(ValueError, match="phi or z_scores_for_phi"):
        funnel_limits(0.8, [10], overdispersion="multiplicative")
    with pytest.raises(ValueError, match="positive"):
        funnel_limits(0.8, [0, 10], method="normal")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        funnel([1.2, 0.5], [10, 10])
    with pytest.raises(ValueError, match="0 % or every unit at 100 %"):
        funnel([1.0, 1.0], [10, 10])


# --- properties -----------------------------------------------------------------------------------

targets = st.floats(min_value=0.01, max_value=0.99)
real_sizes = st.lists(st.floats(min_value=1.0, max_value=1e5), min_size=1, max_size=30)
integer_sizes = st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=30)
spreads = st.one_of(
    st.just({"method": "normal"}),
    st.just({"method": "arcsine"}),
    st.floats(min_value=0.2, max_value=20).map(lambda phi: {"overdispersion": "multiplicative", "phi": phi}),
    st.floats(min_value=0.0, max_value=0.5).map(lambda tau2: {"overdispersion": "additive", "tau2": tau2}),
)


def _check_nested_and_bounded(lower: np.ndarray, upper: np.ndarray) -> None:
    assert np.all((lower >= 0) & (lower <= 1) & (upper >= 0) & (upper <= 1))
    assert np.all(lower <= upper)
    # 99.8 % limits contain the 95 % limits.
    assert np.all(lower[1] <= lower[0]) and np.all(upper[0] <= upper[1])


@settings(max_examples=150, deadline=None)
@given(target=targets, n=real_sizes, spread=spreads)
def test_continuous_limits_properties(target: float, n: list[float], spread: dict[str, Any]) -> None:
    limits = funnel_limits(target, sorted(n), **spread)
    _check_nested_and_bounded(limits.lower, limits.upper)
    # Contain the target ...
    assert np.all(limits.lower <= target + 1e-12) and np.all(limits.upper >= target - 1e-12)
    # ... and widen as n falls (n sorted increasing: lower rises, upper falls).
    assert np.all(np.diff(limits.lower, axis=1) >= -1e-12)
    assert np.all(np.diff(limits.upper, axis=1) <= 1e-12)


@settings(max_examples=150, deadline=None)
@given(target=targets, n=integer_sizes)
def test_exact_limits_properties(target: float, n: list[int]) -> None:
    limits = funnel_limits(target, n, method="exact")
    _check_nested_and_bounded(limits.lower, limits.upper)
    assert np.all(limits.lower <= target + 1e-12)
    assert np.all(limits.upper >= target - 1e-12)


@settings(max_examples=100, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(min_value=1, max_value=2000), st.floats(min_value=0.0, max_value=1.0)),
        min_size=3,
        max_size=40,
    ),
    model=st.sampled_from(["multiplicative", "additive"]),
)
def test_overdispersed_funnel_properties(data: list[tuple[int, float]], model: Any) -> None:
    n = np.array([d[0] for d in data], dtype=float)
    x = np.round(np.array([d[1] for d in data]) * n)
    p = x / n
    if not 0 < x.sum() < n.sum():
        with pytest.raises(ValueError):
            funnel(p, n, overdispersion=model)
        return
    result = funnel(p, n, overdispersion=model)
    _check_nested_and_bounded(result.lower, result.upper)
    assert result.phi is not None and result.phi >= 0
    if model == "additive":
        assert result.tau2 is not None and result.tau2 >= 0
    # Over-dispersed limits are never narrower than the plain arcsine limits.
    plain = funnel_limits(result.target, n, method="arcsine")
    assert np.all(result.lower <= plain.lower + 1e-12) and np.all(result.upper >= plain.upper - 1e-12)
    # Flags agree with the limits, and a unit at 100 % is never flagged high when its limit is clipped to 1.
    above = (p > result.upper[0]).astype(int) + (p > result.upper[1]).astype(int)
    below = (p < result.lower[0]).astype(int) + (p < result.lower[1]).astype(int)
    np.testing.assert_array_equal(result.flags, above - below)
    at_top = (p == 1.0) & (result.upper[0] == 1.0)
    assert np.all(result.flags[at_top] == 0)
