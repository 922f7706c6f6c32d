"""Accounts: sign-in, creating users, changing passwords, deactivating; every change is audited.

These are the primitives shared by the staff pages, the ``sipas user`` command and the demo. They
check what an account may look like (username, role, unit, password policy), not who may create it:
that is the caller's business (``survey.officer.services`` for the pages; the command line is trusted).
Audit entries never hold a password or a password hash.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.passwords import (
    PolicyProblem,
    WeakPassword,
    check_policy,
    hash_password,
    normalise,
    policy_problems,
    verify_password,
)
from survey.db.audited import audit
from survey.db.models import Role, Unit, User, pk
from survey.errors import ConflictError, NotFoundError, SipasError
from survey.i18n import N_

log = logging.getLogger("sipas.auth")

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,39}$")
USERNAME_RULE = N_(
    "A username has 3 to 40 characters: lowercase letters a-z, digits, dots, hyphens or underscores, "
    "starting with a letter or a digit."
)
ENTITY = "user"


class InvalidUsername(SipasError):
    def __init__(self) -> None:
        super().__init__(USERNAME_RULE)


class UnknownRole(SipasError):
    def __init__(self, role: str) -> None:
        super().__init__(N_("Choose a role: administrator, officer or leader."))
        self.role = role


class WrongPassword(SipasError):
    """The current password given to change it is not the account's."""

    def __init__(self) -> None:
        super().__init__(N_("The current password is not right."))


SAME_PASSWORD = N_("Choose a new password, not the current one.")


class UsernameTaken(ConflictError):
    def __init__(self, username: str) -> None:
        super().__init__(N_("This username is already taken; choose another."))
        self.username = username


def normalise_username(username: str) -> str:
    return username.strip().lower()


def parse_role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UnknownRole(str(role)) from None


def session_fingerprint(password_hash: str) -> str:
    """A short digest of the password hash kept in the session: a changed password ends other sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in staff member of a request: who, which role, and the root of their unit scope."""

    id: int
    username: str
    role: Role
    unit_id: int
    unit_path: str
    unit_code: str
    unit_name_vi: str
    unit_name_en: str

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi

    def covers(self, unit_path: str) -> bool:
        """Whether a unit with this ``path`` lies in this principal's subtree (their own unit included)."""
        return unit_path.startswith(self.unit_path)


def load_principal(session: Session, *, user_id: Any, fingerprint: Any) -> Principal | None:
    """The principal of a session, or None if the account is gone, inactive, or its password has changed."""
    if not isinstance(user_id, int) or not isinstance(fingerprint, str):
        return None
    row = session.execute(
        select(User, Unit).join(Unit, col(Unit.id) == col(User.unit_id)).where(col(User.id) == user_id)
    ).first()
    if row is None:
        return None
    user, unit = row
    if not user.active or session_fingerprint(user.password_hash) != fingerprint:
        return None
    try:
        role = Role(user.role)
    except ValueError:
        log.error("user %s has an unknown role %r: refused", user.username, user.role)
        return None
    return Principal(
        id=pk(user),
        username=user.username,
        role=role,
        unit_id=user.unit_id,
        unit_path=unit.path,
        unit_code=unit.code,
        unit_name_vi=unit.name_vi,
        unit_name_en=unit.name_en,
    )


def public_view(user: User) -> dict[str, Any]:
    """What the audit log records about an account (never the password hash)."""
    return {"username": user.username, "role": user.role, "unit_id": user.unit_id, "active": user.active}


def authenticate(session: Session, *, username: str, password: str) -> User | None:
    """The active user with this username and password, or None.

    An unknown username costs one Argon2 verification too, so the time taken does not tell which
    usernames exist. A hash made with outdated parameters is replaced (in the caller's transaction).
    """
    name = normalise_username(username)
    user = session.scalars(select(User).where(col(User.username) == name)).first() if name else None
    result = verify_password(user.password_hash if user else None, password)
    if user is None or not result.ok or not user.active:
        return None
    if result.new_hash:
        user.password_hash = result.new_hash
        session.flush()
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    role: str | Role,
    unit_id: int,
    actor: str,
    actor_id: int | None = None,
) -> User:
    """A new active account; raises a :class:`SipasError` saying what is wrong with the input."""
    name = normalise_username(username)
    if not USERNAME_RE.fullmatch(name):
        raise InvalidUsername()
    checked_role = parse_role(role)
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFoundError(N_("There is no such unit."))
    check_policy(password, username=name)
    if session.scalars(select(col(User.id)).where(col(User.username) == name)).first() is not None:
        raise UsernameTaken(name)
    user = User(username=name, password_hash=hash_password(password), role=checked_role.value, unit_id=pk(unit))
    session.add(user)
    session.flush()
    audit(
        session,
        actor=actor,
        user_id=actor_id,
        action="create",
        entity=ENTITY,
        entity_id=user.id,
        after=public_view(user),
    )
    return user


def _get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError(N_("There is no such account."))
    return user


def set_password(session: Session, *, user_id: int, password: str, actor: str, actor_id: int | None = None) -> User:
    """Replace an account's password (its other sessions end: they carry the old hash's fingerprint)."""
    user = _get_user(session, user_id)
    check_policy(password, username=user.username)
    user.password_hash = hash_password(password)
    session.flush()
    audit(
        session,
        actor=actor,
        user_id=actor_id,
        action="set_password",
        entity=ENTITY,
        entity_id=user.id,
        before={"username": user.username},
        after={"username": user.username, "password": "changed"},
    )
    return user


def change_own_password(session: Session, *, user_id: int, current: str, new: str) -> User:
    """An account changes its own password: the current one proves it is its owner, the new one meets the policy.

    Raises :class:`WrongPassword` or :class:`WeakPassword`. Sessions carrying the old hash's fingerprint stop
    working; the caller ends them and renews its own. Audited as the account's own change.
    """
    user = _get_user(session, user_id)
    if not user.active or not verify_password(user.password_hash, current).ok:
        raise WrongPassword()
    problems = policy_problems(new, username=user.username)
    if normalise(new) == normalise(current):
        problems.append(PolicyProblem(SAME_PASSWORD))
    if problems:
        raise WeakPassword(problems)
    user.password_hash = hash_password(new)
    session.flush()
    audit(
        session,
        actor=user.username,
        user_id=user.id,
        action="change_password",
        entity=ENTITY,
        entity_id=user.id,
        before={"username": user.username},
        after={"username": user.username, "password": "changed"},
    )
    return user


def deactivate(session: Session, *, user_id: int, actor: str, actor_id: int | None = None) -> User:
    """Switch an account off; its sessions stop working at their next request. Deactivating twice is a no-op."""
    user = _get_user(session, user_id)
    if not user.active:
        return user
    before = public_view(user)
    user.active = False
    session.flush()
    audit(
        session,
        actor=actor,
        user_id=actor_id,
        action="deactivate",
        entity=ENTITY,
        entity_id=user.id,
        before=before,
        after=public_view(user),
    )
    return user
