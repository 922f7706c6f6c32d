"""Integrity of ratings: the detectors on hand-computed and random arrays, the flags a submission earns through
the citizen routes (stored AND flagged, left out of headline scores), the scan, and the officers' review page."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.app import create_app
from survey.db.models import AuditLog, Response, Unit, UnitLevel, Wave
from survey.integrity import detect
from survey.integrity.citizen import DEVICE_COOKIE, device_id, min_seconds, new_device_cookie, rate_key
from survey.integrity.flags import Flag
from survey.integrity.services import scan_wave
from survey.limits import MemoryCounters
from survey.receipts import codes
from survey.results.scores import wave_scores
from survey.settings import Settings
from tests.conftest import form_token, make_account, make_settings, signed_in, staff_client
from tests.factories import World, build_world, flush_answers, full_answers, new_code

# -- detectors on hand-computed cases -----------------------------------------------------------------------------


def test_burst_p_value_is_the_poisson_upper_tail() -> None:
    # 10 ordinary buckets with 2 responses each, then 8 in one bucket: without it the rate is 20 / 10 = 2.
    bucket = np.array([b for b in range(10) for _ in range(2)] + [10] * 8)
    group = np.zeros(bucket.size, dtype=np.int64)
    result = detect.bursts(group, bucket, np.array([11.0]), alpha=0.01, min_count=8)
    tail = 1 - sum(math.exp(-2) * 2**k / math.factorial(k) for k in range(8))  # P(X >= 8), X ~ Poisson(2)
    assert tail == pytest.approx(0.0010967, abs=1e-7)
    assert result.expected[-1] == pytest.approx(2.0)
    assert result.p_value[-1] == pytest.approx(tail, rel=1e-9)
    assert result.mask.tolist() == [False] * 20 + [True] * 8
    # a stricter level, or a higher floor on the count, lets the same bucket through
    assert not detect.bursts(group, bucket, np.array([11.0]), alpha=1e-4, min_count=8).mask.any()
    assert not detect.bursts(group, bucket, np.array([11.0]), alpha=0.01, min_count=9).mask.any()


def test_bursts_are_judged_against_their_own_group() -> None:
    # group 1 is a busy counter (8 a bucket is its normal); group 0 is quiet and gets 8 at once
    busy = [(1, b) for b in range(10) for _ in range(8)]
    quiet = [(0, b) for b in range(10)] + [(0, 20)] * 8
    group, bucket = (np.array(x) for x in zip(*(busy + quiet), strict=True))
    result = detect.bursts(group, bucket, np.array([30.0, 10.0]), alpha=1e-3, min_count=8)
    assert not result.mask[group == 1].any()
    assert result.mask[(group == 0) & (bucket == 20)].all() and not result.mask[(group == 0) & (bucket < 20)].any()


def test_outside_hours() -> None:
    minute = np.array([6 * 60 + 45, 7 * 60, 17 * 60 + 15, 17 * 60 + 30, 12 * 60, 12 * 60])
    weekday = np.array([0, 0, 4, 4, 5, 6])  # Monday, Monday, Friday, Friday, Saturday, Sunday
    assert detect.outside_hours(minute, weekday).tolist() == [True, False, False, True, True, True]
    assert detect.outside_hours(minute, weekday, weekdays=(0, 1, 2, 3, 4, 5)).tolist()[4] is False


def test_repeated_patterns_need_the_same_group_window_and_vector() -> None:
    same = [5, 5, 5, 2]
    answers = np.array([same] * 5 + [same] * 4 + [[5, 5, 4, 2]] * 1, dtype=np.uint8)
    group = np.array([0] * 5 + [1] * 4 + [0])
    window = np.zeros(10, dtype=np.int64)
    assert detect.repeated_patterns(group, window, answers, min_repeats=5).tolist() == [True] * 5 + [False] * 5
    window[0] = 1  # one of the five an hour later: four left together
    assert not detect.repeated_patterns(group, window, answers, min_repeats=5).any()


def test_straight_lined() -> None:
    answers = np.array([[5, 5, 5, 9], [5, 5, 4, 9], [5, 255, 5, 0], [3, 3, 3, 1], [0, 0, 0, 0]], dtype=np.uint8)
    assert detect.straight_lined(answers, [0, 1, 2]).tolist() == [True, False, False, True, False]


def test_proportion_jump_against_a_hand_computed_z() -> None:
    # 50/100 then 80/100: pooled 0.65, se = sqrt(0.65 * 0.35 * 0.02) = 0.0674537, z = 0.3 / se = 4.44750
    jump = detect.proportion_jump(np.array([50]), np.array([100]), np.array([80]), np.array([100]), alpha=0.001)
    assert jump.z[0] == pytest.approx(0.3 / math.sqrt(0.65 * 0.35 * 0.02))
    assert jump.z[0] == pytest.approx(4.44750, abs=1e-5)
    assert jump.p_value[0] == pytest.approx(math.erfc(4.44750 / math.sqrt(2)), rel=1e-4)
    assert jump.significant.tolist() == [True]
    # nothing to test: an empty period, or everybody satisfied in both
    empty = detect.proportion_jump(np.array([0, 10]), np.array([0, 10]), np.array([5, 10]), np.array([9, 10]))
    assert empty.z.tolist() == [0.0, 0.0] and empty.p_value.tolist() == [1.0, 1.0]


# -- properties ---------------------------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=60)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 30)), min_size=1, max_size=200), st.integers(1, 12))
def test_bursts_properties(rows: list[tuple[int, int]], min_count: int) -> None:
    group, bucket = (np.array(x) for x in zip(*rows, strict=True))
    exposure = np.full(4, 31.0)
    result = detect.bursts(group, bucket, exposure, alpha=0.01, min_count=min_count)
    assert ((result.p_value >= 0) & (result.p_value <= 1)).all()
    assert not result.mask[result.count < min_count].any()
    # whether a response is in a burst depends on its bucket only: the same for every member
    for g, b in set(rows):
        members = result.mask[(group == g) & (bucket == b)]
        assert members.all() or not members.any()


@hsettings(max_examples=60, deadline=None)
@given(counts, counts, counts, counts)
def test_proportion_jump_is_antisymmetric(a: int, extra1: int, b: int, extra2: int) -> None:
    n1, n2 = a + extra1, b + extra2
    one = detect.proportion_jump(np.array([a]), np.array([n1]), np.array([b]), np.array([n2]))
    other = detect.proportion_jump(np.array([b]), np.array([n2]), np.array([a]), np.array([n1]))
    assert one.z[0] == pytest.approx(-other.z[0])
    assert one.p_value[0] == pytest.approx(other.p_value[0])
    assert 0.0 <= one.p_value[0] <= 1.0


@hsettings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.sampled_from([(5, 5, 5), (4, 5, 5), (1, 2, 3)])), max_size=60))
def test_repeated_patterns_do_not_depend_on_row_order(rows: list[tuple[int, tuple[int, ...]]]) -> None:
    group = np.array([g for g, _ in rows], dtype=np.int64)
    answers = np.array([a for _, a in rows], dtype=np.uint8).reshape(len(rows), 3)
    window = np.zeros(len(rows), dtype=np.int64)
    mask = detect.repeated_patterns(group, window, answers, min_repeats=4)
    order = np.random.default_rng(len(rows)).permutation(len(rows))
    assert (detect.repeated_patterns(group[order], window[order], answers[order], min_repeats=4) == mask[order]).all()


# -- the pieces of the citizen side ---------------------------------------------------------------------------------


def test_device_cookie_is_signed_and_rate_keys_group_addresses() -> None:
    cookie = new_device_cookie("s" * 40)
    assert device_id("s" * 40, cookie) == cookie.split(".")[0]
    assert device_id("t" * 40, cookie) is None  # another platform's secret
    assert device_id("s" * 40, "x" + cookie) is None and device_id("s" * 40, None) is None
    exempt = make_settings("sqlite://", rate_limit_exempt=["127.0.0.0/8", "::1/128"])
    limited = make_settings("sqlite://")
    key = rate_key(exempt, "203.0.113.5")
    assert key is not None and key.startswith("public-rate:") and "203.0.113" not in key  # a MAC, not the address
    assert rate_key(exempt, "127.0.0.1") is None and rate_key(limited, "127.0.0.1") is not None
    assert rate_key(exempt, "unreadable") is not None  # an address that cannot be read is limited, never exempt


def test_minimum_time_scales_with_the_questionnaire(settings: Settings, world: World) -> None:
    assert len(world.sipas.items) == 30
    assert min_seconds(world.sipas, settings) == pytest.approx(8.0)
    assert min_seconds(world.quick, settings) == pytest.approx(max(1.0, 8.0 * len(world.quick.items) / 30))
    assert min_seconds(world.quick, settings.model_copy(update={"min_completion_seconds": 2.0})) == 1.0  # floor


# -- through the citizen routes -------------------------------------------------------------------------------------


@pytest.fixture()
def own_world(engine: Engine) -> World:
    """Units, waves and a counter of this test alone, so its responses and scores are exact."""
    return build_world(engine)


@pytest.fixture()
def citizen(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    app = create_app(settings, engine, session_store=MemoryStore(), counters=MemoryCounters())
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


def _wave_code(engine: Engine, wave_id: int) -> str:
    with Session(engine) as s:
        wave = s.get(Wave, wave_id)
        assert wave is not None
        return wave.code


def _level(engine: Engine, unit_id: int) -> str:
    with Session(engine) as s:
        return str(
            s.scalars(
                select(col(UnitLevel.code))
                .join(Unit, col(Unit.level_id) == col(UnitLevel.id))
                .where(col(Unit.id) == unit_id)
            ).one()
        )


def _flags(engine: Engine, **where: Any) -> list[int]:
    with Session(engine) as s:
        stmt = select(col(Response.flags)).order_by(col(Response.id))
        for key, value in where.items():
            stmt = stmt.where(getattr(Response, key) == value)
        return [int(f) for f in s.scalars(stmt)]


def _old_token(settings: Settings, target: str, age_s: float = 120) -> str:
    """A form token of a page opened ``age_s`` ago: time enough to read the questions."""
    return codes.sign_form_token(settings.secret_key, target, now=time.time() - age_s)


def test_honeypot_and_speed_flag_the_response_which_is_stored(
    citizen: TestClient, settings: Settings, engine: Engine, own_world: World
) -> None:
    answers = full_answers(own_world.sipas, value="5")
    slow_code, trap_code, fast_code = (new_code(engine, own_world) for _ in range(3))
    page = citizen.get(f"/r/{slow_code}")
    assert page.status_code == 200
    assert 'name="contact_note"' in page.text and 'tabindex="-1"' in page.text and "Để trống ô này" in page.text

    def send(code: str, token: str, **extra: str) -> None:
        response = citizen.post(f"/r/{code}", data={**answers, "token": token, **extra}, follow_redirects=False)
        assert response.status_code == 303, response.text[:300]  # thanked like anybody
        flush_answers(engine)  # a batch of its own: the rows' ids follow the order they were sent in

    send(slow_code, _old_token(settings, f"r:{codes.code_hash(slow_code)}"), contact_note="")
    send(trap_code, _old_token(settings, f"r:{codes.code_hash(trap_code)}"), contact_note="buy cheap pills")
    fresh = citizen.get(f"/r/{fast_code}")
    send(fast_code, form_token(fresh.text))
    assert _flags(engine, wave_id=own_world.open_wave_id) == [0, int(Flag.HONEYPOT), int(Flag.TOO_FAST)]

    # headline scores leave the two flagged responses out; with include_flagged they are in
    wave, level = _wave_code(engine, own_world.open_wave_id), _level(engine, own_world.unit_id)
    headline = wave_scores(engine, wave_code=wave, level=level, weighting="equal")
    everything = wave_scores(engine, wave_code=wave, level=level, weighting="equal", include_flagged=True)
    assert (headline.responses, headline.excluded_flagged) == (1, 2)
    assert everything.responses == 3


def test_one_counter_rating_per_device_and_day(
    citizen: TestClient, settings: Settings, engine: Engine, own_world: World
) -> None:
    path = f"/c/{own_world.counter_token}"
    target = f"c:{own_world.service_point_id}:{own_world.counter_wave_id}"
    answers = {"q_overall": "4"}
    first = citizen.get(path)
    cookie = first.cookies.get(DEVICE_COOKIE)
    assert cookie and device_id(settings.secret_key, cookie) is not None
    assert "httponly" in first.headers["set-cookie"].lower()
    for _ in range(2):
        sent = citizen.post(path, data={**answers, "token": _old_token(settings, target)}, follow_redirects=False)
        assert sent.status_code == 303  # the second is thanked too: stored, flagged, not refused
        flush_answers(engine)  # a batch of its own: the rows' ids follow the order they were sent in
    # another phone at the same counter the same day
    with TestClient(app=citizen.app, raise_server_exceptions=False) as other:
        other.get(path)
        assert other.post(path, data={**answers, "token": _old_token(settings, target)}).status_code == 200
    flush_answers(engine)
    assert _flags(engine, service_point_id=own_world.service_point_id) == [0, int(Flag.REPEAT_DEVICE), 0]
    # the cookie value is nowhere in the stored rows
    with Session(engine) as s:
        rows = s.scalars(select(Response).where(col(Response.service_point_id) == own_world.service_point_id)).all()
    device = cookie.split(".")[0]
    assert all(device not in " ".join(str(getattr(r, c)) for c in Response.model_fields) for r in rows)


# -- the scan -------------------------------------------------------------------------------------------------------


def _insert(engine: Engine, world: World, when: datetime, answers: bytes, n: int, flags: int = 0) -> None:
    with Session(engine) as s, s.begin():
        s.execute(
            insert(Response),
            [
                {
                    "wave_id": world.open_wave_id,
                    "unit_id": world.unit_id,
                    "field_id": world.field_id,
                    "channel": 1,
                    "questionnaire_version_id": world.sipas_version_id,
                    "submitted_at": when,
                    "answers": answers,
                    "flags": flags,
                    "submission_key": codes.new_counter_token() + codes.new_counter_token(),
                }
                for _ in range(n)
            ],
        )


def _weekday_at(hour: int, minute: int = 0, *, weeks_ago: int = 0) -> datetime:
    """A recent Wednesday at ``hour``:``minute`` Asia/Ho_Chi_Minh (UTC+7), in UTC."""
    today = datetime.now(UTC).date() - timedelta(days=7 * weeks_ago)
    wednesday = today - timedelta(days=(today.weekday() - 2) % 7)
    return datetime(wednesday.year, wednesday.month, wednesday.day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def _vector(world: World, value: int) -> bytes:
    vector = bytearray(len(world.sipas.layout))
    for item in world.sipas.items:
        if item.type == "scale":
            vector[world.sipas.column_index[(item.id, None)]] = value
    return bytes(vector)


def test_scan_flags_bursts_off_hours_and_stuffed_patterns(engine: Engine, settings: Settings, own_world: World) -> None:
    varied = bytearray(_vector(own_world, 4))
    # an ordinary few Wednesdays: 2 a day at 09:00 and 14:00, each a little different
    for day in range(1, 4):
        for k, hour in enumerate((9, 14)):
            varied[0] = 1 + (day + k) % 5
            _insert(engine, own_world, _weekday_at(hour, weeks_ago=day), bytes(varied), 1)
    _insert(engine, own_world, _weekday_at(10), _vector(own_world, 5), 12)  # 12 identical all-5s in one slot
    _insert(engine, own_world, _weekday_at(20), _vector(own_world, 3), 1)  # at 20:00
    _insert(engine, own_world, _weekday_at(20, 15), _vector(own_world, 3), 1, flags=int(Flag.REVIEWED_OK))
    wave = _wave_code(engine, own_world.open_wave_id)
    with Session(engine) as s, s.begin():
        revision = s.scalars(select(col(Wave.revision)).where(col(Wave.code) == wave)).one()
        result = scan_wave(s, wave_code=wave, settings=settings, actor="test")
    flags = _flags(engine, wave_id=own_world.open_wave_id)
    assert flags[:6] == [0] * 6
    stuffed = int(Flag.BURST | Flag.REPEATED_PATTERN | Flag.STRAIGHT_LINE)
    assert flags[6:18] == [stuffed] * 12
    assert flags[18] == int(Flag.OFF_HOURS)
    assert flags[19] == int(Flag.REVIEWED_OK)  # cleared by an officer: the rescan leaves it alone
    assert (result.responses, result.changed, result.reviewed_kept) == (20, 13, 1)
    assert result.by_reason["BURST"] == 12 and result.by_reason["OFF_HOURS"] == 1
    with Session(engine) as s:
        assert s.scalars(select(col(Wave.revision)).where(col(Wave.code) == wave)).one() == revision + 1
        entry = s.scalars(
            select(AuditLog).where(col(AuditLog.action) == "integrity.scan", col(AuditLog.entity_id) == wave)
        ).one()
    assert entry.after is not None and entry.after["changed"] == 13
    # a second scan finds the same and changes nothing; nothing was deleted
    with Session(engine) as s, s.begin():
        again = scan_wave(s, wave_code=wave, settings=settings, actor="test")
    assert again.changed == 0 and _flags(engine, wave_id=own_world.open_wave_id) == flags


def test_scan_reports_a_jump_between_weeks(engine: Engine, settings: Settings, own_world: World) -> None:
    with Session(engine) as s, s.begin():
        wave = s.get(Wave, own_world.open_wave_id)
        assert wave is not None
        start = wave.starts_on
    week = lambda k: datetime(start.year, start.month, start.day, 3, tzinfo=UTC) + timedelta(days=7 * k)  # noqa: E731
    for k in range(2):  # 30 unsatisfied a week, one each 15 minutes from 10:00
        for j in range(30):
            _insert(engine, own_world, week(k) + timedelta(days=j % 5, minutes=15 * (j // 5)), _vector(own_world, 2), 1)
    for j in range(30):  # then 30 satisfied
        _insert(
            engine,
            own_world,
            week(2) + timedelta(days=j % 5, minutes=15 * (j // 5)),
            _vector(own_world, 5),
            1,
        )
    with Session(engine) as s, s.begin():
        every_day = settings.model_copy(update={"opening_weekdays": [0, 1, 2, 3, 4, 5, 6]})
        result = scan_wave(s, wave_code=_wave_code(engine, own_world.open_wave_id), settings=every_day)
    assert len(result.jumps) == 1
    jump = result.jumps[0]
    assert (jump.p1, jump.p2, jump.n1, jump.n2) == (0.0, 1.0, 30, 30)
    assert jump.week_start == start + timedelta(days=14)


# -- the review page --------------------------------------------------------------------------------------------


def _root_of(engine: Engine, world: World) -> int:
    with Session(engine) as s:
        unit = s.get(Unit, world.unit_id)
        assert unit is not None and unit.parent_id is not None
        return unit.parent_id


def test_review_page_confirm_clear_and_sensitivity(settings: Settings, engine: Engine, own_world: World) -> None:
    _insert(engine, own_world, _weekday_at(9), _vector(own_world, 4), 3)
    _insert(engine, own_world, _weekday_at(21), _vector(own_world, 1), 2, flags=int(Flag.OFF_HOURS))
    officer = make_account(engine, "officer", _root_of(engine, own_world))
    outsider = make_account(engine, "officer", own_world.other_unit_id)
    with Session(engine) as s:
        flagged = s.scalars(
            select(col(Response.id)).where(col(Response.wave_id) == own_world.open_wave_id, col(Response.flags) != 0)
        ).all()
    first, second = (int(i or 0) for i in flagged)
    with staff_client(settings, engine) as c:
        token = signed_in(c, officer)
        page = c.get("/staff/flags")
        assert page.status_code == 200
        assert "Xã Thử Nghiệm: Ngoài giờ làm việc" in page.text and f"/staff/flags/{first}/confirm" in page.text
        for secret in ("submission_key", "comment"):
            assert secret not in page.text
        # a decision needs a reason: without one the page comes back with the error, and nothing changes
        bare = c.post(f"/staff/flags/{first}/confirm", data={"_csrf_token": token, "reason": "  "})
        assert bare.status_code == 400 and 'class="summary" role="alert"' in bare.text
        assert f'href="#reason-{first}"' in bare.text and f'id="reason-{first}"' in bare.text
        assert _flags(engine, wave_id=own_world.open_wave_id)[3] == int(Flag.OFF_HOURS)
        confirmed = c.post(
            f"/staff/flags/{first}/confirm",
            data={"_csrf_token": token, "reason": "Sent at night from a closed office"},
            follow_redirects=False,
        )
        assert confirmed.status_code == 303
        cleared = c.post(f"/staff/flags/{second}/clear", data={"_csrf_token": token, "reason": "Late counter"})
        assert cleared.status_code == 200 and f"Phiếu {second} đã được xác nhận là thật" in cleared.text
        again = c.post(f"/staff/flags/{second}/clear", data={"_csrf_token": token, "reason": "again"})
        assert again.status_code == 409  # nothing left to review
        wave = _wave_code(engine, own_world.open_wave_id)
        view = c.get(f"/staff/flags/sensitivity?wave={wave}&lang=en")
        assert view.status_code == 200 and "Index, headline" in view.text and "Test Commune" in view.text
        assert c.get("/staff/flags/sensitivity?wave=nope").status_code == 404
    assert _flags(engine, wave_id=own_world.open_wave_id) == [
        0,
        0,
        0,
        int(Flag.OFF_HOURS | Flag.CONFIRMED),
        int(Flag.REVIEWED_OK),
    ]
    with Session(engine) as s:
        entries = s.scalars(
            select(AuditLog)
            .where(col(AuditLog.entity) == "response", col(AuditLog.entity_id).in_([str(first), str(second)]))
            .order_by(col(AuditLog.id))
        ).all()
    assert [(e.action, e.before, e.after) for e in entries] == [
        (
            "integrity.confirm",
            {"flags": 16, "reasons": ["OFF_HOURS"]},
            {"flags": 272, "reasons": ["OFF_HOURS"], "reason": "Sent at night from a closed office"},
        ),
        (
            "integrity.clear",
            {"flags": 16, "reasons": ["OFF_HOURS"]},
            {"flags": 512, "reasons": [], "reason": "Late counter"},
        ),
    ]
    assert all(e.user_id == officer.id for e in entries)
    # an officer of the neighbouring commune sees none of it and cannot decide on it
    with staff_client(settings, engine) as c:
        token = signed_in(c, outsider)
        assert "Ngoài giờ làm việc" not in c.get("/staff/flags").text
        assert c.post(f"/staff/flags/{first}/clear", data={"_csrf_token": token, "reason": "x"}).status_code == 403
