"""Limits on what one client may do: atomic expiring counters (``counters``) and who a request comes from
(``clients``). The public rate limit, the sign-in lockout and the counter's repeat-device markers use them."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url

from survey.limits.counters import Counters, MemoryCounters, RedisCounters, SqliteCounters
from survey.settings import PROJECT_ROOT, Settings

__all__ = ["Counters", "MemoryCounters", "RedisCounters", "SqliteCounters", "counters_for", "local_counters_path"]


def local_counters_path(settings: Settings) -> Path:
    """Where the counters of one machine live without Redis: beside the embedded database, or in ``var/``."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "limits.sqlite"
    return PROJECT_ROOT / "var" / "limits.sqlite"


def counters_for(settings: Settings) -> Counters:
    """Redis when ``redis_url`` is set, otherwise a SQLite file shared by this machine's app processes."""
    if settings.redis_url:
        return RedisCounters(settings.redis_url)
    return SqliteCounters(local_counters_path(settings), busy_timeout_ms=int(settings.db_lock_timeout_seconds * 1000))
