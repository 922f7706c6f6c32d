"""The citizen path's few PostgreSQL statements straight through libpq (``psycopg.pq``), prepared once per connection.

A query through a psycopg cursor cost about 125 µs of this process's CPU on the development machine,
as much as a whole hello-world request; the same prepared statement run with ``PGconn.exec_prepared``
cost 65 µs (``docs/benchmarks.md``). libpq releases the GIL while it waits, as psycopg does.

Parameters go as text (bytes as binary); results come back as text and are read by their type's OID,
for the few types these statements return. Anything else returns None before anything is sent, and
the caller runs the statement through psycopg as usual. A statement the server refuses raises the
psycopg exception of its SQLSTATE (``UniqueViolation``...), as a cursor would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import errors, pq

_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)


def _text(v: bytes) -> str:
    return v.decode()


LOADERS: dict[int, Callable[[bytes], Any]] = {
    16: lambda v: v == b"t",  # bool
    20: int,  # int8
    21: int,  # int2
    23: int,  # int4
    19: _text,  # name
    25: _text,  # text
    1042: _text,  # bpchar
    1043: _text,  # varchar
    1082: lambda v: date.fromisoformat(v.decode()),  # date
    114: json.loads,  # json
    3802: json.loads,  # jsonb
}


def _encode(value: Any) -> tuple[bytes | None, int] | None:
    """A parameter as libpq takes it: (bytes, 0 for text or 1 for binary); None when not one of ours."""
    if value is None:
        return None, 0
    if isinstance(value, bool):
        return (b"t" if value else b"f"), 0
    if isinstance(value, str):
        return value.encode(), 0
    if isinstance(value, int | float):
        return str(value).encode(), 0
    if isinstance(value, psycopg.Binary):  # what SQLAlchemy's LargeBinary hands psycopg
        value = value.obj
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value), 1  # bytea, binary: no escaping
    if isinstance(value, datetime | date):
        return value.isoformat().encode(), 0
    return None


class Statements:
    """Statements by their SQL (``:name`` parameters), each prepared on a connection the first time it runs there."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[bytes, bytes, tuple[str, ...]]] = {}  # sql: (name, $n text, parameter order)
        self._prepared: dict[int, set[bytes]] = {}  # id of a connection: the names prepared on it

    def forget(self, conn: Any) -> None:
        """``conn`` is closed: its prepared statements went with it."""
        self._prepared.pop(id(conn), None)

    def _statement(self, sql: str) -> tuple[bytes, bytes, tuple[str, ...]]:
        found = self._known.get(sql)
        if found is None:
            order: list[str] = []

            def number(match: re.Match[str]) -> str:
                if match.group(1) not in order:
                    order.append(match.group(1))
                return f"${order.index(match.group(1)) + 1}"

            text = _NAMED.sub(number, sql)
            found = self._known[sql] = (f"sipas_{len(self._known)}".encode(), text.encode(), tuple(order))
        return found

    def run(self, conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any]) -> pq.abc.PGresult | None:
        """The result of ``sql`` run on ``conn``; None (nothing sent) for a parameter of another type."""
        name, text, order = self._statement(sql)
        pgconn = conn.pgconn
        if not order:  # BEGIN, COMMIT...: nothing to prepare
            return _check(pgconn, pgconn.exec_(text))
        encoded = [_encode(params[p]) for p in order]
        if any(e is None for e in encoded):
            return None
        prepared = self._prepared.setdefault(id(conn), set())
        if name not in prepared:
            _check(pgconn, pgconn.prepare(name, text))
            prepared.add(name)
        values = [e[0] for e in encoded if e is not None]
        formats = [e[1] for e in encoded if e is not None]
        return _check(pgconn, pgconn.exec_prepared(name, values, formats))  # type: ignore[arg-type]  # None is NULL


def _check(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> pq.abc.PGresult:
    if result.status in _OK:
        return result
    message = (result.error_message or pgconn.error_message or b"the database did not answer").decode(errors="replace")
    sqlstate = result.error_field(pq.DiagnosticField.SQLSTATE)
    if sqlstate is None or pgconn.status != pq.ConnStatus.OK:
        raise psycopg.OperationalError(message.strip())
    raise errors.lookup(sqlstate.decode())(message.strip())


def rows(result: pq.abc.PGresult) -> list[tuple[Any, ...]] | None:
    """The result's rows, each value read by its column's type; None for a type not in ``LOADERS``."""
    loaders = [LOADERS.get(result.ftype(i)) for i in range(result.nfields)]
    if any(load is None for load in loaders):
        return None
    out = []
    for r in range(result.ntuples):
        row = []
        for c, load in enumerate(loaders):
            v = result.get_value(r, c)
            row.append(None if v is None else load(v))  # type: ignore[misc]
        out.append(tuple(row))
    return out
