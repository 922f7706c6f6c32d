"""Quota progress and response rates of a wave, moving as simulated fieldwork arrives; weights from the frame."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from sampling.quota import quota_progress
from sampling.weights import base_weights
from survey.cli import main
from survey.db.models import Channel, IssuedTransaction, ProcedureField, Quota, ReceiptCode, Response, Wave
from survey.demo.load import CURRENT_WAVE
from survey.fieldwork.plans import plan_wave, save_plan
from survey.fieldwork.progress import WaveProgress, elapsed_share, wave_progress
from survey.fieldwork.simulate import simulate_arrivals
from survey.integrity.flags import HEADLINE
from survey.results.scores import _design
from tests.conftest import cli_settings, load_small_demo, make_settings

TODAY = date(2026, 11, 22)


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, str]]:
    """A demo province of its own (the simulation adds responses) with the current wave planned at ±5 points."""
    engine, _summary, url = load_small_demo(tmp_path_factory.mktemp("fieldwork") / "demo.db")
    with Session(engine) as session, session.begin():
        save_plan(session, plan_wave(session, wave_code=CURRENT_WAVE, margin=0.05), actor="test")
    yield engine, url
    engine.dispose()


def _progress(engine: Engine) -> WaveProgress:
    with Session(engine) as session:
        return wave_progress(session, wave_code=CURRENT_WAVE, today=TODAY)


def _counts(engine: Engine) -> dict[tuple[int, int], tuple[int, int, int]]:
    """Straight from the tables: (kept responses, receipt responses, codes issued) per stratum."""
    with Session(engine) as s:
        wave_id = s.scalar(select(col(Wave.id)).where(col(Wave.code) == CURRENT_WAVE))
        out: dict[tuple[int, int], list[int]] = {}
        for unit, fld, channel in s.execute(
            select(col(Response.unit_id), col(Response.field_id), col(Response.channel)).where(
                col(Response.wave_id) == wave_id, col(Response.flags).in_(HEADLINE)
            )
        ):
            row = out.setdefault((unit, fld if fld is not None else -1), [0, 0, 0])
            row[0] += 1
            row[1] += channel == int(Channel.receipt)
        for unit, fld in s.execute(
            select(col(ReceiptCode.unit_id), col(ReceiptCode.field_id)).where(col(ReceiptCode.wave_id) == wave_id)
        ):
            out.setdefault((unit, fld if fld is not None else -1), [0, 0, 0])[2] += 1
    return {k: (v[0], v[1], v[2]) for k, v in out.items()}


def test_progress_counts_equal_the_tables(planned: tuple[Engine, str]) -> None:
    engine, _ = planned
    progress = _progress(engine)
    truth = _counts(engine)
    assert len(progress.strata) > 100
    with Session(engine) as session:
        field_ids = {f.code: int(f.id or 0) for f in session.scalars(select(ProcedureField))}
    for s in progress.strata:
        kept, receipt, issued = truth.get((s.unit_id, field_ids[s.field_code]), (0, 0, 0))
        assert (s.achieved, s.receipt_responses, s.codes_issued) == (kept, receipt, issued), s
        if issued:
            assert s.response_rate == pytest.approx(receipt / issued)
    # statuses are the pure core's, at the elapsed share of the wave's period
    with Session(engine) as session:
        wave = session.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        share = elapsed_share(wave, TODAY)
    assert progress.elapsed_share == pytest.approx(share)
    expected = quota_progress(
        np.array([s.target for s in progress.strata]),
        np.array([s.achieved for s in progress.strata]),
        elapsed_share=share,
    )
    assert [int(s.status) for s in progress.strata] == expected.status.tolist()
    assert sum(u.target for u in progress.units) == progress.target


def test_elapsed_share_runs_from_the_first_to_the_last_day() -> None:
    wave = Wave(
        code="w",
        name_vi="",
        name_en="",
        questionnaire_version_id=1,
        starts_on=date(2026, 1, 1),
        ends_on=date(2026, 1, 10),
    )
    assert elapsed_share(wave, date(2025, 12, 31)) == 0.0
    assert elapsed_share(wave, date(2026, 1, 1)) == pytest.approx(0.1)
    assert elapsed_share(wave, date(2026, 1, 5)) == pytest.approx(0.5)
    assert elapsed_share(wave, date(2026, 2, 1)) == 1.0


def test_quota_progress_moves_as_simulated_fieldwork_arrives(planned: tuple[Engine, str], tmp_path: Path) -> None:
    engine, url = planned
    before = _progress(engine)
    with Session(engine) as s:
        asked_before = s.scalar(select(func.count()).select_from(IssuedTransaction)) or 0
        mean_p = s.scalar(select(func.avg(Quota.probability)).where(col(Quota.population) > 0))
    result = simulate_arrivals(
        engine, make_settings(url), wave_code=CURRENT_WAVE, transactions=800, response_rate=0.7, seed=7, today=TODAY
    )
    after = _progress(engine)
    assert result.transactions == 800
    assert 0 < result.answered <= result.selected <= 800
    assert after.achieved - before.achieved == result.answered
    assert sum(s.codes_issued for s in after.strata) - sum(s.codes_issued for s in before.strata) == result.selected
    with Session(engine) as s:
        assert (s.scalar(select(func.count()).select_from(IssuedTransaction)) or 0) - asked_before == 800
    assert sum(s.transactions_asked for s in after.strata) >= 800
    # each stratum's answers are within its codes, and the truth table agrees after the simulation too
    assert all(s.receipt_responses <= s.codes_issued for s in after.strata if s.codes_issued)
    assert mean_p is not None and 0 < float(mean_p) < 1


def test_sipas_quota_prints_a_table_and_csv(
    planned: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    engine, url = planned
    progress = _progress(engine)
    with cli_settings(monkeypatch, tmp_path, url):
        table = CliRunner().invoke(main, ["quota", CURRENT_WAVE])
        by_stratum = CliRunner().invoke(main, ["quota", CURRENT_WAVE, "--by", "stratum", "--format", "csv"])
        by_unit = CliRunner().invoke(main, ["quota", CURRENT_WAVE, "--format", "csv"])
        missing = CliRunner().invoke(main, ["quota", "no-such-wave"])
    assert table.exit_code == 0, table.output
    assert f"{progress.achieved:,} of {progress.target:,} planned responses" in table.output
    rows = list(csv.DictReader(io.StringIO(by_stratum.output)))
    assert len(rows) == len(progress.strata)
    assert sum(int(r["achieved"]) for r in rows) == progress.achieved
    units = list(csv.DictReader(io.StringIO(by_unit.output)))
    assert {r["unit"] for r in units} == {u.unit_code for u in progress.units}
    assert missing.exit_code != 0 and "No wave with code 'no-such-wave'" in missing.output


def test_frame_weights_sum_to_the_frame_in_every_stratum() -> None:
    unit = np.array([1, 1, 1, 1, 2, 2, 2])
    fld = np.array([10, 10, 11, 11, 10, 10, 11])
    strata = unit * 100_003 + fld + 1
    populations = {(1, 10): 100, (1, 11): 50, (2, 10): 40, (2, 11): 9}
    design, label, diag = _design(unit, fld, strata, populations)
    assert "with fpc" in label and "collapsed" not in label
    for (u, f), n in populations.items():
        assert design.weights[(unit == u) & (fld == f)].sum() == pytest.approx(n)
    # the same as the sampling package's base weights N_h / r_h
    base = base_weights(np.array([100, 50, 40, 9]), np.array([2, 2, 2, 1]))
    assert design.weights[[0, 2, 4, 6]] == pytest.approx(base.by_stratum)
    assert diag is not None and diag.deff_kish == pytest.approx(
        len(design.weights) * (design.weights**2).sum() / design.weights.sum() ** 2
    )


def test_a_stratum_without_responses_is_collapsed_into_its_unit() -> None:
    unit = np.array([1, 1, 1, 2, 2])
    fld = np.array([10, 10, 11, 10, 10])
    strata = unit * 100_003 + fld + 1
    populations = {(1, 10): 100, (1, 11): 50, (1, 12): 30, (2, 10): 40, (2, 11): 20}
    design, label, _ = _design(unit, fld, strata, populations)
    assert "2 strata without responses collapsed" in label
    assert design.weights[unit == 1].sum() == pytest.approx(180)  # the unit's whole frame
    assert design.weights[unit == 2].sum() == pytest.approx(60)
    # within a unit the relative weights stay N_h / r_h
    assert design.weights[0] / design.weights[2] == pytest.approx((100 / 2) / (50 / 1))


def test_without_a_frame_every_response_weighs_the_same() -> None:
    unit = np.array([1, 1, 2])
    fld = np.array([10, 11, 10])
    strata = unit * 100_003 + fld + 1
    _, label, diag = _design(unit, fld, strata, {})
    assert label == "equal" and diag is None
    _, label, _ = _design(unit, fld, strata, {(1, 10): 5})
    assert label.startswith("equal (the frame misses")


def test_flagged_responses_leave_the_headline_and_cleared_ones_come_back(planned: tuple[Engine, str]) -> None:
    from survey.integrity.flags import Flag
    from survey.results.scores import mark_responses_changed, wave_scores

    engine, _ = planned
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        ids = s.scalars(
            select(col(Response.id)).where(col(Response.wave_id) == wave.id, col(Response.flags) == 0).limit(7)
        ).all()
    assert len(ids) == 7

    def set_flags(value: int) -> None:
        with Session(engine) as s, s.begin():
            s.execute(Response.__table__.update().where(Response.__table__.c.id.in_(ids)).values(flags=value))  # type: ignore[attr-defined]
            mark_responses_changed(s, wave_id=int(wave.id or 0))

    base = wave_scores(engine, wave_code=CURRENT_WAVE, level="district").responses
    before = _progress(engine)
    achieved, flagged = before.achieved, sum(s.flagged for s in before.strata)
    set_flags(int(Flag.TOO_FAST))
    assert wave_scores(engine, wave_code=CURRENT_WAVE, level="district").responses == base - 7
    after = _progress(engine)
    moved = sum(s.flagged for s in after.strata) - flagged
    assert moved > 0 and after.achieved == achieved - moved  # flagged ones no longer count towards quotas
    set_flags(int(Flag.REVIEWED_OK))  # an officer looked and cleared them
    assert wave_scores(engine, wave_code=CURRENT_WAVE, level="district").responses == base
    assert _progress(engine).achieved == achieved
    set_flags(int(Flag.TOO_FAST | Flag.CONFIRMED))
    assert wave_scores(engine, wave_code=CURRENT_WAVE, level="district").responses == base - 7
    set_flags(0)
