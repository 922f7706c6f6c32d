"""An optional second factor for administrators: time-based one-time codes (TOTP, RFC 6238) from an app.

- **Enrolment**: a fresh random secret is shown as a QR code (and as text) on the account page; it is stored
  only once the person types a code the app made from it. Turning it off asks for a current code too.
- **Sign-in**: an enrolled account's correct password leads to a second page asking for the code; the session
  begins only after it (see ``survey.officer.signin``). Wrong codes count in the sign-in back-off.
- **Each code works once**: the time step of the last accepted code is stored, and a code of that step or an
  earlier one is refused (a code seen over a shoulder cannot be replayed). The step before and after the
  current one are accepted, for clocks a little off.
- **The secret is stored encrypted**: XOR with a keystream of HMAC-SHA256 under the platform's secret key and a
  random nonce, so a copy of the database alone does not give the codes. Changing ``SIPAS_SECRET_KEY`` makes
  the stored secrets unreadable: the accounts then enrol again (``sipas user two-step-off``).

Recovery without the phone: another administrator cannot see the secret; ``sipas user two-step-off`` on the
server turns the second factor off for an account (audited).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

import pyotp
from sqlalchemy.orm import Session

from survey.db.audited import audit
from survey.db.models import User
from survey.errors import NotFoundError, SipasError
from survey.i18n import N_

ISSUER = "SIPAS"
STEP_S = 30
_ENTITY = "user"


class WrongCode(SipasError):
    def __init__(self) -> None:
        super().__init__(N_("The code is not right, or it has been used already. Type the code the app shows now."))


def new_secret() -> str:
    """A fresh 160-bit TOTP secret in base32, as authenticator apps take it."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, username: str) -> str:
    """The ``otpauth://`` address the QR code carries."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def _keystream(key: str, nonce: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hmac.new(key.encode(), b"totp-secret:" + nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        counter += 1
    return out[:length]


def seal(secret: str, key: str) -> str:
    """``secret`` encrypted under the platform's ``key``: ``<nonce hex>:<base64 ciphertext>``."""
    raw = base64.b32decode(secret)
    nonce = secrets.token_bytes(16)
    sealed = bytes(a ^ b for a, b in zip(raw, _keystream(key, nonce, len(raw)), strict=True))
    return f"{nonce.hex()}:{base64.b64encode(sealed).decode()}"


def unseal(stored: str, key: str) -> str | None:
    """The base32 secret in ``stored``, or None if it cannot be read."""
    try:
        nonce_hex, body = stored.split(":", 1)
        nonce, sealed = bytes.fromhex(nonce_hex), base64.b64decode(body, validate=True)
    except ValueError:
        return None
    raw = bytes(a ^ b for a, b in zip(sealed, _keystream(key, nonce, len(sealed)), strict=True))
    return base64.b32encode(raw).decode()


def matching_step(secret: str, code: str, *, after: int | None, now: float | None = None) -> int | None:
    """The time step (of the previous, current or next 30 s) whose code is ``code`` and is later than ``after``."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if now is None else now)
    for step in (current - 1, current, current + 1):
        if (after is None or step > after) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def enabled(user: User) -> bool:
    return user.totp_secret is not None


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise NotFoundError(N_("There is no such account."))
    return user


def check_code(session: Session, *, user_id: int, code: str, key: str, now: float | None = None) -> None:
    """Accept ``code`` for an enrolled account once (its step is stored), or raise :class:`WrongCode`."""
    user = _user(session, user_id)
    secret = unseal(user.totp_secret, key) if user.totp_secret else None
    step = matching_step(secret, code, after=user.totp_last_step, now=now) if secret else None
    if step is None:
        raise WrongCode()
    user.totp_last_step = step
    session.flush()


def enable(session: Session, *, user_id: int, secret: str, code: str, key: str, now: float | None = None) -> None:
    """Store ``secret`` for the account once ``code`` shows the app has it (audited, without the secret)."""
    user = _user(session, user_id)
    step = matching_step(secret, code, after=None, now=now)
    if step is None:
        raise WrongCode()
    user.totp_secret = seal(secret, key)
    user.totp_last_step = step
    session.flush()
    audit(
        session,
        actor=user.username,
        user_id=user.id,
        action="enable_two_step",
        entity=_ENTITY,
        entity_id=user.id,
        before={"two_step": False},
        after={"two_step": True},
    )


def disable(session: Session, *, user_id: int, actor: str, actor_id: int | None) -> None:
    """Forget the account's second factor (audited): after a checked code on the page, or from the command line."""
    user = _user(session, user_id)
    if user.totp_secret is None:
        return
    user.totp_secret = None
    user.totp_last_step = None
    session.flush()
    audit(
        session,
        actor=actor,
        user_id=actor_id,
        action="disable_two_step",
        entity=_ENTITY,
        entity_id=user.id,
        before={"two_step": True},
        after={"two_step": False},
    )
