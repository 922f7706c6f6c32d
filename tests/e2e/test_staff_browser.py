"""Staff pages in a real browser: the questionnaire designer, and printing a counter poster.

Reuses the live server and Debian's headless Chromium of ``test_browser.py``; artifacts go to artifacts/browser.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.orm import Session

from survey.db.models import QuestionnaireVersion
from survey.questionnaires.spec import from_definition
from tests.conftest import STAFF_PASSWORD, make_account
from tests.e2e.test_browser import ARTIFACTS, LiveServer, browser, live_server  # noqa: F401 - fixtures
from tests.factories import build_world

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser
DESKTOP = {"width": 1280, "height": 900}


def _sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/login?lang=en")
    page.fill("#username", username)
    page.fill("#password", STAFF_PASSWORD)
    page.locator("main button[type=submit]").click()
    page.wait_for_url("**/staff**")


def test_designer_draft_edit_preview_publish(browser: Browser, live_server: LiveServer) -> None:  # noqa: F811
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    world = build_world(live_server.engine)
    officer = make_account(live_server.engine, "officer", world.unit_id, prefix="designer")
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        _sign_in(page, live_server.base_url, officer.username)
        page.goto(f"{live_server.base_url}/staff/questionnaires?lang=en")
        page.select_option("#source", "template:quick_rating.yaml")
        page.fill("#code", "browser-quick")
        page.get_by_role("button", name="Create the draft").click()
        page.wait_for_url(re.compile(r".*/versions/\d+/edit.*"))
        version_id = int(re.findall(r"/versions/(\d+)/edit", page.url)[0])
        page.get_by_role("button", name="Add a question to this section").click()
        page.wait_for_url(re.compile(r".*done=saved.*"))
        new_item = page.locator("#s0_i4")
        expect(new_item).to_be_visible()
        page.fill("#s0_i4_text_vi", "Quầy có dễ tìm không?")
        page.fill("#s0_i4_text_en", "Was the counter easy to find?")
        page.get_by_role("button", name="Save the draft", exact=True).last.click()
        expect(page.locator(".notice[role=status]")).to_contain_text("saved")
        page.goto(f"{live_server.base_url}/staff/questionnaires/versions/{version_id}/preview?lang=en")
        expect(page.locator(".preview")).to_contain_text("not sent anywhere")
        expect(page.locator("fieldset.q").filter(has_text="Was the counter easy to find?")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "designer-preview.png"), full_page=True)
        page.goto(f"{live_server.base_url}/staff/questionnaires/versions/{version_id}?lang=en")
        page.get_by_role("button", name="Publish this version").click()
        expect(page.locator(".notice[role=status]")).to_contain_text("published")
    finally:
        context.close()
    with Session(live_server.engine) as s:
        version = s.get(QuestionnaireVersion, version_id)
        assert version is not None and version.status == "published"
        assert from_definition(version.definition).item_by_id["q1"].text.vi == "Quầy có dễ tìm không?"


def test_a_counter_poster_prints_on_one_clean_page(browser: Browser, live_server: LiveServer) -> None:  # noqa: F811
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pdf = ARTIFACTS / "counter-poster.pdf"
    png = ARTIFACTS / "counter-poster-print.png"
    for path in (pdf, png):
        path.unlink(missing_ok=True)
    world = build_world(live_server.engine)
    officer = make_account(live_server.engine, "officer", world.unit_id, prefix="printer")
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        _sign_in(page, live_server.base_url, officer.username)
        page.goto(f"{live_server.base_url}/staff/points/{world.service_point_id}/poster")
        assert page.locator("svg.qr").count() == 1
        page.emulate_media(media="print")
        assert not page.locator("nav.nav").is_visible()  # the print stylesheet hides the menus
        assert page.locator("svg.qr").is_visible()
        page.screenshot(path=str(png), full_page=True)
        page.pdf(path=str(pdf), format="A4", print_background=False)
    finally:
        context.close()
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page[^s]", data)) == 1
    assert png.stat().st_size > 0
