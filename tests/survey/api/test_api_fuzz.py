"""The JSON API fuzzed from its own OpenAPI schema (schemathesis): no 5xx, answers that match the schema,
and nothing invalid stored, with bodies sometimes pointed at a real wave and unit so they get past lookup."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.api.keys import create_api_key
from survey.app import create_app
from survey.db.engine import make_engine, migrate
from survey.db.models import IssuedTransaction, ReceiptCode, Unit, Wave, WaveUnit
from tests.conftest import make_settings
from tests.factories import World, build_world


@pytest.fixture(scope="module")
def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Engine, World, dict[str, str]]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    url = f"sqlite:///{path}"
    migrate(url)
    engine = make_engine(url)
    world = build_world(engine)
    with Session(engine, expire_on_commit=False) as s, s.begin():
        unit = s.get(Unit, world.unit_id)
        assert unit is not None and unit.parent_id is not None
        root = s.get(Unit, unit.parent_id)
        assert root is not None
        wave = Wave(
            code="fuzz",
            name_vi="Đợt thử",
            name_en="Fuzz wave",
            questionnaire_version_id=world.sipas_version_id,
            starts_on=world.today - timedelta(days=5),
            ends_on=world.today + timedelta(days=5),
            status="open",
            channels="receipt",
        )
        s.add(wave)
        s.flush()
        s.execute(insert(WaveUnit).values(wave_id=wave.id, unit_id=world.unit_id))
        key = create_api_key(s, name="fuzz", unit_code=root.code, scopes=("issue", "read"), actor="test")
        known = {"wave": wave.code, "unit": unit.code, "key": key.secret}
    app = create_app(make_settings(url), engine)
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app), engine, world, known
    engine.dispose()


def _operations(schema: Any) -> list[Any]:
    return [op.ok() for op in schema.get_all_operations()]


def test_every_operation_survives_fuzzing(fuzz_target: tuple[Any, Engine, World, dict[str, str]]) -> None:
    schema, engine, world, known = fuzz_target
    operations = _operations(schema)
    assert {o.path for o in operations} >= {"/api/v1/transactions", "/api/v1/receipt-codes"}
    seen: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy(), aim=st.booleans(), auth=st.sampled_from(["good", "none", "bad"]))
        @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case: Any, aim: bool, auth: str) -> None:
            if aim and isinstance(case.body, dict):  # get past the lookups, into the interesting code
                case.body = {**case.body, "wave": known["wave"], "unit": known["unit"]}
                case.body.pop("field", None)
                if "count" in case.body:
                    case.body["count"] = (
                        min(max(int(case.body["count"]), 1), 50) if isinstance(case.body["count"], int) else 1
                    )
            headers = {"good": {"Authorization": f"Bearer {known['key']}"}, "none": {}}.get(
                auth, {"Authorization": "Bearer sipas_0000_forged"}
            )
            response = case.call(headers=headers)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
            content_type = response.headers["content-type"]
            content_type = content_type[0] if isinstance(content_type, list) else content_type
            assert content_type.startswith(("application/json", "application/problem+json")), content_type
            if auth != "good":
                assert response.status_code in (400, 401), response.text[:300]
            case.validate_response(
                response,
                checks=[
                    schemathesis.checks.not_a_server_error,
                    schemathesis.checks.status_code_conformance,
                    schemathesis.checks.response_schema_conformance,
                ],
            )

        run()
    assert any(200 <= status < 300 for status in seen), seen  # the fuzzing reached the success paths too
    with Session(engine) as s:
        hashes = s.scalars(select(col(IssuedTransaction.ref_hash))).all()
        assert all(len(h) == 64 and all(c in "0123456789abcdef" for c in h) for h in hashes)
        wrong_unit = s.scalar(
            select(func.count()).select_from(ReceiptCode).where(col(ReceiptCode.unit_id) != world.unit_id)
        )
        assert wrong_unit == 0  # nothing issued for a unit outside the wave
