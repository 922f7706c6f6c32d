"""Scope everywhere: a wave that surveys no unit of a viewer's subtree is 404 for that viewer and never listed;
league tables, sensitivity counts and exports count only the subtree's units (pages and read API, both backends).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from seed_data import QUESTIONNAIRE_DIR
from survey.api.keys import create_api_key
from survey.db.audited import publish_questionnaire
from survey.db.models import Channel, Response, Unit, UnitLevel, Wave, WaveStatus, WaveUnit, pk
from survey.integrity.flags import Flag
from survey.questionnaires.spec import load_file
from survey.settings import Settings
from tests.conftest import make_account, signed_in, staff_client


@dataclass(frozen=True)
class Tree:
    """A province with districts A and B, each with one commune. Wave ``shared`` surveys both communes (3 flagged
    responses in A's, 5 in B's); wave ``b_only`` (the same questionnaire, a year earlier) surveys B's commune only.
    """

    root_code: str
    a_id: int
    a_code: str
    a_commune_id: int
    a_commune_code: str
    b_commune_code: str
    commune_level: str
    shared: str
    b_only: str


FLAGGED = {"A": 3, "B": 5}


@pytest.fixture(scope="module")
def tree(engine: Engine) -> Tree:
    token = secrets.token_hex(3)
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    rng = np.random.default_rng(5)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        levels = [UnitLevel(code=f"sc{d}{token}", name_vi=f"Cấp {d}", name_en=f"Level {d}", depth=d) for d in range(3)]
        s.add_all(levels)
        s.flush()

        def unit(name: str, depth: int, parent: Unit | None) -> Unit:
            made = Unit(
                code=f"SC{token}{name}",
                name_vi=f"Đơn vị {name}",
                name_en=f"Unit {name}",
                level_id=pk(levels[depth]),
                parent_id=parent.id if parent else None,
            )
            s.add(made)
            s.flush()
            made.path = f"{parent.path if parent else '/'}{made.id}/"
            return made

        root = unit("P", 0, None)
        a, b = unit("A", 1, root), unit("B", 1, root)
        a1, b1 = unit("A1", 2, a), unit("B1", 2, b)
        version = publish_questionnaire(s, spec, actor="test")
        waves = {}
        for name, year, communes in (("shared", 2023, (a1, b1)), ("b_only", 2022, (b1,))):
            wave = Wave(
                code=f"sc{name}{token}",
                name_vi=f"Đợt {name}",
                name_en=f"Wave {name}",
                questionnaire_version_id=pk(version),
                starts_on=date(year, 1, 1),
                ends_on=date(year, 12, 31),
                status=WaveStatus.closed.value,
                min_responses=10,
            )
            s.add(wave)
            s.flush()
            s.execute(insert(WaveUnit), [{"wave_id": pk(wave), "unit_id": pk(c)} for c in communes])
            rows = []
            for commune in communes:
                flagged = FLAGGED["A" if commune is a1 else "B"] if name == "shared" else 0
                for k in range(30):
                    rows.append(
                        {
                            "wave_id": pk(wave),
                            "unit_id": pk(commune),
                            "channel": int(Channel.receipt),
                            "questionnaire_version_id": pk(version),
                            "submitted_at": datetime(year, 6, 1, 3, tzinfo=UTC),
                            "answers": rng.integers(2, 6, size=len(spec.layout), dtype=np.uint8).tobytes(),
                            "flags": int(Flag.BURST) if k < flagged else 0,
                        }
                    )
            s.execute(insert(Response), rows)
            waves[name] = wave.code
    return Tree(root.code, pk(a), a.code, pk(a1), a1.code, b1.code, levels[2].code, waves["shared"], waves["b_only"])


def test_staff_pages_never_show_a_wave_outside_the_subtree(settings: Settings, engine: Engine, tree: Tree) -> None:
    officer = make_account(engine, "officer", tree.a_id)
    with staff_client(settings, engine) as c:
        signed_in(c, officer)
        overview = c.get("/staff/results")
        assert overview.status_code == 200
        assert tree.shared in overview.text and tree.b_only not in overview.text  # not even in the wave list
        for path in (
            f"/staff/results?wave={tree.b_only}",
            f"/staff/results/{tree.b_only}/league?level={tree.commune_level}",
            f"/staff/results/{tree.b_only}/league.csv?level={tree.commune_level}",
            f"/staff/results/{tree.b_only}/league.xlsx?level={tree.commune_level}",
            f"/staff/results/{tree.b_only}/microdata.csv",
            f"/staff/results/{tree.b_only}/codebook.csv",
            f"/staff/results/{tree.b_only}/units/{tree.a_commune_id}",
            f"/staff/results/{tree.b_only}/units/{tree.a_commune_id}/scorecard.csv",
            f"/staff/flags/sensitivity?wave={tree.b_only}",
        ):
            assert c.get(path).status_code == 404, path
        # the shared wave: only A's units, and nothing of the B-only wave (an earlier wave of the same questionnaire)
        league = c.get(f"/staff/results/{tree.shared}/league.csv?level={tree.commune_level}").text
        assert tree.a_commune_code in league and tree.b_commune_code not in league
        unit_page = c.get(f"/staff/results/{tree.shared}/units/{tree.a_commune_id}")
        assert unit_page.status_code == 200 and tree.b_only not in unit_page.text
        sensitivity = c.get(f"/staff/flags/sensitivity?wave={tree.shared}&lang=en")
        assert tree.b_only not in sensitivity.text
        excluded = re.search(r"(\d+) flagged responses are left out", sensitivity.text)
        assert excluded and int(excluded.group(1)) == FLAGGED["A"]  # not the wave's 8
        assert tree.b_commune_code not in sensitivity.text and "Unit B1" not in sensitivity.text


def test_read_api_lists_and_serves_only_waves_of_the_keys_subtree(
    client: TestClient, engine: Engine, tree: Tree
) -> None:
    def key(unit_code: str) -> dict[str, str]:
        with Session(engine) as s, s.begin():
            made = create_api_key(s, name="BI tool", unit_code=unit_code, scopes=("read",), actor="test")
        return {"Authorization": f"Bearer {made.secret}"}

    district, province = key(tree.a_code), key(tree.root_code)
    listed = [w["code"] for w in client.get("/api/v1/waves", headers=district).json()]
    assert tree.shared in listed and tree.b_only not in listed
    everything = [w["code"] for w in client.get("/api/v1/waves", headers=province).json()]
    assert {tree.shared, tree.b_only} <= set(everything)
    league = f"/api/v1/waves/{tree.b_only}/league?level={tree.commune_level}"
    assert client.get(league, headers=district).status_code == 404
    assert client.get(league, headers=province).status_code == 200
    card = f"/api/v1/waves/{tree.b_only}/units/{tree.a_commune_code}/scorecard"
    assert client.get(card, headers=district).status_code == 404
    shared = client.get(f"/api/v1/waves/{tree.shared}/league?level={tree.commune_level}", headers=district).json()
    assert [r["unit"] for r in shared["rows"]] == [tree.a_commune_code]
