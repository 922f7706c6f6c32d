"""Issuing receipt codes: only for waves that can take them, only for units in the wave's scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.audited import audit_change, issue_receipt_codes
from survey.db.models import AuditLog, ReceiptCode, Wave
from survey.errors import ConflictError, NotFoundError
from tests.conftest import make_settings
from tests.factories import World


def _wave_code(engine: Engine, wave_id: int) -> str:
    with Session(engine) as s:
        wave = s.get(Wave, wave_id)
        assert wave is not None
        return wave.code


def _codes(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(ReceiptCode)) or 0)


def _issue(engine: Engine, wave_id: int, unit_id: int, count: int = 2) -> list[str]:
    with Session(engine) as s, s.begin():
        return issue_receipt_codes(
            s,
            wave_code=_wave_code(engine, wave_id),
            unit_id=unit_id,
            field_id=None,
            count=count,
            valid_days=60,
            actor="test",
        )


def test_codes_are_issued_for_an_open_wave_and_expire_by_its_end(engine: Engine, world: World) -> None:
    before = _codes(engine)
    fresh = _issue(engine, world.open_wave_id, world.unit_id, count=3)
    assert len(set(fresh)) == 3 and _codes(engine) == before + 3
    with Session(engine) as s:
        wave = s.get(Wave, world.open_wave_id)
        latest = s.scalars(select(ReceiptCode).order_by(col(ReceiptCode.id).desc())).first()
    assert wave is not None and latest is not None
    assert latest.expires_on == min(latest.issued_on + timedelta(days=60), wave.ends_on)


@pytest.mark.parametrize(
    ("which", "problem"),
    [("closed", "is closed"), ("counter", "does not take receipt codes"), ("out_of_scope", "not in the scope")],
)
def test_codes_are_refused_where_they_could_never_be_answered(
    engine: Engine, world: World, which: str, problem: str
) -> None:
    wave_id, unit_id = {
        "closed": (world.closed_wave_id, world.unit_id),
        "counter": (world.counter_wave_id, world.unit_id),
        "out_of_scope": (world.open_wave_id, world.other_unit_id),
    }[which]
    before = _codes(engine)
    with pytest.raises(ConflictError, match=problem):
        _issue(engine, wave_id, unit_id)
    assert _codes(engine) == before


def test_unknown_wave_and_silly_counts_are_refused(engine: Engine, world: World) -> None:
    with Session(engine) as s, pytest.raises(NotFoundError):
        issue_receipt_codes(
            s, wave_code="no-such-wave", unit_id=world.unit_id, field_id=None, count=1, valid_days=60, actor="test"
        )
    for count in (0, 100_001):
        with Session(engine) as s, pytest.raises(ValueError, match="count"):
            issue_receipt_codes(
                s,
                wave_code=_wave_code(engine, world.open_wave_id),
                unit_id=world.unit_id,
                field_id=None,
                count=count,
                valid_days=60,
                actor="test",
            )


def test_today_is_the_date_in_the_offices_time_zone() -> None:
    settings = make_settings("sqlite://")
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.today() == datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    assert make_settings("sqlite://", timezone="UTC").today() == datetime.now(UTC).date()
    with pytest.raises(ValidationError, match="unknown time zone"):
        make_settings("sqlite://", timezone="Mars/Olympus")


def test_an_update_is_audited_with_only_what_changed_and_not_at_all_when_nothing_did(engine: Engine) -> None:
    entity = f"thing-{datetime.now(UTC).timestamp()}"
    with Session(engine) as s, s.begin():
        same = audit_change(
            s, actor="t", entity=entity, entity_id=1, before={"a": 1, "b": "x"}, after={"a": 1, "b": "x"}
        )
        changed = audit_change(
            s, actor="t", entity=entity, entity_id=1, before={"a": 1, "b": "x"}, after={"a": 2, "b": "x"}
        )
    assert (same, changed) == (False, True)
    with Session(engine) as s:
        rows = s.scalars(select(AuditLog).where(col(AuditLog.entity) == entity)).all()
    assert len(rows) == 1
    assert (rows[0].action, rows[0].before, rows[0].after) == ("update", {"a": 1}, {"a": 2})
