"""League assembly (who is ranked, tiers) and change between waves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from scoring.change import wave_change
from scoring.league import ABOVE, BELOW, SAME, league, tiers_against


def test_tiers_against_a_target_by_hand() -> None:
    lower = np.array([0.91, 0.85, 0.80, 0.90])
    upper = np.array([0.95, 0.95, 0.89, 0.93])
    assert tiers_against(0.90, lower, upper).tolist() == [ABOVE, SAME, BELOW, SAME]  # touching is not above


def test_only_units_with_enough_responses_are_ranked() -> None:
    point = np.array([0.95, 0.90, 0.99, 0.80])
    se = np.array([0.01, 0.01, 0.005, 0.02])
    n = np.array([200, 150, 12, 300])
    lg = league(point, se, n, point - 2 * se, point + 2 * se, min_responses=30, target=0.9)
    assert lg.ranked.tolist() == [True, True, False, True]
    assert lg.rank.tolist() == [1, 2, 0, 3]  # the 99% unit with 12 responses is not ranked at all
    assert (lg.marginal_lower[~lg.ranked] == 0).all()
    for i in np.flatnonzero(lg.ranked):
        assert lg.simultaneous_lower[i] <= lg.marginal_lower[i] <= lg.rank[i] <= lg.marginal_upper[i]
    assert lg.seed == 20240101 and lg.draws == 1000


def test_joint_method_and_tiers_against_the_whole() -> None:
    point = np.array([0.95, 0.90, 0.80])
    se = np.array([0.01, 0.01, 0.01])
    lg = league(
        point,
        se,
        [100, 100, 100],
        point - 0.02,
        point + 0.02,
        min_responses=30,
        total_point=0.89,
        vs_total_se=np.array([0.01, 0.01, 0.01]),
        df=np.array([99, 99, 99]),
        rank_method="joint",
    )
    assert lg.seed is None and lg.rank_method == "joint"
    assert (lg.marginal_lower == lg.simultaneous_lower).all()
    t = stats.t.ppf(0.975, 99)
    expected = [ABOVE if 0.06 - t * 0.01 > 0 else SAME, SAME, BELOW]
    assert lg.tier_total.tolist() == expected
    with pytest.raises(ValueError, match="unknown rank method"):
        league(point, se, [100] * 3, point, point, min_responses=1, rank_method="median")


def test_change_between_waves_by_hand() -> None:
    ch = wave_change(0.85, 0.02, 40, 0.91, 0.015, 60)
    v1, v2 = 0.02**2, 0.015**2
    df = (v1 + v2) ** 2 / (v1**2 / 40 + v2**2 / 60)
    half = stats.t.ppf(0.975, df) * np.sqrt(v1 + v2)
    assert float(ch.diff) == pytest.approx(0.06)
    assert float(ch.df) == pytest.approx(df)
    assert float(ch.lower) == pytest.approx(0.06 - half) and float(ch.upper) == pytest.approx(0.06 + half)
    assert bool(ch.significant)
    small = wave_change(0.85, 0.03, 40, 0.87, 0.03, 40)
    assert not bool(small.significant)
    missing = wave_change(np.nan, 0.03, 40, 0.87, 0.03, 40)
    assert not bool(missing.significant)


@settings(max_examples=200, deadline=None)
@given(
    p1=st.floats(0.5, 1.0),
    p2=st.floats(0.5, 1.0),
    s1=st.floats(1e-4, 0.1),
    s2=st.floats(1e-4, 0.1),
    d1=st.integers(1, 500),
    d2=st.integers(1, 500),
)
def test_change_interval_contains_the_difference_and_df_is_between(
    p1: float, p2: float, s1: float, s2: float, d1: int, d2: int
) -> None:
    ch = wave_change(p1, s1, d1, p2, s2, d2)
    assert float(ch.lower) <= p2 - p1 <= float(ch.upper)
    assert min(d1, d2) - 1e-9 <= float(ch.df) <= d1 + d2 + 1e-9
    assert bool(ch.significant) == (float(ch.lower) > 0 or float(ch.upper) < 0)
