"""API keys on the staff pages: the keys of one's subtree, creating one (its secret shown once), revoking.

Admins and officers only; a key acts on the subtree of its unit, which must lie in the creator's. The
secret is never stored: :func:`survey.api.keys.create_api_key` keeps its SHA-256, and the page shows
the secret once, from the session's one-time flash. Every change is audited with the account's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from survey.api import keys
from survey.auth.guards import ensure_in_scope
from survey.auth.services import Principal
from survey.db.models import ApiKey, Role, pk
from survey.errors import ForbiddenError, NotFoundError
from survey.i18n import N_
from survey.officer.forms import FormError

SCOPE_LABELS = {
    "issue": N_("Issue receipt codes"),
    "read": N_("Read scores and waves"),
}
NAME_MAX = 120


def ensure_manager(viewer: Principal) -> None:
    if viewer.role not in (Role.admin, Role.officer):
        raise ForbiddenError(N_("Your role does not give access to this page."))


@dataclass(frozen=True, slots=True)
class KeyRow:
    id: int
    prefix: str
    name: str
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    scopes: tuple[str, ...]
    created_by: str
    created_at: datetime
    last_used_on: date | None
    revoked_at: datetime | None

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi


def list_keys(session: Session, *, viewer: Principal) -> list[KeyRow]:
    ensure_manager(viewer)
    return [
        KeyRow(
            id=pk(k),
            prefix=k.prefix,
            name=k.name,
            unit_code=u.code,
            unit_name_vi=u.name_vi,
            unit_name_en=u.name_en,
            scopes=tuple(s for s in k.scopes.split(",") if s),
            created_by=k.created_by,
            created_at=k.created_at,
            last_used_on=k.last_used_on,
            revoked_at=k.revoked_at,
        )
        for k, u in keys.list_api_keys(session, unit_path=viewer.unit_path)
        if viewer.covers(u.path)
    ]


def create_key(
    session: Session, *, viewer: Principal, name: str, unit_id: int | None, scopes: tuple[str, ...]
) -> tuple[keys.NewKey | None, list[FormError]]:
    """A new key for a unit of ``viewer``'s subtree; the returned secret is the only copy."""
    ensure_manager(viewer)
    errors = []
    if not name:
        errors.append(FormError("name", N_("Give the key a name that says who uses it.")))
    elif len(name) > NAME_MAX:
        errors.append(FormError("name", N_("Use at most {count} characters."), {"count": NAME_MAX}))
    if unit_id is None:
        errors.append(FormError("unit_id", N_("Choose the unit the key acts for.")))
    if not scopes or set(scopes) - set(keys.SCOPES):
        errors.append(FormError("scope-issue", N_("Choose what the key may do.")))
    if errors:
        return None, errors
    assert unit_id is not None
    unit = ensure_in_scope(session, viewer, unit_id)
    new = keys.create_api_key(
        session, name=name, unit_code=unit.code, scopes=scopes, actor=viewer.username, user_id=viewer.id
    )
    session.commit()
    return new, []


def revoke_key(session: Session, *, viewer: Principal, key_id: int) -> ApiKey:
    ensure_manager(viewer)
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFoundError(N_("There is no such API key."))
    ensure_in_scope(session, viewer, key.unit_id)
    revoked = keys.revoke_api_key(session, prefix=key.prefix, actor=viewer.username, user_id=viewer.id)
    session.commit()
    return revoked
