"""Password hashing (Argon2id), bounded in concurrency, and the password policy.

Passwords are normalised to Unicode NFC before hashing, so the same Vietnamese password typed on
keyboards that compose diacritics differently still matches. Hashes use argon2-cffi's defaults
(RFC 9106 "low memory" profile: 64 MiB, 3 passes, 4 lanes); a hash made with older parameters is
replaced at the next successful sign-in (see ``survey.auth.services.authenticate``).

**Concurrency.** Each Argon2 computation holds 64 MiB, so forty sign-ins at once would hold 2.5 GiB. At most
``slots`` computations run at once in a process (``password_hash_concurrency``, 2 by default); the others wait
up to ``password_hash_wait_seconds`` and then get :class:`HashingBusy` (a 503 "try again"). Async callers wait
for a slot in :func:`hash_in_thread` without holding a worker thread; everything else (the ``sipas`` command,
sync handlers) waits on the same count inside the thread.

**Policy** (:func:`policy_problems`): 12 to 128 characters; not the username; not a password on the shipped
list of 19,640 common and breached passwords (``common-passwords.txt.gz``, see ``common-passwords.NOTICE``)
or a few Vietnamese favourites, not even with digits and symbols around it or letters swapped for look-alike
digits (``P@ssw0rd2026!``); not a season, month or weekday with a year around it (``Summer2026!!``); not the
platform's name; not a repeated block or a keyboard run.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import threading
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from survey.errors import ServiceUnavailableError, SipasError
from survey.i18n import N_

MIN_LENGTH = 12
MAX_LENGTH = 128
POLICY = N_(
    "A password needs at least {min} characters, must not contain the username and must not be a common password."
)
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parent / "common-passwords.txt.gz"

TOO_COMMON = N_("This password is too common or too easy to guess; choose another.")
CALENDAR = N_("A season, a month or a day with a year or a few symbols is easy to guess; choose another password.")
PLATFORM = N_("Do not build the password from the name of the platform.")
HAS_USERNAME = N_("Do not put the username in the password.")

# Vietnamese favourites (and the platform's own words) that the international list lacks, folded like any
# candidate: lower case, no diacritics, no spaces.
_LOCAL_COMMON = frozenset(
    {
        "matkhau",
        "matkhaumoi",
        "anhyeuem",
        "emyeuanh",
        "yeuem",
        "yeuanh",
        "vietnam",
        "hochiminh",
        "hanoi",
        "saigon",
        "danang",
        "tayninh",
        "quantri",
        "quantrivien",
        "canbo",
        "lanhdao",
        "xinchao",
        "changeme",
        "welcome",
        "administrator",
        "123456789abc",
        "1234567890qwe",
        "1q2w3e4r5t6y",
    }
)
_PLATFORM_WORDS = frozenset({"sipas", "sipasadmin", "khaosat", "hailong", "chisohailong", "motcua", "papi"})
_SEASONS = ("spring", "summer", "autumn", "fall", "winter", "xuan", "ha", "he", "thu", "dong", "tet")
_MONTHS = (
    *("january", "february", "march", "april", "may", "june", "july", "august", "september", "october"),
    *("november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"),
    *("thang", "thangmot", "thanghai", "thangba", "thangtu", "thangnam", "thangsau", "thangbay", "thangtam"),
    *("thangchin", "thangmuoi", "thanggieng", "thangchap", "thangnam", "namthang"),
)
_DAYS = (
    *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    *("chunhat", "thuhai", "thuba", "thutu", "thunam", "thusau", "thubay", "ngay", "ngaythang"),
)
_CALENDAR_WORDS = frozenset([*_SEASONS, *(f"mua{s}" for s in _SEASONS), *_MONTHS, *_DAYS])
_LOOKALIKES = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i"})
_SEPARATORS = str.maketrans("", "", " -_.")


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords (lower case) and the local favourites."""
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as fh:
        listed = {line.strip() for line in fh if line.strip()}
    return frozenset(listed | _LOCAL_COMMON)


def _fold(text: str) -> str:
    """Lower case without diacritics (``Mùa Đông`` -> ``mua dong``), for comparing with word lists."""
    decomposed = unicodedata.normalize("NFKD", text.casefold().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _core(text: str) -> str:
    """``text`` without the digits, symbols and spaces around its letters, nor separators inside."""
    start, end = 0, len(text)
    while start < end and not text[start].isalpha():
        start += 1
    while end > start and not text[end - 1].isalpha():
        end -= 1
    return text[start:end].translate(_SEPARATORS)


def _repeats_or_runs(text: str) -> bool:
    """A block said again (``abcabcabcabc``) or mostly a run of neighbouring characters (``123456789012``)."""
    n = len(text)
    if n == 0:
        return False
    if any(text == (text[:period] * (n // period + 1))[:n] for period in range(1, n // 2 + 1)):
        return True
    return sum(1 for a, b in itertools.pairwise(text) if abs(ord(b) - ord(a)) <= 1) > (n - 1) * 3 // 4


def _candidates(password: str) -> set[str]:
    """The forms of ``password`` compared with the word lists: whole, without what surrounds its letters, with
    look-alike digits read as letters, and its letters alone (``Tháng12năm2026`` -> ``thangnam``)."""
    folded = _fold(password)
    core = _core(folded)
    letters = "".join(ch for ch in folded if ch.isalpha())
    forms = (folded, folded.translate(_SEPARATORS), core, _core(core.translate(_LOOKALIKES)), letters)
    return {c for c in forms if c}


_hasher = PasswordHasher()
T = TypeVar("T")
DEFAULT_SLOTS = 2
DEFAULT_WAIT_S = 10.0


class HashingBusy(ServiceUnavailableError):
    """Every hashing slot stayed taken for the whole wait: many sign-ins at once (or an attack)."""

    def __init__(self) -> None:
        super().__init__(N_("Many people are signing in at this moment. Please wait a few seconds and try again."))


@dataclass(slots=True)
class _Slots:
    count: int
    wait_s: float
    semaphore: threading.BoundedSemaphore


_slots = _Slots(DEFAULT_SLOTS, DEFAULT_WAIT_S, threading.BoundedSemaphore(DEFAULT_SLOTS))


def configure_hashing(*, slots: int, wait_s: float) -> None:
    """How many Argon2 computations this process runs at once, and how long one waits for its turn."""
    global _slots
    if (slots, wait_s) != (_slots.count, _slots.wait_s):
        _slots = _Slots(slots, wait_s, threading.BoundedSemaphore(slots))


@contextlib.contextmanager
def _slot() -> Iterator[None]:
    taken = _slots
    if not taken.semaphore.acquire(timeout=taken.wait_s):
        raise HashingBusy()
    try:
        yield
    finally:
        taken.semaphore.release()


class HashingGate:
    """The async side of the bound: a request waits for a slot *before* it takes a worker thread.

    Without it, forty sign-ins at once would hold forty worker threads while they wait for the two slots,
    and every other page that runs in a thread would queue behind them.
    """

    def __init__(self, *, slots: int = DEFAULT_SLOTS, wait_s: float = DEFAULT_WAIT_S) -> None:
        self.slots = slots
        self.wait_s = wait_s
        self._limiter = anyio.CapacityLimiter(slots)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread once a slot is free; :class:`HashingBusy` after ``wait_s``."""
        acquired = False
        with anyio.move_on_after(self.wait_s):
            await self._limiter.acquire()
            acquired = True
        if not acquired:
            raise HashingBusy()
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        finally:
            self._limiter.release()

    @property
    def in_use(self) -> int:
        return int(self._limiter.borrowed_tokens)


def normalise(password: str) -> str:
    return unicodedata.normalize("NFC", password)


def hash_password(password: str) -> str:
    """An Argon2id hash of ``password`` (with a fresh salt), in one of the process's hashing slots."""
    candidate = normalise(password)
    with _slot():
        return _hasher.hash(candidate)


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

    A malformed stored hash fails like a wrong password (it is logged by the caller, not shown). The
    verification (and a rehash) runs in one of the process's hashing slots.
    """
    candidate = normalise(password)
    dummy = _dummy_hash() if stored_hash is None else None
    with _slot():
        if dummy is not None:
            with contextlib.suppress(VerificationError):
                _hasher.verify(dummy, candidate)
            return Verified(ok=False)
        assert stored_hash is not None
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
    """Every way ``password`` falls short of the policy (empty when it is acceptable); see the module docstring."""
    password = normalise(password)
    problems: list[PolicyProblem] = []
    if len(password) < MIN_LENGTH:
        problems.append(PolicyProblem(N_("Use at least {count} characters."), {"count": MIN_LENGTH}))
    if len(password) > MAX_LENGTH:
        problems.append(PolicyProblem(N_("Use at most {count} characters."), {"count": MAX_LENGTH}))
    folded = _fold(password)
    name = _fold(username.strip())
    if len(name) >= 3 and (name in folded or name in folded.translate(_SEPARATORS)):
        problems.append(PolicyProblem(HAS_USERNAME))
    candidates = _candidates(password)
    substantial = {c for c in candidates if len(c) >= 3}
    if substantial & _CALENDAR_WORDS:
        problems.append(PolicyProblem(CALENDAR))
    elif substantial & _PLATFORM_WORDS:
        problems.append(PolicyProblem(PLATFORM))
    elif (
        len(set(folded)) <= 2
        or substantial & common_passwords()
        or any(_doubled(c) in common_passwords() for c in substantial)
        or _repeats_or_runs(folded.translate(_SEPARATORS))
    ):
        problems.append(PolicyProblem(TOO_COMMON))
    return problems


def _doubled(text: str) -> str:
    """The half of ``text`` said twice (``dragondragon`` -> ``dragon``), or ``text`` itself."""
    half = len(text) // 2
    return text[:half] if len(text) % 2 == 0 and text[:half] == text[half:] else text


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
