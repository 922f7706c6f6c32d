"""Confidence sets for the ranks in a league table (STATISTICS.md section 4).

Two families:

* :func:`joint_rank_sets`: the deterministic joint intervals of Klein, Wright and Wieczorek (2020),
  Šidák or Bonferroni. Closed form, conservative, the recommended default.
* :func:`marginal_rank_sets` and :func:`simultaneous_rank_sets`: the step-down max-t procedure of
  Mogstad, Romano, Shaikh and Wilhelm (2024) with a parametric bootstrap (the R package ``csranks``),
  or its deterministic Bonferroni–Holm variant. Tighter, with a fixed seed.

Conventions shared by every function here:

* rank 1 is the best unit: the largest estimate when ``higher_is_better`` (the default), the smallest
  otherwise;
* the observed rank of unit j is 1 + the number of units with a strictly better estimate, so tied
  units share the smallest rank;
* a rank set is the integer interval ``[lower, upper]``, 1-based and inside ``[1, p]``;
* separation is strict: two units are ordered only when the evidence says one is *strictly* better.
  Intervals that merely touch do not separate, and a pair whose difference is known without error
  (both standard errors 0, or perfectly correlated units) is separated exactly when the estimates
  differ and never when they are equal.

Pure numpy and scipy: no I/O, no database, no web framework.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

__all__ = [
    "RankSets",
    "joint_rank_sets",
    "marginal_rank_sets",
    "simultaneous_rank_sets",
    "tau_best",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

JOINT_METHODS = ("sidak", "bonferroni")
STEPDOWN_METHODS = ("bootstrap", "holm")
DEFAULT_SEED = 20240101

# Relative slack on the pruning bounds of the independent-units engine: a candidate is skipped only when
# its bound is below the running maximum by more than rounding error could explain.
_BOUND_SLACK = 1e-9
# Pair variances at or below this fraction of (Σ_jj + Σ_kk) are treated as exactly 0 (rounding noise).
_ZERO_VARIANCE = 1e-12
# Number of float64 elements in one temporary array of the dense engine (~16 MB).
_DENSE_BUDGET = 1 << 21
# Number of (draw, unit) entries handled at once by the independent-units engine.
_SCAN_ENTRIES = 1 << 16
# Candidates per direction in the first block, shared by all units of a draw (independent units).
_FIRST_WIDTH = 8
# Units per draw whose potentials are sorted first when taking the maximum over the whole table.
_TABLE_TOP = 32


@dataclass(frozen=True, eq=False)
class RankSets:
    """Confidence sets for the ranks of p units.

    Attributes
    ----------
    lower, upper : ndarray of int64, shape (p,)
        Bounds of the rank confidence set ``{lower, ..., upper}`` of each unit; rank 1 is the best unit.
    rank : ndarray of int64, shape (p,)
        Observed rank: 1 + the number of units with a strictly better estimate (ties share the
        smallest rank).
    method : str
        ``"sidak"``, ``"bonferroni"``, ``"bootstrap"`` or ``"holm"``.
    alpha : float
        1 − nominal coverage.
    simultaneous : bool
        True when the sets cover all true ranks jointly with probability ≥ 1 − alpha (approximately,
        for the bootstrap); False for marginal sets (each set covers its own unit's rank).
    stepdown : bool
        True when the step-down procedure was iterated; False for a single step (and for the joint
        intervals, which have no steps).
    higher_is_better : bool
        Direction of the ranking.
    seed : int or None
        Seed of ``numpy.random.default_rng`` for the bootstrap draws; None for deterministic methods.
    draws : int or None
        Number of bootstrap draws; None for deterministic methods.
    critical : ndarray of float64, shape (p,)
        The critical value behind each unit's set. For the joint intervals, the multiplier z* of the
        intervals ``θ̂ ± z* SE`` (the same for every unit). For the step-down methods, the critical value
        ĉ of the last round for that unit's hypotheses: every pair that was tested is separated exactly
        when ``(θ̂_j − θ̂_k)/σ_jk > ĉ``. NaN when nothing was tested (p < 2, or only pairs known without
        error).
    rounds : int
        Number of rounds in which a critical value was computed (1 for the joint intervals and for a
        single step); for marginal sets, the largest over units. 0 when nothing was tested.
    """

    lower: IntArray
    upper: IntArray
    rank: IntArray
    method: str
    alpha: float
    simultaneous: bool
    stepdown: bool
    higher_is_better: bool
    seed: int | None
    draws: int | None
    critical: FloatArray
    rounds: int

    def __post_init__(self) -> None:
        for name in ("lower", "upper", "rank", "critical"):
            getattr(self, name).setflags(write=False)

    @property
    def width(self) -> IntArray:
        """Number of ranks in each set, ``upper − lower + 1``."""
        return self.upper - self.lower + 1

    def __len__(self) -> int:
        return int(self.rank.size)


# --------------------------------------------------------------------------------------------------
# Validation and shared helpers
# --------------------------------------------------------------------------------------------------


def _check_method(method: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(method, str) or method not in allowed:
        raise ValueError(f"method must be one of {', '.join(repr(m) for m in allowed)}; got {method!r}")
    return method


def _check_alpha(alpha: float) -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}")
    return alpha


def _check_estimates(estimates: npt.ArrayLike) -> FloatArray:
    x = np.asarray(estimates, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"estimates must be one-dimensional; got shape {x.shape}")
    bad = np.flatnonzero(~np.isfinite(x))
    if bad.size:
        raise ValueError(f"estimates[{bad[0]}] is not finite ({x[bad[0]]!r})")
    return x


def _check_se(se: npt.ArrayLike, p: int) -> FloatArray:
    s = np.asarray(se, dtype=np.float64)
    if s.shape != (p,):
        raise ValueError(f"se must have shape ({p},) like estimates; got {s.shape}")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise ValueError(f"se[{bad[0]}] is not finite ({s[bad[0]]!r})")
    bad = np.flatnonzero(s < 0)
    if bad.size:
        raise ValueError(f"se[{bad[0]}] is negative ({s[bad[0]]!r}); a standard error must be ≥ 0")
    return s


def _check_cov(cov: npt.ArrayLike | None, p: int) -> FloatArray:
    c = np.asarray(cov, dtype=np.float64)
    if c.shape != (p, p):
        raise ValueError(f"cov must have shape ({p}, {p}); got {c.shape}")
    bad = np.argwhere(~np.isfinite(c))
    if bad.size:
        j, k = bad[0]
        raise ValueError(f"cov[{j}, {k}] is not finite ({c[j, k]!r})")
    d = np.diag(c)
    bad1 = np.flatnonzero(d < 0)
    if bad1.size:
        raise ValueError(f"cov[{bad1[0]}, {bad1[0]}] is a negative variance ({d[bad1[0]]!r})")
    scale = float(d.max(initial=0.0))
    asym = np.abs(c - c.T)
    if np.any(asym > 1e-10 * scale):
        j, k = np.unravel_index(int(np.argmax(asym)), asym.shape)
        raise ValueError(f"cov is not symmetric: cov[{j}, {k}] != cov[{k}, {j}]")
    c = (c + c.T) / 2.0
    if p and np.any(c - np.diag(d)):
        try:
            np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            w = np.linalg.eigvalsh(c)
            if w[0] < -1e-10 * max(float(w[-1]), np.finfo(np.float64).tiny):
                raise ValueError(f"cov is not positive semi-definite (smallest eigenvalue {w[0]:.3g})") from None
    return np.asarray(c, dtype=np.float64)


def _oriented(x: FloatArray, higher_is_better: bool) -> FloatArray:
    """Estimates oriented so that larger is better."""
    return x if higher_is_better else -x


def _observed_rank(y: FloatArray) -> IntArray:
    """1 + number of strictly larger values (ties share the smallest rank)."""
    ys = np.sort(y)
    n_larger = y.size - np.searchsorted(ys, y, side="right")
    return (1 + n_larger).astype(np.int64)


# --------------------------------------------------------------------------------------------------
# Klein, Wright & Wieczorek (2020)
# --------------------------------------------------------------------------------------------------


def joint_rank_sets(
    estimates: npt.ArrayLike,
    se: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    method: str = "sidak",
    higher_is_better: bool = True,
) -> RankSets:
    """Joint rank confidence sets from simultaneous intervals (Klein, Wright & Wieczorek 2020).

    Parameters
    ----------
    estimates : array_like, shape (p,)
        Point estimates θ̂_k, finite.
    se : array_like, shape (p,)
        Standard errors σ_k ≥ 0 of independent estimates. A standard error of exactly 0 (a share of
        100 % with a Wald-type variance) gives the degenerate interval ``[θ̂_k, θ̂_k]``.
    alpha : float, default 0.05
        1 − joint coverage, in (0, 1).
    method : {"sidak", "bonferroni"}, default "sidak"
        Multiplier of the joint intervals: Šidák z* = Φ⁻¹(1 − (1 − (1 − α)^{1/p})/2), exact for
        independent normal estimates; Bonferroni z* = Φ⁻¹(1 − α/(2p)), valid under any dependence and
        slightly wider.
    higher_is_better : bool, default True
        Rank 1 goes to the largest estimate (True) or to the smallest (False).

    Returns
    -------
    RankSets
        ``simultaneous=True``, ``seed=None``, ``draws=None``, ``critical`` = z* for every unit.

    Raises
    ------
    ValueError
        On a non-finite estimate or standard error, a negative standard error (the message names the
        index), mismatched shapes, alpha outside (0, 1) or an unknown method.

    Notes
    -----
    With intervals ``L_k = θ̂_k − z* σ_k`` and ``U_k = θ̂_k + z* σ_k`` (computed exactly so), in the
    orientation where larger is better:

    * j is *surely better* than k when ``L_j > U_k``;
    * j is *surely worse* than k when ``U_j < L_k``;
    * rank set of k: ``{1 + #surely better, ..., p − #surely worse}``.

    The inequalities are strict: intervals that touch (``L_j == U_k``) do not separate the units.
    STATISTICS.md 4.2 writes the counts with ``≤``/``≥``; with ties that rule can produce empty sets
    (two units with SE 0 and equal estimates would each be "surely below" the other). The strict rule
    keeps every set non-empty, always contains the observed rank, and matches the strict rejection rule
    of the step-down methods. Touching has probability 0 for continuous estimates, so coverage is
    unchanged: if every interval covers its θ_k, every unit counted as surely better is strictly better,
    so the product of the sets covers the true ranking with probability ≥ 1 − α (Šidák: exactly
    1 − α for the intervals under independence; Bonferroni: at least 1 − α).

    The counts use sorting (``numpy.searchsorted``), O(p log p).

    References
    ----------
    Klein, M., Wright, T. and Wieczorek, J. (2020). A joint confidence region for an overall ranking
    of populations. *Journal of the Royal Statistical Society C* 69(3), 589–606.

    Šidák, Z. (1967). Rectangular confidence regions for the means of multivariate normal
    distributions. *Journal of the American Statistical Association* 62, 626–633.
    """
    method = _check_method(method, JOINT_METHODS)
    alpha = _check_alpha(alpha)
    x = _check_estimates(estimates)
    s = _check_se(se, x.size)
    p = x.size
    y = _oriented(x, higher_is_better)
    z = _joint_multiplier(alpha, max(p, 1), method)
    lo = y - z * s
    hi = y + z * s
    lo_sorted = np.sort(lo)
    hi_sorted = np.sort(hi)
    surely_better = p - np.searchsorted(lo_sorted, hi, side="right")  # #{j : L_j > U_k}
    surely_worse = np.searchsorted(hi_sorted, lo, side="left")  # #{j : U_j < L_k}
    return RankSets(
        lower=(1 + surely_better).astype(np.int64),
        upper=(p - surely_worse).astype(np.int64),
        rank=_observed_rank(y),
        method=method,
        alpha=alpha,
        simultaneous=True,
        stepdown=False,
        higher_is_better=higher_is_better,
        seed=None,
        draws=None,
        critical=np.full(p, z),
        rounds=1 if p > 1 else 0,
    )


def _joint_multiplier(alpha: float, p: int, method: str) -> float:
    if method == "sidak":
        gamma = -np.expm1(np.log1p(-alpha) / p)  # 1 − (1 − α)^{1/p}, without cancellation
        return float(stats.norm.isf(gamma / 2.0))
    return float(stats.norm.isf(alpha / (2.0 * p)))


# --------------------------------------------------------------------------------------------------
# Mogstad, Romano, Shaikh & Wilhelm (2024): pairs, draws and the two max-t engines
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Draws:
    """Bootstrap draws Z ~ N(0, Σ̂) and what the engines need to take maxima over pairs.

    ``s``, ``u``, ``asc``, ``us`` and the potentials are set only for independent units, which use the
    pruning engine; with a full covariance only ``z`` and ``sigma_safe`` are used (brute force).
    """

    z: FloatArray  # (R, p)
    sigma_safe: FloatArray  # (p, p): σ_jk, with 1 where σ_jk = 0 (those pairs are never active)
    s: FloatArray | None = None  # (p,) standard errors
    u: FloatArray | None = None  # (R, p) Z/s, 0 where s = 0
    asc: npt.NDArray[np.intp] | None = None  # (R, p) argsort of u in each draw, ascending
    us: FloatArray | None = None  # (R, p) u sorted ascending in each draw
    pot_pos: FloatArray | None = None  # (R, p) bound of (Z_j − Z_k)/σ_jk over all k
    pot_neg: FloatArray | None = None  # (R, p) bound of (Z_k − Z_j)/σ_jk over all k


def _draw_normals(seed: int, draws: int, p: int) -> FloatArray:
    return np.random.default_rng(seed).standard_normal((draws, p))


def _independent_draws(s: FloatArray, sigma: FloatArray, seed: int, draws: int) -> _Draws:
    e = _draw_normals(seed, draws, s.size)
    z = e * s
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(s > 0, z / np.where(s > 0, s, 1.0), 0.0)
    asc = np.argsort(u, axis=1, kind="stable")
    us = np.take_along_axis(u, asc, axis=1)
    smin, smax = float(s.min()), float(s.max())
    pot_pos = _pair_bound(np.maximum(u, 0.0), s, np.maximum(-us[:, :1], 0.0), smin, smax)
    pot_neg = _pair_bound(np.maximum(-u, 0.0), s, np.maximum(us[:, -1:], 0.0), smin, smax)
    return _Draws(
        z=z,
        sigma_safe=np.where(sigma > 0, sigma, 1.0),
        s=s,
        u=u,
        asc=asc,
        us=us,
        pot_pos=pot_pos,
        pot_neg=pot_neg,
    )


def _correlated_draws(cov: FloatArray, sigma: FloatArray, seed: int, draws: int) -> _Draws:
    e = _draw_normals(seed, draws, cov.shape[0])
    z = e @ _cov_factor(cov).T
    return _Draws(z=z, sigma_safe=np.where(sigma > 0, sigma, 1.0))


def _cov_factor(cov: FloatArray) -> FloatArray:
    """F with F Fᵀ = cov: Cholesky when positive definite, else from the eigendecomposition.

    ``cov`` has passed `_check_cov`, so it is positive semi-definite up to rounding.
    """
    try:
        return np.asarray(np.linalg.cholesky(cov), dtype=np.float64)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return np.asarray(v * np.sqrt(np.clip(w, 0.0, None)), dtype=np.float64)


def _pair_sd_from_se(s: FloatArray) -> FloatArray:
    s2 = s * s
    return np.asarray(np.sqrt(s2[:, None] + s2[None, :]), dtype=np.float64)


def _pair_sd_from_cov(cov: FloatArray) -> FloatArray:
    d = np.diag(cov)
    total = d[:, None] + d[None, :]
    var = total - 2.0 * cov
    var[var <= _ZERO_VARIANCE * total] = 0.0  # rounding noise, and the tiny negatives it can leave
    return np.asarray(np.sqrt(var), dtype=np.float64)


def _pair_bound(a: FloatArray, c: FloatArray, b: FloatArray, smin: float, smax: float) -> FloatArray:
    """Upper bound of (c·a + s·b)/√(c² + s²) over s in [smin, smax], for a, b, c ≥ 0.

    With a = u_j⁺, c = s_j and b ≥ u_k⁻ this bounds (Z_j − Z_k)/σ_jk = (s_j u_j − s_k u_k)/√(s_j² + s_k²)
    (Cauchy–Schwarz when the maximiser s* = b c/a lies in the range, else its nearer end).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        s_star = np.where(a > 0, b * c / np.where(a > 0, a, 1.0), np.inf)
    s_cl = np.clip(s_star, smin, smax)
    return np.asarray((c * a + s_cl * b) / np.sqrt(c * c + s_cl * s_cl), dtype=np.float64)


def _scan_entries(
    dr: _Draws,
    apos: BoolArray,
    aneg: BoolArray,
    rr: npt.NDArray[np.intp],
    jj: npt.NDArray[np.intp],
    best: FloatArray,
    live_p: npt.NDArray[np.intp],
    live_n: npt.NDArray[np.intp],
    t: int,
    shared: FloatArray | None,
) -> None:
    """Finish the maxima over k of the active pair statistics of unit j in draw r, entries (rr[i], jj[i]).

    The statistic of k for j is (Z_j − Z_k)/σ_jk if ``apos[j, k]`` and (Z_k − Z_j)/σ_jk if ``aneg[j, k]``.
    Candidates are visited in blocks of doubling size, in order of u_k ascending for the first kind
    ("pos", entries ``live_p``) and descending for the second ("neg", ``live_n``), from position ``t``
    on; an entry stops as soon as the bound of every candidate not yet visited (`_pair_bound`) is below
    its running maximum ``best`` (updated in place). With ``shared`` (one running maximum per draw,
    updated in place instead of ``best``) only the maximum over the entries of each draw is exact, which
    is all the simultaneous sets need.
    """
    assert dr.s is not None and dr.u is not None and dr.asc is not None and dr.us is not None
    z, asc, us, s = dr.z, dr.asc, dr.us, dr.s
    s2 = s * s
    p = z.shape[1]
    smin, smax = float(s.min()), float(s.max())
    zj = z[rr, jj]
    uj = dr.u[rr, jj]
    a_pos = np.maximum(uj, 0.0)
    a_neg = np.maximum(-uj, 0.0)
    cj = s[jj]
    width = 8
    while True:
        if t >= p:
            break
        # Close the entries whose remaining candidates cannot beat the running maximum.
        if live_p.size:
            r = rr[live_p]
            bound = _pair_bound(a_pos[live_p], cj[live_p], np.maximum(-us[r, t], 0.0), smin, smax)
            level = best[live_p] if shared is None else shared[r]
            live_p = live_p[bound * (1.0 + _BOUND_SLACK) >= level]
        if live_n.size:
            r = rr[live_n]
            bound = _pair_bound(a_neg[live_n], cj[live_n], np.maximum(us[r, p - 1 - t], 0.0), smin, smax)
            level = best[live_n] if shared is None else shared[r]
            live_n = live_n[bound * (1.0 + _BOUND_SLACK) >= level]
        if not (live_p.size or live_n.size):
            break
        tn = min(p, t + width)
        for positive, live in ((True, live_p), (False, live_n)):
            if not live.size:
                continue
            r, j = rr[live], jj[live]
            cols = asc[r, t:tn] if positive else asc[r, p - tn : p - t]
            zk = z[r[:, None], cols]
            diff = zj[live][:, None] - zk if positive else zk - zj[live][:, None]
            with np.errstate(divide="ignore", invalid="ignore"):
                v = diff / np.sqrt(s2[j][:, None] + s2[cols])  # = σ_jk bit for bit, without a p × p gather
            mask = (apos if positive else aneg)[j[:, None], cols]
            m = np.max(v, axis=1, where=mask, initial=-np.inf)
            if shared is None:
                best[live] = np.maximum(best[live], m)
            else:
                np.maximum.at(shared, r, m)
        t, width = tn, 2 * width


def _first_block(
    dr: _Draws, apos: BoolArray, aneg: BoolArray, d0: int, d1: int, rows: npt.NDArray[np.intp], width: int
) -> FloatArray:
    """Max over the first ``width`` candidates of each direction for every (draw, unit) in a chunk.

    In the first block the candidates depend on the draw only (the units with the most extreme u), so
    the statistics are computed one candidate position at a time on contiguous (unit × draw) planes,
    and σ_jk = √(s_j² + s_k²) is computed on the fly (the same arithmetic as the stored matrix, hence
    the same bits) instead of gathered. Returns an array of shape (draws in the chunk, units).
    """
    assert dr.s is not None and dr.asc is not None
    p = dr.z.shape[1]
    zc = dr.z[d0:d1]
    zj = np.ascontiguousarray(zc[:, rows].T)  # (n, B)
    s2 = dr.s * dr.s
    s2j = s2[rows][:, None]
    best = np.full(zj.shape, -np.inf)
    v = np.empty_like(zj)
    den = np.empty_like(zj)
    full_rows = rows.size == p and bool(np.all(rows == np.arange(p)))
    for positive, active in ((True, apos), (False, aneg)):
        cols = dr.asc[d0:d1, :width] if positive else dr.asc[d0:d1, p - width :]
        zk = np.take_along_axis(zc, cols, axis=1)
        s2k = s2[cols]
        act = active if full_rows else active[rows]
        for i in range(cols.shape[1]):
            if positive:
                np.subtract(zj, zk[:, i], out=v)
            else:
                np.subtract(zk[:, i], zj, out=v)
            np.add(s2j, s2k[:, i], out=den)
            np.sqrt(den, out=den)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(v, den, out=v)
            np.maximum(best, v, out=best, where=act[:, cols[:, i]])
    return np.ascontiguousarray(best.T)


def _any_rows(a: BoolArray) -> BoolArray:
    return np.asarray(a.any(axis=1), dtype=np.bool_)


def _chunks(n: int, step: int) -> list[tuple[int, int]]:
    return [(d0, min(n, d0 + step)) for d0 in range(0, n, step)]


def _run_chunks(work: Callable[[int, int], None], n_draws: int, step: int, threads: int) -> None:
    """Run ``work(d0, d1)`` over chunks of draws, on ``threads`` threads (numpy releases the GIL in its loops).

    Every chunk writes only its own draws, so the result does not depend on the scheduling.
    """
    chunks = _chunks(n_draws, step)
    workers = min(threads, len(chunks))
    if workers <= 1:
        for d0, d1 in chunks:
            work(d0, d1)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work, d0, d1) for d0, d1 in chunks]:
            future.result()


def _scan_unit_maxima(
    dr: _Draws, apos: BoolArray, aneg: BoolArray, rows: npt.NDArray[np.intp], threads: int = 1
) -> FloatArray:
    """M[r, i] = max over k of the active statistics of unit rows[i] in draw r (independent units)."""
    n_draws, p = dr.z.shape
    has_pos, has_neg = _any_rows(apos), _any_rows(aneg)
    out = np.empty((n_draws, rows.size))
    width = min(p, _FIRST_WIDTH)

    def work(d0: int, d1: int) -> None:
        best = _first_block(dr, apos, aneg, d0, d1, rows, width).ravel()
        rr = np.repeat(np.arange(d0, d1), rows.size)
        jj = np.tile(rows, d1 - d0)
        live_p = np.flatnonzero(has_pos[jj])
        live_n = np.flatnonzero(has_neg[jj])
        _scan_entries(dr, apos, aneg, rr, jj, best, live_p, live_n, width, None)
        out[d0:d1] = best.reshape(d1 - d0, rows.size)

    _run_chunks(work, n_draws, max(1, _SCAN_ENTRIES // max(rows.size, 1)), threads)
    return out


def _scan_table_maxima(dr: _Draws, active: BoolArray, threads: int = 1) -> FloatArray:
    """G[r] = max over active ordered pairs (j, k) of (Z_j − Z_k)/σ_jk (independent units).

    Units are visited per draw in decreasing order of a bound on their best pair ("potential"); a draw
    stops when the next potential is below its running maximum, since every pair is covered by the
    rows of both of its units.
    """
    assert dr.pot_pos is not None and dr.pot_neg is not None
    pot_pos, pot_neg = dr.pot_pos, dr.pot_neg
    apos, aneg = active, active.T
    has_pos, has_neg = _any_rows(active), _any_rows(active.T)
    n_draws, p = dr.z.shape
    shared = np.full(n_draws, -np.inf)
    top = min(p, _TABLE_TOP)

    def work(d0: int, d1: int) -> None:
        pot = np.maximum(
            np.where(has_pos, pot_pos[d0:d1], -np.inf),
            np.where(has_neg, pot_neg[d0:d1], -np.inf),
        )
        # Usually a few units per draw settle the maximum: sort only the `top` largest potentials, and
        # sort the rest only for the draws that are still open after those.
        order = np.argpartition(-pot, top - 1, axis=1)[:, :top] if top < p else np.arange(p)[None, :].repeat(d1 - d0, 0)
        order = np.take_along_axis(order, np.argsort(-np.take_along_axis(pot, order, 1), axis=1, kind="stable"), 1)
        draw_ids = np.arange(d0, d1)
        still_open = _visit_rows(
            dr, apos, aneg, has_pos, has_neg, draw_ids, order, np.take_along_axis(pot, order, 1), shared
        )
        if still_open.size and top < p:
            rest = pot[still_open - d0]
            np.put_along_axis(rest, order[still_open - d0], -np.inf, axis=1)
            order_rest = np.argsort(-rest, axis=1, kind="stable")
            pot_rest = np.take_along_axis(rest, order_rest, axis=1)
            _visit_rows(dr, apos, aneg, has_pos, has_neg, still_open, order_rest, pot_rest, shared)

    _run_chunks(work, n_draws, max(1, _SCAN_ENTRIES // p), threads)
    return shared


def _visit_rows(
    dr: _Draws,
    apos: BoolArray,
    aneg: BoolArray,
    has_pos: BoolArray,
    has_neg: BoolArray,
    draw_ids: npt.NDArray[np.intp],
    order: npt.NDArray[np.intp],
    pot_sorted: FloatArray,
    shared: FloatArray,
) -> npt.NDArray[np.intp]:
    """Visit the rows ``order[i]`` of draw ``draw_ids[i]`` by decreasing potential, in blocks of doubling size.

    Returns the draws whose listed rows were all visited while their next potential could still beat
    the running maximum (there is more to visit only if ``order`` did not list every row).
    """
    n_rows = order.shape[1]
    open_idx = np.arange(draw_ids.size)
    q, width = 0, 4
    while open_idx.size and q < n_rows:
        nxt = pot_sorted[open_idx, q]
        open_idx = open_idx[(nxt > -np.inf) & (nxt * (1.0 + _BOUND_SLACK) >= shared[draw_ids[open_idx]])]
        if not open_idx.size:
            break
        qn = min(n_rows, q + width)
        block = order[open_idx, q:qn]
        keep = pot_sorted[open_idx, q:qn] > -np.inf
        rr = np.repeat(draw_ids[open_idx], qn - q).reshape(block.shape)[keep]
        jj = block[keep]
        live_p = np.flatnonzero(has_pos[jj])
        live_n = np.flatnonzero(has_neg[jj])
        _scan_entries(dr, apos, aneg, rr, jj, np.empty(0), live_p, live_n, 0, shared)
        q, width = qn, 2 * width
    return np.asarray(draw_ids[open_idx], dtype=np.intp)


def _dense_unit_maxima(
    dr: _Draws, apos: BoolArray, aneg: BoolArray, rows: npt.NDArray[np.intp], table: bool, threads: int = 1
) -> FloatArray:
    """Brute-force maxima over all candidates, in blocks of draws × units × p (any covariance).

    Returns M (R, len(rows)) as `_scan_unit_maxima`, or with ``table`` the maximum over rows (R,).
    """
    z, sig = dr.z, dr.sigma_safe
    n_draws, p = z.shape
    n_rows = rows.size
    step = max(1, min(n_draws, _DENSE_BUDGET // (p * min(n_rows, 64))))
    row_step = max(1, _DENSE_BUDGET // (step * p))
    out = np.full((n_draws, n_rows), -np.inf)

    def work(d0: int, d1: int) -> None:
        zr = z[d0:d1]
        for i0 in range(0, n_rows, row_step):
            jb = rows[i0 : i0 + row_step]
            v = zr[:, jb, None] - zr[:, None, :]
            v /= sig[jb]
            m_pos = np.max(v, axis=2, where=apos[jb], initial=-np.inf)
            m_neg = np.min(v, axis=2, where=aneg[jb], initial=np.inf)  # max of (Z_k − Z_j)/σ_jk, negated
            out[d0:d1, i0 : i0 + row_step] = np.maximum(m_pos, -m_neg)

    _run_chunks(work, n_draws, step, threads)
    return out.max(axis=1) if table else out


def _bootstrap_quantile(maxima: FloatArray, alpha: float) -> FloatArray:
    """(1 − α) quantile over draws (axis 0), linear interpolation (R type 7, as csranks), floored at 0."""
    q = np.quantile(maxima, 1.0 - alpha, axis=0, method="linear")
    return np.asarray(np.maximum(q, 0.0), dtype=np.float64)


# --------------------------------------------------------------------------------------------------
# Step-down drivers
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Pairs:
    t: FloatArray  # (p, p) T_jk = (y_j − y_k)/σ_jk, 0 where σ_jk = 0
    active0: BoolArray  # (p, p) ordered pairs tested (σ_jk > 0, j ≠ k)
    known: BoolArray  # (p, p) σ_jk = 0 and y_j > y_k: j is better than k without error


def _pairs(y: FloatArray, sigma: FloatArray) -> _Pairs:
    p = y.size
    active0 = sigma > 0
    np.fill_diagonal(active0, False)
    diff = y[:, None] - y[None, :]
    t = np.where(active0, diff / np.where(active0, sigma, 1.0), 0.0)
    known = ~(sigma > 0) & (diff > 0)
    known[np.arange(p), np.arange(p)] = False
    return _Pairs(t=t, active0=active0, known=known)


SimCritical = Callable[[BoolArray], float]
MargCritical = Callable[[BoolArray, BoolArray, npt.NDArray[np.intp]], FloatArray]


def _stepdown_table(pairs: _Pairs, critical: SimCritical, stepdown: bool) -> tuple[BoolArray, float, int]:
    """Simultaneous step-down. Returns (rejected (j, k) = j surely better than k, last ĉ, rounds)."""
    active = pairs.active0.copy()
    rejected = pairs.known.copy()
    c, rounds = np.nan, 0
    while active.any():
        c_new = critical(active)
        if not np.isfinite(c_new):  # nothing left to test (Holm with m = 0)
            break
        c = c_new
        rounds += 1
        new = active & (pairs.t > c)
        if not new.any():
            break
        rejected |= new
        active &= ~new
        if not stepdown:
            break
    return rejected, float(c), rounds


def _stepdown_units(
    pairs: _Pairs, critical: MargCritical, stepdown: bool
) -> tuple[BoolArray, BoolArray, FloatArray, int]:
    """Marginal step-down, one procedure per unit, run in lockstep.

    Row j of ``apos``/``aneg`` is unit j's current set: (j, k) and (k, j) respectively. Returns
    (rej_pos, rej_neg, last ĉ per unit, rounds) with ``rej_pos[j, k]``: j surely better than k, and
    ``rej_neg[j, k]``: k surely better than j, in unit j's procedure.
    """
    p = pairs.t.shape[0]
    apos = pairs.active0.copy()
    aneg = pairs.active0.T.copy()
    rej_pos = pairs.known.copy()
    rej_neg = pairs.known.T.copy()
    crit = np.full(p, np.nan)
    running = np.flatnonzero(apos.any(axis=1) | aneg.any(axis=1))
    rounds = 0
    while running.size:
        c = critical(apos, aneg, running)
        testing = np.isfinite(c)  # Holm with m_j = 0: nothing left to test for unit j
        running, c = running[testing], c[testing]
        if not running.size:
            break
        crit[running] = c
        rounds += 1
        t_rows = pairs.t[running]
        new_pos = apos[running] & (t_rows > c[:, None])
        new_neg = aneg[running] & (-t_rows > c[:, None])
        rej_pos[running] |= new_pos
        rej_neg[running] |= new_neg
        apos[running] &= ~new_pos
        aneg[running] &= ~new_neg
        if not stepdown:
            break
        running = running[new_pos.any(axis=1) | new_neg.any(axis=1)]
    return rej_pos, rej_neg, crit, rounds


def _holm_critical(m: npt.ArrayLike, alpha: float) -> FloatArray:
    m_arr = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.asarray(np.where(m_arr > 0, stats.norm.isf(alpha / (2.0 * np.maximum(m_arr, 1.0))), np.inf))


# --------------------------------------------------------------------------------------------------
# Public step-down functions
# --------------------------------------------------------------------------------------------------


def marginal_rank_sets(
    estimates: npt.ArrayLike,
    se: npt.ArrayLike | None = None,
    *,
    cov: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    draws: int = 1000,
    seed: int | None = DEFAULT_SEED,
    method: str = "bootstrap",
    stepdown: bool = True,
    higher_is_better: bool = True,
    threads: int = 1,
) -> RankSets:
    """Marginal rank confidence sets: each covers its own unit's rank (Mogstad et al. 2024).

    Parameters
    ----------
    estimates : array_like, shape (p,)
        Point estimates θ̂, finite.
    se : array_like, shape (p,), optional
        Standard errors (≥ 0) of independent estimates. Give exactly one of ``se`` and ``cov``.
    cov : array_like, shape (p, p), optional
        Full covariance matrix Σ̂ of the estimates (units sharing PSUs or calibration). Symmetric,
        positive semi-definite. A diagonal matrix is treated exactly as ``se = sqrt(diag(cov))``.
    alpha : float, default 0.05
        1 − coverage of each set, in (0, 1).
    draws : int, default 1000
        Number R of bootstrap draws (ignored by ``method="holm"``). Use several thousand for
        publication: bounds can move by one rank between seeds.
    seed : int or None, default 20240101
        Seed for ``numpy.random.default_rng``. None draws a fresh seed from OS entropy; it is recorded in
        the result either way, so every table can be reproduced.
    method : {"bootstrap", "holm"}, default "bootstrap"
        ``"bootstrap"``: parametric bootstrap max-t critical values. ``"holm"``: the deterministic
        Bonferroni–Holm variant (no draws).
    stepdown : bool, default True
        Iterate the step-down until a round rejects nothing; False stops after the first round
        (single-step sets, never narrower).
    higher_is_better : bool, default True
        Rank 1 goes to the largest estimate (True) or to the smallest (False).
    threads : int, default 1
        Threads for the bootstrap maxima (chunks of draws). The result is identical for any value; more
        than 1 helps only for large tables on otherwise idle cores.

    Returns
    -------
    RankSets
        ``simultaneous=False``. ``critical[j]`` is unit j's last critical value.

    Raises
    ------
    ValueError
        On non-finite estimates, se or cov entries, negative standard errors or variances (naming the
        index), a covariance that is not symmetric or not positive semi-definite, giving both or neither
        of ``se`` and ``cov``, alpha outside (0, 1), draws or threads < 1, or an unknown method.

    Notes
    -----
    For unit j the hypotheses are the ordered pairs of STATISTICS.md 4.3 involving j: "θ_j ≤ θ_k" and
    "θ_k ≤ θ_j" for every k ≠ j. With T_jk = (θ̂_j − θ̂_k)/σ_jk, σ_jk = √(Σ̂_jj + Σ̂_kk − 2Σ̂_jk), and the
    current set I_j:

    * ``"bootstrap"``: ĉ_j = (1 − α) quantile over draws of max over (a, b) in I_j of (Z_a − Z_b)/σ_ab,
      Z ~ N(0, Σ̂) (in the first round, max over k of |Z_j − Z_k|/σ_jk);
    * ``"holm"``: ĉ_j = Φ⁻¹(1 − α/(2m_j)), m_j = number of k for which neither direction is rejected
      yet (p − 1 at the start).

    Reject (a, b) (conclude θ_a > θ_b) when T_ab > ĉ_j, remove it, recompute ĉ_j on the same draws and
    repeat until a round rejects nothing. Rank set: ``[1 + #{k : θ_k > θ_j concluded},
    p − #{k : θ_j > θ_k concluded}]``. All units use the same draws, as in ``csranks`` (which resets its
    seed per unit). See :func:`simultaneous_rank_sets` for the draws, the quantile and the zero-variance
    conventions, which are the same.

    References
    ----------
    Mogstad, M., Romano, J. P., Shaikh, A. M. and Wilhelm, D. (2024). Inference for ranks with
    applications to mobility across neighbourhoods and academic achievement across countries.
    *Review of Economic Studies* 91(1), 476–518. R package ``csranks`` (``csranks(simul = FALSE)``).

    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal of
    Statistics* 6, 65–70.
    """
    return _stepdown_rank_sets(
        estimates,
        se,
        cov,
        alpha=alpha,
        draws=draws,
        seed=seed,
        method=method,
        stepdown=stepdown,
        higher_is_better=higher_is_better,
        simultaneous=False,
        threads=threads,
    )


def simultaneous_rank_sets(
    estimates: npt.ArrayLike,
    se: npt.ArrayLike | None = None,
    *,
    cov: npt.ArrayLike | None = None,
    alpha: float = 0.05,
    draws: int = 1000,
    seed: int | None = DEFAULT_SEED,
    method: str = "bootstrap",
    stepdown: bool = True,
    higher_is_better: bool = True,
    threads: int = 1,
) -> RankSets:
    """Simultaneous rank confidence sets for a whole league table (Mogstad et al. 2024).

    Parameters
    ----------
    estimates : array_like, shape (p,)
        Point estimates θ̂, finite.
    se : array_like, shape (p,), optional
        Standard errors (≥ 0) of independent estimates. Give exactly one of ``se`` and ``cov``.
    cov : array_like, shape (p, p), optional
        Full covariance matrix Σ̂ of the estimates. Symmetric, positive semi-definite. A diagonal matrix
        is treated exactly as ``se = sqrt(diag(cov))``.
    alpha : float, default 0.05
        1 − joint coverage, in (0, 1).
    draws : int, default 1000
        Number R of bootstrap draws (ignored by ``method="holm"``).
    seed : int or None, default 20240101
        Seed for ``numpy.random.default_rng``; None draws a fresh one, recorded in the result.
    method : {"bootstrap", "holm"}, default "bootstrap"
        Bootstrap max-t or the deterministic Bonferroni–Holm variant.
    stepdown : bool, default True
        Iterate until a round rejects nothing; False gives the single-step sets.
    higher_is_better : bool, default True
        Rank 1 goes to the largest estimate (True) or to the smallest (False).
    threads : int, default 1
        Threads for the bootstrap maxima, as in :func:`marginal_rank_sets`.

    Returns
    -------
    RankSets
        ``simultaneous=True``; ``critical`` holds the last round's ĉ for every unit.

    Raises
    ------
    ValueError
        As :func:`marginal_rank_sets`.

    Notes
    -----
    Hypotheses: all ordered pairs (j, k), j ≠ k, "θ_j ≤ θ_k" (STATISTICS.md 4.3). Round by round, with
    the current set I:

    * ``"bootstrap"``: ĉ(I) = (1 − α) quantile over r of max over (j, k) in I of (Z_j⁽ʳ⁾ − Z_k⁽ʳ⁾)/σ_jk.
      In the first round I holds both directions of every pair, so this is the quantile of the
      symmetric max |t|.
    * ``"holm"``: ĉ = Φ⁻¹(1 − α/(2m)), m = number of unordered pairs not yet separated
      (p(p − 1)/2 at the start).

    Reject (j, k) when T_jk > ĉ (strict), remove the rejected pairs and repeat on the same draws until a
    round rejects nothing (``stepdown=False``: one round). Since ĉ can only fall, every rejected pair
    also satisfies T_jk > final ĉ, and no untested one does. Rank set of j: ``[N⁻_j + 1, p − N⁺_j]``
    with N⁻_j = #{k : (k, j) rejected}, N⁺_j = #{k : (j, k) rejected}.

    Conventions (documented so that results can be reproduced elsewhere):

    * Draws: ``E = numpy.random.default_rng(seed).standard_normal((draws, p))``; independent units
      ``Z = E * se``; otherwise ``Z = E @ F.T`` with ``F = numpy.linalg.cholesky(cov)``, or, when cov is
      only semi-definite, ``F = V * sqrt(max(w, 0))`` from ``w, V = numpy.linalg.eigh(cov)``.
    * Quantile: ``numpy.quantile(..., method="linear")``, R's default type 7 used by ``csranks``. The
      bootstrap critical value is floored at 0, so a pair is never separated in both directions (this
      binds only with a handful of draws or alpha ≥ 0.5).
    * Pairs with σ_jk = 0 (both SEs 0, or perfectly correlated units; variances below 1e-12 of
      Σ̂_jj + Σ̂_kk count as 0) carry no sampling error: they are not tested and do not enter the
      maxima; the pair is separated when the estimates differ and never when they are equal. A single
      SE of 0 is an ordinary pair (σ_jk > 0).
    * ``csranks`` draws afresh in every step-down round; here every round reuses the same draws, as in
      STATISTICS.md 4.3, which makes the step-down monotone.

    Computation. For independent units the maxima are exact but avoid visiting all p² pairs: with
    u = Z/SE, (Z_j − Z_k)/σ_jk ≤ √(u_j⁺² + u_k⁻²) by Cauchy–Schwarz, sharpened using the range of the SEs;
    in each draw candidates are visited in order of u and a unit (or, for the whole table, a draw) stops
    as soon as the bound of what is left is below the running maximum. With a full covariance no such
    bound exists and the maxima are brute force, in blocks of about 2²¹ values. With ``threads > 1``
    chunks of draws run in parallel; results do not depend on the scheduling. Memory is about 60·draws·p bytes plus a
    few p × p matrices (about 120 MB for p = 1000 units and 1000 draws).

    References
    ----------
    Mogstad, M., Romano, J. P., Shaikh, A. M. and Wilhelm, D. (2024). Inference for ranks with
    applications to mobility across neighbourhoods and academic achievement across countries.
    *Review of Economic Studies* 91(1), 476–518. R package ``csranks`` (``csranks(simul = TRUE)``).

    Romano, J. P. and Wolf, M. (2005). Exact and approximate stepdown methods for multiple hypothesis
    testing. *Journal of the American Statistical Association* 100, 94–108.

    Holm, S. (1979). A simple sequentially rejective multiple test procedure. *Scandinavian Journal of
    Statistics* 6, 65–70.

    Hyndman, R. J. and Fan, Y. (1996). Sample quantiles in statistical packages. *The American
    Statistician* 50, 361–365.
    """
    return _stepdown_rank_sets(
        estimates,
        se,
        cov,
        alpha=alpha,
        draws=draws,
        seed=seed,
        method=method,
        stepdown=stepdown,
        higher_is_better=higher_is_better,
        simultaneous=True,
        threads=threads,
    )


def _stepdown_rank_sets(
    estimates: npt.ArrayLike,
    se: npt.ArrayLike | None,
    cov: npt.ArrayLike | None,
    *,
    alpha: float,
    draws: int,
    seed: int | None,
    method: str,
    stepdown: bool,
    higher_is_better: bool,
    simultaneous: bool,
    threads: int,
) -> RankSets:
    method = _check_method(method, STEPDOWN_METHODS)
    alpha = _check_alpha(alpha)
    x = _check_estimates(estimates)
    p = x.size
    if (se is None) == (cov is None):
        raise ValueError("give exactly one of se (independent units) and cov (full covariance)")
    s: FloatArray | None = None
    c: FloatArray | None = None
    if se is not None:
        s = _check_se(se, p)
    else:
        c = _check_cov(cov, p)
        if not np.any(c - np.diag(np.diag(c))):  # diagonal: independent units, the fast engine
            s, c = np.sqrt(np.diag(c)), None
    bootstrap = method == "bootstrap"
    if bootstrap:
        draws = _check_draws(draws)
        seed = _check_seed(seed)
    if isinstance(threads, bool) or not isinstance(threads, int | np.integer) or threads < 1:
        raise ValueError(f"threads must be a positive integer; got {threads!r}")

    y = _oriented(x, higher_is_better)
    lower = np.ones(p, dtype=np.int64)
    upper = np.full(p, p, dtype=np.int64)
    crit = np.full(p, np.nan)
    rounds = 0
    if p >= 2:
        if s is not None:
            sigma = _pair_sd_from_se(s)
        else:
            assert c is not None
            sigma = _pair_sd_from_cov(c)
        pairs = _pairs(y, sigma)
        if bootstrap and pairs.active0.any():
            assert seed is not None
            if s is not None:
                dr = _independent_draws(s, sigma, seed, draws)
            else:
                assert c is not None
                dr = _correlated_draws(c, sigma, seed, draws)
        if simultaneous:

            def table_critical(active: BoolArray) -> float:
                if not bootstrap:
                    return float(_holm_critical(np.count_nonzero(np.triu(active & active.T, 1)), alpha))
                g = _scan_table_maxima(dr, active, threads) if dr.s is not None else _table_dense(dr, active, threads)
                return float(_bootstrap_quantile(g, alpha))

            rej, c_last, rounds = _stepdown_table(pairs, table_critical, stepdown)
            lower += rej.sum(axis=0)
            upper -= rej.sum(axis=1)
            crit[:] = c_last
        else:

            def unit_critical(apos: BoolArray, aneg: BoolArray, rows: npt.NDArray[np.intp]) -> FloatArray:
                if not bootstrap:
                    return _holm_critical(np.count_nonzero(apos[rows] & aneg[rows], axis=1), alpha)
                if dr.s is not None:
                    m = _scan_unit_maxima(dr, apos, aneg, rows, threads)
                else:
                    m = _dense_unit_maxima(dr, apos, aneg, rows, table=False, threads=threads)
                return _bootstrap_quantile(m, alpha)

            rej_pos, rej_neg, crit, rounds = _stepdown_units(pairs, unit_critical, stepdown)
            lower += rej_neg.sum(axis=1)
            upper -= rej_pos.sum(axis=1)
    return RankSets(
        lower=lower,
        upper=upper,
        rank=_observed_rank(y),
        method=method,
        alpha=alpha,
        simultaneous=simultaneous,
        stepdown=stepdown,
        higher_is_better=higher_is_better,
        seed=seed if bootstrap else None,
        draws=draws if bootstrap else None,
        critical=crit,
        rounds=rounds,
    )


def _check_draws(draws: int) -> int:
    if isinstance(draws, bool) or not isinstance(draws, int | np.integer) or draws < 1:
        raise ValueError(f"draws must be a positive integer; got {draws!r}")
    return int(draws)


def _check_seed(seed: int | None) -> int:
    if seed is None:
        entropy = np.random.SeedSequence().entropy
        assert isinstance(entropy, int)
        return entropy
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None; got {seed!r}")
    return int(seed)


def _table_dense(dr: _Draws, active: BoolArray, threads: int) -> FloatArray:
    rows = np.flatnonzero(active.any(axis=1) | active.any(axis=0))
    return _dense_unit_maxima(dr, active, active.T, rows, table=True, threads=threads)


def tau_best(rank_sets: RankSets, tau: int) -> npt.NDArray[np.intp]:
    """Indices of the units that may be among the τ best: lower rank bound ≤ τ.

    Parameters
    ----------
    rank_sets : RankSets
        Simultaneous rank sets (joint or step-down).
    tau : int
        1 ≤ τ ≤ p.

    Returns
    -------
    ndarray of intp
        Indices, ascending. With probability ≥ 1 − α (approximately, for the bootstrap) they include
        every unit whose true rank is ≤ τ.

    Raises
    ------
    ValueError
        For marginal sets (no joint guarantee) or τ outside [1, p].

    Notes
    -----
    This is the projection of two-sided simultaneous sets, valid but slightly wider than ``csranks``'
    ``cstaubest``, which runs a one-sided procedure for the lower bounds only.

    References
    ----------
    Mogstad, M., Romano, J. P., Shaikh, A. M. and Wilhelm, D. (2024), *Review of Economic Studies* 91(1),
    476–518, section on the τ-best.
    """
    if not rank_sets.simultaneous:
        raise ValueError("tau_best needs simultaneous rank sets; marginal sets give no joint guarantee")
    p = len(rank_sets)
    if isinstance(tau, bool) or not isinstance(tau, int | np.integer) or not 1 <= tau <= max(p, 1):
        raise ValueError(f"tau must be an integer in [1, {p}]; got {tau!r}")
    return np.flatnonzero(rank_sets.lower <= tau)
