"""Failed sign-in counting: per username and per client address, in the session store.

Within a window (15 minutes by default) the failures of a username and of an address are counted;
at the limit (5 for a username, more for an address, since a whole office may share one) sign-in is
locked for the lockout period, even with the right password. A successful sign-in clears the
username's count. Counters live in the same store as sessions, so several app processes share them
when that store is Redis. The read-then-write is not atomic: under a burst of parallel guesses a few
more than the limit may be tried, which does not change what the lock is for.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from litestar.stores.base import Store

from survey.settings import Settings

PREFIX = "login-fail"


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    store: Store
    max_failures: int = 5
    max_failures_per_address: int = 20
    window_s: int = 15 * 60
    lockout_s: int = 15 * 60

    @classmethod
    def from_settings(cls, store: Store, settings: Settings) -> LoginThrottle:
        return cls(
            store=store,
            max_failures=settings.login_max_failures,
            max_failures_per_address=settings.login_max_failures_per_address,
            window_s=settings.login_lockout_minutes * 60,
            lockout_s=settings.login_lockout_minutes * 60,
        )

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
        return [
            (f"{PREFIX}:user:{name}", self.max_failures),
            (f"{PREFIX}:addr:{address}", self.max_failures_per_address),
        ]

    async def _count(self, key: str) -> int:
        raw = await self.store.get(key)
        try:
            return int(raw) if raw is not None else 0
        except ValueError:
            return 0

    async def locked_for(self, *, username: str, address: str) -> int | None:
        """Minutes until sign-in is possible again for this username or address, or None if it is not locked."""
        longest = 0
        for key, limit in self._keys(username, address):
            if await self._count(key) >= limit:
                longest = max(longest, await self.store.expires_in(key) or self.lockout_s)
        return math.ceil(longest / 60) if longest else None

    async def failed(self, *, username: str, address: str) -> int | None:
        """Count one failure; returns the lock's minutes if this failure reached a limit."""
        for key, limit in self._keys(username, address):
            count = await self._count(key) + 1
            if count >= limit:
                expires = self.lockout_s
            else:
                expires = (await self.store.expires_in(key) or self.window_s) if count > 1 else self.window_s
            await self.store.set(key, str(count), expires_in=max(1, expires))
        return await self.locked_for(username=username, address=address)

    async def succeeded(self, *, username: str) -> None:
        await self.store.delete(self._keys(username, "")[0][0])
