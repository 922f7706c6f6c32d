"""Every query and transaction of the citizen journey, on the driver's own connections (``survey.db.direct``):
a survey page is one indexed query, a submission one short transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from survey import codes
from survey.db.direct import DirectDb, Transaction
from survey.db.models import Channel, QuestionnaireVersion, ReceiptCode, Response, Wave, WaveStatus
from survey.errors import GoneError, NotFoundError
from survey.i18n import N_
from survey.questionnaire import Spec, from_definition


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


_SPECS: dict[tuple[int, str], Spec] = {}
_VERSION_SQL = "SELECT definition FROM questionnaire_version WHERE id = :id"


def _cached_spec(version_id: int, content_hash: str, definition: Callable[[], dict[str, Any]]) -> Spec:
    """The validated spec of a stored version, cached by id and content hash: a published version never
    changes, and a draft's edits change its hash (so no serialising the definition to key the cache)."""
    key = (version_id, content_hash)
    spec = _SPECS.get(key)
    if spec is None:
        spec = from_definition(definition())
        if len(_SPECS) >= 256:
            _SPECS.clear()
        _SPECS[key] = spec
    return spec


def spec_of(version: QuestionnaireVersion) -> Spec:
    """The validated spec of a version row."""
    assert version.id is not None
    return _cached_spec(version.id, version.content_hash, lambda: version.definition)


def _stored_spec(db: DirectDb, version_id: int, content_hash: str) -> Spec:
    """The validated spec of a version by id, read from the database only when it is not cached."""

    def definition() -> dict[str, Any]:
        row = db.one(_VERSION_SQL, {"id": version_id}, (QuestionnaireVersion.__table__.c.definition,))  # type: ignore[attr-defined]
        if row is None:
            raise NotFoundError(N_("We could not find this page."))
        return dict(row[0])

    return _cached_spec(version_id, content_hash, definition)


def _wave_is_open(status: str, starts_on: date, ends_on: date, today: date) -> bool:
    return status == WaveStatus.open.value and starts_on <= today <= ends_on


_rc, _w = ReceiptCode.__table__.c, Wave.__table__.c  # type: ignore[attr-defined]
_RECEIPT_SQL = """
SELECT rc.spent, rc.expires_on, w.id, w.status, w.starts_on, w.ends_on, w.questionnaire_version_id, v.content_hash,
       u.id, u.name_vi, u.name_en, f.id, f.name_vi, f.name_en
FROM receipt_code rc
JOIN wave w ON w.id = rc.wave_id
JOIN unit u ON u.id = rc.unit_id
JOIN questionnaire_version v ON v.id = w.questionnaire_version_id
LEFT JOIN field f ON f.id = rc.field_id
WHERE rc.code_hash = :digest
"""
_RECEIPT_TYPES = (_rc.spent, _rc.expires_on, None, None, _w.starts_on, _w.ends_on, None, None, None, None, None)


def resolve_receipt(db: DirectDb, *, raw_code: str, today: date) -> SurveyTarget:
    """The survey a receipt code opens, or the reason it cannot be answered (one indexed query)."""
    code = codes.normalise(raw_code)
    if code is None:
        raise NotFoundError(N_("This code is not valid. Please check the letters and numbers on your receipt."))
    digest = codes.code_hash(code)
    row = db.one(_RECEIPT_SQL, {"digest": digest}, _RECEIPT_TYPES)
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
    spec = _stored_spec(db, version_id, content_hash)
    return SurveyTarget(Channel.receipt, wave_id, version_id, content_hash, spec, unit, field=fld, code_hash=digest)


_COUNTER_SQL = """
SELECT p.id, p.name_vi, p.name_en, u.id, u.name_vi, u.name_en
FROM service_point p JOIN unit u ON u.id = p.unit_id
WHERE p.counter_token = :token AND p.active = :active
"""
_COUNTER_WAVES_SQL = """
SELECT w.id, w.status, w.starts_on, w.ends_on, w.channels, w.questionnaire_version_id, v.content_hash
FROM wave w
JOIN wave_unit wu ON wu.wave_id = w.id
JOIN questionnaire_version v ON v.id = w.questionnaire_version_id
WHERE wu.unit_id = :unit_id
ORDER BY w.starts_on DESC, w.id DESC
"""
_COUNTER_WAVES_TYPES = (None, None, _w.starts_on, _w.ends_on)


def resolve_counter(db: DirectDb, *, token: str, today: date) -> SurveyTarget:
    """The survey a counter's QR poster opens: the newest open wave covering its unit that allows counters."""
    if not token or len(token) > 40:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    row = db.one(_COUNTER_SQL, {"token": token, "active": True})
    if row is None:
        raise NotFoundError(N_("We could not find this counter. Please scan the code on the poster again."))
    point, unit = Place(*row[:3]), Place(*row[3:])
    for wave_id, status, starts_on, ends_on, channels, version_id, content_hash in db.all(
        _COUNTER_WAVES_SQL, {"unit_id": unit.id}, _COUNTER_WAVES_TYPES
    ):
        allowed = Channel.counter.name in {c.strip() for c in channels.split(",")}
        if allowed and _wave_is_open(status, starts_on, ends_on, today):
            spec = _stored_spec(db, version_id, content_hash)
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


_SPEND_SQL = "UPDATE receipt_code SET spent = :spent WHERE code_hash = :digest AND spent = :unspent"
_STORED_SQL = "SELECT 1 FROM response WHERE submission_key = :key"


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


def _store(tx: Transaction, submission: Submission) -> None:
    """Insert the response and spend its code (one round trip on PostgreSQL); a code already spent raises,
    which rolls the insert back with the transaction."""
    code_hash, row = submission.target.code_hash, submission.row()
    if code_hash is None:
        tx.insert(Response.__table__, row)  # type: ignore[attr-defined]
        return
    spend = (_SPEND_SQL, {"spent": True, "digest": code_hash, "unspent": False})
    if tx.insert(Response.__table__, row, then=spend) != 1:  # type: ignore[attr-defined]
        raise CodeAlreadyUsed(N_("This code has already been used. Thank you for your answers."))


def _was_received(db: DirectDb, submission_key: str) -> bool:
    return db.one(_STORED_SQL, {"key": submission_key}) is not None


def submit(db: DirectDb, submission: Submission) -> None:
    """Store one response, spending its receipt code in the same transaction (blocking; from an event loop
    use ``submit_from_loop``, which commits it together with the other submissions waiting).

    Raises ``CodeAlreadyUsed`` when the code was spent before (by another submission, perhaps at the
    same moment), ``AlreadyReceived`` when this very page was stored already; nothing is written then.
    """
    try:
        with db.transaction() as tx:
            _store(tx, submission)
    except IntegrityError:
        if _was_received(db, submission.submission_key):
            raise AlreadyReceived() from None
        raise


async def submit_from_loop(db: DirectDb, submission: Submission) -> None:
    """``submit`` for a request handler: the same transaction, through the writer's group commit."""
    try:
        await db.write(lambda tx: _store(tx, submission))
    except IntegrityError:
        if _was_received(db, submission.submission_key):
            raise AlreadyReceived() from None
        raise


def page_was_stored(db: DirectDb, *, raw_code: str, token: Any, secret: str, max_age_s: int) -> bool:
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
    return _was_received(db, form.submission_key)
