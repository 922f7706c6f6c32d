"""survey.db.bounded: database work off the event loop, within a deadline, on a bounded number of threads."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text

from survey.db.bounded import BoundedDb
from survey.db.engine import make_engine
from survey.errors import ServiceUnavailableError


def _engine(tmp_path: Path) -> Engine:
    return make_engine(f"sqlite:///{tmp_path / 'b.db'}")


def test_work_runs_in_a_thread_and_writes_commit_whole(tmp_path: Path) -> None:
    db = BoundedDb(_engine(tmp_path), max_threads=2, wait_s=5)

    def where(conn: Connection) -> int:
        return threading.get_ident()

    def write(conn: Connection, fail: bool) -> None:
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        if fail:
            raise ValueError("half-way")

    def count(conn: Connection) -> int:
        return int(conn.execute(text("SELECT count(*) FROM t")).scalar_one())

    async def run() -> tuple[int, int, int]:
        ident = await db.read(where)
        await db.write(write, False)
        with pytest.raises(ValueError):
            await db.write(write, True)
        return ident, threading.get_ident(), await db.read(count)

    worker, loop_thread, rows = asyncio.run(run())
    assert worker != loop_thread
    assert rows == 1  # the failed write left nothing behind


def test_a_stuck_database_answers_busy_within_the_deadline_and_stops_queueing(tmp_path: Path) -> None:
    db = BoundedDb(_engine(tmp_path), max_threads=2, wait_s=2.0)
    release = threading.Event()

    def hang(conn: Connection) -> None:
        release.wait(20)

    async def run() -> tuple[int, int, float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        outcomes = await asyncio.gather(*(db.read(hang) for _ in range(4)), return_exceptions=True)
        waited = loop.time() - began
        busy = sum(isinstance(o, ServiceUnavailableError) for o in outcomes)
        stuck = db.stuck  # two threads ran and are still held; the two others never got one
        began = loop.time()
        with pytest.raises(ServiceUnavailableError):
            await db.read(hang)  # refused at once: as many threads are stuck as may run
        assert loop.time() - began < 1.0  # well before a deadline would have passed
        release.set()
        for _ in range(100):
            if db.stuck == 0:
                break
            await asyncio.sleep(0.02)
        return busy, stuck, waited

    busy, stuck, waited = asyncio.run(run())
    assert busy == 4 and stuck == 2
    assert waited < 10  # everyone heard back at about the deadline (2 s), not when the database came back (20 s)
    assert db.stuck == 0  # the threads finished once the database answered, and the gate opened again
