"""Sign-in (``/login``, ``/login/code``) and sign-out (``/logout``). Thin handlers.

A sign-in attempt is counted by ``survey.auth.throttle`` (back-off per device, address and username) and its
password checked in one of the hashing slots (``survey.auth.passwords``). An account with a second factor
(``survey.auth.second_factor``) gets a session only after the code: in between, the session holds the pending
sign-in for ``CODE_WAIT_S`` and nobody is signed in.
"""

from __future__ import annotations

import logging
import math
import time
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from litestar import Controller, Response, get, post
from litestar.response import Redirect, Template
from sqlalchemy import Engine

from survey.auth import second_factor
from survey.auth.guards import LOGIN_PATH, current_principal, safe_next
from survey.auth.pages import staff_page
from survey.auth.passwords import HashingBusy, HashingGate
from survey.auth.services import session_fingerprint
from survey.auth.sessions import ROTATE, begin_session, end_session
from survey.auth.throttle import (
    DEVICE_COOKIE,
    Attempt,
    LoginThrottle,
    device_cookie,
    device_id,
    new_device_cookie,
)
from survey.db.models import User, pk
from survey.i18n import N_
from survey.limits import clients
from survey.officer import services
from survey.officer.controllers import AnyRequest, Form, _settings
from survey.officer.forms import FormError, parse_login

log = logging.getLogger("sipas.auth")
R = TypeVar("R", bound=Response[Any])

CODE_PATH = "/login/code"
CODE_WAIT_S = 5 * 60  # a right password waits this long for its code
PENDING = "sipas_pending_sign_in"
WRONG_CREDENTIALS = N_("The username or the password is not right.")
WAIT_SECONDS = N_("Too many failed sign-in attempts. For your security, wait {seconds} seconds before you try again.")
WAIT_MINUTES = N_("Too many failed sign-in attempts. For your security, wait {minutes} min before you try again.")


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


def pending_sign_in(user: User, next_path: str) -> dict[str, Any]:
    """What the session holds between a right password and the code: nobody is signed in yet."""
    return {
        "uid": pk(user),
        "username": user.username,
        "fp": session_fingerprint(user.password_hash),
        "at": time.time(),
        "next": next_path,
    }


def pending_of(request: AnyRequest) -> dict[str, Any] | None:
    """The sign-in waiting for its code, if it is younger than ``CODE_WAIT_S``."""
    session = request.session if isinstance(request.scope.get("session"), dict) else {}
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("uid"), int):
        return None
    if not isinstance(pending.get("at"), int | float) or time.time() - pending["at"] > CODE_WAIT_S:
        return None
    return pending


def _code_page(request: AnyRequest, *, errors: list[FormError], status: int = 200) -> Template:
    return staff_page(request, "officer/login_code.html", me=None, status_code=status, context={"errors": errors})


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
            if user is not None and second_factor.enabled(user):
                request.set_session({PENDING: pending_sign_in(user, next_path), ROTATE: True})
                return keep_device_cookie(request, Redirect(CODE_PATH, status_code=303))
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

    @get(CODE_PATH)
    async def code_page(self, request: AnyRequest) -> Template | Redirect:
        if pending_of(request) is None:
            return Redirect(LOGIN_PATH, status_code=303)
        return _code_page(request, errors=[])

    @post(CODE_PATH)
    async def code(self, request: AnyRequest, data: Form) -> Template | Redirect:
        """The second step of an enrolled account's sign-in: the one-time code from its app."""
        pending = pending_of(request)
        if pending is None:
            return Redirect(LOGIN_PATH, status_code=303)
        code = "".join(ch for ch in str(data.get("code", ""))[:20] if ch.isdigit())
        if not code:
            return _code_page(request, errors=[FormError("code", N_("Enter the code your app shows."))], status=400)
        settings = _settings(request)
        throttle = LoginThrottle.from_settings(request.app.state.counters, settings)
        attempt = attempt_of(request, pending["username"])
        wait = await throttle.wait_for(attempt)
        if wait is None:
            engine: Engine = request.app.state.engine
            confirm = partial(
                services.confirm_second_factor,
                engine,
                user_id=pending["uid"],
                fingerprint=pending["fp"],
                code=code,
                key=settings.secret_key,
            )
            try:
                user = await anyio.to_thread.run_sync(confirm)
            except second_factor.WrongCode as exc:
                wait = await throttle.failed(attempt)
                if wait is None:
                    return _code_page(request, errors=[FormError("code", exc.message)], status=400)
            else:
                if user is None:  # switched off or given a new password meanwhile: start again
                    request.clear_session()
                    return Redirect(LOGIN_PATH, status_code=303)
                await throttle.succeeded(attempt)
                begin_session(request, user)
                log.info("sign-in with a second factor: %s from %s", user.username, attempt.address)
                return Redirect(safe_next(pending.get("next")), status_code=303)
        page = _code_page(request, errors=[wait_error("code", wait)], status=429)
        page.headers["Retry-After"] = str(wait)
        return page

    @post("/logout")
    async def logout(self, request: AnyRequest) -> Redirect:
        end_session(request)
        return Redirect("/login?signed_out=1", status_code=303)
