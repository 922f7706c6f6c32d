"""Counters that expire: the rate limit, the sign-in lockout and the counter's repeat-device markers count here.

Every count is atomic, so a limit is exact however many requests arrive at once:

- **Redis** (``redis_url`` set; several app processes or machines): one Lua script per hit, ``INCR`` then the
  expiry on the first hit, run by Redis as one step. If Redis cannot be reached, counting goes on in this
  process's memory (a limit per process, so the same limit is a little looser) with a warning in the log, and
  Redis is tried again a few seconds later: an outage never turns into an error page.
- **SQLite** (no Redis; the processes of one machine): ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` in
  a small file of its own, under SQLite's write lock. Expired rows are deleted as the file is used, so
  nothing outlives its window on disk.
- **Memory** (one process: the Redis fallback, and tests).

Keys are made by the callers from MACs (``survey.limits.clients``), never from a raw address or name.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import anyio.to_thread
from redis import asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("sipas.limits")


@dataclass(frozen=True, slots=True)
class Hit:
    """A counter's value after a hit, and the seconds until it expires (at least 1)."""

    count: int
    expires_in: int


class Counters(Protocol):
    async def hit(self, key: str, *, window_s: int) -> Hit:
        """Add one to ``key`` (a new counter expires after ``window_s``); its new value."""
        ...

    async def peek(self, key: str) -> Hit | None:
        """The counter's value without changing it, or None if it does not exist (or has expired)."""
        ...

    async def extend(self, key: str, *, expires_in_s: int) -> None:
        """Make an existing counter expire ``expires_in_s`` from now (a lock after the last allowed failure)."""
        ...

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


def _left(expires_at: float, now: float) -> int:
    return max(1, math.ceil(expires_at - now))


class MemoryCounters:
    """Counters in this process's memory: atomic because the event loop runs one step at a time."""

    def __init__(self, *, clock: Any = time.monotonic, purge_every: int = 4096) -> None:
        self._clock = clock
        self._values: dict[str, tuple[int, float]] = {}
        self._purge_every = purge_every
        self._hits = 0

    def hit_now(self, key: str, *, window_s: int) -> Hit:
        now = self._clock()
        count, expires_at = self._values.get(key, (0, 0.0))
        if expires_at <= now:
            count, expires_at = 0, now + window_s
        self._values[key] = (count + 1, expires_at)
        self._hits += 1
        if self._hits % self._purge_every == 0:
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
        return Hit(count + 1, _left(expires_at, now))

    async def hit(self, key: str, *, window_s: int) -> Hit:
        return self.hit_now(key, window_s=window_s)

    async def peek(self, key: str) -> Hit | None:
        now = self._clock()
        found = self._values.get(key)
        if found is None or found[1] <= now:
            return None
        return Hit(found[0], _left(found[1], now))

    async def extend(self, key: str, *, expires_in_s: int) -> None:
        found = self._values.get(key)
        if found is not None:
            self._values[key] = (found[0], self._clock() + expires_in_s)

    async def clear(self, key: str) -> None:
        self._values.pop(key, None)

    async def close(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        """How many counters are held, expired ones included until the next purge."""
        return len(self._values)


_SQLITE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counter (key TEXT PRIMARY KEY, n INTEGER NOT NULL, expires_at REAL NOT NULL)"
)
_SQLITE_HIT = """
INSERT INTO counter (key, n, expires_at) VALUES (:key, 1, :new_expiry)
ON CONFLICT (key) DO UPDATE SET
    n = CASE WHEN counter.expires_at <= :now THEN 1 ELSE counter.n + 1 END,
    expires_at = CASE WHEN counter.expires_at <= :now THEN :new_expiry ELSE counter.expires_at END
RETURNING n, expires_at
"""


class SqliteCounters:
    """Counters in a SQLite file shared by the app processes of one machine (each statement in a worker thread)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = 2000, purge_every_s: float = 60.0) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = OFF")  # counters need no durability, only atomicity
        self._conn.execute(_SQLITE_SCHEMA)
        self._lock = threading.Lock()
        self._purge_every_s = purge_every_s
        self._next_purge = 0.0

    def _run(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            now = params.get("now") or time.time()
            if now >= self._next_purge:
                self._next_purge = now + self._purge_every_s
                self._conn.execute("DELETE FROM counter WHERE expires_at <= ?", (now,))
            return self._conn.execute(sql, params).fetchall()

    async def hit(self, key: str, *, window_s: int) -> Hit:
        now = time.time()
        params = {"key": key, "now": now, "new_expiry": now + window_s}
        ((count, expires_at),) = await anyio.to_thread.run_sync(self._run, _SQLITE_HIT, params)
        return Hit(int(count), _left(float(expires_at), now))

    async def peek(self, key: str) -> Hit | None:
        now = time.time()
        sql = "SELECT n, expires_at FROM counter WHERE key = :key AND expires_at > :now"
        rows = await anyio.to_thread.run_sync(self._run, sql, {"key": key, "now": now})
        return Hit(int(rows[0][0]), _left(float(rows[0][1]), now)) if rows else None

    async def extend(self, key: str, *, expires_in_s: int) -> None:
        sql = "UPDATE counter SET expires_at = :at WHERE key = :key"
        await anyio.to_thread.run_sync(self._run, sql, {"key": key, "at": time.time() + expires_in_s})

    async def clear(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._run, "DELETE FROM counter WHERE key = :key", {"key": key})

    async def close(self) -> None:
        with self._lock:
            self._conn.close()

    def stored(self) -> int:
        """How many rows the file holds (expired ones until the next purge)."""
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM counter").fetchone()[0])


# INCR, and the expiry on a counter's first hit (or on one that somehow has none), in one atomic step.
_REDIS_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class RedisCounters:
    """Counters in Redis, shared by every app process; this process's memory while Redis is unreachable."""

    def __init__(
        self, url: str, *, namespace: str = "sipas-limits", timeout_s: float = 0.5, retry_after_s: float = 5.0
    ) -> None:
        self._redis = aioredis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._script = self._redis.register_script(_REDIS_HIT)
        self._prefix = f"{namespace}:"
        self._retry_after_s = retry_after_s
        self._down_until = 0.0
        self.fallback = MemoryCounters()

    def _available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _failed(self, exc: Exception) -> None:
        if self._available():
            log.warning(
                "Redis unreachable (%s): limits counted per process for the next %.0f s", exc, self._retry_after_s
            )
        self._down_until = time.monotonic() + self._retry_after_s

    async def hit(self, key: str, *, window_s: int) -> Hit:
        if self._available():
            try:
                count, ttl_ms = await self._script(keys=[self._prefix + key], args=[window_s * 1000])
                return Hit(int(count), max(1, math.ceil(int(ttl_ms) / 1000)))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return await self.fallback.hit(key, window_s=window_s)

    async def peek(self, key: str) -> Hit | None:
        if self._available():
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.get(self._prefix + key)
                    pipe.pttl(self._prefix + key)
                    raw, ttl_ms = await pipe.execute()
                if raw is None or int(ttl_ms) == -2:
                    return None
                return Hit(int(raw), max(1, math.ceil(int(ttl_ms) / 1000)))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return await self.fallback.peek(key)

    async def extend(self, key: str, *, expires_in_s: int) -> None:
        if self._available():
            try:
                await self._redis.expire(self._prefix + key, expires_in_s)
                return
            except (RedisError, OSError) as exc:
                self._failed(exc)
        await self.fallback.extend(key, expires_in_s=expires_in_s)

    async def clear(self, key: str) -> None:
        await self.fallback.clear(key)
        if self._available():
            try:
                await self._redis.delete(self._prefix + key)
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def close(self) -> None:
        await self._redis.aclose()
