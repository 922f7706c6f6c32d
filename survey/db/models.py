"""The tables (the nouns of ARCHITECTURE.md).

Answers are stored one row per response, as a compact byte vector whose columns are fixed by the
questionnaire version (see ``survey.questionnaires.spec.Layout``), so a wave loads into numpy in one pass.
A response never stores a receipt code, an IP address or a dossier number.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from survey.db.types import UTCDateTime


def utcnow() -> datetime:
    return datetime.now(UTC)


class _HasId(Protocol):
    id: int | None


def pk(row: _HasId) -> int:
    """The primary key of a row that has been flushed (raises if it has not)."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id yet: flush the session first")
    return row.id


class Channel(enum.IntEnum):
    """How a response reached us. Receipt codes prove a transaction; the others do not."""

    receipt = 1
    counter = 2
    kiosk = 3
    paper = 4


class WaveStatus(enum.StrEnum):
    draft = "draft"
    open = "open"
    closed = "closed"


class VersionStatus(enum.StrEnum):
    draft = "draft"
    published = "published"
    retired = "retired"


class Role(enum.StrEnum):
    admin = "admin"
    officer = "officer"
    leader = "leader"


class UnitLevel(SQLModel, table=True):
    """A level of the administrative tree (province, department, district, commune...): data, not code."""

    __tablename__ = "unit_level"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    depth: int = Field(description="0 for the root level; children sit one level deeper or more")


class Unit(SQLModel, table=True):
    """A node of the administrative tree. ``path`` ("/1/4/17/") makes subtree queries one LIKE."""

    __tablename__ = "unit"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    level_id: int = Field(foreign_key="unit_level.id", index=True)
    parent_id: int | None = Field(default=None, foreign_key="unit.id", index=True)
    path: str = Field(default="/", max_length=400, index=True)
    kind: str | None = Field(default=None, max_length=40, description="ward, rural commune, township, city...")
    active: bool = True


class ServicePoint(SQLModel, table=True):
    """A counter or desk of a unit. ``counter_token`` is what the counter's QR poster carries."""

    __tablename__ = "service_point"

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    code: str = Field(max_length=60, unique=True)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    counter_token: str = Field(max_length=40, unique=True)
    active: bool = True


class ProcedureField(SQLModel, table=True):
    """A procedure field (land, civil status...): a stratum for sampling and a domain for scoring."""

    __tablename__ = "field"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)


class Questionnaire(SQLModel, table=True):
    __tablename__ = "questionnaire"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    title_vi: str = Field(max_length=300)
    title_en: str = Field(max_length=300)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class QuestionnaireVersion(SQLModel, table=True):
    """One version of a questionnaire. Once published it is immutable (enforced in ``survey.db.guards``)."""

    __tablename__ = "questionnaire_version"
    __table_args__ = (sa.UniqueConstraint("questionnaire_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    questionnaire_id: int = Field(foreign_key="questionnaire.id", index=True)
    version: int
    status: str = Field(default=VersionStatus.draft.value, max_length=20)
    definition: dict[str, Any] = Field(sa_type=sa.JSON, description="the validated spec, with its answer layout")
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Wave(SQLModel, table=True):
    """A survey round: a period, one questionnaire version, the units in scope, the channels allowed."""

    __tablename__ = "wave"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=60, unique=True)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    questionnaire_version_id: int = Field(foreign_key="questionnaire_version.id", index=True)
    starts_on: date
    ends_on: date
    status: str = Field(default=WaveStatus.draft.value, max_length=20)
    channels: str = Field(default="receipt", max_length=100, description="comma-separated channel names")
    min_responses: int = Field(default=30, description="units with fewer responses are not ranked")
    target: float = Field(default=90.0, description="target index in percent")
    revision: int = Field(
        default=0,
        description="bumped whenever stored responses change (flags reviewed, corrections); new responses "
        "are noticed by count and newest id, so a submission never has to write to this row",
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

    def allows(self, channel: Channel) -> bool:
        return channel.name in {c.strip() for c in self.channels.split(",")}


class WaveUnit(SQLModel, table=True):
    """A unit in a wave's scope (its subtree is not implied: every surveyed unit is listed)."""

    __tablename__ = "wave_unit"

    wave_id: int = Field(foreign_key="wave.id", primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", primary_key=True, index=True)


class Quota(SQLModel, table=True):
    """A wave's sampling plan for one stratum (unit x field): population, target and codes to issue."""

    __tablename__ = "quota"

    wave_id: int = Field(foreign_key="wave.id", primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", primary_key=True)
    field_id: int = Field(foreign_key="field.id", primary_key=True)
    population: int = Field(ge=0, description="transactions in the frame period")
    target: int = Field(ge=0, description="completed responses aimed for")
    codes_to_issue: int = Field(ge=0, description="receipt codes to hand out, given the expected response rate")
    probability: float = Field(ge=0, le=1, description="chance a transaction is offered a code (Bernoulli)")


class FrameCount(SQLModel, table=True):
    """Completed transactions of a unit in a field over a period: the sampling frame and weight denominator."""

    __tablename__ = "frame_count"
    __table_args__ = (sa.UniqueConstraint("unit_id", "field_id", "period_start"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    field_id: int = Field(foreign_key="field.id", index=True)
    period_start: date
    period_end: date
    transactions: int = Field(ge=0)


class ReceiptCode(SQLModel, table=True):
    """A one-time code printed on a receipt, stored only as its SHA-256.

    There is deliberately no "spent at" time and no link to the response: a rating proves a real
    transaction, but cannot be joined back to the dossier or the person.
    """

    __tablename__ = "receipt_code"

    id: int | None = Field(default=None, primary_key=True)
    code_hash: str = Field(max_length=64, unique=True)
    wave_id: int = Field(foreign_key="wave.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    field_id: int | None = Field(default=None, foreign_key="field.id")
    issued_on: date
    expires_on: date
    spent: bool = False


class Response(SQLModel, table=True):
    """One citizen's answers.

    ``answers`` is a byte vector laid out by the questionnaire version: 0 = not answered, 1..k = the
    option's position, 255 = not applicable, and one 0/1 byte per option of a multi-select item.
    ``submitted_at`` is rounded down to the configured bucket. ``submission_key`` is the hash of a
    random per-page token (never of a code), so a re-sent page is stored once. Citizens' answers arrive
    through the mixing buffer (``PendingResponse``), a whole bucket at a time in random order, so ids and
    row order say nothing finer than ``submitted_at`` does.
    """

    __tablename__ = "response"
    __table_args__ = (sa.Index("ix_response_wave_unit", "wave_id", "unit_id"),)

    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = Field(foreign_key="wave.id")
    unit_id: int = Field(foreign_key="unit.id")
    service_point_id: int | None = Field(default=None, foreign_key="service_point.id")
    field_id: int | None = Field(default=None, foreign_key="field.id")
    channel: int = Field(sa_type=sa.SmallInteger)
    questionnaire_version_id: int = Field(foreign_key="questionnaire_version.id")
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    answers: bytes = Field(sa_type=sa.LargeBinary)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    flags: int = Field(default=0, description="integrity flags (bit set)")
    submission_key: str | None = Field(default=None, max_length=64, unique=True)


class PendingResponse(SQLModel, table=True):
    """An answer waiting in the mixing buffer: the columns of ``Response`` but its id, keyed by the page's
    submission key. The submission that spends a receipt code stores its answer here, in the same
    transaction; ``survey.citizen.mixer`` moves whole time buckets into ``response`` in random order, so
    no transaction id, row order or id links a stored response to the code that was spent for it.
    """

    __tablename__ = "pending_response"

    submission_key: str = Field(max_length=64, primary_key=True)
    wave_id: int = Field(foreign_key="wave.id")
    unit_id: int = Field(foreign_key="unit.id")
    service_point_id: int | None = Field(default=None, foreign_key="service_point.id")
    field_id: int | None = Field(default=None, foreign_key="field.id")
    channel: int = Field(sa_type=sa.SmallInteger)
    questionnaire_version_id: int = Field(foreign_key="questionnaire_version.id")
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    answers: bytes = Field(sa_type=sa.LargeBinary)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    flags: int = Field(default=0, description="integrity flags (bit set)")


class User(SQLModel, table=True):
    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=80, unique=True)
    password_hash: str = Field(max_length=300)
    role: str = Field(max_length=20)
    unit_id: int = Field(foreign_key="unit.id", description="the root of the subtree this user may see")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    totp_secret: str | None = Field(
        default=None, max_length=120, description="the second factor's secret, encrypted (survey.auth.second_factor)"
    )
    totp_last_step: int | None = Field(
        default=None, sa_type=sa.BigInteger, description="time step of the last code accepted (each works once)"
    )


class AuditLog(SQLModel, table=True):
    """Append-only record of every change made by a person or a command."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    user_id: int | None = Field(default=None, foreign_key="user_account.id")
    actor: str = Field(max_length=120, description="username, or 'cli' / 'system'")
    action: str = Field(max_length=60)
    entity: str = Field(max_length=60)
    entity_id: str | None = Field(default=None, max_length=60)
    before: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    after: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)


class IntegrityAlert(SQLModel, table=True):
    """A warning to the level above a unit, raised by the integrity scan (``survey.integrity.issuance``).

    ``kind`` is ``over_issued`` (more receipt codes issued for the unit, or for one of its fields, than
    the frame has transactions in the wave's period) or ``burst`` (receipt codes answered in a burst).
    It is addressed to the unit's parent and listed on the flags page of the accounts above the unit.
    """

    __tablename__ = "integrity_alert"

    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = Field(foreign_key="wave.id", index=True)
    unit_id: int = Field(foreign_key="unit.id", index=True, description="the unit whose responses it is about")
    addressed_to: int | None = Field(
        default=None, foreign_key="unit.id", description="the unit above (its parent); none for a root unit"
    )
    field_id: int | None = Field(default=None, foreign_key="field.id", description="none: the unit as a whole")
    kind: str = Field(max_length=20)
    codes_issued: int | None = None
    transactions: int | None = None
    responses: int = Field(default=0, description="responses the scan flagged for it, at its latest scan")
    raised_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ApiKey(SQLModel, table=True):
    """A key a one-stop system or a BI tool uses on the JSON API, scoped to a unit subtree.

    Only the SHA-256 of the secret is kept; ``prefix`` (shown in lists) tells keys apart. ``scopes`` is a
    comma-separated subset of ``issue`` (receipt codes) and ``read`` (scores and waves).
    """

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    prefix: str = Field(max_length=16, unique=True)
    key_hash: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=120)
    unit_id: int = Field(foreign_key="unit.id", description="the root of the subtree the key may act on")
    scopes: str = Field(default="issue", max_length=60)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_on: date | None = None
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def allows(self, scope: str) -> bool:
        return scope in {s.strip() for s in self.scopes.split(",")}


class IssuedTransaction(SQLModel, table=True):
    """A transaction a one-stop system asked about, so a repeated question gets the same answer.

    ``ref_hash`` is an HMAC of the system's transaction reference under the platform's secret: the
    dossier number itself is never stored. The receipt code of a selected transaction is derived from
    the same HMAC, so it need not be kept either. The rows also count the wave's transactions as they
    happen (a live frame).
    """

    __tablename__ = "issued_transaction"
    __table_args__ = (sa.UniqueConstraint("wave_id", "ref_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    wave_id: int = Field(foreign_key="wave.id", index=True)
    ref_hash: str = Field(max_length=64)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    field_id: int | None = Field(default=None, foreign_key="field.id")
    selected: bool
    asked_on: date
