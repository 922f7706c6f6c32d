"""Server-side staff sessions: the cookie holds a random id, the data lives in Redis or in files.

Differences from Litestar's stock server-side backend, each for a reason:

- **No cookie for people who never sign in.** An empty session is not stored and sets no cookie, so a
  citizen answering a survey gets no session.
- **A new id at sign-in** (against session fixation): :func:`begin_session` marks the session, and the
  backend deletes the old id and issues a fresh one. A session that was not loaded from the store (for
  instance under an id an attacker planted in the cookie) always gets a fresh id too.
- **Absolute lifetime.** The session records when it began; after ``session_max_age_minutes`` it is
  gone, however active it was. Store entries expire at the same moment.
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
from survey.db.models import User, pk
from survey.settings import PROJECT_ROOT, Settings

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.types import Message, ScopeSession

STORE_NAME = "sessions"
COOKIE_NAME = "sipas_session"
ISSUED = "_issued"
ROTATE = "_rotate"
USER_ID = "uid"
FINGERPRINT = "auth"
_LOADED = "sipas_session_loaded"


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
        session_id = connection.cookies.get(self.config.key)
        if not session_id or session_id == "null":
            return {}
        store = self.config.get_store_from_app(connection.scope["app"])
        raw = await self.get(session_id, store=store)
        if raw is None:
            return {}
        data = self.deserialize_data(raw)
        issued = data.get(ISSUED)
        if not isinstance(issued, int | float) or self._now() - issued >= self.config.max_age:
            await self.delete(session_id, store=store)
            return {}
        connection.scope.setdefault("state", {})[_LOADED] = dict(data)
        return data

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        store = self.config.get_store_from_app(connection.scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        old_id = connection.cookies.get(self.config.key)
        if old_id == "null":
            old_id = None
        params: dict[str, Any] = {
            "path": self.config.path,
            "domain": self.config.domain,
            "secure": self.config.secure,
            "httponly": self.config.httponly,
            "samesite": self.config.samesite,
        }
        if scope_session is Empty or not scope_session:
            if old_id:
                await self.delete(old_id, store=store)
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
        loaded = connection.scope.get("state", {}).get(_LOADED)
        session_id = old_id
        if rotate or session_id is None or loaded is None or ISSUED not in data:
            if old_id:
                await self.delete(old_id, store=store)
            session_id = self.generate_session_id()
            data[ISSUED] = self._now()
        elif data == loaded:
            return  # nothing changed: the stored entry and the browser's cookie are still right
        remaining = int(self.config.max_age - (self._now() - float(data[ISSUED])))
        if remaining < 1:
            await self.delete(session_id, store=store)
            return
        await store.set(session_id, self.serialize_data(data, connection.scope), expires_in=remaining)
        headers.add(
            "Set-Cookie",
            Cookie(key=self.config.key, value=session_id, max_age=remaining, **params).to_header(header=""),
        )


@dataclass
class StaffSessionConfig(ServerSideSessionConfig):
    _backend_class = StaffSessionBackend


def session_config(settings: Settings) -> StaffSessionConfig:
    return StaffSessionConfig(
        key=settings.cookie_name(COOKIE_NAME),  # __Host-sipas_session in production
        max_age=settings.session_max_age_minutes * 60,
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
    """Sign ``user`` in: a fresh session under a new id (the old one, if any, is deleted)."""
    connection.set_session({USER_ID: pk(user), FINGERPRINT: session_fingerprint(user.password_hash), ROTATE: True})


def end_session(connection: ASGIConnection) -> None:
    """Sign out: the stored session is deleted and the browser told to forget the cookie."""
    connection.clear_session()
