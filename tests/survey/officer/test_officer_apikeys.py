"""API keys on the staff pages: the secret is shown once, revoking works, and each sees their own subtree."""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import date

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.api.keys import authenticate
from survey.db.models import ApiKey, AuditLog
from survey.errors import UnauthorizedError
from tests.access.workspace import fresh_key
from tests.conftest import StaffWorld, csrf_token, signed_in

SECRET_RE = re.compile(r'id="new-secret" type="text" readonly value="(sipas_[^"]+)"')


def _key(engine: Engine, name: str) -> ApiKey:
    with Session(engine) as s:
        return s.scalars(select(ApiKey).where(col(ApiKey.name) == name)).one()


def test_a_new_keys_secret_is_shown_once_and_works(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    signed_in(staff, staff_world.officer)
    page = staff.get("/staff/api-keys")
    assert page.status_code == 200 and not SECRET_RE.search(page.text)
    name = f"Một cửa Hòa Thành {secrets.token_hex(3)}"
    created = staff.post(
        "/staff/api-keys",
        data={
            "_csrf_token": csrf_token(page.text),
            "name": name,
            "unit_id": str(staff_world.commune_id),
            "scopes": ["issue", "read"],
        },
    )
    assert created.status_code == 200 and str(created.url).endswith("/staff/api-keys")
    found = SECRET_RE.search(created.text)
    assert found, created.text[:800]
    secret = found.group(1)
    assert f"Đã tạo khóa {name}" in created.text
    key = _key(engine, name)
    assert key.key_hash == hashlib.sha256(secret.encode()).hexdigest() and secret not in key.key_hash
    assert key.scopes == "issue,read" and key.unit_id == staff_world.commune_id
    assert key.created_by == staff_world.officer.username
    assert f"sipas_{key.prefix}_…" in created.text
    # Shown once: the next visit lists the key by its prefix, never the secret.
    again = staff.get("/staff/api-keys")
    assert secret not in again.text and f"sipas_{key.prefix}_…" in again.text and not SECRET_RE.search(again.text)
    with Session(engine) as s:
        caller = authenticate(s, f"Bearer {secret}", today=date.today())
        entry = s.scalars(
            select(AuditLog).where(col(AuditLog.entity) == "api_key", col(AuditLog.entity_id) == str(key.id))
        ).one()
    assert caller.scopes == frozenset({"issue", "read"})
    assert entry.action == "create" and entry.user_id == staff_world.officer.id
    assert entry.after is not None and secret not in str(entry.after)


def test_a_key_form_with_problems_comes_back_and_creates_nothing(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    page = staff.get("/staff/api-keys")
    name = f"Không phạm vi {secrets.token_hex(3)}"
    refused = staff.post("/staff/api-keys", data={"_csrf_token": csrf_token(page.text), "name": name, "unit_id": ""})
    assert refused.status_code == 400 and "Lỗi: " in refused.text
    assert 'href="#unit_id"' in refused.text and 'href="#scope-issue"' in refused.text
    assert f'value="{name}"' in refused.text and not SECRET_RE.search(refused.text)
    with Session(engine) as s:
        assert s.scalars(select(ApiKey).where(col(ApiKey.name) == name)).first() is None


def test_revoking_a_key_refuses_it_from_then_on(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    signed_in(staff, staff_world.admin)
    key_id = fresh_key(engine, staff_world.commune_id)
    page = staff.get("/staff/api-keys")
    assert f'action="/staff/api-keys/{key_id}/revoke"' in page.text
    done = staff.post(f"/staff/api-keys/{key_id}/revoke", data={"_csrf_token": csrf_token(page.text)})
    assert done.status_code == 200 and "Đã thu hồi khóa" in done.text
    assert f'action="/staff/api-keys/{key_id}/revoke"' not in done.text
    with Session(engine) as s:
        key = s.get(ApiKey, key_id)
        assert key is not None and key.revoked_at is not None
        entry = s.scalars(
            select(AuditLog).where(
                col(AuditLog.action) == "revoke",
                col(AuditLog.entity) == "api_key",
                col(AuditLog.entity_id) == str(key_id),
            )
        ).one()
        assert entry.user_id == staff_world.admin.id and entry.before == {"revoked": False}
        with pytest.raises(UnauthorizedError):
            authenticate(s, f"sipas_{key.prefix}_whatever", today=date.today())


def test_each_account_lists_the_keys_of_its_subtree_only(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    mine = fresh_key(engine, staff_world.commune_id)
    theirs = fresh_key(engine, staff_world.other_district_id)
    signed_in(staff, staff_world.officer)
    listed = staff.get("/staff/api-keys").text
    assert f"/staff/api-keys/{mine}/revoke" in listed and f"/staff/api-keys/{theirs}/revoke" not in listed
    assert f'<option value="{staff_world.other_district_id}"' not in listed
    refused = staff.post(f"/staff/api-keys/{theirs}/revoke", data={"_csrf_token": csrf_token(listed)})
    assert refused.status_code == 403
    with Session(engine) as s:
        key = s.get(ApiKey, theirs)
        assert key is not None and key.revoked_at is None
