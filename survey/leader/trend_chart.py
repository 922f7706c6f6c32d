"""A unit's trend over waves: the index of each wave with its 95% interval as a band, and the target.

Server-rendered like the other charts (``survey.leader.charts``): one ``<svg role="img">`` with a title
and a description, presentation attributes only, the band told apart from the line by fill and the
target by a dash. Each wave's point carries its numbers in ``data-*`` attributes and a ``<title>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from survey.i18n import gettext_for
from survey.leader import svg
from survey.leader.labels import percent
from survey.leader.svg import DASH_TARGET, INK, MUTED, Scale, el, esc, fmt


@dataclass(frozen=True, slots=True)
class TrendPoint:
    wave_code: str
    label: str
    point: float  # shares in [0, 1]; NaN where the unit had no data
    lower: float
    upper: float
    n: int


def trend_svg(
    points: list[TrendPoint],
    *,
    target: float,
    title: str,
    locale: str = "vi",
    chart_id: str = "trend",
    width: int = 640,
) -> str:
    """The trend of one unit's index over ``points`` (oldest first), with an interval band."""
    _ = gettext_for(locale)
    height, left, right, top, bottom = 260.0, 56.0, 24.0, 56.0, 40.0
    known = [p for p in points if math.isfinite(p.point) and p.n > 0]
    values = [v * 100 for p in known for v in (p.lower, p.upper) if math.isfinite(v)] + [target * 100]
    lo, hi = svg.percent_domain(values)
    y = Scale(lo, hi, height - bottom, top)
    count = max(len(points), 1)
    step = (width - left - right) / max(count - 1, 1)

    def x(k: int) -> float:
        return left + (k * step if count > 1 else (width - left - right) / 2)

    ticks = svg.nice_ticks(lo, hi, 5)
    parts = [svg.header(title, _("Index with its 95% interval (band), by wave"), left)]
    parts.append(svg.axis_y(y, ticks, left, width - right, [f"{t:g}" for t in ticks]))
    where = {p.wave_code: k for k, p in enumerate(points)}
    if len(known) >= 2:
        upper = [f"{fmt(x(where[p.wave_code]))} {fmt(y(p.upper * 100))}" for p in known]
        lower = [f"{fmt(x(where[p.wave_code]))} {fmt(y(p.lower * 100))}" for p in reversed(known)]
        parts.append(el("path", {"d": "M" + "L".join(upper + lower) + "Z", "fill": "#cfe2f3", "stroke": "none"}))
        line = [f"{fmt(x(where[p.wave_code]))} {fmt(y(p.point * 100))}" for p in known]
        parts.append(el("path", {"d": "M" + "L".join(line), "fill": "none", "stroke": INK, "stroke-width": "2"}))
    parts.append(
        el(
            "path",
            {
                "d": f"M{fmt(left)} {fmt(y(target * 100))}H{fmt(width - right)}",
                "stroke": MUTED,
                "stroke-dasharray": DASH_TARGET,
                "stroke-width": "1.5",
                "fill": "none",
            },
        )
    )
    parts.append(
        svg.text(
            width - right,
            y(target * 100) - 6,
            _("target {value}", value=percent(target, locale)),
            text_anchor="end",
            font_size="11",
            fill=MUTED,
        )
    )
    for k, p in enumerate(points):
        parts.append(svg.text(x(k), height - bottom + 18, p.label, text_anchor="middle", font_size="11", fill=INK))
        if not (math.isfinite(p.point) and p.n > 0):
            continue
        tip = _(
            "{wave}: {index} (95% interval {lower} to {upper}), n = {n}",
            wave=p.label,
            index=percent(p.point, locale),
            lower=percent(p.lower, locale),
            upper=percent(p.upper, locale),
            n=p.n,
        )
        parts.append(
            el(
                "path",
                {
                    "d": f"M{fmt(x(k))} {fmt(y(p.lower * 100))}V{fmt(y(p.upper * 100))}",
                    "stroke": INK,
                    "stroke-width": "1.5",
                },
            )
        )
        parts.append(
            el(
                "circle",
                {
                    "cx": fmt(x(k)),
                    "cy": fmt(y(p.point * 100)),
                    "r": "4",
                    "fill": "#ffffff",
                    "stroke": INK,
                    "stroke-width": "2",
                    "class": "wave",
                    "data-wave": p.wave_code,
                    "data-index": f"{p.point * 100:.2f}",
                    "data-lower": f"{p.lower * 100:.2f}",
                    "data-upper": f"{p.upper * 100:.2f}",
                    "data-n": p.n,
                },
                el("title", None, esc(tip)),
            )
        )
    desc = "; ".join(
        _(
            "{wave}: {index} (95% interval {lower} to {upper}), n = {n}",
            wave=p.label,
            index=percent(p.point, locale),
            lower=percent(p.lower, locale),
            upper=percent(p.upper, locale),
            n=p.n,
        )
        for p in known
    ) or _("No data in any wave.")
    return svg.document(chart_id, width, height, title, desc, "".join(parts))
