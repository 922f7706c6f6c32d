"""SIPAS-style indices from answer vectors: criterion, element and overall indices per domain.

Criterion index = weighted share of "satisfied" answers (levels 4 and 5 of 5) among valid answers
(not-applicable and missing excluded). Element index = mean of its criteria. Overall index = mean of
the elements (``aggregation="mean_of_elements"``, the SIPAS rule), or mean of all criteria
(``"mean_of_items"``), or the pooled share of all valid criterion answers that are satisfied
(``"pooled"``). Published SIPAS figures do not reconcile exactly with any of these, so ours is
"SIPAS-style" and the rule is always stated with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from scoring.design import Design
from scoring.estimate import DomainEstimates, domain_ratios
from scoring.intervals import Intervals, ReliabilityRule, proportion_intervals, reliability

AGGREGATIONS = ("mean_of_elements", "mean_of_items", "pooled")
NOT_APPLICABLE = 255


@dataclass(frozen=True, slots=True)
class IndexLayout:
    """Where the criteria sit in the answer matrix and how they group into elements.

    ``criteria`` are answer-matrix columns holding levels 1..``levels`` (0 = no answer, 255 = not
    applicable); ``elements`` maps each element name to positions in ``criteria``.
    """

    criteria: tuple[int, ...]
    criterion_names: tuple[str, ...]
    elements: tuple[tuple[str, tuple[int, ...]], ...]
    levels: int = 5
    satisfied_from: int = 4

    def __post_init__(self) -> None:
        if len(self.criteria) != len(self.criterion_names):
            raise ValueError("one name per criterion")
        seen = [i for _, members in self.elements for i in members]
        if sorted(seen) != list(range(len(self.criteria))):
            raise ValueError("every criterion belongs to exactly one element")


@dataclass(frozen=True, slots=True)
class Estimate:
    """One published figure: a share in [0, 1] with its uncertainty and how far to trust it."""

    point: float
    se: float
    lower: float
    upper: float
    n: int
    n_eff: float
    deff: float
    df: int
    reliability: int


@dataclass(frozen=True, eq=False)
class Scorecard:
    """Every domain's criterion, element and overall indices (shares in [0, 1]) with intervals.

    Arrays are (G, M) with measures in the order of ``measures``: the criteria, then the elements,
    then "index" (the overall index). ``df`` and ``n_any`` are per domain.
    """

    measures: tuple[str, ...]
    kinds: tuple[str, ...]
    point: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray
    n_eff: np.ndarray
    deff: np.ndarray
    df: np.ndarray
    n_any: np.ndarray
    reliability: np.ndarray
    aggregation: str
    method: str
    composite_method: str
    level: float
    vs_total_se: np.ndarray | None = None  # SE of (domain - whole sample), with their covariance
    total: Scorecard | None = None  # the whole sample's scorecard (one row), with ``compare_with_total``

    def column(self, measure: str) -> int:
        return self.measures.index(measure)

    def get(self, domain: int, measure: str = "index") -> Estimate:
        j = self.column(measure)
        return Estimate(
            point=float(self.point[domain, j]),
            se=float(self.se[domain, j]),
            lower=float(self.lower[domain, j]),
            upper=float(self.upper[domain, j]),
            n=int(self.n[domain, j]),
            n_eff=float(self.n_eff[domain, j]),
            deff=float(self.deff[domain, j]),
            df=int(self.df[domain]),
            reliability=int(self.reliability[domain, j]),
        )


def criterion_indicators(answers: np.ndarray, layout: IndexLayout) -> tuple[np.ndarray, np.ndarray]:
    """(satisfied, valid) as float arrays (n, C): valid = a level 1..levels; satisfied = valid and >= threshold."""
    levels = answers[:, list(layout.criteria)]
    valid = (levels >= 1) & (levels <= layout.levels)
    satisfied = valid & (levels >= layout.satisfied_from)
    return satisfied.astype(np.float64), valid.astype(np.float64)


def contrast_matrix(layout: IndexLayout, aggregation: str) -> np.ndarray:
    """(C, E + 1) weights: one column per element (mean of its criteria), then the overall index."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; use one of {AGGREGATIONS}")
    c = len(layout.criteria)
    e = len(layout.elements)
    a = np.zeros((c, e + 1))
    for j, (_, members) in enumerate(layout.elements):
        a[list(members), j] = 1.0 / len(members)
    if aggregation == "mean_of_elements":
        a[:, e] = a[:, :e].sum(axis=1) / e
    elif aggregation == "mean_of_items":
        a[:, e] = 1.0 / c
    return a


def scorecard(
    design: Design,
    answers: np.ndarray,
    layout: IndexLayout,
    *,
    domain: np.ndarray | None = None,
    n_domains: int | None = None,
    aggregation: str = "mean_of_elements",
    method: str = "wilson",
    composite_method: str = "logit",
    level: float = 0.95,
    rule: ReliabilityRule | None = None,
    compare_with_total: bool = False,
) -> Scorecard:
    """Criterion, element and overall indices of every domain, in one pass over the data.

    Parameters
    ----------
    design : the wave's design (weights, strata = fields within units, fpc).
    answers : (n, width) uint8 answer matrix (``survey.results.arrays.WaveArrays.answers``).
    layout : where the criteria are and how they form elements.
    domain, n_domains : domain code per row (-1 = none), e.g. the unit, or the district of the unit.
    aggregation : "mean_of_elements" (default), "mean_of_items" or "pooled".
    method : interval for criterion shares ("wilson" default, "korn-graubard", "logit").
    composite_method : interval for element and overall indices ("logit" default, or "wilson" with n*
        from the index's own variance).
    compare_with_total : also compute the SE of each domain's figure minus the whole sample's.
    """
    satisfied, valid = criterion_indicators(answers, layout)
    a = contrast_matrix(layout, aggregation)
    if aggregation == "pooled":
        # the overall index is its own ratio: satisfied answers over valid answers, across criteria
        num = np.hstack([satisfied, satisfied.sum(axis=1, keepdims=True)])
        den = np.hstack([valid, valid.sum(axis=1, keepdims=True)])
        a = np.vstack([a, np.zeros((1, a.shape[1]))])
        a[-1, -1] = 1.0
    else:
        num, den = satisfied, valid
    est: DomainEstimates = domain_ratios(
        design, num, den, domain=domain, n_domains=n_domains, contrasts=a, with_total=compare_with_total
    )
    options = {"aggregation": aggregation, "method": method, "composite_method": composite_method, "level": level}
    card = _card(est, layout, a.shape[1], rule, **options)  # type: ignore[arg-type]
    if not compare_with_total or est.total is None or est.total_cov is None:
        return card
    c = len(layout.criteria)
    total = _card(est.total, layout, a.shape[1], rule, **options)  # type: ignore[arg-type]
    cov = np.hstack([est.total_cov[:, :c], est.total_cov[:, num.shape[1] :]])
    vs_total = np.sqrt(np.maximum(card.se**2 + total.se**2 - 2.0 * cov, 0.0))
    return replace(card, vs_total_se=vs_total, total=total)


def _card(
    est: DomainEstimates,
    layout: IndexLayout,
    width: int,
    rule: ReliabilityRule | None,
    *,
    aggregation: str,
    method: str,
    composite_method: str,
    level: float,
) -> Scorecard:
    """A scorecard from domain estimates: the criteria, then the contrasts (elements, index)."""
    c = len(layout.criteria)
    point = np.hstack([est.ratio[:, :c], est.combo])
    var = np.hstack([est.ratio_var[:, :c], est.combo_var])
    answered_any = np.repeat(est.n_any[:, None], width, axis=1)
    n = np.hstack([est.n_valid[:, :c], answered_any]).astype(np.float64)
    df = est.df.astype(np.float64)[:, None]
    crit: Intervals = proportion_intervals(point[:, :c], var[:, :c], n[:, :c], df, method=method, level=level)
    comp: Intervals = proportion_intervals(point[:, c:], var[:, c:], n[:, c:], df, method=composite_method, level=level)
    lower = np.hstack([crit.lower, comp.lower])
    upper = np.hstack([crit.upper, comp.upper])
    n_eff = np.hstack([crit.n_eff, comp.n_eff])
    deff = np.hstack([crit.deff, comp.deff])
    joined = Intervals(lower=lower, upper=upper, n_eff=n_eff, deff=deff, method=method, level=level)
    names = tuple(layout.criterion_names) + tuple(name for name, _ in layout.elements) + ("index",)
    kinds = ("criterion",) * c + ("element",) * len(layout.elements) + ("index",)
    return Scorecard(
        measures=names,
        kinds=kinds,
        point=point,
        se=np.sqrt(np.maximum(var, 0.0)),
        lower=lower,
        upper=upper,
        n=n.astype(np.int64),
        n_eff=n_eff,
        deff=deff,
        df=est.df,
        n_any=est.n_any,
        reliability=reliability(point, joined, n, df, rule),
        aggregation=aggregation,
        method=method,
        composite_method=composite_method,
        level=level,
    )


@dataclass(frozen=True, eq=False)
class ItemEstimates:
    """(G, K) estimates for K items in G domains, each with its interval; ``df`` is per domain."""

    point: np.ndarray
    se: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n: np.ndarray
    df: np.ndarray
    method: str


def _item_estimates(
    design: Design,
    num: np.ndarray,
    den: np.ndarray,
    domain: np.ndarray | None,
    n_domains: int | None,
    method: str,
    level: float,
    scale: tuple[float, float] = (0.0, 1.0),
) -> ItemEstimates:
    est = domain_ratios(design, num, den, domain=domain, n_domains=n_domains)
    se = np.sqrt(np.maximum(est.ratio_var, 0.0))
    df = est.df.astype(np.float64)[:, None]
    if method == "wald":  # a mean on the answer scale: t on the domain's df, clipped to the scale
        from scoring.intervals import t_quantile

        half = t_quantile(df, level) * se
        lower = np.clip(est.ratio - half, *scale)
        upper = np.clip(est.ratio + half, *scale)
    else:
        ci = proportion_intervals(est.ratio, est.ratio_var, est.n_valid, df, method=method, level=level)
        lower, upper = ci.lower, ci.upper
    return ItemEstimates(est.ratio, se, lower, upper, est.n_valid, est.df, method)


def mean_scores(
    design: Design,
    levels: np.ndarray,
    *,
    scale_max: int = 5,
    domain: np.ndarray | None = None,
    n_domains: int | None = None,
    level: float = 0.95,
) -> ItemEstimates:
    """Mean answer on 1..``scale_max`` per item (not applicable and unanswered excluded), t intervals."""
    lv = np.asarray(levels)
    valid = ((lv >= 1) & (lv <= scale_max)).astype(np.float64)
    return _item_estimates(design, valid * lv, valid, domain, n_domains, "wald", level, (1.0, float(scale_max)))


def dissatisfied_shares(
    design: Design,
    levels: np.ndarray,
    *,
    scale_max: int = 5,
    dissatisfied_to: int = 2,
    domain: np.ndarray | None = None,
    n_domains: int | None = None,
    method: str = "wilson",
    level: float = 0.95,
) -> ItemEstimates:
    """Share of valid answers at 1..``dissatisfied_to`` (1 or 2 of 5) per item."""
    lv = np.asarray(levels)
    valid = (lv >= 1) & (lv <= scale_max)
    num = (valid & (lv <= dissatisfied_to)).astype(np.float64)
    return _item_estimates(design, num, valid.astype(np.float64), domain, n_domains, method, level)


def choice_shares(
    design: Design,
    chosen: np.ndarray,
    *,
    domain: np.ndarray | None = None,
    n_domains: int | None = None,
    method: str = "wilson",
    level: float = 0.95,
) -> ItemEstimates:
    """Share choosing each option of a multi-select (0/1 columns) among those who chose any; sums past 100%.

    Respondents who left the question blank are not in the denominator: "of those who named an area
    to improve, x% named attitude".
    """
    c = np.asarray(chosen, dtype=np.float64)
    answered = (c.sum(axis=1, keepdims=True) > 0).astype(np.float64)
    return _item_estimates(design, c, np.repeat(answered, c.shape[1], axis=1), domain, n_domains, method, level)
