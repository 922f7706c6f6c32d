"""What the JSON API refuses before parsing (too large, nested too deep) and how its schema is served."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.api.keys import create_api_key
from survey.api.limits import API_MAX_BODY_BYTES, MAX_JSON_DEPTH, nesting_depth, too_deep
from survey.app import create_app
from survey.db.models import Unit
from survey.limits import MemoryCounters
from survey.settings import Settings
from tests.conftest import make_production_settings
from tests.factories import World

API_POSTS = ("/api/v1/transactions", "/api/v1/receipt-codes")
TRACE = ("Traceback", "RecursionError", 'File "/')


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_nesting_depth_counts_brackets_outside_strings_only() -> None:
    assert nesting_depth(b"{}") == 1
    assert nesting_depth(b'{"a": [1, {"b": [[]]}]}') == 5
    assert nesting_depth(b'{"a": "[[[[[[{{{{{"}') == 1
    assert nesting_depth(b'{"a": "\\"[[[[", "b": [[1]]}') == 3  # an escaped quote does not end the string
    assert nesting_depth(_nested(100_000).encode(), stop_above=32) == 33  # stops early
    assert not too_deep(_nested(MAX_JSON_DEPTH).encode())
    assert too_deep(_nested(MAX_JSON_DEPTH + 1).encode())
    # Many brackets side by side are not deep.
    side_by_side = ("[" + ",".join(["[]"] * 1000) + "]").encode()
    assert nesting_depth(side_by_side) == 2 and not too_deep(side_by_side)


@pytest.mark.parametrize("path", API_POSTS)
@pytest.mark.parametrize(
    "body",
    [
        _nested(100_000),  # 200 kB: refused for its size
        '{"wave":' * 20_000 + "1" + "}" * 20_000,  # 160 kB
        _nested(1_000),  # 2 kB, small enough to reach the parser: refused for its depth
        '{"wave": ' + _nested(5_000) + "}",
        "[" * 30_000,  # never closed
    ],
    ids=["100k-arrays", "20k-objects", "1k-arrays", "5k-in-a-field", "unclosed"],
)
def test_deeply_nested_json_is_a_400_or_413_problem_never_a_500(client: TestClient, path: str, body: str) -> None:
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 413), (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == response.status_code
    if len(body) <= API_MAX_BODY_BYTES:
        assert response.status_code == 400 and f"deeper than {MAX_JSON_DEPTH} levels" in problem["detail"]
    assert not any(t in response.text for t in TRACE)


def test_a_deep_body_is_refused_before_the_key_is_checked(client: TestClient) -> None:
    # No key at all: the body is refused (400) without being parsed; an ordinary bad body gets the key's 401.
    deep = client.post("/api/v1/transactions", content=_nested(2_000), headers={"content-type": "application/json"})
    assert deep.status_code == 400
    flat = client.post("/api/v1/transactions", content='{"wave": []}', headers={"content-type": "application/json"})
    assert flat.status_code in (400, 401)
    assert flat.status_code != 500


def test_malformed_and_oversized_json_are_problems(client: TestClient) -> None:
    for body in ("{", '{"wave": "x"', "\x00\xff", "[1, 2,]"):
        response = client.post("/api/v1/receipt-codes", content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 401), (body, response.status_code)
        assert not any(t in response.text for t in TRACE)
    padded = json.dumps({"wave": "x" * API_MAX_BODY_BYTES})
    response = client.post("/api/v1/receipt-codes", content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"


def test_staff_forms_still_take_bodies_up_to_the_app_limit(client: TestClient) -> None:
    # The API's smaller limit is its own: a large (refused-for-CSRF) form post is not a 413.
    response = client.post("/login", data={"username": "x", "password": "y" * (API_MAX_BODY_BYTES + 10)})
    assert response.status_code == 403


# --- the schema ---------------------------------------------------------------------------------------------


THIRD_PARTY = ("cdn.", "jsdelivr", "unpkg", "<script", "googleapis")


@pytest.mark.parametrize("path", ["/schema", "/schema/", "/schema/openapi.json", "/schema/openapi.yaml"])
def test_the_schema_is_json_or_yaml_only(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi")
    assert not any(t in response.text for t in THIRD_PARTY)
    assert "/api/v1/transactions" in response.text


@pytest.mark.parametrize(
    "path", ["/schema/swagger", "/schema/redoc", "/schema/elements", "/schema/rapidoc", "/schema/scalar"]
)
def test_no_documentation_page_loads_third_party_scripts(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert not any(t in response.text for t in THIRD_PARTY)


@pytest.fixture()
def production(db_url: str, engine: Engine) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_production_settings(db_url)
    with TestClient(app=create_app(settings, engine, counters=MemoryCounters()), raise_server_exceptions=False) as c:
        yield c, settings


def test_in_production_the_schema_is_for_api_key_holders_only(
    production: tuple[TestClient, Settings], engine: Engine, world: World
) -> None:
    client, _ = production
    with Session(engine) as s:
        unit = s.get(Unit, world.unit_id)
        assert unit is not None
        key = create_api_key(s, name=f"BI {secrets.token_hex(2)}", unit_code=unit.code, scopes=("read",), actor="t")
        s.commit()
    for path in ("/schema", "/schema/openapi.json", "/schema/openapi.yaml", "/schema/swagger"):
        anonymous = client.get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["content-type"] == "application/problem+json"
        assert "paths" not in anonymous.text
        forged = client.get(path, headers={"Authorization": "Bearer sipas_00000000_forged"})
        assert forged.status_code == 401, path
    schema = client.get("/schema/openapi.json", headers={"Authorization": f"Bearer {key.secret}"})
    assert schema.status_code == 200 and "/api/v1/transactions" in schema.json()["paths"]
