"""Routes of the officer workspace (part A): units, service points, fields, import; waves; API keys.

Every POST acts on rows made fresh for the call (a unit, a service point, a wave, a key under the unit
``unit_for`` picks), and its ``check`` reads the database to say whether the change really happened.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.api.keys import create_api_key
from survey.db.audited import publish_questionnaire
from survey.db.models import (
    ApiKey,
    FrameCount,
    ProcedureField,
    Quota,
    ServicePoint,
    Unit,
    Wave,
    WaveUnit,
    pk,
)
from survey.questionnaires.spec import load_file
from survey.receipts import codes
from tests.access import LOGIN, Call, Route, get, unit_for
from tests.conftest import StaffWorld

Maker = Callable[[StaffWorld, Engine, str, str], Call]
ALL_READ: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}
MANAGERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
ADMIN_PAGE: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 403, "leader": 403}
ADMIN_CHANGE: dict[str, int | str] = {"anonymous": 401, "admin": 303, "officer": 403, "leader": 403}
SCOPED_READ: dict[str, int | str] = {
    "anonymous/in": LOGIN,
    "anonymous/out": LOGIN,
    "admin/in": 200,
    "admin/out": 403,
    "officer/in": 200,
    "officer/out": 403,
    "leader/in": 200,
    "leader/out": 403,
}
SCOPED_PAGE: dict[str, int | str] = {**SCOPED_READ, "leader/in": 403}
SCOPED_CHANGE: dict[str, int | str] = {
    "anonymous/in": 401,
    "anonymous/out": 401,
    "admin/in": 303,
    "admin/out": 403,
    "officer/in": 303,
    "officer/out": 403,
    "leader/in": 403,
    "leader/out": 403,
}


def _tag(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(4)}"


def fresh_unit(engine: Engine, parent_id: int) -> int:
    with Session(engine) as s:
        parent = s.get(Unit, parent_id)
        assert parent is not None
        unit = Unit(
            code=_tag("W"), name_vi="Xã mới", name_en="New commune", level_id=parent.level_id, parent_id=parent_id
        )
        s.add(unit)
        s.flush()
        unit.path = f"{parent.path}{pk(unit)}/"
        s.commit()
        return pk(unit)


def fresh_point(engine: Engine, unit_id: int) -> int:
    with Session(engine) as s:
        point = ServicePoint(
            unit_id=unit_id, code=_tag("Q"), name_vi="Quầy", name_en="Desk", counter_token=codes.new_counter_token()
        )
        s.add(point)
        s.commit()
        return pk(point)


def fresh_field(engine: Engine) -> int:
    with Session(engine) as s:
        fld = ProcedureField(code=_tag("f"), name_vi="Đất đai", name_en="Land")
        s.add(fld)
        s.commit()
        return pk(fld)


def published_version(engine: Engine) -> int:
    with Session(engine) as s:
        version = publish_questionnaire(s, load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml"), actor="test")
        s.commit()
        return pk(version)


def fresh_wave(engine: Engine, unit_id: int, *, status: str = "draft", frame: bool = False) -> int:
    """A wave over ``unit_id`` (running from 10 days ago to 20 days ahead); with ``frame``, counts to plan from."""
    version = published_version(engine)
    today = date.today()
    with Session(engine) as s:
        wave = Wave(
            code=_tag("wave"),
            name_vi="Đợt thử",
            name_en="Test wave",
            questionnaire_version_id=version,
            starts_on=today - timedelta(days=10),
            ends_on=today + timedelta(days=20),
            status=status,
            channels="receipt,counter",
        )
        s.add(wave)
        s.flush()
        s.add(WaveUnit(wave_id=pk(wave), unit_id=unit_id))
        if frame:
            fld = ProcedureField(code=_tag("f"), name_vi="Hộ tịch", name_en="Civil status")
            s.add(fld)
            s.flush()
            s.add(
                FrameCount(
                    unit_id=unit_id,
                    field_id=pk(fld),
                    period_start=wave.starts_on,
                    period_end=wave.starts_on + timedelta(days=27),
                    transactions=800,
                )
            )
        s.commit()
        return pk(wave)


def fresh_key(engine: Engine, unit_id: int) -> int:
    with Session(engine) as s:
        code = s.get(Unit, unit_id)
        assert code is not None
        new = create_api_key(s, name=_tag("key "), unit_code=code.code, scopes=("issue",), actor="test")
        s.commit()
        return new.id


# --- units, points, fields ----------------------------------------------------------------------------------


def _unit_page(suffix: str) -> Maker:
    return lambda world, engine, role, scope: Call("GET", f"/staff/units/{unit_for(world, role, scope)}{suffix}")


def _edit_unit(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    unit_id = fresh_unit(engine, unit_for(world, role, scope))
    name = _tag("Xã đổi tên ")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            unit = s.get(Unit, unit_id)
        assert unit is not None and (unit.name_vi == name) == allowed, (role, scope)

    return Call("POST", f"/staff/units/{unit_id}/edit", {"name_vi": name, "name_en": "", "active": "1"}, check)


def _new_point(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    unit_id = fresh_unit(engine, unit_for(world, role, scope))
    code = _tag("P")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = s.scalars(select(ServicePoint).where(col(ServicePoint.code) == code)).first()
        assert (made is not None) == allowed, (role, scope)

    data = {"code": code, "name_vi": "Quầy 1", "name_en": "Desk 1", "active": "1"}
    return Call("POST", f"/staff/units/{unit_id}/points/new", data, check)


def _point_page(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    return Call("GET", f"/staff/points/{fresh_point(engine, unit_for(world, role, scope))}/edit")


def _edit_point(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    point_id = fresh_point(engine, unit_for(world, role, scope))
    code = _tag("P")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            point = s.get(ServicePoint, point_id)
        assert point is not None and (point.code == code) == allowed, (role, scope)

    return Call("POST", f"/staff/points/{point_id}/edit", {"code": code, "name_vi": "Quầy", "active": "1"}, check)


def _new_field(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    code = _tag("f")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = s.scalars(select(ProcedureField).where(col(ProcedureField.code) == code)).first()
        assert (made is not None) == allowed, role

    return Call("POST", "/staff/fields/new", {"code": code, "name_vi": "Xây dựng", "name_en": "Construction"}, check)


def _field_page(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    return Call("GET", f"/staff/fields/{fresh_field(engine)}/edit")


def _edit_field(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    field_id = fresh_field(engine)

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            fld = s.get(ProcedureField, field_id)
        assert fld is not None and (fld.name_en == "Renamed") == allowed, role

    code = _tag("f")
    return Call("POST", f"/staff/fields/{field_id}/edit", {"code": code, "name_vi": "Đổi", "name_en": "Renamed"}, check)


def _import_without_file(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    return Call("POST", "/staff/units/import", {"kind": "units"})


# --- waves --------------------------------------------------------------------------------------------------


def _new_wave(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    code = _tag("w")
    data = {
        "code": code,
        "name_vi": "Đợt mới",
        "starts_on": "2026-07-01",
        "ends_on": "2026-09-30",
        "version_id": str(published_version(engine)),
        "channels": "receipt",
        "units": str(unit_for(world, role, scope)),
        "min_responses": "30",
        "target": "90",
    }

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = s.scalars(select(Wave).where(col(Wave.code) == code)).first()
        assert (made is not None) == allowed, (role, scope)

    return Call("POST", "/staff/waves/new", data, check)


def _wave_page(suffix: str) -> Maker:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        return Call("GET", f"/staff/waves/{fresh_wave(engine, unit_for(world, role, scope))}{suffix}")

    return call


def _move(action: str, start: str, end: str) -> Maker:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        wave_id = fresh_wave(engine, unit_for(world, role, scope), status=start)

        def check(engine: Engine, allowed: bool) -> None:
            with Session(engine) as s:
                wave = s.get(Wave, wave_id)
            assert wave is not None and wave.status == (end if allowed else start), (role, scope)

        return Call("POST", f"/staff/waves/{wave_id}/{action}", {}, check)

    return call


def _save_plan(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    wave_id = fresh_wave(engine, unit_for(world, role, scope), frame=True)

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            n = s.scalar(select(func.count()).select_from(Quota).where(col(Quota.wave_id) == wave_id))
        assert bool(n) == allowed, (role, scope, n)

    data = {"margin": "5", "response_rate": "60", "deff": "1", "method": "proportional"}
    return Call("POST", f"/staff/waves/{wave_id}/plan", data, check)


# --- API keys -----------------------------------------------------------------------------------------------


def _new_key(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    name = _tag("System ")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = s.scalars(select(ApiKey).where(col(ApiKey.name) == name)).first()
        assert (made is not None) == allowed, (role, scope)

    return Call(
        "POST",
        "/staff/api-keys",
        {"name": name, "unit_id": str(unit_for(world, role, scope)), "scopes": "issue"},
        check,
    )


def _revoke_key(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    key_id = fresh_key(engine, unit_for(world, role, scope))

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            key = s.get(ApiKey, key_id)
        assert key is not None and (key.revoked_at is not None) == allowed, (role, scope)

    return Call("POST", f"/staff/api-keys/{key_id}/revoke", {}, check)


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/units"): Route(get("/staff/units"), ALL_READ, notes="the unit tree of one's subtree"),
    ("GET", "/staff/units/{unit_id:int}"): Route(_unit_page(""), SCOPED_READ, scoped=True),
    ("GET", "/staff/units/{unit_id:int}/edit"): Route(_unit_page("/edit"), SCOPED_PAGE, scoped=True),
    ("POST", "/staff/units/{unit_id:int}/edit"): Route(_edit_unit, SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/units/{unit_id:int}/points/new"): Route(_unit_page("/points/new"), SCOPED_PAGE, scoped=True),
    ("POST", "/staff/units/{unit_id:int}/points/new"): Route(_new_point, SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/points/{point_id:int}/edit"): Route(_point_page, SCOPED_PAGE, scoped=True),
    ("POST", "/staff/points/{point_id:int}/edit"): Route(_edit_point, SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/units/import"): Route(get("/staff/units/import"), MANAGERS),
    ("POST", "/staff/units/import"): Route(
        _import_without_file,
        {"anonymous": 401, "admin": 400, "officer": 400, "leader": 403},
        notes="without a file the form comes back; files are tested in test_officer_units.py",
    ),
    ("GET", "/staff/fields"): Route(get("/staff/fields"), ALL_READ),
    ("GET", "/staff/fields/new"): Route(get("/staff/fields/new"), ADMIN_PAGE, notes="fields are platform-wide"),
    ("POST", "/staff/fields/new"): Route(_new_field, ADMIN_CHANGE),
    ("GET", "/staff/fields/{field_id:int}/edit"): Route(_field_page, ADMIN_PAGE),
    ("POST", "/staff/fields/{field_id:int}/edit"): Route(_edit_field, ADMIN_CHANGE),
    ("GET", "/staff/waves"): Route(get("/staff/waves"), ALL_READ, notes="waves touching one's subtree"),
    ("GET", "/staff/waves/new"): Route(get("/staff/waves/new"), MANAGERS),
    ("POST", "/staff/waves/new"): Route(_new_wave, SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/waves/{wave_id:int}"): Route(_wave_page(""), SCOPED_READ, scoped=True),
    ("POST", "/staff/waves/{wave_id:int}/open"): Route(_move("open", "draft", "open"), SCOPED_CHANGE, scoped=True),
    ("POST", "/staff/waves/{wave_id:int}/close"): Route(_move("close", "open", "closed"), SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/waves/{wave_id:int}/plan"): Route(_wave_page("/plan"), SCOPED_PAGE, scoped=True),
    ("POST", "/staff/waves/{wave_id:int}/plan"): Route(_save_plan, SCOPED_CHANGE, scoped=True),
    ("GET", "/staff/waves/{wave_id:int}/progress"): Route(_wave_page("/progress"), SCOPED_READ, scoped=True),
    ("GET", "/staff/waves/{wave_id:int}/progress.csv"): Route(_wave_page("/progress.csv"), SCOPED_READ, scoped=True),
    ("GET", "/staff/api-keys"): Route(get("/staff/api-keys"), MANAGERS),
    ("POST", "/staff/api-keys"): Route(_new_key, SCOPED_CHANGE, scoped=True),
    ("POST", "/staff/api-keys/{key_id:int}/revoke"): Route(_revoke_key, SCOPED_CHANGE, scoped=True),
}
