"""Staff pages: sign-in and sign-out, the staff home, accounts and the audit log. Thin handlers.

Every route under ``/staff`` is guarded by ``staff_required`` (anonymous visitors are sent to
``/login?next=...``); the expected outcome of each route for each role is declared in
``tests/survey/test_access_matrix.py``, which fails for a route it does not know.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.auth.guards import current_principal, principal_of, role_required, safe_next, staff_required
from survey.auth.pages import staff_page
from survey.auth.passwords import MIN_LENGTH, POLICY, HashingBusy, HashingGate, WeakPassword
from survey.auth.services import USERNAME_RE, Principal, UsernameTaken
from survey.auth.sessions import begin_session, end_session
from survey.auth.throttle import (
    DEVICE_COOKIE,
    Attempt,
    LoginThrottle,
    device_cookie,
    device_id,
    new_device_cookie,
)
from survey.db.models import Role
from survey.i18n import N_
from survey.limits import clients
from survey.officer import services
from survey.officer.forms import FormError, NewUserForm, parse_login, parse_new_user, role_field
from survey.settings import Settings

log = logging.getLogger("sipas.auth")

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]
R = TypeVar("R", bound=Response[Any])

WRONG_CREDENTIALS = N_("The username or the password is not right.")
WAIT_SECONDS = N_("Too many failed sign-in attempts. For your security, wait {seconds} seconds before you try again.")
WAIT_MINUTES = N_("Too many failed sign-in attempts. For your security, wait {minutes} min before you try again.")


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def wait_error(field: str, seconds: int) -> FormError:
    """The error saying how long to wait before the next attempt (in minutes from two minutes on)."""
    if seconds < 120:
        return FormError(field, WAIT_SECONDS, {"seconds": seconds})
    return FormError(field, WAIT_MINUTES, {"minutes": math.ceil(seconds / 60)})


def attempt_of(request: AnyRequest, username: str) -> Attempt:
    """A sign-in (or password) attempt: the name, the client address as counted, the signed device, if any."""
    settings = _settings(request)
    return Attempt(
        username=username,
        address=clients.scope_address(request.scope, tuple(settings.trusted_proxies)),
        device=device_id(settings.secret_key, request.cookies.get(settings.cookie_name(DEVICE_COOKIE))),
    )


def keep_device_cookie(request: AnyRequest, response: R) -> R:
    """Give the browser a signed staff device cookie if it has no valid one (see ``survey.auth.throttle``)."""
    settings = _settings(request)
    if device_id(settings.secret_key, request.cookies.get(settings.cookie_name(DEVICE_COOKIE))) is None:
        response.set_cookie(device_cookie(settings, new_device_cookie(settings.secret_key)))
    return response


def _login_page(
    request: AnyRequest,
    *,
    next_path: str,
    username: str = "",
    errors: list[FormError] | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    page = staff_page(
        request,
        "officer/login.html",
        me=None,
        status_code=status_code,
        context={"next_path": next_path, "username": username, "errors": errors or [], "notice": notice},
    )
    keep_device_cookie(request, page)
    return page


class AuthController(Controller):
    path = "/"
    include_in_schema = False

    @get("/login")
    async def login_page(self, request: AnyRequest) -> Template | Redirect:
        next_path = safe_next(request.query_params.get("next"))
        if await current_principal(request) is not None:
            return Redirect(next_path, status_code=303)
        notice = N_("You have signed out.") if request.query_params.get("signed_out") else None
        return _login_page(request, next_path=next_path, notice=notice)

    @post("/login")
    async def login(self, request: AnyRequest, data: Form) -> Template | Redirect:
        form, errors = parse_login(data)
        next_path = safe_next(form.next)
        if errors:
            return _login_page(request, next_path=next_path, username=form.username, errors=errors, status_code=400)
        throttle = LoginThrottle.from_settings(request.app.state.counters, _settings(request))
        attempt = attempt_of(request, form.username)
        wait = await throttle.wait_for(attempt)
        if wait is None:
            engine: Engine = request.app.state.engine
            gate: HashingGate = request.app.state.hashing
            try:
                user = await gate.run(partial(services.sign_in, engine, username=form.username, password=form.password))
            except HashingBusy as exc:
                busy = FormError("username", exc.message)
                return _login_page(request, next_path=next_path, username=form.username, errors=[busy], status_code=503)
            if user is not None:
                await throttle.succeeded(attempt)
                begin_session(request, user)
                log.info("sign-in: %s from %s", user.username, attempt.address)
                return keep_device_cookie(request, Redirect(next_path, status_code=303))
            log.warning("failed sign-in for %r from %s", form.username, attempt.address)
            wait = await throttle.failed(attempt)
            if wait is None:
                problem = FormError("username", WRONG_CREDENTIALS)
                return _login_page(
                    request, next_path=next_path, username=form.username, errors=[problem], status_code=400
                )
        page = _login_page(
            request, next_path=next_path, username=form.username, errors=[wait_error("username", wait)], status_code=429
        )
        page.headers["Retry-After"] = str(wait)
        return page

    @post("/logout")
    async def logout(self, request: AnyRequest) -> Redirect:
        end_session(request)
        return Redirect("/login?signed_out=1", status_code=303)


class StaffController(Controller):
    path = "/staff"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=False)
    def home(self, request: AnyRequest, me: Me) -> Template:
        return staff_page(
            request,
            "officer/home.html",
            me=me,
            context={"role_hint": services.ROLE_HINTS[me.role.value], "manages": bool(services.creatable_roles(me))},
        )

    @get("/audit", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def audit(self, request: AnyRequest, me: Me, db: Db, page: FromQuery[int] = 1) -> Template:
        result = services.audit_page(db, viewer=me, page=page)
        return staff_page(request, "officer/audit.html", me=me, context={"log": result})


class UsersController(Controller):
    path = "/staff/users"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        notice, params = None, {}
        for key, message in (
            ("created", N_("The account {username} has been created.")),
            ("deactivated", N_("The account {username} has been deactivated.")),
        ):
            name = request.query_params.get(key)
            if name and USERNAME_RE.fullmatch(name):
                notice, params = message, {"username": name}
        users = services.list_users(db, viewer=me)
        return staff_page(
            request, "officer/users.html", me=me, context={"users": users, "notice": notice, "notice_params": params}
        )

    @get("/new", sync_to_thread=True)
    def new(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return self._form(request, me, db, form=None, errors=[])

    @post("/new", sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        roles = services.creatable_roles(me)
        form, errors = parse_new_user(data, roles=roles)
        if not errors and form.unit_id is not None:
            try:
                user = services.create_account(
                    db, viewer=me, username=form.username, role=form.role, unit_id=form.unit_id, password=form.password
                )
            except UsernameTaken as exc:
                errors = [FormError("username", exc.message)]
            except WeakPassword as exc:
                errors = [FormError("password", p.message, p.params) for p in exc.problems]
            else:
                return Redirect(f"/staff/users?created={quote(user.username)}", status_code=303)
        return self._form(request, me, db, form=form, errors=errors, status_code=400)

    @post("/{user_id:int}/deactivate", sync_to_thread=True)
    def deactivate(self, me: Me, db: Db, user_id: FromPath[int]) -> Redirect:
        user = services.deactivate_account(db, viewer=me, user_id=user_id)
        return Redirect(f"/staff/users?deactivated={quote(user.username)}", status_code=303)

    @staticmethod
    def _form(
        request: AnyRequest,
        me: Principal,
        db: Session,
        *,
        form: NewUserForm | None,
        errors: list[FormError],
        status_code: int = 200,
    ) -> Template:
        roles = services.creatable_roles(me)
        return staff_page(
            request,
            "officer/user_new.html",
            me=me,
            status_code=status_code,
            context={
                "roles": roles,
                "role_hints": services.ROLE_HINTS,
                "role_field": role_field(roles),
                "units": services.unit_choices(db, viewer=me),
                "kept": form.kept if form else {"username": "", "role": roles[0].value if len(roles) == 1 else ""},
                "errors": errors,
                "policy": POLICY,
                "min_length": MIN_LENGTH,
            },
        )
