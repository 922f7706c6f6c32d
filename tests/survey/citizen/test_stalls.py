"""A stalled database delays only the pages that need it, and only up to a deadline.

A migration holding a lock on ``receipt_code``, or a database server that accepts connections and never answers,
must leave ``/healthz``, static files and staff pages answering while the citizen's survey page (served by the
same single worker) answers the friendly "please try again" page within a few seconds. Nothing here asserts a
speed: each check is an order of events (the other pages answer while the survey page is still waiting) or a
bound of the size of the deadline itself.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from survey.db.engine import make_engine, migrate
from tests.conftest import make_account, sign_in
from tests.factories import World, build_world, full_answers, new_code
from tests.servers import LiveServer, live_server, tcp_proxy

BUSY_VI = "Hệ thống đang bận hoặc đang bảo trì"
LOCK_WAIT_S = 2  # SIPAS_DB_LOCK_TIMEOUT_SECONDS of the servers under test
DEADLINE_S = 3  # SIPAS_CITIZEN_WAIT_SECONDS
ENV = {"SIPAS_DB_LOCK_TIMEOUT_SECONDS": str(LOCK_WAIT_S), "SIPAS_CITIZEN_WAIT_SECONDS": str(DEADLINE_S)}


Sent = tuple[str, str, dict[str, object]]  # method, path, httpx keyword arguments


@dataclass
class Timed:
    path: str
    status: int
    text: str
    done_at: float  # seconds after the stall began


async def _get(client: httpx.AsyncClient, path: str, began: float, method: str = "GET", **kw: object) -> Timed:
    answer = await client.request(method, path, **kw)  # type: ignore[arg-type]
    return Timed(path, answer.status_code, answer.text, time.perf_counter() - began)


async def _while_stalled(
    server: LiveServer, citizen: list[Sent], others: list[str], cookies: httpx.Cookies
) -> tuple[list[Timed], list[Timed]]:
    """Send the citizen requests, then (while they wait) the other pages; every answer with its time."""
    began = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=server.base_url, timeout=60) as phone,
        httpx.AsyncClient(base_url=server.base_url, timeout=60, cookies=cookies) as office,
    ):
        waiting = [asyncio.create_task(_get(phone, path, began, method, **kw)) for method, path, kw in citizen]
        await asyncio.sleep(0.3)  # the survey requests are in the worker, waiting on the database
        assert not any(t.done() for t in waiting), "the stall did not hold the survey requests"
        answered = [await _get(office, path, began) for path in others]
        return list(await asyncio.gather(*waiting)), answered


def _check(citizen: list[Timed], others: list[Timed], *, deadline_s: float) -> None:
    first_503 = min(c.done_at for c in citizen)
    for other in others:
        assert other.status == 200, (other.path, other.status, other.text[:300])
        # answered while the survey requests were still waiting on the database: the event loop never blocked
        assert other.done_at < first_503, (other.path, other.done_at, first_503)
    for c in citizen:
        assert c.status == 503, (c.path, c.status, c.text[:300])
        assert BUSY_VI in c.text and "Traceback" not in c.text
        assert c.done_at < deadline_s + 2.0, (c.path, c.done_at)  # within a few seconds, not a minute


@pytest.fixture()
def pg_world(postgres_url: str) -> Iterator[tuple[str, Engine, World]]:
    engine = make_engine(postgres_url)
    try:
        yield postgres_url, engine, build_world(engine)
    finally:
        engine.dispose()


def _signed_in_cookies(base_url: str, engine: Engine, world: World) -> httpx.Cookies:
    account = make_account(engine, "admin", world.unit_id)
    with httpx.Client(base_url=base_url, timeout=30) as office:
        assert sign_in(office, account).status_code == 303  # type: ignore[arg-type]
        return office.cookies


@pytest.mark.postgres
def test_a_migrations_lock_on_receipt_codes_delays_only_the_survey_page(
    pg_world: tuple[str, Engine, World], tmp_path: Path
) -> None:
    url, engine, world = pg_world
    codes = [new_code(engine, world) for _ in range(3)]
    with live_server(url, workers=1, log_path=tmp_path / "server.log", env=ENV) as server:
        cookies = _signed_in_cookies(server.base_url, engine, world)
        migration = create_engine(url).connect()
        try:
            migration.execute(text("BEGIN"))
            migration.execute(text("LOCK TABLE receipt_code IN ACCESS EXCLUSIVE MODE"))  # as ALTER TABLE takes
            citizen: list[Sent] = [("GET", f"/r/{c}", {}) for c in codes] + [
                ("POST", f"/r/{codes[0]}", {"data": {"token": "x"}})
            ]
            others = ["/healthz", "/static/staff.css", "/staff", "/staff/units", f"/c/{world.counter_token}"]
            stalled, answered = asyncio.run(_while_stalled(server, citizen, others, cookies))
        finally:
            migration.rollback()
            migration.close()
        _check(stalled, answered, deadline_s=LOCK_WAIT_S)
        # the lock is gone: the same codes open their survey again
        assert httpx.get(f"{server.base_url}/r/{codes[1]}", timeout=10).status_code == 200


@pytest.mark.postgres
def test_a_database_that_never_answers_delays_only_the_survey_page(
    pg_world: tuple[str, Engine, World], tmp_path: Path
) -> None:
    url, engine, world = pg_world
    code = new_code(engine, world)
    target = make_url(url)
    with tcp_proxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
        through_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        with live_server(through_proxy, workers=1, log_path=tmp_path / "server.log", env=ENV) as server:
            assert httpx.get(f"{server.base_url}/r/{code}", timeout=10).status_code == 200  # pooled connections
            proxy.freeze()  # connections stay open, new ones are accepted: nothing ever comes back
            try:
                citizen: list[Sent] = [("GET", f"/r/{code}", {}), ("GET", f"/c/{world.counter_token}", {})]
                others = ["/healthz", "/static/staff.css", "/login"]
                stalled, answered = asyncio.run(_while_stalled(server, citizen, others, httpx.Cookies()))
                _check(stalled, answered, deadline_s=DEADLINE_S)
                assert httpx.get(f"{server.base_url}/readyz", timeout=30).status_code == 503
            finally:
                proxy.thaw()
            _recovers(server, f"/r/{code}")


def _recovers(server: LiveServer, path: str, within_s: float = 30.0) -> None:
    """The survey page answers 200 again once the database does (stuck threads end, the pool refills)."""
    deadline = time.monotonic() + within_s
    status = 0
    while time.monotonic() < deadline:
        status = httpx.get(f"{server.base_url}{path}", timeout=30).status_code
        if status == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"{path} still answers {status} {within_s:.0f} s after the database came back")


def test_a_held_sqlite_write_lock_delays_only_the_submission(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sipas.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        world = build_world(engine)
        code = new_code(engine, world)
        with live_server(url, workers=1, log_path=tmp_path / "server.log", env=ENV) as server:
            cookies = _signed_in_cookies(server.base_url, engine, world)
            writer = sqlite3.connect(tmp_path / "sipas.db", isolation_level=None)
            try:
                writer.execute("BEGIN IMMEDIATE")  # another process writing, and not letting go
                writer.execute("UPDATE receipt_code SET spent = spent")
                page = httpx.get(f"{server.base_url}/r/{code}", timeout=10)
                assert page.status_code == 200  # readers are not held up by a writer (WAL)
                token = page.text.split('name="token" value="')[1].split('"')[0]
                citizen: list[Sent] = [("POST", f"/r/{code}", {"data": {**full_answers(world.sipas), "token": token}})]
                others = ["/healthz", "/static/staff.css", "/staff", "/staff/units"]
                stalled, answered = asyncio.run(_while_stalled(server, citizen, others, cookies))
            finally:
                writer.execute("ROLLBACK")
                writer.close()
            _check(stalled, answered, deadline_s=LOCK_WAIT_S)
            assert httpx.get(f"{server.base_url}/r/{code}", timeout=10).status_code == 200  # nothing was spent
    finally:
        engine.dispose()
