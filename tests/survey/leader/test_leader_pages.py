"""Leader pages on the demo province: what each page shows is what the scorecard computed, inside one's subtree."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from html import unescape

import numpy as np
import pytest
from litestar.testing import TestClient
from openpyxl import load_workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Unit, Wave
from survey.demo.load import DemoSummary
from survey.i18n import gettext_for
from survey.leader.board import Board
from survey.leader.labels import HOW_TO_READ
from survey.leader.services import scores
from survey.results.scores import WaveScores, compare_waves, mark_responses_changed, wave_scores
from tests.conftest import Account, make_account, make_settings, signed_in, staff_client

WAVE = "2026"
ROW = re.compile(r'<tr data-code="([^"]+)">(.*?)</tr>', re.S)
CI = re.compile(r'data-index="([-\d.na]+)" data-lower="([-\d.na]+)" data-upper="([-\d.na]+)"')


def unit(engine: Engine, code: str) -> Unit:
    with Session(engine) as s:
        found = s.scalars(select(Unit).where(col(Unit.code) == code)).one()
        s.expunge(found)
        return found


@pytest.fixture(scope="module")
def demo(demo_db: tuple[Engine, DemoSummary, str]) -> tuple[Engine, str]:
    engine, _, url = demo_db
    return engine, url


def browser(demo: tuple[Engine, str], role: str, unit_code: str) -> Iterator[tuple[TestClient, Account]]:
    engine, url = demo
    account = make_account(engine, role, unit(engine, unit_code).id or 0)
    with staff_client(make_settings(url), engine) as client:
        signed_in(client, account)
        yield client, account


@pytest.fixture(scope="module")
def admin(demo: tuple[Engine, str]) -> Iterator[TestClient]:
    for client, _ in browser(demo, "admin", "TN"):
        yield client


@pytest.fixture(scope="module")
def district_leader(demo: tuple[Engine, str]) -> Iterator[TestClient]:
    for client, _ in browser(demo, "leader", "GD"):
        yield client


@pytest.fixture(scope="module")
def district_officer(demo: tuple[Engine, str]) -> Iterator[TestClient]:
    for client, _ in browser(demo, "officer", "GD"):
        yield client


def table(html: str, table_id: str) -> str:
    match = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert match, f"no table {table_id}"
    return match.group(1)


def pct(x: float) -> str:
    return f"{x * 100:.2f}"


def shown(x: float) -> str:
    """A share as the Vietnamese page shows it: 0-100 with one decimal and a decimal comma."""
    return f"{x * 100:.1f}".replace(".", ",")


def test_league_shows_the_scorecards_numbers_ranks_and_tiers(admin: TestClient, demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    page = admin.get(f"/staff/results/{WAVE}/league?level=commune")
    assert page.status_code == 200
    html = page.text
    ws = wave_scores(engine, wave_code=WAVE, level="commune")
    by_code = {u.code: i for i, u in enumerate(ws.units)}
    ranked = ROW.findall(table(html, "league"))
    assert len(ranked) == int(ws.league.ranked.sum()) >= 5
    for code, cells in ranked:
        i = by_code[code]
        e = ws.estimate(i)
        found = CI.search(cells)
        assert found and found.groups() == (pct(e.point), pct(e.lower), pct(e.upper)), code
        rank = re.search(r'data-rank="(\d+)" data-rank-lower="(\d+)" data-rank-upper="(\d+)"', cells)
        assert rank and tuple(map(int, rank.groups())) == (
            ws.league.rank[i],
            ws.league.marginal_lower[i],
            ws.league.marginal_upper[i],
        )
        assert f'data-n="{e.n}"' in cells
        assert '<svg class="ci"' in cells  # the interval drawn as a bar
        tiers = re.findall(r'class="badge (up|same|down)">([^<]+)<', cells)
        assert [t for t, _ in tiers] == [
            {1: "up", 0: "same", -1: "down"}[int(ws.league.tier_target[i])],
            {1: "up", 0: "same", -1: "down"}[int(ws.league.tier_total[i])],
        ]
    # the rank column is ordered by rank
    ranks = [int(r) for r in re.findall(r'data-rank="(\d+)"', table(html, "league"))]
    assert ranks == sorted(ranks)
    # insufficient data: listed apart, never ranked
    unranked = [code for code, _ in ROW.findall(table(html, "unranked"))]
    assert sorted(unranked) == sorted(u.code for i, u in enumerate(ws.units) if not ws.league.ranked[i])
    # the best unit's row shows its 95% interval, as the scorecard computed it, in the index cell (the third),
    # and its bar is labelled with the same interval; both in the page's language (Vietnamese: decimal comma)
    _ = gettext_for("vi")
    best_code, best_cells = ranked[0]
    e = ws.estimate(by_code[best_code])
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", best_cells, re.S)]
    lower, upper = shown(e.lower), shown(e.upper)
    assert cells[2] == f"{shown(e.point)} ({lower}–{upper})"
    assert f'aria-label="{_("95% interval")} {lower}–{upper}"' in best_cells
    # the sentence on reading an interval, at the 95% level
    read = re.search(r'<p class="read" id="how-to-read">(.*?)</p>', html, re.S)
    assert read and unescape(read.group(1)) == _(HOW_TO_READ, level="95")
    assert 'id="caterpillar"' in html and 'id="funnel"' in html
    assert "<script" not in html


def test_league_sorts_and_filters(admin: TestClient, demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    html = admin.get(f"/staff/results/{WAVE}/league?level=commune&sort=index&lang=en").text
    points = [float(m[0]) for m in CI.findall(table(html, "league"))]
    assert points == sorted(points, reverse=True)
    assert (
        "Index (95% interval)" in html and 'href="?level=commune&amp;element=index&amp;channel=all&amp;sort=n"' in html
    )
    html = admin.get(f"/staff/results/{WAVE}/league?level=district&field=land&channel=receipt&element=staff").text
    ws = wave_scores(engine, wave_code=WAVE, level="district", field="land", channel="receipt", measure="staff")
    unfiltered = wave_scores(engine, wave_code=WAVE, level="district", measure="staff")
    assert ws.responses < unfiltered.responses
    by_code = {u.code: i for i, u in enumerate(ws.units)}
    rows = ROW.findall(table(html, "league")) + ROW.findall(table(html, "unranked"))
    assert rows
    for code, cells in rows:
        found = CI.search(cells)
        if found:
            e = ws.estimate(by_code[code])
            assert found.groups() == (pct(e.point), pct(e.lower), pct(e.upper))


def test_overview_headline_and_changes(admin: TestClient, demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    html = admin.get("/staff/results?level=commune").text
    top = wave_scores(engine, wave_code=WAVE, level="province", scope="subtree")
    e = top.estimate(0)
    headline = re.search(r'<div class="card" id="headline">(.*?)</div>', html, re.S)
    found = CI.search(headline.group(1)) if headline else None
    assert found and found.groups() == (pct(e.point), pct(e.lower), pct(e.upper))
    assert "90" in html and "95" in html and "2030" in html  # the plan targets
    now = wave_scores(engine, wave_code=WAVE, level="commune")
    change = compare_waves(wave_scores(engine, wave_code="2025", level="commune"), now)
    shown = {m for m in re.findall(r'data-diff="([-\d.]+)"', table(html, "changed"))}
    expected = {f"{change.diff[i] * 100:.2f}" for i in np.flatnonzero(change.significant)}
    assert shown == expected
    lowest = CI.findall(table(html, "lowest"))
    assert float(lowest[0][0]) == min(float(m[0]) for m in CI.findall(table(html, "highest")) + lowest)


def test_unit_page_matches_the_scorecard(admin: TestClient, demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    commune = unit(engine, "GD-C01") if _exists(engine, "GD-C01") else _first_child(engine, "GD")
    html = admin.get(f"/staff/results/{WAVE}/units/{commune.id}").text
    ws = wave_scores(engine, wave_code=WAVE, level="commune")
    g = next(i for i, u in enumerate(ws.units) if u.id == commune.id)
    for measure, index in re.findall(r'<tr data-measure="([^"]+)".*?data-index="([-\d.]+)"', html, re.S):
        assert index == pct(float(ws.card.point[g, ws.card.column(measure)])), measure
    change = compare_waves(wave_scores(engine, wave_code="2025", level="commune"), ws)
    shown = re.search(r'id="change">.*?data-diff="([-\d.]+)"', html, re.S)
    assert shown and shown.group(1) == f"{change.diff[g] * 100:.2f}"
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in html and 'id="trend"' in html
    assert 'id="expectations"' in html and "%" in html
    assert 'id="comments"' in html


def test_scoping_on_the_server(
    district_leader: TestClient, district_officer: TestClient, demo: tuple[Engine, str]
) -> None:
    engine, _ = demo
    gd = unit(engine, "GD")
    outside = _first_child(engine, next(c for c in ("TPTN", "HT", "TB") if _exists(engine, c)))
    assert district_leader.get(f"/staff/results/{WAVE}/units/{outside.id}").status_code == 403
    assert district_leader.get(f"/staff/results/{WAVE}/units/{outside.id}/scorecard.csv").status_code == 403
    assert district_leader.get(f"/staff/results/{WAVE}/units/999999").status_code == 404
    assert district_leader.get(f"/staff/results/{WAVE}/microdata.csv").status_code == 403
    html = district_leader.get(f"/staff/results/{WAVE}/league?level=commune").text
    codes = [c for c, _ in ROW.findall(table(html, "league"))] + [c for c, _ in ROW.findall(table(html, "unranked"))]
    with Session(engine) as s:
        inside = set(s.scalars(select(col(Unit.code)).where(col(Unit.path).startswith(gd.path), col(Unit.id) != gd.id)))
    assert codes and set(codes) <= inside
    rows = list(csv.reader(io.StringIO(district_officer.get(f"/staff/results/{WAVE}/microdata.csv").text)))
    assert len(rows) > 1 and {r[1] for r in rows[1:]} <= inside | {gd.code}


def test_exports_open_with_the_same_numbers(admin: TestClient, demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    ws = wave_scores(engine, wave_code=WAVE, level="commune")
    by_code = {u.code: i for i, u in enumerate(ws.units)}
    response = admin.get(f"/staff/results/{WAVE}/league.xlsx?level=commune")
    assert response.status_code == 200 and "attachment" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    head = next(k for k, r in enumerate(rows) if r[0] in ("Mã đơn vị", "Unit code"))
    checked = 0
    for r in rows[head + 1 :]:
        i = by_code[str(r[0])]
        if r[8] is not None:
            assert r[8] == pytest.approx(ws.card.point[i, ws.card.column("index")] * 100)
            assert r[11] == ws.estimate(i).n
            checked += 1
    assert checked >= 5
    commune = _first_child(engine, "GD")
    book = load_workbook(io.BytesIO(admin.get(f"/staff/results/{WAVE}/units/{commune.id}/scorecard.xlsx").content))
    assert book.active is not None
    values = list(book.active.iter_rows(values_only=True))
    g = by_code[commune.code]
    overall = next(r for r in values if r[1] == "index")
    assert overall[3] == pytest.approx(ws.card.point[g, ws.card.column("index")] * 100)
    text = admin.get(f"/staff/results/{WAVE}/units/{commune.id}/scorecard.csv").content.decode("utf-8-sig")
    line = next(r for r in csv.reader(io.StringIO(text)) if len(r) > 3 and r[1] == "index")
    assert line[3] == f"{ws.card.point[g, ws.card.column('index')] * 100:.2f}"
    codebook = admin.get(f"/staff/results/{WAVE}/codebook.csv")
    assert codebook.status_code == 200 and "staff_polite" in codebook.content.decode("utf-8-sig")


def test_board_serves_stored_scores_and_refreshes_only_stale_ones(demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    board = Board(engine, cost_factor=0)  # refresh as soon as the wave changes
    first = scores(board, wave_code=WAVE, level="district")
    assert scores(board, wave_code=WAVE, level="district") is first  # served, not recomputed
    assert board.refresh() == 0  # nothing changed
    with Session(engine) as s, s.begin():
        wave_id = s.scalars(select(col(Wave.id)).where(col(Wave.code) == WAVE)).one()
        mark_responses_changed(s, wave_id=int(wave_id or 0))
    assert board.refresh() == 1
    again = scores(board, wave_code=WAVE, level="district")
    assert again is not first
    assert np.allclose(again.card.point, first.card.point, equal_nan=True)


def test_an_expensive_result_is_refreshed_at_most_once_per_five_times_its_cost(demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    board = Board(engine, cost_factor=1e6)  # as if each computation had taken ages
    first = scores(board, wave_code=WAVE, level="district")
    with Session(engine) as s, s.begin():
        wave_id = s.scalars(select(col(Wave.id)).where(col(Wave.code) == WAVE)).one()
        mark_responses_changed(s, wave_id=int(wave_id or 0))
    assert board.refresh() == 0  # changed, but too soon after the last (costly) computation
    assert scores(board, wave_code=WAVE, level="district") is first
    board.cost_factor = 0
    assert board.refresh() == 1


def test_a_result_is_refreshed_no_more_often_than_the_minimum_interval(demo: tuple[Engine, str]) -> None:
    engine, _ = demo
    board = Board(engine, cost_factor=0, min_interval=3600)  # cheap, but the setting says once an hour
    first = scores(board, wave_code=WAVE, level="district")
    with Session(engine) as s, s.begin():
        wave_id = s.scalars(select(col(Wave.id)).where(col(Wave.code) == WAVE)).one()
        mark_responses_changed(s, wave_id=int(wave_id or 0))
    assert board.refresh() == 0
    assert scores(board, wave_code=WAVE, level="district") is first
    board.min_interval = 0
    assert board.refresh() == 1


def _exists(engine: Engine, code: str) -> bool:
    with Session(engine) as s:
        return s.scalars(select(col(Unit.id)).where(col(Unit.code) == code)).first() is not None


def _first_child(engine: Engine, code: str) -> Unit:
    parent = unit(engine, code)
    with Session(engine) as s:
        child = s.scalars(select(Unit).where(col(Unit.parent_id) == parent.id).order_by(col(Unit.code))).first()
        assert child is not None
        s.expunge(child)
        return child


def test_prewarm_computes_the_open_waves_league_tables_before_anyone_asks(
    demo_db: tuple[Engine, DemoSummary, str],
) -> None:
    from survey.demo.load import CURRENT_WAVE
    from survey.leader.board import prewarm

    engine, _summary, _url = demo_db
    board = Board(engine)
    computed = prewarm(board)
    assert computed >= 2 and len(board) == computed  # every level of every open wave, nothing else
    calls: list[int] = []

    def recompute() -> WaveScores:
        calls.append(1)
        raise AssertionError("computed on request")

    key = ("scores", CURRENT_WAVE, "district", "own", "index", "all", None, True)  # True: count reviewed
    ws = board.get(key, recompute, wave_code=CURRENT_WAVE)
    assert calls == [] and ws.level == "district"  # served from the board: nothing computed on request
    assert scores(board, wave_code=CURRENT_WAVE, level="district") is ws
