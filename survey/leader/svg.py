"""Small helpers for hand-written SVG: escaping, elements, scales, ticks, marks, legends and notes.

Charts are strings built from these, not templates: every attribute value and text goes through `esc`,
which escapes ``& < > " '`` and replaces the characters XML 1.0 cannot hold, so a unit called
``<script>&"'`` stays text. Only presentation attributes are used (no ``style``: the CSP forbids it).
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Helvetica Neue', Arial, sans-serif"
INK = "#1a1a1a"
MUTED = "#666666"
GRID = "#d9d9d9"
ABOVE = "#0072B2"  # Okabe-Ito blue and vermilion: told apart by colour-blind readers, and by shape in print
BELOW = "#D55E00"
DASH_TARGET = "6 3"
DASH_95 = "5 3"
DASH_998 = "1.5 2.5"


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(value: object) -> str:
    """Text or attribute value safe in XML: ``& < > " '`` escaped, characters XML cannot hold replaced."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def fmt(x: float) -> str:
    """A coordinate: one decimal, no trailing ".0"."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def attributes(values: dict[str, object | None]) -> str:
    """`` name="value"`` pairs, escaped; None leaves the attribute out."""
    return "".join(f' {k}="{esc(v)}"' for k, v in values.items() if v is not None)


def el(tag: str, attrs: dict[str, object | None] | None = None, content: str | None = None) -> str:
    """An element; ``content`` is markup (escape text with `esc` first)."""
    a = attributes(attrs or {})
    return f"<{tag}{a}/>" if content is None else f"<{tag}{a}>{content}</{tag}>"


def text(x: float, y: float, content: str, **attrs: object) -> str:
    """A ``<text>`` at (x, y); keyword attributes use ``_`` for ``-`` (``text_anchor="end"``)."""
    extra = {k.replace("_", "-"): v for k, v in attrs.items()}
    return el("text", {"x": fmt(x), "y": fmt(y), **extra}, esc(content))


def approx_width(text: str, size: float) -> float:
    """A text's width in px, roughly (system sans-serif fonts average about 0.55 em per character)."""
    return len(text) * size * 0.55


def truncate(text: str, width: float, size: float) -> str:
    room = max(4, int(width / (size * 0.55)))
    return text if len(text) <= room else text[: room - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class Scale:
    """A linear map from data values to pixels."""

    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, value: float) -> float:
        return self.r0 + (value - self.d0) / (self.d1 - self.d0) * (self.r1 - self.r0)

    def data(self, axis: str) -> dict[str, object | None]:
        """Attributes that let a reader (or a test) turn pixels back into values."""
        return {
            f"data-{axis}-domain": f"{self.d0:g} {self.d1:g}",
            f"data-{axis}-range": f"{self.r0:g} {self.r1:g}",
        }


def nice_ticks(lo: float, hi: float, most: int = 7) -> list[float]:
    """Round tick values from ``lo`` to ``hi`` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
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


def markers(prefix: str, r: float) -> str:
    """The mark shapes, drawn once and used by reference: hollow circle (inside), triangles up/down
    (hollow: beyond the 95% limits; filled: beyond 99.8%, or an interval clear of the target), square."""
    t = r * 1.25
    up = f"M0 {fmt(-t)}L{fmt(t)} {fmt(t * 0.7)}H{fmt(-t)}Z"
    down = f"M0 {fmt(t)}L{fmt(t)} {fmt(-t * 0.7)}H{fmt(-t)}Z"
    sq = f"M{fmt(-r * 0.85)} {fmt(-r * 0.85)}H{fmt(r * 0.85)}V{fmt(r * 0.85)}H{fmt(-r * 0.85)}Z"
    width = "1.3" if r >= 2.5 else "0.8"
    shapes = [
        el("circle", {"id": f"{prefix}-in", "r": fmt(r), "fill": "#ffffff", "stroke": INK, "stroke-width": width}),
        el("path", {"id": f"{prefix}-up", "d": up, "fill": "#ffffff", "stroke": ABOVE, "stroke-width": width}),
        el("path", {"id": f"{prefix}-up2", "d": up, "fill": ABOVE, "stroke": ABOVE, "stroke-width": width}),
        el("path", {"id": f"{prefix}-dn", "d": down, "fill": "#ffffff", "stroke": BELOW, "stroke-width": width}),
        el("path", {"id": f"{prefix}-dn2", "d": down, "fill": BELOW, "stroke": BELOW, "stroke-width": width}),
        el("path", {"id": f"{prefix}-sq", "d": sq, "fill": "#ffffff", "stroke": MUTED, "stroke-width": width}),
    ]
    return el("defs", None, "".join(shapes))


@dataclass(frozen=True, slots=True)
class LegendItem:
    label: str
    marker: str | None = None  # a marker id suffix ("in", "up2"...)
    line: dict[str, object | None] | None = None  # stroke attributes of a line sample


def legend(prefix: str, items: Sequence[LegendItem], x0: float, y0: float, width: float) -> tuple[str, float]:
    """Legend items flowed in rows across ``width``; returns the markup and the height used."""
    size, row_h, gap = 12.0, 20.0, 18.0
    parts: list[str] = []
    x, y = x0, y0 + row_h / 2
    for item in items:
        need = 26.0 + approx_width(item.label, size)
        if x > x0 and x + need > x0 + width:
            x, y = x0, y + row_h
        if item.marker:
            parts.append(el("use", {"href": f"#{prefix}-{item.marker}", "x": fmt(x + 9), "y": fmt(y)}))
        elif item.line:
            parts.append(el("path", {"d": f"M{fmt(x)} {fmt(y)}H{fmt(x + 20)}", "fill": "none", **item.line}))
        parts.append(text(x + 26, y + 4, item.label))
        x += need + gap
    return el("g", {"class": "legend", "font-size": "12", "fill": INK}, "".join(parts)), y + row_h / 2 - y0


def notes(lines: Sequence[str], x: float, y: float, width: float) -> tuple[str, float]:
    """Small notes under the chart, wrapped to ``width``; returns the markup and the height used."""
    size, line_h = 11.0, 15.0
    rows: list[str] = []
    for line in lines:
        words, current = line.split(), ""
        for word in words:
            trial = f"{current} {word}".strip()
            if current and approx_width(trial, size) > width:
                rows.append(current)
                current = word
            else:
                current = trial
        if current:
            rows.append(current)
    parts = [text(x, y + (k + 1) * line_h - 3, row) for k, row in enumerate(rows)]
    return el("g", {"class": "notes", "font-size": "11", "fill": MUTED}, "".join(parts)), len(rows) * line_h


def document(prefix: str, width: float, height: float, title: str, desc: str, body: str) -> str:
    head = (
        "<svg"
        + attributes(
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "viewBox": f"0 0 {fmt(width)} {fmt(height)}",
                "width": "100%",
                "role": "img",
                "aria-labelledby": f"{prefix}-title {prefix}-desc",
                "font-family": FONT,
                "class": "chart",
                "id": prefix,
            }
        )
        + ">"
    )
    return (
        head
        + el("title", {"id": f"{prefix}-title"}, esc(title))
        + el("desc", {"id": f"{prefix}-desc"}, esc(desc))
        + el("rect", {"width": fmt(width), "height": fmt(height), "fill": "#ffffff"})
        + body
        + "</svg>"
    )


def header(title: str, subtitle: str, x: float) -> str:
    return text(x, 24, title, font_size="16", font_weight="bold", fill=INK) + text(
        x, 42, subtitle, font_size="12", fill=MUTED
    )


def axis_x(scale: Scale, ticks: Sequence[float], y_top: float, y_bottom: float, labels: Sequence[str]) -> str:
    """Vertical grid lines at the ticks and their labels under ``y_bottom``."""
    grid = "".join(f"M{fmt(scale(t))} {fmt(y_top)}V{fmt(y_bottom)}" for t in ticks)
    parts = [el("path", {"d": grid, "stroke": GRID, "stroke-width": "1", "fill": "none"})]
    parts += [
        text(scale(t), y_bottom + 16, label, text_anchor="middle") for t, label in zip(ticks, labels, strict=True)
    ]
    return el("g", {"class": "axis-x", "font-size": "11", "fill": INK}, "".join(parts))


def axis_y(scale: Scale, ticks: Sequence[float], x_left: float, x_right: float, labels: Sequence[str]) -> str:
    grid = "".join(f"M{fmt(x_left)} {fmt(scale(t))}H{fmt(x_right)}" for t in ticks)
    parts = [el("path", {"d": grid, "stroke": GRID, "stroke-width": "1", "fill": "none"})]
    parts += [text(x_left - 6, scale(t) + 4, label, text_anchor="end") for t, label in zip(ticks, labels, strict=True)]
    return el("g", {"class": "axis-y", "font-size": "11", "fill": INK}, "".join(parts))


def safe_id(value: str) -> str:
    """An XML id prefix from any text (letters, digits, - and _; starting with a letter)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", value) or "chart"
    return cleaned if cleaned[0].isalpha() else f"c{cleaned}"
