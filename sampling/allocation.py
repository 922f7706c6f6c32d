"""Allocation of a total sample across strata (units, fields), with minimums, caps and an exact total.

Rules (STATISTICS.md 7): proportional, Neyman, Bankier's power allocation, or equal; a minimum per stratum
m_h = min(minimum, N_h) and a cap n_h ≤ N_h, enforced by fixing violators at their bound and reallocating
the rest among the free strata; integers by largest remainder (Hamilton), so the total is exact and no
stratum is rounded up on its own. Provinces' fixed quotas per kind of unit are kept for comparison.

References
----------
Neyman, J. (1934). JRSS 97:558-625. Cochran, W. G. (1977). Sampling Techniques, 3rd ed., §5.5 and §5.9.
Bankier, M. D. (1988). Power allocations: determining sample sizes for subnational areas. Am Stat
42:174-177. Balinski, M. L. & Young, H. P. (2001). Fair Representation, 2nd ed. (Hamilton's method and
the Alabama paradox).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

METHODS = ("proportional", "neyman", "power", "equal")
_TIE_DECIMALS = 9  # remainders equal to 9 decimals are ties, broken by larger N_h, then stratum order


@dataclass(frozen=True, eq=False)
class Allocation:
    """Sample sizes per stratum, in the order of the population given."""

    n: np.ndarray  # int64, sums to the total exactly, within [m_h, N_h]
    real: np.ndarray  # float64, the bounded allocation before integerisation (sums to the total)
    method: str


def _whole(name: str, value: float) -> int:
    as_float = float(value)
    if not np.isfinite(as_float) or as_float < 0 or as_float != np.floor(as_float):
        raise ValueError(f"{name} must be a whole non-negative number, got {value!r}")
    return int(as_float)


def allocate(
    total: int,
    population: ArrayLike,
    *,
    method: str = "proportional",
    sd: ArrayLike | None = None,
    power: float = 0.5,
    minimum: int = 0,
    cap_at_population: bool = True,
) -> Allocation:
    """Allocate ``total`` interviews across strata, with minimums, caps and an exact integer total.

    Parameters
    ----------
    total : the whole sample n to allocate.
    population : N_h per stratum (whole, non-negative), one-dimensional.
    method : "proportional" (n_h ∝ N_h), "neyman" (n_h ∝ N_h S_h), "power" (n_h ∝ N_h^q S_h) or "equal"
        (n_h ∝ 1 for every non-empty stratum).
    sd : S_h per stratum (non-negative). Required for "neyman"; optional for "power" (S_h = 1 when None);
        ignored by "proportional" and "equal". For a share P_h, S_h = √(N_h/(N_h - 1) · P_h(1 - P_h)).
    power : the exponent q in [0, 1] of the power allocation: q = 1 is Neyman, q = 0 gives roughly equal
        precision per stratum, q = 0.5 is the usual compromise. Used only by "power".
    minimum : the wanted minimum per stratum (≥ 2 for any variance, often 30 for a publishable unit);
        m_h = min(minimum, N_h) when capping, ``minimum`` otherwise (0 where N_h = 0).
    cap_at_population : cap n_h at N_h (sampling without replacement). Without the cap the total may exceed
        Σ N_h (N_h as relative sizes), but a stratum with N_h = 0 still gets nothing.

    Returns
    -------
    Allocation
        ``n`` (int64, exact total, m_h ≤ n_h ≤ N_h), ``real`` (the real-valued allocation) and ``method``.

    Raises
    ------
    ValueError
        Unknown method; Neyman without ``sd``; negative or non-finite inputs; q outside [0, 1]; or an
        infeasible total (Σ m_h > total, or total > Σ N_h when capping), with the numbers.

    Notes
    -----
    Bounds. The rule allocates the sample still unallocated among the free strata in proportion to the
    method's weights, fixes the violators at their bound (m_h or N_h) and repeats until no free stratum
    violates; each round fixes at least one stratum, so there are at most H rounds. When only one kind of
    bound is violated in a round, every violator is fixed (the usual convention for Neyman allocations
    that exceed N_h). When both kinds are violated at once, fixing all of them can overshoot (the strata
    left free can no longer take up the rest), so only the side with the larger total violation is fixed
    in that round, and the other side is re-examined in the next; each fixed stratum then sits at its
    bound in the exact solution n_h = clip(λ w_h, m_h, N_h), Σ n_h = n (the constrained Neyman optimum
    when w_h = N_h S_h). If every free stratum has weight 0 (say S_h = 0 for all of them) but sample is
    left, the rest is spread in proportion to N_h among them.

    Integers. Largest remainder (Hamilton): floor every real n_h, then give the n - Σ⌊n_h⌋ units left to
    the largest fractional parts, ties broken by larger N_h, then stratum order. Bounds survive (a real
    value ≥ integer m_h floors to ≥ m_h; a stratum at N_h has no remainder). Never ``ceil`` per stratum
    (samplics does, and its totals exceed n). Hamilton's method is not monotone in the total: adding one
    interview can take one away from a stratum (the Alabama paradox); the real-valued allocation is
    monotone.

    References
    ----------
    Neyman (1934), JRSS 97:558-625; Cochran (1977), §5.5; Bankier (1988), Am Stat 42:174-177;
    SAS/STAT SURVEYSELECT ``ALLOC=NEYMAN``, ``ALLOCMIN=`` (exact totals).

    Examples
    --------
    >>> allocate(10, [50, 30, 20]).n.tolist()
    [5, 3, 2]
    """
    if method not in METHODS:
        raise ValueError(f"unknown allocation method {method!r}; use one of {METHODS}")
    total = _whole("total", total)
    minimum = _whole("minimum", minimum)
    pop = np.asarray(population, dtype=np.float64)
    if pop.ndim != 1 or pop.size == 0:
        raise ValueError("population must be a non-empty one-dimensional array of N_h")
    if not np.all(np.isfinite(pop)) or np.any(pop < 0) or np.any(pop != np.floor(pop)):
        raise ValueError("population must hold whole, finite, non-negative N_h")

    if sd is None:
        if method == "neyman":
            raise ValueError("Neyman allocation needs sd (S_h per stratum)")
        s = np.ones_like(pop)
    else:
        s = np.asarray(sd, dtype=np.float64)
        if s.shape != pop.shape:
            raise ValueError(f"sd has shape {s.shape}, population {pop.shape}")
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError("sd must be finite and non-negative")

    if method == "proportional":
        weights = pop.copy()
    elif method == "neyman":
        weights = pop * s
    elif method == "power":
        q = float(power)
        if not 0 <= q <= 1:
            raise ValueError(f"power (Bankier's q) must lie in [0, 1], got {power!r}")
        weights = np.where(pop > 0, pop**q, 0.0) * s  # 0**0 would be 1: an empty stratum gets nothing
    else:
        weights = (pop > 0).astype(np.float64)

    if cap_at_population:
        lower, upper = np.minimum(float(minimum), pop), pop.copy()
    else:
        # an empty stratum still gets nothing
        lower, upper = np.where(pop > 0, float(minimum), 0.0), np.where(pop > 0, np.inf, 0.0)
    if lower.sum() > total:
        raise ValueError(
            f"infeasible: the minimums need {int(lower.sum())} interviews (min({minimum}, N_h) summed over "
            f"{pop.size} strata) but the total is {total}"
        )
    if total > upper.sum():  # without caps, only when every stratum is empty
        raise ValueError(f"infeasible: total {total} exceeds the population {int(pop.sum())} (Σ N_h)")

    real = _bounded(float(total), weights, lower, upper, fallback=pop)
    return Allocation(n=_largest_remainder(real, total, pop, upper), real=real, method=method)


def _bounded(
    total: float, weights: np.ndarray, lower: np.ndarray, upper: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    """Real n_h ∝ weights within [lower, upper] summing to total, by fixing violators round by round."""
    tol = 1e-9 * max(1.0, total)
    fixed = lower >= upper
    x = np.where(fixed, lower, 0.0)
    while not fixed.all():
        free = np.flatnonzero(~fixed)
        rest = total - x[fixed].sum()
        w = weights[free]
        if not w.sum() > 0:
            w = fallback[free] if fallback[free].sum() > 0 else np.ones(free.size)
        share = rest * w / w.sum()
        low = share < lower[free] - tol
        high = share > upper[free] + tol
        if not (low.any() or high.any()):
            x[free] = share
            break
        deficit = (lower[free] - share)[low].sum()
        excess = (share - upper[free])[high].sum()
        if deficit > excess + tol:
            high[:] = False  # the rest shrinks: the low ones stay low, the high ones may come back inside
        elif excess > deficit + tol:
            low[:] = False  # the rest grows: the high ones stay high
        x[free[low]] = lower[free[low]]
        x[free[high]] = upper[free[high]]
        fixed[free[low | high]] = True
    x = np.clip(x, lower, upper)
    if abs(x.sum() - total) > tol * x.size:
        raise RuntimeError(f"bounded allocation sums to {x.sum()!r}, not {total!r}")  # a bug, not bad input
    return x


def _largest_remainder(real: np.ndarray, total: int, pop: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Hamilton's method: floors, then one more to the largest remainders (ties: larger N_h, then order)."""
    floors = np.minimum(np.floor(real + 1e-9), upper)
    remainder = np.clip(real - floors, 0.0, None).round(_TIE_DECIMALS)
    remainder = np.where(floors < upper, remainder, -1.0)  # a stratum at its cap gets no more
    left = round(total - floors.sum())
    order = np.lexsort((np.arange(real.size), -pop, -remainder))
    n = floors.astype(np.int64)
    n[order[:left]] += 1
    return n


def fixed_quotas(kinds: Sequence[str], quotas: Mapping[str, int]) -> np.ndarray:
    """Fixed quota per unit by its kind, as provinces set them (METHOD.md "Sampling as practised").

    Parameters
    ----------
    kinds : the kind of each unit, e.g. ["commune", "ward", "district"].
    quotas : forms per kind, e.g. {"commune": 150, "ward": 200, "district": 500}.

    Returns
    -------
    numpy.ndarray
        int64, one quota per unit. Quotas ignore the unit's transactions; compare them with
        :func:`sampling.size.cochran` per unit before adopting them.

    Raises
    ------
    ValueError
        A kind without a quota (all such kinds are named), or a quota that is not a whole number ≥ 0.
    """
    unknown = sorted(set(kinds) - set(quotas))
    if unknown:
        raise ValueError(f"no quota for unit kind(s) {unknown}; quotas are set for {sorted(quotas)}")
    per_kind = {kind: _whole(f"quota for {kind!r}", q) for kind, q in quotas.items()}
    return np.array([per_kind[k] for k in kinds], dtype=np.int64)
