"""The demo province: Tây Ninh's real units, a year of frame counts, responses that spread out."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from faker import Faker
from litestar.testing import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR, generator
from survey.app import create_app
from survey.db.models import FrameCount, QuestionnaireVersion, ReceiptCode, Response, Unit, UnitLevel, Wave
from survey.demo.load import CURRENT_WAVE, DemoSummary, form_shape
from survey.questionnaires.spec import NOT_APPLICABLE, load_file, spec_of
from survey.results.arrays import load_wave
from tests.conftest import DEMO_RESPONSES, load_small_demo, make_settings

N_RESPONSES = DEMO_RESPONSES


def _load(path: Path, seed: int = 11) -> tuple[Engine, DemoSummary, str]:
    return load_small_demo(path, seed=seed)


@pytest.fixture(scope="module")
def demo(demo_db: tuple[Engine, DemoSummary, str]) -> tuple[Engine, DemoSummary, str]:
    return demo_db


def test_demo_has_tay_ninh_units_by_level(demo: tuple[Engine, DemoSummary, str]) -> None:
    engine, summary, _ = demo
    with Session(engine) as s:
        by_level: dict[str, int] = dict(
            s.execute(
                select(col(UnitLevel.code), func.count())
                .join(Unit, col(Unit.level_id) == col(UnitLevel.id))
                .group_by(UnitLevel.code)
            ).all()
        )
        names = set(s.scalars(select(col(Unit.name_vi))).all())
        ninh_son = s.scalars(select(Unit).where(col(Unit.name_vi) == "Phường Ninh Sơn")).one()
        parent = s.get(Unit, ninh_son.parent_id)
    assert by_level == {"province": 1, "department": 18, "district": 9, "commune": 94}
    assert summary.units == 122
    assert {"Tỉnh Tây Ninh", "Sở Tư pháp", "Sở Y tế", "Huyện Gò Dầu", "Thị xã Trảng Bàng", "Xã Trường Tây"} <= names
    assert parent is not None and parent.name_vi == "Thành phố Tây Ninh"
    assert ninh_son.path == f"/{parent.parent_id}/{parent.id}/{ninh_son.id}/"


def test_demo_has_a_year_of_monthly_frame_counts(demo: tuple[Engine, DemoSummary, str]) -> None:
    engine, summary, _ = demo
    with Session(engine) as s:
        months = s.scalar(select(func.count(func.distinct(FrameCount.period_start))))
        negative = s.scalar(select(func.count()).where(col(FrameCount.transactions) < 0))
        per_year = s.scalar(
            select(func.sum(FrameCount.transactions)).where(
                col(FrameCount.period_start) >= date(2025, 1, 1), col(FrameCount.period_start) < date(2026, 1, 1)
            )
        )
        units_with_frame = s.scalar(select(func.count(func.distinct(FrameCount.unit_id))))
    assert months is not None and months >= 12
    assert negative == 0
    assert units_with_frame == 121  # every unit but the province itself
    # Tây Ninh handles several hundred thousand dossiers a year (about 1.4 million in 2021-2023)
    assert per_year is not None and 200_000 < per_year < 1_000_000
    assert summary.frame_rows > 121 * 12


def test_demo_responses_spread_between_units(demo: tuple[Engine, DemoSummary, str]) -> None:
    engine, summary, _ = demo
    assert summary.responses == N_RESPONSES
    with Session(engine) as s:
        wave = s.scalars(select(Wave).where(col(Wave.code) == CURRENT_WAVE)).one()
        version = s.get(QuestionnaireVersion, wave.questionnaire_version_id)
        assert version is not None
        spec = spec_of(version)
        total = s.scalar(select(func.count()).select_from(Response))
    assert total == N_RESPONSES
    arrays = load_wave(engine, wave_id=wave.id or 0, version_id=version.id or 0, spec=spec)
    criteria = [spec.column_index[(i.id, None)] for i in spec.items if i.role == "criterion"]
    answers = arrays.answers[:, criteria]
    valid = (answers >= 1) & (answers <= 5)
    satisfied = (answers >= 4) & valid
    assert 0.01 < (answers == NOT_APPLICABLE).mean() < 0.10  # some "not applicable", never scored low
    units, inverse = np.unique(arrays.unit_id, return_inverse=True)
    n = np.bincount(inverse)
    share = np.bincount(inverse, weights=satisfied.sum(1)) / np.bincount(inverse, weights=valid.sum(1))
    big = n >= 30  # about 26 responses per unit on average in this small load
    assert big.sum() >= 15
    assert share[big].min() < 0.84 and share[big].max() > 0.92, (share[big].min(), share[big].max())
    assert 0.80 < satisfied.sum() / valid.sum() < 0.95
    assert len(units) == 121


def test_true_unit_satisfaction_spans_75_to_98_percent() -> None:
    truth = generator.true_satisfaction(np.random.default_rng(3), 10_000)
    assert truth.min() >= 0.75 and truth.max() <= 0.98
    assert np.quantile(truth, 0.05) < 0.80 and np.quantile(truth, 0.95) > 0.95
    assert 0.86 < truth.mean() < 0.90


def test_the_generator_draws_the_same_answers_for_the_same_seed() -> None:
    """Golden digest, recorded when the generator still read the questionnaire ``Spec`` itself: handing it a
    ``form_shape`` instead changed nothing the demo draws (a new numpy or Faker may change the draws too)."""
    digest = hashlib.sha256()
    for name in ("sipas_5x22.yaml", "quick_rating.yaml"):
        rng = np.random.default_rng(5)
        faker = Faker("vi_VN")
        faker.seed_instance(5)
        units = [generator.UnitProfile(0, (0, 1), 100.0, (7,)), generator.UnitProfile(1, (2,), 50.0, ())]
        batch = generator.responses(
            rng,
            faker,
            form_shape(load_file(QUESTIONNAIRE_DIR / name)),
            unit_level=np.array([0.8, 0.9]),
            units=units,
            counts=np.array([300, 200]),
            start=date(2026, 1, 1),
            end=date(2026, 3, 31),
        )
        for part in (batch.unit_index, batch.field_index, batch.service_point, batch.answers):
            digest.update(np.ascontiguousarray(part).tobytes())
        digest.update(repr((batch.submitted_at, batch.comments)).encode())
    assert digest.hexdigest() == "8fb1fc54f4607186fc4bf64da872a541c62b8f67f52fed15b2278fa2593d8b70"


def test_demo_links_open_the_survey_and_codes_are_stored_hashed(demo: tuple[Engine, DemoSummary, str]) -> None:
    engine, summary, url = demo
    assert len(summary.receipt_links) == 9 and len(summary.counter_links) == 3
    with TestClient(app=create_app(make_settings(url), engine)) as client:
        for _, link in summary.receipt_links + summary.counter_links:
            path = link.removeprefix("http://testserver")
            page = client.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            assert "Gửi câu trả lời" in page.text
    code = summary.receipt_links[0][1].rsplit("/", 1)[1]
    with Session(engine) as s:
        stored = s.scalars(
            select(ReceiptCode).where(col(ReceiptCode.code_hash) == hashlib.sha256(code.encode()).hexdigest())
        ).one()
        anywhere = s.scalar(select(func.count()).select_from(ReceiptCode).where(col(ReceiptCode.code_hash) == code))
    assert stored.spent is False and anywhere == 0


def test_demo_is_deterministic_given_a_seed(demo: tuple[Engine, DemoSummary, str], tmp_path: Path) -> None:
    engine, _, _ = demo
    again, _, _ = _load(tmp_path / "again.db")
    other, _, _ = _load(tmp_path / "other.db", seed=12)

    def fingerprint(e: Engine) -> str:
        with Session(e) as s:
            rows = s.execute(
                select(
                    col(Response.unit_id), col(Response.submitted_at), col(Response.answers), col(Response.comment)
                ).order_by(col(Response.id))
            ).all()
            frame = s.execute(
                select(col(FrameCount.unit_id), col(FrameCount.period_start), col(FrameCount.transactions)).order_by(
                    col(FrameCount.id)
                )
            ).all()
        return hashlib.sha256(repr((rows, frame)).encode()).hexdigest()

    try:
        assert fingerprint(engine) == fingerprint(again)
        assert fingerprint(engine) != fingerprint(other)
    finally:
        again.dispose()
        other.dispose()
