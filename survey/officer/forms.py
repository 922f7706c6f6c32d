"""Staff form input: parse what was posted, and say what is wrong per field (message ids are English)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from survey.auth.passwords import MAX_LENGTH, policy_problems
from survey.auth.services import USERNAME_RE, USERNAME_RULE, normalise_username
from survey.db.models import Role
from survey.i18n import N_


@dataclass(frozen=True, slots=True)
class FormError:
    """One problem: ``field`` is the id of the input it is about (the summary links to it), or None."""

    field: str | None
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


def _text(data: dict[str, Any], name: str, *, strip: bool = True, limit: int = 400) -> str:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        return ""
    value = value[:limit]
    return value.strip() if strip else value


@dataclass(frozen=True, slots=True)
class LoginForm:
    username: str
    password: str
    next: str


def parse_login(data: dict[str, Any]) -> tuple[LoginForm, list[FormError]]:
    form = LoginForm(
        username=normalise_username(_text(data, "username", limit=200)),
        password=_text(data, "password", strip=False, limit=MAX_LENGTH * 4),
        next=_text(data, "next", limit=1000),
    )
    errors = []
    if not form.username:
        errors.append(FormError("username", N_("Enter your username.")))
    if not form.password:
        errors.append(FormError("password", N_("Enter your password.")))
    return form, errors


@dataclass(frozen=True, slots=True)
class NewUserForm:
    username: str
    role: str
    unit_id: int | None
    password: str
    confirm: str

    @property
    def kept(self) -> dict[str, Any]:
        """What is shown again when the form comes back with errors (never the passwords)."""
        return {"username": self.username, "role": self.role, "unit_id": self.unit_id}


def role_field(roles: tuple[Role, ...]) -> str:
    """The id of the first role radio button, where the summary links for the role question."""
    return f"role-{roles[0].value}" if roles else "role"


def parse_new_user(data: dict[str, Any], *, roles: tuple[Role, ...]) -> tuple[NewUserForm, list[FormError]]:
    unit_raw = _text(data, "unit_id", limit=20)
    form = NewUserForm(
        username=normalise_username(_text(data, "username", limit=200)),
        role=_text(data, "role", limit=20),
        unit_id=int(unit_raw) if unit_raw.isdigit() else None,
        password=_text(data, "password", strip=False, limit=MAX_LENGTH * 4),
        confirm=_text(data, "confirm", strip=False, limit=MAX_LENGTH * 4),
    )
    errors = []
    if not form.username:
        errors.append(FormError("username", N_("Enter a username.")))
    elif not USERNAME_RE.fullmatch(form.username):
        errors.append(FormError("username", USERNAME_RULE))
    if form.role not in {r.value for r in Role}:
        errors.append(FormError(role_field(roles), N_("Choose the role of the account.")))
    if form.unit_id is None:
        errors.append(FormError("unit_id", N_("Choose the unit of the account.")))
    if not form.password:
        errors.append(FormError("password", N_("Enter a password.")))
    else:
        errors.extend(
            FormError("password", p.message, p.params) for p in policy_problems(form.password, username=form.username)
        )
        if form.confirm != form.password:
            errors.append(FormError("confirm", N_("The two passwords are not the same.")))
    return form, errors
