"""Geometry shared by the charts: scales, ticks and their labels, texts, legends and notes, mark shapes.

Everything here is arithmetic on numbers and plain texts; nothing knows SVG. Coordinates are pixels of the
chart's viewBox, y growing downwards. Text widths are estimates (system sans-serif fonts average about
0.55 em per character), enough to wrap notes and flow legend items.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from survey.leader.labels import number

Point = tuple[float, float]
Anchor = Literal["start", "middle", "end"]

TITLE_Y, SUBTITLE_Y = 24.0, 42.0
LEGEND_SIZE, LEGEND_ROW, LEGEND_GAP = 12.0, 20.0, 18.0
NOTE_SIZE, NOTE_LINE = 11.0, 15.0
TICK_LABEL_GAP = 16.0  # from the axis line down to a tick label's baseline


@dataclass(frozen=True, slots=True)
class Scale:
    """A linear map from data values (``d0``..``d1``) to pixels (``r0``..``r1``)."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass(frozen=True, slots=True)
class Text:
    """A text with its anchor point; ``angle`` turns it (degrees, clockwise) about that point."""

    x: float
    y: float
    text: str
    anchor: Anchor = "start"
    angle: float = 0.0


@dataclass(frozen=True, slots=True)
class Tick:
    """A tick: its value, the value as displayed (and where), and its grid line across the plot."""

    value: float
    label: Text
    grid: tuple[Point, Point]


@dataclass(frozen=True, slots=True)
class Header:
    title: Text
    subtitle: Text


@dataclass(frozen=True, slots=True)
class LegendEntry:
    """One legend item: ``key`` names what its sample shows (a mark or a line, see the writer)."""

    key: str
    mark: Point  # where a mark sample is centred
    line: tuple[Point, Point]  # where a line sample runs
    label: Text


@dataclass(frozen=True, slots=True)
class MarkShapes:
    """The mark shapes at radius ``radius``: a circle, triangles pointing up and down, a square."""

    radius: float
    up: tuple[Point, ...]
    down: tuple[Point, ...]
    square: tuple[Point, ...]
    stroke_width: float


def nice_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round tick values from ``lo`` to ``hi`` (steps of 1, 2, 2.5 or 5 times a power of ten), at most
    ``most`` steps."""
    span = hi - lo
    if not span > 0:
        return [lo]
    magnitude = 10.0 ** math.floor(math.log10(span / most))
    step = magnitude
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = m * magnitude
        if span / step <= most:
            break
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9)
    return [round(first + k * step, 10) for k in range(count + 1)]


def tick_decimals(values: Sequence[float]) -> int:
    """The fewest decimals (at most 6) that show every value exactly: 0 for 75, 80; 1 for 77.5."""
    return next((d for d in range(7) if all(abs(v - round(v, d)) < 1e-9 for v in values)), 6)


def tick_labels(values: Sequence[float], locale: str) -> list[str]:
    """The values as an axis shows them: the locale's decimal sign, one number of decimals for all, enough
    to show each value exactly (never 77.5 as "78")."""
    decimals = tick_decimals(values)
    return [number(v, locale, decimals) for v in values]


def x_ticks(scale: Scale, values: Sequence[float], locale: str, top: float, bottom: float) -> tuple[Tick, ...]:
    """Ticks of a horizontal axis: grid lines from ``top`` to ``bottom``, labels centred under ``bottom``."""
    return tuple(
        Tick(v, Text(scale(v), bottom + TICK_LABEL_GAP, label, "middle"), ((scale(v), top), (scale(v), bottom)))
        for v, label in zip(values, tick_labels(values, locale), strict=True)
    )


def y_ticks(scale: Scale, values: Sequence[float], locale: str, left: float, right: float) -> tuple[Tick, ...]:
    """Ticks of a vertical axis: grid lines from ``left`` to ``right``, labels ending left of ``left``."""
    return tuple(
        Tick(v, Text(left - 6, scale(v) + 4, label, "end"), ((left, scale(v)), (right, scale(v))))
        for v, label in zip(values, tick_labels(values, locale), strict=True)
    )


def percent_domain(values: Iterable[float]) -> tuple[float, float]:
    """A 0-100 domain around the values, on multiples of 5, at least 10 points wide."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return 0.0, 100.0
    lo = max(0.0, math.floor((min(finite) - 1.0) / 5.0) * 5.0)
    hi = min(100.0, math.ceil((max(finite) + 1.0) / 5.0) * 5.0)
    if hi - lo < 10.0:
        lo, hi = (max(0.0, hi - 10.0), hi) if hi >= 100.0 else (lo, min(100.0, lo + 10.0))
    return lo, hi


def approx_width(text: str, size: float) -> float:
    """A text's width in px, roughly."""
    return len(text) * size * 0.55


def truncate(text: str, width: float, size: float) -> str:
    """``text`` cut to about ``width`` px at font ``size``, with an ellipsis where it was cut."""
    room = max(4, int(width / (size * 0.55)))
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


def header(title: str, subtitle: str, x: float) -> Header:
    return Header(Text(x, TITLE_Y, title), Text(x, SUBTITLE_Y, subtitle))


def legend(
    items: Sequence[tuple[str, str]], x0: float, y0: float, width: float
) -> tuple[tuple[LegendEntry, ...], float]:
    """``(key, label)`` items flowed in rows across ``width`` from (x0, y0); returns them and the height used."""
    entries: list[LegendEntry] = []
    x, y = x0, y0 + LEGEND_ROW / 2
    for key, label in items:
        need = 26.0 + approx_width(label, LEGEND_SIZE)
        if x > x0 and x + need > x0 + width:
            x, y = x0, y + LEGEND_ROW
        entries.append(LegendEntry(key, (x + 9, y), ((x, y), (x + 20, y)), Text(x + 26, y + 4, label)))
        x += need + LEGEND_GAP
    return tuple(entries), y + LEGEND_ROW / 2 - y0


def notes(lines: Sequence[str], x: float, y: float, width: float) -> tuple[tuple[Text, ...], float]:
    """Small notes from (x, y) down, each wrapped to ``width``; returns the rows and the height used."""
    rows: list[str] = []
    for line in lines:
        current = ""
        for word in line.split():
            trial = f"{current} {word}".strip()
            if current and approx_width(trial, NOTE_SIZE) > width:
                rows.append(current)
                current = word
            else:
                current = trial
        if current:
            rows.append(current)
    return tuple(Text(x, y + (k + 1) * NOTE_LINE - 3, row) for k, row in enumerate(rows)), len(rows) * NOTE_LINE


def mark_shapes(r: float) -> MarkShapes:
    """Marks of radius ``r`` (the circle's): triangles reaching a quarter further, a square a little smaller;
    thinner lines for small marks."""
    t, s = r * 1.25, r * 0.85
    return MarkShapes(
        radius=r,
        up=((0.0, -t), (t, t * 0.7), (-t, t * 0.7)),
        down=((0.0, t), (t, -t * 0.7), (-t, -t * 0.7)),
        square=((-s, -s), (s, -s), (s, s), (-s, s)),
        stroke_width=1.3 if r >= 2.5 else 0.8,
    )
