"""What the public survey endpoints do for integrity: a per-address rate limit, a device cookie, and the flags
a submission earns when it is stored (hidden field filled in, sent too fast, same device again).

The rate limit and the device markers count in the app's counters (``survey.limits``): atomic, shared by the
app processes, and keyed by MACs, never by an address or a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import date
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie

from survey.errors import SipasError
from survey.i18n import N_
from survey.integrity.flags import Flag
from survey.limits import Counters, clients
from survey.questionnaires.spec import Spec
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


def rate_key(settings: Settings, address: str) -> str | None:
    """The counter a counted client address (``survey.limits.clients``) is limited under; None when exempt."""
    if clients.exempt(address, tuple(settings.rate_limit_exempt)):
        return None
    return clients.counter_key(settings.secret_key, RATE_PREFIX, address)


async def count_public_request(settings: Settings, counters: Counters, address: str) -> int | None:
    """Count one survey request from ``address``; seconds to wait when it is over the limit, else None."""
    limit = settings.public_rate_limit_per_minute
    if limit <= 0:
        return None
    key = rate_key(settings, address)
    if key is None:
        return None
    hit = await counters.hit(key, window_s=RATE_WINDOW_S)
    return hit.expires_in if hit.count > limit else None


async def public_rate_limit(connection: ASGIConnection[Any, Any, Any, Any]) -> None:
    """First step of every survey page's handler: at most ``public_rate_limit_per_minute`` requests a minute
    per client address. (Called, not a route guard: Litestar copies the handler object for every guard call.)"""
    settings: Settings = connection.app.state.settings
    address = clients.scope_address(connection.scope, tuple(settings.trusted_proxies))
    if await count_public_request(settings, connection.app.state.counters, address) is not None:
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
