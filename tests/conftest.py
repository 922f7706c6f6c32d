"""Fixtures: real SQLite files and, where reachable, a real PostgreSQL database made for this run."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from survey.app import create_app
from survey.auth.services import create_user
from survey.db.engine import make_engine, migrate
from survey.db.models import Unit, UnitLevel, pk
from survey.demo.load import DemoSummary, load_demo
from survey.limits import Counters, MemoryCounters
from survey.settings import Settings, get_settings
from tests.factories import World, build_world

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_ADMIN_URL = os.environ.get("SIPAS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
TEST_SECRET = "test-secret-" + "x" * 40
# Debian's chromium as root in a closed network: no sandbox, no GPU, and no background calls home.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def unavailable(reason: str) -> None:
    """Skip with a visible reason; in CI the same condition is a failure, since CI has every server."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


def make_settings(url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": url,
        "secret_key": TEST_SECRET,
        "base_url": "http://testserver",
        "prewarm_scores": False,  # tests that want it ask for it; others should not pay for it
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def make_production_settings(url: str, **overrides: object) -> Settings:
    """Settings a production deployment could start with: a random secret and the test client's host."""
    values: dict[str, object] = {
        "environment": "production",
        "secret_key": secrets.token_urlsafe(48),
        "allowed_hosts": ["testserver.local"],
        "base_url": "https://testserver.local",
    }
    values.update(overrides)
    return make_settings(url, **values)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "sipas.db"
    url = f"sqlite:///{path}"
    migrate(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server, migrated, dropped at the end of the run."""
    admin_url = make_url(POSTGRES_ADMIN_URL)
    name = f"sipas_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable(f"PostgreSQL not reachable at {admin_url.render_as_string(hide_password=True)}: {exc}")
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_url(backend: str, request: pytest.FixtureRequest) -> str:
    fixture = "postgres_url" if backend == "postgres" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def settings(db_url: str) -> Settings:
    return make_settings(db_url)


@pytest.fixture(scope="session")
def world(engine: Engine) -> World:
    return build_world(engine)


@pytest.fixture()
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings, engine, counters=MemoryCounters()), raise_server_exceptions=False) as c:
        yield c


TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')


def form_token(html: str) -> str:
    match = TOKEN_RE.search(html)
    assert match, "the survey page has no form token"
    return match.group(1)


DEMO_RESPONSES = 6000


def load_small_demo(path: Path, *, seed: int = 11) -> tuple[Engine, DemoSummary, str]:
    """The demo province with 6,000 responses in a SQLite file (about a second)."""
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    summary = load_demo(engine, make_settings(url), seed=seed, responses=DEMO_RESPONSES, today=date(2026, 11, 22))
    return engine, summary, url


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, DemoSummary, str]]:
    engine, summary, url = load_small_demo(tmp_path_factory.mktemp("demo") / "demo.db")
    yield engine, summary, url
    engine.dispose()


@contextmanager
def cli_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, url: str) -> Iterator[None]:
    """Point the ``sipas`` command at ``url``: a clean SIPAS_* environment, no stray .env, fresh settings."""
    for name in list(os.environ):
        if name.upper().startswith("SIPAS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIPAS_DATABASE_URL", url)
    monkeypatch.setenv("SIPAS_ENVIRONMENT", "test")
    monkeypatch.setenv("SIPAS_SECRET_KEY", TEST_SECRET)
    monkeypatch.setenv("SIPAS_BASE_URL", "http://testserver")
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


# --- Staff accounts (sign-in, sessions, access) ---------------------------------------------------------------

STAFF_PASSWORD = "a long enough test password"
CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: str
    unit_id: int
    password: str = STAFF_PASSWORD


@dataclass(frozen=True)
class StaffWorld:
    """Two provinces. In the first: a district with a commune (the officer's and leader's scope) and a
    sibling district outside it. Accounts: an admin of the first province, an officer and a leader of the
    district, an officer of the sibling district, and an admin of the second province."""

    root_id: int
    district_id: int
    commune_id: int
    other_district_id: int
    other_root_id: int
    admin: Account
    officer: Account
    leader: Account
    other_officer: Account
    other_admin: Account


def _staff_unit(s: Session, level_id: int, name: str, parent: Unit | None = None) -> Unit:
    unit = Unit(
        code=f"S{secrets.token_hex(4)}",
        name_vi=f"Đơn vị {name}",
        name_en=f"Unit {name}",
        level_id=level_id,
        parent_id=parent.id if parent else None,
    )
    s.add(unit)
    s.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    s.flush()
    return unit


def make_account(engine: Engine, role: str, unit_id: int, *, prefix: str = "u") -> Account:
    """A fresh active account with ``STAFF_PASSWORD`` (a unique username), created as the CLI would."""
    with Session(engine) as s:
        user = create_user(
            s,
            username=f"{prefix}{secrets.token_hex(4)}",
            password=STAFF_PASSWORD,
            role=role,
            unit_id=unit_id,
            actor="test",
        )
        s.commit()
        return Account(id=pk(user), username=user.username, role=user.role, unit_id=user.unit_id)


@pytest.fixture(scope="session")
def staff_world(engine: Engine) -> StaffWorld:
    with Session(engine, expire_on_commit=False) as s:
        level = UnitLevel(code=f"lv{secrets.token_hex(4)}", name_vi="Cấp", name_en="Level", depth=0)
        s.add(level)
        s.flush()
        root = _staff_unit(s, pk(level), "tỉnh")
        district = _staff_unit(s, pk(level), "huyện", root)
        commune = _staff_unit(s, pk(level), "xã", district)
        other_district = _staff_unit(s, pk(level), "huyện khác", root)
        other_root = _staff_unit(s, pk(level), "tỉnh khác")
        s.commit()
    return StaffWorld(
        root_id=pk(root),
        district_id=pk(district),
        commune_id=pk(commune),
        other_district_id=pk(other_district),
        other_root_id=pk(other_root),
        admin=make_account(engine, "admin", pk(root), prefix="admin"),
        officer=make_account(engine, "officer", pk(district), prefix="officer"),
        leader=make_account(engine, "leader", pk(district), prefix="leader"),
        other_officer=make_account(engine, "officer", pk(other_district), prefix="officer"),
        other_admin=make_account(engine, "admin", pk(other_root), prefix="admin"),
    )


@contextmanager
def staff_client(
    settings: Settings, engine: Engine, store: Store | None = None, counters: Counters | None = None
) -> Iterator[TestClient]:
    """A client of an app whose sessions live in ``store`` and sign-in counters in ``counters`` (fresh ones)."""
    app = create_app(
        settings,
        engine,
        session_store=store if store is not None else MemoryStore(),
        counters=counters if counters is not None else MemoryCounters(),
    )
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture()
def memory_store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture()
def staff(
    settings: Settings, engine: Engine, memory_store: MemoryStore, memory_counters: MemoryCounters
) -> Iterator[TestClient]:
    """A browser on the staff pages, not signed in; its sessions live in the ``memory_store`` fixture and its
    sign-in counters in ``memory_counters``."""
    with staff_client(settings, engine, memory_store, memory_counters) as c:
        yield c


@pytest.fixture()
def memory_counters() -> MemoryCounters:
    return MemoryCounters()


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def sign_in(client: TestClient, account: Account | str, password: str | None = None, next_path: str = "") -> Any:
    """Open the sign-in page, send the form with its CSRF token; returns the (unfollowed) response."""
    username = account if isinstance(account, str) else account.username
    if password is None:
        password = account.password if isinstance(account, Account) else STAFF_PASSWORD
    form = client.get("/login")
    return client.post(
        "/login",
        data={"username": username, "password": password, "next": next_path, "_csrf_token": csrf_token(form.text)},
        follow_redirects=False,
    )


def signed_in(client: TestClient, account: Account) -> str:
    """Sign ``account`` in (asserting it worked); returns the CSRF token for the forms that follow."""
    response = sign_in(client, account)
    assert response.status_code == 303, response.text[:500]
    return csrf_token(client.get("/staff").text)
