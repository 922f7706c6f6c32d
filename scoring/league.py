"""League tables: who is ranked, each rank's confidence set, and tiers against a target and the whole.

Only units with at least ``min_responses`` respondents are ranked; the rest are "insufficient data",
listed apart. For each ranked unit the table carries its observed rank, a 95% marginal rank set
(this unit's rank, Mogstad, Romano, Shaikh & Wilhelm 2024), and a simultaneous rank set (the whole
ranking at once), both from the step-down max-t bootstrap with a fixed seed, or from deterministic
joint intervals (Klein, Wright & Wieczorek 2020) when ``rank_method="joint"``.

Tiers compare the interval with a fixed target (above: lower bound over the target; below: upper
bound under it; otherwise indistinguishable) and with the whole population (the difference unit -
province with its own SE, which accounts for the unit being part of the province).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scoring.intervals import t_quantile
from scoring.ranks import joint_rank_sets, marginal_rank_sets, simultaneous_rank_sets

RANK_METHODS = ("bootstrap", "holm", "joint")
ABOVE, SAME, BELOW = 1, 0, -1


@dataclass(frozen=True, eq=False)
class League:
    """Ranks and tiers for G units; rank arrays hold 0 where a unit is not ranked."""

    ranked: np.ndarray  # bool (G,)
    rank: np.ndarray  # int (G,), 1 = best among the ranked
    marginal_lower: np.ndarray
    marginal_upper: np.ndarray
    simultaneous_lower: np.ndarray
    simultaneous_upper: np.ndarray
    tier_target: np.ndarray  # int (G,): 1 above, 0 indistinguishable, -1 below
    tier_total: np.ndarray  # int (G,): the same against the whole population (0 where unknown)
    rank_method: str
    seed: int | None
    draws: int | None
    level: float


def tiers_against(value: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> np.ndarray:
    """1 where the interval lies above ``value``, -1 below it, 0 where it contains it (or is unknown)."""
    lo, hi, v = (np.asarray(x, dtype=np.float64) for x in (lower, upper, value))
    return np.where(lo > v, ABOVE, np.where(hi < v, BELOW, SAME)).astype(np.int8)


def league(
    point: ArrayLike,
    se: ArrayLike,
    n: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    *,
    min_responses: int,
    target: float | None = None,
    total_point: float | None = None,
    vs_total_se: ArrayLike | None = None,
    df: ArrayLike | None = None,
    level: float = 0.95,
    rank_method: str = "bootstrap",
    draws: int = 1000,
    seed: int = 20240101,
) -> League:
    """Rank the units with enough responses and put every unit in its tiers.

    Parameters
    ----------
    point, se, n, lower, upper : (G,) each unit's estimate, SE, respondents and interval.
    min_responses : units with fewer respondents (or a non-finite estimate) are not ranked.
    target : a fixed target on the same scale (e.g. 0.90); tiers against it use the unit's interval.
    total_point, vs_total_se, df : the whole population's estimate and SE(unit - whole) with the
        unit's df, for tiers against the whole; omitted -> ``tier_total`` is all 0.
    rank_method : "bootstrap" (MRSW step-down max-t, default), "holm" (its deterministic Bonferroni-Holm
        variant) or "joint" (KWW Šidák joint intervals; marginal and simultaneous sets coincide).
    draws, seed : bootstrap draws and the fixed seed (recorded in the result).
    """
    if rank_method not in RANK_METHODS:
        raise ValueError(f"unknown rank method {rank_method!r}; use one of {RANK_METHODS}")
    p, s, nn = (np.asarray(x, dtype=np.float64) for x in (point, se, n))
    g = p.size
    ranked = (nn >= min_responses) & np.isfinite(p) & np.isfinite(s)
    idx = np.flatnonzero(ranked)
    zeros = np.zeros(g, dtype=np.int64)
    rank, m_lo, m_hi, s_lo, s_hi = (zeros.copy() for _ in range(5))
    alpha = 1.0 - level
    if idx.size:
        est, err = p[idx], s[idx]
        if rank_method == "joint":
            joint = joint_rank_sets(est, err, alpha=alpha, method="sidak")
            marginal = simultaneous = joint
        else:
            kw = {"alpha": alpha, "draws": draws, "seed": seed, "method": rank_method}
            marginal = marginal_rank_sets(est, err, **kw)  # type: ignore[arg-type]
            simultaneous = simultaneous_rank_sets(est, err, **kw)  # type: ignore[arg-type]
        rank[idx] = marginal.rank
        m_lo[idx], m_hi[idx] = marginal.lower, marginal.upper
        s_lo[idx], s_hi[idx] = simultaneous.lower, simultaneous.upper
    tier_target = tiers_against(target, lower, upper) if target is not None else np.zeros(g, dtype=np.int8)
    tier_total = np.zeros(g, dtype=np.int8)
    if total_point is not None and vs_total_se is not None and df is not None:
        diff = p - total_point
        t = t_quantile(df, level)
        half = t * np.asarray(vs_total_se, dtype=np.float64)
        tier_total = tiers_against(0.0, diff - half, diff + half)
    return League(
        ranked=ranked,
        rank=rank,
        marginal_lower=m_lo,
        marginal_upper=m_hi,
        simultaneous_lower=s_lo,
        simultaneous_upper=s_hi,
        tier_target=tier_target,
        tier_total=tier_total,
        rank_method=rank_method,
        seed=None if rank_method != "bootstrap" else seed,
        draws=None if rank_method != "bootstrap" else draws,
        level=level,
    )
