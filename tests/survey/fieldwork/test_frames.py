"""Import of transaction counts from CSV and XLSX files as a one-stop system exports them, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner, Result
from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli import main
from survey.db.audited import count_rows
from survey.db.models import AuditLog, FrameCount, ProcedureField, Unit
from survey.fieldwork import frames
from survey.fieldwork.frames import (
    FrameError,
    FrameImportError,
    ImportReport,
    import_frame,
    parse_count,
    parse_month,
    read_frame_file,
)
from survey.settings import Settings
from tests.conftest import cli_settings
from tests.factories import build_world, zip_bomb

BOM = "\ufeff"
VI_HEADER = "Mã đơn vị;Tên đơn vị;Mã lĩnh vực;Kỳ;Số hồ sơ"


@dataclass
class Place:
    """A fresh unit pair and field (own codes, so each test starts with no counts of its own)."""

    unit_id: int
    other_unit_id: int
    field_id: int
    unit: str
    other: str
    field: str


@pytest.fixture()
def place(engine: Engine) -> Place:
    world = build_world(engine)
    with Session(engine) as s:
        unit = s.scalars(select(col(Unit.code)).where(col(Unit.id) == world.unit_id)).one()
        other = s.scalars(select(col(Unit.code)).where(col(Unit.id) == world.other_unit_id)).one()
        fld = s.scalars(select(col(ProcedureField.code)).where(col(ProcedureField.id) == world.field_id)).one()
    return Place(world.unit_id, world.other_unit_id, world.field_id, unit, other, fld)


def write_csv(path: Path, lines: list[str], *, bom: bool = True) -> Path:
    path.write_bytes(((BOM if bom else "") + "\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def write_xlsx(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "So lieu"
    for row in rows:
        sheet.append(row)
    for cell in sheet["C"][1:]:
        if isinstance(cell.value, datetime):
            cell.number_format = "mm/yyyy"
    book.create_sheet("Ghi chú").append(["ignored", "sheet"])
    book.save(path)
    return path


def counts(engine: Engine, place: Place) -> dict[tuple[int, int, date], tuple[date, int]]:
    with Session(engine) as s:
        rows = s.scalars(
            select(FrameCount).where(col(FrameCount.unit_id).in_([place.unit_id, place.other_unit_id]))
        ).all()
        return {(r.unit_id, r.field_id, r.period_start): (r.period_end, r.transactions) for r in rows}


def total(engine: Engine) -> int:
    with Session(engine) as s:
        return count_rows(s, FrameCount)


def do_import(
    engine: Engine, path: Path, *, period_from: date | None = None, period_to: date | None = None
) -> ImportReport:
    rows = read_frame_file(path)
    with Session(engine) as s:
        return import_frame(
            s, rows=rows, source_name=path.name, actor="test", period_from=period_from, period_to=period_to
        )


def failure(engine: Engine, path: Path, **bounds: date) -> list[FrameError]:
    """The errors of a file that must not import, checking that the table did not change."""
    before = total(engine)
    with pytest.raises(FrameImportError) as info:
        do_import(engine, path, **bounds)
    assert total(engine) == before, "a rejected file wrote counts"
    assert info.value.status_code == 400
    assert info.value.errors
    return info.value.errors


# --- valid files ------------------------------------------------------------------------------------------


def test_csv_with_vietnamese_headers_bom_semicolons_and_separators(
    engine: Engine, place: Place, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "so_lieu_ho_so.csv",
        [
            VI_HEADER,
            f"{place.unit};Xã Thử Nghiệm;{place.field};2026-01;1.234",
            f"{place.unit};Xã Thử Nghiệm;{place.field};02/2026;2.500,00",
            f"{place.unit};Xã Thử Nghiệm;{place.field};3/2026;0",
            ";;;;",  # blank rows at the end of an export are ignored
            f" {place.other} ;Xã Bên Cạnh;{place.field};T4/2026;12",
        ],
    )
    before = total(engine)
    report = do_import(engine, path)
    assert (report.rows, report.inserted, report.replaced) == (4, 4, 0)
    assert total(engine) == before + 4
    assert counts(engine, place) == {
        (place.unit_id, place.field_id, date(2026, 1, 1)): (date(2026, 1, 31), 1234),
        (place.unit_id, place.field_id, date(2026, 2, 1)): (date(2026, 2, 28), 2500),
        (place.unit_id, place.field_id, date(2026, 3, 1)): (date(2026, 3, 31), 0),
        (place.other_unit_id, place.field_id, date(2026, 4, 1)): (date(2026, 4, 30), 12),
    }


@pytest.mark.parametrize("delimiter", [",", "\t"])
def test_csv_with_english_headers_commas_or_tabs_and_no_bom(
    engine: Engine, place: Place, tmp_path: Path, delimiter: str
) -> None:
    big = '"1,234"' if delimiter == "," else "1,234"
    path = write_csv(
        tmp_path / "frame.csv",
        [
            delimiter.join(["Unit code", "Field code", "Period", "Transactions"]),
            delimiter.join([place.unit, place.field, "2026-05", big]),
            delimiter.join([place.unit, place.field, "2026-06-01", "7"]),
        ],
        bom=False,
    )
    do_import(engine, path)
    assert counts(engine, place) == {
        (place.unit_id, place.field_id, date(2026, 5, 1)): (date(2026, 5, 31), 1234),
        (place.unit_id, place.field_id, date(2026, 6, 1)): (date(2026, 6, 30), 7),
    }


def test_xlsx_with_excel_dates(engine: Engine, place: Place, tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "bao_cao.xlsx",
        [
            ["MÃ ĐƠN VỊ", "Tên đơn vị", "Tháng", "Mã Lĩnh Vực", "Số hồ sơ"],
            [place.unit, "Xã Thử Nghiệm", datetime(2025, 11, 1), place.field, 310],
            [place.unit, "Xã Thử Nghiệm", datetime(2025, 12, 1, 0, 0), place.field, 1234.0],
            [place.other, "Xã Bên Cạnh", date(2026, 1, 15), place.field, "1.050"],
            [place.other, "Xã Bên Cạnh", "02/2026", place.field, 4],
            [None, None, None, None, None],
        ],
    )
    report = do_import(engine, path, period_from=date(2025, 11, 1), period_to=date(2026, 2, 1))
    assert (report.rows, report.replaced) == (4, 0)
    assert counts(engine, place) == {
        (place.unit_id, place.field_id, date(2025, 11, 1)): (date(2025, 11, 30), 310),
        (place.unit_id, place.field_id, date(2025, 12, 1)): (date(2025, 12, 31), 1234),
        (place.other_unit_id, place.field_id, date(2026, 1, 1)): (date(2026, 1, 31), 1050),
        (place.other_unit_id, place.field_id, date(2026, 2, 1)): (date(2026, 2, 28), 4),
    }


def test_reimport_replaces_instead_of_duplicating_and_is_audited(engine: Engine, place: Place, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "thang_3.csv",
        [VI_HEADER, f"{place.unit};;{place.field};03/2026;100", f"{place.other};;{place.field};03/2026;50"],
    )
    do_import(engine, first)
    before = total(engine)
    corrected = write_csv(
        tmp_path / "thang_3_sua.csv",
        [
            VI_HEADER,
            f"{place.unit};;{place.field};03/2026;120",
            f"{place.other};;{place.field};03/2026;50",
            f"{place.other};;{place.field};04/2026;60",
        ],
    )
    report = do_import(engine, corrected)
    assert (report.rows, report.inserted, report.replaced) == (3, 1, 2)
    assert total(engine) == before + 1
    assert counts(engine, place)[(place.unit_id, place.field_id, date(2026, 3, 1))] == (date(2026, 3, 31), 120)
    with Session(engine) as s:
        entries = s.scalars(
            select(AuditLog).where(col(AuditLog.action) == "import_frame").order_by(col(AuditLog.id).desc())
        ).all()
    mine = [e for e in entries if e.after and e.after.get("source") in ("thang_3.csv", "thang_3_sua.csv")]
    assert [(e.entity, e.actor, e.after) for e in mine[:2]] == [
        ("frame_count", "test", {"source": "thang_3_sua.csv", "rows": 3, "replaced": 2}),
        ("frame_count", "test", {"source": "thang_3.csv", "rows": 2, "replaced": 0}),
    ]


def test_a_rejected_file_writes_no_audit_entry(engine: Engine, place: Place, tmp_path: Path) -> None:
    with Session(engine) as s:
        before = count_rows(s, AuditLog)
    failure(engine, write_csv(tmp_path / "x.csv", [VI_HEADER, f"{place.unit};;{place.field};2026-01;-1"]))
    with Session(engine) as s:
        assert count_rows(s, AuditLog) == before


# --- files that must not import ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_line", "column", "words"),
    [
        ("NOPE;;{field};2026-01;5", "Mã đơn vị", "no unit with code 'NOPE'"),
        ("{unit};;nofield;2026-01;5", "Mã lĩnh vực", "no procedure field with code 'nofield'"),
        ("{unit};;{field};2026-01;-5", "Số hồ sơ", "cannot be negative"),
        ("{unit};;{field};2026-01;abc", "Số hồ sơ", "'abc' is not a number"),
        ("{unit};;{field};2026-01;12,5", "Số hồ sơ", "'12,5' is not a whole number"),
        ("{unit};;{field};2026-01;", "Số hồ sơ", "empty"),
        ("{unit};;{field};13/2026;5", "Kỳ", "'13/2026' is not a month"),
        ("{unit};;{field};2027-01;5", "Kỳ", "2027-01 is outside this import (2026-01 to 2026-12)"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(
    engine: Engine, place: Place, tmp_path: Path, bad_line: str, column: str, words: str
) -> None:
    path = write_csv(
        tmp_path / "bad.csv",
        [
            VI_HEADER,
            f"{place.unit};;{place.field};2026-02;10",
            f"{place.other};;{place.field};2026-02;11",
            bad_line.format(unit=place.unit, field=place.field),
        ],
    )
    errors = failure(engine, path, period_from=date(2026, 1, 1), period_to=date(2026, 12, 1))
    assert len(errors) == 1
    assert (errors[0].row, errors[0].column) == (4, column)
    assert words in errors[0].message
    assert str(errors[0]).startswith(f"row 4, column {column}: ")
    assert counts(engine, place) == {}


def test_duplicate_rows_are_named_with_the_earlier_row(engine: Engine, place: Place, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "dup.csv",
        [
            VI_HEADER,
            f"{place.unit};;{place.field};2026-03;10",
            f"{place.other};;{place.field};2026-03;10",
            f"{place.unit};;{place.field};03/2026;12",  # the same month written differently
        ],
    )
    [error] = failure(engine, path)
    assert error.row == 4
    assert "already on row 2" in error.message
    assert counts(engine, place) == {}


def test_every_problem_of_a_file_is_reported_at_once(engine: Engine, place: Place, tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "many.xlsx",
        [
            ["unit", "field", "period", "count"],
            [place.unit, place.field, datetime(2026, 1, 1), 5],
            ["NOPE", place.field, datetime(2026, 1, 1), "abc"],
            [place.unit, "nofield", "2026-13", 12.5],
            [place.unit, place.field, datetime(2026, 1, 1), 7],
        ],
    )
    errors = failure(engine, path)
    assert [(e.row, e.column) for e in errors] == [
        (3, "count"),
        (3, "unit"),
        (4, "period"),
        (4, "count"),
        (4, "field"),
        (5, None),
    ]


def test_missing_columns_are_named(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "thieu.csv", ["Mã đơn vị;Kỳ;Ghi chú", "X;2026-01;"])
    with pytest.raises(FrameImportError) as info:
        read_frame_file(path)
    assert [(e.row, e.column) for e in info.value.errors] == [(1, "Mã lĩnh vực"), (1, "Số hồ sơ")]
    assert "no column for the number of transactions" in info.value.errors[1].message


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("empty.csv", b"", "empty"),
        ("blank.csv", b"\xef\xbb\xbf\r\n;;\r\n", "empty"),
        ("header_only.csv", (BOM + VI_HEADER + "\r\n").encode(), "no counts"),
        ("counts.xls", b"\xd0\xcf\x11\xe0 old excel", "not a CSV or XLSX file"),
        ("counts.pdf", b"%PDF-1.4", "not a CSV or XLSX file"),
        ("fake.xlsx", b"Ma don vi;Ky\r\n", "not a readable Excel workbook"),
        ("latin.csv", "Mã;Tên\r\n".encode("cp1252"), "not UTF-8"),
    ],
)
def test_unreadable_files_are_refused(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FrameImportError) as info:
        read_frame_file(path)
    assert words in str(info.value)


def test_empty_xlsx_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FrameImportError, match="empty"):
        read_frame_file(write_xlsx(tmp_path / "empty.xlsx", []))


def test_a_workbook_whose_sheet_is_not_xml_is_refused_in_words(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", [["unit", "field", "period", "count"], ["U", "F", "2026-01", 1]])
    broken = io.BytesIO()
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(broken, "w") as out:
        for member in source.infolist():
            out.writestr(member, b"<row" if member.filename.endswith("sheet1.xml") else source.read(member))
    path = tmp_path / "broken.xlsx"
    path.write_bytes(broken.getvalue())
    with pytest.raises(FrameImportError, match="not a readable Excel workbook"):
        read_frame_file(path)


# --- limits -----------------------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_openpyxl_opens_it(
    engine: Engine, place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[list[object]] = [["unit", "field", "period", "count"], [place.unit, place.field, "2026-01", 5]]
    good = write_xlsx(tmp_path / "good.xlsx", rows)
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(zip_bomb(good.read_bytes(), unpacked=frames.MAX_FRAME_UNPACKED + 1))
    assert path.stat().st_size < 1024 * 1024  # small on disk: only its zip directory tells
    opened: list[object] = []
    real_load = openpyxl.load_workbook

    def load_workbook(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", load_workbook)
    errors = failure(engine, path)
    assert [e.message for e in errors] == [
        "The workbook unpacks to more than 64 MB. Keep only the sheet to import, or save it as CSV."
    ]
    assert opened == [] and counts(engine, place) == {}
    assert do_import(engine, good).rows == 1 and len(opened) == 1  # the same rows without the padding import


def test_a_workbook_compressed_beyond_any_real_one_is_refused(tmp_path: Path) -> None:
    good = write_xlsx(tmp_path / "good.xlsx", [["unit", "field", "period", "count"], ["U", "F", "2026-01", 5]])
    path = tmp_path / "dense.xlsx"
    path.write_bytes(zip_bomb(good.read_bytes(), unpacked=8 * 1024 * 1024))
    with pytest.raises(FrameImportError, match=r"unpacks to \d[\d ]* times its size, which no real workbook does"):
        read_frame_file(path)


def test_a_file_over_the_row_limit_is_refused_whole(
    cli_env: None, engine: Engine, place: Place, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [VI_HEADER] + [f"{place.unit};;{place.field};2026-01;{i}" for i in range(frames.MAX_FRAME_ROWS + 1)]
    path = write_csv(tmp_path / "so_lieu.csv", lines)
    before = total(engine)
    result = run("frame", "import", str(path))
    assert result.exit_code == 1
    assert "The file has more than 100 000 rows; split it by month." in result.output
    assert "nothing was written" in result.output and total(engine) == before
    # an XLSX counts its rows the same way (a lower limit keeps the workbook small)
    monkeypatch.setattr(frames, "MAX_FRAME_ROWS", 1)
    rows: list[list[object]] = [["unit", "field", "period", "count"]]
    rows += [[place.unit, place.field, f"2026-0{m}", 5] for m in (1, 2)]
    errors = failure(engine, write_xlsx(tmp_path / "two.xlsx", rows))
    assert [e.message for e in errors] == ["The file has more than 1 rows; split it by month."]
    assert counts(engine, place) == {}
    # the limit counts data rows: a header, a blank row and exactly MAX_FRAME_ROWS rows import
    monkeypatch.setattr(frames, "MAX_FRAME_ROWS", 2)
    assert do_import(engine, write_xlsx(tmp_path / "two.xlsx", [rows[0], [], *rows[1:]])).rows == 2


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as fh:
        fh.truncate(frames.MAX_FRAME_BYTES + 1)  # sparse: the size is all there is to it
    with pytest.raises(FrameImportError, match=r"The file is larger than 20 MB; split it by month."):
        read_frame_file(path)


# --- values -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("1234", 1234),
        ("1.234", 1234),
        ("1,234", 1234),
        ("1 234", 1234),
        ("1.234.567", 1234567),
        ("1.234,00", 1234),
        ("1,234.00", 1234),
        ("12,0", 12),
        (17, 17),
        (17.0, 17),
    ],
)
def test_counts_read_thousands_separators(text: str | int | float, value: int) -> None:
    assert parse_count(text) == value


@pytest.mark.parametrize("text", ["12,5", "1.5", "1.234,5", "12.5", "abc", "-1", "1..234", "12,", ""])
def test_counts_refuse_fractions_and_words(text: str | float) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


@pytest.mark.parametrize(
    "value", ["2026-03", "03/2026", "3/2026", "2026-3", "T3/2026", "Tháng 03/2026", "2026-03-17", "17/03/2026"]
)
def test_months_in_every_usual_spelling(value: str) -> None:
    assert parse_month(value) == date(2026, 3, 1)
    assert parse_month(datetime(2026, 3, 9, 8, 30)) == date(2026, 3, 1)


# --- the command ------------------------------------------------------------------------------------------


@pytest.fixture()
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    with cli_settings(monkeypatch, tmp_path, settings.database_url):
        yield


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def test_cli_imports_a_file_and_replaces_on_the_second_run(
    cli_env: None, engine: Engine, place: Place, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "frame.csv",
        [VI_HEADER, f"{place.unit};;{place.field};2026-01;1.200", f"{place.other};;{place.field};2026-01;30"],
    )
    result = run("frame", "import", str(path), "--from", "2026-01", "--to", "2026-12")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "imported 2 rows (0 replaced)"
    result = run("frame", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "imported 2 rows (2 replaced)"
    assert counts(engine, place)[(place.unit_id, place.field_id, date(2026, 1, 1))] == (date(2026, 1, 31), 1200)


def test_cli_prints_every_error_and_writes_nothing(cli_env: None, engine: Engine, place: Place, tmp_path: Path) -> None:
    lines = [VI_HEADER] + [f"{place.unit};;{place.field};2026-{m:02d};{m}" for m in range(1, 6)]
    lines.append(f"{place.unit};;{place.field};2026-06;12,5")
    lines.append(f"NOPE;;{place.field};2027-01;5")
    path = write_csv(tmp_path / "frame.csv", lines)
    before = total(engine)
    result = run("frame", "import", str(path), "--from", "2026-01", "--to", "2026-12")
    assert result.exit_code == 1
    assert "nothing was written" in result.output
    assert "row 7, column Số hồ sơ: '12,5' is not a whole number" in result.output
    assert "row 8, column Kỳ: 2027-01 is outside this import (2026-01 to 2026-12)" in result.output
    assert "row 8, column Mã đơn vị: There is no unit with code 'NOPE'" in result.output
    assert total(engine) == before
    assert counts(engine, place) == {}


def test_cli_refuses_a_bad_month_option_and_a_missing_file(cli_env: None, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "frame.csv", [VI_HEADER])
    result = run("frame", "import", str(path), "--from", "January")
    assert result.exit_code == 2 and "not a month" in result.output
    result = run("frame", "import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 1 and "Cannot read 'missing.csv'" in result.output
