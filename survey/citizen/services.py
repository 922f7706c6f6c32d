"""Every query and transaction of the citizen journey."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from survey import codes
from survey.db.models import (
    Channel,
    ProcedureField,
    QuestionnaireVersion,
    ReceiptCode,
    Response,
    ServicePoint,
    Unit,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.errors import GoneError, NotFoundError
from survey.i18n import N_
from survey.questionnaire import Spec, from_definition


class CodeAlreadyUsed(GoneError):
    """The receipt code has been spent: a thank-you, not an error, for the citizen."""

    template = "citizen/used.html"


class SurveyClosed(GoneError):
    template = "errors/closed.html"


@dataclass(frozen=True, slots=True)
class SurveyTarget:
    """Everything a survey page needs to know about where a response will go."""

    channel: Channel
    wave_id: int
    version_id: int
    spec: Spec
    unit: Unit
    field: ProcedureField | None = None
    point: ServicePoint | None = None
    code_hash: str | None = None

    @property
    def unit_id(self) -> int:
        return pk(self.unit)

    @property
    def field_id(self) -> int | None:
        return pk(self.field) if self.field else None

    @property
    def service_point_id(self) -> int | None:
        return pk(self.point) if self.point else None

    @property
    def form_target(self) -> str:
        """What the page's form token is bound to: this receipt code, or this counter in this wave."""
        return f"r:{self.code_hash}" if self.code_hash else f"c:{self.service_point_id}:{self.wave_id}"

    def unit_name(self, locale: str) -> str:
        return self.unit.name_en if locale == "en" else self.unit.name_vi

    def field_name(self, locale: str) -> str | None:
        if self.field is None:
            return None
        return self.field.name_en if locale == "en" else self.field.name_vi

    def service_point_name(self, locale: str) -> str | None:
        if self.point is None:
            return None
        return self.point.name_en if locale == "en" else self.point.name_vi


_SPECS: dict[tuple[int, str], Spec] = {}


def spec_of(version: QuestionnaireVersion) -> Spec:
    """The validated spec of a stored version, cached by id and content hash: a published version never
    changes, and a draft's edits change its hash (so no serialising the definition to key the cache)."""
    assert version.id is not None
    key = (version.id, version.content_hash)
    spec = _SPECS.get(key)
    if spec is None:
        spec = from_definition(version.definition)
        if len(_SPECS) >= 256:
            _SPECS.clear()
        _SPECS[key] = spec
    return spec


def _wave_is_open(wave: Wave, today: date) -> bool:
    return wave.status == WaveStatus.open.value and wave.starts_on <= today <= wave.ends_on


def resolve_receipt(session: Session, *, raw_code: str, today: date) -> SurveyTarget:
    """The survey a receipt code opens, or the reason it cannot be answered."""
    code = codes.normalise(raw_code)
    if code is None:
        raise NotFoundError(N_("This code is not valid. Please check the letters and numbers on your receipt."))
    digest = codes.code_hash(code)
    row = session.execute(
        select(ReceiptCode, Wave, Unit, QuestionnaireVersion)
        .join(Wave, col(Wave.id) == col(ReceiptCode.wave_id))
        .join(Unit, col(Unit.id) == col(ReceiptCode.unit_id))
        .join(QuestionnaireVersion, col(QuestionnaireVersion.id) == col(Wave.questionnaire_version_id))
        .where(col(ReceiptCode.code_hash) == digest)
    ).first()
    if row is None:
        raise NotFoundError(N_("We could not find this code. Please check the letters and numbers on your receipt."))
    receipt, wave, unit, version = row
    if receipt.spent:
        raise CodeAlreadyUsed(N_("This code has already been used. Thank you for your answers."))
    if not _wave_is_open(wave, today):
        raise SurveyClosed(N_("This survey has closed. Thank you for your interest."))
    if receipt.expires_on < today:
        raise GoneError(N_("This code has expired. Codes can be used for a limited time after your visit."))
    fld = session.get(ProcedureField, receipt.field_id) if receipt.field_id else None
    return SurveyTarget(Channel.receipt, pk(wave), pk(version), spec_of(version), unit, field=fld, code_hash=digest)


def resolve_counter(session: Session, *, token: str, today: date) -> SurveyTarget:
    """The survey a counter's QR poster opens: the newest open wave covering its unit that allows counters."""
    if not token or len(token) > 40:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    row = session.execute(
        select(ServicePoint, Unit)
        .join(Unit, col(Unit.id) == col(ServicePoint.unit_id))
        .where(col(ServicePoint.counter_token) == token, col(ServicePoint.active).is_(True))
    ).first()
    if row is None:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    point, unit = row
    waves = session.execute(
        select(Wave, QuestionnaireVersion)
        .join(WaveUnit, col(WaveUnit.wave_id) == col(Wave.id))
        .join(QuestionnaireVersion, col(QuestionnaireVersion.id) == col(Wave.questionnaire_version_id))
        .where(col(WaveUnit.unit_id) == unit.id)
        .order_by(col(Wave.starts_on).desc(), col(Wave.id).desc())
    ).all()
    candidates = [(w, v) for w, v in waves if w.allows(Channel.counter)]
    open_now = [(w, v) for w, v in candidates if _wave_is_open(w, today)]
    if not open_now:
        raise SurveyClosed(N_("There is no survey open at this counter at the moment. Thank you for your interest."))
    wave, version = open_now[0]
    return SurveyTarget(Channel.counter, pk(wave), pk(version), spec_of(version), unit, point=point)


def bucket(moment: datetime, minutes: int) -> datetime:
    """``moment`` in UTC, rounded down to a multiple of ``minutes`` since midnight."""
    moment = moment.astimezone(UTC)
    since_midnight = moment.hour * 60 + moment.minute
    start = since_midnight - since_midnight % minutes
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=start)


class AlreadyReceived(Exception):
    """The same page was sent twice (same form token): the first copy is stored, nothing more is."""


def submit(
    session: Session,
    *,
    target: SurveyTarget,
    answers: bytes,
    comment: str | None,
    submission_key: str,
    now: datetime,
    bucket_minutes: int,
    flags: int = 0,
) -> None:
    """Store one response, spending its receipt code in the same transaction.

    ``flags`` are the integrity flags it earned (``survey.integrity.flags``): a suspect response is stored
    flagged, never dropped.

    Raises ``CodeAlreadyUsed`` when the code was spent before (by another submission, perhaps at the
    same moment), ``AlreadyReceived`` when this very page was stored already; nothing is written then.
    """
    values: dict[str, Any] = {
        "wave_id": target.wave_id,
        "unit_id": target.unit_id,
        "service_point_id": target.service_point_id,
        "field_id": target.field_id,
        "channel": int(target.channel),
        "questionnaire_version_id": target.version_id,
        "submitted_at": bucket(now, bucket_minutes),
        "answers": answers,
        "comment": comment,
        "flags": int(flags),
        "submission_key": submission_key,
    }
    try:
        if target.code_hash is not None:
            spent = session.execute(
                update(ReceiptCode)
                .where(col(ReceiptCode.code_hash) == target.code_hash, col(ReceiptCode.spent).is_(False))
                .values(spent=True)
            )
            if spent.rowcount != 1:  # type: ignore[attr-defined]
                session.rollback()
                raise CodeAlreadyUsed(N_("This code has already been used. Thank you for your answers."))
        session.execute(Response.__table__.insert().values(**values))  # type: ignore[attr-defined]
        session.commit()
    except IntegrityError:
        session.rollback()
        if session.execute(select(exists().where(col(Response.submission_key) == submission_key))).scalar():
            raise AlreadyReceived() from None
        raise


def page_was_stored(session: Session, *, raw_code: str, token: Any, secret: str, max_age_s: int) -> bool:
    """Whether this very page of this receipt code (its signed form token) is the one already stored.

    A phone that lost the network after sending its answers sends the same page again; the code is spent
    by then, but it was spent by this page, so the citizen should see the same thank-you.
    """
    code = codes.normalise(raw_code)
    if code is None or not isinstance(token, str):
        return False
    try:
        form = codes.verify_form_token(secret, f"r:{codes.code_hash(code)}", token, max_age_s=max_age_s)
    except (codes.BadToken, codes.ExpiredToken):
        return False
    return bool(session.execute(select(exists().where(col(Response.submission_key) == form.submission_key))).scalar())
