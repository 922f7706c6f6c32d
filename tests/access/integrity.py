"""Routes of integrity review: the flagged responses, decisions on them, the sensitivity view.

Decisions are tried on a response of a unit below the account's ("in"), of its own unit ("own": refused,
the level above reviews it) and of a unit outside its subtree ("out"). The sensitivity view is tried
with a wave of the account's subtree and with one outside it ("wave-out": 404).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Response
from survey.integrity.flags import Flag
from tests.access import LOGIN, OWN, Call, Route, get, unit_for
from tests.access.leader import wave_for
from tests.conftest import StaffWorld
from tests.factories import World, build_world


@cache
def _world(engine: Engine) -> World:
    return build_world(engine)


def _flagged_response(engine: Engine, unit_id: int) -> int:
    world = _world(engine)
    with Session(engine) as s, s.begin():
        result = s.execute(
            insert(Response).values(
                wave_id=world.counter_wave_id,
                unit_id=unit_id,
                channel=2,
                questionnaire_version_id=world.quick_version_id,
                submitted_at=datetime.now(UTC).replace(minute=0, second=0, microsecond=0),
                answers=bytes(len(world.quick.layout)),
                flags=int(Flag.TOO_FAST),
                submission_key=secrets.token_hex(16),
            )
        )
        return int(result.inserted_primary_key[0])  # type: ignore[attr-defined]


def _decide(decision: str, done: Flag) -> Callable[[StaffWorld, Engine, str, str], Call]:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        rid = _flagged_response(engine, unit_for(world, role, scope))

        def check(engine: Engine, allowed: bool) -> None:
            with Session(engine) as s:
                flags = s.scalars(select(col(Response.flags)).where(col(Response.id) == rid)).one()
            assert bool(flags & done) is allowed, (role, scope, flags)
            assert (flags == Flag.TOO_FAST) is (not allowed), (role, scope, flags)

        return Call("POST", f"/staff/flags/{rid}/{decision}", {"reason": "checked with the counter's log"}, check)

    return call


_REVIEWERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
_DECIDE: dict[str, int | str] = {
    "anonymous/in": 401,
    "anonymous/own": 401,
    "anonymous/out": 401,
    "admin/in": 303,
    "admin/own": 403,
    "admin/out": 403,
    "officer/in": 303,
    "officer/own": 403,
    "officer/out": 403,
    "leader/in": 403,
    "leader/own": 403,
    "leader/out": 403,
}
_SENSITIVITY: dict[str, int | str] = {
    "anonymous/in": LOGIN,
    "anonymous/wave-out": LOGIN,
    "admin/in": 200,
    "admin/wave-out": 404,
    "officer/in": 200,
    "officer/wave-out": 404,
    "leader/in": 200,
    "leader/wave-out": 404,
}


def _sensitivity(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    return Call("GET", f"/staff/flags/sensitivity?wave={wave_for(world, engine, role, scope)}")


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/flags"): Route(get("/staff/flags"), _REVIEWERS, notes="flagged responses of one's subtree"),
    ("GET", "/staff/flags/sensitivity"): Route(
        _sensitivity,
        _SENSITIVITY,
        scoped=True,
        scopes=("in", "wave-out"),
        notes="read-only: each unit's index with and without flagged responses, within one's subtree",
    ),
    ("POST", "/staff/flags/{response_id:int}/confirm"): Route(
        _decide("confirm", Flag.CONFIRMED),
        _DECIDE,
        scoped=True,
        scopes=OWN,
        notes="from above the unit only, with a reason; audited with flags before and after",
    ),
    ("POST", "/staff/flags/{response_id:int}/clear"): Route(
        _decide("clear", Flag.REVIEWED_OK),
        _DECIDE,
        scoped=True,
        scopes=OWN,
        notes="from above the unit only, with a reason; sets REVIEWED_OK: a rescan leaves it alone",
    ),
}
