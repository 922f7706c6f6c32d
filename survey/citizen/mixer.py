"""The mixing buffer: how a citizen's answer reaches the response table without a trace of its receipt code.

**What an insider must not be able to do.** Someone with a copy of the database and the secret key can
follow a receipt code back to its transaction (the issuing API derives a transaction's code from the
HMAC of its reference; that is what makes issuing idempotent). So nothing stored may tie a response to
the code that was spent for it. If the code were spent and the response inserted in one transaction,
PostgreSQL would stamp both rows with the same transaction id (``xmin``); and a response inserted at the
moment of spending lands at the end of the heap (``ctid``, the order a plain ``pg_dump`` writes rows in),
takes the next id of a sequence (SQLite: the next ``rowid``), in the order codes are spent, and codes are
spent in nearly the order they were issued. Random ids alone would not help: the rows would still lie in
the order they arrived. Spending the code and storing the answer in two transactions would not either: their
transaction ids would be neighbours.

**What happens instead.**

1. *Submission* (``services.store``, one transaction through ``BoundedDb.write``): spend the code
   (``UPDATE ... WHERE NOT spent``, the row lock makes a second spender wait, then find it spent) and put
   the answer in ``pending_response``, keyed by the page's submission key. Commit, then the thank-you.
2. *Flush* (``flush``, one transaction, every ``INTERVAL_S`` seconds in a thread of each app process):
   take every buffered answer whose time bucket (``submitted_at``, already rounded down to
   ``SIPAS_TIME_BUCKET_MINUTES``) ended at least ``GRACE_S`` ago, shuffle them with the operating
   system's random generator, insert them into ``response`` in that order, delete them from the buffer.
   Flushers of several processes take turns (an advisory lock on PostgreSQL, the write lock on SQLite).
   Then the buffer's deleted rows are wiped from its pages too (``VACUUM`` on PostgreSQL; on SQLite every
   connection zero-fills what it deletes, ``secure_delete`` in ``survey.db.engine``).

**Exactly once.** Every state a crash can leave is a committed one. Before the submission commits, nothing
is kept and the code is unspent (no thank-you was sent; the same page can be sent again); its commit makes
both true at once, the code spent and the answer in the buffer. The flush moves rows in one transaction:
before its commit they are all still in the buffer, after it all in ``response``; never in neither, never
in both. A submission key lives in the buffer (primary key) or in ``response`` (unique), so a re-sent page is
recognised in either (``services.was_received`` asks the buffer first, so a row moving between the two
queries is still found), and the one race left (a counter page sent again just as the flush moves its first
copy) leaves a second copy in the buffer that the flush drops on ``response``'s unique key. A code is spent
by exactly one committed submission and is never un-spent.

**What is left to see after the flush.** The rows of a response and of its code share nothing but what the
response states on purpose: its wave, unit, field and bucket.

- ``xmin``: every response of a batch carries the flush's transaction id; a spent code carries the
  spending transaction's. They are never equal; comparing them tells in which batch's window a code was
  spent, and a batch is whole buckets, which ``submitted_at`` says anyway.
- Row order and ids (``ctid``, SQLite's ``rowid``, the ``id`` sequence): given in the shuffled order, so
  within a batch they are random; across batches they follow the buckets.
- Timestamps: ``submitted_at`` is the bucket; codes carry dates (issued, expires), issued transactions the
  date asked; nothing records when a code was spent or a row last changed.

**What this does not hide** (README, "How answers are kept"; ``docs/security.md``, "Unlinkable storage"):
the bucket itself (on PostgreSQL a spent code's ``xmin`` and physical position say roughly when it was
spent, so a response can be narrowed to the codes of its stratum spent in its bucket: one such code, and it
is linked); answers still in the buffer (up to one bucket plus ``GRACE_S`` and ``INTERVAL_S``), which share
their code's ``xmin``; anyone watching the live database, its write-ahead log or backups over time, who
sees a code spent and an answer arrive together; and the content of the answers themselves.

A submission whose transaction commits after its bucket was flushed (it would have to take longer than
``GRACE_S``) goes with the next batch.
"""

from __future__ import annotations

import logging
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError

from survey.db.bounded import BoundedDb
from survey.db.models import PendingResponse, Response

log = logging.getLogger("sipas.mixer")

GRACE_S = 120  # a bucket is flushed this long after it ended: submissions of its last seconds have committed
INTERVAL_S = 30.0  # how often each app process looks for ended buckets
_CHUNK = 500
FLUSH_LOCK = 0x5_1FA5_0B0F  # the PostgreSQL advisory lock a flushing transaction holds
_SHUFFLE = random.SystemRandom()

_pending = PendingResponse.__table__  # type: ignore[attr-defined]
_response = Response.__table__  # type: ignore[attr-defined]


def ready_before(now: datetime, bucket_minutes: int) -> datetime:
    """Buckets starting at or before this moment ended at least ``GRACE_S`` before ``now``."""
    return now.astimezone(UTC) - timedelta(minutes=bucket_minutes, seconds=GRACE_S)


def flush(conn: Connection, now: datetime, bucket_minutes: int) -> int:
    """Move every buffered answer of an ended bucket into ``response``, in random order, in the caller's
    transaction (see the module docstring). Returns how many were moved: 0 when another flush holds the lock."""
    postgres = conn.dialect.name == "postgresql"
    # flushers take turns: an advisory lock on PostgreSQL; on SQLite the caller's BEGIN IMMEDIATE holds the write lock
    if postgres and not conn.execute(select(func.pg_try_advisory_xact_lock(FLUSH_LOCK))).scalar():
        return 0
    cutoff = ready_before(now, bucket_minutes)
    rows: list[dict[str, Any]] = [
        dict(row) for row in conn.execute(select(_pending).where(_pending.c.submitted_at <= cutoff)).mappings()
    ]
    if not rows:
        return 0
    _SHUFFLE.shuffle(rows)
    insert = (postgresql.insert if postgres else sqlite.insert)(_response)
    # a page kept twice (sent again while its first copy was being moved) is stored once: see the docstring
    once = insert.on_conflict_do_nothing(index_elements=["submission_key"])
    for start in range(0, len(rows), _CHUNK):
        conn.execute(once, rows[start : start + _CHUNK])
    keys = [row["submission_key"] for row in rows]
    for start in range(0, len(keys), _CHUNK):
        conn.execute(delete(_pending).where(_pending.c.submission_key.in_(keys[start : start + _CHUNK])))
    return len(rows)


def scrub(engine: Engine) -> None:
    """PostgreSQL: ``VACUUM`` the buffer, so the old versions of moved rows (each still carrying its spending
    transaction's id) leave its pages now rather than at autovacuum's next round. Nothing to do on SQLite."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql(f"VACUUM {_pending.name}")


def flush_now(db: BoundedDb, bucket_minutes: int, *, now: datetime | None = None) -> int:
    """One round: flush the ended buckets in a write transaction of ``db``'s, then scrub the buffer."""
    with db.transaction() as conn:
        moved = flush(conn, now or datetime.now(UTC), bucket_minutes)
    if moved:
        try:
            scrub(db.engine)
        except DBAPIError as exc:  # e.g. autovacuum holds the table: it is cleaning it anyway
            log.info("mixer: VACUUM of the buffer skipped this round (%s)", exc.__class__.__name__)
    return moved


def flush_everything(db: BoundedDb) -> int:
    """Flush the whole buffer, the current bucket included: for demonstrations and tests, which want their
    answers counted at once. It splits the current bucket between two batches, so the promise of the module
    docstring does not hold for that bucket: never on a live survey."""
    return flush_now(db, 0, now=datetime.now(UTC) + timedelta(days=1))


class Mixer:
    """Flushes the buffer every ``interval`` seconds in a daemon thread, while the app runs."""

    def __init__(self, db: BoundedDb, bucket_minutes: int, *, interval: float = INTERVAL_S) -> None:
        self.db = db
        self.bucket_minutes = bucket_minutes
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.interval):
                try:
                    flush_now(self.db, self.bucket_minutes)
                except Exception as exc:  # the database is away: the answers wait in the buffer, nothing is lost
                    log.warning("mixer: could not flush the buffer this round (%s)", exc.__class__.__name__)

        self._thread = threading.Thread(target=loop, name="sipas-mixer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


MIXER_STATE = "mixer"


def start_mixer(app: Any) -> None:
    """``on_startup`` hook: the app's mixer, flushing in the background."""
    mixer = Mixer(app.state.citizen_db, app.state.settings.time_bucket_minutes)
    app.state[MIXER_STATE] = mixer
    mixer.start()


def stop_mixer(app: Any) -> None:
    """``on_shutdown`` hook."""
    mixer = app.state.get(MIXER_STATE)
    if isinstance(mixer, Mixer):
        mixer.stop()
