"""The access matrix's vocabulary: how to call a staff route as a role, and what each role must get.

Each web area declares its routes in a module of this package (``tests/access/<area>.py``) as
``ROUTES: dict[tuple[str, str], Route]``; ``tests/survey/test_access_matrix.py`` collects them all
and fails for any ``/staff`` route that no module declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine

from tests.conftest import StaffWorld

LOGIN = "login"
ROLES = ("anonymous", "admin", "officer", "leader")
SCOPES = ("in", "out")
# Other scopes a route may declare: "own" is the account's own unit (not one below it); "wave-out" a wave
# that surveys no unit of the account's subtree.
OWN = ("in", "own", "out")


@dataclass(frozen=True)
class Call:
    method: str
    url: str
    data: dict[str, str] | None = None
    check: Callable[[Engine, bool], None] | None = None  # (engine, allowed): did it happen, or not?


@dataclass(frozen=True)
class Route:
    """How to call a route as a role (for a unit in or out of its scope), and what each role must get."""

    call: Callable[[StaffWorld, Engine, str, str], Call]  # (world, engine, role, scope) -> the request
    expect: dict[str, int | str]  # "role", or "role/<scope>" for each of ``scopes`` when ``scoped``
    scoped: bool = False
    notes: str = field(default="")
    scopes: tuple[str, ...] = SCOPES


def get(url: str) -> Callable[[StaffWorld, Engine, str, str], Call]:
    return lambda world, engine, role, scope: Call("GET", url)


def unit_for(world: StaffWorld, role: str, scope: str) -> int:
    """A unit below the account's ("in", and "wave-out"), its own unit ("own"), or one outside its subtree."""
    if scope in ("in", "wave-out"):
        return world.commune_id
    if scope == "own":
        return world.root_id if role == "admin" else world.district_id
    return world.other_root_id if role == "admin" else world.other_district_id
