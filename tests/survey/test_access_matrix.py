"""Who gets what on every staff route: anonymous visitors, admins, officers and leaders, in and out of scope.

Every route under ``/staff`` is declared in a module of ``tests/access/``. A route added without a declaration fails
``test_every_staff_route_is_declared``: say what each role may do with it before it ships.

Outcomes: ``LOGIN`` is a redirect to the sign-in page; numbers are HTTP statuses. Routes acting on a
unit are tried with a unit inside the account's subtree ("in") and one outside it ("out"): for the
admin of the first province the second province, for the district's officer and leader the sibling
district. Some routes declare more: "own" (the account's own unit, whose flags only the level above
reviews) and "wave-out" (a wave that surveys no unit of the account's subtree, which it never sees).
"""

from __future__ import annotations

import importlib
import pkgutil
import secrets
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine

from survey.settings import Settings
from tests import access
from tests.access import LOGIN, ROLES, Route
from tests.conftest import STAFF_PASSWORD, Account, StaffWorld, csrf_token, make_account, signed_in, staff_client


def _collect() -> dict[tuple[str, str], Route]:
    """Every area's declared routes (``tests/access/<area>.py``), each route declared once."""
    merged: dict[tuple[str, str], Route] = {}
    for info in pkgutil.iter_modules(access.__path__):
        module = importlib.import_module(f"{access.__name__}.{info.name}")
        for key, route in module.ROUTES.items():
            assert key not in merged, f"{key} is declared twice (again in {module.__name__})"
            merged[key] = route
    return merged


EXPECTED = _collect()


def _cases() -> Iterator[Any]:
    for (method, path), route in EXPECTED.items():
        for role in ROLES:
            for scope in route.scopes if route.scoped else ("-",):
                key = f"{role}/{scope}" if route.scoped else role
                yield pytest.param(method, path, role, scope, id=f"{method} {path} {key}")


def staff_routes(app: Any) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if route.path == "/staff" or route.path.startswith("/staff/")
        for method in route.methods
        if method not in ("OPTIONS", "HEAD")
    }


def test_every_staff_route_is_declared(client: TestClient) -> None:
    registered = staff_routes(client.app)
    undeclared = sorted(registered - set(EXPECTED))
    assert not undeclared, f"declare who may use these routes in EXPECTED ({__file__}): {undeclared}"
    stale = sorted(set(EXPECTED) - registered)
    assert not stale, f"EXPECTED lists routes the app no longer has: {stale}"
    for (method, path), route in EXPECTED.items():
        keys = {f"{r}/{s}" for r in ROLES for s in route.scopes} if route.scoped else set(ROLES)
        assert set(route.expect) == keys, (method, path, "every role needs an expected outcome")


@pytest.fixture(scope="module")
def browsers(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> Iterator[dict[str, tuple[TestClient, str]]]:
    """One signed-in browser per role (and an anonymous one), with the CSRF token of its forms."""
    accounts: dict[str, Account] = {
        "admin": staff_world.admin,
        "officer": staff_world.officer,
        "leader": staff_world.leader,
    }
    with ExitStack() as stack:
        out: dict[str, tuple[TestClient, str]] = {}
        for role in ROLES:
            c = stack.enter_context(staff_client(settings, engine))
            token = signed_in(c, accounts[role]) if role in accounts else csrf_token(c.get("/login").text)
            out[role] = (c, token)
        yield out


@pytest.mark.parametrize(("method", "path", "role", "scope"), list(_cases()))
def test_access(
    method: str,
    path: str,
    role: str,
    scope: str,
    browsers: dict[str, tuple[TestClient, str]],
    staff_world: StaffWorld,
    engine: Engine,
) -> None:
    route = EXPECTED[(method, path)]
    expected = route.expect[f"{role}/{scope}" if route.scoped else role]
    client, token = browsers[role]
    call = route.call(staff_world, engine, role, scope)
    if call.method == "GET":
        response = client.get(call.url, follow_redirects=False)
    else:
        response = client.post(call.url, data={**(call.data or {}), "_csrf_token": token}, follow_redirects=False)
    if expected == LOGIN:
        assert response.status_code == 303, response.text[:300]
        assert response.headers["location"].startswith("/login?next=%2Fstaff")
    else:
        assert response.status_code == expected, (role, scope, response.status_code, response.text[:300])
        if expected == 303:
            assert response.headers["location"].startswith("/staff/")
    if call.check:
        call.check(engine, expected == 303)


def test_beyond_the_matrix(
    browsers: dict[str, tuple[TestClient, str]], staff_world: StaffWorld, engine: Engine
) -> None:
    admin, admin_token = browsers["admin"]
    officer, officer_token = browsers["officer"]
    # No such account: 404, for anyone who could otherwise act.
    assert admin.post("/staff/users/999999999/deactivate", data={"_csrf_token": admin_token}).status_code == 404
    # An officer manages leaders only, even inside the district...
    peer = make_account(engine, "officer", staff_world.commune_id)
    refused = officer.post(f"/staff/users/{peer.id}/deactivate", data={"_csrf_token": officer_token})
    assert refused.status_code == 403
    for role in ("admin", "officer"):
        made = officer.post(
            "/staff/users/new",
            data={
                "_csrf_token": officer_token,
                "username": f"m{secrets.token_hex(4)}",
                "role": role,
                "unit_id": str(staff_world.commune_id),
                "password": STAFF_PASSWORD,
                "confirm": STAFF_PASSWORD,
            },
        )
        assert made.status_code == 403, role
    # ...and offers only the leader role and the district's units.
    form = officer.get("/staff/users/new").text
    assert 'value="leader"' in form and 'value="officer"' not in form and 'value="admin"' not in form
    assert f'<option value="{staff_world.commune_id}"' in form
    assert f'<option value="{staff_world.other_district_id}"' not in form
    # Nobody deactivates themselves.
    me = admin.post(f"/staff/users/{staff_world.admin.id}/deactivate", data={"_csrf_token": admin_token})
    assert me.status_code == 403
    # Lists show one's own subtree only.
    listed = officer.get("/staff/users").text
    assert staff_world.leader.username in listed and staff_world.other_officer.username not in listed
    everyone = admin.get("/staff/users").text
    assert staff_world.other_officer.username in everyone and staff_world.other_admin.username not in everyone
