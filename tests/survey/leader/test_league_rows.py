"""One league order everywhere: the page, the CSV export, the read API and ``sipas score`` list the same units
in the same order with the same ranks, ties included (`survey.results.scores.league_rows`)."""

from __future__ import annotations

import csv
import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from seed_data import QUESTIONNAIRE_DIR
from survey.api.keys import create_api_key
from survey.cli import main
from survey.db.audited import publish_questionnaire
from survey.db.models import Channel, Response, Unit, UnitLevel, Wave, WaveStatus, WaveUnit, pk
from survey.questionnaires.spec import load_file
from survey.results.scores import league_rows, wave_scores
from survey.settings import Settings
from tests.conftest import cli_settings, make_account, signed_in, staff_client

# (unit, name, responses, of which satisfied): B and C answer alike, so they tie; E, F and G have fewer
# than the wave's minimum of 20. Names run against the codes, so no order by name passes for one by code.
UNITS = (
    ("C", "Xã An", 40, 30),  # stored before B: an order by position would put it first
    ("B", "Xã Yên", 40, 30),
    ("D", "Xã Bình", 40, 24),
    ("A", "Xã Đông", 40, 36),
    ("G", "Xã Hòa", 0, 0),
    ("F", "Xã Cát", 10, 5),
    ("E", "Xã Phú", 5, 5),  # a perfect score, but too few responses to be ranked
)
EXPECTED = [("A", 1), ("B", 2), ("C", 2), ("D", 4), ("E", None), ("F", None), ("G", None)]
ROW = re.compile(r'<tr data-code="([^"]+)">(.*?)</tr>', re.S)


@dataclass(frozen=True)
class TiedLeague:
    wave: str
    level: str
    root_id: int
    root_code: str
    prefix: str  # unit codes are prefix + letter


@pytest.fixture(scope="module")
def tied(engine: Engine) -> TiedLeague:
    """A closed wave over seven units of a level of their own, under a root of another level."""
    token = secrets.token_hex(3)
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    criteria = [spec.column_index[(item.id, None)] for item in spec.items if item.role == "criterion"]
    with Session(engine, expire_on_commit=False) as s, s.begin():
        top = UnitLevel(code=f"tietop{token}", name_vi="Tỉnh", name_en="Province", depth=0)
        tie = UnitLevel(code=f"tie{token}", name_vi="Xã", name_en="Commune", depth=1)
        s.add_all([top, tie])
        s.flush()
        root = Unit(code=f"T{token}", name_vi="Tỉnh Hòa", name_en="Tie Province", level_id=pk(top))
        s.add(root)
        s.flush()
        root.path = f"/{root.id}/"
        version = publish_questionnaire(s, spec, actor="test")
        wave = Wave(
            code=f"tie{token}",
            name_vi="Đợt hòa",
            name_en="Tie wave",
            questionnaire_version_id=pk(version),
            starts_on=date(2021, 1, 1),
            ends_on=date(2021, 12, 31),
            status=WaveStatus.closed.value,
            min_responses=20,
        )
        s.add(wave)
        s.flush()
        rows = []
        for letter, name, total, satisfied in UNITS:
            unit = Unit(code=f"T{token}-{letter}", name_vi=name, name_en=name, level_id=pk(tie), parent_id=root.id)
            s.add(unit)
            s.flush()
            unit.path = f"{root.path}{unit.id}/"
            s.execute(insert(WaveUnit).values(wave_id=pk(wave), unit_id=pk(unit)))
            for k in range(total):
                answers = np.zeros(len(spec.layout), dtype=np.uint8)
                answers[criteria] = 5 if k < satisfied else 2
                rows.append(
                    {
                        "wave_id": pk(wave),
                        "unit_id": pk(unit),
                        "channel": int(Channel.receipt),
                        "questionnaire_version_id": pk(version),
                        "submitted_at": datetime(2021, 6, 1, tzinfo=UTC),
                        "answers": answers.tobytes(),
                        "flags": 0,
                    }
                )
        s.execute(insert(Response), rows)
    return TiedLeague(wave.code, tie.code, pk(root), root.code, f"T{token}-")


def _letter(league: TiedLeague, code: str) -> str:
    assert code.startswith(league.prefix), code
    return code.removeprefix(league.prefix)


def test_the_model_orders_ties_by_code_and_leaves_unranked_units_unranked(engine: Engine, tied: TiedLeague) -> None:
    ws = wave_scores(engine, wave_code=tied.wave, level=tied.level)
    rows = league_rows(ws)
    assert [(_letter(tied, r.unit.code), r.rank) for r in rows] == EXPECTED
    b, c = rows[1], rows[2]
    assert b.index == c.index == pytest.approx(0.75) and (b.rank_lower, b.rank_upper) == (c.rank_lower, c.rank_upper)
    assert [ws.units[r.position].code for r in rows] == [r.unit.code for r in rows]  # positions join ws's arrays
    perfect, few, empty = rows[4:]
    assert perfect.insufficient_data and perfect.index == pytest.approx(1.0) and perfect.rank_lower is None
    assert few.n == 10 and few.tier_target is not None
    assert (empty.n, empty.index, empty.lower, empty.tier_target, empty.tier_province) == (0, None, None, None, None)


def test_page_csv_api_and_cli_list_the_same_units_in_the_same_order(
    engine: Engine, settings: Settings, tied: TiedLeague, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    admin = make_account(engine, "admin", tied.root_id)
    with Session(engine) as s, s.begin():
        key = create_api_key(s, name="BI tool", unit_code=tied.root_code, scopes=("read",), actor="test")
    with staff_client(settings, engine) as client:
        signed_in(client, admin)
        page = client.get(f"/staff/results/{tied.wave}/league?level={tied.level}")
        export = client.get(f"/staff/results/{tied.wave}/league.csv?level={tied.level}")
        api = client.get(
            f"/api/v1/waves/{tied.wave}/league?level={tied.level}", headers={"Authorization": f"Bearer {key.secret}"}
        )
    assert page.status_code == export.status_code == api.status_code == 200

    ranked_html = re.search(r'<table id="league">(.*?)</table>', page.text, re.S)
    unranked_html = re.search(r'<table id="unranked">(.*?)</table>', page.text, re.S)
    assert ranked_html and unranked_html
    html: list[tuple[str, int | None]] = [
        (code, int(re.findall(r'data-rank="(\d+)"', cells)[0])) for code, cells in ROW.findall(ranked_html[1])
    ]
    html += [(code, None) for code, _ in ROW.findall(unranked_html[1])]

    lines = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    table = lines[lines.index([]) + 1 :]
    code_at, rank_at = 0, 3
    assert len(table[0]) > rank_at  # the headings
    exported = [(r[code_at], int(r[rank_at]) if r[rank_at] else None) for r in table[1:]]

    served = [(item["unit"], item["rank"]) for item in api.json()["rows"]]

    with cli_settings(monkeypatch, tmp_path, settings.database_url):
        result = CliRunner().invoke(main, ["score", "--wave", tied.wave, "--level", tied.level])
    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    body = out[next(k for k, line in enumerate(out) if line.split()[:3] == ["rank", "interval", "unit"]) + 1 :]
    code_of = {name: f"{tied.prefix}{letter}" for letter, name, _, _ in UNITS}
    printed = [(code_of[line[16:56].strip()], None if line[:4].strip() == "-" else int(line[:4])) for line in body]

    expected = [(f"{tied.prefix}{letter}", rank) for letter, rank in EXPECTED]
    assert html == expected
    assert exported == expected
    assert served == expected
    assert printed == expected
