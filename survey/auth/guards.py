"""Who may open a staff page: a signed-in, active account (``staff_required``), of a role (``role_required``),
acting on units of its own subtree (``ensure_in_scope``).

The guards load the account on every request (one indexed query), so deactivating it or changing its
password takes effect at once. A request without a valid session raises :class:`LoginRequired`, which
the app turns into a redirect to ``/login?next=...`` for pages and a 401 for anything else.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

import anyio
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.services import Principal, load_principal
from survey.auth.sessions import FINGERPRINT, STORE_NAME, USER_ID, current_session_id
from survey.db.models import Role, Unit, User
from survey.errors import ForbiddenError, NotFoundError, UnauthorizedError
from survey.i18n import N_

PRINCIPAL = "sipas_principal"
LOGIN_PATH = "/login"
HOME_PATH = "/staff"


class LoginRequired(UnauthorizedError):
    def __init__(self) -> None:
        super().__init__(N_("Please sign in to continue. If you were signed in, your session has ended."))


def _load(engine: Engine, user_id: Any, fingerprint: Any) -> Principal | None:
    with Session(engine) as session:
        return load_principal(session, user_id=user_id, fingerprint=fingerprint)


async def current_principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The signed-in account of this request (loaded once per request), or None."""
    state = connection.scope.setdefault("state", {})
    if PRINCIPAL in state:
        cached: Principal | None = state[PRINCIPAL]
        return cached
    session = connection.scope.get("session")
    principal = None
    if isinstance(session, dict) and session.get(USER_ID) is not None:
        engine: Engine = connection.app.state.engine
        principal = await anyio.to_thread.run_sync(_load, engine, session.get(USER_ID), session.get(FINGERPRINT))
        if principal is None:  # the account is gone, switched off, or has a new password: end the session
            connection.clear_session()
            if session_id := current_session_id(connection):
                await connection.app.stores.get(STORE_NAME).delete(session_id)
    state[PRINCIPAL] = principal
    return principal


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal a guard has loaded for this request (for handlers behind ``staff_required``)."""
    principal = connection.scope.get("state", {}).get(PRINCIPAL)
    if not isinstance(principal, Principal):
        raise LoginRequired()
    return principal


async def staff_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if await current_principal(connection) is None:
        raise LoginRequired()


def role_required(*roles: Role) -> Guard:
    """A guard letting through only signed-in accounts of one of ``roles`` (403 for the others)."""
    allowed = frozenset(roles)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await current_principal(connection)
        if principal is None:
            raise LoginRequired()
        if principal.role not in allowed:
            raise ForbiddenError(N_("Your role does not give access to this page."))

    guard.__name__ = f"role_required({', '.join(sorted(r.value for r in allowed))})"
    return guard


def unit_scope_path(session: Session, user: User | Principal) -> str:
    """The ``path`` prefix of every unit in ``user``'s scope (their unit's subtree): ``Unit.path LIKE prefix%``."""
    if isinstance(user, Principal):
        return user.unit_path
    path = session.scalars(select(col(Unit.path)).where(col(Unit.id) == user.unit_id)).first()
    if path is None:
        raise NotFoundError(N_("There is no such unit."))
    return path


def ensure_in_scope(session: Session, user: User | Principal, unit_id: int) -> Unit:
    """The unit ``unit_id`` if it lies in ``user``'s subtree; 404 if there is none, 403 if it lies outside."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFoundError(N_("There is no such unit."))
    if not unit.path.startswith(unit_scope_path(session, user)):
        raise ForbiddenError(N_("This unit is outside your scope."))
    return unit


def safe_next(value: str | None, default: str = HOME_PATH) -> str:
    """``value`` if it is a path on this site (``/staff/...``), else ``default``: never another site."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def login_url(next_path: str | None = None) -> str:
    target = safe_next(next_path, "")
    return f"{LOGIN_PATH}?{urlencode({'next': target})}" if target else LOGIN_PATH
