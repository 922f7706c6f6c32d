"""Staff accounts: password hashing and policy, sign-in and lockout, sessions, CSRF, redirects, auditing."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import unicodedata
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from babel.messages.extract import extract_from_file
from click.testing import CliRunner
from litestar.middleware.csrf import generate_csrf_token
from litestar.stores.file import FileStore
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth import passwords
from survey.auth.csrf import csrf_config
from survey.auth.guards import ensure_in_scope, safe_next, unit_scope_path
from survey.auth.services import authenticate, deactivate, set_password
from survey.auth.sessions import COOKIE_NAME, ISSUED, session_config, session_store
from survey.auth.throttle import PREFIX
from survey.cli import main as cli
from survey.db.engine import make_engine, migrate
from survey.db.models import AuditLog, Unit, UnitLevel, User, pk
from survey.demo.load import DemoSummary
from survey.errors import ForbiddenError, NotFoundError
from survey.i18n import gettext_for
from survey.limits import MemoryCounters, RedisCounters
from survey.officer.services import audit_page
from survey.settings import Settings
from tests.conftest import (
    STAFF_PASSWORD,
    Account,
    StaffWorld,
    cli_settings,
    csrf_token,
    make_account,
    make_production_settings,
    make_settings,
    sign_in,
    signed_in,
    staff_client,
    unavailable,
)

ROOT = Path(__file__).resolve().parents[3]
TITLE_RE = re.compile(r"<title>(.*?)</title>", re.S)


def _title(html: str) -> str:
    match = TITLE_RE.search(html)
    assert match, html[:300]
    return match.group(1)


def _audit_rows(engine: Engine, user_id: int) -> list[AuditLog]:
    with Session(engine) as s:
        return list(
            s.scalars(
                select(AuditLog)
                .where(col(AuditLog.entity) == "user", col(AuditLog.entity_id) == str(user_id))
                .order_by(col(AuditLog.id))
            )
        )


def _stored(client: TestClient, store: MemoryStore, key: str) -> bytes | None:
    value: bytes | None = client.blocking_portal.call(store.get, key)
    return value


# --- passwords ----------------------------------------------------------------------------------------------


def test_passwords_are_argon2id_hashes_that_verify_only_the_right_password() -> None:
    stored = passwords.hash_password("Mật khẩu rất dài 2026")
    assert stored.startswith("$argon2id$")
    assert "Mật khẩu" not in stored
    assert passwords.verify_password(stored, "Mật khẩu rất dài 2026").ok
    assert not passwords.verify_password(stored, "Mật khẩu rất dài 2025").ok
    # The same letters typed with combining diacritics (NFD) still match.
    assert passwords.verify_password(stored, unicodedata.normalize("NFD", "Mật khẩu rất dài 2026")).ok
    assert not passwords.verify_password("not-a-hash", "anything at all").ok


def test_an_unknown_user_costs_a_verification_too() -> None:
    known = passwords.hash_password(STAFF_PASSWORD)

    def fastest(stored: str | None) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            passwords.verify_password(stored, "wrong password here")
            times.append(time.perf_counter() - started)
        return min(times)

    assert fastest(None) > 0.3 * fastest(known)


def test_password_policy_says_what_is_wrong() -> None:
    assert passwords.policy_problems("a long enough test password", username="ana") == []
    short = passwords.policy_problems("short", username="ana")
    assert [p.text() for p in short] == ["Use at least 12 characters."]
    assert short[0].text(gettext_for("vi")) == "Hãy dùng ít nhất 12 ký tự."
    assert [p.message for p in passwords.policy_problems("nguyenvana-2026!", username="nguyenvana")] == [
        "Do not put the username in the password."
    ]
    assert passwords.policy_problems("password1234", username="ana")[0].message.startswith("This password is too")
    assert passwords.policy_problems("aaaaaaaaaaaaaa", username="ana")[0].message.startswith("This password is too")
    assert passwords.policy_problems("x" * 129 + "yz", username="ana")[0].text() == "Use at most 128 characters."
    with pytest.raises(passwords.WeakPassword) as info:
        passwords.check_policy("short", username="ana")
    assert "at least 12 characters" in info.value.message


def test_an_outdated_hash_is_replaced_at_sign_in(engine: Engine, staff_world: StaffWorld) -> None:
    account = make_account(engine, "leader", staff_world.commune_id)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(STAFF_PASSWORD)
    with Session(engine) as s:
        user = s.get(User, account.id)
        assert user is not None
        user.password_hash = weak
        s.commit()
    with Session(engine) as s:
        assert authenticate(s, username=account.username.upper(), password=STAFF_PASSWORD) is not None
        s.commit()
        user = s.get(User, account.id)
        assert user is not None
        assert user.password_hash != weak and "m=65536" in user.password_hash
        assert authenticate(s, username=account.username, password="a wrong password!") is None
        assert authenticate(s, username="nobody-" + secrets.token_hex(3), password=STAFF_PASSWORD) is None


# --- signing in -----------------------------------------------------------------------------------------------


def test_sign_in_goes_to_next_and_the_home_page_says_who_and_where(staff: TestClient, staff_world: StaffWorld) -> None:
    response = sign_in(staff, staff_world.officer, next_path="/staff/audit")
    assert response.status_code == 303
    assert response.headers["location"] == "/staff/audit"
    home = staff.get("/staff")
    assert home.status_code == 200
    assert staff_world.officer.username in home.text
    assert "Cán bộ nghiệp vụ" in home.text  # the role, in Vietnamese by default
    assert "Đơn vị huyện" in home.text  # the unit scope
    assert 'action="/logout"' in home.text and 'href="/staff/audit"' in home.text
    english = staff.get("/staff?lang=en")
    assert '<html lang="en">' in english.text and "Officer" in english.text and "Unit scope" in english.text


def test_a_wrong_password_comes_back_with_an_error_summary(staff: TestClient, staff_world: StaffWorld) -> None:
    response = sign_in(staff, staff_world.admin, password="not the password")
    assert response.status_code == 400
    assert _title(response.text).startswith("Lỗi: Đăng nhập")
    assert 'role="alert"' in response.text
    assert '<a href="#username">Tên đăng nhập hoặc mật khẩu không đúng.</a>' in response.text
    assert f'value="{staff_world.admin.username}"' in response.text  # kept
    assert "not the password" not in response.text  # never echoed
    assert COOKIE_NAME not in staff.cookies
    assert staff.get("/staff", follow_redirects=False).status_code == 303


def test_empty_fields_are_each_named_and_linked(staff: TestClient) -> None:
    page = staff.get("/login?lang=en")
    response = staff.post("/login", data={"username": " ", "password": "", "_csrf_token": csrf_token(page.text)})
    assert response.status_code == 400
    assert _title(response.text).startswith("Error: Sign in")
    assert '<a href="#username">Enter your username.</a>' in response.text
    assert '<a href="#password">Enter your password.</a>' in response.text
    assert 'aria-invalid="true"' in response.text


class FrozenClock:
    """A clock for ``MemoryCounters`` that moves only when told: a back-off never runs out mid-test."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_make_a_stranger_wait_even_with_the_right_password(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    counters = MemoryCounters(clock=FrozenClock())
    account = make_account(engine, "leader", staff_world.district_id)
    with staff_client(settings, engine, counters=counters) as c:
        statuses = [sign_in(c, account, password=f"wrong password {i}").status_code for i in range(5)]
        assert statuses == [400, 400, 400, 400, 429]
        waiting = sign_in(c, account)  # the right password
        assert waiting.status_code == 429 and waiting.headers["retry-after"] == "2"
        assert "Đăng nhập sai quá nhiều lần" in waiting.text and "đợi 2 giây" in waiting.text
        assert COOKIE_NAME not in c.cookies
        key = next(k for k in counters._values if k.startswith(f"{PREFIX}:user:"))
        assert account.username not in key  # a MAC of the name, never the name
        found = c.blocking_portal.call(counters.peek, key)
        assert found is not None and found.count == 5 and found.expires_in == 15 * 60
    # Another account from the same address, in another browser, does not wait (the address limit is higher).
    with staff_client(settings, engine, counters=counters) as other:
        assert sign_in(other, staff_world.leader).status_code == 303


def test_a_successful_sign_in_clears_the_count(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    account = make_account(engine, "leader", staff_world.district_id)
    for i in range(4):
        assert sign_in(staff, account, password=f"wrong password {i}").status_code == 400
    assert sign_in(staff, account).status_code == 303
    staff.cookies.clear()
    for i in range(4):
        assert sign_in(staff, account, password=f"wrong password {i}").status_code == 400
    assert sign_in(staff, account).status_code == 303


def test_failures_from_one_address_slow_it_down_for_every_username(
    db_url: str, engine: Engine, staff_world: StaffWorld
) -> None:
    settings = make_settings(db_url, login_max_failures_per_address=3)
    with staff_client(settings, engine, counters=MemoryCounters(clock=FrozenClock())) as c:
        statuses = []
        for i in range(3):
            c.cookies.clear()  # a new device each time: only the address stays the same
            statuses.append(sign_in(c, f"nobody{i}x{secrets.token_hex(3)}", "some wrong password").status_code)
        response = sign_in(c, staff_world.admin)
        english = c.post(
            "/login?lang=en",
            data={
                "username": staff_world.admin.username,
                "password": STAFF_PASSWORD,
                "_csrf_token": csrf_token(response.text),
            },
        )
    assert statuses == [400, 400, 429]
    assert response.status_code == 429 and COOKIE_NAME not in c.cookies
    assert english.status_code == 429 and "For your security, wait 2 seconds before you try again." in english.text


# --- sessions ---------------------------------------------------------------------------------------------------


def test_sign_in_issues_a_new_session_id_so_a_planted_one_is_useless(
    staff: TestClient, staff_world: StaffWorld, settings: Settings, engine: Engine, memory_store: MemoryStore
) -> None:
    planted = secrets.token_hex(32)
    staff.cookies.set(COOKIE_NAME, planted, domain="testserver.local")
    response = sign_in(staff, staff_world.leader)
    assert response.status_code == 303
    issued = staff.cookies.get(COOKIE_NAME)
    assert issued and issued != planted
    assert _stored(staff, memory_store, planted) is None
    with staff_client(settings, engine, memory_store) as attacker:
        attacker.cookies.set(COOKIE_NAME, planted, domain="testserver.local")
        assert attacker.get("/staff", follow_redirects=False).status_code == 303
    # Signing in again (say, as someone else on the same browser) rotates the id once more.
    first = issued
    assert sign_in(staff, staff_world.officer).status_code == 303
    assert staff.cookies.get(COOKIE_NAME) not in (None, first)
    assert _stored(staff, memory_store, first) is None


def test_the_session_cookie_is_httponly_samesite_and_lasts_the_configured_time(
    staff: TestClient, staff_world: StaffWorld, settings: Settings
) -> None:
    response = sign_in(staff, staff_world.leader)
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(f"{COOKIE_NAME}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))  # type: ignore[union-attr]
    assert settings.session_max_age_minutes * 60 - 5 <= max_age <= settings.session_max_age_minutes * 60
    production = make_production_settings(settings.database_url)
    assert session_config(production).secure and csrf_config(production).cookie_secure
    assert not session_config(settings).secure


def test_sign_out_deletes_the_session_so_a_copied_cookie_is_worthless(
    staff: TestClient, staff_world: StaffWorld, settings: Settings, engine: Engine, memory_store: MemoryStore
) -> None:
    token = signed_in(staff, staff_world.admin)
    old = staff.cookies.get(COOKIE_NAME)
    assert old and _stored(staff, memory_store, old) is not None
    response = staff.post("/logout", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?signed_out=1"
    assert _stored(staff, memory_store, old) is None
    assert "Đã đăng xuất." in staff.get("/login?signed_out=1").text
    with staff_client(settings, engine, memory_store) as thief:
        thief.cookies.set(COOKIE_NAME, old, domain="testserver.local")
        response = thief.get("/staff", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_a_session_older_than_its_lifetime_is_over(
    staff: TestClient, staff_world: StaffWorld, settings: Settings, memory_store: MemoryStore
) -> None:
    signed_in(staff, staff_world.officer)
    session_id = staff.cookies.get(COOKIE_NAME)
    assert session_id
    raw = _stored(staff, memory_store, session_id)
    assert raw is not None
    data = json.loads(raw)
    # Still valid one minute before the end...
    data[ISSUED] = time.time() - settings.session_max_age_minutes * 60 + 60
    staff.blocking_portal.call(partial(memory_store.set, session_id, json.dumps(data), expires_in=3600))
    assert staff.get("/staff").status_code == 200
    # ...and over once its lifetime has passed, however recently it was used.
    data[ISSUED] = time.time() - settings.session_max_age_minutes * 60 - 1
    staff.blocking_portal.call(partial(memory_store.set, session_id, json.dumps(data), expires_in=3600))
    response = staff.get("/staff", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fstaff"
    assert _stored(staff, memory_store, session_id) is None


def test_deactivation_or_a_new_password_ends_open_sessions(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, memory_store: MemoryStore
) -> None:
    account = make_account(engine, "leader", staff_world.district_id)
    signed_in(staff, account)
    old = staff.cookies.get(COOKIE_NAME)
    assert old and _stored(staff, memory_store, old) is not None
    with Session(engine) as s:
        set_password(s, user_id=account.id, password="another long password", actor="test")
        s.commit()
    assert staff.get("/staff", follow_redirects=False).status_code == 303
    assert _stored(staff, memory_store, old) is None
    assert sign_in(staff, account, password="another long password").status_code == 303
    assert staff.get("/staff").status_code == 200
    with Session(engine) as s:
        deactivate(s, user_id=account.id, actor="test")
        s.commit()
    assert staff.get("/staff", follow_redirects=False).status_code == 303
    assert sign_in(staff, account, password="another long password").status_code == 400


def test_citizen_pages_set_no_session_cookie(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert COOKIE_NAME not in response.headers.get("set-cookie", "")


# --- CSRF -------------------------------------------------------------------------------------------------------


def _staff_posts(client: TestClient) -> list[str]:
    app: Any = client.app
    return sorted(
        route.path
        for route in app.routes
        if "POST" in route.methods and route.path.startswith(("/login", "/logout", "/staff"))
    )


def test_every_staff_post_without_a_valid_csrf_token_is_refused(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, settings: Settings
) -> None:
    target = make_account(engine, "leader", staff_world.commune_id)
    paths = _staff_posts(staff)
    assert {"/login", "/logout", "/staff/users/new", "/staff/users/{user_id:int}/deactivate"} <= set(paths)
    token = signed_in(staff, staff_world.admin)
    with staff_client(settings, engine) as other:
        foreign = csrf_token(other.get("/login").text)  # a genuine token, of another browser's cookie
    forged = generate_csrf_token(secret="not the platform's secret")
    # the real token with its last hex digit changed: always a different token
    tampered = token[:-1] + ("1" if token[-1] == "0" else "0")
    assert tampered != token
    form = {
        "username": f"csrf{secrets.token_hex(3)}",
        "role": "leader",
        "unit_id": str(staff_world.commune_id),
        "password": STAFF_PASSWORD,
        "confirm": STAFF_PASSWORD,
    }
    with Session(engine) as s:
        users_before = s.scalar(select(func.count()).select_from(User))
    for path in paths:
        # every path parameter filled: the CSRF check comes before any handler looks the row up
        url = re.sub(r"\{[a-z_]+:int\}", str(target.id), path.replace("{user_id:int}", str(target.id)))
        url = re.sub(r"\{[a-z_]+(:str)?\}", "x", url)
        for bad in (None, "", forged, foreign, tampered):
            data = dict(form, **({"_csrf_token": bad} if bad is not None else {}))
            response = staff.post(url, data=data, follow_redirects=False)
            assert response.status_code == 403, (path, bad, response.status_code)
            assert "Không kiểm tra được biểu mẫu này" in response.text
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(User)) == users_before
        still = s.get(User, target.id)
        assert still is not None and still.active
    assert staff.get("/staff").status_code == 200  # the refused /logout did not sign anyone out
    # A cookie alone is not enough either: the header or the field must match it.
    staff.cookies.delete("sipas_csrf")
    assert staff.post("/logout", data={"_csrf_token": token}).status_code == 403


def test_citizen_and_api_posts_are_outside_csrf(client: TestClient) -> None:
    # Not a 403: the citizen form checks its own token (400 here), the API its key (401).
    assert client.post("/r/ABCD-EFGH-JKLM", data={"token": "x"}).status_code != 403
    assert client.post("/api/v1/receipt-codes", json={}).status_code == 401


# --- redirects --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/staff",
        "/\\evil.example",
        "\\\\evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        "/staff\r\nSet-Cookie: x=1",
        "evil.example",
    ],
)
def test_next_cannot_send_anyone_to_another_site(staff: TestClient, staff_world: StaffWorld, target: str) -> None:
    assert safe_next(target) == "/staff"
    response = sign_in(staff, staff_world.leader, next_path=target)
    assert response.status_code == 303 and response.headers["location"] == "/staff"
    again = staff.get("/login", params={"next": target}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/staff"


def test_anonymous_pages_redirect_to_sign_in_and_back(staff: TestClient, staff_world: StaffWorld) -> None:
    response = staff.get("/staff/audit?page=2", follow_redirects=False)
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == "/login" and parse_qs(location.query) == {"next": ["/staff/audit?page=2"]}
    page = staff.get(response.headers["location"])
    assert 'name="next" value="/staff/audit?page=2"' in page.text
    done = staff.post(
        "/login",
        data={
            "username": staff_world.admin.username,
            "password": STAFF_PASSWORD,
            "next": "/staff/audit?page=2",
            "_csrf_token": csrf_token(page.text),
        },
        follow_redirects=False,
    )
    assert done.headers["location"] == "/staff/audit?page=2"


def test_an_anonymous_post_gets_the_401_page(staff: TestClient) -> None:
    token = csrf_token(staff.get("/login").text)
    response = staff.post("/staff/users/new", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 401
    assert "<h1>Xin đăng nhập</h1>" in response.text and 'href="/login"' in response.text


def test_a_forbidden_page_gets_the_403_page(staff: TestClient, staff_world: StaffWorld) -> None:
    signed_in(staff, staff_world.leader)
    response = staff.get("/staff/users?lang=en")
    assert response.status_code == 403
    assert "<h1>You cannot do this</h1>" in response.text
    assert "Your role does not give access to this page." in response.text


# --- scope helpers ----------------------------------------------------------------------------------------------


def test_scope_is_the_subtree_of_the_users_unit(engine: Engine, staff_world: StaffWorld) -> None:
    with Session(engine) as s:
        officer = s.get(User, staff_world.officer.id)
        assert officer is not None
        district = s.get(Unit, staff_world.district_id)
        assert district is not None
        assert unit_scope_path(s, officer) == district.path
        assert ensure_in_scope(s, officer, staff_world.commune_id).id == staff_world.commune_id
        assert ensure_in_scope(s, officer, staff_world.district_id).id == staff_world.district_id
        with pytest.raises(ForbiddenError):
            ensure_in_scope(s, officer, staff_world.other_district_id)
        with pytest.raises(ForbiddenError):
            ensure_in_scope(s, officer, staff_world.root_id)
        with pytest.raises(NotFoundError):
            ensure_in_scope(s, officer, 10**9)


# --- auditing ---------------------------------------------------------------------------------------------------


def _no_secrets(entry: AuditLog) -> None:
    text = json.dumps([entry.before, entry.after])
    assert "$argon2" not in text and "password_hash" not in text and STAFF_PASSWORD not in text


def test_account_changes_are_audited_without_password_hashes(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    token = signed_in(staff, staff_world.admin)
    username = f"new{secrets.token_hex(3)}"
    form = {
        "_csrf_token": token,
        "username": username,
        "role": "officer",
        "unit_id": str(staff_world.district_id),
        "password": STAFF_PASSWORD,
        "confirm": STAFF_PASSWORD,
    }
    created = staff.post("/staff/users/new", data=form, follow_redirects=False)
    assert created.status_code == 303 and created.headers["location"] == f"/staff/users?created={username}"
    assert f"Đã tạo tài khoản {username}." in staff.get(created.headers["location"]).text
    with Session(engine) as s:
        user = s.scalars(select(User).where(col(User.username) == username)).one()
        user_id = user.id
        assert user.role == "officer" and user.unit_id == staff_world.district_id
    assert user_id is not None
    gone = staff.post(f"/staff/users/{user_id}/deactivate", data={"_csrf_token": token}, follow_redirects=False)
    assert gone.status_code == 303
    with Session(engine) as s:
        set_password(s, user_id=user_id, password="yet another long password", actor="cli")
        s.commit()
    create, deactivation, new_password = _audit_rows(engine, user_id)
    assert (create.action, create.actor, create.user_id) == ("create", staff_world.admin.username, staff_world.admin.id)
    assert create.before is None
    assert create.after == {"username": username, "role": "officer", "unit_id": staff_world.district_id, "active": True}
    assert deactivation.action == "deactivate" and deactivation.user_id == staff_world.admin.id
    assert deactivation.before is not None and deactivation.before["active"] is True
    assert deactivation.after is not None and deactivation.after["active"] is False
    assert new_password.action == "set_password" and new_password.actor == "cli" and new_password.user_id is None
    for entry in (create, deactivation, new_password):
        _no_secrets(entry)
    log = staff.get("/staff/audit")
    assert log.status_code == 200
    rows = re.findall(rf"<td>(\w+)</td>\n<td>user #{user_id}</td>", log.text)
    assert rows == ["set_password", "deactivate", "create"]  # newest first


def test_the_create_form_names_every_problem(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    token = signed_in(staff, staff_world.admin)
    with Session(engine) as s:
        before = s.scalar(select(func.count()).select_from(User))
    response = staff.post(
        "/staff/users/new?lang=en",
        data={"_csrf_token": token, "username": "X", "unit_id": "", "password": "short", "confirm": "other"},
    )
    assert response.status_code == 400
    assert _title(response.text).startswith("Error: Create an account")
    for anchor in ("#username", "#role-admin", "#unit_id", "#password", "#confirm"):
        assert f'<a href="{anchor}">' in response.text, anchor
    assert "Use at least 12 characters." in response.text
    assert 'value="short"' not in response.text and 'value="other"' not in response.text
    taken = staff.post(
        "/staff/users/new",
        data={
            "_csrf_token": token,
            "username": staff_world.leader.username,
            "role": "leader",
            "unit_id": str(staff_world.commune_id),
            "password": STAFF_PASSWORD,
            "confirm": STAFF_PASSWORD,
        },
    )
    assert taken.status_code == 400 and "This username is already taken; choose another." in taken.text
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(User)) == before


def test_officers_read_the_audit_of_their_scope_and_admins_all_of_it(engine: Engine, staff_world: StaffWorld) -> None:
    from survey.auth.services import load_principal, session_fingerprint

    inside = make_account(engine, "leader", staff_world.commune_id)  # created by "test": about a user in scope
    outside = make_account(engine, "leader", staff_world.other_district_id)
    with Session(engine) as s:
        deactivate(s, user_id=inside.id, actor=staff_world.officer.username, actor_id=staff_world.officer.id)
        deactivate(
            s, user_id=outside.id, actor=staff_world.other_officer.username, actor_id=staff_world.other_officer.id
        )
        s.commit()

        def principal(account: Account) -> Any:
            user = s.get(User, account.id)
            assert user is not None
            return load_principal(s, user_id=account.id, fingerprint=session_fingerprint(user.password_hash))

        officer_view = audit_page(s, viewer=principal(staff_world.officer), page_size=10_000)
        admin_view = audit_page(s, viewer=principal(staff_world.admin), page_size=10_000)
        with pytest.raises(ForbiddenError):
            audit_page(s, viewer=principal(staff_world.leader))
        first_two = audit_page(s, viewer=principal(staff_world.admin), page=1, page_size=2)
        second = audit_page(s, viewer=principal(staff_world.admin), page=2, page_size=2)
        beyond = audit_page(s, viewer=principal(staff_world.admin), page=10**6, page_size=2)
    seen = {(e.entity_id, e.action) for e in officer_view.entries}
    assert (str(inside.id), "create") in seen and (str(inside.id), "deactivate") in seen
    assert not {(str(outside.id), "create"), (str(outside.id), "deactivate")} & seen
    assert {(str(outside.id), "deactivate"), (str(inside.id), "deactivate")} <= {
        (e.entity_id, e.action) for e in admin_view.entries
    }
    assert admin_view.total > officer_view.total
    assert [e.at for e in admin_view.entries] == sorted((e.at for e in admin_view.entries), reverse=True)
    assert len(first_two.entries) == 2 and second.entries[0].id not in {e.id for e in first_two.entries}
    assert beyond.page == beyond.pages == -(-admin_view.total // 2)


# --- stores -----------------------------------------------------------------------------------------------------


def _fresh_sqlite(path: Path) -> tuple[Engine, str, Unit]:
    """A new, migrated SQLite database holding one unit."""
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as s:
        level = UnitLevel(code="province", name_vi="Tỉnh", name_en="Province", depth=0)
        s.add(level)
        s.flush()
        unit = Unit(code=f"P{secrets.token_hex(2)}", name_vi="Tỉnh Thử", name_en="Test Province", level_id=pk(level))
        s.add(unit)
        s.flush()
        unit.path = f"/{unit.id}/"
        s.commit()
    return engine, url, unit


def test_sessions_live_in_files_beside_the_embedded_database(tmp_path: Path) -> None:
    engine, url, unit = _fresh_sqlite(tmp_path / "db" / "sipas.db")
    settings = make_settings(url)
    store = session_store(settings)
    assert isinstance(store, FileStore) and store.path == (tmp_path / "db" / "sessions").resolve()
    try:
        account = make_account(engine, "admin", pk(unit))
        with staff_client(settings, engine, store) as c:
            signed_in(c, account)
            assert c.get("/staff").status_code == 200
            session_id = c.cookies.get(COOKIE_NAME) or ""
        # two files: the session, and the account's list of sessions (file names are digests of the keys)
        names = {p.name for p in (tmp_path / "db" / "sessions").iterdir()}
        assert names == {hashlib.blake2s(k.encode()).hexdigest() for k in (session_id, f"user-sessions:{account.id}")}
    finally:
        engine.dispose()


def test_sessions_and_counters_live_in_redis_when_configured(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        unavailable(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    namespace = f"sipastest{secrets.token_hex(4)}"
    redis_settings = make_settings(settings.database_url, redis_url="redis://127.0.0.1:6379/0")
    store = session_store(redis_settings, namespace=namespace)
    assert isinstance(store, RedisStore)
    direct = redis.Redis(host="127.0.0.1", port=6379)
    counters = RedisCounters("redis://127.0.0.1:6379/0", namespace=namespace)
    try:
        with staff_client(redis_settings, engine, store, counters) as c:
            assert sign_in(c, staff_world.admin, password="wrong password, once").status_code == 400
            assert [k for k in direct.scan_iter(f"{namespace}:{PREFIX}:*")]
            signed_in(c, staff_world.admin)
            session_id = c.cookies.get(COOKIE_NAME)
            key = f"{namespace}:{session_id}"
            assert direct.exists(key)
            # The entry outlives its idle timeout by at most the minute "last used" is kept to.
            idle_s = settings.session_idle_minutes * 60
            assert idle_s + 60 - 10 <= direct.ttl(key) <= idle_s + 60 < settings.session_max_age_minutes * 60
            listed = f"{namespace}:user-sessions:{staff_world.admin.id}"
            assert direct.exists(listed) and session_id in json.loads(direct.get(listed) or b"{}")
            assert c.post("/logout", data={"_csrf_token": csrf_token(c.get("/staff").text)}).status_code == 200
            assert not direct.exists(key)
            assert session_id not in json.loads(direct.get(listed) or b"{}")
    finally:
        for k in direct.scan_iter(f"{namespace}:*"):
            direct.delete(k)
        direct.close()


# --- command line and demo ----------------------------------------------------------------------------------


def test_the_user_command_creates_lists_and_resets_accounts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    engine, url, unit = _fresh_sqlite(tmp_path / "cli.db")
    code = unit.code
    name = f"cli{secrets.token_hex(3)}"
    runner = CliRunner()
    with cli_settings(monkeypatch, tmp_path, url):
        weak = runner.invoke(
            cli,
            ["user", "create", "--username", name, "--role", "leader", "--unit", code, "--password-stdin"],
            input="short\n",
        )
        assert weak.exit_code == 1 and "Use at least 12 characters." in weak.output and "Traceback" not in weak.output
        nowhere = runner.invoke(
            cli,
            ["user", "create", "--username", name, "--role", "leader", "--unit", "NOWHERE", "--password-stdin"],
            input=f"{STAFF_PASSWORD}\n",
        )
        assert nowhere.exit_code == 1 and "no unit with code 'NOWHERE'" in nowhere.output
        made = runner.invoke(
            cli,
            ["user", "create", "--username", name, "--role", "leader", "--unit", code],
            input=f"{STAFF_PASSWORD}\n{STAFF_PASSWORD}\n",
        )
        assert made.exit_code == 0, made.output
        assert STAFF_PASSWORD not in made.output and f"created {name} (leader)" in made.output
        again = runner.invoke(
            cli,
            ["user", "create", "--username", name, "--role", "leader", "--unit", code, "--password-stdin"],
            input=f"{STAFF_PASSWORD}\n",
        )
        assert again.exit_code == 1 and "already taken" in again.output
        listed = runner.invoke(cli, ["user", "list"])
        assert listed.exit_code == 0 and re.search(rf"^{name}\s+leader\s+{code}\s+active", listed.output, re.M)
        reset = runner.invoke(
            cli, ["user", "set-password", "--username", name, "--password-stdin"], input="a brand new long password\n"
        )
        assert reset.exit_code == 0, reset.output
    try:
        with Session(engine) as s:
            assert authenticate(s, username=name, password="a brand new long password") is not None
            user = s.scalars(select(User).where(col(User.username) == name)).one()
        assert [e.action for e in _audit_rows(engine, pk(user))] == ["create", "set_password"]
    finally:
        engine.dispose()


def test_the_demo_has_one_account_per_role(demo_db: tuple[Engine, DemoSummary, str]) -> None:
    engine, summary, url = demo_db
    assert [(name, role) for name, role, _, _ in summary.accounts] == [
        ("quantri", "admin"),
        ("canbo.gd", "officer"),
        ("lanhdao.stp", "leader"),
    ]
    assert [unit for _, _, unit, _ in summary.accounts] == ["Tỉnh Tây Ninh", "Huyện Gò Dầu", "Sở Tư pháp"]
    with staff_client(make_settings(url), engine) as c:
        for name, role, unit, password in summary.accounts:
            assert not passwords.policy_problems(password, username=name)
            c.cookies.clear()
            signed_in(c, Account(id=0, username=name, role=role, unit_id=0, password=password))
            home = c.get("/staff")
            assert unit in home.text and name in home.text
    with Session(engine) as s:
        hashes = [u.password_hash for u in s.scalars(select(User))]
    assert all(h.startswith("$argon2id$") for h in hashes)
    assert not any(pw in h for h in hashes for _, _, _, pw in summary.accounts)


# --- translations -------------------------------------------------------------------------------------------


def test_every_staff_string_has_a_vietnamese_translation() -> None:
    sources = [
        *(("python", p) for p in sorted((ROOT / "survey" / "auth").glob("*.py"))),
        *(("python", p) for p in sorted((ROOT / "survey" / "officer").glob("*.py"))),
        ("python", ROOT / "survey" / "app.py"),
        *(("jinja2", p) for p in sorted((ROOT / "templates" / "officer").glob("*.html"))),
        ("jinja2", ROOT / "templates" / "layouts" / "_staff.html"),
        ("jinja2", ROOT / "templates" / "errors" / "401.html"),
        ("jinja2", ROOT / "templates" / "errors" / "403.html"),
    ]
    messages = {
        m
        for method, path in sources
        for _line, m, _comments, _ctx in extract_from_file(method, str(path), keywords={"_": None, "N_": None})
        if isinstance(m, str) and m
    }
    assert len(messages) > 60
    vi = gettext_for("vi")
    placeholder = re.compile(r"\{(\w+)\}")
    untranslated = sorted(m for m in messages if vi(m) == m)
    assert not untranslated, f"add to survey/locales/vi/LC_MESSAGES/staff.po: {untranslated}"
    for m in messages:
        assert set(placeholder.findall(m)) == set(placeholder.findall(vi(m))), m
