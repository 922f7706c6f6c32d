"""Demo fieldwork: transactions arrive at one-stop counters, some are selected, some citizens answer.

Everything goes through the real paths: the issuing service decides and derives the code exactly as
the API does, and each answer is stored by the citizen journey's ``resolve_receipt`` and ``store``; then the
mixing buffer is flushed whole, current bucket included (``survey.citizen.mixer.flush_everything``), so the
answers count at once: demonstration data only, never a live survey.
Only the citizens are simulated (answers drawn by the demo generator). For demonstrations and for
watching quota progress move (``sipas simulate`` then ``sipas quota``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from faker import Faker
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data.generator import UnitProfile, responses
from survey.api import issuing
from survey.api.keys import Caller
from survey.citizen import mixer, services
from survey.db.bounded import BoundedDb
from survey.db.models import ProcedureField, QuestionnaireVersion, Quota, Unit, Wave
from survey.demo.load import form_shape
from survey.errors import NotFoundError
from survey.questionnaires.spec import spec_of
from survey.settings import Settings

SIMULATOR = Caller(key_id=0, prefix="simulate", scopes=frozenset({"issue"}), unit_path="/")


@dataclass(frozen=True, slots=True)
class Arrivals:
    transactions: int
    selected: int
    answered: int


def simulate_arrivals(
    engine: Engine,
    settings: Settings,
    *,
    wave_code: str,
    transactions: int,
    response_rate: float,
    seed: int,
    today: date | None = None,
) -> Arrivals:
    """``transactions`` completed at counters (strata drawn in proportion to their frame volume); each is
    put to the issuing service, and a selected one is answered with probability ``response_rate``."""
    rng = np.random.default_rng(seed)
    today = today or settings.today()
    with Session(engine) as session:
        wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
        if wave is None:
            raise NotFoundError(f"No wave with code '{wave_code}'.")
        strata = session.execute(
            select(col(Unit.code), col(ProcedureField.code), col(Quota.population))
            .join(Unit, col(Unit.id) == col(Quota.unit_id))
            .join(ProcedureField, col(ProcedureField.id) == col(Quota.field_id))
            .where(col(Quota.wave_id) == wave.id, col(Quota.population) > 0)
            .order_by(col(Unit.code), col(ProcedureField.code))
        ).all()
        if not strata:
            raise NotFoundError(f"Wave '{wave_code}' has no plan yet: run 'sipas plan {wave_code} --save' first.")
        version = session.get(QuestionnaireVersion, wave.questionnaire_version_id)
        assert version is not None
        spec = spec_of(version)
        volume = np.array([s[2] for s in strata], dtype=np.float64)
        drawn = rng.choice(len(strata), size=transactions, p=volume / volume.sum())
        batch = secrets.token_hex(4)
        chosen_codes: list[str] = []
        n_selected = 0
        for i, s in enumerate(drawn):
            unit_code, field_code, _ = strata[int(s)]
            stratum = issuing.find_stratum(
                session, SIMULATOR, wave_code=wave_code, unit_code=unit_code, field_code=field_code
            )
            decision = issuing.decide(
                session,
                stratum,
                transaction_ref=f"SIM-{batch}-{i}",
                secret=settings.secret_key,
                today=today,
                valid_days=settings.receipt_code_valid_days,
            )
            n_selected += decision.selected
            if decision.code is not None and rng.random() < response_rate:
                chosen_codes.append(decision.code)
        answers = responses(
            rng,
            Faker("vi_VN"),
            form_shape(spec),
            unit_level=np.array([float(rng.uniform(0.78, 0.97))]),
            units=[UnitProfile(0, (), 0.0, ())],
            counts=np.array([len(chosen_codes)]),
            start=today - timedelta(days=6),  # a week has weekdays (times are not used: submit stamps now)
            end=today,
        )
        session.commit()
    answered = 0
    for j, code in enumerate(chosen_codes):
        with engine.begin() as conn:
            target = services.resolve_receipt(conn, code, today)
            services.store(
                conn,
                services.Submission(
                    target=target,
                    answers=answers.answers[j].tobytes(),
                    comment=answers.comments[j],
                    submission_key=secrets.token_hex(32),
                    now=datetime.now(UTC),
                    bucket_minutes=settings.time_bucket_minutes,
                ),
            )
        answered += 1
    # The answers wait in the mixing buffer until their time bucket ends; a demonstration counts them at once.
    mixer.flush_everything(BoundedDb(engine))
    return Arrivals(transactions, n_selected, answered)
