"""Receipt codes, counter tokens and signed form tokens.

A receipt code is 15 random symbols of Crockford's base32 (75 bits) and one Luhn mod 32 check symbol,
written in four groups of four (``7KQ2-M9XD-4HTR-ZW3P``). The check symbol lets us tell a citizen
"this code was mistyped" apart from "this code does not exist". Only its SHA-256 is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1"})  # Crockford's reading of look-alikes
# Separators people type or paste between groups: hyphens and dashes, spaces of every kind, tabs.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212\u00a0\u202f]+")
BODY_LENGTH = 15
CODE_LENGTH = BODY_LENGTH + 1


def _luhn_check(body: str) -> str:
    """Luhn mod N check symbol (N = 32): catches every single-symbol error and most adjacent swaps."""
    factor = 2
    total = 0
    n = len(ALPHABET)
    for ch in reversed(body):
        addend = factor * _VALUE[ch]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_receipt_code() -> str:
    """A fresh, unguessable one-time code in its compact form (16 symbols, no separators)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH))
    return body + _luhn_check(body)


def derive_receipt_code(secret: str, material: str) -> str:
    """A receipt code computed from ``material`` under the platform's secret (HMAC-SHA256, 75 bits kept).

    The issuing API derives a selected transaction's code from its hashed reference, so asking again
    about the same transaction returns the same code without the code ever being stored.
    """
    digest = int.from_bytes(hmac.new(secret.encode(), f"code|{material}".encode(), hashlib.sha256).digest()[:10])
    body = "".join(ALPHABET[(digest >> (5 * i)) & 31] for i in range(BODY_LENGTH))
    return body + _luhn_check(body)


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` for one ``purpose`` (hex): what is stored of a transaction reference."""
    return hmac.new(secret.encode(), f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()


def keyed_uniform(secret: str, purpose: str, value: str) -> float:
    """A number in [0, 1) fixed by ``value`` and the secret, uniform over values: a repeatable coin."""
    return int(keyed_hash(secret, purpose, value)[:13], 16) / 16**13


def normalise(raw: str) -> str | None:
    """The compact form of a code as typed or scanned, or None when it cannot be a valid code."""
    compact = _SEPARATORS.sub("", raw)
    if not compact.isascii():
        return None
    compact = compact.upper().translate(_ALIASES)
    if len(compact) != CODE_LENGTH or any(ch not in _VALUE for ch in compact):
        return None
    if _luhn_check(compact[:BODY_LENGTH]) != compact[BODY_LENGTH]:
        return None
    return compact


def pretty(code: str) -> str:
    """``7KQ2M9XD4HTRZW3P`` -> ``7KQ2-M9XD-4HTR-ZW3P`` for printing."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def code_hash(code: str) -> str:
    """What the database keeps of a code (the compact form's SHA-256, hex)."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def new_counter_token() -> str:
    """The token a counter's QR poster carries (not secret: anyone at the counter sees it)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True, slots=True)
class FormToken:
    """What a signed survey-page token says: which survey page, when it was opened, and a nonce."""

    target: str
    issued_at: int
    nonce: str

    @property
    def submission_key(self) -> str:
        """Stored with the response so a re-sent page is kept once; random, so it identifies nobody."""
        return hashlib.sha256(self.nonce.encode("ascii")).hexdigest()


def sign_form_token(secret: str, target: str, *, now: float | None = None) -> str:
    """A token for one opening of a survey page; ``target`` says which page (e.g. ``r:<hash>``)."""
    issued = int(time.time() if now is None else now)
    nonce = secrets.token_urlsafe(16)
    payload = f"{issued}.{nonce}"
    mac = hmac.new(secret.encode(), f"{target}|{payload}".encode(), hashlib.sha256).digest()
    return payload + "." + base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


_MAC_RE = re.compile(r"[A-Za-z0-9_-]{24}")  # 18 bytes of HMAC in unpadded base64url
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{22}")  # token_urlsafe(16)


class BadToken(ValueError):
    """The token was not made by us for this page (tampered, or copied from another page)."""


class ExpiredToken(ValueError):
    """The token is ours but older than allowed."""


def verify_form_token(secret: str, target: str, token: str, *, max_age_s: int, now: float | None = None) -> FormToken:
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        raise BadToken("malformed token")
    issued_s, nonce, mac_b64 = parts
    if not _MAC_RE.fullmatch(mac_b64) or not _NONCE_RE.fullmatch(nonce):
        raise BadToken("malformed signature")
    expected = hmac.new(secret.encode(), f"{target}|{issued_s}.{nonce}".encode(), hashlib.sha256).digest()
    given = mac_b64 + "=" * (-len(mac_b64) % 4)
    try:
        given_bytes = base64.urlsafe_b64decode(given)
    except (ValueError, TypeError):
        raise BadToken("malformed signature") from None
    if not hmac.compare_digest(expected[:18], given_bytes):
        raise BadToken("signature does not match")
    issued = int(issued_s)
    current = time.time() if now is None else now
    if current - issued > max_age_s or issued - current > 300:
        raise ExpiredToken("token too old")
    return FormToken(target=target, issued_at=issued, nonce=nonce)
