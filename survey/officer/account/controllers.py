"""The account page (``/staff/account``): one's sessions, ending them, changing one's password (every role);
administrators also turn the second factor (``survey.auth.second_factor``) on and off.

Changing the password asks for the current one (its failures count in the sign-in back-off, so a borrowed
session cannot be used to guess it), ends every other session of the account and renews this one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect, Template
from litestar.stores.base import Store
from sqlalchemy import Engine

from survey.auth import second_factor
from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.passwords import MIN_LENGTH, POLICY, HashingBusy, HashingGate, WeakPassword
from survey.auth.second_factor import WrongCode
from survey.auth.services import Principal, WrongPassword
from survey.auth.session_index import end_sessions, list_sessions
from survey.auth.sessions import STORE_NAME, begin_session, current_session_id
from survey.auth.throttle import LoginThrottle
from survey.db.models import Role
from survey.i18n import N_
from survey.officer.account import services
from survey.officer.account.forms import PasswordChange, parse_password_change, posted_refs
from survey.officer.forms import FormError
from survey.officer.qr.services import inline_svg
from survey.officer.signin.controllers import attempt_of, wait_error
from survey.settings import Settings

log = logging.getLogger("sipas.auth")

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]

ENROL = "sipas_totp_enrol"  # the session entry holding a secret being enrolled, until its first code
NOTICES = {
    "password": N_("Your password has been changed. Every other session of your account has ended."),
    "two-step-on": N_("Two-step sign-in is on: from now on, signing in asks for a code from your app."),
    "two-step-off": N_("Two-step sign-in is off."),
    "ended": N_("The session has ended: that browser has to sign in again."),
    "others": N_("Every other session of your account has ended."),
}


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _store(request: AnyRequest) -> Store:
    return request.app.stores.get(STORE_NAME)


def _stamp(seconds: float, settings: Settings) -> datetime:
    return datetime.fromtimestamp(seconds, ZoneInfo(settings.timezone))


class AccountController(Controller):
    path = "/staff/account"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/")
    async def index(self, request: AnyRequest, me: Me) -> Template:
        settings = _settings(request)
        sessions = await list_sessions(
            _store(request),
            me.id,
            current_id=current_session_id(request),
            max_age_s=settings.session_max_age_minutes * 60,
            idle_s=settings.session_idle_minutes * 60,
        )
        notice = NOTICES.get(request.query_params.get("done", ""))
        engine: Engine = request.app.state.engine
        two_step = me.role == Role.admin and await anyio.to_thread.run_sync(
            partial(services.second_factor_enabled, engine, user_id=me.id)
        )
        return staff_page(
            request,
            "officer/account/index.html",
            me=me,
            context={
                "sessions": sessions,
                "stamp": lambda seconds: _stamp(seconds, settings),
                "notice": notice,
                "two_step": two_step,
                "idle_minutes": settings.session_idle_minutes,
                "max_hours": settings.session_max_age_minutes / 60,
            },
        )

    @post("/sessions/end")
    async def end_one(self, request: AnyRequest, me: Me, data: Form) -> Redirect:
        """End the sessions the form names (never this one: signing out does that)."""
        ended = await end_sessions(
            _store(request),
            me.id,
            keep=current_session_id(request),
            refs=posted_refs(data),
            max_age_s=_settings(request).session_max_age_minutes * 60,
        )
        log.info("%s ended %d of their sessions", me.username, ended)
        return Redirect("/staff/account?done=ended", status_code=303)

    @post("/sessions/end-others")
    async def end_others(self, request: AnyRequest, me: Me) -> Redirect:
        """Sign out everywhere else: every session of the account but this one ends."""
        ended = await end_sessions(
            _store(request),
            me.id,
            keep=current_session_id(request),
            max_age_s=_settings(request).session_max_age_minutes * 60,
        )
        log.info("%s signed out everywhere else (%d sessions)", me.username, ended)
        return Redirect("/staff/account?done=others", status_code=303)

    @get("/two-step", guards=[role_required(Role.admin)])
    async def two_step(self, request: AnyRequest, me: Me) -> Template:
        """Administrators: turn the second factor on (a QR code and a confirmation code) or off."""
        return await _two_step_page(request, me, errors=[])

    @post("/two-step", guards=[role_required(Role.admin)])
    async def enrol(self, request: AnyRequest, me: Me, data: Form) -> Template | Redirect:
        secret = request.session.get(ENROL) if isinstance(request.scope.get("session"), dict) else None
        if not isinstance(secret, str):  # no secret shown to this session yet: show one, and ask again
            return await _two_step_page(request, me, errors=[FormError("code", WrongCode().message)], status_code=400)
        settings = _settings(request)
        engine: Engine = request.app.state.engine
        enable = partial(
            services.enable_second_factor,
            engine,
            user_id=me.id,
            secret=secret,
            code=_code(data),
            key=settings.secret_key,
        )
        try:
            await anyio.to_thread.run_sync(enable)
        except WrongCode as exc:
            return await _two_step_page(request, me, errors=[FormError("code", exc.message)], status_code=400)
        request.session.pop(ENROL, None)
        log.info("%s turned two-step sign-in on", me.username)
        return Redirect("/staff/account?done=two-step-on", status_code=303)

    @post("/two-step/off", guards=[role_required(Role.admin)])
    async def turn_off(self, request: AnyRequest, me: Me, data: Form) -> Template | Redirect:
        settings = _settings(request)
        throttle = LoginThrottle.from_settings(request.app.state.counters, settings)
        attempt = attempt_of(request, me.username)
        wait = await throttle.wait_for(attempt)
        if wait is not None:
            return await _two_step_page(request, me, errors=[wait_error("code", wait)], status_code=429)
        engine: Engine = request.app.state.engine
        disable = partial(
            services.disable_second_factor,
            engine,
            user_id=me.id,
            code=_code(data),
            key=settings.secret_key,
            actor=me.username,
        )
        try:
            await anyio.to_thread.run_sync(disable)
        except WrongCode as exc:
            wait = await throttle.failed(attempt)
            problem = wait_error("code", wait) if wait else FormError("code", exc.message)
            return await _two_step_page(request, me, errors=[problem], status_code=429 if wait else 400)
        log.info("%s turned two-step sign-in off", me.username)
        return Redirect("/staff/account?done=two-step-off", status_code=303)

    @get("/password")
    async def password_form(self, request: AnyRequest, me: Me) -> Template:
        return _password_page(request, me, errors=[])

    @post("/password")
    async def change_password(self, request: AnyRequest, me: Me, data: Form) -> Template | Redirect:
        form, errors = parse_password_change(data, username=me.username)
        if errors:
            return _password_page(request, me, errors=errors, status_code=400)
        settings = _settings(request)
        throttle = LoginThrottle.from_settings(request.app.state.counters, settings)
        attempt = attempt_of(request, me.username)
        wait = await throttle.wait_for(attempt)
        if wait is not None:
            return _password_page(request, me, errors=[wait_error("current", wait)], status_code=429)
        try:
            user = await _change(request, me, form)
        except WrongPassword as exc:
            wait = await throttle.failed(attempt)
            problem = wait_error("current", wait) if wait else FormError("current", exc.message)
            return _password_page(request, me, errors=[problem], status_code=429 if wait else 400)
        except WeakPassword as exc:
            problems = [FormError("password", p.message, p.params) for p in exc.problems]
            return _password_page(request, me, errors=problems, status_code=400)
        except HashingBusy as exc:
            return _password_page(request, me, errors=[FormError("current", exc.message)], status_code=503)
        await throttle.succeeded(attempt)
        await end_sessions(
            _store(request), me.id, keep=current_session_id(request), max_age_s=settings.session_max_age_minutes * 60
        )
        begin_session(request, user)  # this browser stays signed in, under a new id and the new fingerprint
        log.info("%s changed their password", me.username)
        return Redirect("/staff/account?done=password", status_code=303)


def _code(data: dict[str, Any]) -> str:
    value = data.get("code")
    return "".join(ch for ch in value[:20] if ch.isdigit()) if isinstance(value, str) else ""


async def _two_step_page(
    request: AnyRequest, me: Principal, *, errors: list[FormError], status_code: int = 200
) -> Template:
    """On: a form to turn it off. Off: a secret being enrolled (kept in the session), its QR code and a form."""
    engine: Engine = request.app.state.engine
    enabled = await anyio.to_thread.run_sync(partial(services.second_factor_enabled, engine, user_id=me.id))
    context: dict[str, Any] = {"enabled": enabled, "errors": errors, "qr": None, "secret": None}
    if not enabled:
        secret = request.session.get(ENROL) if isinstance(request.scope.get("session"), dict) else None
        if not isinstance(secret, str):
            secret = second_factor.new_secret()
            request.session[ENROL] = secret
        context["secret"] = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        context["qr"] = inline_svg(second_factor.provisioning_uri(secret, me.username), label="SIPAS")
    return staff_page(request, "officer/account/two_step.html", me=me, status_code=status_code, context=context)


async def _change(request: AnyRequest, me: Principal, form: PasswordChange) -> Any:
    engine: Engine = request.app.state.engine
    gate: HashingGate = request.app.state.hashing
    return await gate.run(
        partial(services.change_own_password, engine, user_id=me.id, current=form.current, new=form.password)
    )


def _password_page(request: AnyRequest, me: Principal, *, errors: list[FormError], status_code: int = 200) -> Template:
    return staff_page(
        request,
        "officer/account/password.html",
        me=me,
        status_code=status_code,
        context={"errors": errors, "policy": POLICY, "min_length": MIN_LENGTH},
    )
