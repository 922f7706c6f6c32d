"""The caterpillar plot: ranked units ordered by the index, each with its 95% interval as a bar.

See `caterpillar_svg`. Public through ``survey.leader.charts``.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from survey.i18n import gettext_for
from survey.leader import svg
from survey.leader.labels import (
    RANK_METHODS,
    TIER_PROVINCE,
    TIER_TARGET,
    level_label,
    measure_label,
    number,
    percent,
    translated,
    unit_name,
)
from survey.leader.svg import ABOVE, BELOW, DASH_TARGET, GRID, INK, MUTED, LegendItem, Scale, esc
from survey.scores import WaveScores

Unranked = Literal["apart", "omit"]


_TIER_MARK = {1: "up2", 0: "in", -1: "dn2"}
_TIER_STROKE = {1: ABOVE, 0: INK, -1: BELOW}


def caterpillar_svg(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    unranked: Unranked = "apart",
    label_limit: int = 120,
    chart_id: str = "caterpillar",
    width: int = 880,
) -> str:
    """A caterpillar plot: ranked units ordered by the measure, each with its 95% interval as a bar.

    Parameters
    ----------
    ws : the level's scores.
    locale : "vi" or "en", for every label.
    level_name, measure_name : names to show (default: a known level code translated; "Overall index").
    unranked : "apart" (default) draws units under the minimum below the ranked ones, greyed and
        dashed, in their own section; "omit" leaves them out with a note. Units without responses are
        only counted in a note.
    label_limit : up to this many rows each unit is named at the left with its rank interval at the
        right; beyond it the rows are thin (an overview) and names are in the tooltips only.
    chart_id : prefix of the ids inside the SVG; give each chart on one page its own.

    Notes
    -----
    Marks show the tier against the target from the unit's interval: filled triangle up (interval above
    the target), hollow circle (includes it), filled triangle down (below it). The target is a dashed
    line, the province value a solid one.
    """
    if unranked not in ("apart", "omit"):
        raise ValueError("unranked must be 'apart' or 'omit'")
    _ = gettext_for(locale)
    prefix = svg.safe_id(chart_id)
    lg = ws.league
    j = ws.card.column(ws.measure)
    point, lower, upper = ws.card.point[:, j], ws.card.lower[:, j], ws.card.upper[:, j]
    n = ws.card.n[:, j]
    ranked = [int(i) for i in np.flatnonzero(lg.ranked)]
    ranked.sort(key=lambda i: (int(lg.rank[i]), -float(point[i]), ws.units[i].code))
    has_data = (n > 0) & np.isfinite(point)
    others = [int(i) for i in np.flatnonzero(~lg.ranked & has_data)]
    others.sort(key=lambda i: (-float(point[i]), ws.units[i].code))
    no_data = int((~lg.ranked & ~has_data).sum())
    apart = others if unranked == "apart" else []
    rows = len(ranked) + len(apart)
    level, measure = level_label(_, ws, level_name), measure_label(_, ws, measure_name)
    province = ws.province.point

    labelled = rows <= label_limit
    row_h = 18.0 if labelled else max(1.5, min(8.0, 1400.0 / max(rows, 1)))
    left, right = 16.0, 20.0
    name_w = 250.0 if labelled else 0.0
    rank_w = 80.0 if labelled else 0.0
    x0, x1 = left + name_w, width - right - rank_w
    with np.errstate(invalid="ignore"):
        shown = ranked + apart
        values = [province * 100.0, ws.target * 100.0]
        values += [float(v) * 100.0 for i in shown for v in (lower[i], upper[i], point[i])]
    d_lo, d_hi = svg.percent_domain(values)
    xs = Scale(d_lo, d_hi, x0, x1)
    ticks = svg.nice_ticks(d_lo, d_hi, 8)
    tick_labels = [number(t, locale, 0) for t in ticks]

    body: list[str] = [svg.markers(prefix, 4.0 if labelled else max(1.2, min(3.0, row_h * 0.45)))]
    if not labelled:  # thin rows have small marks; the legend keeps readable ones
        body.append(svg.markers(f"{prefix}-key", 4.0))
    title = _("League table: {measure}, {level}", measure=measure, level=level)
    subtitle = _(
        "Wave {wave}. Ranked units: {ranked} of {total}. Target {target}; province {province}.",
        wave=ws.wave_code,
        ranked=len(ranked),
        total=len(ws.units),
        target=percent(ws.target, locale),
        province=percent(province, locale),
    )
    body.append(svg.header(title, subtitle, left))
    legend_items = [
        LegendItem(_("Interval above the target"), marker="up2"),
        LegendItem(_("Interval includes the target"), marker="in"),
        LegendItem(_("Interval below the target"), marker="dn2"),
        LegendItem(
            _("Target {value}", value=percent(ws.target, locale)),
            line={"stroke": INK, "stroke-width": "1.4", "stroke-dasharray": DASH_TARGET},
        ),
        LegendItem(_("Province {value}", value=percent(province, locale)), line={"stroke": INK, "stroke-width": "1.6"}),
    ]
    if apart:
        legend_items.append(LegendItem(_("Not ranked: fewer than {min} responses", min=ws.min_responses), marker="sq"))
    legend, legend_h = svg.legend(prefix if labelled else f"{prefix}-key", legend_items, left, 52, width - left - right)
    body.append(legend)

    axis_top = 52 + legend_h + 10
    top = axis_top + 26  # tick labels above the rows
    heads: list[str] = [
        svg.text(
            x0 + (x1 - x0) / 2,
            axis_top + 4,
            _("Index (%) with its 95% interval"),
            font_size="12",
            text_anchor="middle",
            fill=INK,
        )
    ]
    if labelled:
        heads.append(svg.text(left, axis_top + 4, _("Unit"), font_size="12", font_weight="bold", fill=INK))
        heads.append(
            svg.text(
                width - right,
                axis_top + 4,
                _("Rank (interval)"),
                font_size="12",
                font_weight="bold",
                text_anchor="end",
                fill=INK,
            )
        )
    body.extend(heads)

    gap = 30.0 if apart else 0.0
    ranked_h = len(ranked) * row_h
    bottom = top + ranked_h + gap + len(apart) * row_h
    body.append(
        svg.el(
            "g",
            {"class": "axis-top", "font-size": "11", "fill": INK},
            "".join(
                svg.text(xs(t), top - 6, label, text_anchor="middle")
                for t, label in zip(ticks, tick_labels, strict=True)
            ),
        )
    )
    body.append(svg.axis_x(xs, ticks, top, bottom, tick_labels))
    label_parts: list[str] = []

    def row(i: int, y: float, is_ranked: bool) -> str:
        unit = ws.units[i]
        tier = int(lg.tier_target[i])
        name = unit_name(unit, locale)
        value = percent(float(point[i]), locale)
        ci = f"{percent(float(lower[i]), locale)}–{percent(float(upper[i]), locale)}"
        if is_ranked:
            rank = _(
                "rank {rank} ({lower}–{upper})",
                rank=int(lg.rank[i]),
                lower=int(lg.marginal_lower[i]),
                upper=int(lg.marginal_upper[i]),
            )
            where = f"{_(TIER_TARGET[tier])}; {_(TIER_PROVINCE[int(lg.tier_total[i])])}"
        else:
            rank = _("not ranked")
            where = _("fewer than {min} responses", min=ws.min_responses)
        tip = f"{name} ({unit.code}): {value} [{ci}]; n = {number(float(n[i]), locale, 0)}; {rank}; {where}"
        data: dict[str, object | None] = {
            "class": "unit",
            "data-code": unit.code,
            "data-index": f"{point[i] * 100.0:.3f}",
            "data-lower": f"{lower[i] * 100.0:.3f}",
            "data-upper": f"{upper[i] * 100.0:.3f}",
            "data-n": str(int(n[i])),
        }
        if is_ranked:
            data.update(
                {
                    "data-rank": str(int(lg.rank[i])),
                    "data-rank-lower": str(int(lg.marginal_lower[i])),
                    "data-rank-upper": str(int(lg.marginal_upper[i])),
                }
            )
        bar = ""
        if math.isfinite(float(lower[i])) and math.isfinite(float(upper[i])):
            bar = svg.el(
                "path",
                {"d": f"M{svg.fmt(xs(float(lower[i]) * 100.0))} {svg.fmt(y)}H{svg.fmt(xs(float(upper[i]) * 100.0))}"},
            )
        mark = svg.el(
            "use",
            {
                "href": f"#{prefix}-{_TIER_MARK[tier] if is_ranked else 'sq'}",
                "x": svg.fmt(xs(float(point[i]) * 100.0)),
                "y": svg.fmt(y),
            },
        )
        if labelled:
            fill = INK if is_ranked else MUTED
            label_parts.append(svg.text(left, y + 4, svg.truncate(name, name_w - 12, 12.0), fill=fill))
            short_rank = (
                f"{int(lg.rank[i])} ({int(lg.marginal_lower[i])}–{int(lg.marginal_upper[i])})" if is_ranked else "-"
            )
            label_parts.append(svg.text(width - right, y + 4, short_rank, text_anchor="end", fill=fill))
        return svg.el("g", data, svg.el("title", None, esc(tip)) + bar + mark)

    bar_w = "2" if labelled else svg.fmt(max(0.6, min(2.0, row_h * 0.5)))
    groups: dict[int, list[str]] = {1: [], 0: [], -1: []}
    for k, i in enumerate(ranked):
        groups[int(lg.tier_target[i])].append(row(i, top + (k + 0.5) * row_h, True))
    for tier in (1, 0, -1):
        if groups[tier]:
            body.append(
                svg.el(
                    "g",
                    {"class": "ranked", "data-tier": str(tier), "stroke": _TIER_STROKE[tier], "stroke-width": bar_w},
                    "".join(groups[tier]),
                )
            )
    if apart:
        y_head = top + ranked_h + gap / 2 + 4
        body.append(
            svg.el(
                "path",
                {
                    "d": f"M{svg.fmt(left)} {svg.fmt(top + ranked_h + 4)}H{svg.fmt(width - right)}",
                    "stroke": GRID,
                    "fill": "none",
                },
            )
        )
        body.append(
            svg.text(
                left,
                y_head,
                _("Not ranked: fewer than {min} responses", min=ws.min_responses),
                font_size="12",
                font_style="italic",
                fill=MUTED,
            )
        )
        rows_apart = [row(i, top + ranked_h + gap + (k + 0.5) * row_h, False) for k, i in enumerate(apart)]
        body.append(
            svg.el(
                "g",
                {"class": "unranked", "stroke": MUTED, "stroke-width": bar_w, "stroke-dasharray": "3 2"},
                "".join(rows_apart),
            )
        )
    if label_parts:
        body.append(svg.el("g", {"class": "labels", "font-size": "12"}, "".join(label_parts)))
    x_target, x_prov = xs(ws.target * 100.0), xs(province * 100.0)
    body.append(
        svg.el(
            "g",
            {"class": "references", "fill": "none", "stroke": INK},
            svg.el(
                "path",
                {
                    "d": f"M{svg.fmt(x_target)} {svg.fmt(top)}V{svg.fmt(bottom)}",
                    "stroke-width": "1.4",
                    "stroke-dasharray": DASH_TARGET,
                    "data-value": f"{ws.target * 100:.4f}",
                    "class": "target",
                },
            )
            + svg.el(
                "path",
                {
                    "d": f"M{svg.fmt(x_prov)} {svg.fmt(top)}V{svg.fmt(bottom)}",
                    "stroke-width": "1.6",
                    "data-value": f"{province * 100:.4f}",
                    "class": "province",
                },
            ),
        )
    )
    # the scales, for readers and tests that turn pixels back into values
    body.append(svg.el("g", {"class": "scale", **xs.data("x")}, ""))

    notes: list[str] = []
    if not labelled:
        notes.append(_("Too many units to name each row: hover over a row for its unit, or use the league table."))
    if others and unranked == "omit":
        notes.append(
            _("Units with fewer than {min} responses, not shown: {count}.", count=len(others), min=ws.min_responses)
        )
    if no_data:
        notes.append(_("Units without any response: {count}.", count=no_data))
    notes.append(
        _(
            "Rank intervals: 95% rank sets ({method}). Units whose intervals overlap may not really differ.",
            method=translated(_, RANK_METHODS, lg.rank_method),
        )
    )
    notes_svg, notes_h = svg.notes(notes, left, bottom + 24, width - left - right)
    body.append(notes_svg)
    height = bottom + 24 + notes_h + 12

    tiers = [int(lg.tier_target[i]) for i in ranked]
    desc = " ".join(
        [
            _(
                "League table of {measure} for {level}, wave {wave}: {ranked} ranked units ordered from the "
                "highest index, each with its 95% interval. Target {target}; province {province}.",
                measure=measure,
                level=level,
                wave=ws.wave_code,
                ranked=len(ranked),
                target=percent(ws.target, locale),
                province=percent(province, locale),
            ),
            _(
                "Intervals above the target: {above}; including it: {same}; below it: {below}.",
                above=tiers.count(1),
                same=tiers.count(0),
                below=tiers.count(-1),
            ),
            _(
                "Units with fewer than {min} responses, not ranked: {count}.",
                min=ws.min_responses,
                count=len(others) + no_data,
            ),
            _("Each row names its unit in a tooltip; the league table has every number."),
        ]
    )
    return svg.document(prefix, width, height, title, desc, "".join(body))
