"""Password hashing (Argon2id) and the minimum password policy.

Passwords are normalised to Unicode NFC before hashing, so the same Vietnamese password typed on
keyboards that compose diacritics differently still matches. Hashes use argon2-cffi's defaults
(RFC 9106 "low memory" profile: 64 MiB, 3 passes, 4 lanes); a hash made with older parameters is
replaced at the next successful sign-in (see ``survey.auth.services.authenticate``).
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from survey.errors import SipasError
from survey.i18n import N_

MIN_LENGTH = 12
MAX_LENGTH = 128
POLICY = N_(
    "A password needs at least {min} characters, must not contain the username and must not be a common password."
)

# The most common passwords (and Vietnamese favourites) that reach 12 characters; the policy's length rule
# already refuses the shorter ones.
_COMMON = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789abc",
        "1234567890qwe",
        "abc123456789",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwerty123456",
        "1q2w3e4r5t6y",
        "password1234",
        "password12345",
        "passwordpassword",
        "matkhau12345",
        "matkhau123456",
        "matkhaumoi123",
        "anhyeuem1234",
        "anhyeuem123456",
        "iloveyou1234",
        "admin1234567",
        "administrator",
        "administrator1",
        "changeme1234",
        "welcome12345",
        "sipas1234567",
        "sipasadmin123",
        "tayninh12345",
        "vietnam12345",
        "vietnam123456",
        "hochiminh1234",
    }
)

_hasher = PasswordHasher()


def normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (with a fresh salt)."""
    return _hasher.hash(normalise(password))


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not a real password: used to spend the same time on unknown users")


@dataclass(frozen=True, slots=True)
class Verified:
    """Whether the password matched, and a replacement hash when the stored one uses old parameters."""

    ok: bool
    new_hash: str | None = None


def verify_password(stored_hash: str | None, password: str) -> Verified:
    """Check ``password`` against ``stored_hash``; with no hash, spend the same time and fail.

    A malformed stored hash fails like a wrong password (it is logged by the caller, not shown).
    """
    candidate = normalise(password)
    if stored_hash is None:
        with contextlib.suppress(VerificationError):
            _hasher.verify(_dummy_hash(), candidate)
        return Verified(ok=False)
    try:
        _hasher.verify(stored_hash, candidate)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return Verified(ok=False)
    if _hasher.check_needs_rehash(stored_hash):
        return Verified(ok=True, new_hash=_hasher.hash(candidate))
    return Verified(ok=True)


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """One reason a password is refused: an English message id and its parameters."""

    message: str
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, gettext: Callable[..., str] | None = None) -> str:
        return gettext(self.message, **self.params) if gettext else self.message.format(**self.params)


def policy_problems(password: str, *, username: str = "") -> list[PolicyProblem]:
    """Every way ``password`` falls short of the minimum policy (empty when it is acceptable)."""
    password = normalise(password)
    problems: list[PolicyProblem] = []
    if len(password) < MIN_LENGTH:
        problems.append(PolicyProblem(N_("Use at least {count} characters."), {"count": MIN_LENGTH}))
    if len(password) > MAX_LENGTH:
        problems.append(PolicyProblem(N_("Use at most {count} characters."), {"count": MAX_LENGTH}))
    lowered = password.casefold()
    name = username.strip().casefold()
    if len(name) >= 3 and name in lowered:
        problems.append(PolicyProblem(N_("Do not put the username in the password.")))
    if lowered in _COMMON or len(set(lowered)) <= 2:
        problems.append(PolicyProblem(N_("This password is too common or too easy to guess; choose another.")))
    return problems


class WeakPassword(SipasError):
    """A password the policy refuses; ``problems`` says every reason."""

    status_code = 400

    def __init__(self, problems: list[PolicyProblem]) -> None:
        super().__init__(" ".join(p.text() for p in problems))
        self.problems = problems


def check_policy(password: str, *, username: str = "") -> None:
    """Raise :class:`WeakPassword` when ``password`` falls short of the policy."""
    problems = policy_problems(password, username=username)
    if problems:
        raise WeakPassword(problems)
