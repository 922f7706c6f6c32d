"""Database work for the public pages: off the event loop, in a bounded number of threads, with a deadline.

A survey page or submission runs its queries in a worker thread, so the event loop keeps serving static files,
``/healthz`` and staff pages whatever the database does. Two bounds keep a stalled database (a migration's
lock, a server that accepts connections but never answers) from taking the process down with it:

- **a deadline** (``citizen_wait_seconds``): past it the citizen gets the friendly "please try again" page;
  the thread is left to finish on its own (PostgreSQL's ``statement_timeout``/``lock_timeout``, the pool's
  checkout timeout and libpq's ``connect_timeout`` end it soon after);
- **a ceiling on threads**: at most ``max_threads`` pieces of work run at once, the others wait their turn
  (within the deadline); threads still working past their caller's deadline are counted too, and once as many
  are stuck as may run, a new request is answered "please try again" at once instead of queueing behind them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread
from sqlalchemy import Connection, Engine

from survey.errors import ServiceUnavailableError
from survey.i18n import N_

T = TypeVar("T")
BUSY = N_("The service is busy or under maintenance. Please try again in a few minutes.")


class _Call:
    """One piece of work handed to a thread: whether it started, and whether its caller gave up first."""

    __slots__ = ("abandoned", "finished", "started")

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.abandoned = False


class BoundedDb:
    """Runs ``work(connection)`` for request handlers (see the module docstring)."""

    def __init__(self, engine: Engine, *, max_threads: int = 16, wait_s: float = 4.0) -> None:
        self.engine = engine
        self.max_threads = max_threads
        self.wait_s = wait_s
        self._stuck = 0
        self._lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None
        self._sqlite_writes = threading.Lock() if engine.dialect.name == "sqlite" else None

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction in the calling thread, committed if the block ends normally, rolled back if it
        raises: what ``write`` runs its work in, for a background job (``survey.citizen.mixer``) that has no
        deadline to keep but must queue with this process's other writers."""
        if self._sqlite_writes is None:
            with self.engine.begin() as conn:
                yield conn
            return
        # SQLite: one writer at a time anyway; queue this process's writers here instead of in SQLite's busy
        # handler, and take the write lock at BEGIN (a deferred transaction that reads first can fail to
        # upgrade its lock with "database is locked" at once, without waiting)
        with self._sqlite_writes, self.engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @property
    def stuck(self) -> int:
        """Threads still working whose caller stopped waiting for them (its deadline passed)."""
        return self._stuck

    def _limiter_here(self) -> anyio.CapacityLimiter:
        # made on first use, inside the event loop (anyio binds it to the running loop's library)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_threads)
        return self._limiter

    def _run(self, call: _Call, work: Callable[..., T], args: tuple[Any, ...], write: bool) -> T | None:
        with self._lock:
            if call.abandoned:
                return None
            call.started = True
        try:
            if not write:
                with self.engine.connect() as conn:
                    return work(conn, *args)
            with self.transaction() as conn:
                return work(conn, *args)
        finally:
            with self._lock:
                call.finished = True
                if call.abandoned:
                    self._stuck -= 1

    async def read(self, work: Callable[..., T], *args: Any) -> T:
        """``work(connection, *args)`` on a pooled connection (its transaction rolled back at the end)."""
        return await self._submit(work, args, write=False)

    async def write(self, work: Callable[..., T], *args: Any) -> T:
        """``work(connection, *args)`` in one transaction: committed if it returns, rolled back if it raises."""
        return await self._submit(work, args, write=True)

    async def _submit(self, work: Callable[..., T], args: tuple[Any, ...], *, write: bool) -> T:
        if self._stuck >= self.max_threads:  # the database has stopped answering: do not queue behind it
            raise ServiceUnavailableError(BUSY)
        call = _Call()
        try:
            with anyio.fail_after(self.wait_s):
                result = await anyio.to_thread.run_sync(
                    self._run, call, work, args, write, abandon_on_cancel=True, limiter=self._limiter_here()
                )
        except TimeoutError:
            raise ServiceUnavailableError(BUSY) from None
        finally:
            with self._lock:
                if not call.finished:
                    call.abandoned = True
                    if call.started:
                        self._stuck += 1
        return cast(T, result)  # None only for an abandoned call, whose caller is gone
