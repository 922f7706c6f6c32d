"""Reliability of the citizen journey against the real server: no submission lost, none stored twice.

Every test here runs ``sipas serve --workers 2`` in its own process group (``tests/servers.py``) and
talks to it over loopback with ``httpx.AsyncClient``, as phones would: open the survey page to get its
form token, then send the answers. What the server answered is checked against what the database holds.

* concurrency: 200 pages of one receipt code sent at the same instant store one response; 5,000 codes
  sent together store 5,000 responses and spend 5,000 codes; nobody sees a 5xx.
* a re-sent page (same form token twice) is stored once and thanked again.
* crash: SIGKILL to every server process mid-load loses no thanked submission and leaves no code spent
  without its response (or the reverse); the restarted server takes new submissions.
* database unavailable (PostgreSQL behind a TCP proxy that the test stops): a friendly 503 page in the
  citizen's language, no traceback; when the database is back the same requests succeed.

Select them with ``pytest -k reliability``. PostgreSQL variants carry the ``postgres`` mark and skip with
the reason when the server is unreachable (fail in CI).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.audited import issue_receipt_codes
from survey.db.engine import make_engine, migrate
from survey.db.models import ReceiptCode, Response, pk
from survey.receipts import codes
from tests.conftest import TOKEN_RE
from tests.factories import World, build_world, flush_answers, full_answers, new_code, open_receipt_wave, submission_key
from tests.servers import LiveServer, live_server, tcp_proxy

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
WORKERS = 2
IN_FLIGHT = 150  # requests in flight at once: a crowd at the counters of a whole province
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
USED_VI = "Mã này đã được sử dụng"
ANSWERS: dict[str, Any] = {"q_overall": "4", "q_went_well": ["quick", "polite"], "q_went_badly": ["waiting"]}


# -- where the server runs and what it serves -----------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated database: a fresh SQLite file (WAL), or this run's PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    url = f"sqlite:///{tmp_path_factory.mktemp('reliability') / 'sipas.db'}"
    migrate(url)
    return url


@pytest.fixture(scope="module")
def db(backend_url: str) -> Iterator[Engine]:
    engine = make_engine(backend_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def server(backend_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server per backend for the tests that do not kill it."""
    with live_server(backend_url, workers=WORKERS, log_path=tmp_path_factory.mktemp("server") / "server.log") as s:
        yield s
    _assert_clean_log(s)


@dataclass(frozen=True)
class Batch:
    """Fresh receipt codes of a wave of their own (quick questionnaire), so counts are exact."""

    world: World
    wave_id: int
    codes: list[str]


def make_batch(engine: Engine, count: int) -> Batch:
    world = build_world(engine)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        wave = open_receipt_wave(s, world, prefix="rel")
        fresh = issue_receipt_codes(
            s,
            wave_code=wave.code,
            unit_id=world.unit_id,
            field_id=world.field_id,
            count=count,
            valid_days=60,
            actor="test",
            today=world.today - timedelta(days=1),
        )
    return Batch(world, pk(wave), fresh)


@dataclass(frozen=True)
class Stored:
    responses: int
    spent: int
    keys: frozenset[str]


def stored(engine: Engine, wave_id: int) -> Stored:
    """What the database keeps of a wave: the mixing buffer flushed first, so an answer waiting in it counts."""
    flush_answers(engine)
    with Session(engine) as s:
        keys = s.scalars(select(col(Response.submission_key)).where(col(Response.wave_id) == wave_id)).all()
        spent = s.scalar(
            select(func.count())
            .select_from(ReceiptCode)
            .where(col(ReceiptCode.wave_id) == wave_id, col(ReceiptCode.spent).is_(True))
        )
    return Stored(responses=len(keys), spent=int(spent or 0), keys=frozenset(k for k in keys if k))


def spent_codes(engine: Engine, wanted: Sequence[str]) -> set[str]:
    by_hash = {codes.code_hash(c): c for c in wanted}
    with Session(engine) as s:
        rows = s.scalars(
            select(col(ReceiptCode.code_hash)).where(
                col(ReceiptCode.code_hash).in_(list(by_hash)), col(ReceiptCode.spent).is_(True)
            )
        ).all()
    return {by_hash[h] for h in rows}


def _assert_clean_log(server: LiveServer) -> None:
    text = server.log_path.read_text(errors="replace")
    assert "unexpected error" not in text, server.log(80)


# -- the phones ---------------------------------------------------------------------------------------------


@dataclass
class Attempt:
    """One citizen: open the page of ``path``, send the answers; what each step got back."""

    path: str
    token: str | None = None
    page_status: int | None = None
    status: int | None = None
    location: str = ""
    body: str = ""
    error: str | None = None  # a transport error: no answer reached the phone

    @property
    def thanked(self) -> bool:
        return self.status == 303 and self.location.startswith("/thanks")

    @property
    def used(self) -> bool:
        return self.status == 410 and USED_VI in self.body

    @property
    def server_error(self) -> bool:
        return any(s is not None and s >= 500 for s in (self.page_status, self.status))


# Loading the CA certificates takes ~25 ms per client: load them once (the traffic is plain HTTP anyway).
TLS = ssl.create_default_context()


def phone_client(base_url: str) -> httpx.AsyncClient:
    """One phone: its own client and connection. (One client shared by hundreds of tasks spends most of its
    time scanning its connection pool, encode/httpx#3215.)"""
    return httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT, verify=TLS)


async def open_page(client: httpx.AsyncClient, attempt: Attempt) -> None:
    try:
        page = await client.get(attempt.path)
    except httpx.TransportError as exc:
        attempt.error = f"GET: {exc.__class__.__name__}"
        return
    attempt.page_status = page.status_code
    if page.status_code == 200:
        match = TOKEN_RE.search(page.text)
        attempt.token = match.group(1) if match else None
    else:
        attempt.body = page.text


async def send(client: httpx.AsyncClient, attempt: Attempt, answers: dict[str, Any] = ANSWERS) -> None:
    assert attempt.token is not None
    try:
        resp = await client.post(attempt.path, data={**answers, "token": attempt.token})
    except httpx.TransportError as exc:
        attempt.error = f"POST: {exc.__class__.__name__}"
        return
    attempt.status = resp.status_code
    attempt.location = resp.headers.get("location", "")
    attempt.body = "" if resp.status_code == 303 else resp.text


async def citizens(
    base_url: str,
    attempts: Sequence[Attempt],
    *,
    in_flight: int = IN_FLIGHT,
    after_each: Callable[[Attempt], None] | None = None,
    until: Callable[[], bool] = lambda: False,
) -> None:
    """Every attempt opens its page then sends it, ``in_flight`` of them at a time (phones stop taking new
    attempts once ``until()`` is true)."""
    queue: asyncio.Queue[Attempt] = asyncio.Queue()
    for attempt in attempts:
        queue.put_nowait(attempt)

    async def phone() -> None:
        async with phone_client(base_url) as client:
            while not queue.empty() and not until():
                attempt = queue.get_nowait()
                await open_page(client, attempt)
                if attempt.token is not None:
                    await send(client, attempt)
                if after_each is not None:
                    after_each(attempt)

    await asyncio.gather(*(phone() for _ in range(min(in_flight, len(attempts)))))


def _summary(attempts: Sequence[Attempt]) -> Counter[str]:
    return Counter(a.error or f"{a.page_status}/{a.status}" for a in attempts)


# -- 1. concurrency -------------------------------------------------------------------------------------------


def test_reliability_200_pages_of_one_code_sent_at_once_store_one(server: LiveServer, db: Engine) -> None:
    """200 phones open the page of one receipt code (the full SIPAS questionnaire), then all send at once."""
    world = build_world(db)
    path = f"/r/{new_code(db, world)}"
    answers = full_answers(world.sipas)
    attempts = [Attempt(path) for _ in range(200)]

    async def scenario() -> float:
        phones = [phone_client(server.base_url) for _ in attempts]
        try:
            # 200 phones open the page (200 connections, each page with its own token) ...
            await asyncio.gather(*(open_page(c, a) for c, a in zip(phones, attempts, strict=True)))
            assert all(a.page_status == 200 and a.token for a in attempts), _summary(attempts)
            # ... and all send at the same instant.
            start = asyncio.Event()

            async def tap(client: httpx.AsyncClient, a: Attempt) -> None:
                await start.wait()
                await send(client, a, answers)

            tasks = [asyncio.create_task(tap(c, a)) for c, a in zip(phones, attempts, strict=True)]
            await asyncio.sleep(0.05)
            began = time.perf_counter()
            start.set()
            await asyncio.gather(*tasks)
            return time.perf_counter() - began
        finally:
            await asyncio.gather(*(c.aclose() for c in phones))

    seconds = asyncio.run(scenario())
    outcome = _summary(attempts)
    print(f"\n200 simultaneous sends of one code: {dict(outcome)} in {seconds:.2f} s")
    assert not [a for a in attempts if a.server_error or a.error], outcome
    thanked = [a for a in attempts if a.thanked]
    assert len(thanked) == 1, outcome
    assert all(a.used for a in attempts if not a.thanked), outcome  # the friendly "already used" page
    after = stored(db, world.open_wave_id)
    assert (after.responses, after.spent) == (1, 1)
    assert after.keys == {submission_key(thanked[0].token or "")}


def test_reliability_5000_codes_sent_together_store_5000(server: LiveServer, db: Engine) -> None:
    batch = make_batch(db, 5000)
    attempts = [Attempt(f"/r/{c}") for c in batch.codes]
    began = time.perf_counter()
    asyncio.run(citizens(server.base_url, attempts))
    seconds = time.perf_counter() - began
    outcome = _summary(attempts)
    print(f"\n5,000 codes, {IN_FLIGHT} in flight: {dict(outcome)} in {seconds:.1f} s ({5000 / seconds:.0f}/s)")
    assert all(a.page_status == 200 and a.thanked for a in attempts), outcome
    after = stored(db, batch.wave_id)
    assert (after.responses, after.spent) == (5000, 5000)
    assert after.keys == {submission_key(a.token or "") for a in attempts}


def test_reliability_more_requests_than_pooled_connections_do_not_stall(server: LiveServer, db: Engine) -> None:
    """Regression: with the request's session closed by a sync generator dependency, Litestar queued the
    close behind the waiting handlers in its executor; more requests than pooled connections (15 per worker
    on SQLite, 30 on PostgreSQL) then held every thread waiting for a connection that only a queued close
    could give back: a 30 s stall, then 500s (QueuePool limit reached)."""
    batch = make_batch(db, 1)
    attempts = [Attempt(f"/r/{batch.codes[0]}") for _ in range(300)]

    async def crowd() -> None:
        phones = [phone_client(server.base_url) for _ in attempts]
        try:
            await asyncio.gather(*(open_page(c, a) for c, a in zip(phones, attempts, strict=True)))
        finally:
            await asyncio.gather(*(c.aclose() for c in phones))

    began = time.perf_counter()
    asyncio.run(asyncio.wait_for(crowd(), 25))  # well under the pool's 30 s checkout timeout
    seconds = time.perf_counter() - began
    print(f"\n300 pages opened at once in {seconds:.2f} s")
    assert all(a.page_status == 200 and a.token for a in attempts), _summary(attempts)


# -- 4. a re-sent page ----------------------------------------------------------------------------------------


async def send_and_vanish(base_url: str, path: str, data: dict[str, Any]) -> asyncio.StreamWriter:
    """Send a page over a raw connection and never read the answer: the phone's network is gone."""
    url = httpx.URL(base_url)
    body = urlencode(data, doseq=True).encode()
    _reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.host}:{url.port}\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    return writer


async def until_stored(engine: Engine, wave_id: int, count: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while stored(engine, wave_id).responses < count:
        assert time.monotonic() < deadline, "the page sent before the network went away was not stored"
        await asyncio.sleep(0.05)


def test_reliability_a_page_sent_twice_is_stored_once(server: LiveServer, db: Engine) -> None:
    """A phone sends its page, loses the network before the answer arrives, and sends the same page again
    (same form token); or a double tap sends it twice at the same instant."""
    batch = make_batch(db, 2)
    counter_path = f"/c/{batch.world.counter_token}"
    counter_answers = {"q_overall": "5", "q_went_well": ["quick"]}
    receipt, double_tap = Attempt(f"/r/{batch.codes[0]}"), Attempt(f"/r/{batch.codes[1]}")
    counter, counter_double_tap = Attempt(counter_path), Attempt(counter_path)

    async def scenario() -> list[Attempt]:
        async with phone_client(server.base_url) as client:
            for attempt in (receipt, double_tap, counter, counter_double_tap):
                await open_page(client, attempt)
            # sent, stored, answer lost on the way back
            lost = [
                await send_and_vanish(server.base_url, receipt.path, {**ANSWERS, "token": receipt.token}),
                await send_and_vanish(server.base_url, counter.path, {**counter_answers, "token": counter.token}),
            ]
            await until_stored(db, batch.wave_id, 1)
            await until_stored(db, batch.world.counter_wave_id, 1)
            for writer in lost:
                writer.transport.abort()
            # the retries, and two double taps (two copies of one page at the same instant)
            retries = [Attempt(receipt.path, token=receipt.token), Attempt(counter.path, token=counter.token)]
            taps = [Attempt(double_tap.path, token=double_tap.token) for _ in range(2)]
            counter_taps = [Attempt(counter_path, token=counter_double_tap.token) for _ in range(2)]
            await asyncio.gather(
                send(client, retries[0]),
                send(client, retries[1], counter_answers),
                *(send(client, t) for t in taps),
                *(send(client, t, counter_answers) for t in counter_taps),
            )
            return [*retries, *taps, *counter_taps]

    receipt_retry, counter_retry, *taps = asyncio.run(scenario())
    assert not [a for a in taps if a.server_error or a.error], _summary(taps)
    # a receipt page sent again: the same thank-you as the first time (its own copy is the one stored)
    assert receipt_retry.thanked, (receipt_retry.status, receipt_retry.body[:300])
    receipt_taps, counter_taps = taps[:2], taps[2:]
    assert all(a.thanked for a in receipt_taps), _summary(receipt_taps)
    # a counter page sent again: the same thank-you as the first time
    assert counter_retry.thanked and all(a.thanked for a in counter_taps), _summary([counter_retry, *counter_taps])
    receipt_rows = stored(db, batch.wave_id)
    assert (receipt_rows.responses, receipt_rows.spent) == (2, 2)
    assert receipt_rows.keys == {submission_key(receipt.token or ""), submission_key(double_tap.token or "")}
    counter_rows = stored(db, batch.world.counter_wave_id)
    assert counter_rows.keys == {submission_key(counter.token or ""), submission_key(counter_double_tap.token or "")}
    assert counter_rows.responses == 2


# -- 2. crash -------------------------------------------------------------------------------------------------

CRASH_CODES = 1000
KILL_AFTER = 250  # thanked submissions before the power cut


def settle(engine: Engine, timeout_s: float = 10.0) -> None:
    """Wait until no other session is busy in this database: on PostgreSQL a COMMIT sent just before the
    kill may still be finishing in its backend. (SQLite has no server: its writers died with the app.)"""
    if engine.dialect.name != "postgresql":
        return
    deadline = time.monotonic() + timeout_s
    busy = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
    busy += "AND backend_type = 'client backend' AND state NOT IN ('idle')"
    with engine.connect() as conn:
        while conn.exec_driver_sql(busy).scalar():
            assert time.monotonic() < deadline, "PostgreSQL sessions of the killed server did not end"
            conn.rollback()
            time.sleep(0.05)


def test_reliability_sigkill_mid_load_loses_nothing(backend_url: str, db: Engine, tmp_path: Path) -> None:
    """SIGKILL to the server's whole process group while 150 phones are submitting, then a restart."""
    batch = make_batch(db, CRASH_CODES)
    attempts = [Attempt(f"/r/{c}") for c in batch.codes]
    log_path = tmp_path / "server.log"
    killed_at: list[float] = []
    thanked_so_far = Counter[bool]()

    with live_server(backend_url, workers=WORKERS, log_path=log_path) as first:

        def cut_power(attempt: Attempt) -> None:
            thanked_so_far[attempt.thanked] += 1
            if not killed_at and thanked_so_far[True] >= KILL_AFTER:
                first.kill()  # SIGKILL to the supervisor and both workers, mid-load
                killed_at.append(time.perf_counter())

        began = time.perf_counter()
        asyncio.run(citizens(first.base_url, attempts, after_each=cut_power, until=lambda: bool(killed_at)))
        assert killed_at, "the load finished before the server was killed"
        assert not first.alive

    thanked = [a for a in attempts if a.thanked]
    lost_answer = [a for a in attempts if a.token and a.error and a.error.startswith("POST")]  # sent, no answer
    unsent = [a for a in attempts if a.status is None and not (a.error or "").startswith("POST")]
    assert not [a for a in attempts if a.server_error], _summary(attempts)
    assert len(thanked) + len(lost_answer) + len(unsent) == len(attempts), _summary(attempts)

    # Every thanked submission is stored, and nothing is half-written.
    settle(db)
    after = stored(db, batch.wave_id)
    assert {submission_key(a.token or "") for a in thanked} <= after.keys
    assert after.responses == after.spent
    spent = spent_codes(db, batch.codes)
    assert {a.path.removeprefix("/r/") for a in thanked} <= spent
    for a in lost_answer:  # sent but cut off: stored whole or not at all
        code = a.path.removeprefix("/r/")
        assert (code in spent) == (submission_key(a.token or "") in after.keys), a
    assert not spent & {a.path.removeprefix("/r/") for a in unsent}
    if make_url(backend_url).get_backend_name() == "sqlite":
        with db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    stored_though_cut = sum(a.path.removeprefix("/r/") in spent for a in lost_answer)
    print(
        f"\nkilled after {killed_at[0] - began:.1f} s: {len(thanked)} thanked, {len(lost_answer)} sent without "
        f"an answer ({stored_though_cut} of them stored), {after.responses} stored, {after.spent} codes spent"
    )

    # The restarted server, same database and port: the cut-off citizens try again, new ones arrive.
    with live_server(backend_url, workers=WORKERS, port=first.port, log_path=log_path) as second:
        retries = [Attempt(a.path) for a in lost_answer]
        newcomers = [Attempt(a.path) for a in unsent[:50]]
        restarted = time.perf_counter()
        asyncio.run(citizens(second.base_url, retries + newcomers))
        print(
            f"restarted in {second.started_in_s:.1f} s, {len(retries + newcomers)} more in "
            f"{time.perf_counter() - restarted:.1f} s: {dict(_summary(retries + newcomers))}"
        )
    for retry in retries:
        code = retry.path.removeprefix("/r/")
        if code in spent:  # stored before the crash: the page says so (and thanks them)
            assert retry.page_status == 410 and USED_VI in retry.body and retry.status is None, retry
        else:
            assert retry.thanked, retry
    assert all(a.thanked for a in newcomers), _summary(newcomers)
    final = stored(db, batch.wave_id)
    assert final.responses == final.spent == after.responses + len(newcomers) + len(lost_answer) - stored_though_cut
    _assert_clean_log(second)


# -- 3. database unavailable ----------------------------------------------------------------------------------

BUSY_VI = "Hệ thống đang bận hoặc đang bảo trì"
BUSY_EN = "The service is busy or under maintenance"
LEAKS = ("Traceback", 'File "', "psycopg", "OperationalError", "sqlalchemy", "postgres")


def _fresh(base_url: str, cookies: dict[str, str] | None = None) -> httpx.Client:
    """A new connection per request, so the requests spread over both workers."""
    return httpx.Client(base_url=base_url, timeout=30, verify=TLS, headers={"Connection": "close"}, cookies=cookies)


@pytest.mark.postgres
def test_reliability_database_unavailable_gets_a_friendly_503_then_recovers(postgres_url: str, tmp_path: Path) -> None:
    real = make_url(postgres_url)
    engine = make_engine(postgres_url)
    try:
        batch = make_batch(engine, 1)
        code_path = f"/r/{batch.codes[0]}"
        counter_path = f"/c/{batch.world.counter_token}"
        counter_answers = {"q_overall": "3"}
        with (
            tcp_proxy(real.host or "127.0.0.1", real.port or 5432) as proxy,
            live_server(
                real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
                workers=WORKERS,
                log_path=tmp_path / "server.log",
            ) as server,
        ):

            def request(method: str, path: str, cookies: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
                with _fresh(server.base_url, cookies) as client:
                    return client.request(method, path, **kwargs)

            def token(path: str) -> str:
                page = request("GET", path)
                assert page.status_code == 200, page.text[:300]
                match = TOKEN_RE.search(page.text)
                assert match
                return match.group(1)

            receipt_token, counter_token = token(code_path), token(counter_path)
            receipt_post = {**ANSWERS, "token": receipt_token}
            counter_post = {**counter_answers, "token": counter_token}
            cases: list[tuple[str, str, dict[str, Any], str]] = [
                ("GET", code_path, {}, "vi"),
                ("GET", code_path + "?lang=en", {}, "en"),
                ("GET", code_path, {"cookies": {"sipas_lang": "en"}}, "en"),
                ("POST", code_path, {"data": receipt_post}, "vi"),
                ("POST", code_path + "?lang=en", {"data": receipt_post}, "en"),
                ("POST", code_path, {"data": receipt_post, "cookies": {"sipas_lang": "en"}}, "en"),
                ("GET", counter_path, {}, "vi"),
                ("POST", counter_path, {"data": counter_post}, "vi"),
            ]

            proxy.stop()  # the database goes away (PostgreSQL itself keeps running for everyone else)
            down = time.perf_counter()
            for _ in range(3):  # each case several times, so that both workers see the outage
                for method, path, kwargs, lang in cases:
                    resp = request(method, path, **kwargs)
                    assert resp.status_code == 503, (method, path, resp.status_code, resp.text[:300])
                    assert resp.headers["content-type"].startswith("text/html")
                    assert f'<html lang="{lang}">' in resp.text
                    assert (BUSY_EN if lang == "en" else BUSY_VI) in resp.text, resp.text[:500]
                    assert not [leak for leak in LEAKS if leak in resp.text], resp.text
                assert request("GET", "/readyz").status_code == 503  # not ready
                assert request("GET", "/healthz").status_code == 200  # but alive: no restart loop during an outage
            answered_in = (time.perf_counter() - down) / (3 * (len(cases) + 1))

            proxy.start()  # back, on the same port
            for _ in range(3):  # every worker's pool recovers at the first request, no retry needed
                for method, path, kwargs, _lang in cases:
                    if method == "GET":
                        resp = request(method, path, **kwargs)
                        assert resp.status_code == 200, (path, resp.status_code, resp.text[:300])
                assert request("GET", "/readyz").status_code == 200
            sent = request("POST", code_path, data=receipt_post)
            assert sent.status_code == 303 and sent.headers["location"].startswith("/thanks"), sent.text[:300]
            sent = request("POST", counter_path, data=counter_post)
            assert sent.status_code == 303 and sent.headers["location"].startswith("/thanks"), sent.text[:300]
            print(f"\n503 pages answered in {answered_in * 1000:.0f} ms on average while the database was away")
        _assert_clean_log(server)
        after = stored(engine, batch.wave_id)
        assert (after.responses, after.spent) == (1, 1)
        assert stored(engine, batch.world.counter_wave_id).keys == {submission_key(counter_token)}
    finally:
        engine.dispose()
