"""The pre-rendered survey page (survey.citizen.pages) and compression of the other pages (Litestar's)."""

from __future__ import annotations

import functools
import gzip
import re
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from sqlalchemy import Engine

from seed_data import QUESTIONNAIRE_DIR
from survey.app import template_environment
from survey.citizen.pages import TEMPLATE, SurveyPage, gzip_whole, survey_context
from survey.i18n import Locale
from survey.questionnaires.spec import Spec, load_file
from survey.web import page_context
from tests.factories import World, new_code

ENV = template_environment()


def _template_page(spec: Spec, locale: Locale, where: str, token: str) -> bytes:
    """The page as the template renders it for one request (the slow path), its style allowed by hash."""
    context = {**page_context(locale, None), **survey_context(spec=spec, where=where, token=token)}
    return ENV.get_template(TEMPLATE).render(context).encode()


def test_the_parts_make_the_templates_page_byte_for_byte(world: World) -> None:
    locales: tuple[Locale, ...] = ("vi", "en")
    for spec in (world.sipas, world.quick):
        for locale in locales:
            page = SurveyPage.render(ENV, spec, locale)
            args = ("Xã Thử Nghiệm · Hộ tịch <b>&</b>", "1700000000.abc.def")
            expected = _template_page(spec, locale, *args)
            assert page.body(*args, gzip=False) == expected
            assert gzip.decompress(page.body(*args, gzip=True)) == expected
            assert b"&lt;b&gt;&amp;&lt;/b&gt;" in expected  # the where-line is escaped, as the template escapes it


@settings(max_examples=60, deadline=None)
@given(
    where=st.text(min_size=0, max_size=400),
    token=st.from_regex(r"[0-9]{10}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{24}", fullmatch=True),
)
def test_the_gzip_member_is_valid_for_any_values(where: str, token: str) -> None:
    page = _quick_page()
    packed = page.body(where, token, gzip=True)
    again = page.body(where, token, gzip=True)  # the second time from the kept head
    # decompress checks the CRC-32 and the length in the trailer; one member, nothing after it
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert decoder.decompress(packed) == page.body(where, token, gzip=False)
    assert decoder.eof and decoder.unused_data == b""
    assert again == packed


def test_the_pre_compressed_page_is_nearly_as_small_as_compressing_it_whole(world: World) -> None:
    page = SurveyPage.render(ENV, world.sipas, "vi")
    args = ("Xã Thử Nghiệm · Hộ tịch", "1700000000.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwx")
    whole = gzip_whole(page.body(*args, gzip=False))
    # the token goes in uncompressed and the few hundred bytes after it are compressed on their own
    assert len(page.body(*args, gzip=True)) <= len(whole) * 1.02 + 80


def test_kept_heads_are_bounded_and_evicted_oldest_first(world: World) -> None:
    page = SurveyPage.render(ENV, world.quick, "vi")
    for i in range(600):
        page.body(f"Xã {i}", "1.a.b", gzip=True)
    assert len(page._heads) == 512 and "Xã 599" in page._heads and "Xã 0" not in page._heads


@functools.cache
def _quick_page() -> SurveyPage:
    return SurveyPage.render(ENV, load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml"), "vi")


def _strip(html: str) -> str:
    return re.sub(r'name="token" value="[^"]+"', 'name="token" value=""', html)


def test_the_survey_page_is_sent_gzip_encoded_once_or_plain(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    packed = client.get(f"/r/{code}", headers={"Accept-Encoding": "gzip"})
    plain = client.get(f"/r/{code}", headers={"Accept-Encoding": "identity"})
    assert packed.status_code == plain.status_code == 200
    assert packed.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert "accept-encoding" in packed.headers["vary"].lower()
    assert "<html" in packed.text and _strip(packed.text) == _strip(plain.text)  # decoded once, it is the page
    assert int(packed.headers["content-length"]) < len(plain.content) / 3


def test_a_page_with_errors_is_compressed_too(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    html = client.get(f"/r/{code}").text
    token = re.search(r'name="token" value="([^"]+)"', html)
    assert token is not None
    sent = client.post(f"/r/{code}", data={"token": token.group(1)}, headers={"Accept-Encoding": "gzip"})
    assert sent.status_code == 400 and sent.headers["content-encoding"] == "gzip"
    assert "Error" in sent.text or "Lỗi" in sent.text
    nonce = sent.headers["content-security-policy"].split("'nonce-")[1].split("'")[0]
    assert f'<style nonce="{nonce}">' in sent.text  # rendered per request: its style allowed by a fresh nonce


def test_other_pages_are_compressed_by_litestar_when_worth_it(client: TestClient) -> None:
    home = client.get("/", headers={"Accept-Encoding": "gzip"})
    assert home.status_code == 200 and home.headers["content-encoding"] == "gzip" and "<html" in home.text
    assert "content-encoding" not in client.get("/", headers={"Accept-Encoding": "identity"}).headers
    small = client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert small.json() == {"status": "ok"} and "content-encoding" not in small.headers
