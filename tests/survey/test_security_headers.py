"""Every page the app can answer, whatever its status, carries the security headers; nothing leaks a trace.

The routes are read from the app itself (so a new page is covered without being listed here), every path
parameter filled with an id of the signed-in admin's unit (many then answer 404 or 403: those pages
must carry the headers too), and with path tricks.
"""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from tests.conftest import StaffWorld, signed_in

SKIP = ("/static", "/schema", "/healthz")
TRACE = re.compile(r"Traceback|File \"/|sqlalchemy\.|psycopg\.|jinja2\.exceptions")


def _urls(client: TestClient, unit_id: int) -> list[str]:
    urls = set()
    for route in client.app.routes:
        if "GET" not in route.methods or route.path.startswith(SKIP):
            continue
        url = re.sub(r"\{[a-z_]+:int\}", str(unit_id), route.path)
        url = re.sub(r"\{[a-z_]+(:str)?\}", "2026", url)
        url = re.sub(r"\{[a-z_]+:path\}", "x", url)
        urls.add(url)
    return sorted(urls)


def _check(url: str, response: object) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    headers = response.headers  # type: ignore[attr-defined]
    assert status < 500, (url, status, response.text[:300])  # type: ignore[attr-defined]
    assert headers.get("x-content-type-options") == "nosniff", url
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/html"):
        csp = headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, (url, csp)
        assert "'unsafe-inline'" not in csp and "script-src" not in csp, (url, csp)  # no script runs at all
        nonce = re.search(r"'nonce-([^']+)'", csp)
        assert nonce, (url, csp)
        for style in re.findall(r"<style([^>]*)>", response.text):  # type: ignore[attr-defined]
            assert f'nonce="{nonce.group(1)}"' in style, (url, style)
        assert headers.get("referrer-policy") == "no-referrer", url
        assert "<script" not in response.text.lower(), url  # type: ignore[attr-defined]
    assert not TRACE.search(response.text), (url, status)  # type: ignore[attr-defined]


def test_every_get_route_carries_the_headers_signed_in(staff: TestClient, staff_world: StaffWorld) -> None:
    signed_in(staff, staff_world.admin)
    urls = _urls(staff, staff_world.commune_id)
    assert len(urls) > 30  # the app's pages really were enumerated
    for url in urls:
        _check(url, staff.get(url, follow_redirects=False))


def test_every_get_route_carries_the_headers_for_a_stranger(staff: TestClient, staff_world: StaffWorld) -> None:
    for url in _urls(staff, staff_world.commune_id):
        _check(url, staff.get(url, follow_redirects=False))


@pytest.mark.parametrize(
    "trick",
    [
        "/staff/units/..%2f..%2fetc%2fpasswd",
        "/staff/points/1%00/poster",
        "/staff/results/..%2F..%2Fsurvey/league.csv",
        "/staff/results/2026/units/../../../etc/passwd/scorecard.csv",
        "/static/..%2f..%2fsurvey%2fsettings.py",
        "/static/../pyproject.toml",
        "/r/..%2f..%2f",
        "/c/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    ],
)
def test_path_tricks_get_a_clean_refusal(staff: TestClient, staff_world: StaffWorld, trick: str) -> None:
    signed_in(staff, staff_world.admin)
    response = staff.get(trick, follow_redirects=False)
    assert response.status_code in (303, 400, 403, 404, 410), (trick, response.status_code)
    assert "SIPAS_SECRET_KEY" not in response.text and "[project]" not in response.text
    assert "root:" not in response.text
    _check(trick, response)
