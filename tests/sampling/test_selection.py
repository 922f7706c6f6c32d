"""Selection: systematic positions against exact rational arithmetic, exact n, exact inclusion probabilities;
Bernoulli probabilities by hand and realised rates within binomial error."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampling.selection import bernoulli_probability, bernoulli_select, systematic


class FixedStart:
    """Stands in for a Generator whose ``integers(0, N)`` returns a chosen start r."""

    def __init__(self, r: int) -> None:
        self.r = r

    def integers(self, low: int, high: int) -> int:
        assert low == 0 and 0 <= self.r < high
        return self.r


def with_start(r: int) -> np.random.Generator:
    return cast(np.random.Generator, FixedStart(r))


def reference_positions(big_n: int, n: int, r: int) -> list[int]:
    """⌊s + i·k⌋ with k = N/n and s = r/n, in exact rationals."""
    k = Fraction(big_n, n)
    s = Fraction(r, n)
    return [math.floor(s + i * k) for i in range(n)]


@pytest.mark.parametrize("big_n", [1, 2, 3, 7, 10, 13, 29, 100, 101, 250])
def test_systematic_selects_exactly_n_for_every_n_and_every_start(big_n: int) -> None:
    """Every n ≤ N and every start r = 0..N-1 (including the last, where float versions lose a unit)."""
    for n in range(1, big_n + 1):
        for r in {0, 1 % big_n, big_n // 2, big_n - 1}:
            got = systematic(big_n, n, rng=with_start(r))
            assert got.size == n
            assert np.unique(got).size == n
            assert got[0] >= 0 and got[-1] <= big_n - 1
            assert got.tolist() == reference_positions(big_n, n, r)


def test_systematic_matches_every_k_th_with_fractional_interval() -> None:
    """N = 10, n = 4: k = 2.5; start s = 7/4 = 1.75 gives ⌊1.75⌋, ⌊4.25⌋, ⌊6.75⌋, ⌊9.25⌋."""
    assert systematic(10, 4, rng=with_start(7)).tolist() == [1, 4, 6, 9]
    assert systematic(10, 4, rng=with_start(0)).tolist() == [0, 2, 5, 7]
    assert systematic(10, 5, rng=with_start(9)).tolist() == [1, 3, 5, 7, 9]  # k = 2, s = 1.8


@pytest.mark.parametrize(("big_n", "n"), [(10, 3), (17, 5), (50, 7), (64, 64), (31, 1)])
def test_every_unit_has_inclusion_probability_n_over_n(big_n: int, n: int) -> None:
    """Over the N equally likely starts, each unit is selected exactly n times: π = n/N exactly."""
    counts = np.zeros(big_n, dtype=np.int64)
    for r in range(big_n):
        counts[systematic(big_n, n, rng=with_start(r))] += 1
    assert counts.tolist() == [n] * big_n


def test_systematic_edge_cases_and_errors() -> None:
    rng = np.random.default_rng(1)
    assert systematic(5, 0, rng=rng).size == 0
    assert systematic(0, 0, rng=rng).size == 0
    assert systematic(6, 6, rng=rng).tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="sample size n=4 exceeds the population size N=3"):
        systematic(3, 4, rng=rng)
    with pytest.raises(ValueError, match="non-negative"):
        systematic(3, -1, rng=rng)
    with pytest.raises(TypeError):
        systematic(10.0, 2, rng=rng)  # type: ignore[arg-type]


def test_systematic_is_reproducible_with_a_seed() -> None:
    a = systematic(100_000, 400, rng=np.random.default_rng(20240601))
    b = systematic(100_000, 400, rng=np.random.default_rng(20240601))
    assert a.tolist() == b.tolist()
    gaps = np.diff(a)
    assert set(gaps.tolist()) == {250}  # k = 250 is an integer: equal gaps


@settings(max_examples=300, deadline=None)
@given(big_n=st.integers(min_value=1, max_value=200_000), share=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_systematic_property_exactly_n_distinct_sorted_in_range(big_n: int, share: float, seed: int) -> None:
    n = min(big_n, round(share * big_n))
    got = systematic(big_n, n, rng=np.random.default_rng(seed))
    assert got.size == n
    assert np.all(np.diff(got) > 0)  # sorted and distinct
    if n:
        assert got[0] >= 0 and got[-1] < big_n


def test_bernoulli_probability_by_hand() -> None:
    got = bernoulli_probability([100, 100, 50, 0, 10], [1000, 80, 400, 500, 0], response_rate=0.5)
    # 100/(1000·0.5) = 0.2; 100/40 capped at 1; 50/200 = 0.25; target 0; no transactions expected but a target
    assert got == pytest.approx([0.2, 1.0, 0.25, 0.0, 1.0])
    per_stratum = bernoulli_probability([30, 30], [300, 300], response_rate=[1.0, 0.6])
    assert per_stratum == pytest.approx([0.1, 30 / 180])


@pytest.mark.parametrize(
    ("target", "expected", "rr", "message"),
    [
        (-1, 10, 1.0, "targets"),
        (1, -10, 1.0, "expected transactions"),
        (1, 10, 0.0, "response rates"),
        (1, 10, 1.2, "response rates"),
        (np.nan, 10, 1.0, "targets"),
    ],
)
def test_bernoulli_probability_rejects_bad_input(target: float, expected: float, rr: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bernoulli_probability(target, expected, response_rate=rr)


@pytest.mark.parametrize("p", [0.01, 0.137, 0.5, 0.93])
def test_bernoulli_select_realised_rate_within_binomial_error(p: float) -> None:
    draws = 100_000
    chosen = bernoulli_select(np.full(draws, p), rng=np.random.default_rng(7))
    assert chosen.dtype == np.bool_ and chosen.shape == (draws,)
    se = math.sqrt(draws * p * (1 - p))
    assert abs(int(chosen.sum()) - draws * p) <= 4 * se


def test_bernoulli_select_per_stratum_rates_and_the_certain_cases() -> None:
    rng = np.random.default_rng(11)
    probs = bernoulli_probability([20, 60, 5], [1000, 300, 5000])  # 0.02, 0.2, 0.001
    strata = rng.integers(0, 3, size=300_000)
    chosen = bernoulli_select(probs[strata], rng=rng)
    for h in range(3):
        m = int(np.sum(strata == h))
        k = int(chosen[strata == h].sum())
        assert abs(k - m * probs[h]) <= 4 * math.sqrt(m * probs[h] * (1 - probs[h]))
    assert not bernoulli_select(np.zeros(1000), rng=rng).any()
    assert bernoulli_select(np.ones(1000), rng=rng).all()
    one = bernoulli_select(0.5, rng=rng)
    assert one.shape == () and one.dtype == np.bool_


def test_bernoulli_select_rejects_probabilities_outside_0_1() -> None:
    rng = np.random.default_rng(0)
    for bad in (1.5, -0.1, np.nan):
        with pytest.raises(ValueError, match=r"\[0, 1\]"):
            bernoulli_select(bad, rng=rng)
