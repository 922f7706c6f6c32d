"""The per-address limit on the survey pages: a friendly 429 page in Vietnamese or English, counted atomically
(exact under concurrency), shared by the app processes (Redis, or a SQLite file on one machine), keyed by MACs
(no address stored), with the client address from X-Forwarded-For only behind a trusted proxy, and a Redis
outage degrading to a per-process count instead of an error."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest
from litestar.stores.memory import MemoryStore
from sqlalchemy import Engine

from survey.app import create_app
from survey.db.engine import make_engine, migrate
from survey.limits import Counters, MemoryCounters, RedisCounters, SqliteCounters
from survey.limits.clients import UNREADABLE, client_address
from survey.settings import Settings
from tests.conftest import make_settings, unavailable
from tests.factories import World, build_world, new_code
from tests.servers import free_port, live_server

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database number of the tests' own
LIMIT = 5


def _get_all(
    settings: Settings,
    engine: Engine,
    paths: list[str],
    client: tuple[str, int],
    *,
    headers: dict[str, str] | None = None,
    counters: Counters | None = None,
    at_once: bool = False,
) -> list[httpx.Response]:
    """GET ``paths`` from the network address ``client`` (the ASGI app, in process): one after the other, or
    all at the same time (``at_once``)."""
    app = create_app(
        settings, engine, session_store=MemoryStore(), counters=counters if counters is not None else MemoryCounters()
    )

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
            if at_once:
                return list(await asyncio.gather(*(c.get(p) for p in paths)))
            return [await c.get(p) for p in paths]

    return asyncio.run(run())


def test_over_the_limit_gets_a_friendly_429_in_the_citizens_language(
    settings: Settings, engine: Engine, world: World
) -> None:
    limited = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT)
    code = new_code(engine, world)
    paths = [f"/r/{code}"] * LIMIT + [f"/r/{code}", f"/c/{world.counter_token}?lang=en", "/thanks"]
    answers = _get_all(limited, engine, paths, ("203.0.113.7", 40000))
    assert [a.status_code for a in answers] == [200] * LIMIT + [429, 429, 200]  # /thanks is not limited
    vi, en = answers[LIMIT], answers[LIMIT + 1]
    assert '<html lang="vi">' in vi.text and "Xin đợi một phút" in vi.text and "Traceback" not in vi.text
    assert '<html lang="en">' in en.text and "Please wait a minute" in en.text
    assert (
        en.headers["content-type"].startswith("text/html")
        and "default-src 'none'" in en.headers["content-security-policy"]
    )
    # another address is not held back by the first one's count
    other = _get_all(limited, engine, [f"/r/{code}"], ("198.51.100.4", 40000))
    assert other[0].status_code == 200


def test_the_limit_and_its_exempt_networks_are_settings_and_nothing_is_exempt_by_default(
    settings: Settings, engine: Engine, world: World
) -> None:
    code = new_code(engine, world)
    paths = [f"/r/{code}"] * (LIMIT + 3)
    off = make_settings(settings.database_url, public_rate_limit_per_minute=0)
    assert {a.status_code for a in _get_all(off, engine, paths, ("203.0.113.8", 1))} == {200}
    tight = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT)
    assert Counter(a.status_code for a in _get_all(tight, engine, paths, ("127.0.0.1", 1))) == {200: LIMIT, 429: 3}
    exempt = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT, rate_limit_exempt=["10.0.0.0/8"])
    assert {a.status_code for a in _get_all(exempt, engine, paths, ("10.1.2.3", 1))} == {200}
    # an address that cannot be read (here the peer is no IP address at all) is limited, never waved through
    assert Counter(a.status_code for a in _get_all(tight, engine, paths, ("testclient", 1))) == {200: LIMIT, 429: 3}


def test_a_burst_from_one_address_gets_exactly_the_limit_through(
    settings: Settings, engine: Engine, world: World
) -> None:
    limit = 60
    tight = make_settings(settings.database_url, public_rate_limit_per_minute=limit)
    paths = [f"/c/{world.counter_token}"] * 300
    answers = _get_all(tight, engine, paths, ("203.0.113.9", 1), at_once=True)
    assert Counter(a.status_code for a in answers) == {200: limit, 429: 300 - limit}


def test_x_forwarded_for_counts_only_behind_a_trusted_proxy(settings: Settings, engine: Engine, world: World) -> None:
    tight = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT, trusted_proxies=["10.9.0.0/16"])
    path = f"/c/{world.counter_token}"
    counters = MemoryCounters()

    def statuses(peer: str, forwarded: str, n: int = LIMIT + 1) -> list[int]:
        got = _get_all(tight, engine, [path] * n, (peer, 1), headers={"X-Forwarded-For": forwarded}, counters=counters)
        return [a.status_code for a in got]

    # behind the proxy, each phone has its own count, taken from the right-most address that is not a proxy
    assert statuses("10.9.0.1", "198.51.100.1") == [200] * LIMIT + [429]
    assert statuses("10.9.0.1", "198.51.100.2, 10.9.0.7") == [200] * LIMIT + [429]
    # a phone cannot escape its count by writing a new left-most address: it is never believed
    assert statuses("10.9.0.1", "203.0.113.99, 198.51.100.1", 1) == [429]
    # nor by sending the header straight to the app: a peer that is not a proxy is counted as itself
    assert statuses("198.51.100.3", "203.0.113.100") == [200] * LIMIT + [429]
    assert statuses("198.51.100.3", "203.0.113.101", 1) == [429]
    # a proxy that forwards garbage gets its requests limited together, not exempted
    assert statuses("10.9.0.1", "not-an-address") == [200] * LIMIT + [429]


def test_client_addresses_as_counted() -> None:
    trusted = ("10.0.0.0/8", "::1/128")
    assert client_address("203.0.113.5", [], trusted) == "203.0.113.5"
    assert client_address("10.0.0.1", ["203.0.113.5"], trusted) == "203.0.113.5"
    assert client_address("10.0.0.1", ["198.51.100.1, 203.0.113.5", "10.0.0.2"], trusted) == "203.0.113.5"
    assert client_address("10.0.0.1", [], trusted) == "10.0.0.1"  # a proxy without the header: itself
    assert client_address("::ffff:203.0.113.5", [], trusted) == "203.0.113.5"
    assert client_address("2001:db8:1:2:3:4:5:6", [], trusted) == client_address("2001:db8:1:2:ffff::1", [], ())
    assert client_address("2001:db8:1:2:3:4:5:6", [], ()) == "2001:db8:1:2::/64"
    assert client_address(None, [], trusted) == client_address("x", [], ()) == UNREADABLE
    assert client_address("10.0.0.1", ["203.0.113.5, bogus"], trusted) == UNREADABLE


def test_counters_are_exact_under_concurrency_and_expire_from_disk(tmp_path: Path) -> None:
    counters = SqliteCounters(tmp_path / "limits.sqlite")

    async def burst() -> list[int]:
        hits = await asyncio.gather(*(counters.hit("k", window_s=60) for _ in range(200)))
        return sorted(h.count for h in hits)

    try:
        assert asyncio.run(burst()) == list(range(1, 201))
        # two processes on one file (the workers of one machine) share the count exactly
        script = (
            "import asyncio, sys; from pathlib import Path; from survey.limits import SqliteCounters\n"
            "c = SqliteCounters(Path(sys.argv[1]))\n"
            "async def go():\n    return [(await c.hit('shared', window_s=60)).count for _ in range(150)]\n"
            "print(max(asyncio.run(go())))"
        )
        runs = [
            subprocess.Popen([sys.executable, "-c", script, str(counters.path)], stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        maxima = sorted(int((r.communicate(timeout=60)[0] or "0").strip()) for r in runs)
        assert maxima[1] == 300  # every hit of both processes counted once: the last one saw 300

        async def expire() -> int:
            await counters.hit("short", window_s=1)
            await asyncio.sleep(1.1)
            counters._next_purge = 0.0  # the next statement purges (every minute otherwise)
            assert await counters.peek("short") is None
            return counters.stored()

        assert asyncio.run(expire()) == 2  # "k" and "shared" are left; the expired row is gone from the file
    finally:
        asyncio.run(counters.close())


def test_memory_counters_forget_expired_counts() -> None:
    now = [0.0]
    counters = MemoryCounters(clock=lambda: now[0], purge_every=10)
    for i in range(10):
        counters.hit_now(f"k{i}", window_s=5)
    now[0] = 6.0
    assert asyncio.run(counters.peek("k0")) is None
    for _ in range(10):
        counters.hit_now("fresh", window_s=5)
    assert len(counters) == 1  # the ten expired counters were purged
    assert counters.hit_now("fresh", window_s=5).count == 11


class _Records(logging.Handler):
    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_redis_outage_limits_per_process_with_a_warning_never_an_error(
    settings: Settings, engine: Engine, world: World
) -> None:
    tight = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT)
    gone = RedisCounters(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)  # nothing listens there
    paths = [f"/c/{world.counter_token}"] * (LIMIT + 2)
    handler = _Records(logging.WARNING)
    records = handler.records
    logging.getLogger("sipas.limits").addHandler(handler)  # the app's logging config replaces the root's handlers
    try:
        answers = _get_all(tight, engine, paths, ("203.0.113.10", 1), counters=gone)
    finally:
        logging.getLogger("sipas.limits").removeHandler(handler)
    assert [a.status_code for a in answers] == [200] * LIMIT + [429, 429]
    warnings = [r for r in records if "Redis unreachable" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request


@pytest.mark.parametrize("store", ["redis", "sqlite-file"])
def test_two_processes_agree_on_the_count_of_a_concurrent_burst(store: str, tmp_path: Path) -> None:
    import redis

    redis_url = REDIS_URL
    if store == "redis":
        try:
            redis.Redis.from_url(redis_url, socket_connect_timeout=1).flushdb()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at {redis_url}: {exc}")
    url = f"sqlite:///{tmp_path / 'sipas.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        world = build_world(engine)
    finally:
        engine.dispose()
    limit, sent = 30, 120
    env = {"SIPAS_PUBLIC_RATE_LIMIT_PER_MINUTE": str(limit), "SIPAS_RATE_LIMIT_EXEMPT": "[]"}
    if store == "redis":
        env["SIPAS_REDIS_URL"] = redis_url

    async def burst(base_url: str) -> list[httpx.Response]:
        phones = [httpx.AsyncClient(base_url=base_url, timeout=30) for _ in range(sent)]  # a connection each
        try:
            return list(await asyncio.gather(*(p.get(f"/c/{world.counter_token}") for p in phones)))
        finally:
            await asyncio.gather(*(p.aclose() for p in phones))

    with live_server(url, workers=2, log_path=tmp_path / "server.log", env=env) as server:
        answers = asyncio.run(burst(server.base_url))
        log = server.log(200)
    # each worker alone would have let up to `limit` through: together they let exactly `limit` through
    assert Counter(a.status_code for a in answers) == {200: limit, 429: sent - limit}, log
    assert all("Xin đợi một phút" in a.text for a in answers if a.status_code == 429)
    if store == "redis":
        keys = redis.Redis.from_url(redis_url).keys("*")
        assert [k for k in keys if b"public-rate" in k], "the counter lives in Redis"
        assert not [k for k in keys if b"127.0.0.1" in k]  # MACs, not addresses
        redis.Redis.from_url(redis_url).flushdb()
    else:
        with sqlite3.connect(tmp_path / "limits.sqlite") as conn:
            keys = [k for (k,) in conn.execute("SELECT key FROM counter")]
        assert len(keys) == 1 and "127.0.0.1" not in keys[0]  # beside the database, a MAC of the address
