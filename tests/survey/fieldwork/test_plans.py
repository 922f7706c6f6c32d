"""Wave plans from the demo frame: per-unit Cochran sizes allocated over fields, saved as quotas."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from scipy import stats
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli import main
from survey.db.models import AuditLog, Quota
from survey.demo.load import DemoSummary
from survey.errors import NotFoundError
from survey.fieldwork.plans import plan_wave, save_plan
from tests.conftest import cli_settings

Demo = tuple[Engine, DemoSummary, str]
FROM, TO = date(2025, 1, 1), date(2025, 12, 31)


def test_each_unit_gets_cochrans_size_split_over_its_fields(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    with Session(engine) as s:
        plan = plan_wave(s, wave_code="2026", margin=0.05, response_rate=0.6, frame_from=FROM, frame_to=TO)
    assert plan.units_without_frame == ()
    per_unit: dict[str, list] = defaultdict(list)
    for row in plan.rows:
        per_unit[row.unit_code].append(row)
    assert len(per_unit) == 121
    z2 = stats.norm.ppf(0.975) ** 2
    for rows in per_unit.values():
        big_n = sum(r.population for r in rows)
        exact = big_n * z2 * 0.25 / ((big_n - 1) * 0.05**2 + z2 * 0.25)  # Cochran eq. 4.2, written out
        assert sum(r.target for r in rows) == min(big_n, math.ceil(exact - 1e-9))
        for r in rows:
            assert 0 <= r.target <= r.population
            assert r.probability == pytest.approx(min(1.0, r.target / (0.6 * r.population)), abs=1e-6)
        # proportional: each field's share of the target follows its share of the transactions, within one
        total = sum(r.target for r in rows)
        for r in rows:
            assert abs(r.target - total * r.population / big_n) < 1


def test_plan_is_saved_as_quotas_replacing_the_last_one_and_audited(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    with Session(engine) as s, s.begin():
        plan = plan_wave(s, wave_code="2026", frame_from=FROM, frame_to=TO)
        assert save_plan(s, plan, actor="test") == len(plan.rows)
    with Session(engine) as s, s.begin():
        smaller = plan_wave(s, wave_code="2026", margin=0.10, frame_from=FROM, frame_to=TO)
        save_plan(s, smaller, actor="test")
    with Session(engine) as s:
        stored = s.scalar(select(func.sum(Quota.target)))
        count = s.scalar(select(func.count()).select_from(Quota))
        audits = s.scalar(select(func.count()).select_from(AuditLog).where(col(AuditLog.action) == "save_plan"))
    assert count == len(smaller.rows) and stored == smaller.total_target < plan.total_target
    assert audits is not None and audits >= 2


def test_unknown_wave_is_named(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    with Session(engine) as s, pytest.raises(NotFoundError, match="No wave with code 'x'"):
        plan_wave(s, wave_code="x")


def test_sipas_plan_prints_and_saves(demo_db: Demo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine, _, url = demo_db
    with cli_settings(monkeypatch, tmp_path, url):
        args = ["plan", "--wave", "2026", "--frame-from", "2025-01", "--frame-to", "2025-12"]
        printed = CliRunner().invoke(main, [*args, "--format", "csv"])
        saved = CliRunner().invoke(main, [*args, "--margin", "0.08", "--save"])
        bad = CliRunner().invoke(main, [*args[:3], "--frame-from", "March"])
    assert printed.exit_code == 0, printed.output
    lines = printed.output.strip().splitlines()
    assert lines[0] == "unit,field,transactions,target,codes_to_issue,probability" and len(lines) > 100
    assert saved.exit_code == 0 and "saved as the quotas of wave 2026" in saved.output
    with Session(engine) as s:
        total = s.scalar(select(func.sum(Quota.target)))
    with Session(engine) as s:
        expected = plan_wave(s, wave_code="2026", margin=0.08, frame_from=FROM, frame_to=TO).total_target
    assert total == expected
    assert bad.exit_code == 2 and "not a month like 2026-03" in bad.output
