"""The citizen journey's driver connections (survey.db.direct): values as the ORM stores them, errors as
SQLAlchemy's, group commit that stores a batch whole or runs it again one by one, recovery after a failure."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.citizen import services
from survey.db import libpq
from survey.db.direct import DirectDb, Transaction
from survey.db.models import Channel, ReceiptCode, Response, Wave
from tests.factories import World, new_code

RESPONSE = Response.__table__  # type: ignore[attr-defined]
WAVE = Wave.__table__.c  # type: ignore[attr-defined]


def _values(world: World, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "wave_id": world.open_wave_id,
        "unit_id": world.unit_id,
        "service_point_id": None,
        "field_id": world.field_id,
        "channel": int(Channel.receipt),
        "questionnaire_version_id": world.sipas_version_id,
        "submitted_at": datetime(2026, 3, 15, 9, 45, tzinfo=UTC),
        "answers": bytes([1, 2, 3, 255, 0]),
        "comment": "Nhanh chóng, tận tình",
        "flags": 0,
        "submission_key": key,
        **extra,
    }


_VALUES = {
    "wave_id": 1,
    "unit_id": 2,
    "service_point_id": None,
    "field_id": 3,
    "channel": 1,
    "questionnaire_version_id": 4,
    "submitted_at": datetime(2026, 3, 15, 9, 45, tzinfo=UTC),
    "answers": b"\x01\x02",
    "comment": None,
    "flags": 0,
    "submission_key": "k",
}


def _count(engine: Engine, key_prefix: str) -> int:
    with Session(engine) as s:
        stmt = select(func.count()).select_from(Response).where(col(Response.submission_key).startswith(key_prefix))
        return int(s.scalar(stmt) or 0)


def _insert(world: World, key: str) -> Callable[[Transaction], int]:
    return lambda tx: tx.insert(RESPONSE, _values(world, key))


@pytest.fixture()
def db(engine: Engine) -> Any:
    direct = DirectDb(engine)
    yield direct
    direct.close()


def test_a_row_written_directly_reads_back_through_the_orm_as_written(
    db: DirectDb, engine: Engine, world: World
) -> None:
    key = secrets.token_hex(16)
    with db.transaction() as tx:
        assert tx.insert(RESPONSE, _values(world, key)) == 1
    with Session(engine) as s:
        row = s.scalars(select(Response).where(col(Response.submission_key) == key)).one()
    assert row.submitted_at == datetime(2026, 3, 15, 9, 45, tzinfo=UTC)  # aware UTC, as UTCDateTime gives it
    assert row.answers == bytes([1, 2, 3, 255, 0]) and row.comment == "Nhanh chóng, tận tình"


def test_reads_come_back_typed_by_their_columns(db: DirectDb, world: World) -> None:
    sql = "SELECT id, starts_on, ends_on FROM wave WHERE id = :id"
    row = db.one(sql, {"id": world.open_wave_id}, (None, WAVE.starts_on, WAVE.ends_on))
    assert row is not None
    assert isinstance(row[1], date) and isinstance(row[2], date) and row[1] <= world.today <= row[2]
    assert db.one(sql, {"id": -1}) is None
    assert db.all("SELECT id FROM wave WHERE id IN (:a, :b) ORDER BY id", {"a": -1, "b": -2}) == []


def test_a_duplicate_key_is_sqlalchemys_integrity_error_and_nothing_of_the_transaction_stays(
    db: DirectDb, engine: Engine, world: World
) -> None:
    prefix = f"dup-{secrets.token_hex(6)}-"
    with db.transaction() as tx:
        tx.insert(RESPONSE, _values(world, prefix + "a"))
    with pytest.raises(IntegrityError), db.transaction() as tx:
        tx.insert(RESPONSE, _values(world, prefix + "b"))
        tx.insert(RESPONSE, _values(world, prefix + "a"))
    assert _count(engine, prefix) == 1  # "b" was rolled back with the failed transaction
    with db.transaction() as tx:  # and the connection is usable again
        tx.insert(RESPONSE, _values(world, prefix + "c"))
    assert _count(engine, prefix) == 2


def test_group_commit_stores_a_batch_whole(db: DirectDb, engine: Engine, world: World) -> None:
    prefix = f"batch-{secrets.token_hex(6)}-"

    async def many() -> list[int]:
        return list(await asyncio.gather(*(db.write(_insert(world, f"{prefix}{i}")) for i in range(40))))

    assert asyncio.run(many()) == [1] * 40
    assert _count(engine, prefix) == 40
    assert db.batches < db.writes  # some were committed together


def test_a_failing_write_fails_alone_and_the_rest_of_its_batch_is_stored(
    db: DirectDb, engine: Engine, world: World
) -> None:
    prefix = f"mixed-{secrets.token_hex(6)}-"
    with db.transaction() as tx:
        tx.insert(RESPONSE, _values(world, prefix + "taken"))

    def bad(tx: Transaction) -> int:
        tx.insert(RESPONSE, _values(world, prefix + "partial"))  # written, then undone with its failure
        return tx.insert(RESPONSE, _values(world, prefix + "taken"))

    def refused(tx: Transaction) -> int:
        tx.insert(RESPONSE, _values(world, prefix + "refused"))
        raise ValueError("refused by the caller")

    async def mixed() -> list[Any]:
        good = [db.write(_insert(world, f"{prefix}{i}")) for i in range(10)]
        return list(
            await asyncio.gather(*good[:5], db.write(bad), db.write(refused), *good[5:], return_exceptions=True)
        )

    outcomes = asyncio.run(mixed())
    assert isinstance(outcomes[5], IntegrityError) and isinstance(outcomes[6], ValueError)
    assert outcomes[:5] + outcomes[7:] == [1] * 10
    assert _count(engine, prefix) == 11  # "taken" and the ten good ones; nothing of "partial" or "refused"


def test_an_unreachable_database_is_an_operational_error_then_service_resumes(tmp_path: Any) -> None:
    from survey.db.engine import make_engine, migrate

    url = f"sqlite:///{tmp_path}/resume.db"
    migrate(url)
    engine = make_engine(url)
    db = DirectDb(engine)
    try:
        assert db.one("SELECT count(*) FROM response", {}) == (0,)
        # a statement the database refuses leaves the read connection replaced, not broken for good
        with pytest.raises(OperationalError):
            db.one("SELECT * FROM no_such_table", {})
        assert db.one("SELECT count(*) FROM response", {}) == (0,)
    finally:
        db.close()
        engine.dispose()
    dead = DirectDb(create_engine(f"sqlite:///{tmp_path}/missing-dir/x/y.db"))
    with pytest.raises(OperationalError):
        dead.one("SELECT 1", {})
    with pytest.raises(OperationalError), dead.transaction():
        pass


def test_submit_spends_the_code_once_and_a_spent_code_leaves_nothing(
    db: DirectDb, engine: Engine, world: World
) -> None:
    code = new_code(engine, world)
    target = services.resolve_receipt(db, raw_code=code, today=world.today)
    assert target.unit.name_vi == "Xã Thử Nghiệm" and target.field is not None
    answers = bytes(len(world.sipas.layout))
    key = secrets.token_hex(16)

    async def twice() -> list[Any]:
        def one(submission_key: str) -> Any:
            return services.submit_from_loop(
                db,
                services.Submission(target, answers, None, submission_key, datetime.now(UTC), bucket_minutes=15),
            )

        return list(await asyncio.gather(one(key), one(secrets.token_hex(16)), return_exceptions=True))

    outcomes = asyncio.run(twice())
    assert outcomes.count(None) == 1 and sum(isinstance(o, services.CodeAlreadyUsed) for o in outcomes) == 1
    with Session(engine) as s:
        assert s.scalar(select(col(ReceiptCode.spent)).where(col(ReceiptCode.code_hash) == target.code_hash))
    assert _count(engine, key) == 1
    with pytest.raises(services.CodeAlreadyUsed):
        services.resolve_receipt(db, raw_code=code, today=world.today)


@pytest.mark.postgres
def test_libpq_statements_read_every_type_they_know_and_leave_the_rest_to_psycopg(postgres_url: str) -> None:
    from decimal import Decimal

    from survey.db.engine import make_engine

    engine = make_engine(postgres_url)
    db = DirectDb(engine)
    try:
        sql = (
            "SELECT CAST(:flag AS boolean), CAST(:n AS integer), CAST(:big AS bigint), CAST(:s AS varchar), "
            "CAST(:d AS date), CAST(:j AS json), CAST(:nothing AS text)"
        )
        params = {
            "flag": True,
            "n": 7,
            "big": 2**40,
            "s": "Xã Thử",
            "d": date(2026, 3, 15),
            "j": '{"a": [1]}',
            "nothing": None,
        }
        for _ in range(2):  # prepared on the first run, reused on the second
            assert db.one(sql, params) == (True, 7, 2**40, "Xã Thử", date(2026, 3, 15), {"a": [1]}, None)
        # a parameter or a result type libpq.py does not handle goes through the cursor, with the same answer
        assert db.one("SELECT CAST(:x AS numeric)", {"x": Decimal("1.25")}) == (Decimal("1.25"),)
        assert db.one("SELECT CAST(:x AS numeric)", {"x": "2.5"}) == (Decimal("2.5"),)
        with pytest.raises(IntegrityError), db.transaction() as tx:  # a refused statement: its SQLSTATE's error
            tx.execute("INSERT INTO unit_level (code, name_vi, name_en, depth) VALUES (:c, 'a', 'b', 0)", {"c": "dup"})
            tx.execute("INSERT INTO unit_level (code, name_vi, name_en, depth) VALUES (:c, 'a', 'b', 0)", {"c": "dup"})
        assert db.one("SELECT count(*) FROM unit_level WHERE code = :c", {"c": "dup"}) == (0,)
        # what SQLAlchemy's column types hand the driver for a response goes through libpq, not the cursor
        values = {
            c: p(v) if p else v
            for (c, p), v in zip(db.insert_sql(RESPONSE, tuple(_VALUES))[1], _VALUES.values(), strict=True)
        }
        assert all(libpq._encode(v) is not None for v in values.values())
        assert libpq._encode(psycopg.Binary(b"\x00\xff")) == (b"\x00\xff", 1)
    finally:
        db.close()
        engine.dispose()


def test_a_questionnaire_not_cached_yet_is_read_from_its_stored_definition(
    db: DirectDb, engine: Engine, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "_SPECS", {})
    target = services.resolve_receipt(db, raw_code=new_code(engine, world), today=world.today)
    assert [i.id for i in target.spec.items] == [i.id for i in world.sipas.items]
    assert target.spec.layout == world.sipas.layout
    assert (target.version_id, target.version_hash) in services._SPECS
