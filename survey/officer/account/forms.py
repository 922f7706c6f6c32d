"""The account page's forms: what was posted, and what is wrong with it per field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from survey.auth.passwords import MAX_LENGTH, policy_problems
from survey.i18n import N_
from survey.officer.forms import FormError


def _secret(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value[: MAX_LENGTH * 4] if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class PasswordChange:
    current: str
    password: str
    confirm: str


def parse_password_change(data: dict[str, Any], *, username: str) -> tuple[PasswordChange, list[FormError]]:
    """The three passwords (never shown again), and every problem the form alone can tell."""
    form = PasswordChange(_secret(data, "current"), _secret(data, "password"), _secret(data, "confirm"))
    errors = []
    if not form.current:
        errors.append(FormError("current", N_("Enter your current password.")))
    if not form.password:
        errors.append(FormError("password", N_("Enter a new password.")))
    else:
        errors.extend(
            FormError("password", p.message, p.params) for p in policy_problems(form.password, username=username)
        )
        if form.confirm != form.password:
            errors.append(FormError("confirm", N_("The two passwords are not the same.")))
    return form, errors


def posted_refs(data: dict[str, Any]) -> set[str]:
    """The session references a form names (``session`` fields), each a short hex digest."""
    value = data.get("session")
    items = value if isinstance(value, list) else [value]
    return {v for v in items if isinstance(v, str) and 0 < len(v) <= 64 and all(c in "0123456789abcdef" for c in v)}
