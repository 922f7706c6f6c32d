"""CSV a spreadsheet opens as data, never as formulas: the one way the platform writes CSV.

Every CSV the platform writes (exports, the quota progress file, receipt-code lists, the ``sipas``
commands' ``--format csv``) goes through `csv_writer`, which passes each cell through `cell`:

- a **number** is a value whose Python type is a number (``int``, ``float``, ``Decimal``, numpy
  numbers; not ``bool``). It is written as its digits, sign included: a spreadsheet reads ``-1.5`` as
  the number -1.5, never as a formula. A non-finite number is an empty cell.
- **text** is every other value (``str()`` of it). Text that starts with ``= + - @``, a tab or a
  carriage return gets a leading ``'`` (OWASP, "CSV injection"), so a unit named ``=HYPERLINK(...)``
  or ``-1`` shows as that text and runs nothing.
- ``None`` is an empty cell.

So a cell's type, not its look, decides: a caller that means a number passes a number (a ``Decimal``
for fixed decimals, such as ``Decimal("-3.20")``), and text that merely looks like a number stays text.
"""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Iterable
from decimal import Decimal
from typing import Protocol

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"  # first in a file Excel should read as UTF-8 (Vietnamese diacritics)


class _Writable(Protocol):
    def write(self, text: str, /) -> object: ...


def defuse(text: str) -> str:
    """Text a spreadsheet will not run: a leading ``'`` before ``= + - @``, a tab or a carriage return."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cell(value: object) -> str:
    """The text of one CSV cell for ``value``: numbers as digits, ``None`` empty, other text defused."""
    if value is None:
        return ""
    if type(value) is str:
        return defuse(value)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, Decimal):
        return str(value) if value.is_finite() else ""
    if isinstance(value, numbers.Real):
        number = float(value)
        return repr(number) if math.isfinite(number) else ""
    return defuse(str(value))


class SafeWriter:
    """A ``csv.writer`` (comma, CRLF, minimal quoting) whose every cell goes through `cell`."""

    __slots__ = ("_writer",)

    def __init__(self, out: _Writable) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, row: Iterable[object]) -> None:
        # plain ints (answer codes, counts) are safe as they are, and None is an empty cell: no call for them
        self._writer.writerow([v if type(v) is int else "" if v is None else cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[object]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(out: _Writable) -> SafeWriter:
    """The writer every CSV of the platform is written with (see the module's rule for cells)."""
    return SafeWriter(out)
