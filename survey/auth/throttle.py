"""Failed sign-ins slow down where they come from, not the account: exponential back-off per device and per
address, and a device that has signed in to an account before is never slowed down by strangers.

Every browser that opens the sign-in page gets a signed, random **staff device cookie**. An attempt is counted
in buckets, each an atomic counter of the app's counters (``survey.limits``), keyed by MACs of the name, device
and address, never by the values themselves:

- from a **known device** (one that signed in to this username before, remembered for ``KNOWN_DEVICE_DAYS``):
  only the bucket of that username on that device. Strangers' failures, however many, do not touch it;
- from any **other device**: the bucket of the username for strangers, the bucket of the client address
  (``survey.limits.clients``: ``X-Forwarded-For`` counts only behind a trusted proxy, so rotating it changes
  nothing), and the bucket of the device when it carries a valid cookie (clearing cookies only moves the
  attempts into the address bucket).

A bucket's first ``free`` failures cost nothing (5 per username or device, 20 per address, since an office may
share one). From then on each failure makes the bucket wait 2^k seconds (2, 4, 8, ...; at most
``max_delay_s``) before the next attempt is even checked; the failures are remembered for ``memory_s`` after
the last one. A successful sign-in clears the buckets it was counted in (never the address's) and makes the
device known. So a stranger can slow down other strangers trying a username, never lock its owner out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from litestar.datastructures import Cookie

from survey.limits import Counters, clients
from survey.settings import Settings

PREFIX = "login-fail"
WAIT = "login-wait"
KNOWN = "login-known"
DEVICE_COOKIE = "sipas_staff_device"
DEVICE_COOKIE_DAYS = 365
KNOWN_DEVICE_DAYS = 90


def new_device_cookie(secret: str) -> str:
    """``<random id>.<MAC>``: the id is random and says nothing about the person or the machine."""
    device = secrets.token_urlsafe(16)
    return f"{device}.{_mac(secret, device)}"


def device_id(secret: str, value: str | None) -> str | None:
    """The id in a staff device cookie this platform signed, or None for a missing, forged or altered one."""
    if not value or value.count(".") != 1:
        return None
    device, mac = value.split(".")
    if not device or not hmac.compare_digest(mac, _mac(secret, device)):
        return None
    return device


def _mac(secret: str, device: str) -> str:
    return hmac.new(secret.encode(), f"staff-device:{device}".encode(), hashlib.sha256).hexdigest()[:32]


def device_cookie(settings: Settings, value: str) -> Cookie:
    return Cookie(
        key=settings.cookie_name(DEVICE_COOKIE),
        value=value,
        path="/",
        max_age=DEVICE_COOKIE_DAYS * 24 * 3600,
        httponly=True,
        secure=settings.is_production,
        samesite="lax",
    )


@dataclass(frozen=True, slots=True)
class Attempt:
    """Who tries to sign in (the username typed), from which client address, on which device (None: no cookie)."""

    username: str
    address: str
    device: str | None


@dataclass(frozen=True, slots=True)
class _Bucket:
    failures: str  # counter key of the failures
    wait: str  # counter key that exists while the bucket waits
    free: int


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    counters: Counters
    secret: str
    free_failures: int = 5
    free_failures_per_address: int = 20
    memory_s: int = 15 * 60
    max_delay_s: int = 15 * 60

    @classmethod
    def from_settings(cls, counters: Counters, settings: Settings) -> LoginThrottle:
        return cls(
            counters=counters,
            secret=settings.secret_key,
            free_failures=settings.login_max_failures,
            free_failures_per_address=settings.login_max_failures_per_address,
            memory_s=settings.login_lockout_minutes * 60,
            max_delay_s=settings.login_lockout_minutes * 60,
        )

    def _bucket(self, kind: str, value: str, free: int) -> _Bucket:
        return _Bucket(
            failures=clients.counter_key(self.secret, f"{PREFIX}:{kind}", value),
            wait=clients.counter_key(self.secret, f"{WAIT}:{kind}", value),
            free=free,
        )

    def _known_key(self, attempt: Attempt) -> str:
        return clients.counter_key(self.secret, KNOWN, f"{_name(attempt.username)}:{attempt.device}")

    async def known_device(self, attempt: Attempt) -> bool:
        """Whether this device has signed in to this username before (within ``KNOWN_DEVICE_DAYS``)."""
        return attempt.device is not None and await self.counters.peek(self._known_key(attempt)) is not None

    async def _buckets(self, attempt: Attempt) -> list[_Bucket]:
        name = _name(attempt.username)
        if await self.known_device(attempt):
            return [self._bucket("user-device", f"{name}:{attempt.device}", self.free_failures)]
        buckets = [
            self._bucket("user", name, self.free_failures),
            self._bucket("addr", attempt.address, self.free_failures_per_address),
        ]
        if attempt.device is not None:
            buckets.append(self._bucket("device", attempt.device, self.free_failures))
        return buckets

    async def wait_for(self, attempt: Attempt) -> int | None:
        """Seconds before this attempt may be checked at all, or None if it may be checked now."""
        longest = 0
        for bucket in await self._buckets(attempt):
            waiting = await self.counters.peek(bucket.wait)
            if waiting is not None:
                longest = max(longest, waiting.expires_in)
        return longest or None

    async def failed(self, attempt: Attempt) -> int | None:
        """Count one failure in each of the attempt's buckets; the seconds to wait now, or None."""
        longest = 0
        for bucket in await self._buckets(attempt):
            hit = await self.counters.hit(bucket.failures, window_s=self.memory_s)
            await self.counters.extend(bucket.failures, expires_in_s=self.memory_s)  # remembered from the last one
            if hit.count >= bucket.free:
                delay = min(2 ** (hit.count - bucket.free + 1), self.max_delay_s)
                await self.counters.hit(bucket.wait, window_s=delay)
                await self.counters.extend(bucket.wait, expires_in_s=delay)
                longest = max(longest, delay)
        return longest or None

    async def succeeded(self, attempt: Attempt) -> None:
        """Clear the buckets this attempt counted in (not its address's) and remember the device as known."""
        for bucket in await self._buckets(attempt):
            if bucket.failures.startswith(f"{PREFIX}:addr:"):
                continue
            await self.counters.clear(bucket.failures)
            await self.counters.clear(bucket.wait)
        if attempt.device is not None:
            key = self._known_key(attempt)
            await self.counters.hit(key, window_s=KNOWN_DEVICE_DAYS * 24 * 3600)
            await self.counters.extend(key, expires_in_s=KNOWN_DEVICE_DAYS * 24 * 3600)


def _name(username: str) -> str:
    return username.strip().lower()
