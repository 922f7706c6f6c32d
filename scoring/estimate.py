"""Ratio estimators by domain, with Taylor-linearised variances, and linear combinations of them.

Every share the platform reports is a ratio R = Σ w·num / Σ w·den: a criterion index (num = satisfied,
den = valid answer), a mean score (num = the level), a pooled index (num and den summed over criteria).
Element and overall indices are linear combinations Σ a_k R_k of criterion shares; their variance is
aᵀ V a with the full covariance between criteria (the ``svycontrast`` computation of R's survey).

Domains (a unit, a district's subtree, a field, a channel) are estimated on the full design with
out-of-domain rows given weight zero, as R's ``subset``/``svyby`` do: PSUs without domain members
still count in n_h and in the stratum mean. Everything is grouped with ``np.bincount`` over integer
codes, never a Python loop over domains.

References
----------
Lumley, T. (2010). Complex Surveys: A Guide to Analysis Using R. Wiley. Ch. 2-3 and Appendix C.
Wolter, K. (2007). Introduction to Variance Estimation, 2nd ed. Springer. Ch. 6 (Taylor series).
Cochran, W. G. (1977). Sampling Techniques, 3rd ed. Wiley. §5.2 (stratified variance), §6.11 (ratios).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from scoring.design import Design, DesignError


@dataclass(frozen=True, eq=False)
class DomainEstimates:
    """Points and linearised variances of K ratios and M linear combinations in G domains.

    Attributes
    ----------
    ratio : (G, K) estimated ratios (NaN where a domain has no denominator).
    ratio_var : (G, K) their variances.
    combo : (G, M) linear combinations ``ratio @ contrasts`` (NaN if any part is NaN).
    combo_var : (G, M) their variances, with the covariances between ratios included.
    n_valid : (G, K) respondents with a positive denominator, per ratio.
    n_any : (G,) respondents in the domain with a positive weight.
    df : (G,) design degrees of freedom of each domain: PSUs with members minus strata with members.
    total_cov : (G, K + M) or None: covariance of each domain's estimate with the whole population's,
        for comparing a unit with the province it belongs to.
    singleton_strata : number of strata with one PSU that contributed under the lonely-PSU policy.
    """

    ratio: np.ndarray
    ratio_var: np.ndarray
    combo: np.ndarray
    combo_var: np.ndarray
    n_valid: np.ndarray
    n_any: np.ndarray
    df: np.ndarray
    total_cov: np.ndarray | None
    singleton_strata: int
    total: DomainEstimates | None = None  # the whole sample's estimates (G = 1), with ``with_total``


def domain_ratios(
    design: Design,
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    domain: np.ndarray | None = None,
    n_domains: int | None = None,
    contrasts: np.ndarray | None = None,
    with_total: bool = False,
) -> DomainEstimates:
    """Estimate ratios Σw·num/Σw·den per domain, their linear combinations, and variances.

    Parameters
    ----------
    design : the full sample's design.
    numerator, denominator : (n, K) per-respondent values (for a criterion share: 1 if satisfied and
        valid, and 1 if the answer is valid). A row with denominator 0 takes no part in that ratio.
    domain : (n,) domain codes 0..G-1, or -1 for rows in no domain; all rows form one domain if omitted.
    n_domains : G (defaults to the largest code + 1).
    contrasts : (K, M) weights of linear combinations of the ratios (e.g. an element index as the mean
        of its criteria). None for no combinations.
    with_total : also return the covariance of each domain's estimates with the whole sample's
        (same ratios and combinations over every row), for differences such as unit minus province.

    Returns
    -------
    DomainEstimates

    Notes
    -----
    Influence values (Woodruff linearisation) z_ik = w_i (num_ik - R_gk den_ik) / Σ_{j∈g} w_j den_jk for
    rows of domain g, 0 elsewhere. With PSU totals Z_hi and n_h PSUs in stratum h,
    V = Σ_h c_h Σ_i (Z_hi - Z̄_h)(Z_hi - Z̄_h)ᵀ, c_h = (1 - f_h) n_h/(n_h - 1). Per domain and stratum this
    is c_h (S2 - S1²/n_h) with S1, S2 the sum and sum of squares of the domain's PSU totals, because
    PSUs of the stratum outside the domain have Z = 0 but still count in n_h (Lumley 2010, §2.3).
    A linear combination u = Z a is treated the same way, which gives aᵀVa without forming V.
    """
    num = np.asarray(numerator, dtype=np.float64)
    den = np.asarray(denominator, dtype=np.float64)
    if num.ndim == 1:
        num, den = num[:, None], den[:, None]
    n, k = num.shape
    if den.shape != (n, k) or n != design.n:
        raise DesignError(f"numerator and denominator must both have shape ({design.n}, K)")
    if domain is None:
        dom = np.zeros(n, dtype=np.int64)
        g = 1
    else:
        dom = np.asarray(domain, dtype=np.int64)
        g = int(n_domains if n_domains is not None else (dom.max() + 1 if dom.size else 0))
    a = np.zeros((k, 0)) if contrasts is None else np.asarray(contrasts, dtype=np.float64)
    if a.shape[0] != k:
        raise DesignError(f"contrasts must have {k} rows, one per ratio")
    m = a.shape[1]

    inside = dom >= 0
    w = np.where(inside, design.weights, 0.0)
    dom_c = np.where(inside, dom, 0)

    # one weighted indicator matrix (domains x rows) gives every weighted sum without (n, K) temporaries
    weighted = sparse.csr_matrix((w, (dom_c, np.arange(n))), shape=(g, n))
    sum_den = np.asarray(weighted @ den)
    sum_num = np.asarray(weighted @ num)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = sum_num / sum_den
        inv_den = np.where(sum_den > 0, 1.0 / sum_den, 0.0)
    ratio[sum_den <= 0] = np.nan
    combo = ratio @ a if m else np.zeros((g, 0))

    # influence values z = w (num - R den) / Σ w den of every row for its own domain (0 outside any)
    z = np.take(np.nan_to_num(ratio), dom_c, axis=0)
    z *= den
    np.subtract(num, z, out=z)
    z *= np.take(inv_den, dom_c, axis=0)
    z *= w[:, None]
    u = np.hstack([z, z @ a]) if m else z
    del z

    scale = design.variance_scale
    var = _domain_variance(design, u, dom_c, g, scale, inside)
    total_cov = None
    total = None
    if with_total:
        total = domain_ratios(design, num, den, contrasts=contrasts)
        zt = _influence_all(design, num, den, total.ratio[0])
        ut = np.hstack([zt, zt @ a]) if m else zt
        total_cov = _domain_covariance(design, u, ut, dom_c, g, scale, inside)

    member = inside & (design.weights > 0)
    counter = sparse.csr_matrix((member.astype(np.float64), (dom_c, np.arange(n))), shape=(g, n))
    n_valid = np.rint(np.asarray(counter @ (den > 0).astype(np.float64))).astype(np.int64)
    n_any = np.bincount(dom_c[member], minlength=g).astype(np.int64)
    df = _domain_df(design, dom_c, member, g)
    singles = int((design.psu_count == 1).sum()) if design.lonely_psu in ("adjust", "average") else 0
    return DomainEstimates(
        ratio=ratio,
        ratio_var=var[:, :k],
        combo=combo,
        combo_var=var[:, k:],
        n_valid=n_valid,
        n_any=n_any,
        df=df,
        total_cov=total_cov,
        singleton_strata=singles,
        total=total,
    )


def _group_sum(codes: np.ndarray, values: np.ndarray, g: int) -> np.ndarray:
    """Column sums of ``values`` (n, K) grouped by ``codes`` into (g, K): one sparse product, not K bincounts."""
    indicator = sparse.csr_matrix((np.ones(codes.size), (codes, np.arange(codes.size))), shape=(g, codes.size))
    return np.asarray(indicator @ values)


def _dense_codes(key: np.ndarray, bound: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, each row's position among them); keys lie in [0, bound)."""
    if bound <= 50_000_000:  # a presence table is much faster than sorting a million keys
        present = np.zeros(bound, dtype=bool)
        present[key] = True
        uniq = np.flatnonzero(present)
        position = np.cumsum(present) - 1
        return uniq, position[key]
    uniq, inverse = np.unique(key, return_inverse=True)
    return uniq, inverse.reshape(-1)


def _influence_all(design: Design, num: np.ndarray, den: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    w = design.weights[:, None]
    sum_den = (w * den).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sum_den > 0, w * (num - np.nan_to_num(ratio) * den) / sum_den, 0.0)


def _psu_pairs(design: Design, dom: np.ndarray, inside: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, ...]:
    """PSU totals of ``u`` per (PSU, domain) pair, with each pair's stratum, domain and PSU."""
    if not design.clustered:
        rows = np.flatnonzero(inside)
        return u[rows], design.stratum[rows], dom[rows], design.psu[rows]
    ndom = int(dom.max()) + 1 if dom.size else 1
    key = design.psu[inside] * ndom + dom[inside]
    uniq, inverse = _dense_codes(key, design.n_psu * ndom)
    totals = _group_sum(inverse, u[inside], uniq.size)
    psu = uniq // ndom
    return totals, design.psu_stratum[psu], uniq % ndom, psu


def _domain_variance(
    design: Design, u: np.ndarray, dom: np.ndarray, g: int, scale: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    totals, stratum, pdom, _ = _psu_pairs(design, dom, inside, u)
    return _accumulate(design, totals, totals, stratum, pdom, g, scale)


def _domain_covariance(
    design: Design, u: np.ndarray, ut: np.ndarray, dom: np.ndarray, g: int, scale: np.ndarray, inside: np.ndarray
) -> np.ndarray:
    """Cov(domain estimate, whole-sample estimate) per domain: Σ_h c_h Σ_i (Z^D_hi - Z̄^D_h)(Z^T_hi - Z̄^T_h)."""
    # Σ_i (a_i - ā)(b_i - b̄) over a stratum's PSUs = Σ_i a_i b_i - (Σ a)(Σ b)/n_h, with a = 0 outside D.
    totals, stratum, pdom, psu = _psu_pairs(design, dom, inside, u)
    full = ut if not design.clustered else _group_sum(design.psu, ut, design.n_psu)
    sum_b = _group_sum(design.psu_stratum, full, design.n_strata)
    return _accumulate(design, totals, full[psu], stratum, pdom, g, scale, stratum_sum_b=sum_b)


def _accumulate(
    design: Design,
    a: np.ndarray,
    b: np.ndarray,
    stratum: np.ndarray,
    pdom: np.ndarray,
    g: int,
    scale: np.ndarray,
    *,
    stratum_sum_b: np.ndarray | None = None,
) -> np.ndarray:
    """Σ_h c_h Σ_i (a_hi - ā_h)(b_hi - b̄_h) per domain, over compact (stratum, domain) pairs.

    Without ``stratum_sum_b``, b is the domain's own PSU totals (a variance, a = b); with it, b is the
    whole sample's and its stratum sums run over every PSU of the stratum.
    """
    pair_uniq, pair = _dense_codes(stratum * g + pdom, design.n_strata * g)
    ph = pair_uniq // g
    pd = pair_uniq % g
    n_h = np.maximum(design.psu_count[ph].astype(np.float64), 1.0)[:, None]
    single = design.psu_count[ph] == 1
    size = pair_uniq.size
    indicator = sparse.csr_matrix((np.ones(pair.size), (pair, np.arange(pair.size))), shape=(size, pair.size))
    s_a = np.asarray(indicator @ a)
    s_ab = np.asarray(indicator @ (a * b))
    s_b = s_a if stratum_sum_b is None else stratum_sum_b[ph]
    contrib = s_ab - s_a * s_b / n_h
    if design.lonely_psu == "adjust" and single.any():
        # A singleton PSU is centred at the grand mean of PSU totals, which is 0 for influence
        # values: it contributes its own product, not a centred one (which would be 0).
        contrib = np.where(single[:, None], s_a * s_b, contrib)
    out = _group_sum(pd, scale[ph][:, None] * contrib, g)
    if design.lonely_psu == "average" and single.any():
        # As R's survey does for a domain: over the strata where the domain has members, the total is
        # scaled by (those strata) / (those with two PSUs or more).
        with_members = np.bincount(pd, minlength=g)
        lonely = np.bincount(pd[single], minlength=g)
        ok = with_members - lonely
        factor = np.where(ok > 0, with_members / np.maximum(ok, 1), 0.0)
        out = out * factor[:, None]
    return out


def _domain_df(design: Design, dom: np.ndarray, member: np.ndarray, g: int) -> np.ndarray:
    """PSUs with at least one member row minus strata with at least one member row, per domain."""
    if not member.any():
        return np.zeros(g, dtype=np.int64)
    d = dom[member]
    if design.clustered:
        psu_key, _ = _dense_codes(design.psu[member] * g + d, design.n_psu * g)
        n_psu = np.bincount(psu_key % g, minlength=g)
    else:  # every row is its own PSU
        n_psu = np.bincount(d, minlength=g)
    stratum_key, _ = _dense_codes(design.stratum[member] * g + d, design.n_strata * g)
    n_strata = np.bincount(stratum_key % g, minlength=g)
    return (n_psu - n_strata).astype(np.int64)
