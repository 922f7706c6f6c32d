"""Each account's list of open sessions, kept in the session store beside the sessions themselves.

The store (Redis or files) only gets, sets and deletes keys, so every account has one more entry,
``user-sessions:<user id>``: a small JSON object from each of its session ids to when that session began and
a coarse description of the device (browser and system, from the User-Agent; never an address). The
session entries themselves hold when they were last used. From the two, :func:`list_sessions` shows an
account its sessions and :func:`end_sessions` ends any of them.

**A session not in its account's list is over.** The session backend checks membership on every request, so
ending a session from elsewhere takes effect at once, and the list cannot miss a live session: should two
sign-ins of one account race and one of them be lost from the list, that session ends at its next request
(the person signs in again) instead of living on unseen.

Session ids are never shown: a page refers to a session by a digest of its id (:func:`session_ref`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from litestar.stores.base import Store

ISSUED = "_issued"
SEEN = "_seen"
USER_ID = "uid"
DEVICE = "_device"
INDEX_PREFIX = "user-sessions:"
SESSION_ID_RE = re.compile(r"^[0-9a-f]{32,128}$")  # what Litestar issues (hex); an index key never matches


def index_key(user_id: int) -> str:
    return f"{INDEX_PREFIX}{int(user_id)}"


def session_ref(session_id: str) -> str:
    """How a page names a session: a digest of its id, which cannot be turned back into the id."""
    return hashlib.sha256(f"session-ref:{session_id}".encode()).hexdigest()[:24]


def _decode(raw: bytes | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


async def load_index(store: Store, user_id: int) -> dict[str, dict[str, Any]]:
    """The account's sessions: id -> {"started": epoch seconds, "device": {"browser", "os"}}."""
    return {k: v for k, v in _decode(await store.get(index_key(user_id))).items() if isinstance(v, dict)}


async def _save(store: Store, user_id: int, index: dict[str, dict[str, Any]], keep_s: int) -> None:
    if index:
        await store.set(index_key(user_id), json.dumps(index), expires_in=max(1, keep_s))
    else:
        await store.delete(index_key(user_id))


async def add_session(
    store: Store, user_id: int, session_id: str, *, started: float, device: Any, max_age_s: int
) -> None:
    """Put a new session into its account's list (dropping entries past the absolute lifetime)."""
    index = await load_index(store, user_id)
    now = time.time()
    index = {k: v for k, v in index.items() if now - float(v.get("started", 0)) < max_age_s}
    index[session_id] = {"started": started, "device": device if isinstance(device, dict) else None}
    await _save(store, user_id, index, max_age_s)


async def remove_sessions(store: Store, user_id: int, session_ids: set[str], *, max_age_s: int) -> None:
    index = await load_index(store, user_id)
    if session_ids & index.keys():
        await _save(store, user_id, {k: v for k, v in index.items() if k not in session_ids}, max_age_s)


@dataclass(frozen=True, slots=True)
class OpenSession:
    """One open session as its account sees it."""

    ref: str
    started: float
    last_seen: float
    browser: str | None
    os: str | None
    current: bool


async def list_sessions(
    store: Store, user_id: int, *, current_id: str | None, max_age_s: int, idle_s: int
) -> list[OpenSession]:
    """The account's live sessions, the current one first, then the most recently used."""
    index = await load_index(store, user_id)
    now = time.time()
    found: list[OpenSession] = []
    live: dict[str, dict[str, Any]] = {}
    for session_id, entry in index.items():
        data = _decode(await store.get(session_id))
        issued, seen = data.get(ISSUED), data.get(SEEN, data.get(ISSUED))
        if data.get(USER_ID) != user_id or not isinstance(issued, int | float) or not isinstance(seen, int | float):
            continue
        if now - issued >= max_age_s or now - seen >= idle_s:
            continue
        live[session_id] = entry
        device = entry.get("device") or {}
        found.append(
            OpenSession(
                ref=session_ref(session_id),
                started=float(issued),
                last_seen=float(seen),
                browser=device.get("browser"),
                os=device.get("os"),
                current=session_id == current_id,
            )
        )
    if live.keys() != index.keys():
        await _save(store, user_id, live, max_age_s)
    return sorted(found, key=lambda s: (not s.current, -s.last_seen))


async def end_sessions(
    store: Store, user_id: int, *, keep: str | None, refs: set[str] | None = None, max_age_s: int
) -> int:
    """End the account's sessions named by ``refs`` (all of them when None), never the session ``keep``.

    The entries are deleted from the store and from the list; returns how many were ended.
    """
    index = await load_index(store, user_id)
    chosen = {
        session_id
        for session_id in index
        if session_id != keep and (refs is None or any(hmac.compare_digest(session_ref(session_id), r) for r in refs))
    }
    for session_id in chosen:
        await store.delete(session_id)
    await remove_sessions(store, user_id, chosen, max_age_s=max_age_s)
    return len(chosen)


# -- a coarse description of the device --------------------------------------------------------------------

_BROWSERS = (
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("coc_coc_browser", "Cốc Cốc"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Zalo", "Zalo"),
    ("Firefox/", "Firefox"),
    ("FxiOS", "Firefox"),
    ("CriOS", "Chrome"),
    ("Chrome/", "Chrome"),
    ("Version/", "Safari"),
)
_SYSTEMS = (
    ("Windows", "Windows"),
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def describe_device(user_agent: str | None) -> dict[str, str | None]:
    """The browser family and the operating system named by a User-Agent (None where it says nothing known).

    Deliberately coarse: enough for a person to recognise "Chrome on Windows", not a fingerprint.
    """
    text = (user_agent or "")[:512]
    browser = next((name for token, name in _BROWSERS if token in text), None)
    system = next((name for token, name in _SYSTEMS if token in text), None)
    return {"browser": browser, "os": system}
