"""End to end in a real browser: the platform in its own uvicorn process, headless Chromium at phone width.

Chromium is Debian's (``/usr/bin/chromium``), never one downloaded by Playwright. Without it these tests
skip with a reason, except in CI, where they fail (see ``unavailable``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.engine import make_engine, migrate
from survey.db.models import Channel, Response
from survey.questionnaires.spec import NOT_APPLICABLE
from tests.conftest import CHROMIUM_FLAGS, unavailable
from tests.factories import World, build_world, flush_answers, new_code

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "browser"
PHONE: Any = {"width": 360, "height": 640}
STARTUP_TIMEOUT_S = 20.0
NA_ITEM = "fb_prompt"  # the one criterion answered "not applicable"
COMMENT = "Cán bộ hướng dẫn tận tình, cảm ơn."


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    engine: Engine


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium, driven by Playwright."""
    executable = shutil.which("chromium")
    if executable is None:
        unavailable("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"the playwright package is not installed: {exc}")
    pw = sync_playwright().start()
    try:
        try:
            chromium = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        except Exception as exc:  # any launch failure means "no usable browser"
            unavailable(f"playwright could not launch {executable}: {str(exc).strip().splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real app in a uvicorn process on a free loopback port, over a fresh migrated SQLite file."""
    tmp = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{tmp / 'e2e.db'}"
    migrate(url)
    engine = make_engine(url)
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
    cmd = [sys.executable, "-m", "uvicorn", "survey.app:create_app", "--factory"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
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
                pytest.fail(
                    f"the server did not answer /healthz within {STARTUP_TIMEOUT_S:.0f} s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.1)
        yield LiveServer(base_url=base_url, engine=engine)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        engine.dispose()


@pytest.fixture()
def e2e_world(live_server: LiveServer) -> World:
    """A province of its own for each test, so response counts do not depend on test order."""
    return build_world(live_server.engine)


def _responses(engine: Engine, unit_id: int) -> list[Response]:
    flush_answers(engine)  # an answer waiting in the mixing buffer counts
    with Session(engine) as s:
        return list(s.scalars(select(Response).where(col(Response.unit_id) == unit_id)).all())


def _phone_context(browser: Browser, **options: Any) -> BrowserContext:
    return browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, **options)


def test_citizen_answers_on_a_phone_and_is_thanked(browser: Browser, live_server: LiveServer, e2e_world: World) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    survey_png = ARTIFACTS / "survey-360x640.png"
    thanks_png = ARTIFACTS / "thanks-360x640.png"
    for png in (survey_png, thanks_png):
        png.unlink(missing_ok=True)

    code = new_code(live_server.engine, e2e_world)
    context = _phone_context(browser)
    try:
        page = context.new_page()
        page.goto(f"{live_server.base_url}/r/{code}")
        expect(page.locator("html")).to_have_attribute("lang", "vi")
        expect(page.locator("h1")).to_contain_text("Khảo sát sự hài lòng")
        expect(page.locator("button[type=submit]")).to_have_text("Gửi câu trả lời")

        scale_items = [item for item in e2e_world.sipas.items if item.type == "scale"]
        assert any(item.id == NA_ITEM for item in scale_items)
        for n, item in enumerate(scale_items):
            value = "na" if item.id == NA_ITEM else ("5" if n % 2 else "4")
            radio = page.locator(f"input[type=radio][name=q_{item.id}][value='{value}']")
            page.locator("label.opt").filter(has=radio).click()
            expect(radio).to_be_checked()

        improve = page.locator("input[type=checkbox][name=q_improve][value='time']")
        page.locator("label.opt").filter(has=improve).click()
        expect(improve).to_be_checked()
        page.locator("textarea[name=q_comment]").fill(COMMENT)

        # At 360 px nothing may force sideways scrolling.
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        page.screenshot(path=str(survey_png), full_page=True)

        page.locator("button[type=submit]").click()
        page.wait_for_url("**/thanks**")
        assert urlparse(page.url).path == "/thanks"
        expect(page.locator("h1")).to_have_text("Xin cảm ơn")
        expect(page.locator("html")).to_have_attribute("lang", "vi")
        page.screenshot(path=str(thanks_png), full_page=True)
    finally:
        context.close()

    for png in (survey_png, thanks_png):
        assert png.is_file() and png.stat().st_size > 0, png

    rows = _responses(live_server.engine, e2e_world.unit_id)
    assert len(rows) == 1
    row = rows[0]
    assert row.channel == Channel.receipt == 1
    assert row.wave_id == e2e_world.open_wave_id
    assert row.comment == COMMENT
    layout = e2e_world.sipas.column_index
    assert row.answers[layout[(NA_ITEM, None)]] == NOT_APPLICABLE
    assert row.answers[layout[("access_signs", None)]] == 4
    assert row.answers[layout[("improve", "time")]] == 1


def test_without_javascript_errors_are_listed_and_the_keyboard_works(
    browser: Browser, live_server: LiveServer, e2e_world: World
) -> None:
    from playwright.sync_api import expect

    code = new_code(live_server.engine, e2e_world)
    required = [item for item in e2e_world.sipas.items if item.required]
    context = _phone_context(browser, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{live_server.base_url}/r/{code}")
        expect(page.locator("html")).to_have_attribute("lang", "vi")

        # Send the page untouched: it comes back with every missing answer listed, nothing stored.
        page.locator("button[type=submit]").click()
        page.wait_for_load_state()
        assert urlparse(page.url).path == f"/r/{code}"
        summary = page.locator(".summary[role=alert]")
        expect(summary.locator("h2")).to_have_text("Có điều cần sửa")
        expect(summary.locator("a")).to_have_count(len(required))
        expect(page.locator("fieldset.has-err")).to_have_count(len(required))
        assert _responses(live_server.engine, e2e_world.unit_id) == []

        # Keyboard only: Tab until the first question's radio group has focus, Space chooses.
        first = page.locator(f"input[type=radio][name=q_{required[0].id}]")
        focused = False
        for _ in range(len(required) + 10):  # skip link, language link, the summary's links, then the radios
            page.keyboard.press("Tab")
            if first.first.evaluate("el => el === document.activeElement"):
                focused = True
                break
        assert focused, "Tab never reached the first question"
        page.keyboard.press("Space")
        expect(first.first).to_be_checked()
        page.keyboard.press("ArrowRight")  # arrows move the choice within the group
        expect(first.nth(1)).to_be_checked()
        expect(first.first).not_to_be_checked()
        page.keyboard.press("Tab")  # on to the next question
        second = page.locator(f"input[type=radio][name=q_{required[1].id}]").first
        assert second.evaluate("el => el === document.activeElement")
    finally:
        context.close()

    assert _responses(live_server.engine, e2e_world.unit_id) == []
