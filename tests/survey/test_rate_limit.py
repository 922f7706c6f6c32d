"""The per-address limit on the survey pages: a friendly 429 page in Vietnamese or English, counted in the
shared store so that several app processes agree (two ``sipas serve`` workers on one Redis)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.stores.memory import MemoryStore
from sqlalchemy import Engine

from survey.app import create_app
from survey.db.engine import make_engine, migrate
from survey.settings import Settings
from tests.conftest import make_settings, unavailable
from tests.factories import World, build_world, new_code
from tests.servers import live_server

REDIS_URL = "redis://127.0.0.1:6379/13"  # a database number of the tests' own
LIMIT = 5


def _get_all(settings: Settings, engine: Engine, paths: list[str], client: tuple[str, int]) -> list[httpx.Response]:
    """GET ``paths`` one after the other from the network address ``client`` (the ASGI app, in process)."""
    app = create_app(settings, engine, session_store=MemoryStore())

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
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


def test_the_limit_is_a_setting_and_loopback_is_exempt(settings: Settings, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    paths = [f"/r/{code}"] * (LIMIT + 3)
    off = make_settings(settings.database_url, public_rate_limit_per_minute=0)
    assert {a.status_code for a in _get_all(off, engine, paths, ("203.0.113.8", 1))} == {200}
    tight = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT)
    assert {a.status_code for a in _get_all(tight, engine, paths, ("127.0.0.1", 1))} == {200}
    local_too = make_settings(settings.database_url, public_rate_limit_per_minute=LIMIT, rate_limit_exempt=[])
    assert Counter(a.status_code for a in _get_all(local_too, engine, paths, ("127.0.0.1", 1))) == {200: LIMIT, 429: 3}


@pytest.fixture(scope="module")
def redis_db() -> Iterator[str]:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


def test_two_processes_sharing_redis_agree_on_the_count(redis_db: str, tmp_path: Path) -> None:
    import redis

    url = f"sqlite:///{tmp_path / 'sipas.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        world = build_world(engine)
    finally:
        engine.dispose()
    limit = 12
    env = {
        "SIPAS_REDIS_URL": redis_db,
        "SIPAS_PUBLIC_RATE_LIMIT_PER_MINUTE": str(limit),
        "SIPAS_RATE_LIMIT_EXEMPT": "[]",
    }
    with live_server(url, workers=2, log_path=tmp_path / "server.log", env=env) as server:
        statuses = []
        for _ in range(limit + 18):  # a new connection each time, so both workers take some
            answer = httpx.get(f"{server.base_url}/c/{world.counter_token}", timeout=10)
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert "Xin đợi một phút" in answer.text
        log = server.log(200)
    # each worker alone would have let up to `limit` through: together they let exactly `limit` through
    assert Counter(statuses) == {200: limit, 429: 18}, log
    assert statuses[:limit] == [200] * limit
    keys = redis.Redis.from_url(redis_db).keys("*public-rate*")
    assert keys, "the counter lives in Redis"
