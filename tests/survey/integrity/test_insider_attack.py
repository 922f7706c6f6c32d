"""The insider attack, replayed through the real pages: a district officer issues receipt codes for his own
district, answers them, the scan flags them, he tries to clear the flags and is refused, and his district's
score and rank stay what they were. Also: the over-issuing check on a hand-made case.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.api.keys import create_api_key
from survey.app import create_app
from survey.db.audited import publish_questionnaire
from survey.db.models import (
    Channel,
    FrameCount,
    IntegrityAlert,
    ProcedureField,
    ReceiptCode,
    Response,
    Unit,
    UnitLevel,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.integrity.flags import Flag
from survey.integrity.services import scan_wave
from survey.limits import MemoryCounters
from survey.questionnaires.spec import Spec, load_file
from survey.receipts import codes
from survey.results.scores import league_rows, wave_scores
from survey.settings import Settings
from tests.conftest import make_account, signed_in, staff_client
from tests.factories import build_world, flush_answers, full_answers, new_code

ATTACK = 300  # codes the district officer issues and answers himself
GENUINE = 60  # responses each district had before
TRANSACTIONS = 150  # each district's transactions in the frame, for the one field
SATISFIED = {"D1": 0.85, "D2": 0.95, "D3": 0.75, "D4": 0.65}  # D1 is second before the attack


@dataclass(frozen=True)
class Province:
    root_id: int
    root_code: str
    district_ids: dict[str, int]
    district_codes: dict[str, str]
    level: str
    field_id: int
    wave_id: int
    wave_code: str
    spec: Spec


def _local(day: date, hour: int) -> datetime:
    """``hour`` o'clock on ``day`` in Asia/Ho_Chi_Minh (UTC+7), in UTC."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=7)


def _weekdays_before(today: date, count: int) -> list[date]:
    days: list[date] = []
    day = today - timedelta(days=2)
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day -= timedelta(days=1)
    return days


def _province(engine: Engine) -> Province:
    """Four districts of a province surveyed by one open receipt wave, each with 60 genuine responses (one an
    hour on past weekdays, in opening hours) from 80 codes issued three weeks ago, and a frame of 150
    transactions in the wave's one field."""
    token = secrets.token_hex(3)
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    criteria = [spec.column_index[(item.id, None)] for item in spec.items if item.role == "criterion"]
    today = datetime.now(UTC).date()
    rng = np.random.default_rng(2026)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        top = UnitLevel(code=f"atkp{token}", name_vi="Tỉnh", name_en="Province", depth=0)
        level = UnitLevel(code=f"atkd{token}", name_vi="Huyện", name_en="District", depth=1)
        s.add_all([top, level])
        s.flush()
        root = Unit(code=f"ATK{token}", name_vi="Tỉnh Thử Tấn Công", name_en="Attack Province", level_id=pk(top))
        fld = ProcedureField(code=f"atk{token}", name_vi="Đất đai", name_en="Land")
        s.add_all([root, fld])
        s.flush()
        root.path = f"/{root.id}/"
        districts = {}
        for name in SATISFIED:
            unit = Unit(
                code=f"ATK{token}-{name}",
                name_vi=f"Huyện {name}",
                name_en=f"District {name}",
                level_id=pk(level),
                parent_id=root.id,
            )
            s.add(unit)
            s.flush()
            unit.path = f"{root.path}{unit.id}/"
            districts[name] = unit
        version = publish_questionnaire(s, spec, actor="test")
        wave = Wave(
            code=f"atk{token}",
            name_vi="Đợt khảo sát",
            name_en="Survey wave",
            questionnaire_version_id=pk(version),
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=30),
            status=WaveStatus.open.value,
            channels="receipt",
            min_responses=30,
        )
        s.add(wave)
        s.flush()
        s.execute(insert(WaveUnit), [{"wave_id": pk(wave), "unit_id": pk(u)} for u in districts.values()])
        days = _weekdays_before(today, GENUINE // 4)
        for name, unit in districts.items():
            s.add(
                FrameCount(
                    unit_id=pk(unit),
                    field_id=pk(fld),
                    period_start=wave.starts_on,
                    period_end=wave.ends_on,
                    transactions=TRANSACTIONS,
                )
            )
            s.execute(
                insert(ReceiptCode),
                [
                    {
                        "code_hash": codes.code_hash(codes.new_receipt_code()),
                        "wave_id": pk(wave),
                        "unit_id": pk(unit),
                        "field_id": pk(fld),
                        "issued_on": today - timedelta(days=21),
                        "expires_on": wave.ends_on,
                        "spent": k < GENUINE,
                    }
                    for k in range(80)
                ],
            )
            rows = []
            for k in range(GENUINE):
                answers = np.zeros(len(spec.layout), dtype=np.uint8)
                happy = rng.random(len(criteria)) < SATISFIED[name]
                answers[criteria] = np.where(
                    happy, rng.integers(4, 6, len(criteria)), rng.integers(1, 4, len(criteria))
                )
                rows.append(
                    {
                        "wave_id": pk(wave),
                        "unit_id": pk(unit),
                        "field_id": pk(fld),
                        "channel": int(Channel.receipt),
                        "questionnaire_version_id": pk(version),
                        "submitted_at": _local(days[k // 4], (8, 10, 13, 15)[k % 4]),
                        "answers": answers.tobytes(),
                        "flags": 0,
                        "submission_key": secrets.token_hex(32),
                    }
                )
            s.execute(insert(Response), rows)
    return Province(
        root_id=pk(root),
        root_code=root.code,
        district_ids={name: pk(u) for name, u in districts.items()},
        district_codes={name: u.code for name, u in districts.items()},
        level=level.code,
        field_id=pk(fld),
        wave_id=pk(wave),
        wave_code=wave.code,
        spec=spec,
    )


def _scan(engine: Engine, settings: Settings, wave_code: str) -> Any:
    with Session(engine) as s, s.begin():
        return scan_wave(s, wave_code=wave_code, settings=settings, actor="test")


def _league(settings: Settings, engine: Engine, wave_code: str, level: str, key: str) -> dict[str, dict[str, Any]]:
    """The wave's league table through the read API of a fresh app (no score computed before), by unit code."""
    app = create_app(settings, engine, session_store=MemoryStore(), counters=MemoryCounters())
    with TestClient(app=app, raise_server_exceptions=False) as client:
        body = client.get(f"/api/v1/waves/{wave_code}/league?level={level}", headers={"Authorization": f"Bearer {key}"})
        assert body.status_code == 200, body.text[:300]
    return {row["unit"]: row for row in body.json()["rows"]}


def _flags(engine: Engine, wave_id: int, unit_id: int) -> dict[int, int]:
    with Session(engine) as s:
        rows = s.execute(
            select(col(Response.id), col(Response.flags)).where(
                col(Response.wave_id) == wave_id, col(Response.unit_id) == unit_id
            )
        ).all()
    return {int(i or 0): int(f) for i, f in rows}


@pytest.fixture()
def citizen(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """A phone on the survey pages; the attacker spreads his answers over many phones, so no address limit."""
    relaxed = settings.model_copy(update={"public_rate_limit_per_minute": 0})
    app = create_app(relaxed, engine, session_store=MemoryStore(), counters=MemoryCounters())
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def test_a_district_officer_cannot_raise_his_own_score(settings: Settings, engine: Engine, citizen: TestClient) -> None:
    province = _province(engine)
    d1, d1_code = province.district_ids["D1"], province.district_codes["D1"]
    officer = make_account(engine, "officer", d1)  # the district's own officer
    above = make_account(engine, "officer", province.root_id)  # the province's
    with Session(engine) as s, s.begin():
        reader = create_api_key(s, name="BI tool", unit_code=province.root_code, scopes=("read",), actor="test")
    assert _scan(engine, settings, province.wave_code).changed == 0  # the genuine responses raise nothing
    before = _league(settings, engine, province.wave_code, province.level, reader.secret)
    assert before[d1_code]["rank"] == 2

    # 1. He issues 300 codes for his own district through the receipt-code page ...
    with staff_client(settings, engine) as staff:
        token = signed_in(staff, officer)
        batch = staff.post(
            "/staff/receipt-codes",
            data={
                "_csrf_token": token,
                "wave_id": str(province.wave_id),
                "unit_id": str(d1),
                "field_id": str(province.field_id),
                "count": str(ATTACK),
            },
        )
        assert batch.status_code == 200, batch.text[:300]
        found = re.search(r'name="codes" value="([^"]+)"', batch.text)
        assert found
        issued = found.group(1).split()
        assert len(issued) == ATTACK

        # 2. ... and answers every one of them, full marks, through the citizen page.
        perfect = full_answers(province.spec, value="5")
        genuine = set(_flags(engine, province.wave_id, d1))  # response ids carry no order: tell them by set
        assert len(genuine) == GENUINE
        for code in issued:
            assert citizen.get(f"/r/{code}").status_code == 200
            aged = codes.sign_form_token(settings.secret_key, f"r:{codes.code_hash(code)}", now=time.time() - 120)
            sent = citizen.post(f"/r/{code}", data={**perfect, "token": aged}, follow_redirects=False)
            assert sent.status_code == 303, sent.text[:300]
        flush_answers(engine)  # out of the mixing buffer into the response table, as the app's mixer does
        flags = _flags(engine, province.wave_id, d1)
        attack = sorted(set(flags) - genuine)
        assert len(attack) == ATTACK
        counted = wave_scores(engine, wave_code=province.wave_code, level=province.level, include_flagged=True)
        would_be = {r.unit.code: r.rank for r in league_rows(counted)}
        assert would_be[d1_code] == 1  # counted, the attack would make his district the first

        # 3. The integrity scan flags them: 380 codes for 150 transactions, answered in a burst.
        result = _scan(engine, settings, province.wave_code)
        assert result.alerts >= 2 and result.by_reason["OVER_ISSUED"] == ATTACK
        flags = _flags(engine, province.wave_id, d1)
        assert all(flags[rid] & Flag.OVER_ISSUED for rid in attack)
        assert all(flags[rid] == 0 for rid in genuine)  # sent before the codes outran the frame

        # 4. He sees them, read only, and his decisions are refused.
        page = staff.get("/staff/flags?lang=en")
        assert page.status_code == 200 and "Reviewed above your unit" in page.text
        assert 'id="alerts"' not in page.text  # the alert about his district goes to the level above
        for rid in attack[:5]:
            assert f'action="/staff/flags/{rid}/clear"' not in page.text
            for decision in ("clear", "confirm"):
                refused = staff.post(
                    f"/staff/flags/{rid}/{decision}?lang=en",
                    data={"_csrf_token": token, "reason": "genuine citizens, I was there"},
                )
                assert refused.status_code == 403
                assert "reviewed above it: an officer of a higher unit" in refused.text
        # an API key, even the province's, cannot review at all: decisions need a staff session
        bearer = {"Authorization": f"Bearer {reader.secret}"}
        with TestClient(app=citizen.app, raise_server_exceptions=False) as api:
            refused_key = api.post(f"/staff/flags/{attack[0]}/clear", data={"reason": "x"}, headers=bearer)
            assert refused_key.status_code in (401, 403)  # no session (nor its CSRF token): refused before review
            assert not [r for r in api.app.routes if "flag" in r.path and r.path.startswith("/api")]
        assert _flags(engine, province.wave_id, d1) == flags

    # 5. His district's score and rank are what they were before the attack.
    after = _league(settings, engine, province.wave_code, province.level, reader.secret)
    for name in ("index", "lower", "upper", "n", "rank", "rank_lower", "rank_upper", "tier_target"):
        assert after[d1_code][name] == before[d1_code][name], name
    assert {code: row["rank"] for code, row in after.items()} == {code: row["rank"] for code, row in before.items()}

    # 6. The province's officer sees the alert and reviews: one response cleared, with a reason.
    with Session(engine) as s:
        alerts = s.scalars(select(IntegrityAlert).where(col(IntegrityAlert.wave_id) == province.wave_id)).all()
    over = [a for a in alerts if a.kind == "over_issued" and a.field_id == province.field_id]
    assert len(over) == 1 and (over[0].unit_id, over[0].addressed_to) == (d1, province.root_id)
    assert (over[0].codes_issued, over[0].transactions, over[0].responses) == (80 + ATTACK, TRANSACTIONS, ATTACK)
    assert any(a.kind == "burst" and a.unit_id == d1 for a in alerts)
    with staff_client(settings, engine) as staff:
        token = signed_in(staff, above)
        page = staff.get("/staff/flags?lang=en")
        assert 'id="alerts"' in page.text and "More receipt codes issued than transactions" in page.text
        assert f'action="/staff/flags/{attack[0]}/clear"' in page.text
        ids = re.findall(r'\bid="([^"]+)"', page.text)
        assert len(ids) == len(set(ids))  # a response listed under several reasons gets one form id per listing
        cleared = staff.post(
            f"/staff/flags/{attack[0]}/clear",
            data={"_csrf_token": token, "reason": "called the citizen back"},
            follow_redirects=False,
        )
        assert cleared.status_code == 303
        # 7. The district's score page says how much of its figure rests on that review.
        unit_page = staff.get(f"/staff/results/{province.wave_code}/units/{d1}?lang=en")
        assert unit_page.status_code == 200
        assert f"Responses flagged and cleared by review: 1 of {GENUINE + 1}." in unit_page.text
        card = re.search(r'<div class="card" id="reviews">(.*?)</div>', unit_page.text, re.S)
        assert card
        without = re.search(r'data-index="([-\d.]+)"', card.group(1))
        assert without and float(without.group(1)) == pytest.approx(before[d1_code]["index"], abs=0.005)


# -- the over-issuing check on a hand-made case ----------------------------------------------------------------


def test_over_issued_strata_flag_receipt_responses_sent_since_they_passed_the_frame(
    settings: Settings, engine: Engine
) -> None:
    """Unit U: field A has 100 transactions, field B 50 (150 in all); unit V has no frame.

    Codes of A: 60 on day 1, 50 on day 3 (110 > 100 from day 3). Codes of B: 40 on day 2 (within). Codes with
    no field: 10 on day 4 (the unit's 160 > 150 from day 4). V: 1,000 codes, not judged.
    """
    province = _province(engine)  # a wave, a field and a level to build on
    today = datetime.now(UTC).date()
    day = {k: today - timedelta(days=24 - 5 * k) for k in (1, 2, 3, 4)}  # days 1..4: 19, 14, 9 and 4 days ago
    with Session(engine, expire_on_commit=False) as s, s.begin():
        wave = s.get(Wave, province.wave_id)
        assert wave is not None
        level_id = int(s.scalars(select(col(UnitLevel.id)).where(col(UnitLevel.code) == province.level)).one() or 0)
        u = Unit(
            code=f"OV{secrets.token_hex(3)}", name_vi="U", name_en="U", level_id=level_id, parent_id=province.root_id
        )
        v = Unit(
            code=f"OV{secrets.token_hex(3)}", name_vi="V", name_en="V", level_id=level_id, parent_id=province.root_id
        )
        b = ProcedureField(code=f"ovb{secrets.token_hex(3)}", name_vi="B", name_en="B")
        s.add_all([u, v, b])
        s.flush()
        u.path, v.path = f"/{province.root_id}/{u.id}/", f"/{province.root_id}/{v.id}/"
        a_id, b_id = province.field_id, pk(b)
        s.add_all(
            [
                FrameCount(
                    unit_id=pk(u), field_id=a_id, period_start=wave.starts_on, period_end=wave.ends_on, transactions=100
                ),
                FrameCount(
                    unit_id=pk(u), field_id=b_id, period_start=wave.starts_on, period_end=wave.ends_on, transactions=50
                ),
            ]
        )
        batches = [(u, a_id, 1, 60), (u, a_id, 3, 50), (u, b_id, 2, 40), (u, None, 4, 10), (v, a_id, 1, 1000)]
        for unit, field_id, k, n in batches:
            s.execute(
                insert(ReceiptCode),
                [
                    {
                        "code_hash": codes.code_hash(codes.new_receipt_code()),
                        "wave_id": province.wave_id,
                        "unit_id": pk(unit),
                        "field_id": field_id,
                        "issued_on": day[k],
                        "expires_on": wave.ends_on,
                    }
                    for _ in range(n)
                ],
            )
        # one response a day at 10:00 local, per stratum and channel, from day 1 to yesterday
        responses = []
        for unit, field_id, channel in [
            (u, a_id, Channel.receipt),
            (u, b_id, Channel.receipt),
            (u, a_id, Channel.counter),
            (v, a_id, Channel.receipt),
        ]:
            d = day[1]
            while d < today:
                responses.append(
                    {
                        "wave_id": province.wave_id,
                        "unit_id": pk(unit),
                        "field_id": field_id,
                        "channel": int(channel),
                        "questionnaire_version_id": wave.questionnaire_version_id,
                        "submitted_at": _local(d, 10),
                        "answers": bytes(len(province.spec.layout)),
                        "flags": 0,
                        "submission_key": secrets.token_hex(32),
                    }
                )
                d += timedelta(days=1)
        s.execute(insert(Response), responses)
        u_id, v_id = pk(u), pk(v)

    first = _scan(engine, settings, province.wave_code)
    with Session(engine) as s:
        rows = s.execute(
            select(
                col(Response.unit_id),
                col(Response.field_id),
                col(Response.channel),
                col(Response.submitted_at),
                col(Response.flags),
            ).where(col(Response.wave_id) == province.wave_id, col(Response.unit_id).in_([u_id, v_id]))
        ).all()
        alerts = s.scalars(
            select(IntegrityAlert).where(
                col(IntegrityAlert.wave_id) == province.wave_id, col(IntegrityAlert.unit_id).in_([u_id, v_id])
            )
        ).all()

    def since(k: int) -> datetime:
        return _local(day[k], 0)

    for unit_id, field_id, sent_by, at, flags in rows:
        over = bool(flags & Flag.OVER_ISSUED)
        if unit_id == v_id or sent_by != int(Channel.receipt):
            expected = False  # no frame to judge V by; counter ratings need no code
        elif field_id == a_id:
            expected = at >= since(3)
        else:
            expected = at >= since(4)  # field B was within its frame; the unit as a whole was not from day 4
        assert over is expected, (unit_id, field_id, sent_by, at)
    found = {(a.field_id, a.kind): (a.codes_issued, a.transactions, a.responses, a.addressed_to) for a in alerts}
    a_since = sum(
        1 for r in rows if r[0] == u_id and r[1] == a_id and r[2] == int(Channel.receipt) and r[3] >= since(3)
    )
    u_since = sum(1 for r in rows if r[0] == u_id and r[2] == int(Channel.receipt) and r[3] >= since(4))
    assert found == {
        (a_id, "over_issued"): (110, 100, a_since, province.root_id),
        (None, "over_issued"): (160, 150, u_since, province.root_id),
    }
    assert first.alerts == 2
    again = _scan(engine, settings, province.wave_code)
    assert again.changed == 0 and again.alerts == 0  # a rescan finds the same: no new alert, no new flag


def test_codes_issued_beyond_the_frame_alert_before_anyone_answers(settings: Settings, engine: Engine) -> None:
    world = build_world(engine)
    with Session(engine) as s, s.begin():
        wave = s.get(Wave, world.open_wave_id)
        assert wave is not None
        s.add(
            FrameCount(
                unit_id=world.unit_id,
                field_id=world.field_id,
                period_start=wave.starts_on,
                period_end=wave.ends_on,
                transactions=2,
            )
        )
        code = wave.code
    for _ in range(3):
        new_code(engine, world)
    result = _scan(engine, settings, code)
    assert (result.responses, result.alerts) == (0, 2)  # the field, and the unit as a whole
    with Session(engine) as s:
        alerts = s.scalars(select(IntegrityAlert).where(col(IntegrityAlert.wave_id) == world.open_wave_id)).all()
    assert sorted((a.field_id or 0, a.codes_issued, a.transactions, a.responses) for a in alerts) == [
        (0, 3, 2, 0),
        (world.field_id, 3, 2, 0),
    ]
