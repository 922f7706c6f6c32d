"""Routes of the account page: every signed-in role manages its own sessions and password, nobody else's."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.auth.passwords import verify_password
from survey.db.models import User
from tests.access import LOGIN, Call, Route, get
from tests.conftest import STAFF_PASSWORD, StaffWorld

_EVERYONE: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}
_EVERY_CHANGE: dict[str, int | str] = {"anonymous": 401, "admin": 303, "officer": 303, "leader": 303}


def _wrong_current_password(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    """A change with a wrong current password: refused (400) for everyone; no password changes."""

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            for account in (world.admin, world.officer, world.leader):
                user = s.get(User, account.id)
                assert user is not None and verify_password(user.password_hash, STAFF_PASSWORD).ok, role

    data = {"current": "not the password at all", "password": "a new long enough phrase", "confirm": "x"}
    data["confirm"] = data["password"]
    return Call("POST", "/staff/account/password", data, check)


_ADMINS_ONLY: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 403, "leader": 403}
_ADMINS_CHANGE: dict[str, int | str] = {"anonymous": 401, "admin": 400, "officer": 403, "leader": 403}


def _no_second_factor(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    """A code that cannot be right: refused for administrators (400), the page closed to the others."""

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            user = s.get(User, world.admin.id)
            assert user is not None and user.totp_secret is None

    return Call("POST", "/staff/account/two-step", {"code": "x"}, check)


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/account/two-step"): Route(get("/staff/account/two-step"), _ADMINS_ONLY),
    ("POST", "/staff/account/two-step"): Route(_no_second_factor, _ADMINS_CHANGE, notes="a code from the app"),
    ("POST", "/staff/account/two-step/off"): Route(
        lambda world, engine, role, scope: Call("POST", "/staff/account/two-step/off", {"code": "000000"}),
        _ADMINS_CHANGE,
        notes="needs a current code",
    ),
    ("GET", "/staff/account"): Route(get("/staff/account"), _EVERYONE, notes="one's own sessions only"),
    ("GET", "/staff/account/password"): Route(get("/staff/account/password"), _EVERYONE),
    ("POST", "/staff/account/password"): Route(
        _wrong_current_password,
        {"anonymous": 401, "admin": 400, "officer": 400, "leader": 400},
        notes="the current password is required",
    ),
    ("POST", "/staff/account/sessions/end"): Route(
        lambda world, engine, role, scope: Call("POST", "/staff/account/sessions/end", {"session": "0" * 24}),
        _EVERY_CHANGE,
        notes="ends only sessions of one's own account",
    ),
    ("POST", "/staff/account/sessions/end-others"): Route(
        lambda world, engine, role, scope: Call("POST", "/staff/account/sessions/end-others", {}),
        _EVERY_CHANGE,
    ),
}
