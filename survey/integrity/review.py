"""Reviewing flagged responses: who may decide, the review list, the decision with its reason, the alerts.

Segregation of duties: a response measures its unit, so no account of that unit decides on its flags.
An account is *inside* a unit when it is scoped at the unit or below it; a review must come from an
account scoped at a strict ancestor of the response's unit (``reviews_above``). A district's officer
sees his district's own flagged responses, read only, and a decision on one is refused (403); the
province's officers review them. Decisions need a reason, kept in the audit entry with the flags before
and after. API keys never review: there is no API route for it, and a decision needs a staff session.
Responses of a root unit have no level above them: they cannot be cleared on the web and stay out of
the headline figures.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from survey.auth.guards import ensure_in_scope
from survey.auth.services import Principal
from survey.db.audited import audit
from survey.db.models import Channel, IntegrityAlert, ProcedureField, Response, ServicePoint, Unit, Wave
from survey.errors import ConflictError, ForbiddenError, NotFoundError, SipasError
from survey.i18n import N_
from survey.integrity.flags import DECISIONS, SUSPICIOUS, Flag, reasons
from survey.results.scores import mark_responses_changed

REASON_MAX = 500
REVIEWED_ABOVE = N_("Reviewed above your unit")
OWN_UNIT = N_(
    "Flags on the responses of your own unit are reviewed above it: an officer of a higher unit confirms or "
    "clears them. They stay out of the headline figures until then."
)


def reviews_above(viewer: Principal, unit_path: str) -> bool:
    """Whether ``viewer`` may decide on flags of a unit at ``unit_path``: scoped at a strict ancestor of it."""
    return unit_path.startswith(viewer.unit_path) and unit_path != viewer.unit_path


class ReasonRequired(SipasError):
    def __init__(self) -> None:
        super().__init__(N_("Say why you decide so: a reason is required and kept in the audit log."))


# -- the review list ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlaggedResponse:
    """What a reviewer sees of a flagged response: where, when (coarse), how, why. Nothing about who."""

    id: int
    wave_code: str
    channel: str
    submitted_at: datetime
    flags: int

    @property
    def confirmed(self) -> bool:
        return bool(self.flags & Flag.CONFIRMED)

    @property
    def reasons(self) -> list[Flag]:
        return reasons(self.flags)


@dataclass(frozen=True)
class FlagGroup:
    """The flagged responses of one place (a counter, or a unit's receipt responses) for one reason.

    ``reviewable`` is False for the viewer's own unit: they are shown, but decided above it.
    """

    unit_name_vi: str
    unit_name_en: str
    point_name_vi: str | None
    point_name_en: str | None
    reason: Flag
    reviewable: bool
    responses: tuple[FlaggedResponse, ...]

    def place(self, locale: str) -> str:
        unit = self.unit_name_en if locale == "en" else self.unit_name_vi
        point = self.point_name_en if locale == "en" else self.point_name_vi
        return f"{unit} · {point}" if point else unit


def flagged_responses(session: Session, *, viewer: Principal, limit: int = 500) -> tuple[list[FlagGroup], int]:
    """Flagged responses of ``viewer``'s subtree (newest ``limit``), grouped by place and reason; and the total."""
    suspicious = col(Response.flags).op("&")(int(SUSPICIOUS)) != 0
    in_scope = col(Unit.path).startswith(viewer.unit_path, autoescape=True)
    total = session.scalar(
        select(func.count())
        .select_from(Response)
        .join(Unit, col(Unit.id) == col(Response.unit_id))
        .where(suspicious, in_scope)
    )
    rows = session.execute(
        select(
            col(Response.id),
            col(Wave.code),
            col(Response.channel),
            col(Response.submitted_at),
            col(Response.flags),
            col(Unit.name_vi),
            col(Unit.name_en),
            col(ServicePoint.name_vi),
            col(ServicePoint.name_en),
            col(Unit.path),
        )
        .join(Unit, col(Unit.id) == col(Response.unit_id))
        .join(Wave, col(Wave.id) == col(Response.wave_id))
        .outerjoin(ServicePoint, col(ServicePoint.id) == col(Response.service_point_id))
        .where(suspicious, in_scope)
        .order_by(col(Response.id).desc())
        .limit(limit)
    ).all()
    groups: dict[tuple[str, str, str | None, str | None, Flag, bool], list[FlaggedResponse]] = defaultdict(list)
    for rid, wave_code, channel, at, flags, unit_vi, unit_en, point_vi, point_en, path in rows:
        item = FlaggedResponse(int(rid or 0), wave_code, Channel(channel).name or "", at, int(flags))
        for reason in item.reasons:
            groups[(unit_vi, unit_en, point_vi, point_en, reason, reviews_above(viewer, path))].append(item)
    ordered = sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][2] or "", int(kv[0][4])))
    return [FlagGroup(*key, responses=tuple(items)) for key, items in ordered], int(total or 0)


# -- a decision ---------------------------------------------------------------------------------------------------


def review(
    session: Session,
    *,
    viewer: Principal,
    response_id: int,
    decision: Literal["confirm", "clear"],
    reason: str,
) -> tuple[int, int]:
    """A decision on a flagged response of a unit below ``viewer``'s: (flags before, flags after), audited.

    ``confirm`` keeps the reasons and adds ``CONFIRMED``; ``clear`` leaves only ``REVIEWED_OK`` (the audit
    entry keeps the reasons), which a rescan respects. In order: 404 for no such response, 403 outside
    the viewer's subtree, 403 for the viewer's own unit, ``ReasonRequired`` without a reason, 409 for a
    response that is not flagged.
    """
    row = session.get(Response, response_id)
    if row is None:
        raise NotFoundError(N_("There is no such response."))
    unit = ensure_in_scope(session, viewer, row.unit_id)
    if not reviews_above(viewer, unit.path):
        raise ForbiddenError(OWN_UNIT)
    reason = reason.strip()[:REASON_MAX]
    if not reason:
        raise ReasonRequired()
    before = int(row.flags)
    if not before & SUSPICIOUS:
        raise ConflictError(N_("This response is not flagged: there is nothing to review."))
    confirmed = (before & ~int(DECISIONS)) | int(Flag.CONFIRMED)
    after = confirmed if decision == "confirm" else int(Flag.REVIEWED_OK)
    session.execute(update(Response).where(col(Response.id) == response_id).values(flags=after))
    mark_responses_changed(session, wave_id=row.wave_id)
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action=f"integrity.{decision}",
        entity="response",
        entity_id=response_id,
        before={"flags": before, "reasons": [r.name for r in reasons(before)]},
        after={"flags": after, "reasons": [r.name for r in reasons(after)], "reason": reason},
    )
    session.commit()
    return before, after


# -- alerts to the level above ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert about a unit below the viewer's (``survey.integrity.issuance``), as the flags page lists it."""

    wave_code: str
    unit_name_vi: str
    unit_name_en: str
    addressed_vi: str | None
    addressed_en: str | None
    field_code: str | None
    kind: str
    codes_issued: int | None
    transactions: int | None
    responses: int
    updated_at: datetime

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi

    def addressed(self, locale: str) -> str | None:
        return self.addressed_en if locale == "en" else self.addressed_vi


def alerts_for(session: Session, *, viewer: Principal, limit: int = 200) -> list[Alert]:
    """Alerts about units strictly below ``viewer``'s, latest first: the units whose flags the viewer reviews."""
    parent = aliased(Unit)
    rows = session.execute(
        select(
            col(Wave.code),
            col(Unit.name_vi),
            col(Unit.name_en),
            col(parent.name_vi),
            col(parent.name_en),
            col(ProcedureField.code),
            col(IntegrityAlert.kind),
            col(IntegrityAlert.codes_issued),
            col(IntegrityAlert.transactions),
            col(IntegrityAlert.responses),
            col(IntegrityAlert.updated_at),
        )
        .join(Unit, col(Unit.id) == col(IntegrityAlert.unit_id))
        .join(Wave, col(Wave.id) == col(IntegrityAlert.wave_id))
        .outerjoin(parent, col(parent.id) == col(IntegrityAlert.addressed_to))
        .outerjoin(ProcedureField, col(ProcedureField.id) == col(IntegrityAlert.field_id))
        .where(col(Unit.path).startswith(viewer.unit_path, autoescape=True), col(Unit.id) != viewer.unit_id)
        .order_by(col(IntegrityAlert.updated_at).desc(), col(IntegrityAlert.id).desc())
        .limit(limit)
    ).all()
    return [Alert(*r) for r in rows]
