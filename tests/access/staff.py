"""Routes of the staff core: home, audit log, accounts."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import User
from tests.access import LOGIN, Call, Route, get, unit_for
from tests.conftest import STAFF_PASSWORD, StaffWorld, make_account


def _create_leader(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    username = f"m{secrets.token_hex(4)}"

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = s.scalars(select(User).where(col(User.username) == username)).first()
        assert (made is not None) == allowed, (role, scope, made)

    data = {
        "username": username,
        "role": "leader",
        "unit_id": str(unit_for(world, role, scope)),
        "password": STAFF_PASSWORD,
        "confirm": STAFF_PASSWORD,
    }
    return Call("POST", "/staff/users/new", data, check)


def _deactivate_leader(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    target = make_account(engine, "leader", unit_for(world, role, scope), prefix="target")

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            user = s.get(User, target.id)
        assert user is not None and user.active is (not allowed), (role, scope)

    return Call("POST", f"/staff/users/{target.id}/deactivate", {}, check)


_MANAGERS_ONLY: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
_CHANGE: dict[str, int | str] = {
    "anonymous/in": 401,
    "anonymous/out": 401,
    "admin/in": 303,
    "admin/out": 403,
    "officer/in": 303,
    "officer/out": 403,
    "leader/in": 403,
    "leader/out": 403,
}

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff"): Route(get("/staff"), {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}),
    ("GET", "/staff/audit"): Route(get("/staff/audit"), _MANAGERS_ONLY, notes="officers see their scope's entries"),
    ("GET", "/staff/users"): Route(get("/staff/users"), _MANAGERS_ONLY, notes="the accounts of one's subtree"),
    ("GET", "/staff/users/new"): Route(get("/staff/users/new"), _MANAGERS_ONLY),
    ("POST", "/staff/users/new"): Route(_create_leader, _CHANGE, scoped=True, notes="officers create leaders only"),
    ("POST", "/staff/users/{user_id:int}/deactivate"): Route(
        _deactivate_leader, _CHANGE, scoped=True, notes="officers deactivate leaders only"
    ),
}
