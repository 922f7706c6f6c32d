"""Sample size per reported unit: Cochran's formula with the exact finite-population correction, and Yamane.

Cochran (STATISTICS.md 6.1) is the default: explicit confidence level and planning share P, the exact
finite-population form of his eq. 4.2, then inflation for the design effect and the response rate. Yamane
(STATISTICS.md 6.2) is offered only because officials know it: it is the approximate correction
n₀/(1 + n₀/N) with P = 0.5 and z = 2.

Every size is rounded up as ⌈x - 1e-9⌉, so that floating error such as 3750.0000000000005 does not cost a
form, and capped at the unit's population N. Apply the formulas per reported unit with N = the unit's
transaction count in the period; totals follow by summing.

References
----------
Cochran, W. G. (1977). Sampling Techniques, 3rd ed., Wiley, §4.4, eq. 4.2. Yamane, T. (1967). Statistics:
An Introductory Analysis, 2nd ed., Harper & Row. Kish, L. (1965). Survey Sampling, Wiley (design effect).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CEIL_GUARD = 1e-9


@dataclass(frozen=True, eq=False)
class CochranSize:
    """Sizes for each N (arrays shaped like N, int64), and the settings that produced them.

    n0 is the infinite-population size and is not capped; n, n_design and codes_to_issue are capped at N.
    """

    n0: np.ndarray  # z² P(1-P) / d², rounded up
    n: np.ndarray  # with the exact finite-population correction (Cochran eq. 4.2)
    n_design: np.ndarray  # n × deff: completed interviews to aim for
    codes_to_issue: np.ndarray  # n × deff / response rate: invitations (forms, QR codes) to hand out
    z: float
    margin: float
    p: float
    level: float
    deff: float
    response_rate: float


def _ceil(x: np.ndarray) -> np.ndarray:
    """⌈x - 1e-9⌉ as int64: rounding up that forgives floating error."""
    return np.ceil(x - CEIL_GUARD).astype(np.int64)


def _population(N: ArrayLike) -> np.ndarray:
    pop = np.asarray(N, dtype=np.float64)
    if not np.all(np.isfinite(pop)) or np.any(pop < 0) or np.any(pop != np.floor(pop)):
        raise ValueError("N must be whole, finite and non-negative (a count of transactions)")
    return pop


def _share(name: str, value: float) -> float:
    value = float(value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must lie strictly between 0 and 1 (a proportion, 0.05 for 5%), got {value!r}")
    return value


def yamane(N: ArrayLike, e: float = 0.05) -> np.ndarray:
    """Yamane's sample size n = N / (1 + N e²): the approximation officials know.

    Parameters
    ----------
    N : population size(s): the unit's transactions in the period; any shape.
    e : margin of error as a proportion (0.05 for ±5 percentage points).

    Returns
    -------
    numpy.ndarray
        int64, shaped like N: ⌈N / (1 + N e²) - 1e-9⌉, capped at N.

    Notes
    -----
    This is what SIPAS uses (METHOD.md "Sampling as practised"). It equals the approximate correction
    n₀/(1 + n₀/N) of Cochran's n₀ with P = 0.5 and z = 2 (n₀ = 1/e²), so it is slightly conservative
    at 95% and silent about the level, P, the design effect and nonresponse. Prefer :func:`cochran`;
    offer this one labelled as Yamane's approximation (STATISTICS.md 6.2).

    References
    ----------
    Yamane, T. (1967). Statistics: An Introductory Analysis, 2nd ed.

    Examples
    --------
    >>> int(yamane(1000))
    286
    """
    pop = _population(N)
    e = _share("e", e)
    n = pop / (1.0 + pop * e * e)
    return np.minimum(_ceil(n), pop.astype(np.int64))


def cochran(
    N: ArrayLike,
    *,
    margin: float,
    p: float = 0.5,
    level: float = 0.95,
    deff: float = 1.0,
    response_rate: float = 1.0,
) -> CochranSize:
    """Cochran's sample size for a share, with the exact finite-population correction.

    Parameters
    ----------
    N : population size(s): the unit's transactions in the period; any shape.
    margin : absolute half-width d of the interval, as a proportion (0.05 for ±5 points). For a relative
        margin r around P pass d = r·P.
    p : planning value of the share P; 0.5 is the worst case. With satisfaction around 90-95% a smaller
        P(1-P) is defensible, but plan for the lowest-scoring criterion.
    level : confidence level; z is the normal quantile at (1 + level)/2.
    deff : design effect, > 0 (about 1 + (m̄ - 1)ρ for clusters of mean size m̄ and intra-cluster
        correlation ρ).
    response_rate : expected response rate in (0, 1].

    Returns
    -------
    CochranSize
        int64 arrays shaped like N: n0, n, n_design, codes_to_issue.

    Raises
    ------
    ValueError
        margin or p outside (0, 1), level outside (0, 1), deff ≤ 0, response_rate outside (0, 1], or N not
        whole and non-negative.

    Notes
    -----
    n₀ = z² P(1-P) / d² (infinite population). The finite-population size is the exact form of Cochran's
    eq. 4.2,

        n = n₀ / (1 + (n₀ - 1)/N) = N z² P(1-P) / ((N - 1) d² + z² P(1-P)),

    not the common approximation n₀/(1 + n₀/N), which differs by less than one unit. Then
    n_design = n·deff and codes_to_issue = n·deff / response_rate. Each is computed from the real-valued
    n and rounded up once, as ⌈x - 1e-9⌉; all but n₀ are capped at N (a unit with fewer transactions
    than needed is surveyed completely; its response rate cannot be made up). N = 0 gives 0.

    References
    ----------
    Cochran, W. G. (1977). Sampling Techniques, 3rd ed., §4.4, eq. 4.2. Kish, L. (1965). Survey Sampling,
    §5.4 (design effect).

    Examples
    --------
    >>> int(cochran(1000, margin=0.05).n)
    278
    """
    pop = _population(N)
    margin = _share("margin", margin)
    p = _share("p", p)
    level = _share("level", level)
    deff = float(deff)
    if not (np.isfinite(deff) and deff > 0):
        raise ValueError(f"deff must be a positive number, got {deff!r}")
    response_rate = float(response_rate)
    if not 0 < response_rate <= 1:
        raise ValueError(f"response_rate must lie in (0, 1], got {response_rate!r}")

    z = float(stats.norm.ppf((1.0 + level) / 2.0))
    zpq = z * z * p * (1.0 - p)
    n0 = zpq / (margin * margin)
    # N = 0 gives 0 / (zpq - d²); the denominator is positive whenever N ≥ 1, so zero N is set apart
    with np.errstate(invalid="ignore", divide="ignore"):
        n_real = np.where(pop > 0, pop * zpq / ((pop - 1.0) * margin * margin + zpq), 0.0)
    cap = pop.astype(np.int64)
    return CochranSize(
        n0=_ceil(np.full(pop.shape, n0)),
        n=np.minimum(_ceil(n_real), cap),
        n_design=np.minimum(_ceil(n_real * deff), cap),
        codes_to_issue=np.minimum(_ceil(n_real * deff / response_rate), cap),
        z=z,
        margin=margin,
        p=p,
        level=level,
        deff=deff,
        response_rate=response_rate,
    )
