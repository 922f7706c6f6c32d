"""The engine, sessions, and migrating a database to the newest schema."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


# Connections kept open: as many as the citizen pages' worker threads (``survey.db.bounded``), so that a burst
# does not open and close a connection per request beyond the pool (a new PostgreSQL session costs a process).
POOL_SIZE = 16


def make_engine(
    url: str,
    *,
    echo: bool = False,
    statement_timeout_s: float | None = None,
    lock_timeout_s: float | None = None,
    pool_timeout_s: float = 30.0,
    connect_timeout_s: int = 3,
) -> Engine:
    """An engine for ``url``. SQLite gets WAL, foreign keys, a busy timeout, and its folder created.

    The web app bounds every wait: ``lock_timeout_s`` is how long a statement waits for another transaction's
    lock (PostgreSQL ``lock_timeout``, SQLite's busy timeout), ``statement_timeout_s`` how long a PostgreSQL
    statement may run, ``pool_timeout_s`` how long a request waits for a pooled connection, and libpq gives up
    connecting after ``connect_timeout_s`` (a server that accepts connections but never answers). Without
    them (the command line, migrations) a statement waits as long as it needs.
    """
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if sa_url.database and sa_url.database != ":memory:":
            Path(sa_url.database).parent.mkdir(parents=True, exist_ok=True)
        busy_ms = int((lock_timeout_s if lock_timeout_s is not None else 30.0) * 1000)
        engine = create_engine(
            url,
            echo=echo,
            pool_size=POOL_SIZE,
            pool_timeout=pool_timeout_s,
            connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        return engine
    options = []
    if statement_timeout_s is not None:
        options.append(f"-c statement_timeout={int(statement_timeout_s * 1000)}")
    if lock_timeout_s is not None:
        options.append(f"-c lock_timeout={int(lock_timeout_s * 1000)}")
    connect_args: dict[str, Any] = {"connect_timeout": max(2, connect_timeout_s)}
    if options:
        connect_args["options"] = " ".join(options)
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=POOL_SIZE,
        max_overflow=14,
        pool_timeout=pool_timeout_s,
        connect_args=connect_args,
    )


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (creating it, for SQLite)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def schema_problem(engine: Engine) -> str | None:
    """None when the database is at the newest migration; otherwise what is wrong, in words."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return None
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        return f"the database at {where} has no SIPAS tables yet: run `sipas db upgrade` (or `sipas demo`)"
    return f"the database at {where} is at schema {current}, this version needs {head}: run `sipas db upgrade`"
