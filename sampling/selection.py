"""Selecting transactions to survey: systematic selection from a list, Bernoulli selection in real time.

Systematic selection (Cochran 1977, §8.1; Madow & Madow 1944) takes every k-th unit of an ordered list
after a random start, with the fractional interval k = N/n so that exactly n units are taken and every
unit has inclusion probability n/N. Bernoulli selection (Särndal, Swensson & Wretman 1992, §3.2) decides
for each transaction as it happens, with a fixed probability per stratum, when the list is not known in
advance (a survey card offered at the counter).

References
----------
Cochran, W. G. (1977). Sampling Techniques, 3rd ed., ch. 8. Madow, W. G. & Madow, L. H. (1944). Ann Math
Stat 15:1-24. Särndal, C.-E., Swensson, B. & Wretman, J. (1992). Model Assisted Survey Sampling, §3.2.
"""

from __future__ import annotations

import operator

import numpy as np
from numpy.typing import ArrayLike

# n·N must stay exactly representable in int64 for the integer arithmetic of ``systematic``.
_MAX_POPULATION = 2**31


def systematic(population_size: int, sample_size: int, *, rng: np.random.Generator) -> np.ndarray:
    """Every k-th position of 0..N-1 with a random start and fractional interval k = N/n.

    Parameters
    ----------
    population_size : N, the number of units in the ordered list (0 ≤ N < 2³¹).
    sample_size : n, the number to select (0 ≤ n ≤ N).
    rng : the random generator that draws the start.

    Returns
    -------
    np.ndarray
        Exactly n distinct positions, sorted, of dtype int64, within 0..N-1.

    Notes
    -----
    Positions are ⌊s + i·k⌋ for i = 0..n-1 with k = N/n and the start s uniform on [0, k) (Cochran 1977,
    §8.1; the "fractional interval" method). They are computed in integers as ⌊(r + i·N)/n⌋ with r
    uniform on {0, ..., N-1}: since ⌊x/n⌋ = ⌊⌊x⌋/n⌋ for an integer n, drawing r = ⌊n·s⌋ gives the same
    distribution as the continuous start, every unit has inclusion probability n/N exactly, and there is
    no floating-point rounding. Floating-point versions can select one unit too few or a position N when
    s is close to k (samplics issue #55). Sorting the list by a variable related to the outcome (date,
    counter) before selection gives implicit stratification.
    """
    big_n = operator.index(population_size)
    n = operator.index(sample_size)
    if big_n < 0 or n < 0:
        raise ValueError(f"population and sample sizes must be non-negative, got N={big_n}, n={n}")
    if n > big_n:
        raise ValueError(f"sample size n={n} exceeds the population size N={big_n}")
    if big_n >= _MAX_POPULATION:
        raise ValueError(f"population size N={big_n} is too large (at most {_MAX_POPULATION - 1})")
    if n == 0:
        return np.empty(0, dtype=np.int64)
    r = int(rng.integers(0, big_n))
    return (r + np.arange(n, dtype=np.int64) * big_n) // n


def bernoulli_probability(
    target: ArrayLike, expected_transactions: ArrayLike, *, response_rate: ArrayLike = 1.0
) -> np.ndarray:
    """Selection probability per stratum for real-time Bernoulli selection.

    Parameters
    ----------
    target : wanted number of responses per stratum (≥ 0).
    expected_transactions : transactions expected in the fieldwork period per stratum (≥ 0).
    response_rate : expected share of selected citizens who answer, in (0, 1] (scalar or per stratum).

    Returns
    -------
    np.ndarray
        π_h = min(1, target_h / (expected_h · RR_h)); 1 where no transactions are expected but some
        responses are wanted, 0 where the target is 0.

    Notes
    -----
    The number selected is Binomial(M_h, π_h) with M_h the actual transactions, so the realised sample
    size varies around its expectation (Särndal, Swensson & Wretman 1992, §3.2); the inclusion
    probability, and so the base weight 1/π_h, is known exactly. A stratum with π_h = 1 cannot reach its
    target if transactions or the response rate fall short of the forecast.
    """
    t, m, rr = np.broadcast_arrays(
        *(np.asarray(x, dtype=np.float64) for x in (target, expected_transactions, response_rate))
    )
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError("targets must be finite and non-negative")
    if not (np.all(np.isfinite(m)) and np.all(m >= 0)):
        raise ValueError("expected transactions must be finite and non-negative")
    if not np.all((rr > 0) & (rr <= 1)):
        raise ValueError("response rates must lie in (0, 1]")
    expected_responses = m * rr
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(expected_responses > 0, t / expected_responses, np.inf)
    return np.where(t > 0, np.minimum(raw, 1.0), 0.0)


def bernoulli_select(probability: ArrayLike, *, rng: np.random.Generator) -> np.ndarray:
    """Select each transaction independently with its probability (yes/no, for real-time issuance).

    Parameters
    ----------
    probability : selection probability per transaction, in [0, 1] (any shape; a scalar for one
        transaction, e.g. ``bool(bernoulli_select(p, rng=rng))``).
    rng : the random generator.

    Returns
    -------
    np.ndarray
        Booleans of the shape of ``probability``: True where U < π with U uniform on [0, 1), so π = 0
        never selects and π = 1 always does.
    """
    p = np.asarray(probability, dtype=np.float64)
    if not np.all((p >= 0) & (p <= 1)):
        raise ValueError("selection probabilities must lie in [0, 1]")
    return np.asarray(rng.random(p.shape) < p)
