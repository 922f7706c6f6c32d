"""Import of units or service points from a CSV or XLSX file: checked whole, written all or nothing.

Reading follows :mod:`survey.fieldwork.frames` (and reuses its readers): UTF-8 with or without BOM, UTF-16 from
Excel's "Unicode text", ``,`` ``;`` or tab; or the first sheet of an .xlsx workbook. Row 1 (the first
non-blank row) names the columns, in Vietnamese or English, matched without regard to case or diacritics.

Units (one row per new unit; the parent is an existing unit of the importer's subtree or a unit of the
same file, in any order):

============  =================================================================
code          ``Mã đơn vị``, ``ma``, ``code``, ``unit_code``
name_vi       ``Tên đơn vị``, ``Tên``, ``name_vi``, ``name``
name_en       ``Tên tiếng Anh``, ``name_en`` (optional; the Vietnamese name when blank)
level code    ``Mã cấp``, ``Cấp``, ``level``, ``level_code``
parent code   ``Mã đơn vị cha``, ``Đơn vị cấp trên``, ``parent``, ``parent_code``
kind          ``Loại``, ``Loại hình``, ``kind`` (optional)
============  =================================================================

Service points: unit code (``Mã đơn vị``, ``unit``), code (``Mã quầy``, ``code``), ``name_vi``, ``name_en``.

A file is refused before it is parsed when it is larger than :data:`MAX_UPLOAD`, or is an .xlsx workbook
that would unpack to more than :data:`MAX_UNPACKED` (see :func:`survey.fieldwork.frames.check_workbook`); reading
stops past :data:`MAX_ROWS` data rows.

Every problem is reported with its row (header = 1) and the file's own heading for the column; message
ids are English and translated where they are shown. Nothing is written unless every row is valid; then
all rows are written in one transaction with one audit entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from survey.auth.services import Principal
from survey.db.audited import audit
from survey.db.models import ServicePoint, Unit, UnitLevel, pk
from survey.errors import SipasError
from survey.fieldwork.frames import (
    MB,
    Cell,
    FrameImportError,
    TooManyRows,
    UnsafeWorkbook,
    _blank,
    _fold,
    _rows_from_csv,
    _rows_from_xlsx,
    thousands,
)
from survey.i18n import N_
from survey.officer.units.services import FIELD_CODE_MAX, NAME_MAX, POINT_CODE_MAX, code_ok, ensure_changer
from survey.receipts import codes

UNITS, POINTS = "units", "points"
KINDS = (UNITS, POINTS)

MAX_UPLOAD = 200 * 1024  # a province's units and counters take a few dozen KB
MAX_UNPACKED = 20 * MB
MAX_ROWS = 20_000

CODE, NAME_VI, NAME_EN, LEVEL, PARENT, KIND, UNIT = "code", "name_vi", "name_en", "level", "parent", "kind", "unit"


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # how a missing column is named (the Vietnamese heading)
    aliases: tuple[str, ...]  # accepted headings, folded (see survey.fieldwork.frames._fold)
    required: bool = True


LAYOUTS: dict[str, tuple[Column, ...]] = {
    UNITS: (
        Column(CODE, "Mã đơn vị", ("ma_don_vi", "ma", "code", "unit_code", "ma_dv")),
        Column(NAME_VI, "Tên đơn vị", ("ten_don_vi", "ten", "ten_tieng_viet", "name_vi", "name")),
        Column(NAME_EN, "Tên tiếng Anh", ("ten_tieng_anh", "name_en", "english_name"), required=False),
        Column(LEVEL, "Mã cấp", ("ma_cap", "cap", "level", "level_code", "cap_hanh_chinh")),
        Column(
            PARENT,
            "Mã đơn vị cha",
            (
                "ma_don_vi_cha",
                "don_vi_cha",
                "ma_cap_tren",
                "don_vi_cap_tren",
                "ma_don_vi_cap_tren",
                "parent",
                "parent_code",
            ),
        ),
        Column(KIND, "Loại", ("loai", "loai_hinh", "loai_don_vi", "kind"), required=False),
    ),
    POINTS: (
        Column(UNIT, "Mã đơn vị", ("ma_don_vi", "don_vi", "unit", "unit_code", "ma_dv")),
        Column(CODE, "Mã quầy", ("ma_quay", "ma_diem", "ma", "code", "point_code")),
        Column(NAME_VI, "Tên quầy", ("ten_quay", "ten", "ten_tieng_viet", "name_vi", "name")),
        Column(NAME_EN, "Tên tiếng Anh", ("ten_tieng_anh", "name_en", "english_name"), required=False),
    ),
}

READ_FAILED = N_("The file could not be read: {detail}")
TOO_LARGE = N_("The file is too large: at most {size} KB.")
TOO_MANY_ROWS = N_("The file has more than {count} rows; split it into several files.")
NOT_A_TABLE = N_("'{name}' is not a CSV or XLSX file. Save it as .xlsx or as 'CSV UTF-8' (.csv).")
EMPTY_FILE = N_("The file is empty: expected a header row, then one row per record.")
NO_DATA = N_("The file has a header row but nothing under it.")
MISSING_COLUMN = N_("The file has no column '{label}' (accepted headings: {accepted}).")
DOUBLE_COLUMN = N_("Two columns are read as '{label}' ('{first}' and '{second}'); keep only one.")
EMPTY_CELL = N_("This cell is empty.")
DATE_CELL = N_("'{value}' is a date, not a code.")
BAD_CODE = N_("A code has at most {count} characters: letters, digits, dots, hyphens or underscores.")
TOO_LONG = N_("Use at most {count} characters.")
CODE_TWICE = N_("The code '{code}' is already on row {other}; each code may appear only once.")
UNIT_EXISTS = N_("A unit with code '{code}' already exists.")
POINT_EXISTS = N_("A service point with code '{code}' already exists.")
NO_LEVEL = N_("There is no level with code '{code}'.")
NO_PARENT = N_("There is no unit with code '{code}', neither on the platform nor in this file.")
NO_UNIT = N_("There is no unit with code '{code}'.")
OUT_OF_SCOPE = N_("The unit '{code}' is outside your scope.")
CYCLE = N_("The parents of '{code}' go round in a circle in this file.")
NOTHING_IMPORTED = N_("The file was not imported: {count} problem(s) found. Nothing has been written.")


@dataclass(frozen=True)
class ImportProblem:
    """One problem, where the officer will find it: the file's row (header = 1) and the column's heading."""

    row: int | None
    column: str | None
    message: str
    params: dict[str, Any] = field(default_factory=dict)


class UnitImportError(SipasError):
    """The file was not imported; ``problems`` lists every problem found (nothing was written)."""

    status_code = 400

    def __init__(self, problems: Sequence[ImportProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.row or 0, p.column or ""))
        super().__init__(NOTHING_IMPORTED)


@dataclass(frozen=True)
class ImportResult:
    kind: str
    source: str
    created: int
    codes: tuple[str, ...]


@dataclass(frozen=True)
class _Row:
    row: int
    values: dict[str, Cell]
    headings: dict[str, str]

    def heading(self, key: str) -> str:
        return self.headings[key]


# --- reading ------------------------------------------------------------------------------------------------


def _raw_rows(data: bytes, filename: str) -> list[tuple[int, list[Cell]]]:
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise UnitImportError([ImportProblem(None, None, NOT_A_TABLE, {"name": Path(filename).name})])
    if len(data) > MAX_UPLOAD:
        raise UnitImportError([ImportProblem(None, None, TOO_LARGE, {"size": MAX_UPLOAD // 1024})])
    try:
        if suffix == ".csv":
            return _rows_from_csv(data, max_rows=MAX_ROWS)
        return _rows_from_xlsx(data, max_rows=MAX_ROWS, max_unpacked=MAX_UNPACKED)
    except TooManyRows as exc:
        raise UnitImportError([ImportProblem(None, None, TOO_MANY_ROWS, {"count": thousands(exc.limit)})]) from None
    except UnsafeWorkbook as exc:
        raise UnitImportError([ImportProblem(None, None, exc.message, exc.params)]) from None
    except FrameImportError as exc:
        detail = "; ".join(e.message for e in exc.errors)
        raise UnitImportError([ImportProblem(None, None, READ_FAILED, {"detail": detail})]) from None


def read_table(data: bytes, filename: str, *, kind: str) -> list[_Row]:
    """The data rows of an upload, as cells by column key. Raises :class:`UnitImportError` if unreadable."""
    layout = LAYOUTS[kind]
    filled = _raw_rows(data, filename)  # the non-blank rows
    if not filled:
        raise UnitImportError([ImportProblem(1, None, EMPTY_FILE)])
    header_row, header = filled[0]
    folded = {alias: c for c in layout for alias in c.aliases}
    positions: dict[str, int] = {}
    headings: dict[str, str] = {}
    problems: list[ImportProblem] = []
    for i, value in enumerate(header):
        if _blank(value):
            continue
        text = str(value).strip().lstrip("\ufeff")
        column = folded.get(_fold(text))
        if column is None:
            continue  # other columns (notes, addresses...) are ignored
        if column.key in positions:
            problems.append(
                ImportProblem(
                    header_row,
                    text,
                    DOUBLE_COLUMN,
                    {"label": column.label, "first": headings[column.key], "second": text},
                )
            )
            continue
        positions[column.key] = i
        headings[column.key] = text
    for column in layout:
        if column.key not in positions:
            if column.required:
                accepted = ", ".join([column.label, *column.aliases[:3]])
                problems.append(
                    ImportProblem(
                        header_row, column.label, MISSING_COLUMN, {"label": column.label, "accepted": accepted}
                    )
                )
            headings[column.key] = column.label
    if problems:
        raise UnitImportError(problems)
    if len(filled) < 2:
        raise UnitImportError([ImportProblem(header_row, None, NO_DATA)])

    def cell(values: list[Cell], key: str) -> Cell:
        i = positions.get(key)
        return values[i] if i is not None and i < len(values) else None

    return [_Row(n, {c.key: cell(values, c.key) for c in layout}, headings) for n, values in filled[1:]]


class _Bad(ValueError):
    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params


def _code(value: Cell, limit: int) -> str:
    if _blank(value):
        raise _Bad(EMPTY_CELL)
    if isinstance(value, datetime | date):
        raise _Bad(DATE_CELL, value=str(value))
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    if len(text) > limit or not code_ok(text):
        raise _Bad(BAD_CODE, count=limit)
    return text


def _name(value: Cell, *, required: bool) -> str:
    if _blank(value):
        if required:
            raise _Bad(EMPTY_CELL)
        return ""
    text = str(value).strip()
    if len(text) > NAME_MAX:
        raise _Bad(TOO_LONG, count=NAME_MAX)
    return text


def _parse(row: _Row, key: str, problems: list[ImportProblem], parse: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return parse(row.values[key], *args, **kwargs)
    except _Bad as exc:
        problems.append(ImportProblem(row.row, row.heading(key), exc.message, exc.params))
        return None


def _existing(session: Session, model: Any, wanted: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    ordered = sorted(wanted)
    for i in range(0, len(ordered), 500):
        found.update({r.code: r for r in session.scalars(select(model).where(model.code.in_(ordered[i : i + 500])))})
    return found


# --- importing units ----------------------------------------------------------------------------------------


def import_units(session: Session, *, viewer: Principal, data: bytes, filename: str) -> ImportResult:
    """Create the units of a file under parents of ``viewer``'s subtree; all or nothing (see the module)."""
    ensure_changer(viewer)
    rows = read_table(data, filename, kind=UNITS)
    problems: list[ImportProblem] = []
    parsed: list[dict[str, Any]] = []
    for r in rows:
        parsed.append(
            {
                "row": r,
                CODE: _parse(r, CODE, problems, _code, FIELD_CODE_MAX),
                NAME_VI: _parse(r, NAME_VI, problems, _name, required=True),
                NAME_EN: _parse(r, NAME_EN, problems, _name, required=False),
                LEVEL: _parse(r, LEVEL, problems, _code, FIELD_CODE_MAX),
                PARENT: _parse(r, PARENT, problems, _code, FIELD_CODE_MAX),
                KIND: _parse(r, KIND, problems, _name, required=False),
            }
        )
    in_file: dict[str, int] = {}
    for p in parsed:
        code, r = p[CODE], p["row"]
        if code is None:
            continue
        if code in in_file:
            problems.append(ImportProblem(r.row, r.heading(CODE), CODE_TWICE, {"code": code, "other": in_file[code]}))
        else:
            in_file[code] = r.row
    mentioned = {p[CODE] for p in parsed if p[CODE]} | {p[PARENT] for p in parsed if p[PARENT]}
    units = _existing(session, Unit, mentioned)
    level_ids = {lv.code: pk(lv) for lv in session.scalars(select(UnitLevel))}
    parent_of: dict[str, str] = {}
    for p in parsed:
        r = p["row"]
        if p[CODE] and p[CODE] in units:
            problems.append(ImportProblem(r.row, r.heading(CODE), UNIT_EXISTS, {"code": p[CODE]}))
        if p[LEVEL] and p[LEVEL] not in level_ids:
            problems.append(ImportProblem(r.row, r.heading(LEVEL), NO_LEVEL, {"code": p[LEVEL]}))
        parent = p[PARENT]
        if parent is None:
            continue
        if parent in units:
            if not viewer.covers(units[parent].path):
                problems.append(ImportProblem(r.row, r.heading(PARENT), OUT_OF_SCOPE, {"code": parent}))
        elif parent not in in_file:
            problems.append(ImportProblem(r.row, r.heading(PARENT), NO_PARENT, {"code": parent}))
        elif p[CODE]:
            parent_of[p[CODE]] = parent
    for p in parsed:  # parents given in the file must lead to a unit already on the platform
        code, r = p[CODE], p["row"]
        seen, step = {code}, parent_of.get(code)
        while step in parent_of and step not in seen:
            seen.add(step)
            step = parent_of[step]
        if step is not None and step in seen:
            problems.append(ImportProblem(r.row, r.heading(PARENT), CYCLE, {"code": code}))
    if problems:
        raise UnitImportError(problems)

    try:
        created: dict[str, Unit] = {}
        pending = list(parsed)
        while pending:  # one generation at a time: a unit's path needs its parent's id
            ready = [p for p in pending if p[PARENT] in units or p[PARENT] in created]
            assert ready, "cycles were rejected above"
            batch = []
            for p in ready:
                parent = units.get(p[PARENT]) or created[p[PARENT]]
                unit = Unit(
                    code=p[CODE],
                    name_vi=p[NAME_VI],
                    name_en=p[NAME_EN] or p[NAME_VI],
                    level_id=level_ids[p[LEVEL]],
                    parent_id=pk(parent),
                    kind=p[KIND] or None,
                )
                session.add(unit)
                batch.append((unit, parent))
                created[p[CODE]] = unit
            session.flush()
            for unit, parent in batch:
                unit.path = f"{parent.path}{pk(unit)}/"
            session.flush()
            pending = [p for p in pending if p[CODE] not in created]
        result = ImportResult(UNITS, Path(filename).name, len(created), tuple(created))
        _audit(session, viewer, "import_units", "unit", result)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return result


# --- importing service points -------------------------------------------------------------------------------


def import_points(session: Session, *, viewer: Principal, data: bytes, filename: str) -> ImportResult:
    """Create the service points of a file for units of ``viewer``'s subtree; all or nothing."""
    ensure_changer(viewer)
    rows = read_table(data, filename, kind=POINTS)
    problems: list[ImportProblem] = []
    parsed = [
        {
            "row": r,
            UNIT: _parse(r, UNIT, problems, _code, FIELD_CODE_MAX),
            CODE: _parse(r, CODE, problems, _code, POINT_CODE_MAX),
            NAME_VI: _parse(r, NAME_VI, problems, _name, required=True),
            NAME_EN: _parse(r, NAME_EN, problems, _name, required=False),
        }
        for r in rows
    ]
    units = _existing(session, Unit, {p[UNIT] for p in parsed if p[UNIT]})
    points = _existing(session, ServicePoint, {p[CODE] for p in parsed if p[CODE]})
    in_file: dict[str, int] = {}
    for p in parsed:
        r = p["row"]
        if p[UNIT]:
            unit = units.get(p[UNIT])
            if unit is None:
                problems.append(ImportProblem(r.row, r.heading(UNIT), NO_UNIT, {"code": p[UNIT]}))
            elif not viewer.covers(unit.path):
                problems.append(ImportProblem(r.row, r.heading(UNIT), OUT_OF_SCOPE, {"code": p[UNIT]}))
        code = p[CODE]
        if code is None:
            continue
        if code in in_file:
            problems.append(ImportProblem(r.row, r.heading(CODE), CODE_TWICE, {"code": code, "other": in_file[code]}))
        else:
            in_file[code] = r.row
        if code in points:
            problems.append(ImportProblem(r.row, r.heading(CODE), POINT_EXISTS, {"code": code}))
    if problems:
        raise UnitImportError(problems)
    try:
        new = [
            ServicePoint(
                unit_id=pk(units[p[UNIT]]),
                code=p[CODE],
                name_vi=p[NAME_VI],
                name_en=p[NAME_EN] or p[NAME_VI],
                counter_token=codes.new_counter_token(),
            )
            for p in parsed
        ]
        session.add_all(new)
        session.flush()
        result = ImportResult(POINTS, Path(filename).name, len(new), tuple(p.code for p in new))
        _audit(session, viewer, "import_points", "service_point", result)
        session.commit()
    except Exception:
        session.rollback()
        raise
    return result


def _audit(session: Session, viewer: Principal, action: str, entity: str, result: ImportResult) -> None:
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action=action,
        entity=entity,
        after={"source": result.source, "rows": result.created, "codes": ", ".join(result.codes[:50])},
    )


def import_file(session: Session, *, viewer: Principal, kind: str, data: bytes, filename: str) -> ImportResult:
    if kind == POINTS:
        return import_points(session, viewer=viewer, data=data, filename=filename)
    return import_units(session, viewer=viewer, data=data, filename=filename)
