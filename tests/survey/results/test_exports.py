"""Exports: league tables and scorecards as CSV and XLSX carry the engine's numbers under a header block,
formulas are defused, and microdata leaves out everything that could identify a respondent."""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import QuestionnaireVersion, Response, Unit, Wave
from survey.demo.load import CURRENT_WAVE, DemoSummary
from survey.errors import NotFoundError
from survey.results.arrays import load_wave
from survey.results.exports import Table, league_table, scorecard_table, table_csv, table_xlsx, wave_spec
from survey.results.microdata import wave_microdata
from survey.results.scores import WaveScores, wave_scores

Demo = tuple[Engine, DemoSummary, str]
HEADER_LABELS = (
    "Wave",
    "Level",
    "Filters",
    "Measure",
    "Weighting",
    "Interval method",
    "Rank method",
    "Generated at",
    "How to read",
)


@pytest.fixture(scope="module")
def districts(demo_db: Demo) -> WaveScores:
    return wave_scores(demo_db[0], wave_code=CURRENT_WAVE, level="district")


def _csv_parts(data: bytes) -> tuple[list[list[str]], list[dict[str, str]]]:
    """(the title and header block, the table as dicts) from an exported CSV."""
    assert data.startswith(b"\xef\xbb\xbf")  # UTF-8 with a BOM
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    blank = lines.index([])
    head, body = lines[:blank], lines[blank + 1 :]
    return head, [dict(zip(body[0], row, strict=True)) for row in body[1:]]


def _xlsx_parts(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], list[list[Any]]]:
    """(header block as a dict, the table as dicts, every cell) from an exported workbook."""
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet is not None
    cells: list[list[Any]] = [list(row) for row in sheet.iter_rows()]
    values = [[c.value for c in row] for row in cells]
    blank = next(k for k, row in enumerate(values) if k > 0 and all(v is None for v in row))
    header = {str(row[0]): row[1] for row in values[1:blank]}
    headings = values[blank + 1]
    table = [dict(zip(headings, row, strict=True)) for row in values[blank + 2 :]]
    return header, table, cells


def test_league_xlsx_holds_the_engines_numbers(districts: WaveScores) -> None:
    ws, lg = districts, districts.league
    rates = {ws.units[0].id: 0.42}
    header, rows, cells = _xlsx_parts(table_xlsx(league_table(ws, locale="en", response_rates=rates)))
    for label in HEADER_LABELS:
        assert header[label], label
    assert header["Wave"] == CURRENT_WAVE and "95% confidence" in str(header["How to read"])
    assert str(header["Rank method"]).endswith("seed 20240101, 1000 draws")
    by_code = {r["Unit code"]: r for r in rows}
    assert len(by_code) == len(ws.units)
    tiers = {1: "Above", 0: "Indistinguishable", -1: "Below"}
    for i, unit in enumerate(ws.units):
        row, e = by_code[unit.code], ws.estimate(i)
        assert (row["Name (Vietnamese)"], row["Name (English)"]) == (unit.name_vi, unit.name_en)
        assert row["Index (%)"] == pytest.approx(e.point * 100, abs=1e-9)
        assert row["95% interval: lower"] == pytest.approx(e.lower * 100, abs=1e-9)
        assert row["95% interval: upper"] == pytest.approx(e.upper * 100, abs=1e-9)
        assert row["Responses (n)"] == e.n
        assert row["Rank"] == (lg.rank[i] if lg.ranked[i] else None)
        assert (row["Rank interval: from"], row["Rank interval: to"]) == (
            (lg.marginal_lower[i], lg.marginal_upper[i]) if lg.ranked[i] else (None, None)
        )
        assert row["Rank interval for the whole table: from"] == (lg.simultaneous_lower[i] if lg.ranked[i] else None)
        assert row["Against the target"] == tiers[int(lg.tier_target[i])]
        assert row["Against the province"] == tiers[int(lg.tier_total[i])]
        assert row["Insufficient data"] == ("no" if lg.ranked[i] else "yes")
        assert row["Response rate (%)"] == (pytest.approx(42.0) if unit.id == ws.units[0].id else None)
    ranks = [r["Rank"] for r in rows if r["Rank"] is not None]
    assert ranks == sorted(ranks)  # in rank order
    assert all(c.data_type != "f" for row in cells for c in row)  # no formula anywhere


def test_league_csv_parses_back_with_the_same_numbers(districts: WaveScores) -> None:
    ws = districts
    head, rows = _csv_parts(table_csv(league_table(ws, locale="en")))
    assert head[0] == ["League table"]
    header = dict(head[1:])
    for label in HEADER_LABELS:
        assert header[label], label
    assert "Response rate (%)" not in rows[0]  # only when rates are given
    by_code = {r["Unit code"]: r for r in rows}
    for i, unit in enumerate(ws.units):
        row, e = by_code[unit.code], ws.estimate(i)
        assert float(row["Index (%)"]) == pytest.approx(round(e.point * 100, 2), abs=1e-9)
        assert float(row["95% interval: lower"]) == pytest.approx(round(e.lower * 100, 2), abs=1e-9)
        assert float(row["95% interval: upper"]) == pytest.approx(round(e.upper * 100, 2), abs=1e-9)
        assert int(row["Responses (n)"]) == e.n
        assert row["Rank"] == (str(ws.league.rank[i]) if ws.league.ranked[i] else "")
    # Vietnamese headings and diacritics survive the round trip
    vi_head, vi_rows = _csv_parts(table_csv(league_table(ws, locale="vi")))
    assert vi_head[0] == ["Bảng xếp hạng"] and dict(vi_head[1:])["Cách đọc"].startswith("Cách đọc khoảng tin cậy")
    assert {"Mã đơn vị", "Tên (tiếng Việt)", "Chỉ số (%)"} <= set(vi_rows[0])
    assert any(r["Tên (tiếng Việt)"] == "Huyện Gò Dầu" for r in vi_rows)


def test_formula_injection_is_defused(districts: WaveScores) -> None:
    hostile = ('=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)")
    units = tuple(
        replace(u, name_vi=hostile[k % 4], name_en=f"\t{hostile[k % 4]}", code=f"={u.code}")
        for k, u in enumerate(districts.units)
    )
    table = league_table(replace(districts, units=units), locale="en", filters=["=cmd|' /C calc'!A0"])
    head, rows = _csv_parts(table_csv(table))
    assert dict(head[1:])["Filters"].endswith("; =cmd|' /C calc'!A0")  # inside a cell that starts with text
    for row in rows:
        assert row["Unit code"].startswith("'=")
        assert row["Name (Vietnamese)"].startswith("'") and row["Name (Vietnamese)"][1:] in hostile
        assert row["Name (English)"].startswith("'\t")
    _, xrows, cells = _xlsx_parts(table_xlsx(table))
    assert all(c.data_type != "f" for row in cells for c in row)
    for xrow in xrows:
        assert str(xrow["Unit code"]).startswith("'=") and str(xrow["Name (Vietnamese)"])[0] == "'"
    # numbers stay numbers (a negative change would not be quoted)
    assert all(isinstance(r["Index (%)"], float) for r in xrows)


def test_scorecard_lists_every_index_with_its_interval(demo_db: Demo, districts: WaveScores) -> None:
    engine = demo_db[0]
    ws = districts
    spec = wave_spec(engine, wave_code=CURRENT_WAVE)
    g = next(k for k, u in enumerate(ws.units) if u.code == "GD")
    table = scorecard_table(ws, "GD", locale="en", spec=spec)
    assert table.column("index") == 3
    header, rows, _ = _xlsx_parts(table_xlsx(table))
    assert header["Unit"] == "GD: Huyện Gò Dầu / Gò Dầu District" and header["Wave"] == CURRENT_WAVE
    assert "How to read" in header and "Generated at" in header
    card = ws.card
    assert [r["Code"] for r in rows][:3] == ["index", "access", "access_signs"]  # each element, then its criteria
    assert sorted(str(r["Code"]) for r in rows) == sorted(card.measures)
    kinds = {"index": "Overall", "element": "Element", "criterion": "Criterion"}
    for row in rows:
        k = card.column(str(row["Code"]))
        assert row["Kind"] == kinds[card.kinds[k]]
        assert row["Index (%)"] == pytest.approx(card.point[g, k] * 100, abs=1e-9)
        assert row["95% interval: lower"] == pytest.approx(card.lower[g, k] * 100, abs=1e-9)
        assert row["95% interval: upper"] == pytest.approx(card.upper[g, k] * 100, abs=1e-9)
        assert row["Responses (n)"] == card.n[g, k]
        assert row["Province (%)"] == pytest.approx(ws.total.point[0, k] * 100, abs=1e-9)
    labels = {r["Code"]: r["Label"] for r in rows}
    assert labels["access"] == "Access to the service" and labels["index"] == "Overall index"
    _, csv_rows = _csv_parts(table_csv(scorecard_table(ws, g, locale="vi", spec=spec)))
    assert csv_rows[0]["Loại"] == "Chung" and csv_rows[1]["Nội dung"] == "Tiếp cận dịch vụ"
    assert float(csv_rows[0]["Chỉ số (%)"]) == pytest.approx(round(ws.estimate(g).point * 100, 2))
    without_spec = scorecard_table(ws, g, locale="en")
    assert [r[1] for r in without_spec.rows][:2] == ["index", "access"]
    with pytest.raises(NotFoundError, match="No unit 'nope'"):
        scorecard_table(ws, "nope")


def _wave_ids(engine: Engine) -> tuple[int, int]:
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        return int(wave.id or 0), wave.questionnaire_version_id


def test_microdata_leaves_out_what_identifies_people(demo_db: Demo) -> None:
    engine = demo_db[0]
    wave_id, version_id = _wave_ids(engine)
    spec = wave_spec(engine, wave_code=CURRENT_WAVE)
    md = wave_microdata(engine, wave_code=CURRENT_WAVE, min_cell=1)  # k = 1: every row as recorded
    data = md.to_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    reader = csv.reader(io.StringIO(data.decode("utf-8-sig")))
    columns = next(reader)
    rows = list(reader)
    lowered = [c.lower() for c in columns]
    for banned in ("id", "response_id", "comment", "submitted_at", "time", "date", "service_point", "submission_key"):
        assert banned not in lowered
    assert not any("comment" in c or c == "time" or "submitted" in c for c in lowered)
    assert columns[:6] == ["wave", "unit_code", "field_code", "channel", "questionnaire", "flags"]
    expected_answers = [c.item if c.option is None else f"{c.item}__{c.option}" for c in spec.layout]
    assert columns[6:] == expected_answers
    # one row per response: the counts per unit equal what the wave loads
    arrays = load_wave(engine, wave_id=wave_id, version_id=version_id, spec=spec)
    with Session(engine) as s:
        codes = dict(s.execute(select(col(Unit.id), col(Unit.code))).all())
        comments = [c for c in s.scalars(select(col(Response.comment)).where(col(Response.wave_id) == wave_id)) if c]
        version = s.get(QuestionnaireVersion, version_id)
        assert version is not None
    assert len(rows) == arrays.n == md.n
    assert Counter(r[1] for r in rows) == Counter(codes[int(u)] for u in arrays.unit_id)
    assert all(r[0] == CURRENT_WAVE and r[4] == f"{spec.code} v{spec.version}" for r in rows)
    assert {r[3] for r in rows} <= {"receipt", "counter", "kiosk", "paper"}
    # the answers are the stored ones (as a multiset: the rows are re-ordered on purpose)
    exported = np.array([[int(v) for v in r[6:]] for r in rows], dtype=np.int64)
    stored = arrays.answers.astype(np.int64)
    assert np.array_equal(exported[np.lexsort(exported.T[::-1])], stored[np.lexsort(stored.T[::-1])])
    assert [int(r[5]) for r in rows].count(0) == int((arrays.flags == 0).sum())
    # not in arrival order: sorted by unit code
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    # no free-text comment leaks, even partly
    text = data.decode("utf-8-sig")
    assert comments and not any(c[:20] in text for c in comments if len(c) >= 20)


def test_codebook_names_every_column_and_says_what_was_left_out(demo_db: Demo) -> None:
    engine = demo_db[0]
    md = wave_microdata(engine, wave_code=CURRENT_WAVE)
    book: Table = md.codebook("en")
    head, rows = _csv_parts(table_csv(book))
    assert [r["Column"] for r in rows] == list(md.columns)
    left_out = dict(head[1:])["Left out"]
    assert "comment" in left_out and "identify people" in left_out and "submission time" in left_out
    codes = {r["Column"]: r["Codes"] for r in rows}
    assert (
        codes["access_signs"].startswith("0 = not answered; 1 = Very dissatisfied")
        and "255 = not applicable" in codes["access_signs"]
    )
    assert codes["improve__attitude"] == "1 = chosen; 0 = not chosen"
    vi_head, vi_rows = _csv_parts(table_csv(md.codebook("vi")))
    assert "ý kiến" in dict(vi_head[1:])["Không đưa vào"] and vi_rows[6]["Ý nghĩa"].startswith("Biển chỉ dẫn")
    lean = wave_microdata(engine, wave_code=CURRENT_WAVE, include_profile=False)
    assert not {"respondent_type", "age_band", "sex"} & set(lean.columns)
    assert "left out" in dict(_csv_parts(table_csv(lean.codebook("en")))[0][1:])["Small groups"]
    with pytest.raises(NotFoundError, match="No wave with code 'nope'"):
        wave_microdata(engine, wave_code="nope")
