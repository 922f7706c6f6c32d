"""The funnel plot's geometry: each ranked unit's index against its effective sample size, with control limits.

`layout` places everything (points, limit curves, axes, legend, notes, texts); ``charts.svg.funnel`` draws it.
Limits at 95% and 99.8% around the province value come from ``scoring.funnel`` (Spiegelhalter 2005).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from scoring.funnel import Funnel, FunnelLimits, Model, funnel
from survey.i18n import N_, gettext_for
from survey.leader.charts import geometry as g
from survey.leader.charts.geometry import Header, LegendEntry, MarkShapes, Point, Rect, Scale, Text, Tick
from survey.leader.labels import Gettext, level_label, measure_label, number, percent, unit_name
from survey.results.scores import WaveScores

LEVELS = (0.95, 0.998)
SizeBasis = Literal["design", "respondents"]
Side = Literal["lower", "upper"]
SIDES: tuple[Side, Side] = ("lower", "upper")
LEFT, RIGHT, TOP, PLOT_HEIGHT = 64.0, 24.0, 64.0, 340.0

_FLAG_TEXT = {
    0: N_("within the 95% limits"),
    1: N_("above the 95% limits"),
    2: N_("above the 99.8% limits"),
    -1: N_("below the 95% limits"),
    -2: N_("below the 99.8% limits"),
}


@dataclass(frozen=True, slots=True)
class FunnelUnit:
    """A ranked unit's point: ``flag`` is -2..2 (below 99.8%, below 95%, inside, above 95%, above 99.8%)."""

    code: str
    at: Point
    flag: int
    index: float  # on the 0-100 scale
    size: float  # the x value: n* or n
    tip: str


@dataclass(frozen=True, slots=True)
class LimitCurve:
    level: float
    side: Side
    points: tuple[Point, ...]  # may leave the plot: clip them to ``FunnelLayout.plot``


@dataclass(frozen=True, slots=True)
class FunnelLayout:
    width: float
    height: float
    plot: Rect
    x_scale: Scale
    y_scale: Scale
    header: Header
    desc: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    frame: tuple[Point, ...]  # the axis lines: down the left side, then along the bottom
    x_title: Text
    y_title: Text
    limits: tuple[LimitCurve, ...]  # none when the province value is 0 or 100
    province: tuple[Point, Point]
    province_label: Text
    units: tuple[FunnelUnit, ...]  # flagged units last, so they are drawn on top
    marks: MarkShapes
    legend: tuple[LegendEntry, ...]
    notes: tuple[Text, ...]


def effective_sizes(point: np.ndarray, se: np.ndarray, n: np.ndarray) -> np.ndarray:
    """n* = p(1 - p)/SE², the sample size a simple random sample would need for the same precision.

    A composite index is a mean of correlated shares, so its variance is below p(1 - p)/n and n* > n:
    the scorecard's ``n_eff`` (capped at n for intervals, STATISTICS.md 2.3) would draw funnel limits far
    wider than the index's own intervals. Where SE = 0 or p is 0 or 1, n* = n.
    """
    p, s, nn = (np.asarray(x, dtype=np.float64) for x in (point, se, n))
    usable = (s > 0) & (p > 0) & (p < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        star = np.where(usable, p * (1.0 - p) / np.where(usable, s, 1.0) ** 2, nn)
    return np.asarray(star, dtype=np.float64)


def layout(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    size_basis: SizeBasis = "design",
    overdispersion: Model | None = None,
    width: int = 880,
) -> FunnelLayout:
    """The funnel plot of the ranked units of ``ws``: the measure against the effective sample size.

    Parameters
    ----------
    ws : the level's scores; only ranked units (enough responses) are plotted.
    locale : "vi" or "en", for every label.
    level_name, measure_name : names to show (default: a known level code translated; "Overall index").
    size_basis : "design" (default) plots n* = p(1 - p)/SE² (see `effective_sizes`); "respondents" plots n,
        which treats the index as a binomial share and draws limits too wide for a composite index.
    overdispersion : None (default), "additive" or "multiplicative": widen the limits for between-unit
        variation (Spiegelhalter 2005, QSHC).
    width : of the chart, in px; the height follows from the legend and notes.

    Notes
    -----
    Limits at 95% and 99.8% around the province value θ₀ on the arcsine scale, clipped to [0, π/2]
    before back-transforming (``scoring.funnel``). The x axis runs from 0 to 6% past the largest size; the
    y axis (`geometry.percent_domain`) holds the points, the province and the limits from 80% of the
    smallest size, so a wide mouth does not squeeze the points together.
    """
    if size_basis not in ("design", "respondents"):
        raise ValueError("size_basis must be 'design' or 'respondents'")
    _ = gettext_for(locale)
    j = ws.card.column(ws.measure)
    ranked = np.flatnonzero(ws.league.ranked)
    p = ws.card.point[ranked, j].astype(np.float64)
    n = ws.card.n[ranked, j].astype(np.float64)
    sizes = effective_sizes(p, ws.card.se[ranked, j], n) if size_basis == "design" else n
    province = ws.province.point
    level, measure = level_label(_, ws, level_name), measure_label(_, ws, measure_name)
    notes: list[str] = []

    fun: Funnel | None = None
    if ranked.size:
        try:
            fun = funnel(p, sizes, target=province, levels=LEVELS, method="arcsine", overdispersion=overdispersion)
        except ValueError:
            if overdispersion is not None:
                notes.append(_("Too few units to estimate over-dispersion: the limits are not widened."))
            try:
                fun = funnel(p, sizes, target=province, levels=LEVELS, method="arcsine")
            except ValueError:
                fun = None
                notes.append(_("No control limits: the province value is 0 or 100."))

    plot = Rect(LEFT, TOP, width - LEFT - RIGHT, PLOT_HEIGHT)
    x_max = float(sizes.max()) * 1.06 if sizes.size else 100.0
    x_values = g.nice_ticks(0.0, x_max)
    x_max = max(x_max, x_values[-1])
    y_values = [*(p * 100.0), province * 100.0]
    curve: FunnelLimits | None = None
    if fun is not None:
        # the mouth is drawn from a third of the smallest size (and clipped to the plot)
        curve = fun.curve(np.geomspace(max(1.0, float(sizes.min()) / 3.0), x_max, 90))
        seen = curve.n >= float(sizes.min()) * 0.8
        y_values += [*(curve.lower[:, seen].ravel() * 100.0), *(curve.upper[:, seen].ravel() * 100.0)]
    y_lo, y_hi = g.percent_domain(y_values)
    xs = Scale(0.0, x_max, plot.x, plot.right)
    ys = Scale(y_lo, y_hi, plot.bottom, plot.y)

    limits: list[LimitCurve] = []
    if curve is not None:
        for level_value in LEVELS:
            for side, band in zip(SIDES, curve.at(level_value), strict=True):
                points = tuple((xs(float(x)), ys(float(v) * 100.0)) for x, v in zip(curve.n, band, strict=True))
                limits.append(LimitCurve(level_value, side, points))

    flags = fun.flags if fun is not None else np.zeros(ranked.size, dtype=np.int8)
    units: list[FunnelUnit] = []
    for k in np.argsort(np.abs(flags), kind="stable"):  # flagged units last, on top
        unit, flag = ws.units[int(ranked[k])], int(flags[k])
        tip = _(
            "{name} ({code}): {value}; n = {n}; n* = {n_star}; {where}",
            name=unit_name(unit, locale),
            code=unit.code,
            value=percent(float(p[k]), locale),
            n=number(float(n[k]), locale, 0),
            n_star=number(float(sizes[k]), locale, 0),
            where=_(_FLAG_TEXT[flag]) if fun is not None else "",
        )
        at = (xs(float(sizes[k])), ys(float(p[k]) * 100.0))
        units.append(FunnelUnit(unit.code, at, flag, float(p[k]) * 100.0, float(sizes[k]), tip))

    legend, legend_h = g.legend(
        [
            ("in", _("Within the 95% limits")),
            ("up", _("Above the 95% limits")),
            ("up2", _("Above the 99.8% limits")),
            ("dn", _("Below the 95% limits")),
            ("dn2", _("Below the 99.8% limits")),
            ("province", _("Province")),
            ("limit-0.95", _("95% limits")),
            ("limit-0.998", _("99.8% limits")),
        ],
        plot.x,
        plot.bottom + 50,
        plot.width,
    )

    if size_basis == "design":
        notes.append(
            _(
                "Effective sample size n* = I(1 - I)/SE²: the precision of each unit's index under the survey "
                "design (an index averages many answers, so n* is larger than the number of responses)."
            )
        )
    if fun is not None:
        notes.append(_("Control limits around the province value, on the arcsine scale (Spiegelhalter 2005)."))
        if fun.overdispersion is not None:
            notes.append(
                _("Limits widened for over-dispersion between units ({model} model).", model=fun.overdispersion)
            )
    not_plotted = len(ws.units) - ranked.size
    if not_plotted:
        notes.append(
            _("Units with fewer than {min} responses, not plotted: {count}.", count=not_plotted, min=ws.min_responses)
        )
    notes.append(_("A point outside the limits is worth a closer look; it is not a rank."))
    note_rows, notes_h = g.notes(notes, plot.x, plot.bottom + 56 + legend_h, plot.width)

    y_prov = ys(province * 100.0)
    title = _("Funnel plot: {measure}, {level}", measure=measure, level=level)
    subtitle = _(
        "Wave {wave}. Ranked units: {ranked} of {total}. Province: {province}.",
        wave=ws.wave_code,
        ranked=ranked.size,
        total=len(ws.units),
        province=percent(province, locale),
    )
    x_title = _("Effective sample size (n*)") if size_basis == "design" else _("Number of responses (n)")
    return FunnelLayout(
        width=float(width),
        height=plot.bottom + 56 + legend_h + notes_h + 12,
        plot=plot,
        x_scale=xs,
        y_scale=ys,
        header=g.header(title, subtitle, plot.x),
        desc=_describe(_, ws, flags if fun is not None else None, measure, level, ranked.size, locale),
        x_ticks=g.x_ticks(xs, x_values, locale, plot.y, plot.bottom),
        y_ticks=g.y_ticks(ys, g.nice_ticks(y_lo, y_hi, 7), locale, plot.x, plot.right),
        frame=((plot.x, plot.y), (plot.x, plot.bottom), (plot.right, plot.bottom)),
        x_title=Text(plot.x + plot.width / 2, plot.bottom + 36, x_title, "middle"),
        y_title=Text(16, plot.y + plot.height / 2, _("Index (%)"), "middle", -90.0),
        limits=tuple(limits),
        province=((plot.x, y_prov), (plot.right, y_prov)),
        province_label=Text(plot.right - 4, y_prov - 5, _("Province {value}", value=percent(province, locale)), "end"),
        units=tuple(units),
        marks=g.mark_shapes(3.6),
        legend=legend,
        notes=note_rows,
    )


def _describe(
    _: Gettext, ws: WaveScores, flags: np.ndarray | None, measure: str, level: str, ranked: int, locale: str
) -> str:
    """The text alternative: what the chart shows and how many units lie where."""
    parts = [
        _(
            "Funnel plot of {measure} for {ranked} ranked units ({level}, wave {wave}): each unit's index "
            "against its sample size, with 95% and 99.8% control limits around the province value of "
            "{province}.",
            measure=measure,
            ranked=ranked,
            level=level,
            wave=ws.wave_code,
            province=percent(ws.province.point, locale),
        )
    ]
    if flags is not None:
        counts = {f: int((flags == f).sum()) for f in (-2, -1, 0, 1, 2)}
        parts.append(
            _(
                "Units above the limits: {above} (beyond 99.8%: {above2}). Units below the limits: {below} "
                "(beyond 99.8%: {below2}). Units within the 95% limits: {inside}.",
                above=counts[1] + counts[2],
                above2=counts[2],
                below=counts[-1] + counts[-2],
                below2=counts[-2],
                inside=counts[0],
            )
        )
    parts.append(_("Each point names its unit in a tooltip; the league table has every number."))
    return " ".join(" ".join(parts).split())
