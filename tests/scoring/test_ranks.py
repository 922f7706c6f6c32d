"""Rank confidence sets: hand-computed examples, a slow reference implementation, properties, coverage."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scoring import ranks
from scoring.ranks import RankSets, joint_rank_sets, marginal_rank_sets, simultaneous_rank_sets, tau_best

Pair = tuple[int, int]

# --------------------------------------------------------------------------------------------------
# A slow, obviously correct reference for the step-down procedures: Python loops over pairs and draws.
# It follows the documented conventions: draws E = default_rng(seed).standard_normal((R, p)), Z = E * se
# (or E @ cholesky(cov).T), quantile numpy "linear" floored at 0, strict rejection T > c, pairs with
# σ_jk = 0 decided without error and never tested.
# --------------------------------------------------------------------------------------------------


def pair_sd_from_se(se: list[float]) -> list[list[float]]:
    return [[math.sqrt(a * a + b * b) for b in se] for a in se]


def pair_sd_from_cov(cov: npt.NDArray[np.float64]) -> list[list[float]]:
    p = cov.shape[0]
    out = [[0.0] * p for _ in range(p)]
    for j in range(p):
        for k in range(p):
            total = float(cov[j, j]) + float(cov[k, k])
            var = total - 2.0 * float(cov[j, k])
            out[j][k] = 0.0 if var <= 1e-12 * total else math.sqrt(var)
    return out


def reference_rank_sets(
    theta: list[float],
    sigma: list[list[float]],
    critical: Callable[[set[Pair]], float | None],
    *,
    simultaneous: bool,
    stepdown: bool,
) -> tuple[list[int], list[int]]:
    p = len(theta)

    def run(initial: Iterable[Pair]) -> set[Pair]:
        rejected = {(j, k) for j in range(p) for k in range(p) if j != k and sigma[j][k] == 0 and theta[j] > theta[k]}
        current = {(j, k) for (j, k) in initial if sigma[j][k] > 0}
        while current:
            c = critical(current)
            if c is None:
                break
            new = {(j, k) for (j, k) in current if (theta[j] - theta[k]) / sigma[j][k] > c}
            if not new:
                break
            rejected |= new
            current -= new
            if not stepdown:
                break
        return rejected

    all_pairs = [(j, k) for j in range(p) for k in range(p) if j != k]
    lower, upper = [], []
    table = run(all_pairs) if simultaneous else set()
    for j in range(p):
        rej = table if simultaneous else run([(a, b) for (a, b) in all_pairs if j in (a, b)])
        lower.append(1 + sum((k, j) in rej for k in range(p)))
        upper.append(p - sum((j, k) in rej for k in range(p)))
    return lower, upper


def bootstrap_critical(
    z: npt.NDArray[np.float64], sigma: list[list[float]], alpha: float
) -> Callable[[set[Pair]], float | None]:
    def critical(current: set[Pair]) -> float | None:
        maxima = []
        for r in range(z.shape[0]):
            m = -math.inf
            for j, k in current:
                m = max(m, (float(z[r, j]) - float(z[r, k])) / sigma[j][k])
            maxima.append(m)
        return max(float(np.quantile(maxima, 1 - alpha)), 0.0)

    return critical


def holm_critical(alpha: float) -> Callable[[set[Pair]], float | None]:
    def critical(current: set[Pair]) -> float | None:
        m = sum(1 for (j, k) in current if j < k and (k, j) in current)
        return float(stats.norm.isf(alpha / (2 * m))) if m else None

    return critical


def draws_for(seed: int, draws: int, p: int) -> npt.NDArray[np.float64]:
    return np.random.default_rng(seed).standard_normal((draws, p))


def true_ranks(theta: npt.ArrayLike) -> npt.NDArray[np.int64]:
    t = np.asarray(theta, dtype=float)
    return np.array([1 + int(np.sum(t > v)) for v in t])


def covers(rs: RankSets, ranks_: npt.ArrayLike) -> bool:
    r = np.asarray(ranks_)
    return bool(np.all((rs.lower <= r) & (r <= rs.upper)))


# --------------------------------------------------------------------------------------------------
# Klein, Wright & Wieczorek
# --------------------------------------------------------------------------------------------------


def test_kww_hand_computed_sidak() -> None:
    est = np.array([0.90, 0.80, 0.70, 0.50])
    se = np.array([0.02, 0.03, 0.04, 0.01])
    z = stats.norm.ppf(1 - (1 - 0.95 ** (1 / 4)) / 2)  # Šidák, K = 4: about 2.491
    lo, hi = est - z * se, est + z * se
    # The example is far from any touching endpoint: A-B and B-C overlap, every other pair is disjoint.
    assert hi[1] - lo[0] > 0.02 and hi[2] - lo[1] > 0.07
    assert lo[0] - hi[2] > 0.05 and lo[2] - hi[3] > 0.07

    rs = joint_rank_sets(est, se)
    assert rs.critical == pytest.approx(np.full(4, z), rel=1e-12)
    # A: C and D surely worse. B: only D surely worse. C: A better, D worse. D: all three better.
    assert rs.lower.tolist() == [1, 1, 2, 4]
    assert rs.upper.tolist() == [2, 3, 3, 4]
    assert rs.rank.tolist() == [1, 2, 3, 4]
    assert (rs.method, rs.alpha, rs.simultaneous, rs.seed, rs.draws) == ("sidak", 0.05, True, None, None)


def test_kww_bonferroni_wider_than_sidak_on_a_gap_between_their_multipliers() -> None:
    z_sidak = stats.norm.ppf(1 - (1 - 0.95 ** (1 / 4)) / 2)
    z_bonf = stats.norm.ppf(1 - 0.05 / 8)
    gap = 0.04989  # two units 0.01 SE each: separated iff gap > z * 0.02
    assert z_sidak * 0.02 < gap < z_bonf * 0.02
    est = np.array([1.0, 1.0 - gap, 0.0, -1.0])
    se = np.array([0.01, 0.01, 0.01, 0.01])
    sidak = joint_rank_sets(est, se, method="sidak")
    bonf = joint_rank_sets(est, se, method="bonferroni")
    assert sidak.lower.tolist() == [1, 2, 3, 4] and sidak.upper.tolist() == [1, 2, 3, 4]
    assert bonf.lower.tolist() == [1, 1, 3, 4] and bonf.upper.tolist() == [2, 2, 3, 4]
    assert bonf.critical[0] == pytest.approx(z_bonf, rel=1e-12)


def test_kww_touching_endpoints_do_not_separate() -> None:
    """Documented rule: j is surely better than k only when L_j > U_k strictly."""
    z = joint_rank_sets([0.0, 1.0], [1.0, 1.0]).critical[0]
    # Find an SE for unit B whose upper end 0.5 + z*s lands exactly on unit A's lower end 1.0 (SE 0).
    s = 0.5 / z
    for _ in range(200):
        if 0.5 + z * s == 1.0:
            break
        s = np.nextafter(s, np.inf if 0.5 + z * s < 1.0 else -np.inf)
    assert 0.5 + z * s == 1.0
    touching = joint_rank_sets([1.0, 0.5], [0.0, s])
    assert touching.lower.tolist() == [1, 1] and touching.upper.tolist() == [2, 2]
    s_apart = s
    while 0.5 + z * s_apart >= 1.0:
        s_apart = np.nextafter(s_apart, 0.0)
    apart = joint_rank_sets([1.0, 0.5], [0.0, s_apart])
    assert apart.lower.tolist() == [1, 2] and apart.upper.tolist() == [1, 2]


def test_kww_zero_standard_errors() -> None:
    # Degenerate intervals: equal estimates stay together, different ones are ordered.
    rs = joint_rank_sets([1.0, 1.0, 0.5], [0.0, 0.0, 0.0])
    assert rs.rank.tolist() == [1, 1, 3]
    assert rs.lower.tolist() == [1, 1, 3] and rs.upper.tolist() == [2, 2, 3]


def test_kww_lower_is_better_mirrors_the_sets() -> None:
    est = np.array([0.90, 0.80, 0.70, 0.50])
    se = np.array([0.02, 0.03, 0.04, 0.01])
    up = joint_rank_sets(est, se)
    down = joint_rank_sets(est, se, higher_is_better=False)
    assert down.rank.tolist() == [4, 3, 2, 1]
    assert (down.lower == 5 - up.upper).all() and (down.upper == 5 - up.lower).all()
    assert down.higher_is_better is False


# --------------------------------------------------------------------------------------------------
# Bonferroni–Holm variant
# --------------------------------------------------------------------------------------------------


def test_holm_hand_computed_step_down() -> None:
    # SE √0.5 each, so σ_jk = 1 and T_jk is the difference of estimates.
    est = np.array([0.0, 2.3, 4.6])
    se = np.full(3, math.sqrt(0.5))
    c3 = stats.norm.isf(0.05 / 6)  # m = 3 pairs: 2.394
    c2 = stats.norm.isf(0.05 / 4)  # m = 2 pairs: 2.241
    assert c2 < 2.3 < c3 < 4.6

    single = simultaneous_rank_sets(est, se, method="holm", stepdown=False)
    # Round 1 separates only the extremes (4.6 > c3).
    assert single.lower.tolist() == [2, 1, 1] and single.upper.tolist() == [3, 3, 2]
    assert single.critical[0] == pytest.approx(c3)

    step = simultaneous_rank_sets(est, se, method="holm")
    # Round 2 re-counts m = 2 and separates the neighbours (2.3 > c2); round 3 has nothing left to test.
    assert step.lower.tolist() == [3, 2, 1] and step.upper.tolist() == [3, 2, 1]
    assert step.critical[0] == pytest.approx(c2)
    assert step.rounds == 2
    assert (step.seed, step.draws, step.method) == (None, None, "holm")

    # Marginal: each unit starts with m = p − 1 = 2, so c2 separates everything at once.
    marg = marginal_rank_sets(est, se, method="holm")
    assert marg.lower.tolist() == [3, 2, 1] and marg.upper.tolist() == [3, 2, 1]
    assert marg.critical == pytest.approx(np.full(3, c2))
    assert marg.rounds == 1


# --------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------

EST8 = np.array([0.62, 0.70, 0.71, 0.74, 0.80, 0.81, 0.90, 0.95])
SE8 = np.array([0.03, 0.02, 0.04, 0.015, 0.03, 0.05, 0.02, 0.01])


@pytest.mark.parametrize("fn", [simultaneous_rank_sets, marginal_rank_sets])
def test_bootstrap_same_seed_same_result(fn: Callable[..., RankSets]) -> None:
    a = fn(EST8, SE8, draws=400, seed=7)
    b = fn(EST8, SE8, draws=400, seed=7)
    assert a.lower.tolist() == b.lower.tolist() and a.upper.tolist() == b.upper.tolist()
    assert a.critical.tolist() == b.critical.tolist()
    assert (a.seed, a.draws, a.method) == (7, 400, "bootstrap")


def test_bootstrap_default_seed_is_fixed_and_none_is_recorded() -> None:
    assert simultaneous_rank_sets(EST8, SE8).seed == 20240101
    fresh = simultaneous_rank_sets(EST8, SE8, draws=300, seed=None)
    assert isinstance(fresh.seed, int)
    again = simultaneous_rank_sets(EST8, SE8, draws=300, seed=fresh.seed)
    assert fresh.critical.tolist() == again.critical.tolist()
    assert fresh.lower.tolist() == again.lower.tolist() and fresh.upper.tolist() == again.upper.tolist()


def test_bootstrap_first_step_critical_value_is_the_max_abs_t_quantile() -> None:
    draws, seed, p = 500, 123, EST8.size
    z = draws_for(seed, draws, p) * SE8
    sd = np.sqrt(SE8[:, None] ** 2 + SE8[None, :] ** 2)
    j, k = np.triu_indices(p, 1)
    abs_t = np.abs(z[:, j] - z[:, k]) / sd[j, k]

    table = simultaneous_rank_sets(EST8, SE8, draws=draws, seed=seed, stepdown=False)
    assert table.critical[0] == np.quantile(abs_t.max(axis=1), 0.95)

    per_unit = np.abs(z[:, :, None] - z[:, None, :]) / sd
    per_unit[:, np.arange(p), np.arange(p)] = -np.inf
    marg = marginal_rank_sets(EST8, SE8, draws=draws, seed=seed, stepdown=False)
    assert marg.critical.tolist() == np.quantile(per_unit.max(axis=2), 0.95, axis=0).tolist()


def test_bootstrap_decisions_are_t_above_the_final_critical_value() -> None:
    rs = simultaneous_rank_sets(EST8, SE8, draws=500, seed=3)
    c = rs.critical[0]
    t = (EST8[:, None] - EST8[None, :]) / np.sqrt(SE8[:, None] ** 2 + SE8[None, :] ** 2)
    separated = t > c
    assert rs.lower.tolist() == (1 + separated.sum(axis=0)).tolist()
    assert rs.upper.tolist() == (EST8.size - separated.sum(axis=1)).tolist()
    assert rs.rounds >= 2  # this table needs more than one round


@pytest.mark.parametrize("fn", [simultaneous_rank_sets, marginal_rank_sets])
def test_threads_do_not_change_the_result(fn: Callable[..., RankSets]) -> None:
    rng = np.random.default_rng(8)
    est = rng.uniform(0.6, 0.95, 150)
    se = rng.uniform(0.01, 0.04, 150)
    cov = np.diag(se**2) + 0.00005  # correlated: the brute-force engine
    for kwargs in ({"se": se}, {"cov": cov}):
        one = fn(est, draws=400, threads=1, **kwargs)
        two = fn(est, draws=400, threads=3, **kwargs)
        assert one.lower.tolist() == two.lower.tolist() and one.upper.tolist() == two.upper.tolist()
        assert one.critical.tolist() == two.critical.tolist()
        assert (one.upper - one.lower).min() < 149  # not trivially full-range


def test_bootstrap_widely_separated_units_get_singletons() -> None:
    est = np.array([3.0, 0.0, 9.0, 6.0, 12.0])
    se = np.full(5, 0.1)
    for fn in (simultaneous_rank_sets, marginal_rank_sets):
        rs = fn(est, se, draws=300)
        assert rs.lower.tolist() == [4, 5, 2, 3, 1]
        assert rs.upper.tolist() == [4, 5, 2, 3, 1]


def test_bootstrap_identical_units_get_full_range() -> None:
    est = np.full(6, 0.8)
    se = np.full(6, 0.02)
    for fn in (simultaneous_rank_sets, marginal_rank_sets):
        rs = fn(est, se, draws=300)
        assert rs.rank.tolist() == [1] * 6
        assert rs.lower.tolist() == [1] * 6 and rs.upper.tolist() == [6] * 6


def test_zero_standard_errors_are_decided_without_error() -> None:
    # Units 0 and 1 at 100 % with SE 0: tied, never separated. Unit 2 has SE 0 but a different estimate.
    est = np.array([1.0, 1.0, 0.9, 0.5])
    se = np.array([0.0, 0.0, 0.0, 0.2])
    for fn in (simultaneous_rank_sets, marginal_rank_sets):
        for method in ("bootstrap", "holm"):
            rs = fn(est, se, method=method, draws=300)
            assert rs.lower[:3].tolist() == [1, 1, 3]
            assert rs.upper[:3].tolist() == [2, 2, 3] or rs.upper[:3].tolist() == [2, 2, 4]
            assert covers(rs, rs.rank)
    only_zero = simultaneous_rank_sets([1.0, 0.0, 1.0], [0.0, 0.0, 0.0], draws=10)
    assert only_zero.lower.tolist() == [1, 3, 1] and only_zero.upper.tolist() == [2, 3, 2]
    assert np.isnan(only_zero.critical).all() and only_zero.rounds == 0


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 0.55, 0.6, 1.0, 1.5]) | st.floats(-2, 2, allow_nan=False),
            st.sampled_from([0.0]) | st.floats(0.05, 0.6),
        ),
        min_size=2,
        max_size=6,
    ),
    seed=st.integers(0, 2**32 - 1),
    simultaneous=st.booleans(),
    stepdown=st.booleans(),
)
def test_bootstrap_matches_slow_reference(
    data: list[tuple[float, float]], seed: int, simultaneous: bool, stepdown: bool
) -> None:
    theta = [d[0] for d in data]
    se = [d[1] for d in data]
    draws = 120
    fn = simultaneous_rank_sets if simultaneous else marginal_rank_sets
    rs = fn(theta, se, draws=draws, seed=seed, stepdown=stepdown)
    sigma = pair_sd_from_se(se)
    z = draws_for(seed, draws, len(theta)) * np.array(se)
    lower, upper = reference_rank_sets(
        theta, sigma, bootstrap_critical(z, sigma, 0.05), simultaneous=simultaneous, stepdown=stepdown
    )
    assert rs.lower.tolist() == lower and rs.upper.tolist() == upper


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.floats(-2, 2, allow_nan=False), st.sampled_from([0.0]) | st.floats(0.05, 0.6)),
        min_size=2,
        max_size=7,
    ),
    simultaneous=st.booleans(),
    stepdown=st.booleans(),
)
def test_holm_matches_slow_reference(data: list[tuple[float, float]], simultaneous: bool, stepdown: bool) -> None:
    theta = [d[0] for d in data]
    se = [d[1] for d in data]
    fn = simultaneous_rank_sets if simultaneous else marginal_rank_sets
    rs = fn(theta, se, method="holm", stepdown=stepdown)
    sigma = pair_sd_from_se(se)
    lower, upper = reference_rank_sets(theta, sigma, holm_critical(0.05), simultaneous=simultaneous, stepdown=stepdown)
    assert rs.lower.tolist() == lower and rs.upper.tolist() == upper


@pytest.mark.parametrize("simultaneous", [True, False])
def test_bootstrap_with_full_covariance_matches_slow_reference(simultaneous: bool) -> None:
    rng = np.random.default_rng(42)
    p, draws, seed = 6, 200, 99
    a = rng.normal(size=(p, p)) * 0.005
    cov = a @ a.T + np.diag(rng.uniform(0.00002, 0.0001, p))
    cov = (cov + cov.T) / 2  # exactly symmetric, as the function makes it
    theta = [0.80, 0.82, 0.83, 0.86, 0.90, 0.91]
    fn = simultaneous_rank_sets if simultaneous else marginal_rank_sets
    rs = fn(theta, cov=cov, draws=draws, seed=seed)
    sigma = pair_sd_from_cov(cov)
    z = draws_for(seed, draws, p) @ np.linalg.cholesky(cov).T
    lower, upper = reference_rank_sets(
        theta, sigma, bootstrap_critical(z, sigma, 0.05), simultaneous=simultaneous, stepdown=True
    )
    assert rs.lower.tolist() == lower and rs.upper.tolist() == upper
    assert (rs.upper - rs.lower).min() < p - 1  # the example separates something


def test_perfectly_correlated_units_are_decided_without_error() -> None:
    # Units 0 and 1 share all their error (σ_01 = 0): ordered exactly; unit 2 is independent.
    cov = np.array([[0.01, 0.01, 0.0], [0.01, 0.01, 0.0], [0.0, 0.0, 0.04]])
    rs = simultaneous_rank_sets([0.50, 0.49, 0.5], cov=cov, draws=200)
    assert rs.lower[:2].tolist() == [1, 2] and rs.upper[:2].tolist() == [2, 3]
    holm = simultaneous_rank_sets([0.50, 0.49, 0.5], cov=cov, method="holm")
    assert holm.lower[:2].tolist() == [1, 2]


def test_diagonal_covariance_equals_standard_errors() -> None:
    for fn in (simultaneous_rank_sets, marginal_rank_sets):
        a = fn(EST8, SE8, draws=300, seed=5)
        b = fn(EST8, cov=np.diag(SE8**2), draws=300, seed=5)
        assert a.lower.tolist() == b.lower.tolist() and a.upper.tolist() == b.upper.tolist()
        assert a.critical.tolist() == b.critical.tolist()


@pytest.mark.parametrize("p", [3, 17, 70])
def test_pruning_engine_equals_brute_force_on_random_pair_sets(p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The independent-units engine skips pairs using bounds; its maxima must equal the brute force ones."""
    rng = np.random.default_rng(p)
    se = np.exp(rng.normal(-3.5, 1.0, p))
    se[rng.integers(0, p, max(1, p // 10))] = 0.0
    sd = ranks._pair_sd_from_se(se)
    fast = ranks._independent_draws(se, sd, seed=11, draws=64)
    slow = ranks._Draws(z=fast.z, sigma_safe=fast.sigma_safe)
    rows = np.arange(p)
    monkeypatch.setattr(ranks, "_TABLE_TOP", 2)  # also exercise the fallback to a full sort
    for density in (1.0, 0.5, 0.05):
        apos = (rng.random((p, p)) < density) & (sd > 0)
        aneg = (rng.random((p, p)) < density) & (sd > 0)
        np.fill_diagonal(apos, False)
        np.fill_diagonal(aneg, False)
        got = ranks._scan_unit_maxima(fast, apos, aneg, rows)
        want = ranks._dense_unit_maxima(slow, apos, aneg, rows, table=False)
        assert np.array_equal(got, want)
        table = apos
        got_table = ranks._scan_table_maxima(fast, table)
        want_table = ranks._dense_unit_maxima(slow, table, table.T, rows, table=True)
        assert np.array_equal(got_table, want_table)


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

units = st.lists(
    st.tuples(
        st.sampled_from([0.7, 0.8, 0.85, 0.9]) | st.floats(0.5, 1.0, allow_nan=False),
        st.sampled_from([0.0]) | st.floats(0.005, 0.08),
    ),
    min_size=1,
    max_size=9,
)


def check_sets(rs: RankSets, p: int) -> None:
    assert rs.lower.shape == rs.upper.shape == rs.rank.shape == (p,)
    assert rs.lower.dtype == rs.upper.dtype == rs.rank.dtype == np.int64
    assert (rs.lower >= 1).all() and (rs.upper <= p).all()
    assert (rs.lower <= rs.upper).all()
    assert (rs.lower <= rs.rank).all() and (rs.rank <= rs.upper).all()


def contains(wide: RankSets, narrow: RankSets) -> bool:
    return bool(((wide.lower <= narrow.lower) & (narrow.upper <= wide.upper)).all())


@settings(max_examples=60, deadline=None)
@given(data=units, alpha=st.sampled_from([0.01, 0.05, 0.2]))
def test_kww_properties(data: list[tuple[float, float]], alpha: float) -> None:
    est = np.array([d[0] for d in data])
    se = np.array([d[1] for d in data])
    p = est.size
    sidak = joint_rank_sets(est, se, alpha=alpha)
    bonf = joint_rank_sets(est, se, alpha=alpha, method="bonferroni")
    check_sets(sidak, p)
    check_sets(bonf, p)
    assert contains(bonf, sidak)
    assert contains(joint_rank_sets(est, se, alpha=alpha / 2), sidak)
    down = joint_rank_sets(est, se, alpha=alpha, higher_is_better=False)
    check_sets(down, p)
    if np.unique(est).size == p:  # without ties the reversed table mirrors the sets
        assert (down.lower == p + 1 - sidak.upper).all() and (down.upper == p + 1 - sidak.lower).all()


@settings(max_examples=50, deadline=None)
@given(data=units, seed=st.integers(0, 1000), method=st.sampled_from(["bootstrap", "holm"]))
def test_stepdown_properties(data: list[tuple[float, float]], seed: int, method: str) -> None:
    est = np.array([d[0] for d in data])
    se = np.array([d[1] for d in data])
    p = est.size
    sim = simultaneous_rank_sets(est, se, draws=150, seed=seed, method=method)
    sim1 = simultaneous_rank_sets(est, se, draws=150, seed=seed, method=method, stepdown=False)
    marg = marginal_rank_sets(est, se, draws=150, seed=seed, method=method)
    marg1 = marginal_rank_sets(est, se, draws=150, seed=seed, method=method, stepdown=False)
    for rs in (sim, sim1, marg, marg1):
        check_sets(rs, p)
    assert contains(sim, marg)  # simultaneous sets are at least as wide as marginal ones
    assert contains(sim1, sim) and contains(marg1, marg)  # step-down never widens a set
    assert contains(sim1, marg1)
    assert sim.simultaneous and not marg.simultaneous
    if method == "holm":
        down = simultaneous_rank_sets(est, se, method="holm", higher_is_better=False)
        if np.unique(est).size == p:
            assert (down.lower == p + 1 - sim.upper).all() and (down.upper == p + 1 - sim.lower).all()


# --------------------------------------------------------------------------------------------------
# Coverage by simulation
# --------------------------------------------------------------------------------------------------


COVERAGE_SE = np.array([0.03, 0.02, 0.03, 0.015, 0.025, 0.02, 0.03, 0.02])


@pytest.mark.parametrize(
    ("name", "theta"),
    [
        ("spread", np.array([0.60, 0.66, 0.70, 0.71, 0.75, 0.80, 0.81, 0.90])),
        ("three clusters of ties", np.array([0.70, 0.70, 0.70, 0.75, 0.75, 0.80, 0.80, 0.80])),
        # Least favourable: all true values equal, every true rank is 1, coverage = 1 − familywise error.
        ("all tied", np.full(8, 0.80)),
    ],
)
def test_simultaneous_bootstrap_covers_the_true_ranking(name: str, theta: npt.NDArray[np.float64]) -> None:
    se = COVERAGE_SE
    truth = true_ranks(theta)
    rng = np.random.default_rng(20240607)
    reps = 300
    hits_boot = hits_kww = 0
    for rep in range(reps):
        est = theta + se * rng.standard_normal(theta.size)
        hits_boot += covers(simultaneous_rank_sets(est, se, draws=1000, seed=rep), truth)
        hits_kww += covers(joint_rank_sets(est, se), truth)
    coverage, coverage_kww = hits_boot / reps, hits_kww / reps
    print(
        f"\n{name}: simultaneous bootstrap coverage of the true ranking {coverage:.3f} "
        f"(KWW Šidák {coverage_kww:.3f}), {reps} replications of 8 units, nominal 0.95"
    )
    assert coverage >= 0.90
    assert coverage_kww >= 0.90


# --------------------------------------------------------------------------------------------------
# Edge cases and validation
# --------------------------------------------------------------------------------------------------

ALL = [
    lambda e, s, **k: joint_rank_sets(e, s, **k),
    lambda e, s, **k: simultaneous_rank_sets(e, s, **k),
    lambda e, s, **k: marginal_rank_sets(e, s, **k),
    lambda e, s, **k: simultaneous_rank_sets(e, s, method="holm", **k),
]


@pytest.mark.parametrize("fn", ALL)
def test_empty_and_single_unit(fn: Callable[..., RankSets]) -> None:
    empty = fn(np.array([]), np.array([]))
    assert empty.lower.shape == empty.upper.shape == empty.rank.shape == (0,)
    assert len(empty) == 0
    one = fn([0.9], [0.01])
    assert one.lower.tolist() == one.upper.tolist() == one.rank.tolist() == [1]
    assert one.rounds == 0


@pytest.mark.parametrize("fn", ALL)
def test_invalid_inputs_name_the_index(fn: Callable[..., RankSets]) -> None:
    with pytest.raises(ValueError, match=r"estimates\[1\] is not finite"):
        fn([0.5, np.nan, 0.7], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"se\[2\] is not finite"):
        fn([0.5, 0.6, 0.7], [0.1, 0.1, np.inf])
    with pytest.raises(ValueError, match=r"se\[0\] is negative"):
        fn([0.5, 0.6, 0.7], [-0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="shape"):
        fn([0.5, 0.6, 0.7], [0.1, 0.1])
    with pytest.raises(ValueError, match="alpha"):
        fn([0.5, 0.6], [0.1, 0.1], alpha=1.0)


def test_unknown_methods_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="method must be one of 'sidak', 'bonferroni'"):
        joint_rank_sets([0.5, 0.6], [0.1, 0.1], method="holm")
    with pytest.raises(ValueError, match="method must be one of 'bootstrap', 'holm'"):
        simultaneous_rank_sets([0.5, 0.6], [0.1, 0.1], method="sidak")
    with pytest.raises(ValueError, match="exactly one of se"):
        simultaneous_rank_sets([0.5, 0.6])
    with pytest.raises(ValueError, match="exactly one of se"):
        marginal_rank_sets([0.5, 0.6], [0.1, 0.1], cov=np.eye(2))
    with pytest.raises(ValueError, match="draws"):
        simultaneous_rank_sets([0.5, 0.6], [0.1, 0.1], draws=0)
    with pytest.raises(ValueError, match="seed"):
        simultaneous_rank_sets([0.5, 0.6], [0.1, 0.1], seed=-1)
    with pytest.raises(ValueError, match="threads"):
        marginal_rank_sets([0.5, 0.6], [0.1, 0.1], threads=0)
    with pytest.raises(ValueError, match="not symmetric"):
        simultaneous_rank_sets([0.5, 0.6], cov=[[1.0, 0.5], [0.4, 1.0]])
    with pytest.raises(ValueError, match="positive semi-definite"):
        marginal_rank_sets([0.5, 0.6, 0.7], cov=[[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError, match=r"cov\[1, 1\] is a negative variance"):
        simultaneous_rank_sets([0.5, 0.6], cov=[[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(ValueError, match=r"cov\[0, 1\] is not finite"):
        simultaneous_rank_sets([0.5, 0.6], cov=[[1.0, np.nan], [np.nan, 1.0]])


def test_ties_share_the_smallest_rank() -> None:
    rs = joint_rank_sets([0.9, 0.9, 0.8, 0.9], [0.01, 0.01, 0.01, 0.01])
    assert rs.rank.tolist() == [1, 1, 4, 1]
    assert simultaneous_rank_sets([0.9, 0.9, 0.8], [0.01, 0.01, 0.01], higher_is_better=False).rank.tolist() == [
        2,
        2,
        1,
    ]


def test_rank_sets_are_immutable() -> None:
    rs = joint_rank_sets([0.9, 0.8], [0.01, 0.01])
    with pytest.raises(dataclasses.FrozenInstanceError):
        rs.method = "bonferroni"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        rs.lower[0] = 2


def test_tau_best() -> None:
    est = np.array([3.0, 0.0, 9.0, 6.0, 12.0])
    rs = simultaneous_rank_sets(est, np.full(5, 0.1), draws=300)
    assert tau_best(rs, 2).tolist() == [2, 4]
    close = joint_rank_sets([1.0, 0.99, 0.5], [0.01, 0.01, 0.01])
    assert tau_best(close, 1).tolist() == [0, 1]
    with pytest.raises(ValueError, match="simultaneous"):
        tau_best(marginal_rank_sets(est, np.full(5, 0.1), draws=100), 1)
    with pytest.raises(ValueError, match="tau"):
        tau_best(rs, 6)


@settings(max_examples=30, deadline=None)
@given(p=st.integers(2, 12), seed=st.integers(0, 10_000))
def test_identical_estimates_never_separate(p: int, seed: int) -> None:
    se = np.random.default_rng(seed).uniform(0.01, 0.05, p)
    est = np.full(p, 0.75)
    for rs in (
        joint_rank_sets(est, se),
        simultaneous_rank_sets(est, se, draws=100, seed=seed),
        marginal_rank_sets(est, se, draws=100, seed=seed),
        simultaneous_rank_sets(est, se, method="holm"),
    ):
        assert rs.lower.tolist() == [1] * p and rs.upper.tolist() == [p] * p
