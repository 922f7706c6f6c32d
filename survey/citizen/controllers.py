"""Routes of the citizen journey: thin handlers, each one service call, then a page or a redirect."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio.to_thread
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey import codes
from survey.auth.sessions import STORE_NAME
from survey.citizen import services
from survey.citizen.forms import HONEYPOT_FIELD, FieldError, ParsedAnswers, field_name, parse_answers
from survey.citizen.services import AlreadyReceived, SurveyTarget
from survey.i18n import N_
from survey.integrity import citizen as integrity
from survey.settings import Settings
from survey.web import page, request_locale

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Db = NamedDependency[Session]
AnyRequest = Request[Any, Any, Any]


class CitizenController(Controller):
    path = "/"
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def home(self, request: AnyRequest, code: FromQuery[str | None] = None) -> Template | Redirect:
        """A place to type a receipt code by hand, for people whose phone cannot scan."""
        if code:
            compact = codes.normalise(code)
            return Redirect(f"/r/{compact or quote(code.strip()[:40], safe='')}", status_code=303)
        return page(request, "citizen/home.html", settings=_settings(request))

    @get("/r/{code:str}", guards=[integrity.public_rate_limit], sync_to_thread=True)
    def receipt_page(self, request: AnyRequest, code: FromPath[str], db: Db) -> Template:
        return _survey_page(request, services.resolve_receipt(db, raw_code=code, today=_today(request)))

    @post("/r/{code:str}", guards=[integrity.public_rate_limit], sync_to_thread=True)
    def receipt_submit(self, request: AnyRequest, code: FromPath[str], data: Form, db: Db) -> Template | Redirect:
        try:
            return _survey_submit(
                request, db, lambda: services.resolve_receipt(db, raw_code=code, today=_today(request)), data
            )[0]
        except services.CodeAlreadyUsed:
            # the same page sent again (the network went away before the answer came): the same thank-you
            settings = _settings(request)
            max_age_s = settings.form_token_max_age_hours * 3600
            if services.page_was_stored(
                db, raw_code=code, token=data.get("token"), secret=settings.secret_key, max_age_s=max_age_s
            ):
                return Redirect(f"/thanks?lang={request_locale(request, settings)}", status_code=303)
            raise

    @get("/c/{token:str}", guards=[integrity.public_rate_limit], sync_to_thread=True)
    def counter_page(self, request: AnyRequest, token: FromPath[str], db: Db) -> Template:
        response = _survey_page(request, services.resolve_counter(db, token=token, today=_today(request)))
        _keep_device_cookie(request, response)
        return response

    @post("/c/{token:str}", guards=[integrity.public_rate_limit])
    async def counter_submit(
        self, request: AnyRequest, token: FromPath[str], data: Form, db: Db
    ) -> Template | Redirect:
        # One rating per device, counter and day: a second one is stored with the REPEAT_DEVICE flag (not refused).
        marker = _device_marker(request, token)
        store = request.app.stores.get(STORE_NAME)
        repeat = marker is not None and await store.exists(marker)
        response, stored = await anyio.to_thread.run_sync(
            lambda: _survey_submit(
                request,
                db,
                lambda: services.resolve_counter(db, token=token, today=_today(request)),
                data,
                repeat_device=repeat,
            )
        )
        if stored and marker is not None:
            await store.set(marker, b"1", expires_in=integrity.DEVICE_MARKER_TTL_S)
        if isinstance(response, Redirect):
            _keep_device_cookie(request, response)
        return response

    @get("/thanks", sync_to_thread=False)
    def thanks(self, request: AnyRequest) -> Template:
        return page(request, "citizen/thanks.html", settings=_settings(request))


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _today(request: AnyRequest) -> date:
    return _settings(request).today()


def _survey_page(
    request: AnyRequest,
    target: SurveyTarget,
    *,
    parsed: ParsedAnswers | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Template:
    settings = _settings(request)
    locale = request_locale(request, settings)
    errors = list(parsed.errors) if parsed else []
    return page(
        request,
        "citizen/survey.html",
        settings=settings,
        locale=locale,
        status_code=status_code,
        context={
            "target": target,
            "spec": target.spec,
            "token": codes.sign_form_token(settings.secret_key, target.form_target),
            "kept": parsed.kept if parsed else {},
            "errors": errors,
            "errors_by_field": {e.field: e for e in errors if e.field},
            "form_errors": [e for e in errors if e.field is None],
            "notice": notice,
            "field_name": field_name,
        },
    )


def _survey_submit(
    request: AnyRequest,
    db: Session,
    resolve: Callable[[], SurveyTarget],
    data: dict[str, Any],
    *,
    repeat_device: bool = False,
) -> tuple[Template | Redirect, bool]:
    """The page to answer with, and whether a new response was stored."""
    settings = _settings(request)
    locale = request_locale(request, settings)
    target = resolve()
    parsed = parse_answers(target.spec, data, comment_max_chars=settings.comment_max_chars)
    token_value = data.get("token")
    try:
        if not isinstance(token_value, str):
            raise codes.BadToken("missing")
        token = codes.verify_form_token(
            settings.secret_key,
            target.form_target,
            token_value,
            max_age_s=settings.form_token_max_age_hours * 3600,
        )
    except codes.ExpiredToken:
        # Keep what they chose and let them send it again with a fresh token.
        stale = ParsedAnswers(parsed.answers, parsed.comment, (), parsed.kept)
        notice = N_("This page was open for a long time. Please check your answers and send them again.")
        return _survey_page(request, target, parsed=stale, notice=notice, status_code=400), False
    except codes.BadToken:
        tampered = FieldError(None, N_("This form could not be checked. Please send your answers again."))
        bad = ParsedAnswers(parsed.answers, parsed.comment, (tampered, *parsed.errors), parsed.kept)
        return _survey_page(request, target, parsed=bad, status_code=400), False
    if not parsed.ok:
        return _survey_page(request, target, parsed=parsed, status_code=400), False
    # Suspect answers are stored with a flag, never refused: see survey/integrity/flags.py.
    honeypot = data.get(HONEYPOT_FIELD)
    flags = integrity.submission_flags(
        honeypot=honeypot if isinstance(honeypot, str) else " ".join(map(str, honeypot or [])),
        elapsed_s=time.time() - token.issued_at,
        needed_s=integrity.min_seconds(target.spec, settings),
        repeat_device=repeat_device,
    )
    # AlreadyReceived: the same page sent twice; the first copy is stored, so thank them again.
    stored = False
    with contextlib.suppress(AlreadyReceived):
        services.submit(
            db,
            target=target,
            answers=parsed.answers,
            comment=parsed.comment,
            submission_key=token.submission_key,
            now=datetime.now(UTC),
            bucket_minutes=settings.time_bucket_minutes,
            flags=flags,
        )
        stored = True
    return Redirect(f"/thanks?lang={locale}", status_code=303), stored


def _device_marker(request: AnyRequest, counter_token: str) -> str | None:
    """The store key for "this device rated this counter today", or None when the browser has no valid cookie."""
    settings = _settings(request)
    device = integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE))
    if device is None:
        return None
    return integrity.device_marker(settings.secret_key, device, counter_token, settings.today())


def _keep_device_cookie(request: AnyRequest, response: Template | Redirect) -> None:
    """Give the browser a signed random device id if it has none (or a forged one)."""
    settings = _settings(request)
    if integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE)) is None:
        response.cookies.append(integrity.device_cookie(integrity.new_device_cookie(settings.secret_key), settings))
