"""Fieldwork of a wave: quota progress and response rates per stratum (unit x field) and per unit.

Counts come from grouped SQL (never one row per response). Response rates follow AAPOR's simplest
definition for each channel that has a denominator:

* per stratum, receipt responses / receipt codes issued (codes are the "invitations");
* per unit, all kept responses / transactions in the frame (the unit's population in the wave).

Flagged responses (other than those an officer cleared) are counted apart and not towards a quota;
they are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from sampling.quota import QuotaStatus, quota_progress
from survey.db.models import (
    Channel,
    IssuedTransaction,
    ProcedureField,
    Quota,
    ReceiptCode,
    Response,
    Unit,
    Wave,
)
from survey.errors import NotFoundError
from survey.integrity.flags import HEADLINE


@dataclass(frozen=True, slots=True)
class StratumProgress:
    unit_id: int
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    field_code: str
    population: int
    target: int
    achieved: int
    flagged: int
    expected_by_now: float
    status: QuotaStatus
    codes_issued: int
    receipt_responses: int
    transactions_asked: int

    @property
    def response_rate(self) -> float | None:
        """Receipt responses / receipt codes issued; None before any code is issued."""
        return self.receipt_responses / self.codes_issued if self.codes_issued else None


@dataclass(frozen=True, slots=True)
class UnitProgress:
    unit_id: int
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    population: int
    target: int
    achieved: int
    expected_by_now: float
    codes_issued: int
    receipt_responses: int
    status: QuotaStatus

    @property
    def response_rate(self) -> float | None:
        """Receipt responses / receipt codes issued in the unit."""
        return self.receipt_responses / self.codes_issued if self.codes_issued else None

    @property
    def coverage(self) -> float | None:
        """Kept responses / transactions in the frame: the share of the unit's users who answered."""
        return self.achieved / self.population if self.population else None


@dataclass(frozen=True)
class WaveProgress:
    wave_code: str
    today: date
    elapsed_share: float
    strata: tuple[StratumProgress, ...]
    units: tuple[UnitProgress, ...]
    unplanned_responses: int  # responses in strata without a quota (kept, weighted like the rest)

    @property
    def target(self) -> int:
        return sum(s.target for s in self.strata)

    @property
    def achieved(self) -> int:
        return sum(s.achieved for s in self.strata)

    def counts(self) -> dict[QuotaStatus, int]:
        return {status: sum(1 for s in self.strata if s.status == status) for status in QuotaStatus}


def elapsed_share(wave: Wave, today: date) -> float:
    """Share of the wave's period elapsed by the end of ``today`` (0 before it starts, 1 after it ends)."""
    days = (wave.ends_on - wave.starts_on).days + 1
    done = (today - wave.starts_on).days + 1
    return float(min(max(done / days, 0.0), 1.0))


def wave_progress(
    session: Session, *, wave_code: str, today: date, unit_path: str = "/", tolerance: float = 0.9
) -> WaveProgress:
    """Quota progress of a wave's planned strata inside the subtree at ``unit_path``."""
    wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
    if wave is None:
        raise NotFoundError(f"No wave with code '{wave_code}'.")
    quotas = session.execute(
        select(
            col(Quota.unit_id),
            col(Quota.field_id),
            col(Quota.population),
            col(Quota.target),
            col(Unit.code),
            col(Unit.name_vi),
            col(Unit.name_en),
            col(ProcedureField.code),
        )
        .join(Unit, col(Unit.id) == col(Quota.unit_id))
        .join(ProcedureField, col(ProcedureField.id) == col(Quota.field_id))
        .where(col(Quota.wave_id) == wave.id, col(Unit.path).startswith(unit_path))
        .order_by(col(Unit.code), col(ProcedureField.code))
    ).all()
    in_subtree = select(col(Unit.id)).where(col(Unit.path).startswith(unit_path))
    kept = func.sum(case((col(Response.flags).in_(HEADLINE), 1), else_=0))
    receipt = func.sum(
        case(((col(Response.channel) == int(Channel.receipt)) & col(Response.flags).in_(HEADLINE), 1), else_=0)
    )
    responses = {
        (int(u), -1 if f is None else int(f)): (int(k or 0), int(n or 0) - int(k or 0), int(r or 0))
        for u, f, k, n, r in session.execute(
            select(col(Response.unit_id), col(Response.field_id), kept, func.count(), receipt)
            .where(col(Response.wave_id) == wave.id, col(Response.unit_id).in_(in_subtree))
            .group_by(col(Response.unit_id), col(Response.field_id))
        )
    }
    issued = {
        (int(u), -1 if f is None else int(f)): int(n)
        for u, f, n in session.execute(
            select(col(ReceiptCode.unit_id), col(ReceiptCode.field_id), func.count())
            .where(col(ReceiptCode.wave_id) == wave.id, col(ReceiptCode.unit_id).in_(in_subtree))
            .group_by(col(ReceiptCode.unit_id), col(ReceiptCode.field_id))
        )
    }
    asked = {
        (int(u), -1 if f is None else int(f)): int(n)
        for u, f, n in session.execute(
            select(col(IssuedTransaction.unit_id), col(IssuedTransaction.field_id), func.count())
            .where(col(IssuedTransaction.wave_id) == wave.id, col(IssuedTransaction.unit_id).in_(in_subtree))
            .group_by(col(IssuedTransaction.unit_id), col(IssuedTransaction.field_id))
        )
    }
    share = elapsed_share(wave, today)
    targets = np.array([q[3] for q in quotas], dtype=np.int64)
    achieved = np.array([responses.get((q[0], q[1]), (0, 0, 0))[0] for q in quotas], dtype=np.int64)
    progress = quota_progress(targets, achieved, elapsed_share=share, tolerance=tolerance) if quotas else None
    strata: list[StratumProgress] = []
    for i, (uid, fid, pop, target, ucode, uvi, uen, fcode) in enumerate(quotas):
        k, flagged, rec = responses.get((uid, fid), (0, 0, 0))
        assert progress is not None
        strata.append(
            StratumProgress(
                unit_id=uid,
                unit_code=ucode,
                unit_name_vi=uvi,
                unit_name_en=uen,
                field_code=fcode,
                population=pop,
                target=target,
                achieved=k,
                flagged=flagged,
                expected_by_now=float(progress.expected_by_now[i]),
                status=QuotaStatus(int(progress.status[i])),
                codes_issued=issued.get((uid, fid), 0),
                receipt_responses=rec,
                transactions_asked=asked.get((uid, fid), 0),
            )
        )
    planned = {(s.unit_id, int(q[1])) for s, q in zip(strata, quotas, strict=True)}
    unplanned = sum(v[0] for key, v in responses.items() if key not in planned)
    return WaveProgress(wave.code, today, share, tuple(strata), _by_unit(strata, share, tolerance), unplanned)


def _by_unit(strata: list[StratumProgress], share: float, tolerance: float) -> tuple[UnitProgress, ...]:
    order: dict[int, list[StratumProgress]] = {}
    for s in strata:
        order.setdefault(s.unit_id, []).append(s)
    if not order:
        return ()
    target = np.array([sum(s.target for s in g) for g in order.values()], dtype=np.int64)
    achieved = np.array([sum(s.achieved for s in g) for g in order.values()], dtype=np.int64)
    progress = quota_progress(target, achieved, elapsed_share=share, tolerance=tolerance)
    units = []
    for i, group in enumerate(order.values()):
        first = group[0]
        units.append(
            UnitProgress(
                unit_id=first.unit_id,
                unit_code=first.unit_code,
                unit_name_vi=first.unit_name_vi,
                unit_name_en=first.unit_name_en,
                population=sum(s.population for s in group),
                target=int(target[i]),
                achieved=int(achieved[i]),
                expected_by_now=float(progress.expected_by_now[i]),
                codes_issued=sum(s.codes_issued for s in group),
                receipt_responses=sum(s.receipt_responses for s in group),
                status=QuotaStatus(int(progress.status[i])),
            )
        )
    return tuple(units)
