"""The mixing buffer keeps every answer exactly once, on SQLite and PostgreSQL: the submission spends the code and
buffers the answer in one transaction; a flush moves whole ended buckets, once, in one transaction."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.citizen import mixer, services
from survey.db.bounded import BoundedDb
from survey.db.engine import alembic_config, make_engine, migrate
from survey.db.models import PendingResponse, ReceiptCode, Response
from survey.receipts import codes
from tests.factories import World, build_world, flush_answers, new_code

BUCKET = 15
# a moment of yesterday's 10:00-10:15 bucket: no other test's answers are that old
YESTERDAY = datetime.now(UTC).replace(hour=10, minute=7, second=30, microsecond=0) - timedelta(days=1)
BUCKET_END = YESTERDAY.replace(minute=15, second=0)


def _receipt(
    engine: Engine, world: World, *, now: datetime = YESTERDAY, comment: str | None = None
) -> tuple[str, services.Submission]:
    """A fresh receipt code and a page of answers for it."""
    code = new_code(engine, world)
    with engine.connect() as conn:
        target = services.resolve_receipt(conn, code, world.today)
    answers = bytes([4] * len(world.sipas.layout))
    return code, services.Submission(target, answers, comment, secrets.token_hex(32), now, BUCKET)


def _counter(engine: Engine, world: World, *, now: datetime = YESTERDAY) -> services.Submission:
    with engine.connect() as conn:
        target = services.resolve_counter(conn, world.counter_token, world.today)
    return services.Submission(target, bytes(len(target.spec.layout)), None, secrets.token_hex(32), now, BUCKET)


def _store(engine: Engine, submission: services.Submission) -> None:
    with BoundedDb(engine).transaction() as conn:
        services.store(conn, submission)


def _flush(engine: Engine, now: datetime) -> int:
    with BoundedDb(engine).transaction() as conn:
        return mixer.flush(conn, now, BUCKET)


def _where(engine: Engine, key: str) -> tuple[int, int]:
    """How many copies of the page with ``key`` are in the buffer, and in ``response``."""
    with Session(engine) as s:
        pending = s.scalar(select(func.count()).where(col(PendingResponse.submission_key) == key))
        stored = s.scalar(select(func.count()).where(col(Response.submission_key) == key))
    return int(pending or 0), int(stored or 0)


def _spent(engine: Engine, code: str) -> bool:
    with Session(engine) as s:
        return bool(s.scalar(select(col(ReceiptCode.spent)).where(col(ReceiptCode.code_hash) == codes.code_hash(code))))


def test_the_code_is_spent_and_the_answer_buffered_together_or_not_at_all(engine: Engine, world: World) -> None:
    code, submission = _receipt(engine, world)
    with pytest.raises(RuntimeError), BoundedDb(engine).transaction() as conn:
        services.store(conn, submission)
        raise RuntimeError("the process dies before the commit")
    assert not _spent(engine, code) and _where(engine, submission.submission_key) == (0, 0)
    _store(engine, submission)
    assert _spent(engine, code) and _where(engine, submission.submission_key) == (1, 0)


def test_a_bucket_is_flushed_whole_once_it_has_ended(engine: Engine, world: World) -> None:
    first_code, first = _receipt(engine, world, now=YESTERDAY.replace(minute=0, second=0))
    _code, last = _receipt(engine, world, now=BUCKET_END - timedelta(microseconds=1))
    _code, next_bucket = _receipt(engine, world, now=BUCKET_END)
    for submission in (first, last, next_bucket):
        _store(engine, submission)
    _flush(engine, BUCKET_END + timedelta(seconds=mixer.GRACE_S - 1))  # ended, but not GRACE_S ago
    assert [_where(engine, s.submission_key) for s in (first, last, next_bucket)] == [(1, 0)] * 3
    assert _flush(engine, BUCKET_END + timedelta(seconds=mixer.GRACE_S)) >= 2
    assert [_where(engine, s.submission_key) for s in (first, last, next_bucket)] == [(0, 1), (0, 1), (1, 0)]
    with Session(engine) as s:
        row = s.scalars(select(Response).where(col(Response.submission_key) == last.submission_key)).one()
    assert row.submitted_at == BUCKET_END - timedelta(minutes=BUCKET)  # the bucket, as before
    assert (row.unit_id, row.field_id, row.answers) == (world.unit_id, world.field_id, last.answers)
    assert _spent(engine, first_code)


def test_a_crash_during_the_flush_keeps_every_answer_in_the_buffer(engine: Engine, world: World) -> None:
    submissions = [_receipt(engine, world)[1] for _ in range(3)]
    for submission in submissions:
        _store(engine, submission)
    with pytest.raises(RuntimeError), BoundedDb(engine).transaction() as conn:
        assert mixer.flush(conn, BUCKET_END + timedelta(hours=1), BUCKET) >= 3
        raise RuntimeError("the process dies before the flush commits")
    assert [_where(engine, s.submission_key) for s in submissions] == [(1, 0)] * 3
    _flush(engine, BUCKET_END + timedelta(hours=1))
    _flush(engine, BUCKET_END + timedelta(hours=2))  # a second flusher finds nothing left to move
    assert [_where(engine, s.submission_key) for s in submissions] == [(0, 1)] * 3


def test_a_page_sent_again_is_recognised_in_the_buffer_and_after_the_flush(engine: Engine, world: World) -> None:
    _code, receipt = _receipt(engine, world)
    counter = _counter(engine, world)
    for submission in (receipt, counter):
        _store(engine, submission)
        with pytest.raises(services.AlreadyReceived):
            _store(engine, submission)
    _flush(engine, BUCKET_END + timedelta(hours=1))
    for submission in (receipt, counter):
        with pytest.raises(services.AlreadyReceived):
            _store(engine, submission)
        assert _where(engine, submission.submission_key) == (0, 1)
    # a second page of the same receipt code (another tab): the code is spent, nothing more is kept
    other_page = services.Submission(receipt.target, receipt.answers, None, secrets.token_hex(32), YESTERDAY, BUCKET)
    with pytest.raises(services.CodeAlreadyUsed):
        _store(engine, other_page)
    assert _where(engine, other_page.submission_key) == (0, 0)


def test_a_copy_left_by_a_page_sent_during_the_flush_is_dropped(engine: Engine, world: World) -> None:
    """A counter page sent again just as the flush moves its first copy: ``store`` asked the buffer and the
    response table before the flush committed and found neither, so a second copy is buffered."""
    counter = _counter(engine, world)
    _store(engine, counter)
    _flush(engine, BUCKET_END + timedelta(hours=1))
    with BoundedDb(engine).transaction() as conn:  # what that late store leaves behind
        conn.execute(insert(PendingResponse), counter.row())
    assert _where(engine, counter.submission_key) == (1, 1)
    _flush(engine, BUCKET_END + timedelta(hours=1))
    assert _where(engine, counter.submission_key) == (0, 1)


@pytest.fixture(scope="module")
def postgres(postgres_url: str) -> Iterator[tuple[Engine, World]]:
    engine = make_engine(postgres_url)
    yield engine, build_world(engine)
    engine.dispose()


@pytest.mark.postgres
def test_flushers_of_several_processes_take_turns(postgres: tuple[Engine, World]) -> None:
    engine, world = postgres
    _code, submission = _receipt(engine, world)
    _store(engine, submission)
    with engine.connect() as other:  # another process's flush, still running
        other.execute(select(func.pg_advisory_xact_lock(mixer.FLUSH_LOCK)))
        assert _flush(engine, BUCKET_END + timedelta(hours=1)) == 0
        assert _where(engine, submission.submission_key) == (1, 0)
        other.rollback()
    assert _flush(engine, BUCKET_END + timedelta(hours=1)) >= 1
    assert _where(engine, submission.submission_key) == (0, 1)


def test_moved_answers_leave_no_copy_in_the_buffer_pages(engine: Engine, world: World, db_url: str) -> None:
    """What a copy of the database files would show: the answer once (its response), not a second time in the
    pages of the buffer, where its old row would carry the spending transaction's id (PostgreSQL) or its
    place in the order of arrival."""
    comment = f"only-here-{secrets.token_hex(8)}"
    _code, submission = _receipt(engine, world, comment=comment)
    _store(engine, submission)
    assert mixer.flush_now(BoundedDb(engine), BUCKET, now=BUCKET_END + timedelta(hours=1)) >= 1
    assert _where(engine, submission.submission_key) == (0, 1)
    needle = comment.encode()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pageinspect"))
            conn.commit()
            pages = conn.execute(
                text("SELECT pg_relation_size('pending_response') / current_setting('block_size')::int")
            )
            leftovers = [
                data
                for block in range(int(pages.scalar() or 0))
                for (data,) in conn.execute(
                    text("SELECT t_data FROM heap_page_items(get_raw_page('pending_response', :b))"), {"b": block}
                )
                if data is not None and needle in bytes(data)
            ]
        assert leftovers == []
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = Path(make_url(db_url).database or "")
        assert path.read_bytes().count(needle) == 1


def test_the_mixer_of_the_app_flushes_ended_buckets_in_the_background(engine: Engine, world: World) -> None:
    _code, submission = _receipt(engine, world)
    _store(engine, submission)
    background = mixer.Mixer(BoundedDb(engine), BUCKET, interval=0.05)
    background.start()
    try:
        deadline = time.monotonic() + 10
        while _where(engine, submission.submission_key) != (0, 1):
            assert time.monotonic() < deadline, "the mixer did not flush an ended bucket"
            time.sleep(0.05)
    finally:
        background.stop()


def test_flush_answers_of_the_tests_moves_the_current_bucket_too(engine: Engine, world: World) -> None:
    _code, submission = _receipt(engine, world, now=datetime.now(UTC))
    _store(engine, submission)
    assert flush_answers(engine) >= 1
    assert _where(engine, submission.submission_key) == (0, 1)


def test_going_down_a_migration_keeps_the_answers_waiting_in_the_buffer(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    migrate(url)
    engine = make_engine(url)
    try:
        world = build_world(engine)
        _code, submission = _receipt(engine, world)
        _store(engine, submission)
        command.downgrade(alembic_config(url), "0005")
        with engine.connect() as conn:
            kept = conn.execute(
                text("SELECT answers FROM response WHERE submission_key = :k"), {"k": submission.submission_key}
            )
            assert [bytes(row[0]) for row in kept] == [submission.answers]
            assert "pending_response" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
