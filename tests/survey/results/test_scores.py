"""League tables from the demo database: the numbers equal an independent computation, the cache
follows new responses, flagged responses stay out, and ``sipas score`` prints what the engine says."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.cli import main
from survey.db.models import FrameCount, Quota, Response, Unit, Wave
from survey.demo.load import CURRENT_WAVE, DemoSummary
from survey.errors import NotFoundError
from survey.integrity.flags import HEADLINE
from survey.results.scores import mark_responses_changed, wave_scores
from tests.conftest import cli_settings

Demo = tuple[Engine, DemoSummary, str]


def _criterion_rows(engine: Engine) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit ids, satisfied counts, valid counts) straight from the rows, without the scoring code."""
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        rows = s.execute(
            select(col(Response.unit_id), col(Response.answers)).where(
                col(Response.wave_id) == wave.id, col(Response.flags).in_(HEADLINE)
            )
        ).all()
    units = np.array([r[0] for r in rows])
    levels = np.array([list(r[1][:22]) for r in rows])  # the 22 criteria are the first 22 columns
    return units, ((levels >= 4) & (levels <= 5)), ((levels >= 1) & (levels <= 5))


def test_commune_table_equals_a_direct_computation(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="commune", weighting="equal")
    units, sat, valid = _criterion_rows(engine)
    assert len(ws.units) == 94 and ws.weighting == "equal"
    for i, unit in enumerate(ws.units[:20]):
        rows = units == unit.id
        shares = sat[rows].sum(0) / valid[rows].sum(0)  # equal weights: plain shares per criterion
        assert ws.card.point[i, :22] == pytest.approx(shares)
        elements = [
            shares[0:4].mean(),
            shares[4:9].mean(),
            shares[9:15].mean(),
            shares[15:18].mean(),
            shares[18:22].mean(),
        ]
        assert ws.estimate(i).point == pytest.approx(np.mean(elements))
        assert ws.estimate(i).n == rows.sum()
        e = ws.estimate(i)
        assert e.lower < e.point < e.upper
    # the province is every response, pooled
    assert ws.province.n == units.size


def test_frame_weights_are_transactions_over_responses_per_stratum(demo_db: Demo) -> None:
    """Weighted criterion shares recomputed by hand: w = N_h / r_h over (unit, field) strata."""
    engine, _, _ = demo_db
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="district")
    assert ws.weighting.startswith("frame")
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        # the wave's saved quotas (another test may have saved a plan), else the frame of its period
        quota_rows = s.execute(
            select(col(Quota.unit_id), col(Quota.field_id), col(Quota.population)).where(col(Quota.wave_id) == wave.id)
        ).all()
        frame = {(u, f): int(n) for u, f, n in quota_rows} or {
            (u, f): int(n)
            for u, f, n in s.execute(
                select(col(FrameCount.unit_id), col(FrameCount.field_id), func.sum(FrameCount.transactions))
                .where(col(FrameCount.period_start) >= wave.starts_on, col(FrameCount.period_start) <= wave.ends_on)
                .group_by(col(FrameCount.unit_id), col(FrameCount.field_id))
            ).all()
        }
        rows = s.execute(
            select(col(Response.unit_id), col(Response.field_id), col(Response.answers)).where(
                col(Response.wave_id) == wave.id, col(Response.flags).in_(HEADLINE)
            )
        ).all()
    responses: dict[tuple[int, int | None], int] = defaultdict(int)
    for u, f, _ in rows:
        responses[(u, f)] += 1
    for i, unit in enumerate(ws.units[:4]):
        num = den = 0.0
        for u, f, answers in rows:
            if u != unit.id:
                continue
            w = frame[(u, f or 0)] / responses[(u, f)]
            level = answers[0]  # the first criterion
            if 1 <= level <= 5:
                den += w
                num += w * (level >= 4)
        assert ws.card.point[i, 0] == pytest.approx(num / den)


def test_league_ranks_are_consistent_with_the_estimates(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="district")
    lg = ws.league
    points = np.array([ws.estimate(i).point for i in range(len(ws.units))])
    ranked = np.flatnonzero(lg.ranked)
    assert ranked.size == 9
    for i in map(int, ranked):
        assert lg.rank[i] == 1 + int((points[ranked] > points[i]).sum())
        assert lg.marginal_lower[i] <= lg.rank[i] <= lg.marginal_upper[i]
        assert lg.simultaneous_lower[i] <= lg.marginal_lower[i] and lg.marginal_upper[i] <= lg.simultaneous_upper[i]
        e = ws.estimate(i)
        expected = 1 if e.lower > ws.target else -1 if e.upper < ws.target else 0
        assert lg.tier_target[i] == expected
    assert lg.seed == 20240101 and lg.draws == 1000


def test_units_under_the_minimum_are_not_ranked(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="commune", min_responses=10**6)
    assert not ws.league.ranked.any() and (ws.league.rank == 0).all()


def test_subtree_scope_pools_the_district_with_its_communes(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    own = wave_scores(engine, wave_code=CURRENT_WAVE, level="district")
    tree = wave_scores(engine, wave_code=CURRENT_WAVE, level="district", scope="subtree")
    communes = wave_scores(engine, wave_code=CURRENT_WAVE, level="commune")
    with Session(engine) as s:
        parent = dict(s.execute(select(col(Unit.id), col(Unit.parent_id))).all())
    for i, district in enumerate(own.units):
        below = sum(communes.estimate(j).n for j, c in enumerate(communes.units) if parent[c.id] == district.id)
        assert tree.estimate(i).n == own.estimate(i).n + below


def test_cache_follows_new_and_flagged_responses(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    before = wave_scores(engine, wave_code=CURRENT_WAVE, level="department")
    assert wave_scores(engine, wave_code=CURRENT_WAVE, level="department") is before  # cached
    unit = before.units[0]
    with Session(engine) as s, s.begin():
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        wave_id = wave.id or 0
        s.execute(
            insert(Response).values(
                wave_id=wave.id,
                unit_id=unit.id,
                field_id=None,
                service_point_id=None,
                channel=1,
                questionnaire_version_id=wave.questionnaire_version_id,
                submitted_at=datetime.now(UTC),
                answers=bytes([5] * 22 + [0] * 15),
                comment=None,
                flags=0,
                submission_key=None,
            )
        )
    after = wave_scores(engine, wave_code=CURRENT_WAVE, level="department")
    assert after is not before
    assert after.estimate(0).n == before.estimate(0).n + 1
    assert after.estimate(0).point > before.estimate(0).point
    with Session(engine) as s, s.begin():
        s.execute(update(Response).where(col(Response.unit_id) == unit.id).values(flags=1))
        mark_responses_changed(s, wave_id=wave_id)
    flagged = wave_scores(engine, wave_code=CURRENT_WAVE, level="department")
    assert flagged.estimate(0).n == 0 and not flagged.league.ranked[0]
    assert flagged.excluded_flagged == after.estimate(0).n
    kept = wave_scores(engine, wave_code=CURRENT_WAVE, level="department", include_flagged=True)
    assert kept.estimate(0).n == after.estimate(0).n
    with Session(engine) as s, s.begin():
        s.execute(update(Response).where(col(Response.unit_id) == unit.id).values(flags=0))
        mark_responses_changed(s, wave_id=wave_id)
    assert wave_scores(engine, wave_code=CURRENT_WAVE, level="department").estimate(0).n == after.estimate(0).n


def test_unknown_wave_level_and_measure_are_named(demo_db: Demo) -> None:
    engine, _, _ = demo_db
    with pytest.raises(NotFoundError, match="No wave with code 'nope'"):
        wave_scores(engine, wave_code="nope")
    with pytest.raises(NotFoundError, match=r"No unit level 'village'.*commune"):
        wave_scores(engine, wave_code=CURRENT_WAVE, level="village")
    with pytest.raises(NotFoundError, match="No measure 'speed'"):
        wave_scores(engine, wave_code=CURRENT_WAVE, level="district", measure="speed")


@pytest.fixture()
def cli_env(demo_db: Demo, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Demo]:
    with cli_settings(monkeypatch, tmp_path, demo_db[2]):
        yield demo_db


def test_sipas_score_prints_the_engines_numbers(cli_env: Demo) -> None:
    engine, _, _ = cli_env
    ws = wave_scores(engine, wave_code=CURRENT_WAVE, level="district")
    result = CliRunner().invoke(main, ["score", "--wave", CURRENT_WAVE, "--level", "district", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["table"]["province"]["n"] == ws.province.n
    assert data["table"]["seed"] == 20240101
    by_code = {row["code"]: row for row in data["rows"]}
    for i, unit in enumerate(ws.units):
        row = by_code[unit.code]
        assert row["index"] == round(ws.estimate(i).point * 100, 2)
        assert row["rank"] == ws.league.rank[i]
        assert (row["rank_lower"], row["rank_upper"]) == (ws.league.marginal_lower[i], ws.league.marginal_upper[i])
    table = CliRunner().invoke(main, ["score", "--wave", CURRENT_WAVE, "--level", "district"])
    assert table.exit_code == 0 and "Read an interval as" in table.output and "Huyện Gò Dầu" in table.output
    csv_out = CliRunner().invoke(main, ["score", "--wave", CURRENT_WAVE, "--level", "department", "--format", "csv"])
    assert csv_out.exit_code == 0
    lines = csv_out.output.splitlines()
    assert lines[0] == f"# wave: {CURRENT_WAVE}" and any(line.startswith("rank,rank_lower") for line in lines)
    bad = CliRunner().invoke(main, ["score", "--wave", "nope"])
    assert bad.exit_code == 1 and "No wave with code 'nope'" in bad.output and "Traceback" not in bad.output


def test_change_between_waves_in_the_cli(cli_env: Demo) -> None:
    engine, _, _ = cli_env
    result = CliRunner().invoke(
        main, ["score", "--wave", CURRENT_WAVE, "--level", "district", "--compare-with", "2025", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    before = wave_scores(engine, wave_code="2025", level="district")
    after = wave_scores(engine, wave_code=CURRENT_WAVE, level="district")
    for row in rows:
        i = next(k for k, u in enumerate(after.units) if u.code == row["code"])
        expected = (after.estimate(i).point - before.estimate(i).point) * 100
        assert row["change_since_2025"] == pytest.approx(round(expected, 2), abs=0.011)
        assert row["change_lower"] < row["change_since_2025"] < row["change_upper"]
        assert row["change_significant"] == (row["change_lower"] > 0 or row["change_upper"] < 0)


def test_cli_on_an_unmigrated_database_says_what_to_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with cli_settings(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'empty.db'}"):
        result = CliRunner().invoke(main, ["score", "--wave", CURRENT_WAVE])
    assert result.exit_code == 1
    assert "no SIPAS tables yet: run `sipas db upgrade`" in result.output and "Traceback" not in result.output


def test_shrinkage_column_is_pulled_towards_the_mean_and_labelled(cli_env: Demo) -> None:
    result = CliRunner().invoke(main, ["score", "--wave", CURRENT_WAVE, "--level", "commune", "--shrinkage"])
    assert result.exit_code == 0 and "model-based, not the official figure" in result.output
    data = json.loads(
        CliRunner()
        .invoke(main, ["score", "--wave", CURRENT_WAVE, "--level", "commune", "--shrinkage", "--format", "json"])
        .output
    )
    mean = data["table"]["eb_prior_mean"]
    assert data["table"]["model_based_eb"].startswith("model-based")
    for row in data["rows"]:
        if row["index"] is None:
            continue
        low, high = sorted((row["index"], mean))
        assert low - 0.01 <= row["model_based_eb"] <= high + 0.01  # between the unit's own figure and the mean
