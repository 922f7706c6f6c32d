"""Server-side staff sessions: the cookie holds a random id, the data lives in Redis or in files.

Differences from Litestar's stock server-side backend, each for a reason:

- **No cookie for people who never sign in.** An empty session is not stored and sets no cookie, so a
  citizen answering a survey gets no session.
- **A new id at sign-in** (against session fixation): :func:`begin_session` marks the session, and the
  backend deletes the old id and issues a fresh one. A session that was not loaded from the store (for
  instance under an id an attacker planted in the cookie) always gets a fresh id too. A cookie that is not
  shaped like an id the backend issues is ignored without touching the store.
- **Absolute lifetime.** The session records when it began; after ``session_max_age_minutes`` it is
  gone, however active it was.
- **Idle timeout.** The session records when it was last used (to the minute: the entry is rewritten at most
  once a minute); unused for ``session_idle_minutes``, it is gone. Store entries expire by then as well.
- **Each account's list of sessions** (``survey.auth.session_index``): a signed-in session must be on its
  account's list, so a session ended from the sessions page, or by "sign out everywhere else", ends at once.
- **Sign-out deletes the entry**, so the old cookie is worthless even if someone kept a copy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.types import Empty
from sqlalchemy.engine import make_url

from survey.auth.services import session_fingerprint
from survey.auth.session_index import (
    DEVICE,
    ISSUED,
    SEEN,
    SESSION_ID_RE,
    USER_ID,
    add_session,
    describe_device,
    load_index,
    remove_sessions,
)
from survey.db.models import User, pk
from survey.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.types import Message, ScopeSession

__all__ = ["COOKIE_NAME", "FINGERPRINT", "ISSUED", "SEEN", "STORE_NAME", "USER_ID", "begin_session", "end_session"]

STORE_NAME = "sessions"
COOKIE_NAME = "sipas_session"
ROTATE = "_rotate"
FINGERPRINT = "auth"
SEEN_STEP_S = 60  # "last used" is kept to the minute: at most one write a minute per active session
_LOADED = "sipas_session_loaded"


def valid_session_id(value: str | None) -> str | None:
    """``value`` if it has the shape of an id this backend issues (so it can be looked up), else None."""
    return value if value and SESSION_ID_RE.fullmatch(value) else None


def session_store(settings: Settings, *, namespace: str = "sipas") -> Store:
    """Redis when ``redis_url`` is set (several app processes), otherwise files on this machine.

    The files sit in ``sessions/`` beside the embedded SQLite database (``var/sessions`` by default), or in
    the project's ``var/sessions`` when the database is a server.
    """
    if settings.redis_url:
        return RedisStore.with_client(url=settings.redis_url, namespace=namespace)
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        folder = Path(url.database).resolve().parent / "sessions"
    else:
        folder = PROJECT_ROOT / "var" / "sessions"
    return FileStore(folder, create_directories=True)


class StaffSessionBackend(ServerSideSessionBackend):
    """See the module docstring."""

    config: StaffSessionConfig

    @staticmethod
    def _now() -> float:
        return time.time()

    async def load_from_connection(self, connection: ASGIConnection) -> dict[str, Any]:
        session_id = valid_session_id(connection.cookies.get(self.config.key))
        if session_id is None:
            return {}
        store = self.config.get_store_from_app(connection.scope["app"])
        raw = await self.get(session_id, store=store)
        if raw is None:
            return {}
        data = self.deserialize_data(raw)
        now = self._now()
        seen = self._last_used(data, now)
        user_id = data.get(USER_ID)
        if seen is not None and isinstance(user_id, int) and session_id not in await load_index(store, user_id):
            seen = None  # ended from elsewhere, or never listed
        if seen is None:
            await self._forget(store, session_id, user_id)
            return {}
        connection.scope.setdefault("state", {})[_LOADED] = dict(data)
        if now - seen >= SEEN_STEP_S:
            data[SEEN] = now  # differs from what was loaded: stored again on the way out
        return data

    def _last_used(self, data: dict[str, Any], now: float) -> float | None:
        """When the session was last used, or None if it is over (past its lifetime, or idle for too long)."""
        issued = data.get(ISSUED)
        seen = data.get(SEEN, issued)
        if not isinstance(issued, int | float) or not isinstance(seen, int | float):
            return None
        if now - issued >= self.config.max_age or now - seen >= self.config.idle_timeout:
            return None
        return float(seen)

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        old_id = valid_session_id(connection.cookies.get(self.config.key))
        loaded = connection.scope.get("state", {}).get(_LOADED)
        old_user = loaded.get(USER_ID) if isinstance(loaded, dict) else None
        params: dict[str, Any] = {
            "path": self.config.path,
            "domain": self.config.domain,
            "secure": self.config.secure,
            "httponly": self.config.httponly,
            "samesite": self.config.samesite,
        }
        if scope_session is Empty or not scope_session:
            if old_id:
                await self._forget(store, old_id, old_user)
            if connection.cookies.get(self.config.key):
                headers.add(
                    "Set-Cookie", Cookie(key=self.config.key, value="null", expires=0, **params).to_header(header="")
                )
            return
        # a dict, or a struct or dataclass Litestar can serialise: either way compared and stored as a dict
        data: dict[str, Any] = (
            dict(scope_session)
            if isinstance(scope_session, dict)
            else self.deserialize_data(self.serialize_data(scope_session))
        )
        rotate = bool(data.pop(ROTATE, False))
        session_id = old_id
        fresh = rotate or session_id is None or loaded is None or ISSUED not in data
        if fresh:
            if old_id:
                await self._forget(store, old_id, old_user)
            session_id = self.generate_session_id()
            data[ISSUED] = data[SEEN] = self._now()
        elif data == loaded:
            return  # nothing changed: the stored entry and the browser's cookie are still right
        assert session_id is not None
        remaining = int(self.config.max_age - (self._now() - float(data[ISSUED])))
        if remaining < 1:
            await self._forget(store, session_id, data.get(USER_ID))
            return
        expires_in = min(remaining, self.config.idle_timeout + SEEN_STEP_S)
        await store.set(session_id, self.serialize_data(data, connection.scope), expires_in=expires_in)
        if fresh and isinstance(data.get(USER_ID), int):
            await add_session(
                store,
                data[USER_ID],
                session_id,
                started=float(data[ISSUED]),
                device=data.get(DEVICE),
                max_age_s=self.config.max_age,
            )
        headers.add(
            "Set-Cookie",
            Cookie(key=self.config.key, value=session_id, max_age=remaining, **params).to_header(header=""),
        )

    async def _forget(self, store: Store, session_id: str, user_id: Any) -> None:
        await self.delete(session_id, store=store)
        if isinstance(user_id, int):
            await remove_sessions(store, user_id, {session_id}, max_age_s=self.config.max_age)


@dataclass
class StaffSessionConfig(ServerSideSessionConfig):
    _backend_class = StaffSessionBackend
    idle_timeout: int = 30 * 60
    """Seconds a session may go unused before it ends."""


def session_config(settings: Settings) -> StaffSessionConfig:
    return StaffSessionConfig(
        key=settings.cookie_name(COOKIE_NAME),  # __Host-sipas_session in production
        max_age=settings.session_max_age_minutes * 60,
        idle_timeout=settings.session_idle_minutes * 60,
        secure=settings.is_production,
        path="/",
        domain=None,
        httponly=True,
        samesite="lax",
        store=STORE_NAME,
        exclude=[
            "^/static/",
            "^/api/",
            "^/healthz",
            "^/schema",
            "^/r/",
            "^/c/",
            "^/thanks",
        ],  # citizens have no session
    )


def begin_session(connection: ASGIConnection, user: User) -> None:
    """Sign ``user`` in: a fresh session under a new id (the old one, if any, is deleted), on the account's list."""
    connection.set_session(
        {
            USER_ID: pk(user),
            FINGERPRINT: session_fingerprint(user.password_hash),
            DEVICE: describe_device(connection.headers.get("user-agent")),
            ROTATE: True,
        }
    )


def end_session(connection: ASGIConnection) -> None:
    """Sign out: the stored session is deleted and the browser told to forget the cookie."""
    connection.clear_session()


def current_session_id(connection: ASGIConnection) -> str | None:
    """The id of the session this request came with (None without a valid-looking cookie)."""
    settings: Settings = connection.app.state.settings
    return valid_session_id(connection.cookies.get(settings.cookie_name(COOKIE_NAME)))
