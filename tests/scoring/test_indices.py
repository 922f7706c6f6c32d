"""The SIPAS-style scorecard: indices computed by hand on small data, domains, roll-up, coverage."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.design import Design, DesignError
from scoring.estimate import domain_ratios
from scoring.indices import IndexLayout, contrast_matrix, scorecard
from scoring.intervals import proportion_intervals

LAYOUT = IndexLayout(
    criteria=(0, 1, 2, 3),
    criterion_names=("a1", "a2", "b1", "b2"),
    elements=(("a", (0, 1)), ("b", (2, 3))),
)


def _answers(rng: np.random.Generator, n: int, p: float = 0.85) -> np.ndarray:
    satisfied = rng.random((n, 4)) < p
    levels = np.where(satisfied, rng.integers(4, 6, (n, 4)), rng.integers(1, 4, (n, 4))).astype(np.uint8)
    levels[rng.random((n, 4)) < 0.05] = 255  # not applicable
    levels[rng.random((n, 4)) < 0.02] = 0  # no answer
    return levels


def test_indices_by_hand_on_six_respondents() -> None:
    answers = np.array(
        [[5, 4, 2, 255], [4, 3, 5, 5], [1, 5, 4, 4], [5, 5, 0, 3], [2, 2, 4, 5], [4, 255, 5, 1]], dtype=np.uint8
    )
    design = Design.build(6)
    card = scorecard(design, answers, LAYOUT)
    # criterion shares among valid answers (N/A 255 and missing 0 excluded)
    a1, a2, b1, b2 = 4 / 6, 3 / 5, 4 / 5, 3 / 5
    got = dict(zip(card.measures, card.point[0], strict=True))
    assert got["a1"] == pytest.approx(a1) and got["a2"] == pytest.approx(a2)
    assert got["b1"] == pytest.approx(b1) and got["b2"] == pytest.approx(b2)
    assert got["a"] == pytest.approx((a1 + a2) / 2) and got["b"] == pytest.approx((b1 + b2) / 2)
    assert got["index"] == pytest.approx(((a1 + a2) / 2 + (b1 + b2) / 2) / 2)
    assert card.n[0].tolist() == [6, 5, 5, 5, 6, 6, 6]
    items = scorecard(design, answers, LAYOUT, aggregation="mean_of_items")
    assert items.point[0, -1] == pytest.approx((a1 + a2 + b1 + b2) / 4)
    pooled = scorecard(design, answers, LAYOUT, aggregation="pooled")
    assert pooled.point[0, -1] == pytest.approx((4 + 3 + 4 + 3) / (6 + 5 + 5 + 5))


def test_unknown_aggregation_and_bad_layouts_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown aggregation"):
        contrast_matrix(LAYOUT, "median")
    with pytest.raises(ValueError, match="exactly one element"):
        IndexLayout(criteria=(0, 1), criterion_names=("x", "y"), elements=(("e", (0,)),))


def test_srs_variance_of_a_share_is_p_q_over_n_minus_1() -> None:
    """Equal weights, one stratum, no fpc: v = p(1-p)/(n-1), worked by hand (Cochran 1977, eq. 3.5 with f = 0)."""
    y = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1], dtype=float)
    est = domain_ratios(Design.build(10), y, np.ones(10))
    p = 0.8
    assert est.ratio[0, 0] == pytest.approx(p)
    assert est.ratio_var[0, 0] == pytest.approx(p * (1 - p) / 9)
    assert est.df[0] == 9


def test_stratified_mean_with_fpc_matches_the_textbook_formula() -> None:
    """V(ȳ_st) = Σ W_h² (1 - f_h) s_h² / n_h (Cochran 1977, Theorem 5.3), computed independently."""
    rng = np.random.default_rng(3)
    n_h = np.array([8, 12, 5])
    big_n = np.array([40, 300, 25])
    strata = np.repeat(np.arange(3), n_h)
    y = (rng.random(strata.size) < np.array([0.7, 0.9, 0.5])[strata]).astype(float)
    weights = (big_n / n_h)[strata]
    design = Design.build(weights=weights, strata=strata, population_psus=big_n[strata].astype(float))
    est = domain_ratios(design, y, np.ones_like(y))
    w_h = big_n / big_n.sum()
    means = np.array([y[strata == h].mean() for h in range(3)])
    s2 = np.array([y[strata == h].var(ddof=1) for h in range(3)])
    assert est.ratio[0, 0] == pytest.approx((w_h * means).sum())
    assert est.ratio_var[0, 0] == pytest.approx((w_h**2 * (1 - n_h / big_n) * s2 / n_h).sum())
    assert est.df[0] == strata.size - 3


def test_domain_points_equal_subset_points_and_df_is_the_domains_own() -> None:
    rng = np.random.default_rng(8)
    n = 500
    answers = _answers(rng, n)
    unit = rng.integers(0, 5, n)
    field = rng.integers(0, 3, n)
    weights = rng.uniform(1, 3, n)
    design = Design.build(weights=weights, strata=unit * 10 + field)
    card = scorecard(design, answers, LAYOUT, domain=unit)
    for g in range(5):
        rows = unit == g
        sub = scorecard(Design.build(weights=weights[rows], strata=(unit * 10 + field)[rows]), answers[rows], LAYOUT)
        assert card.point[g] == pytest.approx(sub.point[0])
        # strata are nested in units, so the domain's variance is the subset's too
        assert card.se[g] == pytest.approx(sub.se[0])
        assert card.df[g] == rows.sum() - len(np.unique(field[rows]))


def test_roll_up_pools_the_subtree_and_is_not_a_mean_of_children() -> None:
    rng = np.random.default_rng(9)
    sizes = np.array([400, 40, 40])
    unit = np.repeat(np.arange(3), sizes)
    answers = np.vstack([_answers(rng, s, p) for s, p in zip(sizes, (0.95, 0.6, 0.6), strict=True)])
    design = Design.build(strata=unit)
    units = scorecard(design, answers, LAYOUT, domain=unit)
    district = scorecard(design, answers, LAYOUT, domain=np.zeros(unit.size, dtype=np.int64))
    whole = scorecard(design, answers, LAYOUT)
    assert district.point[0] == pytest.approx(whole.point[0])
    j = units.column("a1")
    mean_of_children = units.point[:, j].mean()
    assert abs(district.point[0, j] - mean_of_children) > 0.05  # a big unit weighs more in the pool


def test_difference_from_the_whole_uses_the_covariance() -> None:
    """SE(domain - whole) from the engine equals a direct linearisation of the difference (by loops)."""
    rng = np.random.default_rng(10)
    n = 300
    y = (rng.random(n) < 0.8).astype(float)
    dom = rng.integers(0, 3, n)
    strata = rng.integers(0, 4, n)
    w = rng.uniform(1, 2, n)
    design = Design.build(weights=w, strata=strata)
    answers = np.where(y[:, None] == 1, 5, 1).repeat(4, axis=1).astype(np.uint8)
    card = scorecard(design, answers, LAYOUT, domain=dom, compare_with_total=True)
    assert card.vs_total_se is not None
    p_all = (w * y).sum() / w.sum()
    for g in range(3):
        inside = dom == g
        p_g = (w * y * inside).sum() / (w * inside).sum()
        z = np.where(inside, w * (y - p_g) / (w * inside).sum(), 0.0) - w * (y - p_all) / w.sum()
        var = 0.0
        for h in range(4):
            zh = z[strata == h]
            var += zh.size / (zh.size - 1) * ((zh - zh.mean()) ** 2).sum()
        assert card.vs_total_se[g, card.column("a1")] == pytest.approx(np.sqrt(var), rel=1e-10)


def test_design_validation_names_the_problem() -> None:
    with pytest.raises(DesignError, match="finite and >= 0"):
        Design.build(weights=np.array([1.0, -1.0]))
    with pytest.raises(DesignError, match="constant within a stratum"):
        Design.build(strata=np.array([0, 0]), population_psus=np.array([10.0, 11.0]))
    with pytest.raises(DesignError, match="N_h < n_h"):
        Design.build(strata=np.array([0, 0, 0]), population_psus=np.array([2.0, 2.0, 2.0]))
    with pytest.raises(DesignError, match="not both"):
        Design.build(strata=np.array([0]), population_psus=np.array([5.0]), sampling_fraction=np.array([0.2]))
    with pytest.raises(DesignError, match="lonely_psu"):
        Design.build(3, lonely_psu="ignore")  # type: ignore[arg-type]
    single = Design.build(strata=np.array([0, 0, 1]), lonely_psu="fail")
    with pytest.raises(DesignError, match="single PSU: 1"):
        domain_ratios(single, np.ones(3), np.ones(3))


def test_default_interval_covers_about_95_percent_on_designs_like_ours() -> None:
    """Stratified by field with an fpc and unequal weights, n about 100, true share 0.90.

    Recorded figure (seed 2026, 2,000 samples): see docs/methodology.md.
    """
    rng = np.random.default_rng(2026)
    pop_sizes = np.array([900, 400, 200])
    pop_p = np.array([0.93, 0.88, 0.82])
    true = (pop_sizes * pop_p).sum() / pop_sizes.sum()
    n_h = np.array([50, 30, 20])
    strata = np.repeat(np.arange(3), n_h)
    design = Design.build(
        weights=(pop_sizes / n_h)[strata], strata=strata, population_psus=pop_sizes[strata].astype(float)
    )
    covered = 0
    reps = 2000
    for _ in range(reps):
        y = (rng.random(strata.size) < pop_p[strata]).astype(float)
        est = domain_ratios(design, y, np.ones_like(y))
        ci = proportion_intervals(est.ratio[0, 0], est.ratio_var[0, 0], strata.size, est.df[0])
        covered += int(ci.lower <= true <= ci.upper)
    coverage = covered / reps
    assert 0.93 <= coverage <= 0.975, coverage
