"""API keys for one-stop systems and BI tools: created, listed, revoked, checked; each scoped to a unit subtree.

A key reads ``sipas_<prefix>_<secret>``. Only the SHA-256 of the whole key is stored; the prefix is kept
in clear so a list can tell keys apart and a log line can name one without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.audited import audit
from survey.db.models import ApiKey, Unit, pk
from survey.errors import ConflictError, ForbiddenError, NotFoundError, UnauthorizedError

SCOPES = ("issue", "read")


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as created: ``secret`` is the only copy of the key and is shown once."""

    id: int
    prefix: str
    secret: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    session: Session, *, name: str, unit_code: str, scopes: tuple[str, ...], actor: str, user_id: int | None = None
) -> NewKey:
    """Create a key for the subtree of ``unit_code`` (in the caller's transaction; audited)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ConflictError(f"Scopes must be among {', '.join(SCOPES)} (got: {', '.join(scopes) or 'none'}).")
    name = name.strip()
    if not name:
        raise ConflictError("Give the key a name that says who uses it (for example 'One-stop system, Hòa Thành').")
    unit = session.scalars(select(Unit).where(col(Unit.code) == unit_code)).first()
    if unit is None:
        raise NotFoundError(f"No unit with code '{unit_code}'.")
    prefix = secrets.token_hex(4)
    secret = f"sipas_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        prefix=prefix,
        key_hash=_hash(secret),
        name=name[:120],
        unit_id=pk(unit),
        scopes=",".join(s for s in SCOPES if s in scopes),
        created_by=actor,
    )
    session.add(key)
    session.flush()
    audit(
        session,
        actor=actor,
        user_id=user_id,
        action="create",
        entity="api_key",
        entity_id=key.id,
        after={"prefix": prefix, "name": key.name, "unit": unit_code, "scopes": key.scopes},
    )
    return NewKey(pk(key), prefix, secret)


def revoke_api_key(session: Session, *, prefix: str, actor: str, user_id: int | None = None) -> ApiKey:
    key = session.scalars(select(ApiKey).where(col(ApiKey.prefix) == prefix)).first()
    if key is None:
        raise NotFoundError(f"No API key with prefix '{prefix}'.")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        audit(
            session,
            actor=actor,
            user_id=user_id,
            action="revoke",
            entity="api_key",
            entity_id=key.id,
            before={"revoked": False},
            after={"revoked": True},
        )
    return key


def list_api_keys(session: Session, *, unit_path: str = "/") -> list[tuple[ApiKey, Unit]]:
    """Keys whose scope lies inside the subtree at ``unit_path``, newest first."""
    rows = session.execute(
        select(ApiKey, Unit)
        .join(Unit, col(Unit.id) == col(ApiKey.unit_id))
        .where(col(Unit.path).startswith(unit_path))
        .order_by(col(ApiKey.id).desc())
    ).all()
    return [(k, u) for k, u in rows]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the API: the key's id, prefix, scopes and the path of its unit subtree."""

    key_id: int
    prefix: str
    scopes: frozenset[str]
    unit_path: str

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise ForbiddenError(f"This API key may not {scope} (its scopes: {', '.join(sorted(self.scopes))}).")

    def covers(self, unit_path: str) -> bool:
        return unit_path.startswith(self.unit_path)


def authenticate(session: Session, presented: str | None, *, today: date) -> Caller:
    """The caller of a key presented as ``Bearer <key>`` or bare; 401 when missing, unknown or revoked."""
    if not presented:
        raise UnauthorizedError("An API key is required: send it as 'Authorization: Bearer <key>'.")
    token = presented.removeprefix("Bearer ").strip()
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != "sipas":
        raise UnauthorizedError("This is not a SIPAS API key.")
    row = session.execute(
        select(ApiKey, col(Unit.path))
        .join(Unit, col(Unit.id) == col(ApiKey.unit_id))
        .where(col(ApiKey.prefix) == parts[1])
    ).first()
    if row is None or not hmac.compare_digest(row[0].key_hash, _hash(token)):
        raise UnauthorizedError("This API key is not known.")
    key, path = row
    if key.revoked_at is not None:
        raise UnauthorizedError("This API key has been revoked.")
    if key.last_used_on != today:  # one write a day at most, not one per request
        session.execute(update(ApiKey).where(col(ApiKey.id) == key.id).values(last_used_on=today))
        session.commit()
    return Caller(pk(key), key.prefix, frozenset(key.scopes.split(",")), path)
