"""Survey waves on the staff pages: create, open and close, plan, and quota progress within one's scope."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import date, timedelta

from litestar.testing import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import AuditLog, FrameCount, Quota, ReceiptCode, Unit, Wave, WaveUnit
from survey.receipts import codes
from tests.access.workspace import fresh_unit, fresh_wave, published_version
from tests.conftest import StaffWorld, csrf_token, signed_in


def _wave(engine: Engine, wave_id: int) -> Wave:
    with Session(engine) as s:
        wave = s.get(Wave, wave_id)
        assert wave is not None
        return wave


def _audit(engine: Engine, action: str, entity_id: int) -> list[AuditLog]:
    with Session(engine) as s:
        return list(
            s.scalars(
                select(AuditLog).where(
                    col(AuditLog.action) == action,
                    col(AuditLog.entity) == "wave",
                    col(AuditLog.entity_id) == str(entity_id),
                )
            )
        )


def test_an_officer_creates_a_wave_over_every_commune_of_the_district(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    extra = fresh_unit(engine, staff_world.district_id)
    version = published_version(engine)
    with Session(engine) as s:
        district = s.get(Unit, staff_world.district_id)
        assert district is not None
        level_id = district.level_id
        below = set(
            s.scalars(
                select(col(Unit.id)).where(
                    col(Unit.path).startswith(district.path), col(Unit.id) != district.id, col(Unit.active)
                )
            )
        )
    assert {staff_world.commune_id, extra} <= below
    form = staff.get("/staff/waves/new")
    assert form.status_code == 200 and f'<option value="{version}"' in form.text
    assert f'id="unit-{staff_world.other_district_id}"' not in form.text
    token = csrf_token(form.text)
    incomplete = staff.post("/staff/waves/new", data={"_csrf_token": token, "code": "", "channels": "receipt"})
    assert incomplete.status_code == 400 and "Lỗi: " in incomplete.text
    for field in ("code", "name_vi", "starts_on", "ends_on", "version_id", "units"):
        assert f'href="#{field}"' in incomplete.text, field
    code = f"2026-Q3-{secrets.token_hex(3)}"
    created = staff.post(
        "/staff/waves/new",
        data={
            "_csrf_token": token,
            "code": code,
            "name_vi": "Quý 3 năm 2026",
            "name_en": "",
            "starts_on": "2026-07-01",
            "ends_on": "2026-09-30",
            "version_id": str(version),
            "channels": ["receipt", "counter"],
            "level_id": str(level_id),
            "under_id": str(staff_world.district_id),
            "min_responses": "50",
            "target": "92,5",
        },
    )
    assert created.status_code == 200, created.text[:400]
    assert "Đã tạo đợt khảo sát ở trạng thái nháp." in created.text and "Bản nháp" in created.text
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == code)).one()
        units = set(s.scalars(select(col(WaveUnit.unit_id)).where(col(WaveUnit.wave_id) == wave.id)))
    assert units == below
    assert (wave.status, wave.channels, wave.min_responses, wave.target) == ("draft", "receipt,counter", 50, 92.5)
    assert (wave.starts_on, wave.ends_on, wave.name_en) == (date(2026, 7, 1), date(2026, 9, 30), "Quý 3 năm 2026")
    [entry] = _audit(engine, "create", wave.id)  # type: ignore[arg-type]
    assert entry.user_id == staff_world.officer.id and entry.after is not None and entry.after["units"] == len(below)
    listed = staff.get("/staff/waves")
    assert code in listed.text


def test_opening_then_closing_a_wave_closes_its_receipt_codes(
    staff: TestClient, client: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    wave_id = fresh_wave(engine, staff_world.commune_id)
    code = codes.new_receipt_code()
    today = date.today()
    with Session(engine) as s, s.begin():
        s.execute(
            insert(ReceiptCode).values(
                code_hash=codes.code_hash(code),
                wave_id=wave_id,
                unit_id=staff_world.commune_id,
                issued_on=today,
                expires_on=today + timedelta(days=10),
            )
        )
    page = staff.get(f"/staff/waves/{wave_id}")
    assert f'action="/staff/waves/{wave_id}/open"' in page.text
    opened = staff.post(f"/staff/waves/{wave_id}/open", data={"_csrf_token": csrf_token(page.text)})
    assert opened.status_code == 200 and "Đợt khảo sát đã mở" in opened.text
    assert f'action="/staff/waves/{wave_id}/close"' in opened.text
    assert _wave(engine, wave_id).status == "open"
    assert client.get(f"/r/{code}").status_code == 200  # the citizen can answer
    closed = staff.post(f"/staff/waves/{wave_id}/close", data={"_csrf_token": csrf_token(opened.text)})
    assert closed.status_code == 200 and "Đợt khảo sát đã đóng" in closed.text
    assert _wave(engine, wave_id).status == "closed"
    answer = client.get(f"/r/{code}?lang=en")
    assert answer.status_code == 410 and "This survey has closed." in answer.text
    again = staff.post(f"/staff/waves/{wave_id}/open", data={"_csrf_token": csrf_token(closed.text)})
    assert again.status_code == 409 and _wave(engine, wave_id).status == "closed"
    [opening] = _audit(engine, "open", wave_id)
    [closing] = _audit(engine, "close", wave_id)
    assert (opening.before, opening.after) == ({"status": "draft"}, {"status": "open"})
    assert (closing.before, closing.after, closing.user_id) == (
        {"status": "open"},
        {"status": "closed"},
        staff_world.officer.id,
    )


def test_a_plan_is_previewed_then_saved_as_quotas(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    signed_in(staff, staff_world.officer)
    unit = fresh_unit(engine, staff_world.commune_id)  # a unit with this test's frame counts only
    wave_id = fresh_wave(engine, unit, frame=True)
    preview = staff.get(f"/staff/waves/{wave_id}/plan?margin=5&response_rate=50&deff=1.5&method=proportional")
    assert preview.status_code == 200
    assert '<td class="num">800</td>' in preview.text  # the frame's transactions
    with Session(engine) as s:
        assert not list(s.scalars(select(Quota).where(col(Quota.wave_id) == wave_id)))  # previewing wrote nothing
    wrong = staff.get(f"/staff/waves/{wave_id}/plan?margin=50")
    assert wrong.status_code == 400 and 'href="#margin"' in wrong.text
    saved = staff.post(
        f"/staff/waves/{wave_id}/plan",
        data={
            "_csrf_token": csrf_token(preview.text),
            "margin": "5",
            "response_rate": "50",
            "deff": "1.5",
            "method": "proportional",
        },
    )
    assert saved.status_code == 200 and "Đã lưu kế hoạch chọn mẫu" in saved.text
    with Session(engine) as s:
        [quota] = list(s.scalars(select(Quota).where(col(Quota.wave_id) == wave_id)))
    # Cochran at 5 points for N = 800 is 260; x 1.5 for the design effect, capped by the population
    assert quota.population == 800 and 260 < quota.target <= 800 and quota.codes_to_issue >= quota.target
    [entry] = _audit(engine, "save_plan", wave_id)
    assert entry.user_id == staff_world.officer.id and entry.after is not None
    assert entry.after["margin"] == 0.05 and entry.after["response_rate"] == 0.5


def test_progress_shows_the_viewers_units_only_and_downloads_as_csv(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    unit_id = fresh_unit(engine, staff_world.commune_id)
    beyond = fresh_unit(engine, staff_world.other_district_id)
    inside = fresh_wave(engine, unit_id, frame=True)
    with Session(engine) as s:
        wave = s.get(Wave, inside)
        assert wave is not None
        field_id = _any_frame_field(s, unit_id)
        s.add(WaveUnit(wave_id=inside, unit_id=beyond))
        s.add(
            FrameCount(
                unit_id=beyond,
                field_id=field_id,
                period_start=wave.starts_on,
                period_end=wave.ends_on,
                transactions=300,
            )
        )
        s.commit()
    signed_in(staff, staff_world.admin)
    form = staff.get(f"/staff/waves/{inside}/plan")
    staff.post(f"/staff/waves/{inside}/plan", data={"_csrf_token": csrf_token(form.text), "margin": "10"})
    with Session(engine) as s:
        commune = s.get(Unit, unit_id)
        other = s.get(Unit, beyond)
        assert commune is not None and other is not None
        commune_code, other_code = commune.code, other.code
        planned = set(s.scalars(select(col(Quota.unit_id)).where(col(Quota.wave_id) == inside)))
    assert planned == {unit_id, beyond}
    # The district's leader reads the progress of the district only.
    leader = staff
    leader.post("/logout", data={"_csrf_token": csrf_token(staff.get("/staff").text)})
    signed_in(leader, staff_world.leader)
    page = leader.get(f"/staff/waves/{inside}/progress")
    assert page.status_code == 200
    assert commune_code in page.text and other_code not in page.text
    assert "Chậm tiến độ" in page.text or "Đúng tiến độ" in page.text
    download = leader.get(f"/staff/waves/{inside}/progress.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["level", "unit_code", "unit_name", "field_code"]
    assert {r[1] for r in rows[1:]} == {commune_code}
    assert {r[0] for r in rows[1:]} == {"unit", "stratum"}
    # A leader reads, but changes nothing; nor may the district's officer close a wave reaching beyond it.
    assert leader.post(f"/staff/waves/{inside}/close", data={"_csrf_token": csrf_token(page.text)}).status_code == 403
    signed_in(leader, staff_world.officer)
    summary = leader.get(f"/staff/waves/{inside}")
    assert summary.status_code == 200 and "/plan" not in summary.text and "/open" not in summary.text
    refused = leader.post(f"/staff/waves/{inside}/open", data={"_csrf_token": csrf_token(summary.text)})
    assert refused.status_code == 403 and _wave(engine, inside).status == "draft"


def _any_frame_field(s: Session, unit_id: int) -> int:
    return int(s.scalars(select(col(FrameCount.field_id)).where(col(FrameCount.unit_id) == unit_id)).one())
