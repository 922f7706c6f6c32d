"""The read-only JSON API: read keys only, restricted to the key's subtree, the scorecard's numbers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from litestar.testing import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.api.keys import create_api_key
from survey.app import create_app
from survey.demo.load import DemoSummary
from survey.results.scores import wave_scores
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def api(demo_db: tuple[Engine, DemoSummary, str]) -> Iterator[tuple[TestClient, Engine]]:
    engine, _, url = demo_db
    with TestClient(app=create_app(make_settings(url), engine), raise_server_exceptions=False) as client:
        yield client, engine


def key(engine: Engine, unit: str, *scopes: str) -> dict[str, str]:
    with Session(engine) as s, s.begin():
        made = create_api_key(s, name="BI tool", unit_code=unit, scopes=scopes, actor="test")
    return {"Authorization": f"Bearer {made.secret}"}


def test_waves_need_a_read_key(api: tuple[TestClient, Engine]) -> None:
    client, engine = api
    assert client.get("/api/v1/waves").status_code == 401
    assert client.get("/api/v1/waves", headers=key(engine, "TN", "issue")).status_code == 403
    waves = client.get("/api/v1/waves", headers=key(engine, "TN", "read")).json()
    assert [w["code"] for w in waves] == ["2026", "2025"]  # newest first; the counter wave has no criteria
    assert waves[0]["target"] == 90.0


def test_league_is_the_scorecards_and_stays_in_the_subtree(api: tuple[TestClient, Engine]) -> None:
    client, engine = api
    ws = wave_scores(engine, wave_code="2026", level="commune")
    by_code = {u.code: i for i, u in enumerate(ws.units)}
    body = client.get("/api/v1/waves/2026/league?level=commune", headers=key(engine, "GD", "read")).json()
    assert body["rows"] and all(r["unit"].startswith("GD") for r in body["rows"])
    assert body["ranked_units"] == int(ws.league.ranked.sum())
    for row in body["rows"]:
        i = by_code[row["unit"]]
        assert row["n"] == ws.estimate(i).n
        assert row["ranked"] == bool(ws.league.ranked[i])
        if row["index"] is not None:
            assert row["index"] == pytest.approx(ws.estimate(i).point * 100, abs=1e-3)
            assert row["lower"] == pytest.approx(ws.estimate(i).lower * 100, abs=1e-3)
        if row["ranked"]:
            assert (row["rank_lower"], row["rank_upper"]) == (ws.league.marginal_lower[i], ws.league.marginal_upper[i])
        else:
            assert row["rank"] is None
    whole = client.get("/api/v1/waves/2026/league?level=commune", headers=key(engine, "TN", "read")).json()
    assert len(whole["rows"]) == len(ws.units) > len(body["rows"])
    assert client.get("/api/v1/waves/2026/league?level=nowhere", headers=key(engine, "TN", "read")).status_code == 404


def test_scorecard_in_and_out_of_the_subtree(api: tuple[TestClient, Engine]) -> None:
    client, engine = api
    headers = key(engine, "GD", "read")
    inside = client.get("/api/v1/waves/2026/units/GD/scorecard", headers=headers)
    assert inside.status_code == 200
    ws = wave_scores(engine, wave_code="2026", level="district")
    g = next(i for i, u in enumerate(ws.units) if u.code == "GD")
    rows = {r["measure"]: r for r in inside.json()["rows"]}
    assert rows["index"]["index"] == pytest.approx(ws.card.point[g, ws.card.column("index")] * 100, abs=1e-3)
    assert rows["staff"]["kind"] == "element" and rows["staff_polite"]["kind"] == "criterion"
    out = client.get("/api/v1/waves/2026/units/TPTN/scorecard", headers=headers)
    assert out.status_code == 403 and out.headers["content-type"].startswith("application/problem+json")
    assert client.get("/api/v1/waves/2026/units/NOPE/scorecard", headers=headers).status_code == 404
    assert client.get("/api/v1/waves/2026/units/GD/scorecard", headers=key(engine, "GD", "issue")).status_code == 403


def test_documented_in_the_openapi_schema(api: tuple[TestClient, Engine]) -> None:
    client, _ = api
    paths = client.get("/schema/openapi.json").json()["paths"]
    for path in ("/api/v1/waves", "/api/v1/waves/{code}/league", "/api/v1/waves/{code}/units/{unit_code}/scorecard"):
        assert path in paths, path
    assert not any(p.startswith("/staff") for p in paths)
