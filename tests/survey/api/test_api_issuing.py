"""The issuing API for one-stop systems: keys, selection, idempotency, batches, errors, the schema."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.api.keys import create_api_key, revoke_api_key
from survey.app import create_app
from survey.db.models import AuditLog, IssuedTransaction, Quota, ReceiptCode, Unit, Wave, pk
from survey.receipts import codes
from survey.settings import Settings
from tests.factories import World, open_receipt_wave


@dataclass(frozen=True)
class Setup:
    wave_code: str
    wave_id: int
    unit_code: str
    other_unit_code: str
    root_code: str
    field_code: str
    key: str  # issue scope, on the commune
    read_key: str  # read scope only, on the commune
    root_key: str  # issue scope, on the province


def _codes_of(session: Session, world: World) -> tuple[str, str, str, str]:
    unit = session.get(Unit, world.unit_id)
    other = session.get(Unit, world.other_unit_id)
    assert unit is not None and other is not None and unit.parent_id is not None
    root = session.get(Unit, unit.parent_id)
    assert root is not None
    field_code = session.scalar(text("SELECT code FROM field WHERE id = :i").bindparams(i=world.field_id))
    return unit.code, other.code, root.code, str(field_code)


@pytest.fixture()
def setup(engine: Engine, world: World) -> Setup:
    """A fresh open receipt wave over the commune, with a plan giving its stratum p = 0.3, and three keys."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        unit_code, other_code, root_code, field_code = _codes_of(s, world)
        wave = open_receipt_wave(s, world, prefix="api", version_id=world.sipas_version_id, days=(10, 20))
        s.execute(
            insert(Quota).values(
                wave_id=wave.id,
                unit_id=world.unit_id,
                field_id=world.field_id,
                population=1000,
                target=180,
                codes_to_issue=300,
                probability=0.3,
            )
        )
        key = create_api_key(s, name="Một cửa xã", unit_code=unit_code, scopes=("issue",), actor="test")
        read = create_api_key(s, name="BI", unit_code=unit_code, scopes=("read",), actor="test")
        root = create_api_key(s, name="Tỉnh", unit_code=root_code, scopes=("issue",), actor="test")
    return Setup(
        wave.code, pk(wave), unit_code, other_code, root_code, field_code, key.secret, read.secret, root.secret
    )


@pytest.fixture()
def api(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(app=create_app(settings, engine), raise_server_exceptions=False) as c:
        yield c


def _ask(api: TestClient, key: str, s: Setup, ref: str, **extra: object) -> dict[str, Any]:
    body = {"wave": s.wave_code, "unit": s.unit_code, "field": s.field_code, "transaction_ref": ref, **extra}
    r = api.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_a_selected_transaction_gets_a_working_code_and_asking_again_gives_the_same(
    api: TestClient, setup: Setup, engine: Engine
) -> None:
    ref = None
    first: dict[str, Any] = {}
    for i in range(60):  # p = 0.3: the chance that 60 in a row are not selected is 0.7^60 ≈ 5e-10
        first = _ask(api, setup.key, setup, f"HS-{i}-{secrets.token_hex(3)}")
        if first["selected"]:
            ref = f"HS-{i}"
            break
    assert ref is not None and first["code"] and first["repeated"] is False
    assert first["probability"] == pytest.approx(0.3)
    again_ref = first["url"]
    compact = codes.normalise(first["code"])
    assert compact is not None and again_ref.endswith(f"/r/{compact}")
    page = api.get(f"/r/{compact}")
    assert page.status_code == 200 and "<form" in page.text
    with Session(engine) as s:
        spent = s.scalar(select(col(ReceiptCode.spent)).where(col(ReceiptCode.code_hash) == codes.code_hash(compact)))
    assert spent is False


def test_the_same_reference_twice_stores_one_decision_and_one_code(
    api: TestClient, setup: Setup, engine: Engine
) -> None:
    answers = [_ask(api, setup.key, setup, "HS-2026-000123") for _ in range(3)]
    assert [a["repeated"] for a in answers] == [False, True, True]
    assert len({(a["selected"], a["code"], a["expires_on"]) for a in answers}) == 1
    with Session(engine) as s:
        stored = s.scalar(
            select(func.count()).select_from(IssuedTransaction).where(col(IssuedTransaction.wave_id) == setup.wave_id)
        )
        issued = s.scalar(
            select(func.count()).select_from(ReceiptCode).where(col(ReceiptCode.wave_id) == setup.wave_id)
        )
    assert stored == 1
    assert issued == (1 if answers[0]["selected"] else 0)


def test_the_dossier_number_is_stored_nowhere(api: TestClient, setup: Setup, engine: Engine) -> None:
    ref = f"DOSSIER-{secrets.token_hex(6)}"
    _ask(api, setup.key, setup, ref)
    with Session(engine) as s:
        rows = s.execute(select(IssuedTransaction).where(col(IssuedTransaction.wave_id) == setup.wave_id)).scalars()
        stored = [r.ref_hash for r in rows]
        audit = [str(a.before) + str(a.after) for a in s.scalars(select(AuditLog))]
    assert len(stored) == 1 and ref not in stored[0] and len(stored[0]) == 64
    assert not any(ref in entry for entry in audit)


def test_selection_hits_the_planned_probability(api: TestClient, setup: Setup) -> None:
    n = 600
    chosen = sum(_ask(api, setup.key, setup, f"R{i}-{secrets.token_hex(4)}")["selected"] for i in range(n))
    se = math.sqrt(0.3 * 0.7 / n)
    assert abs(chosen / n - 0.3) < 4 * se, chosen  # fails by chance about once in 15,000 runs


def test_a_reference_reused_for_another_field_is_a_conflict(api: TestClient, setup: Setup) -> None:
    _ask(api, setup.key, setup, "HS-REUSED")
    r = api.post(
        "/api/v1/transactions",
        json={"wave": setup.wave_code, "unit": setup.unit_code, "field": None, "transaction_ref": "HS-REUSED"},
        headers={"Authorization": f"Bearer {setup.key}"},
    )
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "already used" in r.json()["detail"]


def test_qr_images_come_back_when_asked(api: TestClient, setup: Setup) -> None:
    for i in range(80):
        got = _ask(api, setup.root_key, setup, f"QR-{i}-{secrets.token_hex(3)}", qr="svg")
        if got["selected"]:
            assert got["qr_svg"].lstrip().startswith("<?xml") and "<svg" in got["qr_svg"]
            return
    pytest.fail("no transaction selected in 80 tries at p = 0.3")


@pytest.mark.parametrize(
    ("header", "status", "words"),
    [
        (None, 401, "API key is required"),
        ("Bearer not-a-key", 401, "not a SIPAS API key"),
        ("Bearer sipas_deadbeef_nothing", 401, "not known"),
    ],
)
def test_missing_or_unknown_keys_get_401(
    api: TestClient, setup: Setup, header: str | None, status: int, words: str
) -> None:
    headers = {"Authorization": header} if header else {}
    body = {"wave": setup.wave_code, "unit": setup.unit_code, "transaction_ref": "X"}
    r = api.post("/api/v1/transactions", json=body, headers=headers)
    assert r.status_code == status
    assert words in r.json()["detail"]


def test_a_revoked_key_stops_at_once(api: TestClient, setup: Setup, engine: Engine) -> None:
    _ask(api, setup.key, setup, "before-revoke")
    with Session(engine) as s, s.begin():
        revoke_api_key(s, prefix=setup.key.split("_")[1], actor="test")
    body = {"wave": setup.wave_code, "unit": setup.unit_code, "transaction_ref": "after-revoke"}
    r = api.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {setup.key}"})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_keys_act_only_inside_their_subtree_and_scope(api: TestClient, setup: Setup) -> None:
    outside = {"wave": setup.wave_code, "unit": setup.other_unit_code, "transaction_ref": "X1"}
    r = api.post("/api/v1/transactions", json=outside, headers={"Authorization": f"Bearer {setup.key}"})
    assert r.status_code == 403 and setup.other_unit_code in r.json()["detail"]
    r = api.post("/api/v1/receipt-codes", json={**outside, "count": 1} | {"transaction_ref": None}, headers={})
    assert r.status_code == 401
    inside = {"wave": setup.wave_code, "unit": setup.unit_code, "transaction_ref": "X2"}
    r = api.post("/api/v1/transactions", json=inside, headers={"Authorization": f"Bearer {setup.read_key}"})
    assert r.status_code == 403 and "may not issue" in r.json()["detail"]
    # the province's key covers the commune, but the other commune is not in the wave
    r = api.post("/api/v1/transactions", json=outside, headers={"Authorization": f"Bearer {setup.root_key}"})
    assert r.status_code == 409 and "not surveyed" in r.json()["detail"]


def test_invalid_bodies_are_explained(api: TestClient, setup: Setup) -> None:
    auth = {"Authorization": f"Bearer {setup.key}"}
    r = api.post("/api/v1/transactions", json={"wave": setup.wave_code, "unit": setup.unit_code}, headers=auth)
    assert r.status_code == 400
    assert "transaction_ref" in str(r.json().get("errors"))
    r = api.post("/api/v1/transactions", content=b"{not json", headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["status"] == 400
    extra = {"wave": setup.wave_code, "unit": setup.unit_code, "transaction_ref": "X", "citizen_name": "Nguyễn Văn A"}
    r = api.post("/api/v1/transactions", json=extra, headers=auth)
    assert r.status_code == 400  # unknown fields are refused, so nobody sends personal data by mistake
    r = api.post(
        "/api/v1/receipt-codes",
        json={"wave": setup.wave_code, "unit": setup.unit_code, "count": 100_000},
        headers=auth,
    )
    assert r.status_code == 400 and "count" in str(r.json().get("errors"))


def test_a_batch_gives_distinct_valid_codes_and_is_audited(api: TestClient, setup: Setup, engine: Engine) -> None:
    r = api.post(
        "/api/v1/receipt-codes",
        json={"wave": setup.wave_code, "unit": setup.unit_code, "field": setup.field_code, "count": 25},
        headers={"Authorization": f"Bearer {setup.key}"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    compact = [codes.normalise(c["code"]) for c in body["codes"]]
    assert len(set(compact)) == 25 and None not in compact
    assert all(c["url"].endswith(f"/r/{k}") for c, k in zip(body["codes"], compact, strict=True))
    with Session(engine) as s:
        stored = s.scalar(
            select(func.count())
            .select_from(ReceiptCode)
            .where(col(ReceiptCode.code_hash).in_([codes.code_hash(str(k)) for k in compact]))
        )
        entry = s.scalars(
            select(AuditLog).where(col(AuditLog.action) == "issue_codes").order_by(col(AuditLog.id).desc())
        ).first()
    assert stored == 25
    assert entry is not None and entry.actor == f"api:{setup.key.split('_')[1]}" and entry.after["count"] == 25  # type: ignore[index]


def test_a_closed_wave_issues_nothing(api: TestClient, setup: Setup, engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        s.execute(Wave.__table__.update().where(Wave.__table__.c.id == setup.wave_id).values(status="closed"))  # type: ignore[attr-defined]
    body = {"wave": setup.wave_code, "unit": setup.unit_code, "transaction_ref": "late"}
    r = api.post("/api/v1/transactions", json=body, headers={"Authorization": f"Bearer {setup.key}"})
    assert r.status_code == 409 and "closed" in r.json()["detail"]


def test_the_openapi_schema_documents_the_endpoints_and_the_key(api: TestClient) -> None:
    schema = api.get("/schema/openapi.json").json()
    assert {"/api/v1/transactions", "/api/v1/receipt-codes"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    post = schema["paths"]["/api/v1/transactions"]["post"]
    assert post["security"] == [{"apiKey": []}]
    assert not any(p.startswith("/r/") or p.startswith("/staff") for p in schema["paths"])
