"""Routes of the leader dashboards: results overview, league tables, unit pages, exports and microdata.

They only read, so no ``check``; a wave with responses over the staff world's units is made once per
database (``results_wave``) so the pages have something to show. Every route is also tried with a wave
that surveys no unit of the account's subtree (``outside_wave``, scope "wave-out"): 404, as if it did not
exist.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime

import numpy as np
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from seed_data import QUESTIONNAIRE_DIR
from survey.db.audited import publish_questionnaire
from survey.db.models import Channel, Response, Wave, WaveStatus, WaveUnit, pk
from survey.questionnaires.spec import load_file
from tests.access import LOGIN, Call, Route, unit_for
from tests.conftest import StaffWorld

_WAVES: dict[tuple[str, tuple[int, ...]], str] = {}


def results_wave(world: StaffWorld, engine: Engine) -> str:
    """A closed wave with 40 responses in each staff-world unit (made once per database); its code."""
    units = (world.root_id, world.district_id, world.commune_id, world.other_district_id, world.other_root_id)
    return _scored_wave(engine, units)


def outside_wave(world: StaffWorld, engine: Engine, role: str) -> str:
    """A closed wave with responses only in the unit outside ``role``'s subtree (``unit_for(..., "out")``)."""
    return _scored_wave(engine, (unit_for(world, role, "out"),))


def wave_for(world: StaffWorld, engine: Engine, role: str, scope: str) -> str:
    return outside_wave(world, engine, role) if scope == "wave-out" else results_wave(world, engine)


def _scored_wave(engine: Engine, units: tuple[int, ...]) -> str:
    key = (str(engine.url), units)
    if key in _WAVES:
        return _WAVES[key]
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    code = f"acc{secrets.token_hex(4)}"
    rng = np.random.default_rng(7)
    with Session(engine) as s, s.begin():
        version = publish_questionnaire(s, spec, actor="test")
        wave = Wave(
            code=code,
            name_vi="Đợt thử",
            name_en="Test wave",
            questionnaire_version_id=pk(version),
            starts_on=date(2020, 1, 1),
            ends_on=date(2020, 12, 31),
            status=WaveStatus.closed.value,
        )
        s.add(wave)
        s.flush()
        s.execute(insert(WaveUnit), [{"wave_id": pk(wave), "unit_id": unit} for unit in units])
        rows = []
        for unit in units:
            for _ in range(40):
                answers = rng.integers(2, 6, size=len(spec.layout), dtype=np.uint8)
                rows.append(
                    {
                        "wave_id": pk(wave),
                        "unit_id": unit,
                        "channel": int(Channel.receipt),
                        "questionnaire_version_id": pk(version),
                        "submitted_at": datetime(2020, 6, 1, tzinfo=UTC),
                        "answers": answers.tobytes(),
                        "comment": "Tốt",
                        "flags": 0,
                    }
                )
        s.execute(insert(Response), rows)
    _WAVES[key] = code
    return code


def _page(path: str) -> Callable[[StaffWorld, Engine, str, str], Call]:
    return lambda world, engine, role, scope: Call("GET", path.format(wave=wave_for(world, engine, role, scope)))


def _unit_page(suffix: str = "") -> Callable[[StaffWorld, Engine, str, str], Call]:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        wave = wave_for(world, engine, role, scope)
        return Call("GET", f"/staff/results/{wave}/units/{unit_for(world, role, scope)}{suffix}")

    return call


WAVES = ("in", "wave-out")
UNITS = ("in", "out", "wave-out")


def _expect(scopes: tuple[str, ...], *, in_: dict[str, int | str]) -> dict[str, int | str]:
    """``in_`` (role -> outcome) for a wave and unit of the subtree; 403 for a unit outside; 404 for a wave outside
    (roles a guard refuses keep their 403, and anonymous visitors go to the sign-in page)."""
    out: dict[str, int | str] = {}
    for role, inside in in_.items():
        for scope in scopes:
            if inside in (LOGIN, 403) or scope == "in":
                out[f"{role}/{scope}"] = inside
            else:
                out[f"{role}/{scope}"] = 403 if scope == "out" else 404
    return out


_READERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}
_MANAGERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
_WAVE_READERS = _expect(WAVES, in_=_READERS)
_WAVE_MANAGERS = _expect(WAVES, in_=_MANAGERS)
_SCOPED = _expect(UNITS, in_=_READERS)
UNIT = "/staff/results/{wave_code:str}/units/{unit_id:int}"


def _wave_route(path: str, expect: dict[str, int | str], notes: str = "") -> Route:
    return Route(_page(path), expect, scoped=True, scopes=WAVES, notes=notes)


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/results"): _wave_route("/staff/results?wave={wave}", _WAVE_READERS, "the viewer's subtree"),
    ("GET", "/staff/results/{wave_code:str}/league"): _wave_route(
        "/staff/results/{wave}/league", _WAVE_READERS, "units of the viewer's subtree only"
    ),
    ("GET", "/staff/results/{wave_code:str}/league.csv"): _wave_route(
        "/staff/results/{wave}/league.csv", _WAVE_READERS
    ),
    ("GET", "/staff/results/{wave_code:str}/league.xlsx"): _wave_route(
        "/staff/results/{wave}/league.xlsx", _WAVE_READERS
    ),
    ("GET", UNIT): Route(_unit_page(), _SCOPED, scoped=True, scopes=UNITS),
    ("GET", UNIT + "/scorecard.csv"): Route(_unit_page("/scorecard.csv"), _SCOPED, scoped=True, scopes=UNITS),
    ("GET", UNIT + "/scorecard.xlsx"): Route(_unit_page("/scorecard.xlsx"), _SCOPED, scoped=True, scopes=UNITS),
    ("GET", "/staff/results/{wave_code:str}/microdata.csv"): _wave_route(
        "/staff/results/{wave}/microdata.csv", _WAVE_MANAGERS, "rows of the viewer's subtree only"
    ),
    ("GET", "/staff/results/{wave_code:str}/codebook.csv"): _wave_route(
        "/staff/results/{wave}/codebook.csv", _WAVE_MANAGERS
    ),
}
