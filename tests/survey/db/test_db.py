"""Migrations, the rules the ORM enforces, and loading a wave into arrays (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import Engine, insert, inspect
from sqlalchemy.orm import Session
from sqlmodel import SQLModel

from survey.citizen.services import bucket
from survey.db import guards
from survey.db.engine import alembic_config, make_engine, migrate
from survey.db.models import QuestionnaireVersion, Response, Wave, pk
from survey.errors import ConflictError
from survey.results.arrays import load_wave
from tests.factories import World

EXPECTED_TABLES = {
    "unit_level",
    "unit",
    "service_point",
    "field",
    "questionnaire",
    "questionnaire_version",
    "wave",
    "wave_unit",
    "frame_count",
    "receipt_code",
    "response",
    "pending_response",
    "user_account",
    "audit_log",
}


def test_migrations_create_the_models_tables_and_go_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert tables >= EXPECTED_TABLES
        # every model column exists in the migrated schema
        for name, table in SQLModel.metadata.tables.items():
            have = {c["name"] for c in inspect(engine).get_columns(name)}
            assert {c.name for c in table.columns} == have, name
        command.downgrade(alembic_config(url), "base")
        assert not (EXPECTED_TABLES & set(inspect(engine).get_table_names()))
        migrate(url)
        assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'w.db'}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_published_version_is_immutable(engine: Engine, world: World) -> None:
    guards.install()
    with Session(engine) as s:
        version = s.get(QuestionnaireVersion, world.sipas_version_id)
        assert version is not None and version.status == "published"
        version.definition = {**version.definition, "note": "changed"}
        with pytest.raises(ConflictError, match="immutable"):
            s.flush()
        s.rollback()
        version = s.get(QuestionnaireVersion, world.sipas_version_id)
        assert version is not None
        s.delete(version)
        with pytest.raises(ConflictError, match="cannot be deleted"):
            s.flush()
        s.rollback()


def test_naive_datetimes_are_refused(engine: Engine, world: World) -> None:
    with Session(engine) as s:
        wave = s.get(Wave, world.open_wave_id)
        assert wave is not None
        wave.created_at = datetime(2026, 1, 1, 8, 0)
        with pytest.raises(Exception, match="naive datetime"):
            s.flush()
        s.rollback()


@pytest.mark.parametrize(
    ("moment", "minutes", "expected"),
    [
        (datetime(2026, 3, 5, 9, 44, 59, tzinfo=UTC), 15, datetime(2026, 3, 5, 9, 30, tzinfo=UTC)),
        (datetime(2026, 3, 5, 9, 45, 0, tzinfo=UTC), 15, datetime(2026, 3, 5, 9, 45, tzinfo=UTC)),
        (datetime(2026, 3, 5, 23, 59, tzinfo=UTC), 60, datetime(2026, 3, 5, 23, 0, tzinfo=UTC)),
        # 08:10 in Vietnam is 01:10 UTC
        (datetime(2026, 3, 5, 8, 10, tzinfo=timezone(timedelta(hours=7))), 30, datetime(2026, 3, 5, 1, 0, tzinfo=UTC)),
    ],
)
def test_submission_time_is_rounded_down_to_its_bucket(moment: datetime, minutes: int, expected: datetime) -> None:
    assert bucket(moment, minutes) == expected


def test_load_wave_gives_the_stored_vectors_as_arrays(engine: Engine, world: World) -> None:
    spec = world.sipas
    width = len(spec.layout)
    rng = np.random.default_rng(7)
    answers = rng.integers(0, 6, size=(40, width), dtype=np.uint8)
    answers[::5, 0] = 255
    with Session(engine) as s, s.begin():
        wave = Wave(
            code=f"load-{rng.integers(10**9)}",
            name_vi="Nạp",
            name_en="Load",
            questionnaire_version_id=world.sipas_version_id,
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            status="closed",
        )
        s.add(wave)
        s.flush()
        wave_id = pk(wave)
        s.execute(
            insert(Response),
            [
                {
                    "wave_id": wave_id,
                    "unit_id": world.unit_id if i % 3 else world.other_unit_id,
                    "field_id": world.field_id if i % 2 else None,
                    "service_point_id": None,
                    "channel": 1 + (i % 2),
                    "questionnaire_version_id": world.sipas_version_id,
                    "submitted_at": datetime(2026, 5, 1, tzinfo=UTC),
                    "answers": answers[i].tobytes(),
                    "comment": None,
                    "flags": i % 4,
                    "submission_key": None,
                }
                for i in range(40)
            ],
        )
    arrays = load_wave(engine, wave_id=wave_id, version_id=world.sipas_version_id, spec=spec)
    assert arrays.n == 40 and arrays.answers.shape == (40, width) and arrays.answers.dtype == np.uint8
    # rows may come back in any order: compare as sorted sets of (unit, field, channel, flags, answers)
    got = sorted(
        zip(
            arrays.unit_id.tolist(),
            arrays.field_id.tolist(),
            arrays.channel.tolist(),
            arrays.flags.tolist(),
            map(bytes, arrays.answers),
            strict=True,
        )
    )
    want = sorted(
        (
            world.unit_id if i % 3 else world.other_unit_id,
            world.field_id if i % 2 else -1,
            1 + (i % 2),
            i % 4,
            answers[i].tobytes(),
        )
        for i in range(40)
    )
    assert got == want
    empty = load_wave(engine, wave_id=wave_id, version_id=world.quick_version_id, spec=world.quick)
    assert empty.n == 0 and empty.answers.shape == (0, len(world.quick.layout))
