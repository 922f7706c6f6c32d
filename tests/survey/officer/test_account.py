"""The account page: changing one's password, listing and ending one's sessions, idle timeout; on SQLite and
PostgreSQL, with sessions in memory, in files and in Redis."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.passwords import CALENDAR, WeakPassword
from survey.auth.services import authenticate, create_user
from survey.auth.session_index import SEEN, describe_device, index_key, session_ref
from survey.auth.sessions import COOKIE_NAME, STORE_NAME, session_store
from survey.cli import main as cli
from survey.db.models import AuditLog
from survey.limits import MemoryCounters
from survey.settings import Settings
from tests.conftest import (
    STAFF_PASSWORD,
    StaffWorld,
    cli_settings,
    csrf_token,
    make_account,
    make_settings,
    sign_in,
    signed_in,
    staff_client,
    unavailable,
)

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
COCCOC_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) coc_coc_browser/130.0 "
    "Chrome/130.0 Mobile Safari/537.36"
)
NEW_PASSWORD = "mưa phùn trên sông Vàm Cỏ"


def _get(client: TestClient, store: Store, key: str) -> bytes | None:
    value: bytes | None = client.blocking_portal.call(store.get, key)
    return value


def _browsers(
    stack: ExitStack, settings: Settings, engine: Engine, store: Store | Callable[[], Store], agents: list[str]
) -> list[TestClient]:
    """Browsers with these User-Agents on apps sharing one session store (``store`` or handles from a factory)."""
    counters = MemoryCounters()
    clients = []
    for agent in agents:
        handle = store() if callable(store) else store
        c = stack.enter_context(staff_client(settings, engine, handle, counters))
        c.headers["user-agent"] = agent
        clients.append(c)
    return clients


def _change(client: TestClient, current: str, new: str, confirm: str | None = None, lang: str = "vi") -> object:
    token = csrf_token(client.get("/staff/account/password").text)
    return client.post(
        f"/staff/account/password?lang={lang}",
        data={
            "_csrf_token": token,
            "current": current,
            "password": new,
            "confirm": new if confirm is None else confirm,
        },
        follow_redirects=False,
    )


# --- changing one's password ---------------------------------------------------------------------------------


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    account = make_account(engine, "leader", staff_world.commune_id)
    store = MemoryStore()
    with ExitStack() as stack:
        here, elsewhere = _browsers(stack, settings, engine, store, [CHROME_WINDOWS, SAFARI_IPHONE])
        signed_in(here, account)
        signed_in(elsewhere, account)
        old_here, old_elsewhere = here.cookies.get(COOKIE_NAME), elsewhere.cookies.get(COOKIE_NAME)
        assert old_here and old_elsewhere
        response = _change(here, STAFF_PASSWORD, NEW_PASSWORD)
        assert response.status_code == 303  # type: ignore[attr-defined]
        assert response.headers["location"] == "/staff/account?done=password"  # type: ignore[attr-defined]
        page = here.get("/staff/account?done=password")
        assert page.status_code == 200 and "Mật khẩu của bạn đã được đổi" in page.text
        # This browser goes on under a new id; the other one is out, and its entry is gone from the store.
        assert here.cookies.get(COOKIE_NAME) not in (None, old_here)
        assert _get(here, store, old_here) is None and _get(here, store, old_elsewhere) is None
        assert elsewhere.get("/staff", follow_redirects=False).status_code == 303
        assert sign_in(elsewhere, account).status_code == 400  # the old password
        assert sign_in(elsewhere, account, password=NEW_PASSWORD).status_code == 303
    with Session(engine) as s:
        entry = s.scalars(
            select(AuditLog).where(
                col(AuditLog.entity_id) == str(account.id), col(AuditLog.action) == "change_password"
            )
        ).one()
        assert entry.actor == account.username and entry.user_id == account.id
        assert "argon2" not in json.dumps([entry.before, entry.after]) and NEW_PASSWORD not in json.dumps(entry.after)


def test_the_current_password_is_required_and_guessing_it_backs_off(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    account = make_account(engine, "officer", staff_world.district_id)
    with staff_client(settings, engine, counters=MemoryCounters(clock=lambda: 1000.0)) as c:
        signed_in(c, account)
        statuses = [_change(c, f"a wrong guess {i}", NEW_PASSWORD).status_code for i in range(6)]  # type: ignore[attr-defined]
        assert statuses == [400, 400, 400, 400, 429, 429]
        wrong = _change(c, "another wrong one", NEW_PASSWORD, lang="en")
        assert "wait" in wrong.text  # type: ignore[attr-defined]
        assert c.get("/staff").status_code == 200  # still signed in
    with Session(engine) as s:
        assert authenticate(s, username=account.username, password=STAFF_PASSWORD) is not None


@pytest.mark.parametrize(
    ("new", "confirm", "expected"),
    [
        ("Summer2026!!", None, "A season, a month or a day with a year or a few symbols is easy to guess"),
        ("P@ssw0rd2026!", None, "This password is too common or too easy to guess"),
        ("short", None, "Use at least 12 characters."),
        (STAFF_PASSWORD, None, "Choose a new password, not the current one."),
        (NEW_PASSWORD, "something else", "The two passwords are not the same."),
    ],
)
def test_a_weak_or_mistyped_new_password_comes_back_with_the_reason(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, new: str, confirm: str | None, expected: str
) -> None:
    account = make_account(engine, "leader", staff_world.district_id)
    signed_in(staff, account)
    response = _change(staff, STAFF_PASSWORD, new, confirm, lang="en")
    assert response.status_code == 400  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert text.count(expected) == 2  # in the summary and beside the field
    assert "Error: Change your password" in text
    assert f'value="{new}"' not in text
    with Session(engine) as s:
        assert authenticate(s, username=account.username, password=STAFF_PASSWORD) is not None


def test_every_way_to_set_a_password_refuses_a_calendar_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, engine: Engine, staff_world: StaffWorld
) -> None:
    with Session(engine) as s, pytest.raises(WeakPassword) as info:
        create_user(
            s,
            username=f"s{secrets.token_hex(3)}",
            password="Summer2026!!",
            role="leader",
            unit_id=staff_world.commune_id,
            actor="t",
        )
    assert [p.message for p in info.value.problems] == [CALENDAR]
    account = make_account(engine, "leader", staff_world.commune_id)
    with cli_settings(monkeypatch, tmp_path, db_url):
        result = CliRunner().invoke(
            cli, ["user", "set-password", "--username", account.username, "--password-stdin"], input="Winter2025##\n"
        )
    assert result.exit_code == 1 and "A season, a month or a day" in result.output
    with staff_client(make_settings(db_url), engine) as c:
        token = signed_in(c, staff_world.admin)
        made = c.post(
            "/staff/users/new",
            data={
                "_csrf_token": token,
                "username": f"s{secrets.token_hex(3)}",
                "role": "leader",
                "unit_id": str(staff_world.commune_id),
                "password": "Summer2026!!",
                "confirm": "Summer2026!!",
            },
        )
    assert made.status_code == 400 and "Mùa, tháng hay ngày kèm theo năm" in made.text


# --- the sessions page -------------------------------------------------------------------------------------------


StoreFactory = Callable[[], Store]


@pytest.fixture(params=["memory", "files", "redis"])
def stores(request: pytest.FixtureRequest, tmp_path: Path, settings: Settings) -> Iterator[StoreFactory]:
    """Handles on one session store, one per browser (a Redis client belongs to the event loop that made it)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
    elif request.param == "files":
        yield lambda: FileStore(tmp_path / "sessions", create_directories=True)
    else:
        import redis

        try:
            redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
        except redis.RedisError as exc:
            unavailable(f"Redis not reachable at 127.0.0.1:6379: {exc}")
        namespace = f"sipastest{secrets.token_hex(4)}"
        redis_settings = make_settings(settings.database_url, redis_url="redis://127.0.0.1:6379/0")
        yield lambda: session_store(redis_settings, namespace=namespace)
        direct = redis.Redis(host="127.0.0.1", port=6379)
        for key in direct.scan_iter(f"{namespace}:*"):
            direct.delete(key)
        direct.close()


def test_the_sessions_page_lists_ones_sessions_and_ends_them(
    settings: Settings, engine: Engine, staff_world: StaffWorld, stores: StoreFactory
) -> None:
    account = make_account(engine, "admin", staff_world.root_id)
    stranger = make_account(engine, "admin", staff_world.root_id)
    with ExitStack() as stack:
        here, phone, tablet, theirs = _browsers(
            stack, settings, engine, stores, [CHROME_WINDOWS, SAFARI_IPHONE, COCCOC_ANDROID, CHROME_WINDOWS]
        )
        for browser in (here, phone, tablet):
            signed_in(browser, account)
        signed_in(theirs, stranger)
        page = here.get("/staff/account?lang=en")
        assert page.status_code == 200
        rows = re.findall(r"<tr>\n<td>(.*?)</td>", page.text)
        assert len(rows) == 3 and "this browser" in rows[0] and rows[0].startswith("Chrome on Windows")
        assert {r.split(" <span")[0] for r in rows} == {"Chrome on Windows", "Safari on iPhone", "Cốc Cốc on Android"}
        assert "testclient" not in page.text and not re.search(r"\b\d{1,3}(\.\d{1,3}){3}\b", page.text)
        refs = re.findall(r'name="session" value="([0-9a-f]+)"', page.text)
        assert len(refs) == 2  # no end button for this browser's own session
        phone_ref = session_ref(phone.cookies.get(COOKIE_NAME) or "")
        assert phone_ref in refs and (phone.cookies.get(COOKIE_NAME) or "-") not in page.text
        token = csrf_token(page.text)
        # Another account's session cannot be ended from here, even by its reference.
        their_ref = session_ref(theirs.cookies.get(COOKIE_NAME) or "")
        assert (
            here.post("/staff/account/sessions/end", data={"_csrf_token": token, "session": their_ref}).status_code
            == 200
        )
        assert theirs.get("/staff").status_code == 200
        # End the phone's session: it is out at once.
        ended = here.post(
            "/staff/account/sessions/end", data={"_csrf_token": token, "session": phone_ref}, follow_redirects=False
        )
        assert ended.status_code == 303 and ended.headers["location"] == "/staff/account?done=ended"
        assert phone.get("/staff", follow_redirects=False).status_code == 303
        assert tablet.get("/staff").status_code == 200
        # Sign out everywhere else: the tablet is out too, this browser goes on.
        signed_in(phone, account)
        others = here.post("/staff/account/sessions/end-others", data={"_csrf_token": token}, follow_redirects=False)
        assert others.status_code == 303
        for browser in (phone, tablet):
            assert browser.get("/staff", follow_redirects=False).status_code == 303
        assert here.get("/staff").status_code == 200 and theirs.get("/staff").status_code == 200
        alone = here.get("/staff/account?lang=en")
        assert len(re.findall(r"<tr>\n<td>", alone.text)) == 1 and "Sign out everywhere else" not in alone.text
        listed = json.loads(_get(here, here.app.stores.get(STORE_NAME), index_key(account.id)) or b"{}")
        assert set(listed) == {here.cookies.get(COOKIE_NAME)}


def test_a_session_unused_for_the_idle_timeout_is_over(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    store = MemoryStore()
    with staff_client(settings, engine, store) as c:
        signed_in(c, staff_world.officer)
        session_id = c.cookies.get(COOKIE_NAME)
        assert session_id
        idle_s = settings.session_idle_minutes * 60

        def last_used(seconds_ago: float) -> None:
            data = json.loads(_get(c, store, session_id) or b"{}")
            data[SEEN] = time.time() - seconds_ago
            c.blocking_portal.call(partial(store.set, session_id, json.dumps(data), expires_in=3600))

        last_used(idle_s - 90)  # used 28.5 minutes ago: still valid, and "last used" moves to now
        assert c.get("/staff").status_code == 200
        seen = json.loads(_get(c, store, session_id) or b"{}")[SEEN]
        assert time.time() - seen < 5
        last_used(30)  # used half a minute ago: no write for that (kept to the minute)
        before = _get(c, store, session_id)
        assert c.get("/staff").status_code == 200 and _get(c, store, session_id) == before
        last_used(idle_s + 1)  # unused for longer than the idle timeout: over
        response = c.get("/staff", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        assert _get(c, store, session_id) is None
        assert session_id not in json.loads(_get(c, store, index_key(staff_world.officer.id)) or b"{}")


def test_the_idle_timeout_is_a_setting(db_url: str, engine: Engine, staff_world: StaffWorld) -> None:
    settings = make_settings(db_url, session_idle_minutes=5)
    store = MemoryStore()
    with staff_client(settings, engine, store) as c:
        signed_in(c, staff_world.leader)
        assert "after 5 minutes without use" in c.get("/staff/account?lang=en").text
        session_id = c.cookies.get(COOKIE_NAME) or ""
        data = json.loads(_get(c, store, session_id) or b"{}")
        data[SEEN] = time.time() - 5 * 60 - 1
        c.blocking_portal.call(partial(store.set, session_id, json.dumps(data), expires_in=3600))
        assert c.get("/staff", follow_redirects=False).status_code == 303


def test_a_session_missing_from_its_accounts_list_is_over(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    store = MemoryStore()
    with staff_client(settings, engine, store) as c:
        signed_in(c, staff_world.leader)
        c.blocking_portal.call(store.delete, index_key(staff_world.leader.id))
        assert c.get("/staff", follow_redirects=False).status_code == 303


def test_a_cookie_shaped_like_a_list_key_touches_nothing(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    store = MemoryStore()
    with staff_client(settings, engine, store) as victim, staff_client(settings, engine, store) as attacker:
        signed_in(victim, staff_world.admin)
        key = index_key(staff_world.admin.id)
        listed = _get(victim, store, key)
        assert listed
        attacker.cookies.set(COOKIE_NAME, key, domain="testserver.local")
        assert attacker.get("/staff", follow_redirects=False).status_code == 303
        assert sign_in(attacker, staff_world.leader).status_code == 303  # signing in rotates the planted id away
        attacker.cookies.set(COOKIE_NAME, key, domain="testserver.local")
        attacker.post("/logout", data={"_csrf_token": csrf_token(attacker.get("/login").text)})
        assert _get(victim, store, key) == listed
        assert victim.get("/staff").status_code == 200


def test_devices_are_described_coarsely() -> None:
    assert describe_device(CHROME_WINDOWS) == {"browser": "Chrome", "os": "Windows"}
    assert describe_device(SAFARI_IPHONE) == {"browser": "Safari", "os": "iPhone"}
    assert describe_device(COCCOC_ANDROID) == {"browser": "Cốc Cốc", "os": "Android"}
    assert describe_device("curl/8.5.0") == {"browser": None, "os": None}
    assert describe_device(None) == {"browser": None, "os": None}


def test_every_account_page_string_has_a_vietnamese_translation() -> None:
    from babel.messages.extract import extract_from_file

    from survey.i18n import gettext_for

    root = Path(__file__).resolve().parents[3]
    sources = [
        *(("python", p) for p in sorted((root / "survey" / "officer" / "account").glob("*.py"))),
        ("python", root / "survey" / "auth" / "session_index.py"),
        ("python", root / "survey" / "auth" / "second_factor.py"),
        ("python", root / "survey" / "auth" / "passwords.py"),
        *(("python", p) for p in sorted((root / "survey" / "officer" / "signin").glob("*.py"))),
        ("jinja2", root / "templates" / "officer" / "login_code.html"),
        *(("jinja2", p) for p in sorted((root / "templates" / "officer" / "account").glob("*.html"))),
        ("jinja2", root / "templates" / "layouts" / "_staff.html"),
    ]
    messages = {
        m
        for method, path in sources
        for _line, m, _comments, _ctx in extract_from_file(method, str(path), keywords={"_": None, "N_": None})
        if isinstance(m, str) and m
    }
    vi = gettext_for("vi")
    untranslated = sorted(m for m in messages if vi(m) == m)
    assert not untranslated, f"add to survey/locales/vi/LC_MESSAGES/account.po: {untranslated}"
