"""Import of monthly transaction counts (the sampling frame) from a one-stop system's CSV or XLSX export.

A file has one row per unit, procedure field and month, under a header row (row 1) naming four columns,
in Vietnamese or English, matched without regard to case or diacritics:

=================  =====================================================
unit code          ``Mã đơn vị``, ``ma_don_vi``, ``unit``, ``unit_code``
field code         ``Mã lĩnh vực``, ``ma_linh_vuc``, ``field``, ``field_code``
month              ``Kỳ``, ``ky``, ``Tháng``, ``thang``, ``period``
transactions       ``Số hồ sơ``, ``so_ho_so``, ``transactions``, ``count``
=================  =====================================================

Months may be written ``2026-03``, ``03/2026``, ``3/2026``, ``T3/2026`` or ``Tháng 3/2026``, or be a date
(a real Excel date, ``2026-03-01`` or ``01/03/2026``, read day/month/year as in Vietnam): the count is for
that whole calendar month.

Counts are whole numbers. A dot, comma or space followed by exactly three digits is a thousands separator,
whichever the file uses: ``1.234``, ``1,234``, ``1 234`` and ``1.234,00`` are all 1234. Any other dot or
comma is a decimal mark, allowed only before zeros (``12,0`` is 12): ``12,5`` is an error, never rounded.

A file is refused before it is parsed when it is larger than :data:`MAX_FRAME_BYTES`; an .xlsx workbook
(a zip archive) also when its members unpack to more than :data:`MAX_FRAME_UNPACKED` or are compressed
more than :data:`MAX_XLSX_RATIO` to 1 (a zip bomb). Reading stops past :data:`MAX_FRAME_ROWS` data rows.

:func:`import_frame` checks the whole file and writes nothing unless every row is valid; then it replaces
the count of every (unit, field, month) it names, in one transaction, with one audit entry.
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.audited import audit
from survey.db.models import FrameCount, ProcedureField, Unit
from survey.errors import SipasError
from survey.i18n import N_

Cell = str | int | float | date | datetime | None

MB = 1024 * 1024
MAX_FRAME_ROWS = 100_000  # a year of a province's counts is about 12 x 1 000 units x 10 fields
MAX_FRAME_BYTES = 20 * MB  # 100 000 rows take about 5 MB as CSV, 3 MB as XLSX
MAX_FRAME_UNPACKED = 64 * MB  # 100 000 rows of five columns unpack to about 27 MB (openpyxl's inline strings)
MAX_XLSX_RATIO = 100  # unpacked / packed size of a whole workbook: real ones are 5 to 20, a zip bomb 1 000

XLSX_TOO_BIG = N_("The workbook unpacks to more than {size} MB. Keep only the sheet to import, or save it as CSV.")
XLSX_TOO_DENSE = N_("The workbook unpacks to {ratio} times its size, which no real workbook does; it was not opened.")

UNIT, FIELD, PERIOD, COUNT = "unit_code", "field_code", "period", "transactions"
COLUMNS = (UNIT, FIELD, PERIOD, COUNT)

# Accepted headings per column, already folded (see _fold); the first is how an error names a missing one.
HEADINGS: dict[str, tuple[str, ...]] = {
    UNIT: ("ma_don_vi", "unit", "unit_code", "ma_dv", "don_vi"),
    FIELD: ("ma_linh_vuc", "field", "field_code", "ma_lv", "linh_vuc"),
    PERIOD: ("ky", "thang", "period", "month", "ky_bao_cao"),
    COUNT: ("so_ho_so", "transactions", "count", "so_luong"),
}
LABELS = {UNIT: "Mã đơn vị", FIELD: "Mã lĩnh vực", PERIOD: "Kỳ", COUNT: "Số hồ sơ"}
DESCRIPTIONS = {
    UNIT: "the unit code",
    FIELD: "the procedure field code",
    PERIOD: "the month",
    COUNT: "the number of transactions",
}

_IN_CHUNKS = 500  # codes per IN (...) query, well under every driver's parameter limit


@dataclass(frozen=True)
class FrameError:
    """One problem, where the officer will find it: the file's row (header = 1) and the column's heading."""

    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (self.row and f"row {self.row}", self.column and f"column {self.column}") if p)
        return f"{where}: {self.message}" if where else self.message


class FrameImportError(SipasError):
    """The file was not imported; ``errors`` lists every problem found (nothing was written)."""

    status_code = 400

    def __init__(self, errors: Sequence[FrameError]) -> None:
        self.errors = list(errors)
        n = len(self.errors)
        head = f"The file was not imported: {n} problem{'s' if n != 1 else ''} found."
        super().__init__("\n".join([head, *(str(e) for e in self.errors)]), title="Transaction counts not imported")


@dataclass(frozen=True)
class FrameRow:
    """One data row as read, values still raw; ``headings`` maps each column to the file's own heading."""

    row: int
    unit_code: Cell
    field_code: Cell
    period: Cell
    transactions: Cell
    headings: Mapping[str, str] = field(default_factory=lambda: dict(LABELS))

    def heading(self, column: str) -> str:
        return self.headings.get(column, LABELS[column])


@dataclass(frozen=True)
class ImportReport:
    source: str
    rows: int
    inserted: int
    replaced: int


# --- reading ----------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Lower case, no diacritics (đ -> d), words joined by '_': 'Mã đơn vị' -> 'ma_don_vi'."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


_FOLDED = {alias: column for column, aliases in HEADINGS.items() for alias in aliases}


def _blank(value: Cell) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class TooManyRows(Exception):
    """A table with more data rows than the reader allows; each import words its own advice."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} data rows")
        self.limit = limit


class UnsafeWorkbook(Exception):
    """An .xlsx refused before it is opened; ``message`` is a message id, formatted with ``params``."""

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


def thousands(number: int) -> str:
    """100000 -> '100 000': digit groups a reader of either language takes in at a glance."""
    return f"{number:,}".replace(",", " ")


def _filled(rows: Iterable[Sequence[Cell]], max_rows: int) -> list[tuple[int, list[Cell]]]:
    """The non-blank rows with their number in the file (from 1); a header and at most ``max_rows`` more."""
    out: list[tuple[int, list[Cell]]] = []
    for n, values in enumerate(rows, start=1):
        if all(_blank(v) for v in values):
            continue
        if len(out) > max_rows:
            raise TooManyRows(max_rows)
        out.append((n, list(values)))
    return out


def _rows_from_csv(data: bytes, *, max_rows: int) -> list[tuple[int, list[Cell]]]:
    """The non-blank rows of a CSV text (see :func:`_filled`)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16")  # Excel's "Unicode text" export
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FrameImportError(
                [FrameError(None, None, "The file is not UTF-8 text. In Excel, save it as 'CSV UTF-8'.")]
            ) from None
    if "\x00" in text:
        raise FrameImportError([FrameError(None, None, "The file is not a CSV text file.")])
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max((";", ",", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return _filled(reader, max_rows)
    except csv.Error as exc:
        raise FrameImportError([FrameError(None, None, f"The file is not a readable CSV file ({exc}).")]) from None


def _unreadable_workbook(exc: Exception) -> FrameImportError:
    return FrameImportError([FrameError(None, None, f"The file is not a readable Excel workbook (.xlsx): {exc}.")])


def check_workbook(data: bytes, *, max_unpacked: int) -> None:
    """Refuse a zip bomb: read the zip directory and add up what the members would unpack to.

    ``zipfile`` (which openpyxl reads through) never gives more bytes of a member than the directory
    declares, so the declared sizes bound what opening the workbook can unpack.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise _unreadable_workbook(exc) from None
    unpacked = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    if unpacked > max_unpacked:
        raise UnsafeWorkbook(XLSX_TOO_BIG, size=max_unpacked // MB)
    if unpacked > MAX_XLSX_RATIO * max(packed, 1):
        raise UnsafeWorkbook(XLSX_TOO_DENSE, ratio=thousands(unpacked // max(packed, 1)))


def _rows_from_xlsx(data: bytes, *, max_rows: int, max_unpacked: int) -> list[tuple[int, list[Cell]]]:
    """The non-blank rows of the first sheet (see :func:`_filled`), after :func:`check_workbook`."""
    check_workbook(data, max_unpacked=max_unpacked)
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # BadZipFile, KeyError, openpyxl's InvalidFileException...: all mean the same here
        raise _unreadable_workbook(exc) from None
    try:
        return _filled(book.worksheets[0].iter_rows(min_row=1, values_only=True), max_rows)
    except TooManyRows:
        raise
    except Exception as exc:  # a sheet that is not the XML it claims to be
        raise _unreadable_workbook(exc) from None
    finally:
        book.close()


def read_frame_file(path: Path | str) -> list[FrameRow]:
    """The data rows of a .csv (UTF-8, with or without BOM; ',' ';' or tab) or .xlsx (first sheet) file.

    Raises :class:`FrameImportError` when the file cannot be read at all: not CSV/XLSX, empty, over a
    limit of the module, or without one of the four columns. Values are checked by :func:`import_frame`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise FrameImportError(
            [
                FrameError(
                    None,
                    None,
                    f"'{path.name}' is not a CSV or XLSX file. Export the counts as .xlsx or as 'CSV UTF-8' (.csv).",
                )
            ]
        )
    try:
        if path.stat().st_size > MAX_FRAME_BYTES:
            message = f"The file is larger than {MAX_FRAME_BYTES // MB} MB; split it by month."
            raise FrameImportError([FrameError(None, None, message)])
        content = path.read_bytes()
    except OSError as exc:
        raise FrameImportError([FrameError(None, None, f"Cannot read '{path.name}': {exc.strerror or exc}.")]) from None
    try:
        if suffix == ".csv":
            filled = _rows_from_csv(content, max_rows=MAX_FRAME_ROWS)
        else:
            filled = _rows_from_xlsx(content, max_rows=MAX_FRAME_ROWS, max_unpacked=MAX_FRAME_UNPACKED)
    except TooManyRows as exc:
        message = f"The file has more than {thousands(exc.limit)} rows; split it by month."
        raise FrameImportError([FrameError(None, None, message)]) from None
    except UnsafeWorkbook as exc:
        raise FrameImportError([FrameError(None, None, str(exc))]) from None
    if not filled:
        raise FrameImportError([FrameError(1, None, "The file is empty: expected a header row and one row per count.")])
    header_row, header = filled[0]
    positions: dict[str, int] = {}
    headings: dict[str, str] = {}
    errors: list[FrameError] = []
    for i, value in enumerate(header):
        if _blank(value):
            continue
        column = _FOLDED.get(_fold(str(value)))
        if column is None:
            continue  # other columns (names, notes...) are ignored
        if column in positions:
            errors.append(
                FrameError(
                    header_row,
                    str(value).strip(),
                    f"Two columns hold {DESCRIPTIONS[column]} ('{headings[column]}' and '{str(value).strip()}'); "
                    "keep only one.",
                )
            )
            continue
        positions[column] = i
        headings[column] = str(value).strip()
    for column in COLUMNS:
        if column not in positions:
            accepted = ", ".join([LABELS[column], *HEADINGS[column][:3]])
            errors.append(
                FrameError(
                    header_row,
                    LABELS[column],
                    f"The file has no column for {DESCRIPTIONS[column]} (accepted headings: {accepted}).",
                )
            )
    if errors:
        raise FrameImportError(errors)
    data = filled[1:]
    if not data:
        raise FrameImportError([FrameError(header_row, None, "The file has a header row but no counts under it.")])

    def cell(values: list[Cell], column: str) -> Cell:
        i = positions[column]
        return values[i] if i < len(values) else None

    return [
        FrameRow(
            row=n,
            unit_code=cell(values, UNIT),
            field_code=cell(values, FIELD),
            period=cell(values, PERIOD),
            transactions=cell(values, COUNT),
            headings=headings,
        )
        for n, values in data
    ]


# --- parsing values ---------------------------------------------------------------------------------------


class _Invalid(ValueError):
    """A cell that cannot be used; the message is for the officer."""


def parse_code(value: Cell) -> str:
    if _blank(value):
        raise _Invalid("This cell is empty.")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel turns numeric codes into numbers
    if isinstance(value, datetime | date):
        raise _Invalid(f"'{value}' is a date, not a code.")
    return str(value).strip()


_MONTH_PATTERNS = (
    (re.compile(r"(\d{4})[-/.](\d{1,2})"), "ym"),  # 2026-03, 2026/3
    (re.compile(r"(\d{1,2})[-/.](\d{4})"), "my"),  # 03/2026, 3/2026
    (re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})(?:[ t]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"), "ymd"),  # 2026-03-01
    (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})(?: \d{1,2}:\d{2}(?::\d{2})?)?"), "dmy"),  # 01/03/2026 (Vietnamese)
)


def parse_month(value: Cell) -> date:
    """The first day of the month ``value`` names."""
    if _blank(value):
        raise _Invalid("This cell is empty; write the month as 2026-03 or 03/2026.")
    if isinstance(value, datetime):
        return value.date().replace(day=1)
    if isinstance(value, date):
        return value.replace(day=1)
    text = str(value).strip()
    folded = re.sub(r"^(thang|t)[\s_]*", "", text.lower().replace("á", "a"))
    for pattern, order in _MONTH_PATTERNS:
        m = pattern.fullmatch(folded)
        if not m:
            continue
        parts = [int(g) for g in m.groups()]
        year, month, day = {
            "ym": lambda p: (p[0], p[1], 1),
            "my": lambda p: (p[1], p[0], 1),
            "ymd": lambda p: (p[0], p[1], p[2]),
            "dmy": lambda p: (p[2], p[1], p[0]),
        }[order](parts)
        try:
            return date(year, month, day).replace(day=1)
        except ValueError:
            break
    raise _Invalid(f"'{text}' is not a month; write it as 2026-03 or 03/2026.")


_SEPARATORS = re.compile(r"[.,\s\u00a0\u202f']")


def parse_count(value: Cell) -> int:
    """A whole, non-negative number of transactions (see the module's note on separators)."""
    if _blank(value):
        raise _Invalid("This cell is empty; write the number of transactions (0 if there were none).")
    if isinstance(value, bool | datetime | date):
        raise _Invalid(f"'{value}' is not a number of transactions.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise _Invalid(f"{value:g} is not a whole number; a number of transactions cannot have a fraction.")
        number = int(value)
    else:
        number = _parse_count_text(str(value).strip())
    if number < 0:
        raise _Invalid(f"The number of transactions cannot be negative ({number}).")
    return number


def _parse_count_text(text: str) -> int:
    negative = text[:1] in ("-", "\u2212")
    body = text[1:].strip() if negative else text
    if not re.fullmatch(r"\d[\d.,\s\u00a0\u202f']*", body) or not body[-1].isdigit():
        raise _Invalid(f"'{text}' is not a number; write a whole number of transactions such as 1234.")
    integer, fraction = body, ""
    marks = [m for m in _SEPARATORS.finditer(body) if m.group() in ".,"]
    if marks:
        last = marks[-1]
        tail = body[last.end() :]
        same_kind = [m for m in marks if m.group() == last.group()]
        # The last mark is a decimal one unless it is followed by exactly three digits and is either the
        # only kind of mark or appears more than once (1.234, 1,234, 1.234.567); in 1.234,5 it is decimal.
        other_kind = len(same_kind) != len(marks)
        if other_kind or (len(same_kind) == 1 and not re.fullmatch(r"\d{3}", tail)):
            integer, fraction = body[: last.start()], tail
    groups = _SEPARATORS.split(integer)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(g) != 3 for g in groups[1:])):
        raise _Invalid(f"'{text}' is not a number; write a whole number of transactions such as 1234.")
    if not fraction.isdigit() and fraction:
        raise _Invalid(f"'{text}' is not a number; write a whole number of transactions such as 1234.")
    if fraction.strip("0"):
        raise _Invalid(
            f"'{text}' is not a whole number; a number of transactions cannot have a fraction "
            "(a dot or comma before exactly three digits is read as a thousands separator)."
        )
    number = int("".join(groups))
    return -number if negative else number


def month_end(start: date) -> date:
    return start.replace(day=calendar.monthrange(start.year, start.month)[1])


def _ids_by_code(session: Session, model: Any, codes: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(codes))
    found: dict[str, int] = {}
    for i in range(0, len(wanted), _IN_CHUNKS):
        chunk = wanted[i : i + _IN_CHUNKS]
        found.update(
            {code: ident for ident, code in session.execute(select(model.id, model.code).where(model.code.in_(chunk)))}
        )
    return found


# --- importing --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Valid:
    row: int
    unit_code: str
    field_code: str
    start: date | None  # None when the row has a problem of its own: only its codes are still checked
    transactions: int


def import_frame(
    session: Session,
    *,
    rows: Sequence[FrameRow],
    source_name: str,
    actor: str,
    period_from: date | None = None,
    period_to: date | None = None,
) -> ImportReport:
    """Check every row, then replace the counts they name, all or nothing, with one audit entry.

    ``period_from`` and ``period_to`` (any day of a month; both inclusive) bound the months allowed.
    Runs in its own transaction, or in a savepoint if ``session`` already has one (the caller commits).
    Raises :class:`FrameImportError` with every problem found; then nothing is written.
    """
    low = period_from.replace(day=1) if period_from else None
    high = period_to.replace(day=1) if period_to else None
    if low and high and low > high:
        raise FrameImportError(
            [FrameError(None, None, f"The period runs backwards: {low:%Y-%m} is after {high:%Y-%m}.")]
        )
    if not rows:
        raise FrameImportError([FrameError(None, None, "The file holds no counts.")])
    transaction = session.begin_nested() if session.in_transaction() else session.begin()
    with transaction:
        errors: list[FrameError] = []
        parsed: list[_Valid] = []
        for r in rows:
            values: dict[str, Any] = {}
            for column, parse, raw in (
                (UNIT, parse_code, r.unit_code),
                (FIELD, parse_code, r.field_code),
                (PERIOD, parse_month, r.period),
                (COUNT, parse_count, r.transactions),
            ):
                try:
                    values[column] = parse(raw)
                except _Invalid as exc:
                    errors.append(FrameError(r.row, r.heading(column), str(exc)))
            start = values.get(PERIOD)
            if start is not None and ((low and start < low) or (high and start > high)):
                span = f"{low:%Y-%m}" if low else "the beginning"
                span += f" to {high:%Y-%m}" if high else " onwards"
                errors.append(FrameError(r.row, r.heading(PERIOD), f"{start:%Y-%m} is outside this import ({span})."))
                start = None
            complete = len(values) == len(COLUMNS) and start is not None
            # a row with a problem still has its codes checked, so that every problem shows at once
            parsed.append(
                _Valid(
                    r.row,
                    values.get(UNIT, ""),
                    values.get(FIELD, ""),
                    start if complete else None,
                    values.get(COUNT, 0),
                )
            )

        unit_ids = _ids_by_code(session, Unit, (p.unit_code for p in parsed if p.unit_code))
        field_ids = _ids_by_code(session, ProcedureField, (p.field_code for p in parsed if p.field_code))
        by_row = {r.row: r for r in rows}
        seen: dict[tuple[str, str, date], int] = {}
        good: list[_Valid] = []
        for p in parsed:
            r = by_row[p.row]
            ok = p.start is not None
            if p.unit_code and p.unit_code not in unit_ids:
                errors.append(FrameError(p.row, r.heading(UNIT), f"There is no unit with code '{p.unit_code}'."))
                ok = False
            if p.field_code and p.field_code not in field_ids:
                errors.append(
                    FrameError(p.row, r.heading(FIELD), f"There is no procedure field with code '{p.field_code}'.")
                )
                ok = False
            if p.start is None:
                continue
            key = (p.unit_code, p.field_code, p.start)
            if key in seen:
                errors.append(
                    FrameError(
                        p.row,
                        None,
                        f"Unit '{p.unit_code}', field '{p.field_code}', month {p.start:%Y-%m} is already on row "
                        f"{seen[key]}; each unit, field and month may appear only once.",
                    )
                )
                continue
            seen[key] = p.row
            if ok:
                good.append(p)
        if errors:
            errors.sort(key=lambda e: e.row or 0)
            raise FrameImportError(errors)

        wanted = {(unit_ids[p.unit_code], field_ids[p.field_code], p.start): p.transactions for p in good if p.start}
        existing: dict[tuple[int, int, date], FrameCount] = {}
        starts = sorted({k[2] for k in wanted})
        units = sorted({k[0] for k in wanted})
        for i in range(0, len(units), _IN_CHUNKS):
            for fc in session.scalars(
                select(FrameCount).where(
                    col(FrameCount.unit_id).in_(units[i : i + _IN_CHUNKS]),
                    col(FrameCount.period_start).in_(starts),
                )
            ):
                found = (fc.unit_id, fc.field_id, fc.period_start)
                if found in wanted:
                    existing[found] = fc
        new_rows: list[FrameCount] = []
        for ids, transactions in wanted.items():
            old = existing.get(ids)
            if old is not None:
                old.transactions = transactions
                old.period_end = month_end(ids[2])
            else:
                new_rows.append(
                    FrameCount(
                        unit_id=ids[0],
                        field_id=ids[1],
                        period_start=ids[2],
                        period_end=month_end(ids[2]),
                        transactions=transactions,
                    )
                )
        session.add_all(new_rows)
        session.flush()
        report = ImportReport(source=source_name, rows=len(wanted), inserted=len(new_rows), replaced=len(existing))
        audit(
            session,
            actor=actor,
            action="import_frame",
            entity="frame_count",
            after={"source": source_name, "rows": report.rows, "replaced": report.replaced},
        )
    return report
