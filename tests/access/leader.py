"""Routes of the leader dashboards: results overview, league tables, unit pages, exports and microdata.

They only read, so no ``check``; a wave with responses over the staff world's units is made once per
database (``results_wave``) so the pages have something to show.
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
from survey.db.models import Channel, Response, Wave, WaveStatus, pk
from survey.questionnaires.spec import load_file
from tests.access import LOGIN, Call, Route, unit_for
from tests.conftest import StaffWorld

_WAVES: dict[str, str] = {}


def results_wave(world: StaffWorld, engine: Engine) -> str:
    """A closed wave with 40 responses in each staff-world unit (made once per database); its code."""
    key = str(engine.url)
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
        units = [world.root_id, world.district_id, world.commune_id, world.other_district_id, world.other_root_id]
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
    return lambda world, engine, role, scope: Call("GET", path.format(wave=results_wave(world, engine)))


def _unit_page(suffix: str = "") -> Callable[[StaffWorld, Engine, str, str], Call]:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        wave = results_wave(world, engine)
        return Call("GET", f"/staff/results/{wave}/units/{unit_for(world, role, scope)}{suffix}")

    return call


_READERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}
_MANAGERS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
_SCOPED: dict[str, int | str] = {
    "anonymous/in": LOGIN,
    "anonymous/out": LOGIN,
    "admin/in": 200,
    "admin/out": 403,
    "officer/in": 200,
    "officer/out": 403,
    "leader/in": 200,
    "leader/out": 403,
}
UNIT = "/staff/results/{wave_code:str}/units/{unit_id:int}"

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/results"): Route(_page("/staff/results?wave={wave}"), _READERS, notes="the viewer's subtree"),
    ("GET", "/staff/results/{wave_code:str}/league"): Route(
        _page("/staff/results/{wave}/league"), _READERS, notes="units of the viewer's subtree only"
    ),
    ("GET", "/staff/results/{wave_code:str}/league.csv"): Route(_page("/staff/results/{wave}/league.csv"), _READERS),
    ("GET", "/staff/results/{wave_code:str}/league.xlsx"): Route(_page("/staff/results/{wave}/league.xlsx"), _READERS),
    ("GET", UNIT): Route(_unit_page(), _SCOPED, scoped=True),
    ("GET", UNIT + "/scorecard.csv"): Route(_unit_page("/scorecard.csv"), _SCOPED, scoped=True),
    ("GET", UNIT + "/scorecard.xlsx"): Route(_unit_page("/scorecard.xlsx"), _SCOPED, scoped=True),
    ("GET", "/staff/results/{wave_code:str}/microdata.csv"): Route(
        _page("/staff/results/{wave}/microdata.csv"), _MANAGERS, notes="rows of the viewer's subtree only"
    ),
    ("GET", "/staff/results/{wave_code:str}/codebook.csv"): Route(
        _page("/staff/results/{wave}/codebook.csv"), _MANAGERS
    ),
}
