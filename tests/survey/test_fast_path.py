"""The receipt survey's fast path (``survey.citizen.fastpath``): it answers the two common cases exactly as the
handlers would, and hands everything else to them untouched (a sent body included), counting the rate
limit once. On SQLite and (where reachable) PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar import Request
from litestar._parsers import parse_url_encoded_form_data
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from survey.app import create_app
from survey.citizen import controllers
from survey.citizen.fastpath import ReceiptFastPath, _form, _read_body, _replay
from survey.db.models import Response
from survey.settings import Settings
from survey.web import request_locale
from tests.conftest import form_token, make_settings
from tests.factories import World, full_answers, new_code

VARYING = {"content-security-policy", "content-length", "date"}  # the nonce, and so the length of a plain page


@pytest.fixture()
def handlers_only(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The same platform without the fast path: every request goes through the handlers."""
    app = create_app(settings, engine, receipt_fast_path=False)
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def handler_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often the handlers built a survey page or took a submission (0 when the fast path answered)."""
    calls = {"page": 0, "submit": 0}

    def counting(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return original(*args, **kwargs)

        return spy

    monkeypatch.setattr(controllers, "_survey_page", counting("page", controllers._survey_page))
    monkeypatch.setattr(controllers, "_survey_submit", counting("submit", controllers._survey_submit))
    return calls


def _count(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Response)) or 0)


def _same_headers(a: httpx.Response, b: httpx.Response) -> None:
    assert {k: v for k, v in a.headers.items() if k not in VARYING} == {
        k: v for k, v in b.headers.items() if k not in VARYING
    }
    assert set(a.headers) == set(b.headers)


def _strip(html: str) -> str:
    html = re.sub(r"nonce-[^']+'|nonce=\"[^\"]+\"", "nonce", html)
    return re.sub(r'name="token" value="[^"]+"', "token", html)


@pytest.mark.parametrize("encoding", ["gzip", "identity"])
def test_the_fresh_page_is_the_handlers_page(
    client: TestClient,
    handlers_only: TestClient,
    engine: Engine,
    world: World,
    handler_calls: dict[str, int],
    encoding: str,
) -> None:
    code = new_code(engine, world)
    fast = client.get(f"/r/{code}", headers={"Accept-Encoding": encoding, "Cookie": "sipas_lang=en"})
    assert handler_calls["page"] == 0  # answered in front of the handlers
    slow = handlers_only.get(f"/r/{code}", headers={"Accept-Encoding": encoding, "Cookie": "sipas_lang=en"})
    assert handler_calls["page"] == 1
    assert fast.status_code == slow.status_code == 200
    _same_headers(fast, slow)
    assert (fast.headers.get("content-encoding") == "gzip") == (encoding == "gzip")
    assert '<html lang="en">' in fast.text and _strip(fast.text) == _strip(slow.text)
    nonce = re.search(r"'nonce-([^']+)'", fast.headers["content-security-policy"])
    assert nonce is not None and f'nonce="{nonce.group(1)}"' in fast.text


def test_a_complete_submission_is_stored_and_thanked_as_by_the_handler(
    client: TestClient, handlers_only: TestClient, engine: Engine, world: World, handler_calls: dict[str, int]
) -> None:
    answers = full_answers(world.sipas)
    sent = []
    for c in (client, handlers_only):
        code = new_code(engine, world)
        token = form_token(c.get(f"/r/{code}").text)
        before = _count(engine)
        sent.append(c.post(f"/r/{code}", data={**answers, "token": token}, follow_redirects=False))
        assert _count(engine) == before + 1
    assert handler_calls["submit"] == 1  # only the app without the fast path called the handler
    fast, slow = sent
    assert fast.status_code == slow.status_code == 303
    assert fast.headers["location"] == slow.headers["location"] == "/thanks?lang=vi"
    _same_headers(fast, slow)


def test_a_page_sent_twice_is_stored_once_and_thanked_twice(
    client: TestClient, engine: Engine, world: World, handler_calls: dict[str, int]
) -> None:
    code = new_code(engine, world)
    token = form_token(client.get(f"/r/{code}").text)
    form = {**full_answers(world.sipas), "token": token}
    before = _count(engine)
    first = client.post(f"/r/{code}", data=form, follow_redirects=False)
    again = client.post(f"/r/{code}", data=form, follow_redirects=False)  # spent: the handler recognises the page
    assert first.status_code == again.status_code == 303 and again.headers["location"].startswith("/thanks")
    assert _count(engine) == before + 1
    assert handler_calls["submit"] == 0


def test_everything_else_is_answered_by_the_handlers(
    client: TestClient, engine: Engine, world: World, handler_calls: dict[str, int]
) -> None:
    code = new_code(engine, world)
    # a language chosen in the query string: the handler sets the cookie
    chosen = client.get(f"/r/{code}?lang=en")
    assert chosen.status_code == 200 and "sipas_lang=en" in chosen.headers["set-cookie"]
    assert handler_calls["page"] == 1
    # unknown and malformed codes: the handler's 404 page, in words
    for bad in ("Z" * 16, "not-a-code"):
        missing = client.get(f"/r/{bad}")
        assert missing.status_code == 404 and "<html" in missing.text and "Traceback" not in missing.text
    # answers to fix: the page comes back with them kept
    token = form_token(client.get(f"/r/{code}").text)
    partial = dict(full_answers(world.sipas))
    partial.pop("q_access_signs")
    before = _count(engine)
    refused = client.post(f"/r/{code}", data={**partial, "token": token}, follow_redirects=False)
    assert refused.status_code == 400 and 'name="q_access_seats" value="4" checked' in refused.text
    assert handler_calls["submit"] == 1
    # a form sent as multipart: the handler's (which takes URL-encoded forms only), nothing stored
    multipart = client.post(
        f"/r/{code}", files={"x": ("x.txt", b"x")}, data={**full_answers(world.sipas), "token": token}
    )
    assert handler_calls["submit"] == 2 and multipart.status_code == 400
    assert _count(engine) == before
    # a spent code
    done = client.post(f"/r/{code}", data={**full_answers(world.sipas), "token": token}, follow_redirects=False)
    assert done.status_code == 303 and handler_calls["submit"] == 2 and _count(engine) == before + 1
    gone = client.get(f"/r/{code}")
    assert gone.status_code == 410 and "can be used once" in gone.text  # in English: the cookie from ?lang=en


def test_a_body_over_the_limit_is_refused_as_by_litestar(
    client: TestClient, handlers_only: TestClient, engine: Engine, world: World
) -> None:
    big = {"q_comment": "x" * 300_000}
    answers = [c.post(f"/r/{new_code(engine, world)}", data=big) for c in (client, handlers_only)]
    assert answers[0].status_code == answers[1].status_code == 413


def test_a_host_not_allowed_is_refused_as_by_litestar(settings: Settings, engine: Engine, world: World) -> None:
    strict = make_settings(settings.database_url, allowed_hosts=["sipas.example.vn"])
    code = new_code(engine, world)
    with TestClient(app=create_app(strict, engine), base_url="http://evil.example") as c:
        assert c.get(f"/r/{code}").status_code == 400
    with TestClient(app=create_app(strict, engine), base_url="http://sipas.example.vn") as c:
        assert c.get(f"/r/{code}").status_code == 200


def test_the_rate_limit_is_counted_once_when_the_handler_answers(
    settings: Settings, engine: Engine, world: World
) -> None:
    limit = 4
    limited = make_settings(settings.database_url, public_rate_limit_per_minute=limit)
    app = create_app(limited, engine, session_store=MemoryStore())

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 40000))  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            # unknown codes: counted by the fast path, answered by the handler
            return [(await c.get(f"/r/{'Z' * 16}")).status_code for _ in range(limit + 1)]

    assert asyncio.run(run()) == [404] * limit + [429]


def test_a_body_sent_in_pieces_is_handed_on_whole(engine: Engine, world: World, settings: Settings) -> None:
    """Straight through ASGI: a form in three chunks with an answer missing reaches the handler whole."""
    app = create_app(settings, engine, session_store=MemoryStore())
    code = new_code(engine, world)
    answers = dict(full_answers(world.sipas))
    answers.pop("q_access_signs")
    body = urlencode({**answers, "token": "whatever"}, doseq=True).encode()
    chunks = [body[:100], body[100:200], body[200:]]

    async def run() -> tuple[int, bytes]:
        sent: list[dict[str, Any]] = []
        incoming = [{"type": "http.request", "body": c, "more_body": i < 2} for i, c in enumerate(chunks)]

        async def receive() -> Any:
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: Any) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/r/{code}",
            "raw_path": f"/r/{code}".encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/x-www-form-urlencoded"),
                (b"content-length", str(len(body)).encode()),
                (b"accept-encoding", b"gzip"),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("testserver", 80),
            "state": {},
        }
        async with _Lifespan(app):
            await app(scope, receive, send)  # type: ignore[arg-type]
        status = next(m["status"] for m in sent if m["type"] == "http.response.start")
        return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")

    status, page = asyncio.run(run())
    html = gzip.decompress(page).decode()
    assert status == 400 and 'name="q_access_seats" value="4" checked' in html  # the last chunk's answers too
    assert 'name="q_fb_prompt"' in html


_FORM_TEXT = st.text(alphabet="abq_=&%+2F0C3;é ", max_size=40)


@hypothesis_settings(max_examples=300, deadline=None)
@given(body=st.one_of(_FORM_TEXT.map(lambda t: t.encode()), st.binary(max_size=40)))
def test_the_form_is_read_as_litestar_reads_it(body: bytes) -> None:
    """The fast path's form is the dict the handlers' ``data`` gets (Litestar's own parser, private API)."""
    assert _form(body) == parse_url_encoded_form_data.__wrapped__(body)


_COOKIE_PARTS = ["sipas_lang=en", "sipas_lang=vi", 'sipas_lang="en"', "sipas_lang=xx", "sipas_lang=", "a=1", "b"]


def test_the_language_is_chosen_as_by_the_handlers(settings: Settings, engine: Engine) -> None:
    """Every cookie header of up to three of these parts: the fast path's language is the handlers'."""
    fast = ReceiptFastPath(create_app(settings, engine, receipt_fast_path=False), inner=None)  # type: ignore[arg-type]
    chosen = set()
    for n in range(4):
        for parts in itertools.product(_COOKIE_PARTS, repeat=n):
            cookie = "; ".join(parts)
            scope: Any = {"type": "http", "headers": [(b"cookie", cookie.encode())], "query_string": b"", "path": "/"}
            assert fast._locale(scope) == request_locale(Request(scope), settings), cookie
            chosen.add(fast._locale(scope))
    assert chosen == {"vi", "en"}


def test_replay_gives_the_read_messages_again_then_the_rest() -> None:
    async def run() -> tuple[bytes | None, list[Any]]:
        incoming = [
            {"type": "http.request", "body": b"a=1&", "more_body": True},
            {"type": "http.request", "body": b"b=2", "more_body": False},
            {"type": "http.disconnect"},
        ]

        async def receive() -> Any:
            return incoming.pop(0)

        messages: list[Any] = []
        replay = _replay(messages, receive)
        body = await _read_body(receive, 1000, messages)
        return body, [await replay() for _ in range(3)]

    body, replayed = asyncio.run(run())
    assert body == b"a=1&b=2"
    assert [m.get("body") for m in replayed] == [b"a=1&", b"b=2", None] and replayed[2]["type"] == "http.disconnect"


def test_a_body_over_the_limit_is_not_read_further() -> None:
    async def run() -> tuple[bytes | None, int]:
        incoming = [{"type": "http.request", "body": b"x" * 60, "more_body": True} for _ in range(5)]

        async def receive() -> Any:
            return incoming.pop(0)

        messages: list[Any] = []
        return await _read_body(receive, 100, messages), len(incoming)

    assert asyncio.run(run()) == (None, 3)


class _Lifespan:
    """Run the app's start-up and shut-down around a block, as a server would."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()

    async def __aenter__(self) -> None:
        async def receive() -> Any:
            return await self.inbox.get()

        async def send(message: Any) -> None:
            await self.outbox.put(message)

        self.task = asyncio.ensure_future(self.app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
        await self.inbox.put({"type": "lifespan.startup"})
        assert (await self.outbox.get())["type"] == "lifespan.startup.complete"

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "lifespan.shutdown"})
        await self.outbox.get()
        await self.task
