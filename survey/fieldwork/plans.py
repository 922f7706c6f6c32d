"""Wave plans: from the frame's transaction counts to a target and codes to issue per stratum.

Per reported unit (STATISTICS.md 6.1): Cochran's size for the unit's transactions in the frame
period at the chosen margin, inflated for the design effect and the expected response rate; then
allocated across the unit's procedure fields (proportional by default) with exact integer totals.
The selection probability of a stratum is what the one-stop system uses to offer a code to a
transaction (Bernoulli): codes to issue / transactions, at most 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from sampling.allocation import allocate
from sampling.selection import bernoulli_probability
from sampling.size import cochran
from survey.db.audited import audit
from survey.db.models import FrameCount, ProcedureField, Quota, Unit, Wave, WaveUnit
from survey.errors import NotFoundError, SipasError


@dataclass(frozen=True, slots=True)
class PlanRow:
    unit_code: str
    unit_name: str
    field_code: str
    population: int
    target: int
    codes_to_issue: int
    probability: float


@dataclass(frozen=True)
class WavePlan:
    wave_code: str
    frame_from: date
    frame_to: date
    margin: float
    level: float
    p: float
    deff: float
    response_rate: float
    method: str
    rows: tuple[PlanRow, ...]
    units_without_frame: tuple[str, ...]

    @property
    def total_target(self) -> int:
        return sum(r.target for r in self.rows)


def plan_wave(
    session: Session,
    *,
    wave_code: str,
    margin: float = 0.05,
    p: float = 0.5,
    level: float = 0.95,
    deff: float = 1.0,
    response_rate: float = 0.6,
    method: str = "proportional",
    frame_from: date | None = None,
    frame_to: date | None = None,
) -> WavePlan:
    """The plan of a wave (not saved): per unit Cochran's size, allocated over its fields."""
    wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
    if wave is None or wave.id is None:
        raise NotFoundError(f"No wave with code '{wave_code}'.")
    start = frame_from or wave.starts_on
    end = frame_to or wave.ends_on
    counts = session.execute(
        select(
            col(Unit.id),
            col(Unit.code),
            col(Unit.name_vi),
            col(ProcedureField.code),
            col(ProcedureField.id),
            func.sum(FrameCount.transactions),
        )
        .join(WaveUnit, col(WaveUnit.unit_id) == col(Unit.id))
        .join(FrameCount, col(FrameCount.unit_id) == col(Unit.id))
        .join(ProcedureField, col(ProcedureField.id) == col(FrameCount.field_id))
        .where(
            col(WaveUnit.wave_id) == wave.id, col(FrameCount.period_start) >= start, col(FrameCount.period_start) <= end
        )
        .group_by(col(Unit.id), col(Unit.code), col(Unit.name_vi), col(ProcedureField.code), col(ProcedureField.id))
        .order_by(col(Unit.code), col(ProcedureField.code))
    ).all()
    in_scope = (
        session.execute(
            select(col(Unit.code))
            .join(WaveUnit, col(WaveUnit.unit_id) == col(Unit.id))
            .where(col(WaveUnit.wave_id) == wave.id)
        )
        .scalars()
        .all()
    )
    by_unit: dict[str, list[tuple[str, str, int]]] = {}
    for _uid, ucode, uname, fcode, _fid, total in counts:
        by_unit.setdefault(ucode, []).append((uname, fcode, int(total or 0)))
    rows: list[PlanRow] = []
    for ucode, strata in by_unit.items():
        population = np.array([s[2] for s in strata])
        size = cochran(int(population.sum()), margin=margin, p=p, level=level, deff=deff, response_rate=response_rate)
        target = int(size.n_design)
        if target == 0:
            continue
        try:
            alloc = allocate(target, population, method=method)
        except ValueError as exc:
            raise SipasError(f"unit {ucode}: {exc}") from None
        codes = allocate(min(int(size.codes_to_issue), int(population.sum())), population, method=method).n
        prob = bernoulli_probability(alloc.n, population, response_rate=response_rate)
        for (uname, fcode, pop), t, c, pr in zip(strata, alloc.n, codes, np.atleast_1d(prob), strict=True):
            rows.append(PlanRow(ucode, uname, fcode, pop, int(t), int(c), round(float(pr), 6)))
    missing = tuple(sorted(set(in_scope) - set(by_unit)))
    return WavePlan(wave_code, start, end, margin, level, p, deff, response_rate, method, tuple(rows), missing)


def save_plan(session: Session, plan: WavePlan, *, actor: str) -> int:
    """Replace the wave's quotas with the plan, in the caller's transaction; audited."""
    wave = session.scalars(select(Wave).where(col(Wave.code) == plan.wave_code)).one()
    units = dict(session.execute(select(col(Unit.code), col(Unit.id))).all())
    fields = dict(session.execute(select(col(ProcedureField.code), col(ProcedureField.id))).all())
    before = session.scalar(select(func.count()).select_from(Quota).where(col(Quota.wave_id) == wave.id))
    session.execute(delete(Quota).where(col(Quota.wave_id) == wave.id))
    if plan.rows:
        session.execute(
            insert(Quota),
            [
                {
                    "wave_id": wave.id,
                    "unit_id": units[r.unit_code],
                    "field_id": fields[r.field_code],
                    "population": r.population,
                    "target": r.target,
                    "codes_to_issue": r.codes_to_issue,
                    "probability": r.probability,
                }
                for r in plan.rows
            ],
        )
    audit(
        session,
        actor=actor,
        action="save_plan",
        entity="wave",
        entity_id=wave.id,
        before={"quotas": int(before or 0)},
        after={
            "quotas": len(plan.rows),
            "target": plan.total_target,
            "margin": plan.margin,
            "response_rate": plan.response_rate,
            "method": plan.method,
        },
    )
    return len(plan.rows)
