"""The citizen journey through the HTML pages, on SQLite and (where reachable) PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from litestar.testing import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import SQLModel, col

from survey.db.models import Channel, ReceiptCode, Response
from survey.questionnaires.spec import NOT_APPLICABLE
from survey.receipts import codes
from tests.conftest import form_token
from tests.factories import World, flush_answers, full_answers, new_code, stored_response

RESPONSE_COLUMNS = SQLModel.metadata.tables["response"].columns


def _count(engine: Engine) -> int:
    """Responses kept: the mixing buffer flushed first, so an answer still waiting in it counts."""
    flush_answers(engine)
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Response)) or 0)


def _open(client: TestClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text[:500]
    return page.text


def _submit(client: TestClient, path: str, answers: dict[str, Any], token: str | None = None) -> Any:
    token = token or form_token(_open(client, path))
    return client.post(path, data={**answers, "token": token}, follow_redirects=False)


def test_receipt_code_opens_the_survey_in_vietnamese(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    html = _open(client, f"/r/{code}")
    assert '<html lang="vi">' in html
    assert "Xã Thử Nghiệm" in html and "Hộ tịch" in html
    assert "Tiếp cận dịch vụ" in html and "Gửi câu trả lời" in html
    # one fieldset per element, one per item: 7 sections and 30 items
    assert html.count('<fieldset class="sec">') == len(world.sipas.sections)
    assert html.count('type="radio" name="q_access_signs"') == 6  # 5 levels + not applicable


def test_receipt_journey_stores_one_row_and_spends_the_code(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    before = _count(engine)
    answers = full_answers(world.sipas, value="5")
    answers["q_fb_prompt"] = "na"
    answers["q_comment"] = "Cán bộ tận tình <b>rất tốt</b>"
    answers["q_age_band"] = "a30_44"
    token = form_token(_open(client, f"/r/{code}"))
    resp = _submit(client, f"/r/{code}", answers, token)
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/thanks")
    thanks = client.get(resp.headers["location"])
    assert thanks.status_code == 200 and "Xin cảm ơn" in thanks.text
    assert _count(engine) == before + 1

    row = stored_response(engine, token)
    with Session(engine) as s:
        spent = s.scalars(
            select(col(ReceiptCode.spent)).where(col(ReceiptCode.code_hash) == codes.code_hash(code))
        ).one()
    assert row is not None and spent is True
    assert row.wave_id == world.open_wave_id
    assert row.unit_id == world.unit_id
    assert row.field_id == world.field_id
    assert row.channel == Channel.receipt
    assert row.questionnaire_version_id == world.sipas_version_id
    assert row.service_point_id is None
    layout = world.sipas.column_index
    assert row.answers[layout[("access_signs", None)]] == 5
    assert row.answers[layout[("fb_prompt", None)]] == NOT_APPLICABLE
    assert row.answers[layout[("age_band", None)]] == 2  # second option
    assert row.answers[layout[("sex", None)]] == 0  # not answered
    assert len(row.answers) == len(world.sipas.layout)
    assert row.comment == "Cán bộ tận tình <b>rất tốt</b>"
    assert row.submitted_at.minute % 15 == 0 and row.submitted_at.second == 0


def test_stored_response_cannot_be_joined_to_the_code(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    token = form_token(_open(client, f"/r/{code}"))
    assert _submit(client, f"/r/{code}", full_answers(world.sipas), token).status_code == 303
    digest = codes.code_hash(code)
    row = stored_response(engine, token)
    assert row is not None
    stored = " ".join(str(getattr(row, col.name)) for col in RESPONSE_COLUMNS)
    for secret in (code, codes.pretty(code), digest, digest[:16]):
        assert secret not in stored
    assert row.answers.find(code.encode()) == -1
    assert row.submission_key != digest
    assert not any(c.name in ("ip", "ip_address", "code", "code_hash", "user_agent") for c in RESPONSE_COLUMNS)


def test_second_submission_of_a_code_stores_nothing(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    html = _open(client, f"/r/{code}")
    token = form_token(html)
    answers = full_answers(world.sipas)
    assert _submit(client, f"/r/{code}", answers, token).status_code == 303
    count = _count(engine)
    # the same page sent again (the network went away, or a double tap): the same thank-you, nothing stored
    again = _submit(client, f"/r/{code}", answers, token)
    assert again.status_code == 303 and again.headers["location"].startswith("/thanks")
    assert _count(engine) == count
    # a second page opened in another tab: the code is spent
    another_page = token[:-3] + ("BBB" if token.endswith("AAA") else "AAA")
    other = client.post(f"/r/{code}", data={**answers, "token": another_page}, follow_redirects=False)
    assert other.status_code == 410
    assert "Mã này đã được sử dụng" in other.text
    assert _count(engine) == count
    reopened = client.get(f"/r/{code}")
    assert reopened.status_code == 410 and "đã được sử dụng" in reopened.text


def test_unknown_malformed_and_mistyped_codes_get_404(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    mistyped = code[:3] + ("A" if code[3] != "A" else "B") + code[4:]
    unknown = codes.new_receipt_code()
    for bad in ("AAAA", "x" * 16, "'; DROP TABLE response; --", mistyped, unknown):
        page = client.get(f"/r/{bad}")
        assert page.status_code == 404, bad
        assert "Traceback" not in page.text
        assert "phiếu hẹn" in page.text  # the message talks about the receipt, in Vietnamese
    assert client.get(f"/r/{code}").status_code == 200  # the real one still works


def test_codes_typed_by_hand_are_forgiving(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    typed = codes.pretty(code).lower().replace("0", "o")
    jump = client.get("/", params={"code": typed}, follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == f"/r/{code}"
    assert client.get(f"/r/{codes.pretty(code)}").status_code == 200


def test_closed_wave_and_expired_codes_get_410(client: TestClient, engine: Engine, world: World) -> None:
    closed = new_code(engine, world, wave="closed")
    page = client.get(f"/r/{closed}")
    assert page.status_code == 410 and "Đợt khảo sát" in page.text
    expired = new_code(engine, world, expires_in_days=-1)
    page = client.get(f"/r/{expired}")
    assert page.status_code == 410 and "hết hạn" in page.text
    before = _count(engine)
    answers = full_answers(world.sipas)
    post = client.post(f"/r/{closed}", data={**answers, "token": "1.2.3"}, follow_redirects=False)
    assert post.status_code == 410
    assert _count(engine) == before


def test_counter_code_opens_the_quick_rating(client: TestClient, engine: Engine, world: World) -> None:
    path = f"/c/{world.counter_token}"
    html = _open(client, path)
    assert "Quầy số 1" in html and "Đánh giá nhanh tại quầy" in html
    token = form_token(html)
    resp = _submit(client, path, {"q_overall": "2", "q_went_badly": ["waiting", "system"]}, token)
    assert resp.status_code == 303
    row = stored_response(engine, token)
    assert row is not None and row.service_point_id == world.service_point_id
    assert row.channel == Channel.counter
    assert row.wave_id == world.counter_wave_id
    assert row.questionnaire_version_id == world.quick_version_id
    assert row.field_id is None
    layout = world.quick.column_index
    assert row.answers[layout[("overall", None)]] == 2
    assert row.answers[layout[("went_badly", "waiting")]] == 1
    assert row.answers[layout[("went_badly", "system")]] == 1
    assert row.answers[layout[("went_badly", "attitude")]] == 0


def test_counter_page_sent_twice_is_stored_once(client: TestClient, engine: Engine, world: World) -> None:
    path = f"/c/{world.counter_token}"
    token = form_token(_open(client, path))
    answers = {"q_overall": "5", "q_went_well": ["quick"]}
    assert _submit(client, path, answers, token).status_code == 303
    count = _count(engine)
    again = _submit(client, path, answers, token)
    assert again.status_code == 303  # thanked again, nothing stored twice
    assert _count(engine) == count


def test_unknown_counter_and_counter_without_open_wave(client: TestClient, world: World) -> None:
    assert client.get("/c/doesnotexist").status_code == 404
    page = client.get(f"/c/{world.closed_counter_token}")
    assert page.status_code == 410
    assert "không có khảo sát" in page.text


def test_tampered_values_are_rejected_with_answers_kept(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    path = f"/r/{code}"
    before = _count(engine)
    bad = full_answers(world.sipas)
    bad["q_access_signs"] = "9"  # out of range
    bad["q_staff_polite"] = "5"
    bad["q_improve"] = ["attitude", "time", "fees", "online"]  # more than 3
    del bad["q_proc_time"]  # required, missing
    resp = _submit(client, path, bad)
    assert resp.status_code == 400
    html = resp.text
    assert html.startswith("<!doctype html>") and "<title>Lỗi:" in html
    assert "Có điều cần sửa" in html
    assert 'href="#q_access_signs"' in html and 'href="#q_proc_time"' in html and 'href="#q_improve"' in html
    assert "Xin chọn tối đa 3 mục." in html
    # answers kept: the valid choice is still checked
    assert 'name="q_staff_polite" value="5" checked' in html
    assert _count(engine) == before
    # the code is not spent by a failed attempt
    assert client.get(path).status_code == 200


def test_unknown_fields_and_oversized_comment_are_rejected(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    path = f"/r/{code}"
    before = _count(engine)
    extra = {**full_answers(world.sipas), "q_salary": "5", "unit_id": "1"}
    resp = _submit(client, path, extra)
    assert resp.status_code == 400 and "không có trong khảo sát" in resp.text
    long_comment = {**full_answers(world.sipas), "q_comment": "a" * 1001}
    resp = _submit(client, path, long_comment)
    assert resp.status_code == 400 and "1000 ký tự" in resp.text
    two_values = {**full_answers(world.sipas), "q_overall": ["4", "5"]}
    resp = _submit(client, path, two_values)
    assert resp.status_code == 400 and "Xin chỉ chọn một câu trả lời." in resp.text
    assert _count(engine) == before


def test_forged_or_missing_token_is_rejected(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    other = new_code(engine, world)
    path = f"/r/{code}"
    before = _count(engine)
    for token in (None, "garbage", form_token(_open(client, f"/r/{other}"))):  # None, junk, another code's page
        data: dict[str, Any] = full_answers(world.sipas)
        if token:
            data["token"] = token
        resp = client.post(path, data=data, follow_redirects=False)
        assert resp.status_code == 400
        assert "Không kiểm tra được phiếu này" in resp.text
    assert _count(engine) == before


def test_language_switch_to_english_and_back(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    en = client.get(f"/r/{code}?lang=en")
    assert en.status_code == 200
    assert '<html lang="en">' in en.text and "Access to the service" in en.text and "Send my answers" in en.text
    assert 'href="?lang=vi"' in en.text  # a visible switch back
    assert en.cookies.get("sipas_lang") == "en"
    # the choice sticks for the next page (the cookie), errors included
    resp = client.post(f"/r/{code}", data={"token": form_token(en.text)}, follow_redirects=False)
    assert resp.status_code == 400 and "Please choose an answer." in resp.text
    vi = client.get(f"/r/{code}?lang=vi")
    assert '<html lang="vi">' in vi.text and "Tiếp cận dịch vụ" in vi.text


def test_pages_carry_security_headers_and_are_small(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    page = client.get(f"/r/{code}", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["referrer-policy"] == "no-referrer"  # the code in the URL must not leak
    csp = page.headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    # the inline style is allowed by its own hash (the page is rendered once and kept), and by nothing else
    allowed = re.findall(r"'sha256-([^']+)'", csp)
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert len(styles) == 1 and "'nonce-" not in csp and "unsafe-inline" not in csp
    assert allowed == [base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()]
    assert "<script" not in page.text and "http://" not in page.text.split("</head>")[0]
    assert page.num_bytes_downloaded < 30 * 1024  # what travels over the network


def test_malformed_bodies_get_a_page_and_store_nothing(client: TestClient, engine: Engine, world: World) -> None:
    code = new_code(engine, world)
    path = f"/r/{code}"
    before = _count(engine)
    form = {"content-type": "application/x-www-form-urlencoded"}
    attempts = [
        (client.post(path, json={"q_overall": "5"}), 400),
        (client.post(path, content=b"q_overall=%ff%fe&token=x", headers=form), 400),
        (client.post(path, content=b"\xff\xfe\x00", headers=form), 400),
        (client.post(path, data={"q_comment": "a" * 300_000}), 413),
        (client.post(path, files={"f": ("a.txt", b"x")}), 400),
        (client.put(path), 405),
    ]
    for resp, status in attempts:
        assert resp.status_code == status, (status, resp.text[:300])
        assert resp.headers["content-type"].startswith("text/html")
        assert "Traceback" not in resp.text and "<h1>" in resp.text
    assert _count(engine) == before
    assert client.get(path).status_code == 200  # the code is still unspent


def test_hand_typed_garbage_stays_inside_the_code_route(client: TestClient) -> None:
    jump = client.get("/", params={"code": "../../etc?x=1"}, follow_redirects=False)
    assert jump.status_code == 303 and jump.headers["location"] == "/r/..%2F..%2Fetc%3Fx%3D1"
    assert client.get(jump.headers["location"]).status_code == 404


def test_unknown_route_gets_a_friendly_404(client: TestClient) -> None:
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert "Không tìm thấy" in page.text and "Traceback" not in page.text
