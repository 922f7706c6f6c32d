"""The funnel plot: each ranked unit's index against its effective sample size, with control limits.

Limits at 95% and 99.8% around the province value come from ``scoring.funnel`` (Spiegelhalter 2005); see
`funnel_svg`. Public through ``survey.leader.charts``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from scoring.funnel import Funnel, FunnelLimits, Model, funnel
from survey.i18n import N_, gettext_for
from survey.leader import svg
from survey.leader.labels import (
    level_label,
    measure_label,
    number,
    percent,
    unit_name,
)
from survey.leader.svg import DASH_95, DASH_998, INK, LegendItem, Scale, esc
from survey.scores import WaveScores

LEVELS = (0.95, 0.998)
SizeBasis = Literal["design", "respondents"]


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


_FLAG_MARK = {0: "in", 1: "up", 2: "up2", -1: "dn", -2: "dn2"}
_FLAG_TEXT = {
    0: N_("within the 95% limits"),
    1: N_("above the 95% limits"),
    2: N_("above the 99.8% limits"),
    -1: N_("below the 95% limits"),
    -2: N_("below the 99.8% limits"),
}


def funnel_svg(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    size_basis: SizeBasis = "design",
    overdispersion: Model | None = None,
    chart_id: str = "funnel",
    width: int = 880,
) -> str:
    """A funnel plot of the ranked units of ``ws``: the measure against the effective sample size.

    Parameters
    ----------
    ws : the level's scores; only ranked units (enough responses) are plotted.
    locale : "vi" or "en", for every label.
    level_name, measure_name : names to show (default: a known level code translated; "Overall index").
    size_basis : "design" (default) plots n* = p(1 - p)/SE² (see `effective_sizes`); "respondents" plots n,
        which treats the index as a binomial share and draws limits too wide for a composite index.
    overdispersion : None (default), "additive" or "multiplicative": widen the limits for between-unit
        variation (Spiegelhalter 2005, QSHC).
    chart_id : prefix of the ids inside the SVG; give each chart on one page its own.

    Returns
    -------
    str
        The SVG document (no XML declaration, so it can be inlined in HTML).

    Notes
    -----
    Limits at 95% and 99.8% around the province value θ₀ on the arcsine scale, clipped to [0, π/2]
    before back-transforming (``scoring.funnel``). Marks: circle inside the 95% limits; hollow triangle
    beyond 95%; filled triangle beyond 99.8%; pointing up above, down below.
    """
    if size_basis not in ("design", "respondents"):
        raise ValueError("size_basis must be 'design' or 'respondents'")
    _ = gettext_for(locale)
    prefix = svg.safe_id(chart_id)
    j = ws.card.column(ws.measure)
    ranked = np.flatnonzero(ws.league.ranked)
    p = ws.card.point[ranked, j].astype(np.float64)
    n = ws.card.n[ranked, j].astype(np.float64)
    sizes = effective_sizes(p, ws.card.se[ranked, j], n) if size_basis == "design" else n
    province = ws.province.point
    level, measure = level_label(_, ws, level_name), measure_label(_, ws, measure_name)
    notes: list[str] = []

    fun: Funnel | None = None
    curve: FunnelLimits | None = None
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

    left, right, top = 64.0, 24.0, 64.0
    plot_w, plot_h = width - left - right, 340.0
    x_max = float(sizes.max()) * 1.06 if sizes.size else 100.0
    x_ticks = svg.nice_ticks(0.0, x_max)
    x_max = max(x_max, x_ticks[-1])
    y_values = [*(p * 100.0), province * 100.0]
    if fun is not None:
        # the funnel's mouth is drawn from a third of the smallest n*, clipped to the plot; the vertical
        # range makes room for the limits from 80% of it, so the points are not squeezed together
        start = max(1.0, float(sizes.min()) / 3.0)
        curve = fun.curve(np.geomspace(start, x_max, 90))
        seen = curve.n >= float(sizes.min()) * 0.8
        y_values += [*(curve.lower[:, seen].ravel() * 100.0), *(curve.upper[:, seen].ravel() * 100.0)]
    y_lo, y_hi = svg.percent_domain(y_values)
    xs = Scale(0.0, x_max, left, left + plot_w)
    ys = Scale(y_lo, y_hi, top + plot_h, top)

    body: list[str] = [svg.markers(prefix, 3.6)]
    subtitle = _(
        "Wave {wave}. Ranked units: {ranked} of {total}. Province: {province}.",
        wave=ws.wave_code,
        ranked=ranked.size,
        total=len(ws.units),
        province=percent(province, locale),
    )
    title = _("Funnel plot: {measure}, {level}", measure=measure, level=level)
    body.append(svg.header(title, subtitle, left))
    y_ticks = svg.nice_ticks(y_lo, y_hi, 7)
    body.append(svg.axis_y(ys, y_ticks, left, left + plot_w, [number(t, locale, 0) for t in y_ticks]))
    body.append(svg.axis_x(xs, x_ticks, top, top + plot_h, [number(t, locale, 0) for t in x_ticks]))
    body.append(
        svg.el(
            "path",
            {
                "d": f"M{svg.fmt(left)} {svg.fmt(top)}V{svg.fmt(top + plot_h)}H{svg.fmt(left + plot_w)}",
                "stroke": INK,
                "fill": "none",
            },
        )
    )
    x_label = _("Effective sample size (n*)") if size_basis == "design" else _("Number of responses (n)")
    body.append(svg.text(left + plot_w / 2, top + plot_h + 36, x_label, font_size="12", text_anchor="middle", fill=INK))
    body.append(
        svg.text(
            16,
            top + plot_h / 2,
            _("Index (%)"),
            font_size="12",
            text_anchor="middle",
            fill=INK,
            transform=f"rotate(-90 16 {svg.fmt(top + plot_h / 2)})",
        )
    )

    if curve is not None:
        lines: list[str] = []
        for level_value, dash, stroke_w in ((0.95, DASH_95, "1.4"), (0.998, DASH_998, "1.8")):
            lower, upper = curve.at(level_value)
            for band in (lower, upper):
                d = "M" + "L".join(
                    f"{svg.fmt(xs(x))} {svg.fmt(ys(v * 100.0))}" for x, v in zip(curve.n, band, strict=True)
                )
                lines.append(
                    svg.el(
                        "path",
                        {
                            "d": d,
                            "fill": "none",
                            "stroke": INK,
                            "stroke-width": stroke_w,
                            "stroke-dasharray": dash,
                            "data-level": f"{level_value:g}",
                        },
                    )
                )
        clip = svg.el(
            "clipPath",
            {"id": f"{prefix}-plot"},
            svg.el(
                "rect", {"x": svg.fmt(left), "y": svg.fmt(top), "width": svg.fmt(plot_w), "height": svg.fmt(plot_h)}
            ),
        )
        body.append(svg.el("defs", None, clip))
        body.append(svg.el("g", {"class": "limits", "clip-path": f"url(#{prefix}-plot)"}, "".join(lines)))
    y_prov = ys(province * 100.0)
    body.append(
        svg.el(
            "path",
            {
                "d": f"M{svg.fmt(left)} {svg.fmt(y_prov)}H{svg.fmt(left + plot_w)}",
                "stroke": INK,
                "stroke-width": "1.6",
                "fill": "none",
            },
        )
    )
    body.append(
        svg.text(
            left + plot_w - 4,
            y_prov - 5,
            _("Province {value}", value=percent(province, locale)),
            font_size="11",
            text_anchor="end",
            fill=INK,
        )
    )

    flags = fun.flags if fun is not None else np.zeros(ranked.size, dtype=np.int8)
    marks: list[str] = []
    for k in np.argsort(np.abs(flags), kind="stable"):  # flagged units drawn last, on top
        i, flag = int(ranked[k]), int(flags[k])
        unit = ws.units[i]
        tip = _(
            "{name} ({code}): {value}; n = {n}; n* = {n_star}; {where}",
            name=unit_name(unit, locale),
            code=unit.code,
            value=percent(float(p[k]), locale),
            n=number(float(n[k]), locale, 0),
            n_star=number(float(sizes[k]), locale, 0),
            where=_(_FLAG_TEXT[flag]) if fun is not None else "",
        )
        marks.append(
            svg.el(
                "use",
                {
                    "href": f"#{prefix}-{_FLAG_MARK[flag]}",
                    "x": svg.fmt(xs(float(sizes[k]))),
                    "y": svg.fmt(ys(float(p[k]) * 100.0)),
                    "class": "unit",
                    "data-code": unit.code,
                    "data-index": f"{p[k] * 100.0:.3f}",
                    "data-n": f"{sizes[k]:.2f}",
                    "data-flag": str(flag),
                },
                svg.el("title", None, esc(tip)),
            )
        )
    body.append(svg.el("g", {"class": "units", **xs.data("x"), **ys.data("y")}, "".join(marks)))

    legend_items = [
        LegendItem(_("Within the 95% limits"), marker="in"),
        LegendItem(_("Above the 95% limits"), marker="up"),
        LegendItem(_("Above the 99.8% limits"), marker="up2"),
        LegendItem(_("Below the 95% limits"), marker="dn"),
        LegendItem(_("Below the 99.8% limits"), marker="dn2"),
        LegendItem(_("Province"), line={"stroke": INK, "stroke-width": "1.6"}),
        LegendItem(_("95% limits"), line={"stroke": INK, "stroke-width": "1.4", "stroke-dasharray": DASH_95}),
        LegendItem(_("99.8% limits"), line={"stroke": INK, "stroke-width": "1.8", "stroke-dasharray": DASH_998}),
    ]
    legend, legend_h = svg.legend(prefix, legend_items, left, top + plot_h + 50, plot_w)
    body.append(legend)

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
            _(
                "Units with fewer than {min} responses, not plotted: {count}.",
                count=not_plotted,
                min=ws.min_responses,
            )
        )
    notes.append(_("A point outside the limits is worth a closer look; it is not a rank."))
    notes_svg, notes_h = svg.notes(notes, left, top + plot_h + 56 + legend_h, plot_w)
    body.append(notes_svg)
    height = top + plot_h + 56 + legend_h + notes_h + 12

    counts = {f: int((flags == f).sum()) for f in (-2, -1, 0, 1, 2)}
    desc = " ".join(
        [
            _(
                "Funnel plot of {measure} for {ranked} ranked units ({level}, wave {wave}): each unit's index "
                "against its sample size, with 95% and 99.8% control limits around the province value of "
                "{province}.",
                measure=measure,
                ranked=ranked.size,
                level=level,
                wave=ws.wave_code,
                province=percent(province, locale),
            ),
            _(
                "Units above the limits: {above} (beyond 99.8%: {above2}). Units below the limits: {below} "
                "(beyond 99.8%: {below2}). Units within the 95% limits: {inside}.",
                above=counts[1] + counts[2],
                above2=counts[2],
                below=counts[-1] + counts[-2],
                below2=counts[-2],
                inside=counts[0],
            )
            if fun is not None
            else "",
            _("Each point names its unit in a tooltip; the league table has every number."),
        ]
    )
    return svg.document(prefix, width, height, title, " ".join(desc.split()), "".join(body))
