"""The caterpillar plot's geometry: ranked units ordered by the index, each with its 95% interval as a bar.

`layout` places everything (rows, reference lines, axis, legend, notes, texts); ``charts.svg.caterpillar``
draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from survey.i18n import gettext_for
from survey.leader.charts import geometry as g
from survey.leader.charts.geometry import Header, LegendEntry, MarkShapes, Point, Scale, Text, Tick
from survey.leader.labels import (
    RANK_METHODS,
    TIER_PROVINCE,
    TIER_TARGET,
    Gettext,
    level_label,
    measure_label,
    number,
    percent,
    translated,
    unit_name,
)
from survey.results.scores import WaveScores

Unranked = Literal["apart", "omit"]
LEFT, RIGHT, LEGEND_TOP = 16.0, 20.0, 52.0
NAME_WIDTH, RANK_WIDTH, LABEL_SIZE = 250.0, 80.0, 12.0


@dataclass(frozen=True, slots=True)
class CaterpillarRow:
    """One unit's row: its point and interval bar at height ``y``, and (when rows are named) its labels."""

    code: str
    ranked: bool
    tier: int  # the interval against the target: 1 above, 0 includes it, -1 below
    y: float
    x: float  # the point
    bar: tuple[float, float] | None  # the interval's ends; None when it is unknown
    index: float  # the point and interval on the 0-100 scale
    lower: float
    upper: float
    n: int
    rank: tuple[int, int, int] | None  # rank and its 95% interval; None when not ranked
    tip: str
    name: Text | None
    rank_label: Text | None


@dataclass(frozen=True, slots=True)
class Reference:
    """A vertical reference line (the target, the province) at ``value`` on the 0-100 scale."""

    value: float
    line: tuple[Point, Point]


@dataclass(frozen=True, slots=True)
class CaterpillarLayout:
    width: float
    height: float
    scale: Scale
    header: Header
    desc: str
    legend: tuple[LegendEntry, ...]
    legend_marks: MarkShapes | None  # larger marks for the legend when the rows' marks are small
    axis_title: Text
    column_heads: tuple[Text, ...]  # "Unit" and "Rank (interval)" over named rows
    ticks: tuple[Tick, ...]  # grid lines down the rows, labels under them
    top_labels: tuple[Text, ...]  # the tick labels again, above the rows
    ranked: tuple[CaterpillarRow, ...]  # in rank order, rank 1 at the top
    apart: tuple[CaterpillarRow, ...]  # units under the minimum, below the ranked ones
    apart_rule: tuple[Point, Point] | None
    apart_title: Text | None
    target: Reference
    province: Reference
    marks: MarkShapes
    bar_width: float
    notes: tuple[Text, ...]


def layout(
    ws: WaveScores,
    *,
    locale: str = "vi",
    level_name: str | None = None,
    measure_name: str | None = None,
    unranked: Unranked = "apart",
    label_limit: int = 120,
    width: int = 880,
) -> CaterpillarLayout:
    """A caterpillar plot: ranked units ordered by the measure, each with its 95% interval as a bar.

    Parameters
    ----------
    ws : the level's scores.
    locale : "vi" or "en", for every label.
    level_name, measure_name : names to show (default: a known level code translated; "Overall index").
    unranked : "apart" (default) draws units under the minimum below the ranked ones, in their own
        section; "omit" leaves them out with a note. Units without responses are only counted in a note.
    label_limit : up to this many rows each unit is named at the left with its rank interval at the
        right; beyond it the rows are thin (an overview) and names are in the tooltips only.
    width : of the chart, in px; the height follows from the rows, legend and notes.

    Notes
    -----
    Ranked rows are ordered by rank, then by the index (highest first), then by code; units apart by the
    index, then by code. Named rows are 18 px high; thin rows share about 1400 px (1.5 to 8 px each).
    """
    if unranked not in ("apart", "omit"):
        raise ValueError("unranked must be 'apart' or 'omit'")
    _ = gettext_for(locale)
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
    name_w = NAME_WIDTH if labelled else 0.0
    x0, x1 = LEFT + name_w, width - RIGHT - (RANK_WIDTH if labelled else 0.0)
    with np.errstate(invalid="ignore"):
        values = [province * 100.0, ws.target * 100.0]
        values += [float(v) * 100.0 for i in ranked + apart for v in (lower[i], upper[i], point[i])]
    d_lo, d_hi = g.percent_domain(values)
    xs = Scale(d_lo, d_hi, x0, x1)
    tick_values = g.nice_ticks(d_lo, d_hi, 8)

    legend_items = [
        ("up2", _("Interval above the target")),
        ("in", _("Interval includes the target")),
        ("dn2", _("Interval below the target")),
        ("target", _("Target {value}", value=percent(ws.target, locale))),
        ("province", _("Province {value}", value=percent(province, locale))),
    ]
    if apart:
        legend_items.append(("sq", _("Not ranked: fewer than {min} responses", min=ws.min_responses)))
    legend, legend_h = g.legend(legend_items, LEFT, LEGEND_TOP, width - LEFT - RIGHT)

    axis_top = LEGEND_TOP + legend_h + 10
    top = axis_top + 26  # tick labels above the rows
    gap = 30.0 if apart else 0.0
    ranked_h = len(ranked) * row_h
    bottom = top + ranked_h + gap + len(apart) * row_h

    def row(i: int, y: float, is_ranked: bool) -> CaterpillarRow:
        unit = ws.units[i]
        name = unit_name(unit, locale)
        value = percent(float(point[i]), locale)
        ci = f"{percent(float(lower[i]), locale)}–{percent(float(upper[i]), locale)}"
        rank = (int(lg.rank[i]), int(lg.marginal_lower[i]), int(lg.marginal_upper[i])) if is_ranked else None
        if rank is not None:
            said = _("rank {rank} ({lower}–{upper})", rank=rank[0], lower=rank[1], upper=rank[2])
            where = f"{_(TIER_TARGET[int(lg.tier_target[i])])}; {_(TIER_PROVINCE[int(lg.tier_total[i])])}"
        else:
            said = _("not ranked")
            where = _("fewer than {min} responses", min=ws.min_responses)
        lo, hi = float(lower[i]), float(upper[i])
        return CaterpillarRow(
            code=unit.code,
            ranked=is_ranked,
            tier=int(lg.tier_target[i]),
            y=y,
            x=xs(float(point[i]) * 100.0),
            bar=(xs(lo * 100.0), xs(hi * 100.0)) if math.isfinite(lo) and math.isfinite(hi) else None,
            index=float(point[i]) * 100.0,
            lower=lo * 100.0,
            upper=hi * 100.0,
            n=int(n[i]),
            rank=rank,
            tip=f"{name} ({unit.code}): {value} [{ci}]; n = {number(float(n[i]), locale, 0)}; {said}; {where}",
            name=Text(LEFT, y + 4, g.truncate(name, name_w - 12, LABEL_SIZE)) if labelled else None,
            rank_label=(
                Text(width - RIGHT, y + 4, f"{rank[0]} ({rank[1]}–{rank[2]})" if rank else "-", "end")
                if labelled
                else None
            ),
        )

    tick_row = g.x_ticks(xs, tick_values, locale, top, bottom)
    heads = (
        Text(LEFT, axis_top + 4, _("Unit")),
        Text(width - RIGHT, axis_top + 4, _("Rank (interval)"), "end"),
    )
    x_target, x_prov = xs(ws.target * 100.0), xs(province * 100.0)
    note_rows, notes_h = _notes(
        _,
        ws,
        labelled=labelled,
        omitted=len(others) if unranked == "omit" else 0,
        no_data=no_data,
        top=bottom + 24,
        width=width,
    )
    return CaterpillarLayout(
        width=float(width),
        height=bottom + 24 + notes_h + 12,
        scale=xs,
        header=g.header(
            _("League table: {measure}, {level}", measure=measure, level=level),
            _(
                "Wave {wave}. Ranked units: {ranked} of {total}. Target {target}; province {province}.",
                wave=ws.wave_code,
                ranked=len(ranked),
                total=len(ws.units),
                target=percent(ws.target, locale),
                province=percent(province, locale),
            ),
            LEFT,
        ),
        desc=_describe(_, ws, ranked, len(others) + no_data, measure, level, locale),
        legend=legend,
        legend_marks=None if labelled else g.mark_shapes(4.0),
        axis_title=Text(x0 + (x1 - x0) / 2, axis_top + 4, _("Index (%) with its 95% interval"), "middle"),
        column_heads=heads if labelled else (),
        ticks=tick_row,
        top_labels=tuple(Text(t.label.x, top - 6, t.label.text, "middle") for t in tick_row),
        ranked=tuple(row(i, top + (k + 0.5) * row_h, True) for k, i in enumerate(ranked)),
        apart=tuple(row(i, top + ranked_h + gap + (k + 0.5) * row_h, False) for k, i in enumerate(apart)),
        apart_rule=((LEFT, top + ranked_h + 4), (width - RIGHT, top + ranked_h + 4)) if apart else None,
        apart_title=(
            Text(LEFT, top + ranked_h + gap / 2 + 4, _("Not ranked: fewer than {min} responses", min=ws.min_responses))
            if apart
            else None
        ),
        target=Reference(ws.target * 100.0, ((x_target, top), (x_target, bottom))),
        province=Reference(province * 100.0, ((x_prov, top), (x_prov, bottom))),
        marks=g.mark_shapes(4.0 if labelled else max(1.2, min(3.0, row_h * 0.45))),
        bar_width=2.0 if labelled else max(0.6, min(2.0, row_h * 0.5)),
        notes=note_rows,
    )


def _notes(
    _: Gettext, ws: WaveScores, *, labelled: bool, omitted: int, no_data: int, top: float, width: float
) -> tuple[tuple[Text, ...], float]:
    """The notes under the rows from ``top`` down, and their height."""
    notes: list[str] = []
    if not labelled:
        notes.append(_("Too many units to name each row: hover over a row for its unit, or use the league table."))
    if omitted:
        notes.append(
            _("Units with fewer than {min} responses, not shown: {count}.", count=omitted, min=ws.min_responses)
        )
    if no_data:
        notes.append(_("Units without any response: {count}.", count=no_data))
    notes.append(
        _(
            "Rank intervals: 95% rank sets ({method}). Units whose intervals overlap may not really differ.",
            method=translated(_, RANK_METHODS, ws.league.rank_method),
        )
    )
    return g.notes(notes, LEFT, top, width - LEFT - RIGHT)


def _describe(
    _: Gettext, ws: WaveScores, ranked: list[int], not_ranked: int, measure: str, level: str, locale: str
) -> str:
    """The text alternative: what the chart shows and how many intervals lie where against the target."""
    tiers = [int(ws.league.tier_target[i]) for i in ranked]
    return " ".join(
        [
            _(
                "League table of {measure} for {level}, wave {wave}: {ranked} ranked units ordered from the "
                "highest index, each with its 95% interval. Target {target}; province {province}.",
                measure=measure,
                level=level,
                wave=ws.wave_code,
                ranked=len(ranked),
                target=percent(ws.target, locale),
                province=percent(ws.province.point, locale),
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
                count=not_ranked,
            ),
            _("Each row names its unit in a tooltip; the league table has every number."),
        ]
    )
