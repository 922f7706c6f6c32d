"""Change between two waves: the difference of two independent estimates, its interval, a flag.

Waves are separate samples, so the variance of the difference is the sum of the two variances. The
degrees of freedom follow Welch-Satterthwaite: (v1 + v2)² / (v1²/df1 + v2²/df2).

References
----------
Satterthwaite, F. E. (1946). Biometrics Bulletin 2:110-114. Lumley (2010), Complex Surveys, §3.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from scoring.intervals import t_quantile


@dataclass(frozen=True, eq=False)
class Change:
    """later - earlier, with its SE, interval, df, and where the interval excludes 0."""

    diff: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    df: np.ndarray
    significant: np.ndarray  # bool; False where either estimate is missing
    level: float


def wave_change(
    earlier: ArrayLike,
    earlier_se: ArrayLike,
    earlier_df: ArrayLike,
    later: ArrayLike,
    later_se: ArrayLike,
    later_df: ArrayLike,
    *,
    level: float = 0.95,
) -> Change:
    """Difference later - earlier of independent estimates (shares or indices on the same scale)."""
    p1, s1, d1, p2, s2, d2 = (
        np.asarray(x, dtype=np.float64) for x in (earlier, earlier_se, earlier_df, later, later_se, later_df)
    )
    v1, v2 = s1 * s1, s2 * s2
    diff = p2 - p1
    se = np.sqrt(v1 + v2)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = np.where(d1 > 0, v1 * v1 / d1, np.inf) + np.where(d2 > 0, v2 * v2 / d2, np.inf)
        df = np.where(denom > 0, (v1 + v2) ** 2 / denom, np.minimum(d1, d2))
    df = np.where((d1 < 1) | (d2 < 1), 0.0, df)
    half = t_quantile(df, level) * se
    lower, upper = diff - half, diff + half
    known = np.isfinite(lower) & np.isfinite(upper)
    significant = known & ((lower > 0) | (upper < 0))
    return Change(diff=diff, se=se, lower=lower, upper=upper, df=df, significant=significant, level=level)
