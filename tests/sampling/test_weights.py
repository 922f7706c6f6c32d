"""Weights: base weights, nonresponse adjustment and post-stratification by hand; raking against a
closed-form 2×2 solution and a plain-loop IPF; errors that name the problem; Kish diagnostics by hand;
properties of raking (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sampling.weights import (
    RakingError,
    base_weights,
    diagnostics,
    nonresponse_adjust,
    poststratify,
    rake,
)

# ---------------------------------------------------------------- base weights


def test_base_weights_by_hand_with_an_empty_stratum_reported() -> None:
    got = base_weights([100, 50, 30, 0], [10, 0, 3, 0])
    assert got.by_stratum.tolist() == [10.0, 0.0, 10.0, 0.0]
    assert got.empty_strata.tolist() == [1]  # stratum 3 has no population: nothing lost there
    codes = np.array([0] * 10 + [2] * 3)
    per_respondent = got.for_respondents(codes)
    assert per_respondent.tolist() == [10.0] * 13
    assert per_respondent.sum() == pytest.approx(130.0)  # the population less the empty stratum


def test_base_weights_reject_inconsistent_input() -> None:
    with pytest.raises(ValueError, match=r"more responses than population in strata \[1\]"):
        base_weights([10, 2], [3, 4])
    with pytest.raises(ValueError, match="non-negative integers"):
        base_weights([10, 2], [3.5, 1])
    weights = base_weights([10, 20], [2, 4])
    with pytest.raises(ValueError, match=r"do not match the responses given, in strata \[0, 1\]"):
        weights.for_respondents([0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match=r"codes must lie in 0\.\.1"):
        weights.for_respondents([0, 0, 1, 1, 1, 2])


# ---------------------------------------------------------------- nonresponse adjustment


def test_nonresponse_adjustment_by_hand_preserves_class_totals() -> None:
    w = np.array([10.0, 10.0, 20.0, 20.0, 5.0, 5.0, 5.0])
    classes = np.array([0, 0, 0, 1, 1, 1, 1])
    respondent = np.array([True, False, True, False, True, True, False])
    got = nonresponse_adjust(w, classes, respondent)
    # class 0: sampled 40, respondents 30, factor 4/3; class 1: sampled 35, respondents 10, factor 3.5
    assert got == pytest.approx([40 / 3, 0.0, 80 / 3, 0.0, 17.5, 17.5, 0.0], rel=1e-14)
    assert np.bincount(classes, weights=got) == pytest.approx(np.bincount(classes, weights=w), rel=1e-14)


def test_nonresponse_adjustment_names_classes_without_respondents() -> None:
    with pytest.raises(ValueError, match=r"without respondents \(collapse them\): \[1, 3\]"):
        nonresponse_adjust([1, 1, 1, 1, 1], [0, 1, 2, 3, 0], [True, False, True, False, False])


@settings(max_examples=200, deadline=None)
@given(data=st.lists(st.tuples(st.floats(0.1, 100.0), st.integers(0, 4), st.booleans()), min_size=1, max_size=60))
def test_nonresponse_adjustment_property_class_totals(data: list[tuple[float, int, bool]]) -> None:
    w = np.array([d[0] for d in data])
    classes = np.array([d[1] for d in data])
    respondent = np.array([d[2] for d in data])
    answered = set(classes[respondent].tolist())
    if set(classes.tolist()) <= answered:
        got = nonresponse_adjust(w, classes, respondent)
        assert np.all(got[~respondent] == 0) and np.all(got[respondent] > 0)
        assert np.bincount(classes, weights=got, minlength=5) == pytest.approx(
            np.bincount(classes, weights=w, minlength=5), rel=1e-12
        )
    else:
        with pytest.raises(ValueError, match="without respondents"):
            nonresponse_adjust(w, classes, respondent)


# ---------------------------------------------------------------- post-stratification


def test_poststratified_weights_sum_to_the_cell_totals() -> None:
    w = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    cells = np.array([0, 0, 1, 1, 2])
    totals = np.array([600.0, 1400.0, 55.0])
    got = poststratify(w, cells, totals)
    assert got == pytest.approx([200.0, 400.0, 600.0, 800.0, 55.0], rel=1e-14)
    assert np.bincount(cells, weights=got) == pytest.approx(totals, rel=1e-14)


def test_poststratification_names_empty_and_stray_cells() -> None:
    with pytest.raises(ValueError, match=r"no respondents \(collapse them\): \[1, 3\]"):
        poststratify([1.0, 1.0], [0, 2], [5.0, 7.0, 3.0, 1.0])
    with pytest.raises(ValueError, match=r"population total of 0: \[1\]"):
        poststratify([1.0, 1.0], [0, 1], [5.0, 0.0])
    with pytest.raises(ValueError, match=r"cell codes must lie in 0\.\.1"):
        poststratify([1.0, 1.0], [0, 2], [5.0, 3.0])


# ---------------------------------------------------------------- raking


def test_raking_a_2x2_table_matches_the_closed_form() -> None:
    """One respondent per cell, start [[1, 2], [3, 4]]; rows (60, 40), columns (50, 50).

    IPF keeps the cross-product ratio (1·4)/(2·3) = 2/3, so the raked table is [[a, 60-a], [50-a, a-10]]
    with a(a-10) / ((60-a)(50-a)) = 2/3, i.e. a² + 190a - 6000 = 0.
    """
    a = (-190.0 + math.sqrt(190.0**2 + 4 * 6000.0)) / 2.0
    rows, cols = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    got = rake([1.0, 2.0, 3.0, 4.0], [(rows, [60.0, 40.0]), (cols, [50.0, 50.0])], tol=1e-12, max_iter=1000)
    assert got.converged and got.iterations > 1
    assert got.weights == pytest.approx([a, 60 - a, 50 - a, a - 10], rel=1e-10)
    assert np.bincount(rows, weights=got.weights) == pytest.approx([60.0, 40.0], rel=1e-12)
    assert np.bincount(cols, weights=got.weights) == pytest.approx([50.0, 50.0], rel=1e-12)


def plain_ipf(
    w: list[float], rows: list[int], cols: list[int], row_totals: list[float], col_totals: list[float], cycles: int
) -> list[float]:
    """Deming-Stephan by hand: Python loops over categories and respondents, no bincount."""
    w = list(w)
    for _ in range(cycles):
        for codes, totals in ((rows, row_totals), (cols, col_totals)):
            for cat, target in enumerate(totals):
                current = sum(wi for wi, c in zip(w, codes, strict=True) if c == cat)
                w = [wi * target / current if c == cat else wi for wi, c in zip(w, codes, strict=True)]
    return w


def test_raking_a_2x3_table_reproduces_a_plain_loop_ipf_and_both_margins() -> None:
    """Eight respondents over a 2 (sex) × 3 (age group) table, unequal starting weights."""
    w0 = [1.0, 1.5, 2.0, 1.0, 3.0, 0.5, 2.5, 1.0]
    rows = [0, 0, 0, 0, 1, 1, 1, 1]
    cols = [0, 1, 2, 2, 0, 0, 1, 2]
    row_totals, col_totals = [520.0, 480.0], [300.0, 450.0, 250.0]
    got = rake(w0, [(rows, row_totals), (cols, col_totals)], tol=1e-8, max_iter=500)
    by_hand = plain_ipf(w0, rows, cols, row_totals, col_totals, cycles=got.iterations)
    assert got.converged and got.max_error <= 1e-8
    assert got.weights == pytest.approx(by_hand, rel=1e-12)
    assert np.bincount(rows, weights=got.weights) == pytest.approx(row_totals, rel=1e-8)
    assert np.bincount(cols, weights=got.weights) == pytest.approx(col_totals, rel=1e-8)
    # the first cycle alone, by hand: rows scale by 520/5.5 and 480/7, then columns to their totals
    one = plain_ipf(w0, rows, cols, row_totals, col_totals, cycles=1)
    assert one[0] == pytest.approx(300.0 * (520 / 5.5) / (520 / 5.5 + 480 / 7 * 3.5))


def test_raking_stops_at_once_when_the_start_fits() -> None:
    got = rake([2.0, 3.0, 5.0], [([0, 1, 1], [2.0, 8.0])])
    assert got.iterations == 0 and got.converged
    assert got.weights.tolist() == [2.0, 3.0, 5.0]


def test_inconsistent_margins_raise_with_the_totals_named() -> None:
    rows, cols = [0, 0, 1, 1], [0, 1, 0, 1]
    with pytest.raises(RakingError, match=r"margin 0: 100, margin 1: 110") as info:
        rake([1.0] * 4, [(rows, [60.0, 40.0]), (cols, [30.0, 80.0])])
    assert isinstance(info.value, ValueError)
    assert info.value.result is None


def test_impossible_bounds_do_not_converge_and_say_how_far_off() -> None:
    """Both weights must grow tenfold but g is capped at 2: every cycle ends 80 % short."""
    with pytest.raises(RakingError, match=r"did not converge in 50 iterations.*error 0\.8 ") as info:
        rake([1.0, 1.0], [([0, 1], [10.0, 10.0])], bounds=(0.5, 2.0), max_iter=50)
    result = info.value.result
    assert result is not None and not result.converged
    assert result.max_error == pytest.approx(0.8)
    assert result.weights.tolist() == [2.0, 2.0]


def test_too_few_iterations_raise_instead_of_returning_silently() -> None:
    rows, cols = [0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2]
    margins = [(rows, [500.0, 500.0]), (cols, [200.0, 300.0, 500.0])]
    w0 = [1.0, 4.0, 2.0, 3.0, 1.0, 5.0]
    with pytest.raises(RakingError, match="did not converge in 1 iterations"):
        rake(w0, margins, max_iter=1)
    assert rake(w0, margins, max_iter=200).converged


def test_feasible_bounds_keep_g_within_them_and_hit_the_margins() -> None:
    rng = np.random.default_rng(3)
    n = 400
    rows, cols = rng.integers(0, 2, n), rng.integers(0, 4, n)
    w0 = rng.uniform(5.0, 15.0, n)
    target = w0 * rng.uniform(0.8, 1.25, n)  # some weights within g ∈ [0.8, 1.25] meet these margins
    margins = [(rows, np.bincount(rows, weights=target)), (cols, np.bincount(cols, weights=target))]
    got = rake(w0, margins, bounds=(0.8, 1.25), max_iter=2000)
    g = got.weights / w0
    assert g.min() >= 0.8 - 1e-12 and g.max() <= 1.25 + 1e-12
    for codes, totals in margins:
        assert np.bincount(codes, weights=got.weights) == pytest.approx(totals, rel=1e-8)


def test_raking_rejects_malformed_input() -> None:
    with pytest.raises(ValueError, match=r"margin 1: categories with a total but no respondent weight: \[2\]"):
        rake(
            [1.0, 1.0],
            [
                ([0, 1], [1.0, 1.0]),
                (
                    [
                        0,
                        1,
                    ],
                    [1.0, 0.5, 0.5],
                ),
            ],
        )
    with pytest.raises(ValueError, match="lower < upper"):
        rake([1.0], [([0], [1.0])], bounds=(2.0, 1.0))
    with pytest.raises(ValueError, match="non-negative integers"):
        rake([1.0, 1.0], [([0, -1], [1.0, 1.0])])
    with pytest.raises(ValueError, match="2 codes for 3 weights"):
        rake([1.0, 1.0, 1.0], [([0, 1], [1.0, 1.0])])


@st.composite
def raking_problems(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Start weights and 1-3 margins whose totals come from another positive set of weights (so consistent)."""
    n = draw(st.integers(min_value=2, max_value=40))
    positive = st.floats(min_value=0.2, max_value=20.0)
    w0 = np.array(draw(st.lists(positive, min_size=n, max_size=n)))
    truth = np.array(draw(st.lists(positive, min_size=n, max_size=n)))
    margins = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        k = draw(st.integers(min_value=1, max_value=4))
        codes = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
        margins.append((codes, np.bincount(codes, weights=truth, minlength=k)))
    return w0, margins


@settings(max_examples=200, deadline=None)
@given(problem=raking_problems())
def test_raking_property_hits_every_margin_with_positive_weights(
    problem: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]],
) -> None:
    w0, margins = problem
    got = rake(w0, margins, tol=1e-8, max_iter=5000)
    assert got.converged and got.max_error <= 1e-8
    assert np.all(got.weights > 0)
    for codes, totals in margins:
        current = np.bincount(codes, weights=got.weights, minlength=totals.size)
        assert np.all(np.abs(current - totals) <= 1e-8 * totals)


# ---------------------------------------------------------------- diagnostics


def test_kish_diagnostics_by_hand() -> None:
    got = diagnostics([1.0, 2.0, 3.0, 4.0])
    # Σw = 10, Σw² = 30: deff = 4·30/100 = 1.2; also 1 + CV² with mean 2.5 and variance (divisor n) 1.25
    assert (got.n, got.sum, got.min, got.max, got.ratio) == (4, 10.0, 1.0, 4.0, 4.0)
    assert got.deff_kish == pytest.approx(1.2, rel=1e-15)
    assert got.deff_kish == pytest.approx(1 + 1.25 / 2.5**2, rel=1e-15)
    assert got.n_effective == pytest.approx(100 / 30, rel=1e-15)


def test_equal_weights_have_no_design_effect_and_zero_weights_an_infinite_ratio() -> None:
    equal = diagnostics(np.full(50, 7.5))
    assert equal.deff_kish == pytest.approx(1.0) and equal.n_effective == pytest.approx(50.0)
    with_zero = diagnostics([0.0, 1.0, 1.0])
    assert math.isinf(with_zero.ratio)
    assert with_zero.deff_kish == pytest.approx(1.5)
    with pytest.raises(ValueError, match="at least one positive weight"):
        diagnostics([0.0, 0.0])
