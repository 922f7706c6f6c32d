"""The administrators' optional second factor: enrolment with a QR code, a code at sign-in, each code once,
back-off on wrong codes, turning it off (on the page or from the command line); on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import time
from functools import partial
from pathlib import Path

import pyotp
import pytest
from click.testing import CliRunner
from litestar.stores.memory import MemoryStore
from litestar.testing import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth import second_factor
from survey.auth.sessions import COOKIE_NAME
from survey.cli import main as cli
from survey.db.models import AuditLog, User
from survey.limits import MemoryCounters
from survey.settings import Settings
from tests.conftest import (
    Account,
    StaffWorld,
    cli_settings,
    csrf_token,
    make_account,
    sign_in,
    signed_in,
    staff_client,
)

KEY_RE = re.compile(r"<code>([A-Z2-7 ]+)</code>")


def _enrol(client: TestClient) -> str:
    """Turn the second factor on for the signed-in account; returns its secret."""
    page = client.get("/staff/account/two-step?lang=en")
    assert page.status_code == 200 and '<svg class="qr"' in page.text and "<script" not in page.text
    match = KEY_RE.search(page.text)
    assert match
    secret = match.group(1).replace(" ", "")
    wrong = client.post("/staff/account/two-step", data={"_csrf_token": csrf_token(page.text), "code": "000000"})
    assert wrong.status_code == 400 or pyotp.TOTP(secret).now() == "000000"
    done = client.post(
        "/staff/account/two-step",
        data={"_csrf_token": csrf_token(page.text), "code": pyotp.TOTP(secret).now()},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/staff/account?done=two-step-on"
    return secret


def _code_at(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def _send_code(client: TestClient, code: str) -> object:
    page = client.get("/login/code")
    return client.post("/login/code", data={"_csrf_token": csrf_token(page.text), "code": code}, follow_redirects=False)


@pytest.fixture()
def admin(engine: Engine, staff_world: StaffWorld) -> Account:
    return make_account(engine, "admin", staff_world.root_id, prefix="totp")


def test_enrolment_stores_the_secret_sealed_and_audits_it(
    staff: TestClient, admin: Account, engine: Engine, settings: Settings
) -> None:
    signed_in(staff, admin)
    assert "Off: signing in asks for your password only." in staff.get("/staff/account?lang=en").text
    secret = _enrol(staff)
    assert "Two-step sign-in is on" in staff.get("/staff/account?done=two-step-on&lang=en").text
    with Session(engine) as s:
        user = s.get(User, admin.id)
        assert user is not None and user.totp_secret is not None
        assert secret not in user.totp_secret
        assert second_factor.unseal(user.totp_secret, settings.secret_key) == secret
        assert second_factor.unseal(user.totp_secret, "another secret key " * 3) != secret
        entries = s.scalars(
            select(AuditLog).where(col(AuditLog.entity_id) == str(admin.id), col(AuditLog.action) == "enable_two_step")
        ).all()
    assert len(entries) == 1 and secret not in json.dumps([entries[0].before, entries[0].after])


def test_sign_in_asks_for_the_code_and_each_code_works_once(settings: Settings, engine: Engine, admin: Account) -> None:
    store = MemoryStore()
    with staff_client(settings, engine, store) as first:
        signed_in(first, admin)
        secret = _enrol(first)
    with staff_client(settings, engine, store) as c:
        response = sign_in(c, admin, next_path="/staff/audit")
        assert response.status_code == 303 and response.headers["location"] == "/login/code"
        # The right password alone signs nobody in.
        assert c.get("/staff", follow_redirects=False).status_code == 303
        assert "<h1>Mã đăng nhập</h1>" in c.get("/login/code").text
        wrong = _send_code(c, "12345")
        assert wrong.status_code == 400  # type: ignore[attr-defined]
        code = _code_at(secret, 1)  # the step after the enrolment's: not used yet
        done = _send_code(c, code)
        assert done.status_code == 303 and done.headers["location"] == "/staff/audit"  # type: ignore[attr-defined]
        assert c.get("/staff").status_code == 200 and c.cookies.get(COOKIE_NAME)
    with staff_client(settings, engine, store) as replay:
        assert sign_in(replay, admin).headers["location"] == "/login/code"
        assert _send_code(replay, code).status_code == 400  # type: ignore[attr-defined]
        assert replay.get("/staff", follow_redirects=False).status_code == 303


def test_wrong_codes_back_off_and_the_pending_sign_in_expires(
    settings: Settings, engine: Engine, admin: Account
) -> None:
    store = MemoryStore()
    with staff_client(settings, engine, store) as first:
        signed_in(first, admin)
        secret = _enrol(first)
    counters = MemoryCounters(clock=lambda: 1000.0)
    with staff_client(settings, engine, store, counters) as c:
        sign_in(c, admin)
        statuses = [_send_code(c, f"{i:06d}").status_code for i in range(6)]  # type: ignore[attr-defined]
        assert statuses[:4] == [400] * 4 and statuses[4:] == [429, 429]
        assert _send_code(c, _code_at(secret, 1)).status_code == 429  # type: ignore[attr-defined]
    with staff_client(settings, engine, store) as late:
        sign_in(late, admin)
        session_id = late.cookies.get(COOKIE_NAME) or ""
        data = json.loads(late.blocking_portal.call(store.get, session_id) or b"{}")
        data["sipas_pending_sign_in"]["at"] = time.time() - 6 * 60
        late.blocking_portal.call(partial(store.set, session_id, json.dumps(data), expires_in=600))
        response = _send_code(late, _code_at(secret, 1))
        assert response.status_code == 303 and response.headers["location"] == "/login"  # type: ignore[attr-defined]
        assert late.get("/staff", follow_redirects=False).status_code == 303


def test_turning_it_off_needs_a_code_and_the_command_line_can_too(
    settings: Settings,
    engine: Engine,
    admin: Account,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    db_url: str,
) -> None:
    with staff_client(settings, engine) as c:
        signed_in(c, admin)
        secret = _enrol(c)
        page = c.get("/staff/account/two-step")
        assert "<svg" not in page.text  # no secret is shown again once enrolled
        refused = c.post("/staff/account/two-step/off", data={"_csrf_token": csrf_token(page.text), "code": "1"})
        assert refused.status_code == 400
        off = c.post(
            "/staff/account/two-step/off",
            data={"_csrf_token": csrf_token(page.text), "code": _code_at(secret, 1)},
            follow_redirects=False,
        )
        assert off.status_code == 303 and off.headers["location"] == "/staff/account?done=two-step-off"
        _enrol(c)
    with cli_settings(monkeypatch, tmp_path, db_url):
        result = CliRunner().invoke(cli, ["user", "two-step-off", "--username", admin.username])
        again = CliRunner().invoke(cli, ["user", "two-step-off", "--username", admin.username])
    assert result.exit_code == 0 and "turned off" in result.output
    assert again.exit_code == 0 and "was not on" in again.output
    with Session(engine) as s:
        actions = s.scalars(
            select(col(AuditLog.action))
            .where(col(AuditLog.entity_id) == str(admin.id), col(AuditLog.action).like("%two_step"))
            .order_by(col(AuditLog.id))
        ).all()
    assert actions == ["enable_two_step", "disable_two_step", "enable_two_step", "disable_two_step"]
    with staff_client(settings, engine) as c:
        assert sign_in(c, admin).headers["location"] == "/staff"  # the password alone again


def test_codes_match_their_step_once_within_a_step_either_side() -> None:
    secret = second_factor.new_secret()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = totp.timecode(now)
    assert second_factor.matching_step(secret, totp.at(now), after=None, now=now) == step
    assert second_factor.matching_step(secret, totp.at(now - 30), after=None, now=now) == step - 1
    assert second_factor.matching_step(secret, totp.at(now + 30), after=None, now=now) == step + 1
    assert second_factor.matching_step(secret, totp.at(now - 60), after=None, now=now) is None
    assert second_factor.matching_step(secret, totp.at(now), after=step, now=now) is None  # used already
    assert second_factor.matching_step(secret, totp.at(now)[:3] + " " + totp.at(now)[3:], after=None, now=now) == step
    assert second_factor.matching_step(secret, "abc", after=None, now=now) is None
    sealed = second_factor.seal(secret, "k" * 40)
    assert second_factor.seal(secret, "k" * 40) != sealed  # a fresh nonce each time
    assert second_factor.unseal(sealed, "k" * 40) == secret and second_factor.unseal("garbage", "k" * 40) is None
