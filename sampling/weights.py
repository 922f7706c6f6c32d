"""Survey weights: base weights, nonresponse adjustment, post-stratification, raking, diagnostics.

The usual order (STATISTICS.md §8): base weights N_h/r_h per stratum, a weighting-class nonresponse
adjustment, then post-stratification or raking to known population counts, then diagnostics. Groups
(strata, classes, cells, margin categories) are integer codes 0..K-1, summed with ``np.bincount``.

References
----------
Deming, W. E. & Stephan, F. F. (1940). Ann Math Stat 11:427-444. Deville, J.-C. & Särndal, C.-E. (1992).
JASA 87:376-382. Kish, L. (1965). Survey Sampling. Kish, L. (1992). J Off Stat 8:183-200. Battaglia,
Izrael, Hoaglin & Frankel (2009). Survey Practice 2(5). Lumley, T. (2010). Complex Surveys, ch. 7.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


class RakingError(ValueError):
    """Raking cannot hit the margins: inconsistent grand totals, or no convergence within max_iter.

    ``result`` holds the last iterate (``converged=False``) when the iterations ran out, else None.
    """

    def __init__(self, message: str, result: RakeResult | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, eq=False)
class BaseWeights:
    """Base weights per stratum, and the strata that have population but no respondents."""

    by_stratum: np.ndarray  # N_h / r_h, 0 where r_h = 0
    responses: np.ndarray  # r_h, as given
    empty_strata: np.ndarray  # codes h with N_h > 0 and r_h = 0: their population is not represented

    def for_respondents(self, strata: ArrayLike) -> np.ndarray:
        """Each respondent's weight from its stratum code; the codes must count to the responses r_h."""
        codes = _codes(strata, "stratum")
        n_strata = self.by_stratum.shape[0]
        if codes.size and codes.max() >= n_strata:
            raise ValueError(f"stratum codes must lie in 0..{n_strata - 1}, got {int(codes.max())}")
        counts = np.bincount(codes, minlength=n_strata)
        if not np.array_equal(counts, self.responses):
            bad = np.flatnonzero(counts != self.responses)
            raise ValueError(f"respondents per stratum do not match the responses given, in strata {bad.tolist()}")
        return self.by_stratum[codes]


@dataclass(frozen=True, eq=False)
class RakeResult:
    """Raked weights and how the iterations went (max_error: largest relative margin error at the end)."""

    weights: np.ndarray
    iterations: int
    converged: bool
    max_error: float


@dataclass(frozen=True, slots=True)
class WeightDiagnostics:
    """Summary of a set of weights (Kish 1965, §11.7; Kish 1992)."""

    n: int
    sum: float
    min: float
    max: float
    ratio: float  # max / min; inf when some weight is 0
    deff_kish: float  # 1 + CV² = n Σw² / (Σw)²
    n_effective: float  # (Σw)² / Σw² = n / deff_kish


def base_weights(population: ArrayLike, responses: ArrayLike) -> BaseWeights:
    """Base (design) weights N_h / r_h per stratum.

    Parameters
    ----------
    population : N_h, population (transaction) counts per stratum, ≥ 0.
    responses : r_h, respondents per stratum, 0 ≤ r_h ≤ N_h.

    Returns
    -------
    BaseWeights
        ``by_stratum`` = N_h / r_h, with weight 0 where r_h = 0; those strata with N_h > 0 are listed in
        ``empty_strata`` (their N_h is lost unless a later adjustment moves it to other strata);
        ``for_respondents(codes)`` expands to one weight per respondent.

    Notes
    -----
    Under stratified simple random sampling the inclusion probability of a respondent is r_h/N_h when
    nonresponse is treated as random within strata (Cochran 1977, §5.2; Lohr 2022, §3.2).
    """
    big_n = np.asarray(population, dtype=np.float64)
    r = np.asarray(responses)
    if big_n.ndim != 1 or r.shape != big_n.shape:
        raise ValueError("population and responses must be 1-d arrays of the same length")
    if not (np.all(np.isfinite(big_n)) and np.all(big_n >= 0)):
        raise ValueError("population counts must be finite and non-negative")
    if not (np.issubdtype(r.dtype, np.integer) and np.all(r >= 0)):
        raise ValueError("responses must be non-negative integers")
    over = np.flatnonzero(r > big_n)
    if over.size:
        raise ValueError(f"more responses than population in strata {over.tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(r > 0, big_n / np.maximum(r, 1), 0.0)
    empty = np.flatnonzero((r == 0) & (big_n > 0))
    return BaseWeights(by_stratum=w, responses=r.astype(np.int64), empty_strata=empty)


def nonresponse_adjust(weights: ArrayLike, classes: ArrayLike, respondent: ArrayLike) -> np.ndarray:
    """Weighting-class nonresponse adjustment.

    Parameters
    ----------
    weights : base weights of every eligible sampled unit, respondents and nonrespondents.
    classes : weighting-class code 0..C-1 of each unit (frame variables known for everyone).
    respondent : True for units that answered.

    Returns
    -------
    np.ndarray
        w*_i = w_i · Σ_{eligible sampled in c} w / Σ_{respondents in c} w for respondents, 0 for
        nonrespondents; the class totals of the sampled weights are preserved.

    Raises
    ------
    ValueError
        Naming the classes that have sampled weight but no respondent weight (collapse them first).

    Notes
    -----
    Assumes responses are missing at random within classes (Kalton & Flores-Cervantes 2003, J Off Stat
    19:81-97; Lohr 2022, §8.5). Ineligible units are excluded before calling.
    """
    w = _weights(weights)
    codes = _codes(classes, "class")
    resp = np.asarray(respondent, dtype=bool)
    if codes.shape != w.shape or resp.shape != w.shape:
        raise ValueError("weights, classes and respondent must have the same length")
    n_classes = int(codes.max()) + 1 if codes.size else 0
    sampled = np.bincount(codes, weights=w, minlength=n_classes)
    answered = np.bincount(codes, weights=np.where(resp, w, 0.0), minlength=n_classes)
    missing = np.flatnonzero((sampled > 0) & ~(answered > 0))
    if missing.size:
        raise ValueError(f"weighting classes without respondents (collapse them): {missing.tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(answered > 0, sampled / answered, 0.0)
    return np.where(resp, w * factor[codes], 0.0)


def poststratify(weights: ArrayLike, cells: ArrayLike, population_totals: ArrayLike) -> np.ndarray:
    """Post-stratify respondent weights to known population counts.

    Parameters
    ----------
    weights : respondent weights (after nonresponse adjustment), ≥ 0.
    cells : post-stratum code 0..C-1 of each respondent.
    population_totals : N_c for every cell c = 0..C-1, ≥ 0.

    Returns
    -------
    np.ndarray
        w*_i = w_i · N_c / Σ_{respondents in c} w, so the weights of each cell sum to N_c.

    Raises
    ------
    ValueError
        Naming empty cells (N_c > 0 but no respondent weight; collapse them first) and cells with
        respondents but N_c = 0.

    Notes
    -----
    Holt & Smith (1979), JRSS A 142:33-46; Lohr (2022), §4.4. Collapse cells with few respondents
    (common rules: at least 20-30, adjustment factors at most 2-3) before calling.
    """
    w = _weights(weights)
    codes = _codes(cells, "cell")
    totals = _totals(population_totals, "population totals")
    if codes.shape != w.shape:
        raise ValueError("weights and cells must have the same length")
    if codes.size and codes.max() >= totals.size:
        raise ValueError(f"cell codes must lie in 0..{totals.size - 1}, got {int(codes.max())}")
    current = np.bincount(codes, weights=w, minlength=totals.size)
    empty = np.flatnonzero((totals > 0) & ~(current > 0))
    if empty.size:
        raise ValueError(f"post-strata with a population total but no respondents (collapse them): {empty.tolist()}")
    stray = np.flatnonzero((totals == 0) & (np.bincount(codes, minlength=totals.size) > 0))
    if stray.size:
        raise ValueError(f"post-strata with respondents but a population total of 0: {stray.tolist()}")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(current > 0, totals / current, 0.0)
    return w * factor[codes]


def rake(
    weights: ArrayLike,
    margins: Sequence[tuple[ArrayLike, ArrayLike]],
    *,
    max_iter: int = 100,
    tol: float = 1e-8,
    bounds: tuple[float, float] | None = None,
) -> RakeResult:
    """Rake weights to several sets of marginal totals by iterative proportional fitting.

    Parameters
    ----------
    weights : starting weights w_i of the respondents, ≥ 0.
    margins : one (codes, totals) pair per raking variable: the category code 0..K-1 of each
        respondent and the population total of every category.
    max_iter : most full cycles over the margins.
    tol : convergence and consistency tolerance on relative errors |Σ_cat w − T| / T.
    bounds : optional (L, U) with 0 ≤ L < U: the adjustment factors g_i = w*_i / w_i are trimmed to
        [L, U] after every margin step.

    Returns
    -------
    RakeResult
        The raked weights, the number of cycles run (0 when the start already fits), ``converged`` and
        the largest relative margin error.

    Raises
    ------
    RakingError
        Before iterating, when the margins' grand totals differ by more than ``tol`` (relative), naming
        them; after ``max_iter`` cycles without every margin within ``tol``, giving the largest relative
        error (the last iterate is in ``error.result``).
    ValueError
        For malformed input, or a category with a positive total and no respondent weight.

    Notes
    -----
    Deming & Stephan (1940): in turn for each margin, multiply the weights of every category by
    T / Σ_cat w. Raking is calibration with the multiplicative (raking-ratio) distance of Deville &
    Särndal (1992), so it gives the same weights as R ``survey::calibrate(calfun="raking")``. With
    bounds, each step is followed by clipping g to [L, U]: both are Bregman (Kullback-Leibler)
    projections, onto a margin and onto the box, so the cycle tends to a set of weights meeting both
    when one exists (Bregman 1967); bounds that no set of weights can meet end in a RakingError.
    Categories with total 0 get weight 0 (before trimming). The error is measured after each cycle
    (relative to the grand total for categories with total 0).
    """
    w0 = _weights(weights)
    if not margins:
        raise ValueError("rake needs at least one margin")
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    if not tol > 0:
        raise ValueError("tol must be positive")
    lower, upper = _bounds(bounds)
    parsed: list[tuple[np.ndarray, np.ndarray]] = []
    for j, (codes_like, totals_like) in enumerate(margins):
        codes = _codes(codes_like, f"margin {j} category")
        totals = _totals(totals_like, f"margin {j} totals")
        if codes.shape != w0.shape:
            raise ValueError(f"margin {j}: {codes.size} codes for {w0.size} weights")
        if codes.size and codes.max() >= totals.size:
            raise ValueError(f"margin {j}: category codes must lie in 0..{totals.size - 1}, got {int(codes.max())}")
        empty = np.flatnonzero((totals > 0) & ~(np.bincount(codes, weights=w0, minlength=totals.size) > 0))
        if empty.size:
            raise ValueError(f"margin {j}: categories with a total but no respondent weight: {empty.tolist()}")
        parsed.append((codes, totals))

    grand = np.array([totals.sum() for _, totals in parsed])
    if np.ptp(grand) > tol * grand.max():
        listed = ", ".join(f"margin {j}: {g:.10g}" for j, g in enumerate(grand))
        raise RakingError(f"raking margins have different grand totals ({listed}); they must agree")
    scale = np.maximum(grand.max(), np.finfo(np.float64).tiny)

    def max_error(w: np.ndarray) -> float:
        worst = 0.0
        for codes, totals in parsed:
            current = np.bincount(codes, weights=w, minlength=totals.size)
            denom = np.where(totals > 0, totals, scale)
            worst = max(worst, float(np.max(np.abs(current - totals) / denom)))
        return worst

    w = w0.copy()
    error = max_error(w)
    if error <= tol and _within(w, w0, lower, upper):
        return RakeResult(weights=w, iterations=0, converged=True, max_error=error)
    for iteration in range(1, max_iter + 1):
        for codes, totals in parsed:
            current = np.bincount(codes, weights=w, minlength=totals.size)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = np.where(current > 0, totals / current, 0.0)
            w = w * factor[codes]
            if bounds is not None:
                w = w0 * np.clip(_ratio(w, w0), lower, upper)
        error = max_error(w)
        if error <= tol:
            return RakeResult(weights=w, iterations=iteration, converged=True, max_error=error)
    last = RakeResult(weights=w, iterations=max_iter, converged=False, max_error=error)
    where = "" if bounds is None else f" with bounds ({lower:g}, {upper:g}) on w*/w"
    raise RakingError(
        f"raking did not converge in {max_iter} iterations{where}: largest relative margin error {error:.3g} "
        f"(tolerance {tol:g}); the margins conflict or are too sparse",
        result=last,
    )


def diagnostics(weights: ArrayLike) -> WeightDiagnostics:
    """Size, range and Kish's design effect due to unequal weighting.

    Parameters
    ----------
    weights : respondent weights, ≥ 0, not all 0.

    Returns
    -------
    WeightDiagnostics
        n, Σw, min, max, max/min, deff = 1 + CV²(w) = n Σw² / (Σw)² and effective n = (Σw)² / Σw².

    Notes
    -----
    Kish (1965), §11.7, and Kish (1992), J Off Stat 8:183-200: the variance inflation of a weighted mean
    from unequal weights alone, with CV² computed with divisor n. It ignores clustering and any
    correlation between weights and the outcome.
    """
    w = _weights(weights)
    if w.size == 0 or not w.sum() > 0:
        raise ValueError("diagnostics need at least one positive weight")
    total = float(w.sum())
    squares = float(np.dot(w, w))
    lo, hi = float(w.min()), float(w.max())
    return WeightDiagnostics(
        n=int(w.size),
        sum=total,
        min=lo,
        max=hi,
        ratio=hi / lo if lo > 0 else float("inf"),
        deff_kish=w.size * squares / total**2,
        n_effective=total**2 / squares,
    )


def _weights(weights: ArrayLike) -> np.ndarray:
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1:
        raise ValueError("weights must be a 1-d array")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0)):
        raise ValueError("weights must be finite and non-negative")
    return w


def _codes(codes: ArrayLike, what: str) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim != 1:
        raise ValueError(f"{what} codes must be a 1-d array")
    if c.size == 0:
        return c.astype(np.int64)
    if not (np.issubdtype(c.dtype, np.integer) and c.min() >= 0):
        raise ValueError(f"{what} codes must be non-negative integers")
    return c.astype(np.int64)


def _totals(totals: ArrayLike, what: str) -> np.ndarray:
    t = np.asarray(totals, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError(f"{what} must be a 1-d array")
    if not (np.all(np.isfinite(t)) and np.all(t >= 0)):
        raise ValueError(f"{what} must be finite and non-negative")
    return t


def _bounds(bounds: tuple[float, float] | None) -> tuple[float, float]:
    if bounds is None:
        return 0.0, float("inf")
    lower, upper = float(bounds[0]), float(bounds[1])
    if not (0 <= lower < upper):
        raise ValueError(f"bounds must satisfy 0 <= lower < upper, got ({lower}, {upper})")
    return lower, upper


def _ratio(w: np.ndarray, w0: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w0 > 0, w / w0, 1.0)


def _within(w: np.ndarray, w0: np.ndarray, lower: float, upper: float) -> bool:
    g = _ratio(w, w0)
    return bool(np.all((g >= lower) & (g <= upper)))
