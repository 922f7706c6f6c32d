"""Failed sign-in counting: per username and per client address, in the app's counters (``survey.limits``).

Within a window (15 minutes by default) the failures of a username and of an address are counted; at the
limit (5 for a username, more for an address, since a whole office may share one) sign-in is locked for the
lockout period, even with the right password. A successful sign-in clears the username's count. Each failure
is one atomic increment, so a burst of parallel guesses cannot get past the limit; the counters are keyed by
MACs of the name and the address, never by the name or address itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from survey.limits import Counters, clients
from survey.settings import Settings

PREFIX = "login-fail"


@dataclass(frozen=True, slots=True)
class LoginThrottle:
    counters: Counters
    secret: str
    max_failures: int = 5
    max_failures_per_address: int = 20
    window_s: int = 15 * 60
    lockout_s: int = 15 * 60

    @classmethod
    def from_settings(cls, counters: Counters, settings: Settings) -> LoginThrottle:
        return cls(
            counters=counters,
            secret=settings.secret_key,
            max_failures=settings.login_max_failures,
            max_failures_per_address=settings.login_max_failures_per_address,
            window_s=settings.login_lockout_minutes * 60,
            lockout_s=settings.login_lockout_minutes * 60,
        )

    def _user_key(self, username: str) -> str:
        return clients.counter_key(self.secret, f"{PREFIX}:user", username.strip().lower())

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        return [
            (self._user_key(username), self.max_failures),
            (clients.counter_key(self.secret, f"{PREFIX}:addr", address), self.max_failures_per_address),
        ]

    async def locked_for(self, *, username: str, address: str) -> int | None:
        """Minutes until sign-in is possible again for this username or address, or None if it is not locked."""
        longest = 0
        for key, limit in self._keys(username, address):
            found = await self.counters.peek(key)
            if found is not None and found.count >= limit:
                longest = max(longest, found.expires_in)
        return math.ceil(longest / 60) if longest else None

    async def failed(self, *, username: str, address: str) -> int | None:
        """Count one failure; returns the lock's minutes if this failure reached a limit."""
        for key, limit in self._keys(username, address):
            hit = await self.counters.hit(key, window_s=self.window_s)
            if hit.count == limit:  # the failure that locks: the lock lasts the whole lockout from now
                await self.counters.extend(key, expires_in_s=self.lockout_s)
        return await self.locked_for(username=username, address=address)

    async def succeeded(self, *, username: str) -> None:
        await self.counters.clear(self._user_key(username))
