"""Formula-safe CSV everywhere: one writer, a rule by type, and hostile names fed through every CSV output.

The rule (survey.csvsafe): a value of a number type is written as digits, sign included, and stays a number;
any text starting with = + - @, a tab or a carriage return gets a leading quote. So a unit named "-1" comes out
as the text '-1, while a change of -1.5 points stays -1.5.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli import main
from survey.csvsafe import FORMULA_START, cell, csv_writer, defuse
from survey.db.models import ProcedureField, Quota, Unit, Wave
from survey.demo.load import CURRENT_WAVE
from survey.fieldwork.plans import plan_wave, save_plan
from survey.results.exports import league_table, scorecard_table, table_csv
from survey.results.microdata import wave_microdata
from survey.results.scores import wave_scores
from survey.settings import get_settings
from tests.conftest import cli_settings, load_small_demo, make_account, make_settings, signed_in, staff_client

HOSTILE = ('=HYPERLINK("http://x.example","y")', "+1", "-1", "@SUM(A1)", "\t=1", "\r=1")
HOSTILE_URL = '=HYPERLINK("http://x.example/r","go")'
SURVEY = Path(__file__).resolve().parents[2] / "survey"


# --- the rule ----------------------------------------------------------------------------------------------


def test_text_is_defused_and_numbers_stay_numbers() -> None:
    for text in HOSTILE:
        assert cell(text) == defuse(text) == "'" + text
    assert cell("Huyện Gò Dầu") == "Huyện Gò Dầu" and cell("1-2") == "1-2" and cell("") == ""
    assert [cell(v) for v in (-1, -2.5, Decimal("-3.20"), np.int64(-4), np.float64(-0.5), 0)] == [
        "-1",
        "-2.5",
        "-3.20",
        "-4",
        "-0.5",
        "0",
    ]
    assert [cell(v) for v in (None, float("nan"), float("-inf"), Decimal("NaN"))] == ["", "", "", ""]
    assert cell(True) == "True" and cell(np.int8(7)) == "7"
    buf = io.StringIO()
    csv_writer(buf).writerow(["-1", -1, "=1+1", 2.5, None, "a,b"])
    assert buf.getvalue() == "'-1,-1,'=1+1,2.5,,\"a,b\"\r\n"


def test_every_csv_of_the_platform_is_written_through_the_one_writer() -> None:
    writers = re.compile(r"csv\.(writer|DictWriter)\(|import csv as")
    offenders = [
        str(path.relative_to(SURVEY))
        for path in SURVEY.rglob("*.py")
        if path.name != "csvsafe.py" and writers.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


# --- hostile names through every output --------------------------------------------------------------------


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def assert_defused(rows: list[list[str]], where: str) -> int:
    """Every cell a spreadsheet could run is a number; no hostile name comes out bare. Returns how many
    cells held a defused hostile name."""
    defused = 0
    for row in rows:
        for value in row:
            assert value not in HOSTILE and value != HOSTILE_URL, f"{where}: bare {value!r}"
            if value.startswith(FORMULA_START):
                assert _is_number(value), f"{where}: {value!r} would run as a formula"
            defused += value.startswith("'") and any(h in value for h in (*HOSTILE, HOSTILE_URL))
    return defused


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str, list[int]]]:
    """The small demo province, planned, with six communes (and their districts) and a field named to harm."""
    engine, _summary, url = load_small_demo(tmp_path_factory.mktemp("hostile") / "demo.db")
    with Session(engine) as s, s.begin():
        save_plan(s, plan_wave(s, wave_code=CURRENT_WAVE, margin=0.05), actor="test")
        quota_units = set(s.scalars(select(col(Quota.unit_id))))
        districts = s.scalars(select(Unit).where(col(Unit.kind) == "district").order_by(col(Unit.code))).all()
        communes = [
            c
            for d in districts
            for c in s.scalars(select(Unit).where(col(Unit.parent_id) == d.id).order_by(col(Unit.code))).all()[:1]
            if c.id in quota_units
        ][: len(HOSTILE)]
        assert len(communes) == len(HOSTILE)
        for k, (commune, name) in enumerate(zip(communes, HOSTILE, strict=True)):
            parent = s.get(Unit, commune.parent_id)
            assert parent is not None
            commune.code, commune.name_vi, commune.name_en = name, name, name
            parent.code, parent.name_vi = f"{name}{k}", f"{name} (huyện)"
        s.execute(
            update(ProcedureField)
            .where(col(ProcedureField.id) == min(q.field_id for q in s.scalars(select(Quota))))
            .values(code="@FIELD()")
        )
        ids = [int(c.id or 0) for c in communes]
    yield engine, url, ids
    engine.dispose()


def test_exports_defuse_hostile_names(hostile: tuple[Engine, str, list[int]]) -> None:
    engine, _url, _ids = hostile
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="commune")
    league = _read(table_csv(league_table(ws, locale="en", filters=HOSTILE)).decode("utf-8"))
    assert assert_defused(league, "league table") >= 3 * len(HOSTILE)  # code, two names
    card = _read(table_csv(scorecard_table(ws, HOSTILE[0], locale="en")).decode("utf-8"))
    assert assert_defused(card, "scorecard") >= 1
    for k in (1, 5):
        md = wave_microdata(engine, wave_code=CURRENT_WAVE, min_cell=k)
        rows = _read(md.to_csv().decode("utf-8"))
        assert assert_defused(rows, f"microdata k={k}") >= len(HOSTILE)
        assert assert_defused(_read(table_csv(md.codebook("en")).decode("utf-8")), "codebook") == 0


def test_staff_downloads_defuse_hostile_names(hostile: tuple[Engine, str, list[int]]) -> None:
    engine, url, ids = hostile
    with Session(engine) as s:
        wave_id = s.scalars(select(col(Wave.id)).where(col(Wave.code) == CURRENT_WAVE)).one()
        root = s.scalars(select(col(Unit.id)).where(col(Unit.parent_id).is_(None))).first()
    assert root is not None
    admin = make_account(engine, "admin", root)
    with staff_client(make_settings(url, base_url=HOSTILE_URL), engine) as client:
        token = signed_in(client, admin)
        progress = client.get(f"/staff/waves/{wave_id}/progress.csv")
        assert progress.status_code == 200 and progress.headers["content-type"].startswith("text/csv")
        rows = _read(progress.content.decode("utf-8"))
        assert assert_defused(rows, "progress.csv") >= 2 * len(HOSTILE)  # code and name, per unit
        assert any(r[1] == "'-1" and r[0] == "unit" for r in rows)  # the unit named -1: text, quoted
        page = client.post(
            "/staff/receipt-codes",
            data={"_csrf_token": token, "wave_id": str(wave_id), "unit_id": str(ids[0]), "count": "2"},
        )
        batch = re.search(r'name="codes" value="([^"]+)"', page.text)
        assert page.status_code == 200 and batch, page.text[:300]
        codes = client.post("/staff/receipt-codes", data={"_csrf_token": token, "action": "csv", "codes": batch[1]})
        assert codes.status_code == 200
        rows = _read(codes.text)
        assert assert_defused(rows, "receipt codes") == 2 and rows[1][1].startswith("'" + HOSTILE_URL)


def test_commands_defuse_hostile_names_and_keep_negative_numbers(
    hostile: tuple[Engine, str, list[int]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _engine, url, _ids = hostile
    runner = CliRunner()
    with cli_settings(monkeypatch, tmp_path, url):
        score = runner.invoke(
            main, ["score", "--wave", CURRENT_WAVE, "--level", "commune", "--compare-with", "2025", "--format", "csv"]
        )
        quota_units = runner.invoke(main, ["quota", CURRENT_WAVE, "--format", "csv"])
        quota_strata = runner.invoke(main, ["quota", CURRENT_WAVE, "--by", "stratum", "--format", "csv"])
        plan = runner.invoke(
            main,
            ["plan", "--wave", CURRENT_WAVE, "--frame-from", "2025-01", "--frame-to", "2025-12", "--format", "csv"],
        )
        monkeypatch.setenv("SIPAS_BASE_URL", HOSTILE_URL)
        get_settings.cache_clear()
        qr = runner.invoke(
            main, ["qr", "receipts", "--wave", CURRENT_WAVE, "--unit", HOSTILE[2], "-n", "2", "-o", "out"]
        )
        codes_file = (tmp_path / "out" / "codes.csv").read_text(encoding="utf-8")
    for result in (score, quota_units, quota_strata, plan, qr):
        assert result.exit_code == 0, result.output
    rows = _read(score.output)
    table = [r for r in rows if not r[0].startswith("#")]
    assert assert_defused(table, "sipas score") >= 2 * len(HOSTILE)  # code and name
    heading = table[0]
    change = heading.index("change_since_2025")
    negatives = [r[change] for r in table[1:] if r[change].startswith("-")]
    assert negatives and all(_is_number(v) and float(v) < 0 for v in negatives)  # numbers, not quoted
    name = heading.index("name")
    assert {r[name] for r in table[1:]} >= {"'" + h for h in HOSTILE}
    assert assert_defused(_read(quota_units.output), "sipas quota") >= len(HOSTILE)
    assert assert_defused(_read(quota_strata.output), "sipas quota --by stratum") >= len(HOSTILE) + 1
    assert assert_defused(_read(plan.output), "sipas plan") >= len(HOSTILE) + 1
    assert assert_defused(_read(codes_file), "sipas qr receipts") == 2
