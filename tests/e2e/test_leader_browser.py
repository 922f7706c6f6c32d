"""The leader's league table in a real browser: the demo province, the app in uvicorn, Debian's Chromium.

Signs in through the form, opens the league table at desktop width, checks what a person sees (ranked
rows with interval bars, the insufficient-data list apart, the charts) and saves a screenshot to
``artifacts/browser/``. Skips without Chromium (fails in CI), like ``tests/e2e/test_browser.py``.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Unit
from tests.conftest import STAFF_PASSWORD, load_small_demo, make_account
from tests.e2e.test_browser import ARTIFACTS, ROOT, STARTUP_TIMEOUT_S, _free_port, _log_tail, browser

pytestmark = pytest.mark.browser
__all__ = ["browser"]  # the Chromium fixture, shared with test_browser.py


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The demo province in its own SQLite file, served by uvicorn; (base URL, an admin's username)."""
    tmp = tmp_path_factory.mktemp("leader-e2e")
    engine, _, url = load_small_demo(tmp / "demo.db")
    with Session(engine) as s:
        root = s.scalars(select(col(Unit.id)).where(col(Unit.code) == "TN")).one()
    admin = make_account(engine, "admin", int(root or 0))
    engine.dispose()
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIPAS_")}
    env.update(
        SIPAS_ENVIRONMENT="test",
        SIPAS_SECRET_KEY=secrets.token_urlsafe(48),
        SIPAS_DATABASE_URL=url,
        SIPAS_BASE_URL=base_url,
    )
    log_path = tmp / "server.log"
    cmd = [sys.executable, "-m", "uvicorn", "survey.app:create_app", "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with code {proc.returncode}:\n{_log_tail(log_path)}")
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not start:\n{_log_tail(log_path)}")
            time.sleep(0.1)
        yield base_url, admin.username
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_league_table_in_a_browser(browser: object, demo_server: tuple[str, str]) -> None:
    base_url, username = demo_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")  # type: ignore[attr-defined]
    try:
        page = context.new_page()
        page.goto(f"{base_url}/login?next=/staff/results/2026/league%3Flevel%3Ddistrict")
        page.fill("#username", username)
        page.fill("#password", STAFF_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/staff/results/2026/league*")
        assert page.locator("h1").inner_text().startswith("Bảng xếp hạng")
        rows = page.locator("#league tbody tr[data-code]")
        assert rows.count() >= 5
        assert page.locator("#league svg.ci").count() == rows.count()  # every ranked unit has its interval bar
        assert page.locator("#how-to-read").is_visible()
        assert page.locator("svg#caterpillar").count() == 1 and page.locator("svg#funnel").count() == 1
        first_rank = page.locator("#league tbody tr[data-code] td").first.get_attribute("data-rank")
        assert first_rank == "1"
        # sorting by name is a link; the filter form is a plain GET form
        page.click("#league thead a >> nth=0")
        page.wait_for_url("**sort=*")
        page.select_option("#channel", "receipt")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**channel=receipt*")
        assert page.locator("#league tbody tr[data-code]").count() >= 1
        page.goto(f"{base_url}/staff/results/2026/league?level=district")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = Path(ARTIFACTS) / "leader_league.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    finally:
        context.close()
