"""One typed settings object, read once from the environment (``SIPAS_*``; the environment wins over ``.env``)."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused outside development
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_SECRET_LENGTH = 32
MIN_SECRET_BITS = 80  # Shannon estimate; 32 random hex digits score 94 or more, 32 times the same letter 0


def secret_weakness(secret: str) -> str | None:
    """Why ``secret`` is too predictable to sign sessions with, or None.

    An estimate, not a proof of randomness: the Shannon entropy of its characters times its length (at least
    ``MIN_SECRET_BITS``), no repeated block ("abcabc..."), no run of consecutive characters ("abcdef...").
    """
    if len(secret) < MIN_SECRET_LENGTH:
        return f"it has {len(secret)} characters, fewer than {MIN_SECRET_LENGTH}"
    n = len(secret)
    bits = -sum(c / n * math.log2(c / n) for c in Counter(secret).values()) * n
    if bits < MIN_SECRET_BITS:
        return f"its characters carry about {bits:.0f} bits of entropy, fewer than {MIN_SECRET_BITS}"
    if any(secret == (secret[:period] * (n // period + 1))[:n] for period in range(1, n // 2 + 1)):
        return "it repeats a shorter block"
    steps = sum(1 for a, b in itertools.pairwise(secret) if abs(ord(b) - ord(a)) == 1)
    if steps > n // 2:
        return "it is mostly a run of consecutive characters"
    return None


class Settings(BaseSettings):
    """Configuration of one platform process.

    Every field can be set as ``SIPAS_<NAME>`` in the environment or in a ``.env`` file.
    """

    model_config = SettingsConfigDict(env_prefix="SIPAS_", env_file=".env", extra="ignore", frozen=True)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = Field(
        default=f"sqlite:///{PROJECT_ROOT / 'var' / 'sipas.db'}",
        description="SQLAlchemy URL; sqlite:///path for the embedded database, postgresql+psycopg://... in production.",
    )
    secret_key: str = Field(default=DEFAULT_SECRET, description="Signs form tokens and sessions.")
    base_url: str = Field(default="http://127.0.0.1:8000", description="Public address printed in QR codes.")
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["*"],
        description='Host names the app answers to (a request for another Host gets 400); "*.example.vn" allows '
        'subdomains. Production refuses "*": name the platform\'s host names.',
    )
    default_locale: Literal["vi", "en"] = "vi"
    timezone: str = Field(
        default="Asia/Ho_Chi_Minh", description="Wave dates and code expiry are days in this time zone."
    )
    time_bucket_minutes: int = Field(
        default=15, ge=1, le=1440, description="Submission times are stored rounded down to this many minutes."
    )
    comment_max_chars: int = Field(default=1000, ge=1, le=10000)
    disclosure_min_cell: int = Field(
        default=5,
        ge=2,
        le=1000,
        description="k of disclosure control: microdata groups (unit x field x channel x profile) smaller than this "
        "are coarsened or left out, and a unit's comments are shown only from this many responses.",
    )
    receipt_code_valid_days: int = Field(default=60, ge=1, description="How long a printed receipt code stays usable.")
    form_token_max_age_hours: int = Field(default=24, ge=1, description="How long an opened survey page can be sent.")
    redis_url: str | None = Field(
        default=None,
        description="redis://host:port/db for sessions and rate-limit counters shared by several app processes; "
        "without it they are kept in files under var/ (one machine).",
    )
    session_max_age_minutes: int = Field(
        default=480, ge=5, description="A staff session ends this long after sign-in, however active it was."
    )
    session_idle_minutes: int = Field(
        default=30, ge=1, description="A staff session unused for this long ends (checked to the minute)."
    )
    password_hash_concurrency: int = Field(
        default=2,
        ge=1,
        description="Password hashes (64 MiB each) one app process computes at once; further sign-ins wait.",
    )
    password_hash_wait_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Longest a sign-in waits for a hashing slot before it gets 'busy, try again' (503).",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        description="Failed sign-ins without delay per username from unknown devices, per device, and per username "
        "on a known device; each further failure doubles the wait before the next attempt (2, 4, 8 s...).",
    )
    login_max_failures_per_address: int = Field(
        default=20,
        ge=1,
        description="Failed sign-ins without delay from one client address (an office may share one), then the same "
        "doubling wait for attempts from unknown devices there.",
    )
    login_lockout_minutes: int = Field(
        default=15,
        ge=1,
        description="The longest wait between attempts, and how long failures are remembered after the last one.",
    )
    public_rate_limit_per_minute: int = Field(
        default=60,
        ge=0,
        description="Requests to the survey pages (/r/..., /c/...) one client address may make a minute (0: no "
        "limit). Counted atomically in Redis when redis_url is set (shared by every app process), otherwise in a "
        "file beside the database (the processes of one machine).",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1/32", "::1/128"],
        description="Networks of the reverse proxies in front of the app: only a request from one of them has its "
        "client address taken from X-Forwarded-For (the right-most address that is not a proxy).",
    )
    rate_limit_exempt: list[str] = Field(
        default_factory=list,
        description="Client networks never rate-limited (none by default: a health check does not use the survey "
        "pages). An address that cannot be read is limited, never exempt.",
    )
    db_statement_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="PostgreSQL: longest statement the app runs (statement_timeout on every connection it opens).",
    )
    db_lock_timeout_seconds: float = Field(
        default=3.0,
        gt=0,
        description="Longest wait for a lock another transaction holds (PostgreSQL lock_timeout; SQLite busy "
        "timeout), after which the request gets a 'please try again' page instead of waiting.",
    )
    citizen_wait_seconds: float = Field(
        default=4.0,
        gt=0,
        description="Longest a survey page or submission waits for the database (a server that accepts but never "
        "answers); then the citizen gets the 'please try again in a few minutes' page.",
    )
    prewarm_scores: bool = Field(
        default=True,
        description="Compute the league tables of open waves in the background when the app starts, so the "
        "first leader to open one does not wait for it.",
    )
    score_refresh_seconds: float = Field(
        default=60.0,
        ge=0,
        description="While responses arrive, a stored league table or scorecard is computed again at most this "
        "often (and at most once per five times its own cost); pages show when theirs was computed.",
    )
    min_completion_seconds: float = Field(
        default=8.0,
        ge=0,
        description="A survey sent sooner than this after its page opened is flagged 'too fast' (for a "
        "questionnaire of min_completion_reference_items items; scaled by item count, at least 1 s).",
    )
    min_completion_reference_items: int = Field(default=30, ge=1)
    opening_hours: str = Field(
        default="07:00-17:30", description="Service points' opening hours (local time); responses outside are flagged."
    )
    opening_weekdays: list[int] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4], description="Open days, 0 = Monday .. 6 = Sunday."
    )

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        if self.environment != "development" and (
            self.secret_key == DEFAULT_SECRET or len(self.secret_key) < MIN_SECRET_LENGTH
        ):
            raise ValueError(
                f"SIPAS_SECRET_KEY must be set to a random value of at least {MIN_SECRET_LENGTH} characters in "
                f"{self.environment} (for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return self

    @model_validator(mode="after")
    def _production_is_strict(self) -> Settings:
        """Production refuses a guessable secret and a wildcard host list (each with the fix in the message)."""
        if self.environment != "production":
            return self
        weakness = secret_weakness(self.secret_key)
        if weakness:
            raise ValueError(
                f"SIPAS_SECRET_KEY is too predictable for production: {weakness}. Generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        if not self.allowed_hosts or any(host.strip() in ("*", "") for host in self.allowed_hosts):
            raise ValueError(
                "SIPAS_ALLOWED_HOSTS must name the platform's host names in production, for example "
                '\'["sipas.tayninh.gov.vn"]\' ("*" would answer requests for any Host)'
            )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone '{value}' (use an IANA name such as Asia/Ho_Chi_Minh)") from None
        return value

    def today(self) -> date:
        """Today's date where the offices are (wave periods and code expiry are such dates)."""
        return datetime.now(ZoneInfo(self.timezone)).date()

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def cookie_name(self, name: str) -> str:
        """``name``, with the ``__Host-`` prefix in production: the browser then accepts the cookie only over
        HTTPS, for the whole site (``Path=/``) and for this host alone (no ``Domain``), so a sibling subdomain
        cannot set or overwrite it."""
        return f"__Host-{name}" if self.is_production else name

    @property
    def public_url(self) -> str:
        """The base URL without a trailing slash."""
        return self.base_url.rstrip("/")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment once."""
    return Settings()
