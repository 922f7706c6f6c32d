"""Every query and transaction of the citizen journey: a survey page is one indexed query, a submission one short
transaction (the code spent, the answer put in the mixing buffer of ``survey.citizen.mixer``). Each function
takes a SQLAlchemy connection; the handlers run them in a worker thread through ``survey.db.bounded`` (``read``
for lookups, ``write`` for a transaction committed whole or not at all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, insert, select, update

from survey.db.models import (
    Channel,
    PendingResponse,
    ProcedureField,
    QuestionnaireVersion,
    ReceiptCode,
    Response,
    ServicePoint,
    Unit,
    Wave,
    WaveStatus,
    WaveUnit,
)
from survey.errors import GoneError, NotFoundError
from survey.i18n import N_
from survey.questionnaires.spec import Spec, cached_spec
from survey.receipts import codes


class CodeAlreadyUsed(GoneError):
    """The receipt code has been spent: a thank-you, not an error, for the citizen."""

    template = "citizen/used.html"


class SurveyClosed(GoneError):
    template = "errors/closed.html"


@dataclass(frozen=True, slots=True)
class Place:
    """A unit, field or counter as a citizen sees it: its id and its names."""

    id: int
    name_vi: str
    name_en: str

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class SurveyTarget:
    """Everything a survey page needs to know about where a response will go."""

    channel: Channel
    wave_id: int
    version_id: int
    version_hash: str  # the version's content hash: with its id, the key of everything cached about it
    spec: Spec
    unit: Place
    field: Place | None = None
    point: Place | None = None
    code_hash: str | None = None

    @property
    def unit_id(self) -> int:
        return self.unit.id

    @property
    def field_id(self) -> int | None:
        return self.field.id if self.field else None

    @property
    def service_point_id(self) -> int | None:
        return self.point.id if self.point else None

    @property
    def form_target(self) -> str:
        """What the page's form token is bound to: this receipt code, or this counter in this wave."""
        return f"r:{self.code_hash}" if self.code_hash else f"c:{self.service_point_id}:{self.wave_id}"

    def where(self, locale: str) -> str:
        """The line under the page's title: the unit, then the field or the counter."""
        return " · ".join(p.name(locale) for p in (self.unit, self.field, self.point) if p is not None)


_rc, _w, _v = ReceiptCode.__table__.c, Wave.__table__.c, QuestionnaireVersion.__table__.c  # type: ignore[attr-defined]
_u, _f, _p = Unit.__table__.c, ProcedureField.__table__.c, ServicePoint.__table__.c  # type: ignore[attr-defined]
_wu, _r, _pr = WaveUnit.__table__.c, Response.__table__.c, PendingResponse.__table__.c  # type: ignore[attr-defined]


def _stored_spec(conn: Connection, version_id: int, content_hash: str) -> Spec:
    """The validated spec of a version by id, read from the database only when it is not cached."""

    def definition() -> dict[str, Any]:
        found = conn.execute(select(_v.definition).where(_v.id == version_id)).scalar_one_or_none()
        if found is None:
            raise NotFoundError(N_("We could not find this page."))
        return dict(found)

    return cached_spec(version_id, content_hash, definition)


def _wave_is_open(status: str, starts_on: date, ends_on: date, today: date) -> bool:
    return status == WaveStatus.open.value and starts_on <= today <= ends_on


_RECEIPT = (
    select(
        _rc.spent,
        _rc.expires_on,
        _w.id,
        _w.status,
        _w.starts_on,
        _w.ends_on,
        _w.questionnaire_version_id,
        _v.content_hash,
        _u.id,
        _u.name_vi,
        _u.name_en,
        _f.id,
        _f.name_vi,
        _f.name_en,
    )
    .select_from(ReceiptCode.__table__)  # type: ignore[attr-defined]
    .join(Wave.__table__, _w.id == _rc.wave_id)  # type: ignore[attr-defined]
    .join(Unit.__table__, _u.id == _rc.unit_id)  # type: ignore[attr-defined]
    .join(QuestionnaireVersion.__table__, _v.id == _w.questionnaire_version_id)  # type: ignore[attr-defined]
    .outerjoin(ProcedureField.__table__, _f.id == _rc.field_id)  # type: ignore[attr-defined]
)


def resolve_receipt(conn: Connection, raw_code: str, today: date) -> SurveyTarget:
    """The survey a receipt code opens, or the reason it cannot be answered (one indexed query)."""
    code = codes.normalise(raw_code)
    if code is None:
        raise NotFoundError(N_("This code is not valid. Please check the letters and numbers on your receipt."))
    digest = codes.code_hash(code)
    row = conn.execute(_RECEIPT.where(_rc.code_hash == digest)).first()
    if row is None:
        raise NotFoundError(N_("We could not find this code. Please check the letters and numbers on your receipt."))
    spent, expires_on, wave_id, status, starts_on, ends_on, version_id, content_hash, *names = row
    if spent:
        raise CodeAlreadyUsed(N_("This code has already been used. Thank you for your answers."))
    if not _wave_is_open(status, starts_on, ends_on, today):
        raise SurveyClosed(N_("This survey has closed. Thank you for your interest."))
    if expires_on < today:
        raise GoneError(N_("This code has expired. Codes can be used for a limited time after your visit."))
    unit = Place(*names[:3])
    fld = Place(*names[3:]) if names[3] is not None else None
    spec = _stored_spec(conn, version_id, content_hash)
    return SurveyTarget(Channel.receipt, wave_id, version_id, content_hash, spec, unit, field=fld, code_hash=digest)


_COUNTER = select(_p.id, _p.name_vi, _p.name_en, _u.id, _u.name_vi, _u.name_en).join_from(
    ServicePoint.__table__,  # type: ignore[attr-defined]
    Unit.__table__,  # type: ignore[attr-defined]
    _u.id == _p.unit_id,
)
_COUNTER_WAVES = (
    select(_w.id, _w.status, _w.starts_on, _w.ends_on, _w.channels, _w.questionnaire_version_id, _v.content_hash)
    .select_from(Wave.__table__)  # type: ignore[attr-defined]
    .join(WaveUnit.__table__, _wu.wave_id == _w.id)  # type: ignore[attr-defined]
    .join(QuestionnaireVersion.__table__, _v.id == _w.questionnaire_version_id)  # type: ignore[attr-defined]
    .order_by(_w.starts_on.desc(), _w.id.desc())
)


def resolve_counter(conn: Connection, token: str, today: date) -> SurveyTarget:
    """The survey a counter's QR poster opens: the newest open wave covering its unit that allows counters."""
    if not token or len(token) > 40:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    row = conn.execute(_COUNTER.where(and_(_p.counter_token == token, _p.active.is_(True)))).first()
    if row is None:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    point, unit = Place(*row[:3]), Place(*row[3:])
    for wave_id, status, starts_on, ends_on, channels, version_id, content_hash in conn.execute(
        _COUNTER_WAVES.where(_wu.unit_id == unit.id)
    ):
        allowed = Channel.counter.name in {c.strip() for c in channels.split(",")}
        if allowed and _wave_is_open(status, starts_on, ends_on, today):
            spec = _stored_spec(conn, version_id, content_hash)
            return SurveyTarget(Channel.counter, wave_id, version_id, content_hash, spec, unit, point=point)
    raise SurveyClosed(N_("There is no survey open at this counter at the moment. Thank you for your interest."))


def bucket(moment: datetime, minutes: int) -> datetime:
    """``moment`` in UTC, rounded down to a multiple of ``minutes`` since midnight."""
    moment = moment.astimezone(UTC)
    since_midnight = moment.hour * 60 + moment.minute
    start = since_midnight - since_midnight % minutes
    return moment.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=start)


class AlreadyReceived(Exception):
    """The same page was sent twice (same form token): the first copy is stored, nothing more is."""


@dataclass(frozen=True, slots=True)
class Submission:
    """One page's answers, ready to store. ``flags`` are the integrity flags it earned
    (``survey.integrity.flags``): a suspect response is stored flagged, never dropped."""

    target: SurveyTarget
    answers: bytes
    comment: str | None
    submission_key: str
    now: datetime
    bucket_minutes: int
    flags: int = 0

    def row(self) -> dict[str, Any]:
        t = self.target
        return {
            "wave_id": t.wave_id,
            "unit_id": t.unit_id,
            "service_point_id": t.service_point_id,
            "field_id": t.field_id,
            "channel": int(t.channel),
            "questionnaire_version_id": t.version_id,
            "submitted_at": bucket(self.now, self.bucket_minutes),
            "answers": self.answers,
            "comment": self.comment,
            "flags": int(self.flags),
            "submission_key": self.submission_key,
        }


def store(conn: Connection, submission: Submission) -> None:
    """Spend the response's code and put the answer in the mixing buffer, in the caller's transaction
    (``BoundedDb.write``): once it commits, the answer is kept and the code spent, both or neither.

    The answer reaches the response table later, with the rest of its time bucket in random order
    (``survey.citizen.mixer``, which explains why and what that guarantees).

    Raises ``CodeAlreadyUsed`` when the code was spent before (by another submission, perhaps at the same
    moment) and ``AlreadyReceived`` when this very page was stored already, and the database's
    ``IntegrityError`` when the page's submission key is taken (a page sent twice at the same instant: ask
    ``was_received`` once the transaction is rolled back). Nothing of the submission is kept then.
    """
    code_hash = submission.target.code_hash
    if code_hash is not None:
        spent = conn.execute(
            update(ReceiptCode.__table__)  # type: ignore[attr-defined]
            .where(and_(_rc.code_hash == code_hash, _rc.spent.is_(False)))
            .values(spent=True)
        )
        if spent.rowcount != 1:
            if was_received(conn, submission.submission_key):
                raise AlreadyReceived()
            raise CodeAlreadyUsed(N_("This code has already been used. Thank you for your answers."))
    elif was_received(conn, submission.submission_key):  # a counter page sent again, perhaps after its flush
        raise AlreadyReceived()
    conn.execute(insert(PendingResponse.__table__), submission.row())  # type: ignore[attr-defined]


def was_received(conn: Connection, submission_key: str) -> bool:
    """Whether the page with this key is kept: still in the mixing buffer, or already a response.

    The buffer is asked first: the mixer moves a row from one to the other in one transaction, so a row
    that has just left the buffer is found in the response table by the second query.
    """
    for key in (_pr.submission_key, _r.submission_key):
        if conn.execute(select(key).where(key == submission_key)).first() is not None:
            return True
    return False


def page_was_stored(conn: Connection, raw_code: str, token: Any, secret: str, max_age_s: int) -> bool:
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
    return was_received(conn, form.submission_key)
