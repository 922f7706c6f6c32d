"""Writes shared by the command line, the demo and (later) the officer pages, each one audited."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import (
    AuditLog,
    Channel,
    Questionnaire,
    QuestionnaireVersion,
    ReceiptCode,
    VersionStatus,
    Wave,
    WaveStatus,
    WaveUnit,
)
from survey.errors import ConflictError, NotFoundError
from survey.questionnaires.spec import Spec
from survey.receipts import codes


def audit(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_id: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    user_id: int | None = None,
) -> None:
    """Append one entry to the audit log (in the caller's transaction)."""
    session.add(
        AuditLog(
            actor=actor,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=before,
            after=after,
            user_id=user_id,
        )
    )


def audit_change(
    session: Session,
    *,
    actor: str,
    entity: str,
    entity_id: Any,
    before: dict[str, Any],
    after: dict[str, Any],
    user_id: int | None = None,
) -> bool:
    """Audit an update with only the fields that changed; nothing when none did. Returns whether any did."""
    changed = [k for k in after if before.get(k) != after[k]]
    if not changed:
        return False
    audit(
        session,
        actor=actor,
        user_id=user_id,
        action="update",
        entity=entity,
        entity_id=entity_id,
        before={k: before.get(k) for k in changed},
        after={k: after[k] for k in changed},
    )
    return True


def publish_questionnaire(session: Session, spec: Spec, *, actor: str) -> QuestionnaireVersion:
    """Store ``spec`` as a published version (creating its questionnaire); the same content is reused."""
    questionnaire = session.scalars(select(Questionnaire).where(col(Questionnaire.code) == spec.code)).first()
    if questionnaire is None:
        questionnaire = Questionnaire(code=spec.code, title_vi=spec.title.vi, title_en=spec.title.en)
        session.add(questionnaire)
        session.flush()
    existing = session.scalars(
        select(QuestionnaireVersion).where(
            col(QuestionnaireVersion.questionnaire_id) == questionnaire.id,
            col(QuestionnaireVersion.version) == spec.version,
        )
    ).first()
    digest = spec.content_hash()
    if existing is not None:
        if existing.content_hash != digest:
            raise ConflictError(
                f"Questionnaire '{spec.code}' version {spec.version} is already published with different content; "
                "give the changed questionnaire a new version number."
            )
        return existing
    assert questionnaire.id is not None
    version = QuestionnaireVersion(
        questionnaire_id=questionnaire.id,
        version=spec.version,
        status=VersionStatus.published.value,
        definition=spec.to_definition(),
        content_hash=digest,
        published_at=datetime.now(UTC),
    )
    session.add(version)
    session.flush()
    audit(
        session,
        actor=actor,
        action="publish",
        entity="questionnaire_version",
        entity_id=version.id,
        after={"code": spec.code, "version": spec.version, "content_hash": digest},
    )
    return version


def issue_receipt_codes(
    session: Session,
    *,
    wave_code: str,
    unit_id: int,
    field_id: int | None,
    count: int,
    valid_days: int,
    actor: str,
    today: date | None = None,
) -> list[str]:
    """Create ``count`` fresh one-time codes for a wave, unit and field; returns them in compact form.

    Only their hashes are stored: the returned list is the one and only copy of the codes.
    """
    if not 1 <= count <= 100_000:
        raise ValueError("count must be between 1 and 100000")
    wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
    if wave is None:
        raise NotFoundError(f"No wave with code '{wave_code}'.")
    if wave.status == WaveStatus.closed.value:
        raise ConflictError(f"Wave '{wave_code}' is closed: its codes would only say the survey has closed.")
    if not wave.allows(Channel.receipt):
        raise ConflictError(f"Wave '{wave_code}' does not take receipt codes (channels: {wave.channels}).")
    in_scope = session.scalar(
        select(func.count()).where(col(WaveUnit.wave_id) == wave.id, col(WaveUnit.unit_id) == unit_id)
    )
    if not in_scope:
        raise ConflictError(f"Unit {unit_id} is not in the scope of wave '{wave_code}'.")
    today = today or datetime.now(UTC).date()
    fresh = [codes.new_receipt_code() for _ in range(count)]
    session.execute(
        insert(ReceiptCode),
        [
            {
                "code_hash": codes.code_hash(c),
                "wave_id": wave.id,
                "unit_id": unit_id,
                "field_id": field_id,
                "issued_on": today,
                "expires_on": min(today + timedelta(days=valid_days), wave.ends_on),
                "spent": False,
            }
            for c in fresh
        ],
    )
    audit(
        session,
        actor=actor,
        action="issue_codes",
        entity="wave",
        entity_id=wave.id,
        after={"unit_id": unit_id, "field_id": field_id, "count": count},
    )
    return fresh


def count_rows(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)
