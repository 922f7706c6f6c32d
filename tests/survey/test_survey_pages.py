"""The pre-rendered survey page (survey.citizen.pages) and the gzip middleware (survey.compression)."""

from __future__ import annotations

import functools
import gzip
import re
import zlib
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar, get
from litestar.datastructures import Cookie
from litestar.response import Response, Stream
from litestar.testing import TestClient
from sqlalchemy import Engine

from seed_data import QUESTIONNAIRE_DIR
from survey.app import template_environment
from survey.citizen.pages import TEMPLATE, SurveyPage, _crc_continue, _crc_shift, survey_context
from survey.compression import gzip_middleware
from survey.i18n import Locale
from survey.questionnaire import Spec, load_file
from survey.web import PreparedResponse, page_context, raw_security_headers, security_headers
from tests.factories import World, new_code

ENV = template_environment()


def _template_page(spec: Spec, locale: Locale, nonce: str, where: str, token: str) -> bytes:
    """The page as the template renders it for one request (the slow path)."""
    context = {**page_context(locale, nonce), **survey_context(spec=spec, where=where, token=token)}
    return ENV.get_template(TEMPLATE).render(context).encode()


def test_the_parts_make_the_templates_page_byte_for_byte(world: World) -> None:
    locales: tuple[Locale, ...] = ("vi", "en")
    for spec in (world.sipas, world.quick):
        for locale in locales:
            page = SurveyPage.render(ENV, spec, locale)
            args = ("n0Nce-abc_123", "Xã Thử Nghiệm · Hộ tịch <b>&</b>", "1700000000.abc.def")
            expected = _template_page(spec, locale, *args)
            assert page.body(*args, gzip=False) == expected
            assert gzip.decompress(page.body(*args, gzip=True)) == expected
            assert b"&lt;b&gt;&amp;&lt;/b&gt;" in expected  # the where-line is escaped, as the template escapes it


@settings(max_examples=60, deadline=None)
@given(
    nonce=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=16, max_size=16
    ),
    where=st.text(min_size=0, max_size=400),
    token=st.from_regex(r"[0-9]{10}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{24}", fullmatch=True),
)
def test_the_gzip_member_is_valid_for_any_values(nonce: str, where: str, token: str) -> None:
    page = _quick_page()
    packed = page.body(nonce, where, token, gzip=True)
    # decompress checks the CRC-32 and the length in the trailer; one member, nothing after it
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decoder.decompress(packed) == page.body(nonce, where, token, gzip=False)
    assert decoder.eof and decoder.unused_data == b""


@functools.cache
def _quick_page() -> SurveyPage:
    return SurveyPage.render(ENV, load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml"), "vi")


def _strip(html: str) -> str:
    html = re.sub(r'nonce="[^"]+"', 'nonce=""', html)
    return re.sub(r'name="token" value="[^"]+"', 'name="token" value=""', html)


def test_the_survey_page_is_sent_gzip_encoded_once_or_plain(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    packed = client.get(f"/r/{code}", headers={"Accept-Encoding": "gzip"})
    plain = client.get(f"/r/{code}", headers={"Accept-Encoding": "identity"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert packed.headers["content-security-policy"] != plain.headers["content-security-policy"]  # fresh nonces
    assert "<html" in packed.text and _strip(packed.text) == _strip(plain.text)  # decoded once, it is the page
    assert int(packed.headers["content-length"]) < len(plain.content) / 3


def test_a_page_with_errors_is_compressed_by_the_middleware(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    html = client.get(f"/r/{code}").text
    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token is not None
    sent = client.post(f"/r/{code}", data={"token": token.group(1)}, headers={"Accept-Encoding": "gzip"})
    assert sent.status_code == 400 and sent.headers["content-encoding"] == "gzip"
    assert "Error" in sent.text or "Lỗi" in sent.text


def _app() -> Litestar:
    @get("/big", media_type="text/plain")
    async def big() -> str:
        return "lorem ipsum " * 200

    @get("/small", media_type="text/plain")
    async def small() -> str:
        return "short"

    @get("/encoded")
    async def encoded() -> Response[bytes]:
        return Response(gzip.compress(b"x" * 2000), media_type="text/plain", headers={"Content-Encoding": "gzip"})

    @get("/stream")
    async def stream() -> Stream:
        def chunks() -> Iterator[bytes]:
            for i in range(50):
                yield f"{i},row {i}\n".encode() * 20

        return Stream(chunks(), media_type="text/csv")

    return Litestar([big, small, encoded, stream], middleware=[gzip_middleware])


def test_the_middleware_compresses_what_is_worth_it_and_nothing_twice() -> None:
    with TestClient(_app()) as c:
        big = c.get("/big", headers={"Accept-Encoding": "gzip"})
        assert big.headers["content-encoding"] == "gzip" and big.text == "lorem ipsum " * 200
        assert int(big.headers["content-length"]) < 200
        assert "content-encoding" not in c.get("/small", headers={"Accept-Encoding": "gzip"}).headers
        assert "content-encoding" not in c.get("/big", headers={"Accept-Encoding": "identity"}).headers
        encoded = c.get("/encoded", headers={"Accept-Encoding": "gzip"})
        assert encoded.content == b"x" * 2000  # decoded once: not compressed a second time
        streamed = c.get("/stream", headers={"Accept-Encoding": "gzip"})
        assert streamed.headers["content-encoding"] == "gzip" and "content-length" not in streamed.headers
        assert streamed.text == "".join(f"{i},row {i}\n" * 20 for i in range(50))


@settings(max_examples=200, deadline=None)
@given(part=st.binary(max_size=3000), start=st.integers(min_value=0, max_value=2**32 - 1))
def test_a_crc_continued_from_tables_is_zlibs(part: bytes, start: int) -> None:
    assert _crc_continue(_crc_shift(part), zlib.crc32(part), start) == zlib.crc32(part, start)


def test_a_prepared_response_sends_its_headers_and_later_cookies_and_the_routes_own() -> None:
    route_headers = {"X-Route": "yes", "Referrer-Policy": "route's"}

    @get("/p", response_headers=route_headers, response_cookies=[Cookie(key="r", value="1")])
    async def prepared() -> PreparedResponse:
        response = PreparedResponse(b"<p>hi</p>", raw_security_headers("N0NCE"), cookies=[Cookie(key="a", value="1")])
        response.cookies.append(Cookie(key="b", value="2"))  # as the counter page adds its device cookie
        return response

    with TestClient(Litestar([prepared])) as client:
        answer = client.get("/p")
    assert answer.status_code == 200 and answer.content == b"<p>hi</p>"
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-length"] == "9"
    assert "'nonce-N0NCE'" in answer.headers["content-security-policy"]
    for name, value in security_headers("N0NCE").items():
        assert answer.headers[name] == value  # the answer's own win over the route's
    assert answer.headers["x-route"] == "yes"
    assert {c.name: c.value for c in answer.cookies.jar} == {"a": "1", "b": "2", "r": "1"}
