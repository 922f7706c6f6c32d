"""Plain driver access for the citizen's hot path: a survey page and a submission without the ORM.

Through the ORM a survey page cost about 6 ms of CPU, a third of it the lookup of its receipt code; a
phone-facing path that many citizens hit at once should cost a few tenths of a millisecond. So the
citizen journey talks to the driver (sqlite3 or psycopg) itself, with SQL written once and column
types taken from the tables (SQLAlchemy's own bind and result processors), so values are stored and
read exactly as the ORM would:

- **reads** run on the calling thread (the event loop, for the survey pages) on one connection per
  process, in autocommit: an indexed lookup is quicker than the hop to a worker thread would be. Only
  opening that connection, which can take seconds when the server is far or down, goes to a thread.
- **writes** run off the loop (a commit waits for the disk): from the event loop through ``write``,
  which one writer thread per process commits in batches (group commit); from plain code through
  ``transaction``. Each transaction is explicit (``BEGIN IMMEDIATE`` on SQLite, so two processes never
  deadlock upgrading a read lock) and either committed whole or rolled back whole.

Errors come out as SQLAlchemy's (``IntegrityError``, ``OperationalError``... from
``DBAPIError.instance``), so the app maps them as it maps any database error (a 503 page). A
connection that failed is closed and replaced on next use, so service resumes when the database does.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from itertools import zip_longest
from typing import Any, TypeVar, cast

import anyio.to_thread
from sqlalchemy import Column, Engine, Table
from sqlalchemy.exc import DBAPIError, OperationalError

from survey.db import libpq

log = logging.getLogger("sipas.db")
Row = tuple[Any, ...]
T = TypeVar("T")
_Work = tuple[Callable[["Transaction"], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]
_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class DirectDb:
    """The citizen journey's connections to ``engine``'s database (see the module's docstring)."""

    def __init__(self, engine: Engine, *, max_writers: int = 8, max_batch: int = 64) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._dbapi = engine.dialect.loaded_dbapi
        self._reader: Any = None
        self._pq = None if self.sqlite else libpq.Statements()
        self._reader_lock = threading.Lock()
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self._writers = threading.BoundedSemaphore(max_writers)
        self._max_idle = max_writers
        self._statements: dict[str, tuple[str, tuple[Callable[[Any], Any] | None, ...]]] = {}
        self.max_batch = max_batch
        self.lock_timeout_s = 30.0  # SQLite: how long a write waits for another process's lock
        self.writes = self.batches = 0  # through ``write``: how well group commit groups
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_lock = threading.Lock()
        self._inserts: dict[str, tuple[str, tuple[tuple[str, Callable[[Any], Any] | None], ...]]] = {}

    # -- connections ------------------------------------------------------------------------------

    def _open(self) -> Any:
        """A new driver connection in autocommit, with the engine's connect-time settings (SQLite's PRAGMAs)."""
        proxied = self.engine.raw_connection()
        conn: Any = proxied.driver_connection
        proxied.detach()  # ours from now on: the engine's pool neither counts nor resets it
        if self.sqlite:
            conn.isolation_level = None
        else:
            conn.rollback()  # the pool's liveness check may have opened a transaction
            conn.autocommit = True
        return conn

    def _discard(self, conn: Any) -> None:
        if self._pq is not None:
            self._pq.forget(conn)
        with suppress(self._dbapi.Error):
            conn.close()

    def _broken(self, exc: BaseException) -> bool:
        """Whether the connection an error came from should be replaced (not for a refused value)."""
        kept = (self._dbapi.IntegrityError, self._dbapi.DataError, self._dbapi.ProgrammingError)
        return not isinstance(exc, kept)

    def _error(self, sql: str, params: Any, exc: Exception) -> DBAPIError:
        return cast(DBAPIError, DBAPIError.instance(sql, params, exc, self._dbapi.Error, hide_parameters=True))

    def connect(self) -> None:
        """Open the read connection if there is none (blocking: call it from a thread on an event loop)."""
        with self._reader_lock:
            if self._reader is None:
                try:
                    self._reader = self._open()
                except DBAPIError:
                    raise
                except self._dbapi.Error as exc:
                    raise self._error("connect", None, exc) from exc

    def close(self) -> None:
        with self._writer_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(None)
            writer.join(timeout=30)
            log.info("writer: %d writes committed in %d batches", self.writes, self.batches)
        with self._reader_lock:
            if self._reader is not None:
                self._discard(self._reader)
                self._reader = None
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._discard(conn)

    # -- statements -------------------------------------------------------------------------------

    def _prepared(self, sql: str, types: Sequence[Column[Any] | None]) -> tuple[str, tuple[Any, ...]]:
        """The driver's form of ``sql`` (``:name`` parameters for sqlite3, ``%(name)s`` for psycopg) and
        the result processors of the columns ``types`` names, in order."""
        found = self._statements.get(sql)
        if found is None:
            text = sql if self.sqlite else _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
            dialect = self.engine.dialect
            procs = tuple(
                None if c is None else c.type.dialect_impl(dialect).result_processor(dialect, None) for c in types
            )
            found = self._statements[sql] = (text, procs)
        return found

    def one(self, sql: str, params: Mapping[str, Any], types: Sequence[Column[Any] | None] = ()) -> Row | None:
        """The first row of a read on this thread's read connection (opened here if needed), or None.

        ``types``: the table columns the result's columns come from, so each value comes back as its
        column type says (a date as a date, a flag as a bool); ``None`` for a column to leave as it is.
        """
        rows = self.all(sql, params, types, limit_one=True)
        return rows[0] if rows else None

    def all(
        self, sql: str, params: Mapping[str, Any], types: Sequence[Column[Any] | None] = (), *, limit_one: bool = False
    ) -> list[Row]:
        text, procs = self._prepared(sql, types)
        if self._reader is None:
            self.connect()
        conn = self._reader
        try:
            raw = self._pq_rows(conn, sql, params)
            if raw is None:
                cur = conn.execute(text, params) if params else conn.execute(sql)
                raw = [cur.fetchone()] if limit_one else cur.fetchall()
            elif limit_one:
                raw = raw[:1]
        except self._dbapi.Error as exc:
            if self._broken(exc):
                with self._reader_lock:
                    if self._reader is conn:
                        self._reader = None
                self._discard(conn)
            raise self._error(sql, params, exc) from exc
        rows = [r for r in raw if r is not None]
        if not any(procs):
            return [tuple(r) for r in rows]
        return [tuple(v if p is None else p(v) for p, v in zip_longest(procs, r)) for r in rows]

    def _pq_rows(self, conn: Any, sql: str, params: Mapping[str, Any]) -> list[Any] | None:
        """PostgreSQL: the rows through libpq (``survey.db.libpq``), or None to go through the cursor."""
        if self._pq is None:
            return None
        result = self._pq.run(conn, sql, params)
        return None if result is None else libpq.rows(result)

    async def ready(self) -> None:
        """From an event loop, before reads on it: opens the read connection in a thread if there is none,
        so that only the query itself runs on the loop."""
        if self._reader is None:
            await anyio.to_thread.run_sync(self.connect)

    # -- writes -----------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction on a pooled write connection: committed when the block ends, rolled back on any error.

        Blocking (a commit waits for the disk): from an event loop, run the whole block in a worker thread.
        """
        with self._writers:
            conn = self._take()
            tx = Transaction(self, conn)
            try:
                self._begin(tx)
                yield tx
                tx.execute("COMMIT", {})
            except BaseException as exc:
                self._rollback(conn, exc)
                raise
            self._give_back(conn)

    async def write(self, work: Callable[[Transaction], T]) -> T:
        """Run ``work`` in a transaction from an event loop, committed together with the other writes waiting.

        One writer thread per process takes every write that is waiting, runs them in one transaction
        and commits them at once: one lock and one disk flush for a burst of submissions instead of one
        each (group commit). The result comes back only after the commit. If any write of the batch
        raises, or the commit fails, nothing of the batch is kept and each write runs again in its own
        transaction, so only the faulty one fails (a write must be safe to run twice when its first
        run was rolled back: ours are guarded by unique keys and conditional updates).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._writer_lock:
            if self._writer is None or not self._writer.is_alive():
                self._writer = threading.Thread(target=self._write_loop, name="sipas-writer", daemon=True)
                self._writer.start()
            self._queue.put((work, loop, future))
        return await future

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._write_batch(batch)

    def _write_batch(self, batch: list[_Work]) -> None:
        self.writes += len(batch)
        self.batches += 1
        outcomes = self._together(batch) if len(batch) > 1 else None
        if outcomes is None:  # one write, or one of the batch raised: each in its own transaction
            outcomes = [self._alone(work) for work, _, _ in batch]
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (ok, value), (_, loop, future) in zip(outcomes, batch, strict=True):
            by_loop.setdefault(loop, []).append((future, ok, value))
        for loop, settled in by_loop.items():  # one wake-up of each event loop per batch, not one per write
            with suppress(RuntimeError):  # the loop has closed (the server is stopping)
                loop.call_soon_threadsafe(_settle_all, settled)

    def _together(self, batch: list[_Work]) -> list[tuple[bool, Any]] | None:
        """The batch in one transaction; None (and nothing stored) if any of it raised."""
        try:
            with self.transaction() as tx:
                values = [work(tx) for work, _, _ in batch]
        except Exception:
            return None
        return [(True, v) for v in values]

    def _alone(self, work: Callable[[Transaction], Any]) -> tuple[bool, Any]:
        try:
            with self.transaction() as tx:
                return True, work(tx)
        except Exception as exc:
            return False, exc

    def _begin(self, tx: Transaction) -> None:
        """BEGIN; on SQLite, ``BEGIN IMMEDIATE`` (the write lock now), retried every fraction of a millisecond
        while another process holds the lock. SQLite's own busy handler sleeps 1, 2, 5 ... up to 100 ms
        between tries, so under a burst one process could starve the other for a second or more."""
        if not self.sqlite:
            tx.execute("BEGIN", {})
            return
        deadline = time.monotonic() + self.lock_timeout_s
        delay = 0.0002
        while True:
            try:
                tx.execute("BEGIN IMMEDIATE", {})
                return
            except OperationalError as exc:
                if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                    raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 1.5, 0.005)

    def _take(self) -> Any:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        try:
            conn = self._open()
            if self.sqlite:
                conn.execute("PRAGMA busy_timeout = 0")  # _begin waits for the write lock, in short steps
            return conn
        except DBAPIError:
            raise
        except self._dbapi.Error as exc:
            raise self._error("connect", None, exc) from exc

    def _give_back(self, conn: Any) -> None:
        with self._idle_lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        self._discard(conn)

    def _rollback(self, conn: Any, exc: BaseException) -> None:
        orig = exc.orig if isinstance(exc, DBAPIError) else None
        if orig is not None and self._broken(orig):
            self._discard(conn)
            return
        try:
            conn.execute("ROLLBACK")
        except self._dbapi.Error:
            self._discard(conn)
            return
        self._give_back(conn)

    def insert_sql(self, table: Table, columns: Sequence[str]) -> tuple[str, tuple[tuple[str, Any], ...]]:
        key = f"{table.name}:{','.join(columns)}"
        found = self._inserts.get(key)
        if found is None:
            dialect = self.engine.dialect
            names = ", ".join(columns)
            marks = ", ".join(f":{c}" for c in columns)
            procs = tuple((c, table.c[c].type.dialect_impl(dialect).bind_processor(dialect)) for c in columns)
            sql = f"INSERT INTO {table.name} ({names}) VALUES ({marks})"  # noqa: S608 (names from the table)
            found = self._inserts[key] = (sql, procs)
        return found


def _settle_all(settled: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in settled:
        if future.cancelled():  # the request went away; its write stands (a re-sent page is recognised)
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Transaction:
    """The statements of one ``DirectDb.transaction`` block."""

    def __init__(self, db: DirectDb, conn: Any) -> None:
        self._db = db
        self._conn = conn

    def execute(self, sql: str, params: Mapping[str, Any]) -> int:
        """Run one statement; the number of rows it changed."""
        text, _ = self._db._prepared(sql, ())
        try:
            if self._db._pq is not None:
                result = self._db._pq.run(self._conn, sql, params)
                if result is not None:
                    return int(result.command_tuples or 0)
            cur = self._conn.execute(text, params) if params else self._conn.execute(sql)
        except self._db._dbapi.Error as exc:
            raise self._db._error(sql, params, exc) from exc
        return int(cur.rowcount)

    def insert(
        self, table: Table, values: Mapping[str, Any], *, then: tuple[str, Mapping[str, Any]] | None = None
    ) -> int:
        """Insert one row, each value converted as the column's type converts it for this database.

        ``then``: a statement (and its parameters) to run right after, in the same round trip where the
        database allows it (PostgreSQL: ``WITH inserted AS (INSERT ...) <then>``); returns the number
        of rows ``then`` changed (or 1, the row inserted, without it).
        """
        sql, procs = self._db.insert_sql(table, tuple(values))
        params = {c: (v if p is None else p(v)) for (c, p), v in zip(procs, values.values(), strict=True)}
        if then is None:
            return self.execute(sql, params)
        then_sql, then_params = then
        assert not set(then_params) & set(params), "the two statements' parameter names must differ"
        if self._db.sqlite:
            self.execute(sql, params)
            return self.execute(then_sql, then_params)
        return self.execute(f"WITH inserted AS ({sql}) {then_sql}", {**params, **then_params})
