"""Receipt codes for one-stop systems: "is this transaction selected, and if so, what is its code?"

Selection is Bernoulli with the stratum's planned probability (``Quota.probability``; every transaction
when the wave has no plan for the stratum). The coin is an HMAC of the transaction reference, and a
selected transaction's code is derived from the same HMAC, so asking twice about one transaction gives
the same answer and the same code, even across a crash between the two questions. What is stored is
the reference's HMAC (never the dossier number), the stratum and the decision; the code, as always,
only as its SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.api.keys import Caller
from survey.db.audited import issue_receipt_codes
from survey.db.models import (
    Channel,
    IssuedTransaction,
    ProcedureField,
    Quota,
    ReceiptCode,
    Unit,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.errors import ConflictError, ForbiddenError, NotFoundError
from survey.receipts import codes


@dataclass(frozen=True, slots=True)
class Stratum:
    wave: Wave
    unit: Unit
    field: ProcedureField | None


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer for one transaction. ``code`` is set only when it is selected."""

    selected: bool
    probability: float
    repeated: bool
    code: str | None
    expires_on: date | None


def find_stratum(
    session: Session, caller: Caller, *, wave_code: str, unit_code: str, field_code: str | None
) -> Stratum:
    """The wave, unit and field named, checked: the wave takes receipt codes and is not closed, the unit is
    in its scope and in the key's subtree."""
    wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
    if wave is None:
        raise NotFoundError(f"No wave with code '{wave_code}'.")
    unit = session.scalars(select(Unit).where(col(Unit.code) == unit_code)).first()
    if unit is None:
        raise NotFoundError(f"No unit with code '{unit_code}'.")
    if not caller.covers(unit.path):
        raise ForbiddenError(f"This API key may not issue codes for unit '{unit_code}'.")
    field = None
    if field_code is not None:
        field = session.scalars(select(ProcedureField).where(col(ProcedureField.code) == field_code)).first()
        if field is None:
            raise NotFoundError(f"No procedure field with code '{field_code}'.")
    if wave.status == WaveStatus.closed.value:
        raise ConflictError(f"Wave '{wave_code}' is closed.")
    if not wave.allows(Channel.receipt):
        raise ConflictError(f"Wave '{wave_code}' does not take receipt codes (channels: {wave.channels}).")
    in_scope = session.scalar(
        select(func.count()).where(col(WaveUnit.wave_id) == wave.id, col(WaveUnit.unit_id) == unit.id)
    )
    if not in_scope:
        raise ConflictError(f"Unit '{unit_code}' is not surveyed in wave '{wave_code}'.")
    return Stratum(wave, unit, field)


def selection_probability(session: Session, stratum: Stratum) -> float:
    """The stratum's planned probability; 1 when the wave has no plan for it (every transaction is asked)."""
    if stratum.field is None:
        return 1.0
    p = session.scalar(
        select(col(Quota.probability)).where(
            col(Quota.wave_id) == stratum.wave.id,
            col(Quota.unit_id) == stratum.unit.id,
            col(Quota.field_id) == stratum.field.id,
        )
    )
    return 1.0 if p is None else float(p)


def decide(
    session: Session,
    stratum: Stratum,
    *,
    transaction_ref: str,
    secret: str,
    today: date,
    valid_days: int,
) -> Decision:
    """Select or not, store the decision (once), and spend nothing: commits its own transaction."""
    wave_id = pk(stratum.wave)
    ref_hash = codes.keyed_hash(secret, f"txn:{wave_id}", transaction_ref.strip())
    probability = selection_probability(session, stratum)
    selected = codes.keyed_uniform(secret, "select", ref_hash) < probability
    expires = min(today + timedelta(days=valid_days), stratum.wave.ends_on)
    repeated = False
    try:
        with session.begin_nested():
            session.add(
                IssuedTransaction(
                    wave_id=wave_id,
                    ref_hash=ref_hash,
                    unit_id=pk(stratum.unit),
                    field_id=stratum.field.id if stratum.field else None,
                    selected=selected,
                    asked_on=today,
                )
            )
            session.flush()
    except IntegrityError:
        repeated = True
        earlier = session.scalars(
            select(IssuedTransaction).where(
                col(IssuedTransaction.wave_id) == wave_id, col(IssuedTransaction.ref_hash) == ref_hash
            )
        ).one()
        field_id = stratum.field.id if stratum.field else None
        if earlier.unit_id != stratum.unit.id or earlier.field_id != field_id:
            raise ConflictError(
                "This transaction reference was already used for another unit or procedure field in this wave."
            ) from None
        selected = earlier.selected  # the first answer stands, even if the plan changed since
    code = None
    if selected:
        code = codes.derive_receipt_code(secret, ref_hash)
        digest = codes.code_hash(code)
        known = session.scalar(select(col(ReceiptCode.expires_on)).where(col(ReceiptCode.code_hash) == digest))
        if known is None:
            session.add(
                ReceiptCode(
                    code_hash=digest,
                    wave_id=wave_id,
                    unit_id=pk(stratum.unit),
                    field_id=stratum.field.id if stratum.field else None,
                    issued_on=today,
                    expires_on=expires,
                )
            )
        else:
            expires = known
    session.commit()
    return Decision(selected, probability, repeated, code, expires if selected else None)


def issue_batch(
    session: Session, stratum: Stratum, *, count: int, today: date, valid_days: int, actor: str
) -> tuple[list[str], date]:
    """``count`` fresh codes for printing (audited; commits)."""
    fresh = issue_receipt_codes(
        session,
        wave_code=stratum.wave.code,
        unit_id=pk(stratum.unit),
        field_id=stratum.field.id if stratum.field else None,
        count=count,
        valid_days=valid_days,
        actor=actor,
        today=today,
    )
    session.commit()
    return fresh, min(today + timedelta(days=valid_days), stratum.wave.ends_on)
