"""Funnel plots for proportions: control limits, over-dispersion and outlier flags (Spiegelhalter 2005).

A funnel plot shows each unit's share p_i against its sample size n_i, with control limits around a
target θ₀ that narrow as n grows. Units are flagged, never ranked, when they lie strictly outside the
limits: ±1 outside the 95 % limits ("warning"), ±2 outside the 99.8 % limits ("alarm").

Three ways to draw the limits (STATISTICS.md 3):

* ``"exact"``: binomial quantiles with Spiegelhalter's interpolation (appendix A.1.1), integer n;
* ``"normal"``: θ₀ ± z √(θ₀(1 − θ₀)/n), clipped to [0, 1];
* ``"arcsine"``: on the variance-stabilising scale y = asin(√p), s = 1/(2√n), clipped to [0, π/2] before
  the back-transformation sin²(·). Over-dispersion (multiplicative φ or additive τ²) is always handled on
  this scale.

References
----------
Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Statistics in
Medicine 24:1185-1202. Spiegelhalter, D. J. (2005). Handling over-dispersion of performance indicators.
Quality and Safety in Health Care 14:347-351.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
from scipy import stats

Method = Literal["exact", "normal", "arcsine"]
Model = Literal["multiplicative", "additive"]
Trim = Literal["winsorise", "drop"]

METHODS: tuple[str, ...] = ("exact", "normal", "arcsine")
MODELS: tuple[str, ...] = ("multiplicative", "additive")
TRIMS: tuple[str, ...] = ("winsorise", "drop")
DEFAULT_LEVELS: tuple[float, ...] = (0.95, 0.998)
HALF_PI = np.pi / 2.0


def _readonly(values: npt.ArrayLike, dtype: npt.DTypeLike = np.float64) -> np.ndarray:
    out = np.array(values, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class FunnelLimits:
    """Control limits at several levels for an array of sample sizes.

    Attributes
    ----------
    target : float
        The target proportion θ₀.
    n : ndarray, shape (k,)
        Sample sizes the limits were computed for (rounded to integers for ``"exact"``).
    levels : tuple of float
        Two-sided levels, increasing (default 0.95 and 0.998).
    lower, upper : ndarray, shape (len(levels), k)
        Limits on the proportion scale, within [0, 1]; row j belongs to ``levels[j]``.
    method : str
        ``"exact"``, ``"normal"`` or ``"arcsine"``.
    overdispersion : str or None
        ``"multiplicative"``, ``"additive"`` or None.
    phi : float or None
        Dispersion ratio φ̂ behind the limits (multiplicative model; the limits use max(φ̂, 1)).
    tau2 : float or None
        Between-unit variance τ̂² on the arcsine scale (additive model).
    """

    target: float
    n: np.ndarray
    levels: tuple[float, ...]
    lower: np.ndarray
    upper: np.ndarray
    method: Method
    overdispersion: Model | None
    phi: float | None
    tau2: float | None

    def at(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lower, upper)`` for one of ``levels``; raise ValueError for any other level."""
        return _rows_at(self.levels, self.lower, self.upper, level)


@dataclass(frozen=True, eq=False)
class DispersionEstimate:
    """Over-dispersion estimated from z-scores on the arcsine scale.

    Attributes
    ----------
    phi : float
        φ̂ = mean of the squared winsorised (or retained) z-scores.
    tau2 : float or None
        τ̂² = max(0, (I φ̂ − (I − 1)) / (Σw − Σw²/Σw)), w = 1/s² = 4n, over the I units used; None when
        no sample sizes were given.
    z : ndarray
        The z-scores as given.
    z_used : ndarray
        Winsorised z-scores (``trim="winsorise"``) or the z-scores with dropped units set to NaN
        (``trim="drop"``).
    included : ndarray of bool
        Units that enter φ̂ and τ̂² (all of them when winsorising).
    bounds : tuple of float
        The z values at the ``winsor`` percentiles.
    trim : str
        ``"winsorise"`` or ``"drop"``.
    """

    phi: float
    tau2: float | None
    z: np.ndarray
    z_used: np.ndarray
    included: np.ndarray
    bounds: tuple[float, float]
    trim: str


@dataclass(frozen=True, eq=False)
class Funnel:
    """Funnel-plot data for a set of units: limits at each unit's n, z-scores and flags.

    Attributes
    ----------
    p_hat, n : ndarray, shape (I,)
        Observed shares and sample sizes as given (n may be an effective size).
    target : float
        θ₀: the external target, or the pooled Σx/Σn with x = p̂·n.
    levels : tuple of float
        Two-sided levels of the limits, increasing.
    method : str
        ``"exact"``, ``"normal"`` or ``"arcsine"``.
    overdispersion : str or None
        ``"multiplicative"``, ``"additive"`` or None.
    phi : float or None
        φ̂ when over-dispersion was requested (both models), else None.
    tau2 : float or None
        τ̂² for the additive model, else None.
    z : ndarray
        Unadjusted z-scores on the scale of ``method``: (p̂ − θ₀)/√(θ₀(1 − θ₀)/n) for ``"normal"`` and
        ``"exact"`` (a normal approximation there), (asin√p̂ − asin√θ₀)·2√n for ``"arcsine"``.
    z_adjusted : ndarray
        z-scores under the over-dispersion model: z/√max(φ̂, 1) (multiplicative) or
        (asin√p̂ − asin√θ₀)/√(s² + τ̂²) (additive); equal to ``z`` without over-dispersion.
    lower, upper : ndarray, shape (len(levels), I)
        Each unit's limits; row j belongs to ``levels[j]``.
    flags : ndarray of int8, shape (I,)
        +k when p̂ is strictly above the upper limits of the k narrowest levels, −k when strictly below
        their lower limits, 0 inside. With the default levels: −2 below 99.8 %, −1 below 95 %, 0 inside,
        +1 above 95 %, +2 above 99.8 %.
    dispersion : DispersionEstimate or None
        Details of the over-dispersion estimate, when requested.
    """

    p_hat: np.ndarray
    n: np.ndarray
    target: float
    levels: tuple[float, ...]
    method: Method
    overdispersion: Model | None
    phi: float | None
    tau2: float | None
    z: np.ndarray
    z_adjusted: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    flags: np.ndarray
    dispersion: DispersionEstimate | None

    def at(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the units' ``(lower, upper)`` limits for one of ``levels``; ValueError for any other."""
        return _rows_at(self.levels, self.lower, self.upper, level)

    def curve(self, n_grid: npt.ArrayLike | None = None, *, num: int = 100) -> FunnelLimits:
        """Limits on a grid of sample sizes, for drawing the funnel.

        Parameters
        ----------
        n_grid : array_like, optional
            Sample sizes; by default ``num`` log-spaced points from min(n) to max(n).
        num : int
            Number of grid points when ``n_grid`` is not given.

        Returns
        -------
        FunnelLimits
            Limits with the same target, levels, method and over-dispersion (φ̂ or τ̂²) as this funnel.
        """
        if n_grid is None:
            if num < 2:
                raise ValueError("num must be at least 2")
            n_grid = np.geomspace(float(np.min(self.n)), float(np.max(self.n)), num)
        return funnel_limits(
            self.target,
            n_grid,
            levels=self.levels,
            method=self.method,
            overdispersion=self.overdispersion,
            phi=self.phi if self.overdispersion == "multiplicative" else None,
            tau2=self.tau2 if self.overdispersion == "additive" else None,
        )


def _rows_at(
    levels: tuple[float, ...], lower: np.ndarray, upper: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray]:
    matches = [j for j, lv in enumerate(levels) if abs(lv - level) <= 1e-12]
    if not matches:
        raise ValueError(f"level {level!r} not among the computed levels {levels}")
    return lower[matches[0]], upper[matches[0]]


def _check_levels(levels: Sequence[float]) -> tuple[float, ...]:
    out = tuple(float(lv) for lv in levels)
    if not out:
        raise ValueError("at least one level is needed")
    if not all(0.0 < lv < 1.0 for lv in out):
        raise ValueError(f"levels must lie strictly between 0 and 1, got {out}")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"levels must be strictly increasing, got {out}")
    return out


def _check_target(target: float) -> float:
    t = float(target)
    if not 0.0 < t < 1.0:
        raise ValueError(f"target must lie strictly between 0 and 1, got {target!r}")
    return t


def _check_n(n: npt.ArrayLike, name: str = "n") -> np.ndarray:
    arr = np.asarray(n, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and positive")
    return arr


def _resolve_method(method: str | None, overdispersion: str | None) -> Method:
    if overdispersion is not None and overdispersion not in MODELS:
        raise ValueError(f"unknown over-dispersion model {overdispersion!r}; use one of {MODELS} or None")
    if method is None:
        return "exact" if overdispersion is None else "arcsine"
    if method not in METHODS:
        raise ValueError(f"unknown funnel method {method!r}; use one of {METHODS}")
    if overdispersion is not None and method != "arcsine":
        raise ValueError(f"over-dispersion is handled on the arcsine scale: method must be 'arcsine', not {method!r}")
    return cast(Method, method)


def arcsine_z_scores(p_hat: npt.ArrayLike, n: npt.ArrayLike, target: float) -> np.ndarray:
    """z-scores on the variance-stabilising arcsine scale.

    Parameters
    ----------
    p_hat : array_like
        Observed shares in [0, 1].
    n : array_like
        Sample sizes (or effective sizes n*), positive.
    target : float
        θ₀ in (0, 1).

    Returns
    -------
    ndarray
        z_i = (asin√p̂_i − asin√θ₀)/s_i with s_i = 1/(2√n_i).

    References
    ----------
    Spiegelhalter (2005), Stat Med 24:1185-1202, appendix A.1.1 and section 5.
    """
    p = np.asarray(p_hat, dtype=np.float64)
    nn = _check_n(n)
    if p.shape != nn.shape:
        raise ValueError("p_hat and n must have the same shape")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p_hat must lie in [0, 1]")
    theta = _check_target(target)
    return (np.arcsin(np.sqrt(p)) - np.arcsin(np.sqrt(theta))) * 2.0 * np.sqrt(nn)


def estimate_dispersion(
    z: npt.ArrayLike,
    n: npt.ArrayLike | None = None,
    *,
    winsor: tuple[float, float] = (0.1, 0.9),
    trim: Trim = "winsorise",
) -> DispersionEstimate:
    """Estimate the over-dispersion ratio φ̂ and the between-unit variance τ̂² from z-scores.

    Parameters
    ----------
    z : array_like
        Unadjusted z-scores on the arcsine scale (see `arcsine_z_scores`), at least two.
    n : array_like, optional
        The units' sample sizes; needed for τ̂² (weights w_i = 1/s_i² = 4n_i).
    winsor : tuple of float
        Lower and upper percentiles (as fractions) of z, computed with numpy's default ``linear``
        quantile (R's type 7). ``(0, 1)`` leaves z unchanged.
    trim : {"winsorise", "drop"}
        ``"winsorise"`` pulls z-scores beyond the percentiles in to them (Spiegelhalter); ``"drop"``
        leaves the units beyond them out of φ̂ and τ̂² (the NHS SHMI variant), keeping units exactly on a
        percentile.

    Returns
    -------
    DispersionEstimate

    Notes
    -----
    φ̂ = (1/I) Σ z_i² over the I units used. Additive random effects (DerSimonian-Laird form):
    τ̂² = max(0, (I φ̂ − (I − 1)) / (Σw_i − Σw_i²/Σw_i)) over the same units.

    Winsorising shrinks φ̂ under the null: for standard normal z and the default 10 %/90 % percentiles the
    expected value of φ̂ is about 0.68, not 1. The additive τ̂² is floored at 0 and the multiplicative
    limits use max(φ̂, 1), so this never narrows the limits.

    References
    ----------
    Spiegelhalter, D. J. (2005). Handling over-dispersion of performance indicators. Qual Saf Health
    Care 14:347-351. Spiegelhalter (2005), Stat Med 24:1185-1202, section 5.
    """
    if trim not in TRIMS:
        raise ValueError(f"unknown trim {trim!r}; use one of {TRIMS}")
    lo, hi = (float(v) for v in winsor)
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"winsor must satisfy 0 <= lower < upper <= 1, got {winsor!r}")
    zz = np.asarray(z, dtype=np.float64)
    if zz.ndim != 1 or zz.size < 2:
        raise ValueError("z must be one-dimensional with at least two units")
    if not np.all(np.isfinite(zz)):
        raise ValueError("z must be finite")
    q_lo, q_hi = (float(v) for v in np.quantile(zz, [lo, hi]))
    if trim == "winsorise":
        included = np.ones(zz.shape, dtype=bool)
        z_used = np.clip(zz, q_lo, q_hi)
    else:
        included = (zz >= q_lo) & (zz <= q_hi)
        z_used = np.where(included, zz, np.nan)
    kept = z_used[included]
    units = kept.size
    if units == 0:
        raise ValueError("no units left after dropping those beyond the winsor percentiles")
    phi = float(np.mean(kept**2))
    tau2: float | None = None
    if n is not None:
        nn = _check_n(n)
        if nn.shape != zz.shape:
            raise ValueError("z and n must have the same shape")
        w = 4.0 * nn[included]
        denominator = w.sum() - (w**2).sum() / w.sum()
        if units < 2 or denominator <= 0:
            raise ValueError("τ² needs at least two units left after trimming")
        tau2 = max(0.0, (units * phi - (units - 1)) / denominator)
    return DispersionEstimate(
        phi=phi,
        tau2=tau2,
        z=_readonly(zz),
        z_used=_readonly(z_used),
        included=_readonly(included, dtype=bool),
        bounds=(q_lo, q_hi),
        trim=trim,
    )


def _exact_limit(q: float, n: np.ndarray, theta: float) -> np.ndarray:
    """Spiegelhalter's interpolated binomial quantile (r_q − a)/n, not yet clipped."""
    r = stats.binom.ppf(q, n, theta)
    # binom.ppf is the smallest r with P(R <= r) >= q up to rounding in the inverse; make it exact.
    r = np.where(stats.binom.cdf(r - 1, n, theta) >= q, r - 1, r)
    r = np.where(stats.binom.cdf(r, n, theta) < q, r + 1, r)
    a = (stats.binom.cdf(r, n, theta) - q) / stats.binom.pmf(r, n, theta)
    return np.asarray((r - a) / n, dtype=np.float64)


def funnel_limits(
    target: float,
    n: npt.ArrayLike,
    *,
    levels: Sequence[float] = DEFAULT_LEVELS,
    method: Method | None = None,
    overdispersion: Model | None = None,
    phi: float | None = None,
    tau2: float | None = None,
    z_scores_for_phi: npt.ArrayLike | None = None,
    n_for_phi: npt.ArrayLike | None = None,
    winsor: tuple[float, float] = (0.1, 0.9),
    trim: Trim = "winsorise",
) -> FunnelLimits:
    """Funnel-plot control limits around a target proportion as a function of sample size.

    Parameters
    ----------
    target : float
        Target proportion θ₀, strictly between 0 and 1.
    n : array_like, shape (k,)
        Sample sizes, positive. Effective (non-integer) sizes are fine for ``"normal"`` and
        ``"arcsine"``; ``"exact"`` rounds them to the nearest integer, which must be at least 1.
    levels : sequence of float
        Two-sided levels, strictly increasing; default (0.95, 0.998), i.e. the 0.025/0.975 and
        0.001/0.999 quantiles.
    method : {"exact", "normal", "arcsine"}, optional
        Default ``"exact"`` without over-dispersion and ``"arcsine"`` with it (the only scale allowed
        then).
    overdispersion : {"multiplicative", "additive"}, optional
        Inflate the limits by φ̂ (multiplicative) or τ̂² (additive random effects).
    phi : float, optional
        φ̂ for the multiplicative model, if already estimated.
    tau2 : float, optional
        τ̂² for the additive model, if already estimated.
    z_scores_for_phi : array_like, optional
        Arcsine-scale z-scores of the units to estimate φ̂ (and τ̂²) from, instead of ``phi``/``tau2``.
    n_for_phi : array_like, optional
        Those units' sample sizes; required with ``z_scores_for_phi`` for the additive model.
    winsor, trim
        Passed to `estimate_dispersion`.

    Returns
    -------
    FunnelLimits
        Lower and upper limits, shape (len(levels), k), within [0, 1].

    Notes
    -----
    Normal: θ₀ ± z_p √(θ₀(1 − θ₀)/n), clipped to [0, 1].

    Exact (Spiegelhalter 2005, appendix A.1.1): for R ~ Bin(n, θ₀) let r_p be the smallest r with
    P(R ≤ r) ≥ p, a = (P(R ≤ r_p) − p)/P(R = r_p); the lower limit is (r_p − a)/n, clipped to [0, 1].
    Applied as written to the upper tail, the formula is one count too strict there (a unit at 5/5 with
    θ₀ = 0.9 would be flagged at 99.8% although P(R = 5) = 0.59), so the upper limit is the same formula
    on the failures: 1 − (lower limit for n − R ~ Bin(n, 1 − θ₀)).

    Arcsine: θ₀' = asin√θ₀, s = 1/(2√n); θ₀' ± z_p·s·√max(φ̂, 1) (multiplicative), θ₀' ± z_p √(s² + τ̂²)
    (additive) or θ₀' ± z_p·s (none). The limits are clipped to [0, π/2] before sin²(·): otherwise an
    upper limit beyond π/2 folds back below 1 and a small unit at 100 % is flagged.

    References
    ----------
    Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Stat Med
    24:1185-1202. Spiegelhalter, D. J. (2005). Handling over-dispersion of performance indicators. Qual
    Saf Health Care 14:347-351.
    """
    theta = _check_target(target)
    lvls = _check_levels(levels)
    resolved = _resolve_method(method, overdispersion)
    nn = _check_n(n)
    phi_used, tau2_used = _dispersion_parameters(overdispersion, phi, tau2, z_scores_for_phi, n_for_phi, winsor, trim)

    lower = np.empty((len(lvls), nn.size))
    upper = np.empty((len(lvls), nn.size))
    if resolved == "exact":
        nn = np.rint(nn)
        if np.any(nn < 1):
            raise ValueError("exact binomial limits need n of at least 1 after rounding")
        for j, lv in enumerate(lvls):
            tail = (1.0 - lv) / 2.0
            lower[j] = _exact_limit(tail, nn, theta)
            # the upper tail as the lower tail of the failures, so both tails are equally exact
            upper[j] = 1.0 - _exact_limit(tail, nn, 1.0 - theta)
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    elif resolved == "normal":
        se = np.sqrt(theta * (1.0 - theta) / nn)
        for j, lv in enumerate(lvls):
            zp = stats.norm.ppf(1.0 - (1.0 - lv) / 2.0)
            lower[j] = theta - zp * se
            upper[j] = theta + zp * se
        lower, upper = np.clip(lower, 0.0, 1.0), np.clip(upper, 0.0, 1.0)
    else:
        centre = np.arcsin(np.sqrt(theta))
        s = 1.0 / (2.0 * np.sqrt(nn))
        if overdispersion == "multiplicative":
            assert phi_used is not None
            se = s * np.sqrt(max(phi_used, 1.0))
        elif overdispersion == "additive":
            assert tau2_used is not None
            se = np.sqrt(s**2 + tau2_used)
        else:
            se = s
        for j, lv in enumerate(lvls):
            zp = stats.norm.ppf(1.0 - (1.0 - lv) / 2.0)
            lower[j] = np.sin(np.clip(centre - zp * se, 0.0, HALF_PI)) ** 2
            upper[j] = np.sin(np.clip(centre + zp * se, 0.0, HALF_PI)) ** 2
    return FunnelLimits(
        target=theta,
        n=_readonly(nn),
        levels=lvls,
        lower=_readonly(lower),
        upper=_readonly(upper),
        method=resolved,
        overdispersion=overdispersion,
        phi=phi_used,
        tau2=tau2_used,
    )


def _dispersion_parameters(
    overdispersion: str | None,
    phi: float | None,
    tau2: float | None,
    z_scores_for_phi: npt.ArrayLike | None,
    n_for_phi: npt.ArrayLike | None,
    winsor: tuple[float, float],
    trim: Trim,
) -> tuple[float | None, float | None]:
    """(φ̂, τ̂²) for `funnel_limits`, from given values or estimated from z-scores."""
    if overdispersion is None:
        if phi is not None or tau2 is not None or z_scores_for_phi is not None or n_for_phi is not None:
            raise ValueError("phi, tau2, z_scores_for_phi and n_for_phi need an over-dispersion model")
        return None, None
    if overdispersion == "multiplicative":
        if tau2 is not None:
            raise ValueError("tau2 belongs to the additive model; the multiplicative model takes phi")
        if phi is not None:
            if z_scores_for_phi is not None:
                raise ValueError("give either phi or z_scores_for_phi, not both")
            if not (np.isfinite(phi) and phi >= 0):
                raise ValueError("phi must be finite and non-negative")
            return float(phi), None
        if z_scores_for_phi is None:
            raise ValueError("the multiplicative model needs phi or z_scores_for_phi")
        return estimate_dispersion(z_scores_for_phi, n_for_phi, winsor=winsor, trim=trim).phi, None
    if phi is not None:
        raise ValueError("phi belongs to the multiplicative model; the additive model takes tau2")
    if tau2 is not None:
        if z_scores_for_phi is not None:
            raise ValueError("give either tau2 or z_scores_for_phi, not both")
        if not (np.isfinite(tau2) and tau2 >= 0):
            raise ValueError("tau2 must be finite and non-negative")
        return None, float(tau2)
    if z_scores_for_phi is None or n_for_phi is None:
        raise ValueError("the additive model needs tau2, or z_scores_for_phi together with n_for_phi")
    est = estimate_dispersion(z_scores_for_phi, n_for_phi, winsor=winsor, trim=trim)
    return est.phi, est.tau2


def funnel(
    p_hat: npt.ArrayLike,
    n: npt.ArrayLike,
    *,
    target: float | None = None,
    levels: Sequence[float] = DEFAULT_LEVELS,
    method: Method | None = None,
    overdispersion: Model | None = None,
    winsor: tuple[float, float] = (0.1, 0.9),
    trim: Trim = "winsorise",
) -> Funnel:
    """Funnel-plot data for a set of units: limits at each unit's n, z-scores and outlier flags.

    Parameters
    ----------
    p_hat : array_like, shape (I,)
        Observed shares in [0, 1].
    n : array_like, shape (I,)
        Sample sizes, positive; with survey weights the effective sizes n*_i (rounded for ``"exact"``).
    target : float, optional
        External target θ₀ in (0, 1); by default the pooled Σx/Σn with x = p̂·n.
    levels : sequence of float
        Two-sided levels, strictly increasing; default (0.95, 0.998).
    method : {"exact", "normal", "arcsine"}, optional
        See `funnel_limits`; default ``"exact"``, or ``"arcsine"`` with over-dispersion.
    overdispersion : {"multiplicative", "additive"}, optional
        Estimate φ̂ (and τ̂²) from these units' arcsine z-scores and widen the limits; ``"additive"`` is
        the model recommended by Spiegelhalter (2005, QSHC).
    winsor, trim
        Passed to `estimate_dispersion`.

    Returns
    -------
    Funnel
        Target, φ̂, τ̂², z-scores, per-unit limits and flags; ``curve()`` gives limits for drawing.

    Notes
    -----
    A unit is flagged when p̂ lies strictly outside a limit, so a unit exactly on a clipped limit (say
    p̂ = 1 where the upper limit is 1) is not flagged. Flags are for inspection, not ranking.

    References
    ----------
    Spiegelhalter, D. J. (2005). Funnel plots for comparing institutional performance. Stat Med
    24:1185-1202. Spiegelhalter, D. J. (2005). Handling over-dispersion of performance indicators. Qual
    Saf Health Care 14:347-351.
    """
    p = np.asarray(p_hat, dtype=np.float64)
    nn = _check_n(n)
    if p.shape != nn.shape:
        raise ValueError("p_hat and n must have the same shape")
    if not np.all((p >= 0.0) & (p <= 1.0)):
        raise ValueError("p_hat must lie in [0, 1]")
    resolved = _resolve_method(method, overdispersion)
    if target is None:
        pooled = float(np.sum(p * nn) / np.sum(nn))
        if not 0.0 < pooled < 1.0:
            raise ValueError("every unit is at 0 % or every unit at 100 %: no pooled target to compare with")
        theta = pooled
    else:
        theta = _check_target(target)

    z_arcsine = arcsine_z_scores(p, nn, theta)
    dispersion: DispersionEstimate | None = None
    phi: float | None = None
    tau2: float | None = None
    if overdispersion is not None:
        n_for_tau2 = nn if overdispersion == "additive" else None
        dispersion = estimate_dispersion(z_arcsine, n_for_tau2, winsor=winsor, trim=trim)
        phi = dispersion.phi
        tau2 = dispersion.tau2
    limits = funnel_limits(
        theta,
        nn,
        levels=levels,
        method=resolved,
        overdispersion=overdispersion,
        phi=phi if overdispersion == "multiplicative" else None,
        tau2=tau2,
    )

    z = z_arcsine if resolved == "arcsine" else (p - theta) / np.sqrt(theta * (1.0 - theta) / nn)
    if overdispersion == "multiplicative":
        assert phi is not None
        z_adjusted = z / np.sqrt(max(phi, 1.0))
    elif overdispersion == "additive":
        assert tau2 is not None
        s2 = 1.0 / (4.0 * nn)
        z_adjusted = (np.arcsin(np.sqrt(p)) - np.arcsin(np.sqrt(theta))) / np.sqrt(s2 + tau2)
    else:
        z_adjusted = z

    above = np.sum(p[np.newaxis, :] > limits.upper, axis=0)
    below = np.sum(p[np.newaxis, :] < limits.lower, axis=0)
    flags = (above - below).astype(np.int8)
    return Funnel(
        p_hat=_readonly(p),
        n=_readonly(nn),
        target=theta,
        levels=limits.levels,
        method=resolved,
        overdispersion=overdispersion,
        phi=phi,
        tau2=tau2,
        z=_readonly(z),
        z_adjusted=_readonly(z_adjusted),
        lower=limits.lower,
        upper=limits.upper,
        flags=_readonly(flags, dtype=np.int8),
        dispersion=dispersion,
    )
