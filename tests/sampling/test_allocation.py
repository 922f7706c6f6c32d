"""Allocation: hand-worked examples, bounds, largest remainder, errors, and hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sampling.allocation import allocate, fixed_quotas


def test_proportional_whole_quotas() -> None:
    got = allocate(10, [50, 30, 20])
    assert got.n.tolist() == [5, 3, 2]
    assert got.n.dtype == np.int64
    assert got.real.tolist() == pytest.approx([5.0, 3.0, 2.0])
    assert got.method == "proportional"


def test_largest_remainder_by_hand() -> None:
    """N = (61, 27, 12), n = 10: quotas 6.1, 2.7, 1.2; floors 6 + 2 + 1 = 9; the one left goes to 0.7."""
    assert allocate(10, [61, 27, 12]).n.tolist() == [6, 3, 1]


def test_largest_remainder_tie_goes_to_larger_stratum_then_order() -> None:
    """N = (35, 45, 20), n = 10: quotas 3.5, 4.5, 2.0; the tie on 0.5 goes to N = 45 -> (3, 5, 2).
    N = (30, 30, 40), n = 5: quotas 1.5, 1.5, 2.0; equal N, so the first stratum wins -> (2, 1, 2)."""
    assert allocate(10, [35, 45, 20]).n.tolist() == [3, 5, 2]
    assert allocate(5, [30, 30, 40]).n.tolist() == [2, 1, 2]


def test_never_ceil_per_stratum() -> None:
    """Three equal strata, n = 10: quotas 3.33 each. Ceil per stratum would give 12 (samplics' habit)."""
    got = allocate(10, [100, 100, 100])
    assert got.n.tolist() == [4, 3, 3]
    assert int(got.n.sum()) == 10


def test_neyman_by_hand() -> None:
    """Cochran-style example: N = (400, 300, 300), S = (10, 20, 5), n = 100.

    N_h S_h = 4000, 6000, 1500 (sum 11500); n_h = 34.78, 52.17, 13.04; floors 34 + 52 + 13 = 99;
    the largest remainder (0.78) gets the last interview.
    """
    got = allocate(100, [400, 300, 300], method="neyman", sd=[10, 20, 5])
    assert got.real.tolist() == pytest.approx([100 * 4000 / 11500, 100 * 6000 / 11500, 100 * 1500 / 11500])
    assert got.n.tolist() == [35, 52, 13]
    assert got.method == "neyman"


def test_neyman_cap_by_hand() -> None:
    """N = (20, 500, 480), S = (100, 5, 5): N S = 2000, 2500, 2400; n = 100 gives 28.99 > 20 for the first.
    Fixed at 20, the other 80 go 2500 : 2400 -> 40.82, 39.18 -> floors 40 + 39, the 0.82 gets one more."""
    got = allocate(100, [20, 500, 480], method="neyman", sd=[100, 5, 5])
    assert got.real.tolist() == pytest.approx([20, 80 * 2500 / 4900, 80 * 2400 / 4900])
    assert got.n.tolist() == [20, 41, 39]


def test_minimums_by_hand() -> None:
    """Proportional, N = (1000, 100, 5), n = 100, minimum 20: m = (20, 20, 5) and the third is whole (5 = N).
    95 left for the first two: 86.36, 8.64 -> the second is fixed at 20, the first takes 75."""
    got = allocate(100, [1000, 100, 5], minimum=20)
    assert got.n.tolist() == [75, 20, 5]


def test_both_bounds_violated_larger_excess_fixes_the_caps_first() -> None:
    """Neyman, N = (1000, 20, 1000), S = (0.01, 100, 0.01): N S = 10, 2000, 10; n = 45, minimum 10.

    Round 1: 0.22, 44.55, 0.22: two below 10 (short by 19.56) and one above 20 (over by 24.55).
    Fixing all three would give 10 + 20 + 10 = 40, not 45. The excess is larger, so only the cap is fixed;
    round 2 splits 25 equally: 12.5 and 12.5, both above 10. Largest remainder: tie, equal N, first wins.
    """
    got = allocate(45, [1000, 20, 1000], method="neyman", sd=[0.01, 100, 0.01], minimum=10)
    assert got.real.tolist() == pytest.approx([12.5, 20, 12.5])
    assert got.n.tolist() == [13, 20, 12]


def test_both_bounds_violated_larger_deficit_fixes_the_minimums_first() -> None:
    """Neyman, N = (30, 1000, 1000), S = (10, 0.01, 0.01): N S = 300, 10, 10; n = 75, minimum 25.

    Round 1: 70.31, 2.34, 2.34: over the cap by 40.31, under the minimums by 45.31. Fixing all would give
    30 + 25 + 25 = 80. The deficit is larger, so the minimums are fixed; the first takes the 25 left.
    """
    got = allocate(75, [30, 1000, 1000], method="neyman", sd=[10, 0.01, 0.01], minimum=25)
    assert got.n.tolist() == [25, 25, 25]


def test_power_allocation_by_hand() -> None:
    """q = 0.5, S = 1: weights √100, √400, √900 = 10, 20, 30; n = 60 -> 10, 20, 30."""
    assert allocate(60, [100, 400, 900], method="power", power=0.5).n.tolist() == [10, 20, 30]


def test_equal_allocation_skips_empty_strata() -> None:
    assert allocate(9, [100, 0, 40, 5000], method="equal").n.tolist() == [3, 0, 3, 3]


def test_zero_variance_strata_get_their_minimum_and_the_rest_when_others_are_full() -> None:
    """S = 0 everywhere but one stratum: it takes everything up to its cap; what is left goes by N_h."""
    got = allocate(30, [10, 100, 300], method="neyman", sd=[1.0, 0.0, 0.0], minimum=2)
    assert got.n.tolist() == [10, 5, 15]  # 10 capped; 20 left for N = 100 : 300 -> 5 : 15 (both above 2)


def test_without_caps_a_stratum_can_exceed_its_population() -> None:
    got = allocate(100, [20, 500, 480], method="neyman", sd=[100, 5, 5], cap_at_population=False)
    assert got.n.tolist() == [29, 36, 35]  # 28.99, 36.23, 34.78 -> floors 28 + 36 + 34, remainders .99, .78
    assert int(got.n.sum()) == 100


def test_alabama_paradox_exists_so_monotonicity_is_not_promised() -> None:
    """N = (5, 3, 1): n = 4 gives quotas 2.22, 1.33, 0.44 -> (2, 1, 1); n = 5 gives 2.78, 1.67, 0.56 -> (3, 2, 0).
    The third stratum loses its interview when the total grows: Hamilton's method is not monotone."""
    assert allocate(4, [5, 3, 1]).n.tolist() == [2, 1, 1]
    assert allocate(5, [5, 3, 1]).n.tolist() == [3, 2, 0]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((10, [5, 5]), {"method": "optimal"}, "unknown allocation method 'optimal'"),
        ((10, [5, 5]), {"method": "neyman"}, "needs sd"),
        ((10, [50, 50]), {"sd": [1.0]}, "sd has shape"),
        ((10, [50, 50]), {"method": "neyman", "sd": [1.0, -1.0]}, "non-negative"),
        ((10, [50, 50]), {"method": "power", "power": 1.5}, r"\[0, 1\]"),
        ((10.5, [50, 50]), {}, "total must be a whole"),
        ((10, [50, -1]), {}, "population"),
        ((10, [[50, 50]]), {}, "one-dimensional"),
        ((10, []), {}, "non-empty"),
        ((50, [30, 40, 10]), {"minimum": 20}, r"minimums need 50 interviews .* total is 50"),
        ((81, [30, 40, 10]), {}, r"total 81 exceeds the population 80"),
        ((5, [0, 0]), {"cap_at_population": False}, r"total 5 exceeds the population 0"),
    ],
)
def test_bad_input_is_refused(args: tuple, kwargs: dict, message: str) -> None:
    if message.startswith("minimums"):
        allocate(*args, **kwargs)  # 20 + 20 + 10 = 50 is exactly feasible
        args = (49, args[1])
        message = r"minimums need 50 interviews .* total is 49"
    with pytest.raises(ValueError, match=message):
        allocate(*args, **kwargs)


def test_fixed_quotas() -> None:
    quotas = {"commune": 150, "ward": 200, "district": 500}
    got = fixed_quotas(["ward", "commune", "district", "commune"], quotas)
    assert got.tolist() == [200, 150, 500, 150]
    assert got.dtype == np.int64
    with pytest.raises(ValueError, match=r"no quota for unit kind\(s\) \['department', 'township'\]"):
        fixed_quotas(["commune", "township", "department"], quotas)
    with pytest.raises(ValueError, match="quota for 'ward'"):
        fixed_quotas(["ward"], {"ward": -5})


# --- properties -------------------------------------------------------------------------------------

METHOD = st.sampled_from(["proportional", "neyman", "power", "equal"])


@st.composite
def problems(draw: st.DrawFn) -> dict:
    H = draw(st.integers(min_value=1, max_value=8))
    pop = draw(st.lists(st.integers(min_value=0, max_value=3000), min_size=H, max_size=H))
    assume(sum(pop) > 0)
    sd = draw(st.lists(st.floats(min_value=0.05, max_value=20.0), min_size=H, max_size=H))
    minimum = draw(st.integers(min_value=0, max_value=60))
    low = sum(min(minimum, N) for N in pop)
    total = draw(st.integers(min_value=low, max_value=sum(pop)))
    return {
        "total": total,
        "population": pop,
        "sd": sd,
        "minimum": minimum,
        "method": draw(METHOD),
        "power": draw(st.floats(min_value=0.0, max_value=1.0)),
    }


def _weights(p: dict) -> np.ndarray:
    pop, sd = np.asarray(p["population"], float), np.asarray(p["sd"])
    return {
        "proportional": pop,
        "neyman": pop * sd,
        "power": np.where(pop > 0, pop ** p["power"], 0.0) * sd,
        "equal": (pop > 0).astype(float),
    }[p["method"]]


@settings(max_examples=300, deadline=None)
@given(problems())
def test_total_exact_and_bounds_respected(p: dict) -> None:
    got = allocate(**p)
    pop = np.asarray(p["population"])
    lower = np.minimum(p["minimum"], pop)
    assert int(got.n.sum()) == p["total"]
    assert np.all(got.n >= lower)
    assert np.all(got.n <= pop)
    assert got.real.sum() == pytest.approx(p["total"], abs=1e-6)
    assert np.all(np.abs(got.n - got.real) < 1)  # Hamilton moves each stratum by less than one


@settings(max_examples=300, deadline=None)
@given(problems())
def test_bounded_allocation_is_the_clipped_proportional_solution(p: dict) -> None:
    """Independent check of the round-by-round rule: find λ with Σ clip(λ w_h, m_h, N_h) = n by bisection."""
    w = _weights(p)
    pop = np.asarray(p["population"], float)
    lower = np.minimum(p["minimum"], pop)
    assume(np.where(w > 0, pop, lower).sum() >= p["total"])  # no fallback needed: the weights decide

    def filled(lam: float) -> float:
        return float(np.clip(lam * w, lower, pop).sum())

    lo, hi = 0.0, 1.0
    while filled(hi) < p["total"]:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if filled(mid) < p["total"] else (lo, mid)
    expected = np.clip(hi * w, lower, pop)
    assert allocate(**p).real == pytest.approx(expected, abs=1e-6 * max(1, p["total"]))


@settings(max_examples=200, deadline=None)
@given(problems())
def test_neyman_with_equal_sd_is_proportional(p: dict) -> None:
    common = {k: p[k] for k in ("total", "population", "minimum")}
    ney = allocate(**common, method="neyman", sd=[p["sd"][0]] * len(p["population"]))
    prop = allocate(**common, method="proportional")
    assert ney.real == pytest.approx(prop.real, abs=1e-9 * max(1, p["total"]))
    assert ney.n.tolist() == prop.n.tolist()


@settings(max_examples=200, deadline=None)
@given(problems())
def test_power_one_is_neyman_and_power_zero_is_equal(p: dict) -> None:
    common = {k: p[k] for k in ("total", "population", "minimum")}
    assert (
        allocate(**common, method="power", power=1.0, sd=p["sd"]).n.tolist()
        == allocate(**common, method="neyman", sd=p["sd"]).n.tolist()
    )
    assert allocate(**common, method="power", power=0.0).n.tolist() == allocate(**common, method="equal").n.tolist()


@settings(max_examples=200, deadline=None)
@given(problems())
def test_real_allocation_is_monotone_in_the_total(p: dict) -> None:
    """The real-valued allocation never shrinks when the total grows by one (the integers can: Alabama)."""
    assume(p["total"] < sum(p["population"]))
    before = allocate(**p).real
    after = allocate(**{**p, "total": p["total"] + 1}).real
    assert np.all(after >= before - 1e-9 * max(1, p["total"]))


@settings(max_examples=200, deadline=None)
@given(problems(), st.integers(min_value=0, max_value=5000))
def test_without_caps_total_exact_and_minimums_respected(p: dict, extra: int) -> None:
    """Without caps the total may exceed Σ N_h; every non-empty stratum gets the full minimum, empty ones 0."""
    pop = np.asarray(p["population"])
    total = int(p["minimum"] * np.count_nonzero(pop)) + extra
    got = allocate(**{**p, "total": total}, cap_at_population=False)
    assert int(got.n.sum()) == total
    assert np.all(got.n[pop > 0] >= p["minimum"])
    assert np.all(got.n[pop == 0] == 0)
