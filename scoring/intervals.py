"""Confidence intervals for shares estimated from a complex sample, and reliability flags.

The default is Wilson's interval with the effective sample size n* = p(1-p)/v and Student t quantiles
on the design's degrees of freedom (R ``svyciprop(method="wilson")``); Korn-Graubard is the
conservative option (R ``method="beta"``, the NCHS presentation standard); logit-Wald is used for
composite indices. Rules R leaves undefined are fixed here (STATISTICS.md 2.3):

1. at p = 0 or 1 (v = 0, n* undefined) n* = n, so the interval is [n/(n+t²), 1] for Wilson at 100%;
2. n* is capped at n (a design effect below 1 from a small unit's noisy variance is not believed);
3. df < 1: no interval is published (NaN bounds, flag ``no_df``);
4. never a zero-width interval, never one outside [0, 1].

References
----------
Wilson, E. B. (1927). JASA 22:209-212. Korn, E. L. & Graubard, B. I. (1998). Survey Methodology
24:193-201. Brown, Cai & DasGupta (2001). Stat Sci 16:101-133. Franco, Little, Louis & Slud (2019).
JSSAM 7:334-364. Parker, J. D. et al. (2017). NCHS Data Presentation Standards for Proportions,
Vital Health Stat 2(175).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

METHODS = ("wilson", "korn-graubard", "logit", "wald")


class Reliability(enum.IntEnum):
    """How far an estimate can be trusted (thresholds in ``ReliabilityRule``)."""

    ok = 0
    review = 1  # few degrees of freedom: publish with a note
    unreliable = 2  # too few respondents or too wide: do not rank, show greyed
    no_data = 3  # nothing to estimate from, or no degrees of freedom


@dataclass(frozen=True, slots=True)
class ReliabilityRule:
    """NCHS-style thresholds (Parker et al. 2017, as commonly summarised; settings, not dogma)."""

    min_n: int = 30
    min_n_eff: float = 30.0
    max_width: float = 0.30
    relative_width_from: float = 0.05
    max_relative_width: float = 1.30
    review_df_below: int = 8


@dataclass(frozen=True, eq=False)
class Intervals:
    """Bounds and diagnostics for an array of estimates (any shape, all arrays alike)."""

    lower: np.ndarray
    upper: np.ndarray
    n_eff: np.ndarray
    deff: np.ndarray
    method: str
    level: float


def t_quantile(df: ArrayLike, level: float) -> np.ndarray:
    """Student t quantile at (1 + level)/2; normal where df is infinite, NaN where df < 1."""
    dfa = np.asarray(df, dtype=np.float64)
    q = (1.0 + level) / 2.0
    with np.errstate(invalid="ignore"):
        out = np.where(np.isinf(dfa), stats.norm.ppf(q), stats.t.ppf(q, np.maximum(dfa, 1.0)))
    return np.where(dfa >= 1, out, np.nan)


def effective_n(p: ArrayLike, var: ArrayLike, n: ArrayLike) -> np.ndarray:
    """n* = p(1-p)/v, capped at n; n itself where p is 0 or 1 or v is 0 (rules 1 and 2)."""
    pa, va, na = (np.asarray(x, dtype=np.float64) for x in (p, var, n))
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = pa * (1.0 - pa) / va
    degenerate = (pa <= 0) | (pa >= 1) | ~(va > 0) | ~np.isfinite(raw)
    return np.where(degenerate, na, np.minimum(raw, na))


def proportion_intervals(
    p: ArrayLike,
    var: ArrayLike,
    n: ArrayLike,
    df: ArrayLike,
    *,
    method: str = "wilson",
    level: float = 0.95,
) -> Intervals:
    """Design-based intervals for shares.

    Parameters
    ----------
    p : estimated shares in [0, 1].
    var : their design-based variances.
    n : respondents behind each share (valid answers).
    df : design degrees of freedom (np.inf for normal quantiles).
    method : "wilson" (default), "korn-graubard", "logit" or "wald".
    level : confidence level.

    Returns
    -------
    Intervals
        Bounds within [0, 1], NaN where df < 1 or n = 0.

    Notes
    -----
    Wilson with n* and t: [p + t²/(2n*) ∓ (t/(2n*))·√(4n*p(1-p) + t²)] / (1 + t²/n*).
    Korn-Graubard: n*_df = n*·(t_{n-1}/t_df)², Beta quantiles with shape (n*_df p, n*_df(1-p) + 1) and
    (n*_df p + 1, n*_df(1-p)); 0 and 1 at the boundaries. Logit: expit(logit p ± t·SE/(p(1-p))), and
    Wilson at p = 0 or 1 where the logit is undefined. Wald: p ± t·SE, clipped (for means, not shares).
    """
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; use one of {METHODS}")
    if not 0 < level < 1:
        raise ValueError("level must lie strictly between 0 and 1")
    p, var, n, dfa = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (p, var, n, df)))
    n_eff = effective_n(p, var, n)
    t = t_quantile(dfa, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        # design effect v / v_SRS, not capped (n_eff is): a composite index's deff is usually well below 1
        srs = p * (1.0 - p) / n
        deff = np.where((srs > 0) & np.isfinite(var), var / srs, 1.0)
        if method == "wilson":
            lower, upper = _wilson(p, n_eff, t)
        elif method == "korn-graubard":
            lower, upper = _korn_graubard(p, n_eff, n, t, level)
        elif method == "logit":
            inner = (p > 0) & (p < 1) & (var > 0)
            se_logit = np.sqrt(np.maximum(var, 0.0)) / (p * (1.0 - p))
            logit = np.log(p / (1.0 - p))
            lo_l = special.expit(logit - t * se_logit)
            up_l = special.expit(logit + t * se_logit)
            lo_w, up_w = _wilson(p, n_eff, t)
            lower, upper = np.where(inner, lo_l, lo_w), np.where(inner, up_l, up_w)
        else:
            half = t * np.sqrt(np.maximum(var, 0.0))
            lower, upper = np.clip(p - half, 0.0, 1.0), np.clip(p + half, 0.0, 1.0)
    # the boundaries exactly, and no rounding noise pushing a bound past its point
    lower = np.where(p <= 0, 0.0, np.minimum(lower, p))
    upper = np.where(p >= 1, 1.0, np.maximum(upper, p))
    unusable = ~np.isfinite(t) | ~(n > 0) | ~np.isfinite(p)
    lower = np.where(unusable, np.nan, np.clip(lower, 0.0, 1.0))
    upper = np.where(unusable, np.nan, np.clip(upper, 0.0, 1.0))
    return Intervals(lower=lower, upper=upper, n_eff=n_eff, deff=deff, method=method, level=level)


def _wilson(p: np.ndarray, n_eff: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t2 = t * t
    centre = p + t2 / (2.0 * n_eff)
    half = (t / (2.0 * n_eff)) * np.sqrt(4.0 * n_eff * p * (1.0 - p) + t2)
    denom = 1.0 + t2 / n_eff
    return (centre - half) / denom, (centre + half) / denom


def _korn_graubard(
    p: np.ndarray, n_eff: np.ndarray, n: np.ndarray, t: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - level
    t_n = t_quantile(np.maximum(n - 1.0, 1.0), level)
    n_df = n_eff * (t_n / t) ** 2
    x = n_df * p
    # Counts within 1e-9 of 0 or n* are the boundary (scipy's Beta quantile overflows on subnormal shapes).
    at_zero = ~(x > 1e-9)
    at_one = ~(n_df - x > 1e-9)
    safe_x = np.where(at_zero | at_one, 1.0, x)
    safe_n = np.where(at_zero | at_one, 2.0, n_df)
    lower = np.where(at_zero, 0.0, stats.beta.ppf(alpha / 2.0, safe_x, safe_n - safe_x + 1.0))
    upper = np.where(at_one, 1.0, stats.beta.ppf(1.0 - alpha / 2.0, safe_x + 1.0, safe_n - safe_x))
    lower = np.where(at_one & ~at_zero, stats.beta.ppf(alpha / 2.0, np.where(at_one, n_df, 1.0), 1.0), lower)
    upper = np.where(at_zero & ~at_one, stats.beta.ppf(1.0 - alpha / 2.0, 1.0, np.where(at_zero, n_df, 1.0)), upper)
    return lower, upper


def reliability(
    p: ArrayLike,
    intervals: Intervals,
    n: ArrayLike,
    df: ArrayLike,
    rule: ReliabilityRule | None = None,
) -> np.ndarray:
    """Reliability code per estimate (``Reliability`` values) from n, n*, df and the interval's width."""
    rule = rule or ReliabilityRule()
    p, n, df = (np.asarray(x, dtype=np.float64) for x in (p, n, df))
    width = intervals.upper - intervals.lower
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = width / p
    out = np.full(np.broadcast(p, n, df).shape, int(Reliability.ok), dtype=np.int8)
    out = np.where(df < rule.review_df_below, int(Reliability.review), out)
    too_wide = (width >= rule.max_width) | ((width > rule.relative_width_from) & (relative > rule.max_relative_width))
    small = (n < rule.min_n) | (intervals.n_eff < rule.min_n_eff)
    out = np.where(small | too_wide, int(Reliability.unreliable), out)
    out = np.where(~np.isfinite(width) | ~(n > 0) | (df < 1), int(Reliability.no_data), out)
    return out.astype(np.int8)
