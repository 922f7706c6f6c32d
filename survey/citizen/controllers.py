"""Routes of the citizen journey: thin handlers, each one service call, then a page or a redirect."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey import codes
from survey.citizen import services
from survey.citizen.forms import FieldError, ParsedAnswers, field_name, parse_answers
from survey.citizen.services import AlreadyReceived, SurveyTarget
from survey.i18n import N_
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

    @get("/r/{code:str}", sync_to_thread=True)
    def receipt_page(self, request: AnyRequest, code: FromPath[str], db: Db) -> Template:
        return _survey_page(request, services.resolve_receipt(db, raw_code=code, today=_today(request)))

    @post("/r/{code:str}", sync_to_thread=True)
    def receipt_submit(self, request: AnyRequest, code: FromPath[str], data: Form, db: Db) -> Template | Redirect:
        return _survey_submit(
            request, db, lambda: services.resolve_receipt(db, raw_code=code, today=_today(request)), data
        )

    @get("/c/{token:str}", sync_to_thread=True)
    def counter_page(self, request: AnyRequest, token: FromPath[str], db: Db) -> Template:
        return _survey_page(request, services.resolve_counter(db, token=token, today=_today(request)))

    @post("/c/{token:str}", sync_to_thread=True)
    def counter_submit(self, request: AnyRequest, token: FromPath[str], data: Form, db: Db) -> Template | Redirect:
        return _survey_submit(
            request, db, lambda: services.resolve_counter(db, token=token, today=_today(request)), data
        )

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
    request: AnyRequest, db: Session, resolve: Callable[[], SurveyTarget], data: dict[str, Any]
) -> Template | Redirect:
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
        return _survey_page(
            request,
            target,
            parsed=stale,
            notice=N_("This page was open for a long time. Please check your answers and send them again."),
            status_code=400,
        )
    except codes.BadToken:
        tampered = FieldError(None, N_("This form could not be checked. Please send your answers again."))
        bad = ParsedAnswers(parsed.answers, parsed.comment, (tampered, *parsed.errors), parsed.kept)
        return _survey_page(request, target, parsed=bad, status_code=400)
    if not parsed.ok:
        return _survey_page(request, target, parsed=parsed, status_code=400)
    # AlreadyReceived: the same page sent twice; the first copy is stored, so thank them again.
    with contextlib.suppress(AlreadyReceived):
        services.submit(
            db,
            target=target,
            answers=parsed.answers,
            comment=parsed.comment,
            submission_key=token.submission_key,
            now=datetime.now(UTC),
            bucket_minutes=settings.time_bucket_minutes,
        )
    return Redirect(f"/thanks?lang={locale}", status_code=303)
