"""Sample sizes: Yamane and Cochran against hand algebra, the rounding guard, caps, errors, properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sampling.size import cochran, yamane

Z95 = float(stats.norm.ppf(0.975))  # 1.959963984540054


def test_yamane_by_hand() -> None:
    """N = 1000, e = 0.05: 1000 / (1 + 1000 * 0.0025) = 1000 / 3.5 = 285.71..., rounded up to 286."""
    assert math.ceil(1000 / (1 + 1000 * 0.05**2)) == 286
    assert int(yamane(1000)) == 286
    assert int(yamane(1000, e=0.05)) == 286


def test_yamane_is_vectorised_and_exact_where_the_algebra_is_whole() -> None:
    """400/(1+1) = 200, 100/1.25 = 80, 1200/4 = 300, 1/1.0025 -> 1, 0 -> 0; shape follows N."""
    got = yamane([[400, 100, 1200], [1, 0, 1000]])
    assert got.shape == (2, 3)
    assert got.dtype == np.int64
    assert got.tolist() == [[200, 80, 300], [1, 0, 286]]


def test_yamane_rounding_guard_forgives_floating_error() -> None:
    """24000 / (1 + 24000 * 0.015²) = 24000 / 6.4 = 3750 exactly, but floating point gives 3750.0000000000005."""
    raw = 24000 / (1 + 24000 * 0.015**2)
    assert raw > 3750 and math.ceil(raw) == 3751  # a plain ceil would cost a form
    assert int(yamane(24000, e=0.015)) == 3750


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10**7), st.sampled_from([0.01, 0.03, 0.05, 0.1]))
def test_yamane_is_the_approximate_cochran_with_z_2_and_p_half(N: int, e: float) -> None:
    """n0 = z²P(1-P)/e² = 1/e² with z = 2, P = 0.5; Yamane = ⌈n0/(1 + n0/N)⌉ (STATISTICS.md 6.2)."""
    n0 = 2.0**2 * 0.25 / e**2
    approx = n0 / (1 + n0 / N)
    got = int(yamane(N, e))
    assert got == min(math.ceil(approx - 1e-9), N)
    assert 1 <= got <= N


def test_cochran_exact_form_by_hand() -> None:
    """N = 1000, d = 0.05, P = 0.5, 95%: N z²PQ / ((N-1)d² + z²PQ) = 960.37 / 3.4579 = 277.73 -> 278.

    With the rounded z = 1.96 the same formula gives 960.4 / 3.4579 = 277.74 -> 278 as well;
    n0 = 1.96² * 0.25 / 0.0025 = 384.16 -> 385.
    """
    N, d, P = 1000, 0.05, 0.5
    for z in (Z95, 1.96):
        exact = N * z**2 * P * (1 - P) / ((N - 1) * d**2 + z**2 * P * (1 - P))
        assert 277.7 < exact < 277.8
    res = cochran(N, margin=d)
    assert res.z == pytest.approx(1.959964, abs=1e-6)
    assert int(res.n0) == 385
    assert int(res.n) == 278
    assert int(res.n_design) == 278
    assert int(res.codes_to_issue) == 278


def test_cochran_uses_the_exact_not_the_approximate_correction() -> None:
    """N = 29: exact 29·0.96037/(28·0.0025 + 0.96037) = 27.03 -> 28; approximate n0/(1 + n0/N) = 26.96 -> 27."""
    zpq = Z95**2 * 0.25
    n0 = zpq / 0.05**2
    exact = 29 * zpq / (28 * 0.05**2 + zpq)
    approximate = n0 / (1 + n0 / 29)
    assert math.ceil(exact) == 28 and math.ceil(approximate) == 27
    assert int(cochran(29, margin=0.05).n) == 28


def test_cochran_inflation_for_design_effect_and_response_rate_rounds_once() -> None:
    """n = 277.733 (above); × 1.5 = 416.60 -> 417; ÷ 0.6 = 694.33 -> 695."""
    res = cochran(1000, margin=0.05, deff=1.5, response_rate=0.6)
    assert int(res.n) == 278
    assert int(res.n_design) == 417
    assert int(res.codes_to_issue) == 695


def test_cochran_smaller_p_and_level() -> None:
    """P = 0.9, d = 0.03, 90%: z = 1.6449, n0 = 2.7055·0.09/0.0009 = 270.55 -> 271; N = 500:
    500·0.24350/(499·0.0009 + 0.24350) = 121.75/0.69260 = 175.79 -> 176."""
    z = 1.6448536269514722
    zpq = z * z * 0.09
    assert 500 * zpq / (499 * 0.0009 + zpq) == pytest.approx(175.79, abs=0.01)
    res = cochran(500, margin=0.03, p=0.9, level=0.90)
    assert res.z == pytest.approx(z, rel=1e-12)
    assert int(res.n0) == 271
    assert int(res.n) == 176


def test_cochran_caps_at_population_but_not_n0() -> None:
    """N = 50: n = 50·0.96037/(49·0.0025 + 0.96037) = 44.35 -> 45; 45 × 1 / 0.5 = 89 forms, capped at 50."""
    res = cochran([0, 1, 50], margin=0.05, response_rate=0.5)
    assert res.n0.tolist() == [385, 385, 385]
    assert res.n.tolist() == [0, 1, 45]
    assert res.codes_to_issue.tolist() == [0, 1, 50]


def test_cochran_allows_design_effect_below_one() -> None:
    res = cochran(1000, margin=0.05, deff=0.5)
    assert int(res.n_design) == math.ceil(277.7334531731877 * 0.5)  # 138.87 -> 139


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"margin": 0.0}, "margin"),
        ({"margin": -0.05}, "margin"),
        ({"margin": 5.0}, "margin"),  # 5 meant as 5%: refused, not silently n = 1
        ({"margin": 0.05, "p": 0.0}, "p must"),
        ({"margin": 0.05, "p": 1.0}, "p must"),
        ({"margin": 0.05, "level": 1.0}, "level"),
        ({"margin": 0.05, "deff": 0.0}, "deff"),
        ({"margin": 0.05, "deff": -1.0}, "deff"),
        ({"margin": 0.05, "response_rate": 0.0}, "response_rate"),
        ({"margin": 0.05, "response_rate": 1.2}, "response_rate"),
    ],
)
def test_cochran_rejects_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cochran(1000, **kwargs)


@pytest.mark.parametrize("N", [-1, 10.5, float("nan"), float("inf")])
def test_bad_population_is_refused(N: float) -> None:
    with pytest.raises(ValueError, match="N must be whole"):
        cochran(N, margin=0.05)
    with pytest.raises(ValueError, match="N must be whole"):
        yamane(N)


@pytest.mark.parametrize("e", [0.0, 1.0, 5.0])
def test_yamane_rejects_bad_margin(e: float) -> None:
    with pytest.raises(ValueError, match="e must"):
        yamane(1000, e)


@settings(max_examples=200, deadline=None)
@given(
    N=st.integers(min_value=1, max_value=10**6),
    d=st.floats(min_value=0.005, max_value=0.3),
    p=st.floats(min_value=0.01, max_value=0.99),
    deff=st.floats(min_value=1.0, max_value=4.0),
    rr=st.floats(min_value=0.05, max_value=1.0),
)
def test_cochran_properties(N: int, d: float, p: float, deff: float, rr: float) -> None:
    res = cochran([N, N + 1], margin=d, p=p, deff=deff, response_rate=rr)
    n, n_next = (int(v) for v in res.n)
    assert 1 <= n <= min(N, int(res.n0[0]))
    assert n <= n_next  # more transactions never need fewer interviews
    assert n <= int(res.n_design[0]) <= int(res.codes_to_issue[0]) <= N
    # exact eq. 4.2 is never below the approximate correction, and within one unit of it
    n0 = res.z**2 * p * (1 - p) / d**2
    exact = N * res.z**2 * p * (1 - p) / ((N - 1) * d**2 + res.z**2 * p * (1 - p))
    approx = n0 / (1 + n0 / N)
    assert approx - 1e-9 <= exact < approx + 1
    assert n == min(math.ceil(exact - 1e-9), N)
