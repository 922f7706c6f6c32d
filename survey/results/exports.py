"""Exports a leader takes away: league tables and scorecards (CSV and XLSX).

A league table or scorecard export is a `Table`: a header block (wave, level, filters, measure, the
methods behind the numbers, when it was made, how to read an interval), then one row per unit or
measure. `table_csv` writes it as UTF-8 with a byte-order mark (so Excel in Vietnamese opens the
diacritics right) with decimal points, through `survey.csvsafe`; `table_xlsx` as a typed workbook whose
text cells get the same defusing (a leading ``'`` before ``= + - @``, a tab or a carriage return).
Microdata and its codebook (also a `Table`) are in `survey.results.microdata`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from scoring.intervals import t_quantile
from scoring.league import tiers_against
from survey.csvsafe import BOM, csv_writer, defuse
from survey.db.models import QuestionnaireVersion, Wave
from survey.errors import NotFoundError
from survey.i18n import gettext_for
from survey.leader.labels import (
    AGGREGATIONS,
    HOW_TO_READ,
    INTERVAL_METHODS,
    RANK_METHODS,
    RELIABILITY,
    SCOPES,
    TIER_SHORT,
    WEIGHTINGS,
    Gettext,
    interval_method,
    level_label,
    measure_label,
    translated,
)
from survey.questionnaires.spec import Spec, spec_of
from survey.results.scores import WaveScores, index_layout, league_rows

Kind = Literal["text", "int", "index"]
Value = str | int | float | None
_NOT_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses to write


@dataclass(frozen=True, slots=True)
class Column:
    key: str  # a stable name (for code and tests; headings are translated)
    heading: str
    kind: Kind = "text"


@dataclass(frozen=True)
class Table:
    """What a CSV or XLSX export holds: a title, a header block of (label, value) lines, then a table."""

    title: str
    sheet: str
    filename: str  # a suggested file name without extension, ASCII
    header: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    rows: tuple[tuple[Value, ...], ...]

    def column(self, key: str) -> int:
        return [c.key for c in self.columns].index(key)


def ascii_name(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(p for p in parts if p)).strip("-") or "export"


def _pct(share: float | None) -> float | None:
    return share * 100.0 if share is not None and math.isfinite(share) else None


def _header_block(
    _: Gettext,
    ws: WaveScores,
    *,
    level_name: str | None,
    measure_name: str | None,
    filters: Sequence[str],
    timezone: str,
    scorecard: bool = False,
) -> list[tuple[str, str]]:
    lg, card, p = ws.league, ws.card, ws.province
    level_pct = f"{card.level * 100:g}"
    aggregation = translated(_, AGGREGATIONS, card.aggregation)
    if scorecard:  # every measure: criteria and composites have their own interval methods
        measure = (_("Aggregation"), aggregation)
        intervals = _(
            "{level}% intervals; criteria: {criteria}; elements and overall index: {composites}",
            level=level_pct,
            criteria=translated(_, INTERVAL_METHODS, card.method),
            composites=translated(_, INTERVAL_METHODS, card.composite_method),
        )
    else:
        measure = (_("Measure"), f"{measure_label(_, ws, measure_name)} ({aggregation})")
        intervals = f"{level_pct}% {translated(_, INTERVAL_METHODS, interval_method(ws))}"
    scope = translated(_, SCOPES, ws.scope)
    flagged = _("flagged responses left out: {count}", count=ws.excluded_flagged)
    rank = translated(_, RANK_METHODS, lg.rank_method)
    if lg.seed is not None:
        rank += "; " + _("seed {seed}, {draws} draws", seed=lg.seed, draws=lg.draws)
    made = ws.generated_at.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")
    return [
        (_("Wave"), ws.wave_code),
        (_("Level"), level_label(_, ws, level_name)),
        (_("Filters"), "; ".join([scope, flagged, *filters])),
        measure,
        (_("Target"), f"{ws.target * 100:.1f}"),
        (
            _("Province"),
            _(
                "{index} ({level}% interval {lower} to {upper}), n = {n}",
                index=f"{p.point * 100:.2f}",
                level=level_pct,
                lower=f"{p.lower * 100:.2f}",
                upper=f"{p.upper * 100:.2f}",
                n=p.n,
            ),
        ),
        (_("Minimum responses to be ranked"), str(ws.min_responses)),
        (_("Weighting"), translated(_, WEIGHTINGS, ws.weighting)),
        (_("Interval method"), intervals),
        (_("Rank method"), rank),
        (_("Responses used"), str(ws.responses)),
        (_("Generated at"), made),
        (_("How to read"), _(HOW_TO_READ, level=level_pct)),
        (_("Scale"), _("Indices are percentages of satisfied answers (0-100).")),
    ]


def league_table(
    ws: WaveScores,
    *,
    locale: str = "vi",
    response_rates: Mapping[int, float] | None = None,
    filters: Sequence[str] = (),
    level_name: str | None = None,
    measure_name: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
) -> Table:
    """The league table of ``ws`` as an export: one row per `LeagueRow`, in league order (`league_rows`).

    ``response_rates`` maps unit ids to shares in [0, 1] (responses over codes issued, or over the
    frame); the column appears only when given. ``filters`` are extra lines for the header block.
    """
    _ = gettext_for(locale)
    pct = f"{ws.card.level * 100:g}"
    columns = [
        Column("code", _("Unit code")),
        Column("name_vi", _("Name (Vietnamese)")),
        Column("name_en", _("Name (English)")),
        Column("rank", _("Rank"), "int"),
        Column("rank_lower", _("Rank interval: from"), "int"),
        Column("rank_upper", _("Rank interval: to"), "int"),
        Column("rank_lower_table", _("Rank interval for the whole table: from"), "int"),
        Column("rank_upper_table", _("Rank interval for the whole table: to"), "int"),
        Column("index", _("Index (%)"), "index"),
        Column("lower", _("{level}% interval: lower", level=pct), "index"),
        Column("upper", _("{level}% interval: upper", level=pct), "index"),
        Column("n", _("Responses (n)"), "int"),
    ]
    if response_rates is not None:
        columns.append(Column("response_rate", _("Response rate (%)"), "index"))
    columns += [
        Column("tier_target", _("Against the target")),
        Column("tier_province", _("Against the province")),
        Column("insufficient", _("Insufficient data")),
        Column("reliability", _("Reliability")),
    ]
    rows: list[tuple[Value, ...]] = []
    for r in league_rows(ws, response_rates=response_rates):
        row: list[Value] = [
            r.unit.code,
            r.unit.name_vi,
            r.unit.name_en,
            r.rank,
            r.rank_lower,
            r.rank_upper,
            r.rank_lower_table,
            r.rank_upper_table,
            _pct(r.index),
            _pct(r.lower),
            _pct(r.upper),
            r.n,
        ]
        if response_rates is not None:
            row.append(_pct(r.response_rate))
        row += [
            None if r.tier_target is None else _(TIER_SHORT[r.tier_target]),
            None if r.tier_province is None else _(TIER_SHORT[r.tier_province]),
            _("yes") if r.insufficient_data else _("no"),
            _(RELIABILITY[r.reliability]),
        ]
        rows.append(tuple(row))
    title = _("League table")
    header = _header_block(_, ws, level_name=level_name, measure_name=measure_name, filters=filters, timezone=timezone)
    header.append(
        (
            _("Tiers"),
            _(
                "Above, indistinguishable or below: from the unit's interval against the target, and from the "
                "interval of its difference from the province."
            ),
        )
    )
    return Table(
        title=title,
        sheet=title[:31],
        filename=ascii_name("league", ws.wave_code, ws.level, ws.measure),
        header=tuple(header),
        columns=tuple(columns),
        rows=tuple(rows),
    )


def scorecard_table(
    ws: WaveScores,
    unit: int | str,
    *,
    locale: str = "vi",
    spec: Spec | None = None,
    filters: Sequence[str] = (),
    level_name: str | None = None,
    timezone: str = "Asia/Ho_Chi_Minh",
) -> Table:
    """One unit's scorecard: the overall index, each element and each criterion, with intervals and n.

    ``unit`` is the unit's position in ``ws.units`` or its code. With the questionnaire ``spec`` (see
    `wave_spec`) rows are labelled and each element is followed by its criteria; without it, rows follow
    the scorecard's order (index, elements, criteria) and are named by id.
    """
    _ = gettext_for(locale)
    g = unit if isinstance(unit, int) else next((k for k, u in enumerate(ws.units) if u.code == unit), -1)
    if not 0 <= g < len(ws.units):
        raise NotFoundError(f"No unit '{unit}' at level '{ws.level}' in wave '{ws.wave_code}'.")
    card, total = ws.card, ws.total
    assert card.vs_total_se is not None
    kinds = {"index": _("Overall"), "element": _("Element"), "criterion": _("Criterion")}
    labels: dict[str, str] = {"index": _("Overall index")}
    order = [card.column("index")]
    if spec is not None:
        layout = index_layout(spec)
        for section in spec.sections:
            labels[section.id] = section.title.get(locale)
            for item in section.items:
                labels[item.id] = item.text.get(locale)
        for name, members in layout.elements:
            order.append(card.column(name))
            order += [card.column(layout.criterion_names[m]) for m in members]
    else:
        order += [k for k, kind in enumerate(card.kinds) if kind == "element"]
        order += [k for k, kind in enumerate(card.kinds) if kind == "criterion"]
    point, lower, upper = card.point[g], card.lower[g], card.upper[g]
    tier_target = tiers_against(ws.target, lower, upper)
    diff = point - total.point[0]
    half = t_quantile(card.df[g], card.level) * card.vs_total_se[g]
    tier_total = tiers_against(0.0, diff - half, diff + half)
    pct = f"{card.level * 100:g}"
    columns = (
        Column("kind", _("Kind")),
        Column("measure", _("Code")),
        Column("label", _("Label")),
        Column("index", _("Index (%)"), "index"),
        Column("lower", _("{level}% interval: lower", level=pct), "index"),
        Column("upper", _("{level}% interval: upper", level=pct), "index"),
        Column("n", _("Responses (n)"), "int"),
        Column("province", _("Province (%)"), "index"),
        Column("tier_target", _("Against the target")),
        Column("tier_province", _("Against the province")),
        Column("reliability", _("Reliability")),
    )
    rows: list[tuple[Value, ...]] = []
    for k in order:
        name = card.measures[k]
        has_data = int(card.n[g, k]) > 0 and math.isfinite(float(point[k]))
        rows.append(
            (
                kinds[card.kinds[k]],
                name,
                labels.get(name, name),
                _pct(float(point[k])),
                _pct(float(lower[k])),
                _pct(float(upper[k])),
                int(card.n[g, k]),
                _pct(float(total.point[0, k])),
                _(TIER_SHORT[int(tier_target[k])]) if has_data else None,
                _(TIER_SHORT[int(tier_total[k])]) if has_data else None,
                _(RELIABILITY[int(card.reliability[g, k])]),
            )
        )
    row = ws.units[g]
    lg = ws.league
    rank = (
        _(
            "{rank} (interval {lower} to {upper}) of {count}",
            rank=int(lg.rank[g]),
            lower=int(lg.marginal_lower[g]),
            upper=int(lg.marginal_upper[g]),
            count=int(lg.ranked.sum()),
        )
        if lg.ranked[g]
        else _("not ranked: fewer than {min} responses", min=ws.min_responses)
    )
    header = _header_block(
        _, ws, level_name=level_name, measure_name=None, filters=filters, timezone=timezone, scorecard=True
    )
    header[1:1] = [(_("Unit"), f"{row.code}: {row.name_vi} / {row.name_en}"), (_("Rank"), rank)]
    title = _("Scorecard")
    return Table(
        title=title,
        sheet=title[:31],
        filename=ascii_name("scorecard", ws.wave_code, row.code),
        header=tuple(header),
        columns=columns,
        rows=tuple(rows),
    )


def _text(value: object) -> str:
    return _NOT_XLSX.sub("\ufffd", str(value))


def _text_cell(value: object) -> str:
    return defuse(_text(value))


def _csv_value(value: Value, kind: Kind) -> Value | Decimal:
    """A cell for `survey.csvsafe`: indices as numbers with two decimals, counts as integers, else text."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if kind == "index" and isinstance(value, int | float):
        return Decimal(f"{value:.2f}")
    if kind == "int" and isinstance(value, int | float):
        return int(value)
    return _text(value)


def table_csv(table: Table) -> bytes:
    """The table as CSV: UTF-8 with a BOM, comma-separated, decimal points, the header block first.

    Layout: the title; one ``label,value`` line per header entry; an empty line; the column headings;
    the rows. Indices have two decimals, counts none; empty cells mean "no value".
    """
    buf = io.StringIO()
    writer = csv_writer(buf)
    writer.writerow([_text(table.title)])
    writer.writerows([_text(label), _text(value)] for label, value in table.header)
    writer.writerow([])
    writer.writerow([_text(c.heading) for c in table.columns])
    for row in table.rows:
        writer.writerow([_csv_value(v, c.kind) for v, c in zip(row, table.columns, strict=True)])
    return (BOM + buf.getvalue()).encode("utf-8")


_FORMATS: dict[Kind, str] = {"index": "0.0", "int": "0", "text": "@"}


def table_xlsx(table: Table) -> bytes:
    """The table as an XLSX workbook: header block, bold headings with a filter, typed numbers.

    Numbers keep full precision (shown with one decimal); text cells are stored as text, never formulas.
    """
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.title = re.sub(r"[\[\]:*?/\\]", " ", table.sheet)[:31] or "Sheet"
    wb.properties.title = table.title
    wb.properties.creator = "SIPAS platform"
    bold = Font(bold=True)

    def put(r: int, c: int, value: Value, kind: Kind = "text") -> None:
        cell = sheet.cell(row=r, column=c)
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return
        if kind == "text" or not isinstance(value, int | float):
            cell.value = _text_cell(value)
            cell.data_type = "s"
        else:
            cell.value = value
            cell.number_format = _FORMATS[kind]

    put(1, 1, table.title)
    sheet.cell(row=1, column=1).font = Font(bold=True, size=14)
    r = 1
    for label, text in table.header:
        r += 1
        put(r, 1, label)
        sheet.cell(row=r, column=1).font = bold
        put(r, 2, text)
    head = r + 2
    for c, column in enumerate(table.columns, start=1):
        put(head, c, column.heading)
        cell = sheet.cell(row=head, column=c)
        cell.font = bold
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for k, row in enumerate(table.rows, start=head + 1):
        for c, (value, column) in enumerate(zip(row, table.columns, strict=True), start=1):
            put(k, c, value, column.kind)
    last = get_column_letter(len(table.columns))
    sheet.freeze_panes = sheet.cell(row=head + 1, column=1)
    sheet.auto_filter.ref = f"A{head}:{last}{head + max(len(table.rows), 1)}"
    for c, column in enumerate(table.columns, start=1):
        longest = max([len(str(row[c - 1] or "")) for row in table.rows[:200]] + [len(column.heading) // 2, 6])
        sheet.column_dimensions[get_column_letter(c)].width = min(48, longest + 2 if column.kind == "text" else 12)
    if len(table.columns) > 1:  # the header block's labels are longer than the first column's values
        sheet.column_dimensions["A"].width = max(sheet.column_dimensions["A"].width or 0, 28)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def wave_spec(engine: Engine, *, wave_code: str) -> Spec:
    """The questionnaire spec of a wave (to label scorecards and microdata)."""
    with Session(engine) as session:
        wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
        if wave is None:
            raise NotFoundError(f"No wave with code '{wave_code}'.")
        version = session.get(QuestionnaireVersion, wave.questionnaire_version_id)
        assert version is not None
        return spec_of(version)
