"""What the public survey endpoints do for integrity: a per-address rate limit, a device cookie, and the flags
a submission earns when it is stored (hidden field filled in, sent too fast, same device again).

Every counter lives in the session store (``survey.auth.sessions``): Redis when ``redis_url`` is set, so
several app processes share one count, otherwise files on this machine. As in ``survey.auth.throttle``
the read-then-write is not atomic: under a burst of parallel requests a few more than the limit may pass.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from datetime import date
from functools import lru_cache
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.stores.base import Store

from survey.auth.sessions import STORE_NAME
from survey.errors import SipasError
from survey.i18n import N_
from survey.integrity.flags import Flag
from survey.questionnaire import Spec
from survey.settings import Settings

RATE_PREFIX = "public-rate"
DEVICE_PREFIX = "device-seen"
DEVICE_COOKIE = "sipas_device"
DEVICE_COOKIE_DAYS = 400
RATE_WINDOW_S = 60


class RateLimited(SipasError):
    """Too many survey requests from one address: a friendly page, not an error of the citizen's."""

    status_code = 429
    template = "errors/429.html"


@lru_cache(maxsize=16)
def _networks(exempt: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in exempt)


@lru_cache(maxsize=4096)  # parsing an address costs more than the rest of the guard; phones come back
def rate_key(host: str | None, exempt: tuple[str, ...]) -> str | None:
    """The counter a client address is limited under, or None when it is not limited.

    IPv6 addresses count per /64 (one phone's whole prefix); an address that is not an IP address at all
    (no network connection, such as the in-process test client) or lies in an exempt network is not limited.
    """
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if any(address in net for net in _networks(exempt)):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"{RATE_PREFIX}:{address.ipv4_mapped}"
        return f"{RATE_PREFIX}:{ipaddress.ip_network(f'{address}/64', strict=False).network_address}/64"
    return f"{RATE_PREFIX}:{address}"


async def hit(store: Store, key: str, *, limit: int, now: float | None = None) -> int | None:
    """Count one request under ``key`` in a fixed window; seconds to wait if it is over ``limit``, else None."""
    now = time.time() if now is None else now
    raw = await store.get(key)
    start, count = now, 0
    if raw is not None:
        try:
            first, _, seen = raw.decode().partition(":")
            start, count = float(first), int(seen)
        except ValueError:
            start, count = now, 0
        if now - start >= RATE_WINDOW_S or start > now:
            start, count = now, 0
    count += 1
    remaining = max(1, math.ceil(start + RATE_WINDOW_S - now))
    await store.set(key, f"{start}:{count}", expires_in=remaining)
    return remaining if count > limit else None


RATE_VERDICT = "sipas.rate_limit"  # in a request's scope: the rate limit was counted already, and its verdict


async def count_public_request(settings: Settings, store: Store, host: str | None) -> int | None:
    """Count one survey request from ``host``; seconds to wait when it is over the limit, else None."""
    limit = settings.public_rate_limit_per_minute
    if limit <= 0:
        return None
    key = rate_key(host, tuple(settings.rate_limit_exempt))
    if key is None:
        return None
    return await hit(store, key, limit=limit)


async def public_rate_limit(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """First step of every survey page's handler: at most ``public_rate_limit_per_minute`` requests a minute
    per address. (Called, not a route guard: Litestar copies the handler object for every guard call,
    which cost more than the survey page's own lookup.) A request the receipt fast path
    (``survey.citizen.fastpath``) handed on was counted there: its verdict is used, not counted again."""
    scope: Any = connection.scope
    if RATE_VERDICT in scope:
        wait = scope[RATE_VERDICT]
    else:
        host = connection.client.host if connection.client else None
        wait = await count_public_request(connection.app.state.settings, connection.app.stores.get(STORE_NAME), host)
    if wait is not None:
        raise RateLimited(
            N_("Many answers have come from your network in the last minute. Please wait a minute and try again.")
        )


# -- the device cookie -------------------------------------------------------------------------------------------


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def new_device_cookie(secret: str) -> str:
    """``<random id>.<HMAC of it>``: the id is random, so it says nothing about the person."""
    device = secrets.token_urlsafe(16)
    return f"{device}.{_mac(secret, 'device:' + device)[:32]}"


def device_id(secret: str, cookie: str | None) -> str | None:
    """The id in a device cookie this platform signed, or None for a missing, forged or altered one."""
    if not cookie or cookie.count(".") != 1:
        return None
    device, mac = cookie.split(".")
    if not device or not hmac.compare_digest(mac, _mac(secret, "device:" + device)[:32]):
        return None
    return device


def device_cookie(value: str, settings: Settings) -> Cookie:
    return Cookie(
        key=DEVICE_COOKIE,
        value=value,
        path="/c/",
        max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
        httponly=True,
        secure=settings.environment == "production",
        samesite="lax",
    )


def device_marker(secret: str, device: str, counter_token: str, day: date) -> str:
    """The store key saying "this device rated this counter today": a MAC, never the cookie itself."""
    return f"{DEVICE_PREFIX}:{_mac(secret, f'{device}:{counter_token}:{day.isoformat()}')[:40]}"


DEVICE_MARKER_TTL_S = 36 * 3600  # outlives the day it is about, wherever in the day it was set


# -- the flags a submission earns -----------------------------------------------------------------------------------


def min_seconds(spec: Spec, settings: Settings) -> float:
    """How long a person needs at least for ``spec``: the setting, scaled by the questionnaire's item count."""
    scaled = settings.min_completion_seconds * len(spec.items) / settings.min_completion_reference_items
    return max(1.0, scaled) if settings.min_completion_seconds > 0 else 0.0


def submission_flags(*, honeypot: str, elapsed_s: float, needed_s: float, repeat_device: bool) -> Flag:
    """The flags a response is stored with (it is stored whatever they are)."""
    flags = Flag(0)
    if honeypot.strip():
        flags |= Flag.HONEYPOT
    if elapsed_s < needed_s:
        flags |= Flag.TOO_FAST
    if repeat_device:
        flags |= Flag.REPEAT_DEVICE
    return flags
