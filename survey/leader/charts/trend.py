"""A unit's trend over waves, the geometry: each wave's index with its 95% interval (a band), and the target.

`layout` places everything; ``charts.svg.trend`` draws it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from survey.i18n import gettext_for
from survey.leader.charts import geometry as g
from survey.leader.charts.geometry import Header, Point, Rect, Scale, Text, Tick
from survey.leader.labels import percent

HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 260.0, 56.0, 24.0, 56.0, 40.0


@dataclass(frozen=True, slots=True)
class TrendPoint:
    wave_code: str
    label: str
    point: float  # shares in [0, 1]; NaN where the unit had no data
    lower: float
    upper: float
    n: int


@dataclass(frozen=True, slots=True)
class TrendWave:
    """One wave: its label under the axis and, when the unit had data, its point and interval."""

    code: str
    label: Text
    at: Point | None  # None: no data in this wave
    whisker: tuple[Point, Point] | None  # from the lower to the upper end of the interval
    index: float  # the point and interval on the 0-100 scale
    lower: float
    upper: float
    n: int
    tip: str


@dataclass(frozen=True, slots=True)
class TrendLayout:
    width: float
    height: float
    plot: Rect
    scale: Scale
    header: Header
    desc: str
    y_ticks: tuple[Tick, ...]
    band: tuple[Point, ...]  # upper ends left to right, then lower ends back; empty under two waves with data
    line: tuple[Point, ...]  # through the points of the waves with data
    target: tuple[Point, Point]
    target_label: Text
    waves: tuple[TrendWave, ...]


def layout(points: list[TrendPoint], *, target: float, title: str, locale: str = "vi", width: int = 640) -> TrendLayout:
    """The trend of one unit's index over ``points`` (oldest first), with an interval band.

    Waves are spread evenly across the plot (one wave sits in the middle); the y axis
    (`geometry.percent_domain`) holds every interval and the target.
    """
    _ = gettext_for(locale)
    plot = Rect(LEFT, TOP, width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM)
    has_data = [math.isfinite(p.point) and p.n > 0 for p in points]
    known = [p for p, ok in zip(points, has_data, strict=True) if ok]
    values = [v * 100 for p in known for v in (p.lower, p.upper) if math.isfinite(v)] + [target * 100]
    lo, hi = g.percent_domain(values)
    y = Scale(lo, hi, plot.bottom, plot.y)
    step = plot.width / max(len(points) - 1, 1)
    xs = [plot.x + k * step for k in range(len(points))] if len(points) != 1 else [plot.x + plot.width / 2]

    def tip(p: TrendPoint) -> str:
        return _(
            "{wave}: {index} (95% interval {lower} to {upper}), n = {n}",
            wave=p.label,
            index=percent(p.point, locale),
            lower=percent(p.lower, locale),
            upper=percent(p.upper, locale),
            n=p.n,
        )

    waves = tuple(
        TrendWave(
            code=p.wave_code,
            label=Text(x, plot.bottom + 18, p.label, "middle"),
            at=(x, y(p.point * 100)) if ok else None,
            whisker=((x, y(p.lower * 100)), (x, y(p.upper * 100))) if ok else None,
            index=p.point * 100,
            lower=p.lower * 100,
            upper=p.upper * 100,
            n=p.n,
            tip=tip(p),
        )
        for p, x, ok in zip(points, xs, has_data, strict=True)
    )
    with_data = [(x, p) for p, x, ok in zip(points, xs, has_data, strict=True) if ok]
    if len(with_data) < 2:
        with_data = []  # no band and no line through a single point
    band = [(x, y(p.upper * 100)) for x, p in with_data] + [(x, y(p.lower * 100)) for x, p in reversed(with_data)]
    y_target = y(target * 100)
    return TrendLayout(
        width=float(width),
        height=HEIGHT,
        plot=plot,
        scale=y,
        header=g.header(title, _("Index with its 95% interval (band), by wave"), plot.x),
        desc="; ".join(tip(p) for p in known) or _("No data in any wave."),
        y_ticks=g.y_ticks(y, g.nice_ticks(lo, hi, 5), locale, plot.x, plot.right),
        band=tuple(band),
        line=tuple((x, y(p.point * 100)) for x, p in with_data),
        target=((plot.x, y_target), (plot.right, y_target)),
        target_label=Text(plot.right, y_target - 6, _("target {value}", value=percent(target, locale)), "end"),
        waves=waves,
    )
