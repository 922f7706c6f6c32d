"""The SVG writer: turns a chart's layout into one ``<svg role="img">`` document, and adds the look.

Positions come from the layouts (``funnel``, ``caterpillar``, ``trend``); this module only chooses colours,
dashes, fonts and mark shapes, and writes text. Every attribute value and text goes through `esc`, which
escapes ``& < > " '`` and replaces the characters XML 1.0 cannot hold, so a unit called ``<script>&"'``
stays text. Only presentation attributes are used (no ``style``: the CSP forbids it). Coordinates are
written with one decimal.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence

from survey.leader.charts.caterpillar import LABEL_SIZE, CaterpillarLayout, CaterpillarRow
from survey.leader.charts.funnel import FunnelLayout
from survey.leader.charts.geometry import (
    LEGEND_SIZE,
    NOTE_SIZE,
    Header,
    LegendEntry,
    MarkShapes,
    Point,
    Scale,
    Text,
    Tick,
)
from survey.leader.charts.trend import TrendLayout

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Helvetica Neue', Arial, sans-serif"
INK = "#1a1a1a"
MUTED = "#666666"
GRID = "#d9d9d9"
ABOVE = "#0072B2"  # Okabe-Ito blue and vermilion: told apart by colour-blind readers, and by shape in print
BELOW = "#D55E00"
BAND = "#cfe2f3"
DASH_TARGET = "6 3"
DASH_95 = "5 3"
DASH_998 = "1.5 2.5"

# how legend keys and limit levels are drawn (keys not here are marks, see `markers`)
LINES: dict[str, dict[str, object | None]] = {
    "province": {"stroke": INK, "stroke-width": "1.6"},
    "target": {"stroke": INK, "stroke-width": "1.4", "stroke-dasharray": DASH_TARGET},
    "limit-0.95": {"stroke": INK, "stroke-width": "1.4", "stroke-dasharray": DASH_95},
    "limit-0.998": {"stroke": INK, "stroke-width": "1.8", "stroke-dasharray": DASH_998},
}
FLAG_MARK = {0: "in", 1: "up", 2: "up2", -1: "dn", -2: "dn2"}  # funnel: hollow beyond 95%, filled beyond 99.8%
TIER_MARK = {1: "up2", 0: "in", -1: "dn2"}  # caterpillar: the interval against the target
TIER_STROKE = {1: ABOVE, 0: INK, -1: BELOW}

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def esc(value: object) -> str:
    """Text or attribute value safe in XML: ``& < > " '`` escaped, characters XML cannot hold replaced."""
    return html.escape(_NOT_XML.sub("\ufffd", str(value)), quote=True)


def fmt(x: float) -> str:
    """A coordinate: one decimal, no trailing ".0"."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def el(tag: str, attrs: Mapping[str, object | None] | None = None, content: str | None = None) -> str:
    """An element; ``content`` is markup (escape text with `esc` first). None leaves an attribute out."""
    a = "".join(f' {k}="{esc(v)}"' for k, v in (attrs or {}).items() if v is not None)
    return f"<{tag}{a}/>" if content is None else f"<{tag}{a}>{content}</{tag}>"


def text(t: Text, **style: object) -> str:
    """A ``<text>``; keyword attributes use ``_`` for ``-`` (``font_size="12"``)."""
    attrs: dict[str, object | None] = {"x": fmt(t.x), "y": fmt(t.y)}
    attrs.update({k.replace("_", "-"): v for k, v in style.items()})
    if t.anchor != "start":
        attrs["text-anchor"] = t.anchor
    if t.angle:
        attrs["transform"] = f"rotate({fmt(t.angle)} {fmt(t.x)} {fmt(t.y)})"
    return el("text", attrs, esc(t.text))


def segment(a: Point, b: Point) -> str:
    """Path data of a straight line, as H or V when it is level or upright."""
    start = f"M{fmt(a[0])} {fmt(a[1])}"
    if fmt(a[1]) == fmt(b[1]):
        return f"{start}H{fmt(b[0])}"
    if fmt(a[0]) == fmt(b[0]):
        return f"{start}V{fmt(b[1])}"
    return f"{start}L{fmt(b[0])} {fmt(b[1])}"


def polyline(points: Iterable[Point], closed: bool = False) -> str:
    """Path data through ``points``, closed back to the first when ``closed``."""
    return "M" + "L".join(f"{fmt(x)} {fmt(y)}" for x, y in points) + ("Z" if closed else "")


def scale_data(scale: Scale, axis: str) -> dict[str, object | None]:
    """Attributes that let a reader (or a test) turn pixels back into values."""
    return {
        f"data-{axis}-domain": f"{scale.d0:g} {scale.d1:g}",
        f"data-{axis}-range": f"{scale.r0:g} {scale.r1:g}",
    }


def safe_id(value: str) -> str:
    """An XML id prefix from any text (letters, digits, - and _; starting with a letter)."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", value) or "chart"
    return cleaned if cleaned[0].isalpha() else f"c{cleaned}"


def markers(prefix: str, shapes: MarkShapes) -> str:
    """The marks, drawn once and used by reference: hollow circle (in), triangles up and down (hollow: up,
    dn; filled: up2, dn2) and a grey square (sq)."""
    width = fmt(shapes.stroke_width)
    up, down = polyline(shapes.up, closed=True), polyline(shapes.down, closed=True)
    return el(
        "defs",
        None,
        el(
            "circle",
            {"id": f"{prefix}-in", "r": fmt(shapes.radius), "fill": "#ffffff", "stroke": INK, "stroke-width": width},
        )
        + el("path", {"id": f"{prefix}-up", "d": up, "fill": "#ffffff", "stroke": ABOVE, "stroke-width": width})
        + el("path", {"id": f"{prefix}-up2", "d": up, "fill": ABOVE, "stroke": ABOVE, "stroke-width": width})
        + el("path", {"id": f"{prefix}-dn", "d": down, "fill": "#ffffff", "stroke": BELOW, "stroke-width": width})
        + el("path", {"id": f"{prefix}-dn2", "d": down, "fill": BELOW, "stroke": BELOW, "stroke-width": width})
        + el(
            "path",
            {
                "id": f"{prefix}-sq",
                "d": polyline(shapes.square, closed=True),
                "fill": "#ffffff",
                "stroke": MUTED,
                "stroke-width": width,
            },
        ),
    )


def header(h: Header) -> str:
    return text(h.title, font_size="16", font_weight="bold", fill=INK) + text(h.subtitle, font_size="12", fill=MUTED)


def axis(ticks: Sequence[Tick], cls: str) -> str:
    """Grid lines at the ticks, and their labels."""
    grid = el(
        "path", {"d": "".join(segment(*t.grid) for t in ticks), "stroke": GRID, "stroke-width": "1", "fill": "none"}
    )
    return el("g", {"class": cls, "font-size": "11", "fill": INK}, grid + "".join(text(t.label) for t in ticks))


def legend(prefix: str, entries: Sequence[LegendEntry]) -> str:
    parts: list[str] = []
    for entry in entries:
        if entry.key in LINES:
            parts.append(el("path", {"d": segment(*entry.line), "fill": "none", **LINES[entry.key]}))
        else:
            parts.append(
                el("use", {"href": f"#{prefix}-{entry.key}", "x": fmt(entry.mark[0]), "y": fmt(entry.mark[1])})
            )
        parts.append(text(entry.label))
    return el("g", {"class": "legend", "font-size": fmt(LEGEND_SIZE), "fill": INK}, "".join(parts))


def notes(rows: Sequence[Text]) -> str:
    return el("g", {"class": "notes", "font-size": fmt(NOTE_SIZE), "fill": MUTED}, "".join(text(r) for r in rows))


def document(prefix: str, width: float, height: float, title: str, desc: str, body: Iterable[str]) -> str:
    """The ``<svg>`` (no XML declaration, so it can be inlined in HTML), named by its title and description."""
    attrs: dict[str, object | None] = {
        "xmlns": "http://www.w3.org/2000/svg",
        "viewBox": f"0 0 {fmt(width)} {fmt(height)}",
        "width": "100%",
        "role": "img",
        "aria-labelledby": f"{prefix}-title {prefix}-desc",
        "font-family": FONT,
        "class": "chart",
        "id": prefix,
    }
    content = (
        el("title", {"id": f"{prefix}-title"}, esc(title))
        + el("desc", {"id": f"{prefix}-desc"}, esc(desc))
        + el("rect", {"width": fmt(width), "height": fmt(height), "fill": "#ffffff"})
        + "".join(body)
    )
    return el("svg", attrs, content)


def funnel(lay: FunnelLayout, chart_id: str = "funnel") -> str:
    prefix = safe_id(chart_id)
    body = [
        markers(prefix, lay.marks),
        header(lay.header),
        axis(lay.y_ticks, "axis-y"),
        axis(lay.x_ticks, "axis-x"),
        el("path", {"d": polyline(lay.frame), "stroke": INK, "fill": "none"}),
        text(lay.x_title, font_size="12", fill=INK),
        text(lay.y_title, font_size="12", fill=INK),
    ]
    if lay.limits:
        p = lay.plot
        clip = el("rect", {"x": fmt(p.x), "y": fmt(p.y), "width": fmt(p.width), "height": fmt(p.height)})
        body.append(el("defs", None, el("clipPath", {"id": f"{prefix}-plot"}, clip)))
        curves = "".join(
            el(
                "path",
                {"d": polyline(c.points), "fill": "none", **LINES[f"limit-{c.level:g}"], "data-level": f"{c.level:g}"},
            )
            for c in lay.limits
        )
        body.append(el("g", {"class": "limits", "clip-path": f"url(#{prefix}-plot)"}, curves))
    body.append(el("path", {"d": segment(*lay.province), "fill": "none", **LINES["province"]}))
    body.append(text(lay.province_label, font_size="11", fill=INK))
    marks = "".join(
        el(
            "use",
            {
                "href": f"#{prefix}-{FLAG_MARK[u.flag]}",
                "x": fmt(u.at[0]),
                "y": fmt(u.at[1]),
                "class": "unit",
                "data-code": u.code,
                "data-index": f"{u.index:.3f}",
                "data-n": f"{u.size:.2f}",
                "data-flag": str(u.flag),
            },
            el("title", None, esc(u.tip)),
        )
        for u in lay.units
    )
    body.append(el("g", {"class": "units", **scale_data(lay.x_scale, "x"), **scale_data(lay.y_scale, "y")}, marks))
    body += [legend(prefix, lay.legend), notes(lay.notes)]
    return document(prefix, lay.width, lay.height, lay.header.title.text, lay.desc, body)


def _caterpillar_row(prefix: str, row: CaterpillarRow) -> str:
    data: dict[str, object | None] = {
        "class": "unit",
        "data-code": row.code,
        "data-index": f"{row.index:.3f}",
        "data-lower": f"{row.lower:.3f}",
        "data-upper": f"{row.upper:.3f}",
        "data-n": str(row.n),
    }
    if row.rank is not None:
        data.update(
            {"data-rank": str(row.rank[0]), "data-rank-lower": str(row.rank[1]), "data-rank-upper": str(row.rank[2])}
        )
    bar = el("path", {"d": segment((row.bar[0], row.y), (row.bar[1], row.y))}) if row.bar else ""
    mark = TIER_MARK[row.tier] if row.ranked else "sq"
    use = el("use", {"href": f"#{prefix}-{mark}", "x": fmt(row.x), "y": fmt(row.y)})
    return el("g", data, el("title", None, esc(row.tip)) + bar + use)


def caterpillar(lay: CaterpillarLayout, chart_id: str = "caterpillar") -> str:
    prefix = safe_id(chart_id)
    body = [markers(prefix, lay.marks)]
    key = prefix
    if lay.legend_marks is not None:
        key = f"{prefix}-key"
        body.append(markers(key, lay.legend_marks))
    body += [header(lay.header), legend(key, lay.legend), text(lay.axis_title, font_size="12", fill=INK)]
    body += [text(t, font_size="12", font_weight="bold", fill=INK) for t in lay.column_heads]
    body.append(
        el("g", {"class": "axis-top", "font-size": "11", "fill": INK}, "".join(text(t) for t in lay.top_labels))
    )
    body.append(axis(lay.ticks, "axis-x"))
    bar_w = fmt(lay.bar_width)
    for tier in (1, 0, -1):
        rows = "".join(_caterpillar_row(prefix, r) for r in lay.ranked if r.tier == tier)
        if rows:
            attrs = {"class": "ranked", "data-tier": str(tier), "stroke": TIER_STROKE[tier], "stroke-width": bar_w}
            body.append(el("g", attrs, rows))
    if lay.apart_rule is not None and lay.apart_title is not None:
        body.append(el("path", {"d": segment(*lay.apart_rule), "stroke": GRID, "fill": "none"}))
        body.append(text(lay.apart_title, font_size="12", font_style="italic", fill=MUTED))
        rows = "".join(_caterpillar_row(prefix, r) for r in lay.apart)
        attrs = {"class": "unranked", "stroke": MUTED, "stroke-width": bar_w, "stroke-dasharray": "3 2"}
        body.append(el("g", attrs, rows))
    labels = [
        text(t, fill=INK if r.ranked else MUTED)
        for r in (*lay.ranked, *lay.apart)
        for t in (r.name, r.rank_label)
        if t is not None
    ]
    if labels:
        body.append(el("g", {"class": "labels", "font-size": fmt(LABEL_SIZE)}, "".join(labels)))
    target, province = lay.target, lay.province
    references = el(
        "path",
        {
            "d": segment(*target.line),
            "stroke-width": "1.4",
            "stroke-dasharray": DASH_TARGET,
            "data-value": f"{target.value:.4f}",
            "class": "target",
        },
    ) + el(
        "path",
        {
            "d": segment(*province.line),
            "stroke-width": "1.6",
            "data-value": f"{province.value:.4f}",
            "class": "province",
        },
    )
    body.append(el("g", {"class": "references", "fill": "none", "stroke": INK}, references))
    body.append(el("g", {"class": "scale", **scale_data(lay.scale, "x")}, ""))
    body.append(notes(lay.notes))
    return document(prefix, lay.width, lay.height, lay.header.title.text, lay.desc, body)


def trend(lay: TrendLayout, chart_id: str = "trend") -> str:
    parts = [header(lay.header), axis(lay.y_ticks, "axis-y")]
    if lay.band:
        parts.append(el("path", {"d": polyline(lay.band, closed=True), "fill": BAND, "stroke": "none"}))
        parts.append(el("path", {"d": polyline(lay.line), "fill": "none", "stroke": INK, "stroke-width": "2"}))
    target = {"stroke": MUTED, "stroke-dasharray": DASH_TARGET, "stroke-width": "1.5", "fill": "none"}
    parts.append(el("path", {"d": segment(*lay.target), **target}))
    parts.append(text(lay.target_label, font_size="11", fill=MUTED))
    for w in lay.waves:
        parts.append(text(w.label, font_size="11", fill=INK))
        if w.at is None or w.whisker is None:
            continue
        parts.append(el("path", {"d": segment(*w.whisker), "stroke": INK, "stroke-width": "1.5"}))
        circle = {
            "cx": fmt(w.at[0]),
            "cy": fmt(w.at[1]),
            "r": "4",
            "fill": "#ffffff",
            "stroke": INK,
            "stroke-width": "2",
            "class": "wave",
            "data-wave": w.code,
            "data-index": f"{w.index:.2f}",
            "data-lower": f"{w.lower:.2f}",
            "data-upper": f"{w.upper:.2f}",
            "data-n": w.n,
        }
        parts.append(el("circle", circle, el("title", None, esc(w.tip))))
    prefix = safe_id(chart_id)
    return document(prefix, lay.width, lay.height, lay.header.title.text, lay.desc, parts)
