"""The data side of ``bench_http``: a fresh database with the demo province, the requests a load run sends
(receipt codes and counter tokens, form tokens signed with the server's secret, complete answer sheets), the
count afterwards of what was stored against what was answered, and the rate limiter's store."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import redis
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import province
from survey.citizen import services
from survey.db.audited import issue_receipt_codes
from survey.db.models import ProcedureField, ReceiptCode, Response, ServicePoint, Unit
from survey.errors import NotFoundError
from survey.questionnaires.spec import Spec
from survey.receipts import codes
from survey.settings import Settings
from tests.factories import full_answers

PG_DATABASE = "sipas_bench_http"
# Where the bench's receipt codes are issued: a department, a district and a commune, as in the demo's links.
UNITS = ("STP", "GD", "TPTN-W01")


def fresh_database(backend: str, admin_url: str, work_dir: Path) -> str:
    """An empty database: the SQLite file ``work_dir/http.db`` (and its counters' file), or ``PG_DATABASE``."""
    if backend == "sqlite":
        for name in ("http.db", "limits.sqlite"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work_dir / name}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{work_dir / 'http.db'}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=PG_DATABASE).render_as_string(hide_password=False)


def drop_database(backend: str, admin_url: str) -> None:
    if backend == "postgres":
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        admin.dispose()


def settle(engine: Engine) -> None:
    """After a bulk insert: what autovacuum (PostgreSQL) or the next checkpoint (SQLite) would do anyway."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def issue(engine: Engine, settings: Settings, wave_code: str, count: int) -> list[str]:
    """``count`` fresh receipt codes of the open wave, spread over UNITS (each with its first field)."""
    fields_of = {u.code: u.fields[0] for u in province.load().units if u.code in UNITS}
    fresh: list[str] = []
    with Session(engine) as session, session.begin():
        targets = []
        for code in UNITS:
            unit_id = session.scalar(select(col(Unit.id)).where(col(Unit.code) == code))
            field_id = session.scalar(select(col(ProcedureField.id)).where(col(ProcedureField.code) == fields_of[code]))
            assert unit_id is not None and field_id is not None
            targets.append((unit_id, field_id))
        done = 0
        while done < count:
            unit_id, field_id = targets[(done // 10_000) % len(targets)]
            n = min(10_000, count - done)
            fresh += issue_receipt_codes(
                session,
                wave_code=wave_code,
                unit_id=unit_id,
                field_id=field_id,
                count=n,
                valid_days=settings.receipt_code_valid_days,
                actor="bench",
            )
            done += n
    return fresh


@dataclass(frozen=True)
class Page:
    """A survey page a phone opens: its address, what its form token is bound to, its questionnaire version."""

    path: str
    form_target: str
    version_id: int

    @property
    def code_hash(self) -> str | None:
        return self.form_target.removeprefix("r:") if self.form_target.startswith("r:") else None


def receipt_pages(engine: Engine, settings: Settings, wave_code: str, count: int) -> list[Page]:
    """``count`` fresh receipt codes of the wave, as pages (all of one questionnaire version)."""
    fresh = issue(engine, settings, wave_code, count)
    version_id = survey_of(engine, f"/r/{fresh[0]}", settings.today()).version_id
    return [Page(f"/r/{c}", f"r:{codes.code_hash(c)}", version_id) for c in fresh]


def counter_pages(engine: Engine, today: date) -> list[Page]:
    """The counters whose poster opens a survey today, as pages."""
    pages = []
    with engine.connect() as conn:
        tokens = conn.execute(select(col(ServicePoint.counter_token)).where(col(ServicePoint.active))).scalars()
        for token in tokens:
            try:
                target = services.resolve_counter(conn, token, today)
            except (services.SurveyClosed, NotFoundError):
                continue
            pages.append(Page(f"/c/{token}", target.form_target, target.version_id))
    return pages


def survey_of(engine: Engine, path: str, today: date) -> services.SurveyTarget:
    """What the page at ``/r/<code>`` or ``/c/<token>`` opens."""
    kind, key = path.strip("/").split("/")
    with engine.connect() as conn:
        return (services.resolve_receipt if kind == "r" else services.resolve_counter)(conn, key, today)


def answer_sheet(spec: Spec) -> str:
    """A complete, valid answer to the page, as the browser sends it (empty comment boxes included)."""
    answers = {**full_answers(spec), **{f"q_{i.id}": "" for i in spec.items if i.type == "text"}}
    return urlencode(answers, doseq=True)


@dataclass
class PostLines:
    """The submissions one run may send, one line each: the page, its body, and the key its response is stored
    under (the hash of its form token's nonce); ``code_hashes`` the receipt codes they spend (if receipts)."""

    paths: list[str]
    bodies: list[str]
    keys: list[str]
    code_hashes: list[str | None]

    def write(self, path: Path) -> None:
        with path.open("w", encoding="ascii") as fh:
            fh.writelines(f"{p}\t{b}\n" for p, b in zip(self.paths, self.bodies, strict=True))


def post_lines(secret: str, pages: list[Page], answers: dict[int, str]) -> PostLines:
    """One submission per page, each with a fresh form token signed with ``secret``.

    ``answers`` maps a questionnaire version to its answer sheet (``answer_sheet``)."""
    lines = PostLines([], [], [], [])
    for page in pages:
        token = codes.sign_form_token(secret, page.form_target)
        lines.paths.append(page.path)
        lines.bodies.append(f"{urlencode({'token': token, 'lang': 'vi'})}&{answers[page.version_id]}")
        lines.keys.append(hashlib.sha256(token.split(".")[1].encode("ascii")).hexdigest())
        lines.code_hashes.append(page.code_hash)
    return lines


# --- the count afterwards ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What the runs of one submission path sent, and what came back."""

    keys: set[str] = field(default_factory=set)  # every submission sent
    code_hashes: set[str] = field(default_factory=set)
    ok_keys: set[str] = field(default_factory=set)  # answered 2xx/3xx, known one by one (load generator)
    ok_counted: int = 0  # answered 2xx/3xx, known as a count only (wrk)
    counted_keys: set[str] = field(default_factory=set)  # what the wrk runs sent
    unanswered: int = 0  # sent by wrk, not answered when it stopped

    def note(self, batch: PostLines, sent: Iterable[int], ok: list[int] | None) -> None:
        """Which lines of ``batch`` a run sent, and those it saw answered 2xx/3xx (None: wrk, which only counts)."""
        for i in sent:
            self.keys.add(batch.keys[i])
            if (code_hash := batch.code_hashes[i]) is not None:
                self.code_hashes.add(code_hash)
            if ok is None:
                self.counted_keys.add(batch.keys[i])
        self.ok_keys.update(batch.keys[i] for i in ok or ())


@dataclass
class Ledger:
    """The database against the answers, for one submission path."""

    label: str
    sent: int
    ok: int
    stored: int
    spent: int | None  # receipt codes spent (receipts only: must equal stored)
    spent_unsent: int  # codes spent that no run sent (must be 0)
    lost: tuple[int, int]  # answered 2xx/3xx and not stored: exact when both ends agree

    @property
    def correct(self) -> bool:
        spent_ok = self.spent is None or self.spent == self.stored
        return self.lost[1] == 0 and self.spent_unsent == 0 and spent_ok


def responses_after(engine: Engine, last_id: int) -> list[str | None]:
    """The submission keys of the responses stored after ``last_id``."""
    with Session(engine) as s:
        return list(s.scalars(select(col(Response.submission_key)).where(col(Response.id) > last_id)))


def last_response_id(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.max(Response.id))) or 0)


def spent_hashes(engine: Engine) -> set[str]:
    with Session(engine) as s:
        return set(s.scalars(select(col(ReceiptCode.code_hash)).where(col(ReceiptCode.spent).is_(True))))


def ledger(label: str, sent: Sent, stored_keys: set[str], newly_spent: set[str] | None) -> Ledger:
    mine = stored_keys & sent.keys
    lost_known = len(sent.ok_keys - mine)
    stored_counted = len(mine & sent.counted_keys)
    low = max(0, sent.ok_counted - stored_counted)
    high = min(sent.ok_counted, max(0, sent.ok_counted - stored_counted + sent.unanswered))
    return Ledger(
        label=label,
        sent=len(sent.keys),
        ok=len(sent.ok_keys) + sent.ok_counted,
        stored=len(mine),
        spent=None if newly_spent is None else len(newly_spent),
        spent_unsent=0 if newly_spent is None else len(newly_spent - sent.code_hashes),
        lost=(lost_known + low, lost_known + high),
    )


def sessions_opened(admin_url: str) -> int:
    """Sessions PostgreSQL has opened on the bench database so far (each one a new server process)."""
    admin = create_engine(admin_url)
    try:
        with admin.connect() as conn:
            sql = text("SELECT sessions FROM pg_stat_database WHERE datname = :name")
            return int(conn.execute(sql, {"name": PG_DATABASE}).scalar() or 0)
    finally:
        admin.dispose()


def limiter_reset(redis_url: str | None, counters_file: Path | None) -> None:
    """Empty the rate limiter's store: the Redis database, or the SQLite counters file."""
    if redis_url:
        redis.Redis.from_url(redis_url).flushdb()
    elif counters_file:
        with sqlite3.connect(counters_file, timeout=10) as conn:
            conn.execute("DELETE FROM counter")


def limiter_count(redis_url: str | None, counters_file: Path | None) -> int:
    """The counters in the rate limiter's store (one per client address seen since the reset)."""
    if redis_url:
        return int(redis.Redis.from_url(redis_url).dbsize())
    assert counters_file is not None
    with sqlite3.connect(counters_file, timeout=10) as conn:
        return int(conn.execute("SELECT count(*) FROM counter").fetchone()[0])
