"""What production adds on the wire: HSTS on every answer, ``__Host-`` cookies, and only its own host names."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine

from survey.app import create_app
from survey.auth.csrf import COOKIE_NAME as CSRF_COOKIE
from survey.auth.sessions import COOKIE_NAME as SESSION_COOKIE
from survey.limits import MemoryCounters
from survey.settings import Settings
from tests.conftest import StaffWorld, make_production_settings, sign_in

HSTS = "max-age=31536000; includeSubDomains"


@pytest.fixture()
def production(db_url: str, engine: Engine) -> Iterator[TestClient]:
    """A browser on a production app over HTTPS (Secure cookies are only sent back over HTTPS)."""
    settings = make_production_settings(db_url)
    app = create_app(settings, engine, counters=MemoryCounters())
    with TestClient(app=app, base_url="https://testserver.local", raise_server_exceptions=False) as c:
        yield c


def _cookie(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return next(h for h in headers if h.startswith(f"{name}="))


def test_every_answer_carries_hsts_in_production(production: TestClient) -> None:
    for path in ("/", "/login", "/staff", "/healthz", "/nowhere", "/static/staff.css", "/api/v1/waves", "/schema"):
        response = production.get(path, follow_redirects=False)
        assert response.headers.get("strict-transport-security") == HSTS, (path, response.status_code)


def test_no_hsts_outside_production(client: TestClient) -> None:
    for path in ("/", "/login", "/healthz"):
        assert "strict-transport-security" not in client.get(path).headers


def test_session_and_csrf_cookies_are_host_only_in_production(production: TestClient, staff_world: StaffWorld) -> None:
    page = production.get("/login")
    csrf = _cookie(page, f"__Host-{CSRF_COOKIE}")
    response = sign_in(production, staff_world.admin)
    assert response.status_code == 303, response.text[:300]
    session = _cookie(response, f"__Host-{SESSION_COOKIE}")
    for cookie in (csrf, session):
        assert "Secure" in cookie and "Path=/;" in cookie + ";" and "HttpOnly" in cookie
        assert "Domain" not in cookie and not re.search(r"(?i)domain=", cookie)
    # The prefixed cookie is the one that counts: the staff pages open with it...
    assert production.get("/staff").status_code == 200
    # ...and a plain-named cookie planted by a sibling subdomain is not read at all.
    session_id = production.cookies.get(f"__Host-{SESSION_COOKIE}")
    production.cookies.clear()
    production.cookies.set(SESSION_COOKIE, session_id or "", domain="testserver.local")
    assert production.get("/staff", follow_redirects=False).status_code == 303


def test_a_foreign_host_is_refused_in_production_but_health_checks_answer(production: TestClient) -> None:
    foreign = production.get("/login", headers={"host": "evil.example"})
    assert foreign.status_code == 400
    assert production.get("/login").status_code == 200
    assert production.get("/healthz", headers={"host": "10.0.0.7:8000"}).status_code == 200


def test_the_development_defaults_stay_plain(settings: Settings) -> None:
    assert settings.cookie_name(SESSION_COOKIE) == SESSION_COOKIE
    assert not settings.is_production
