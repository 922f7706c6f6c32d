"""Every query and transaction of the staff pages: signing in, accounts, the audit log.

Who may do what (the rules the access-matrix test checks):

- Everyone acts only inside their unit's subtree (``Unit.path`` starts with their unit's path).
- **Admins** list every account of their subtree, create accounts of any role there, and deactivate them.
- **Officers** list the accounts of their subtree and create or deactivate **leader** accounts there (a
  district officer gives the district's leaders their accounts); other roles are the admins' business.
- **Leaders** manage no accounts and do not read the audit log.
- Nobody deactivates their own account (so the last admin cannot lock everyone out by accident).

The audit log: admins read every entry (changes by the command line, the demo and every unit). Officers
read the entries made by an account of their subtree, and the entries about such accounts (``entity`` =
``user``), which shows them who created or switched off their leaders even when an admin did it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, String, and_, cast, func, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth import second_factor
from survey.auth import services as accounts
from survey.auth.guards import ensure_in_scope
from survey.auth.services import Principal
from survey.db.models import AuditLog, Role, Unit, User, pk
from survey.errors import ForbiddenError, NotFoundError
from survey.i18n import N_

PAGE_SIZE = 50
ROLE_HINTS = {
    Role.admin.value: N_("Manages accounts and settings of their unit and the units below it."),
    Role.officer.value: N_("Runs surveys: units, questionnaires, waves, codes; gives leaders their accounts."),
    Role.leader.value: N_("Reads results and league tables of their unit and the units below it."),
}


def sign_in(engine: Engine, *, username: str, password: str) -> User | None:
    """The account for these credentials (committing a refreshed hash if Argon2's parameters changed)."""
    with Session(engine, expire_on_commit=False) as session:
        user = accounts.authenticate(session, username=username, password=password)
        session.commit()
        return user


def confirm_second_factor(engine: Engine, *, user_id: int, fingerprint: str, code: str, key: str) -> User | None:
    """The account whose password was checked a moment ago, once its one-time code is right (the code's step is
    stored, so it cannot be used again). None if the account changed meanwhile (switched off, new password);
    :class:`survey.auth.second_factor.WrongCode` for a wrong code."""
    with Session(engine, expire_on_commit=False) as session:
        user = session.get(User, user_id)
        if user is None or not user.active or accounts.session_fingerprint(user.password_hash) != fingerprint:
            return None
        second_factor.check_code(session, user_id=user_id, code=code, key=key)
        session.commit()
        return user


def creatable_roles(viewer: Principal) -> tuple[Role, ...]:
    """The roles of the accounts ``viewer`` may create and deactivate (inside their scope)."""
    if viewer.role == Role.admin:
        return (Role.admin, Role.officer, Role.leader)
    if viewer.role == Role.officer:
        return (Role.leader,)
    return ()


@dataclass(frozen=True, slots=True)
class UserRow:
    id: int
    username: str
    role: str
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    active: bool
    created_at: datetime
    can_deactivate: bool

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi


def list_users(session: Session, *, viewer: Principal) -> list[UserRow]:
    """The accounts of ``viewer``'s subtree, active ones first, by username."""
    if not creatable_roles(viewer):
        raise ForbiddenError(N_("Your role does not give access to this page."))
    rows = session.execute(
        select(User, Unit)
        .join(Unit, col(Unit.id) == col(User.unit_id))
        .where(col(Unit.path).startswith(viewer.unit_path, autoescape=True))
        .order_by(col(User.active).desc(), col(User.username))
    ).all()
    manageable = {r.value for r in creatable_roles(viewer)}
    return [
        UserRow(
            id=pk(user),
            username=user.username,
            role=user.role,
            unit_code=unit.code,
            unit_name_vi=unit.name_vi,
            unit_name_en=unit.name_en,
            active=user.active,
            created_at=user.created_at,
            can_deactivate=user.active and user.id != viewer.id and user.role in manageable,
        )
        for user, unit in rows
    ]


@dataclass(frozen=True, slots=True)
class UnitChoice:
    id: int
    code: str
    name_vi: str
    name_en: str
    depth: int

    def label(self, locale: str) -> str:
        name = self.name_en if locale == "en" else self.name_vi
        return "\u00a0\u00a0" * self.depth + f"{name} ({self.code})"


def unit_choices(session: Session, *, viewer: Principal) -> list[UnitChoice]:
    """The active units of ``viewer``'s subtree, each under its parent, for a select list."""
    units = session.scalars(
        select(Unit).where(col(Unit.path).startswith(viewer.unit_path, autoescape=True), col(Unit.active))
    ).all()
    by_parent: dict[int | None, list[Unit]] = {}
    for u in units:
        by_parent.setdefault(u.parent_id, []).append(u)
    out: list[UnitChoice] = []

    def walk(parent_id: int | None, depth: int) -> None:
        for u in sorted(by_parent.get(parent_id, []), key=lambda x: (x.code, x.name_vi)):
            out.append(UnitChoice(id=pk(u), code=u.code, name_vi=u.name_vi, name_en=u.name_en, depth=depth))
            walk(u.id, depth + 1)

    top = next((u for u in units if u.id == viewer.unit_id), None)
    if top is not None:
        out.append(UnitChoice(id=pk(top), code=top.code, name_vi=top.name_vi, name_en=top.name_en, depth=0))
        walk(top.id, 1)
    return out


def create_account(
    session: Session, *, viewer: Principal, username: str, role: str, unit_id: int, password: str
) -> User:
    """Create an account in ``viewer``'s scope with a role they may give (403 otherwise)."""
    checked = accounts.parse_role(role)
    if checked not in creatable_roles(viewer):
        raise ForbiddenError(N_("Your role cannot create this kind of account."))
    ensure_in_scope(session, viewer, unit_id)
    user = accounts.create_user(
        session,
        username=username,
        password=password,
        role=checked,
        unit_id=unit_id,
        actor=viewer.username,
        actor_id=viewer.id,
    )
    session.commit()
    return user


def deactivate_account(session: Session, *, viewer: Principal, user_id: int) -> User:
    """Switch off an account of ``viewer``'s scope (404 if there is none, 403 if it is not theirs to manage)."""
    target = session.get(User, user_id)
    if target is None:
        raise NotFoundError(N_("There is no such account."))
    ensure_in_scope(session, viewer, target.unit_id)
    if target.id == viewer.id:
        raise ForbiddenError(N_("You cannot deactivate your own account."))
    if target.role not in {r.value for r in creatable_roles(viewer)}:
        raise ForbiddenError(N_("Your role cannot deactivate this kind of account."))
    user = accounts.deactivate(session, user_id=user_id, actor=viewer.username, actor_id=viewer.id)
    session.commit()
    return user


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    page: int
    pages: int
    total: int


def audit_page(session: Session, *, viewer: Principal, page: int = 1, page_size: int = PAGE_SIZE) -> AuditPage:
    """One page of the audit log, newest first, as far as ``viewer`` may read it (see the module docstring)."""
    if viewer.role == Role.admin:
        condition = None
    elif viewer.role == Role.officer:
        scope_users = (
            select(col(User.id), cast(col(User.id), String).label("key"))
            .join(Unit, col(Unit.id) == col(User.unit_id))
            .where(col(Unit.path).startswith(viewer.unit_path, autoescape=True))
            .subquery()
        )
        condition = or_(
            col(AuditLog.user_id).in_(select(scope_users.c.id)),
            and_(col(AuditLog.entity) == accounts.ENTITY, col(AuditLog.entity_id).in_(select(scope_users.c.key))),
        )
    else:
        raise ForbiddenError(N_("Your role does not give access to this page."))
    counted = select(func.count()).select_from(AuditLog)
    listed = select(AuditLog)
    if condition is not None:
        counted, listed = counted.where(condition), listed.where(condition)
    total = session.scalar(counted) or 0
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = session.scalars(
        listed.order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    entries = [
        AuditEntry(
            id=pk(r),
            at=r.at,
            actor=r.actor,
            action=r.action,
            entity=r.entity,
            entity_id=r.entity_id,
            before=r.before,
            after=r.after,
        )
        for r in rows
    ]
    return AuditPage(entries=entries, page=page, pages=pages, total=total)
