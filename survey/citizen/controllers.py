"""Routes of the citizen journey: thin handlers, each one service call, then a page or a redirect."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from survey import codes
from survey.auth.sessions import STORE_NAME
from survey.citizen import services
from survey.citizen.forms import ParsedAnswers
from survey.citizen.pages import TEMPLATE, SurveyPages, survey_context
from survey.citizen.services import SurveyTarget
from survey.citizen.submission import Refused, check_submission, store_submission
from survey.compression import accepts_gzip
from survey.db.direct import DirectDb
from survey.integrity import citizen as integrity
from survey.settings import Settings
from survey.web import PreparedResponse, lang_cookies, page, request_locale

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]


class CitizenController(Controller):
    """Async handlers: the lookups run on the event loop (``survey.db.direct``), only a commit goes to a thread."""

    path = "/"
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def home(self, request: AnyRequest, code: FromQuery[str | None] = None) -> Template | Redirect:
        """A place to type a receipt code by hand, for people whose phone cannot scan."""
        if code:
            compact = codes.normalise(code)
            return Redirect(f"/r/{compact or quote(code.strip()[:40], safe='')}", status_code=303)
        return page(request, "citizen/home.html", settings=_settings(request))

    @get("/r/{code:str}")
    async def receipt_page(self, request: AnyRequest, code: FromPath[str]) -> PreparedResponse | Template:
        await integrity.public_rate_limit(request)
        db = await _db(request)
        return _survey_page(request, services.resolve_receipt(db, raw_code=code, today=_today(request)))

    @post("/r/{code:str}")
    async def receipt_submit(
        self, request: AnyRequest, code: FromPath[str], data: Form
    ) -> PreparedResponse | Template | Redirect:
        await integrity.public_rate_limit(request)
        db = await _db(request)
        try:
            target = services.resolve_receipt(db, raw_code=code, today=_today(request))
            return (await _survey_submit(request, db, target, data))[0]
        except services.CodeAlreadyUsed:
            # the same page sent again (the network went away before the answer came): the same thank-you
            settings = _settings(request)
            max_age_s = settings.form_token_max_age_hours * 3600
            if services.page_was_stored(
                db, raw_code=code, token=data.get("token"), secret=settings.secret_key, max_age_s=max_age_s
            ):
                return Redirect(f"/thanks?lang={request_locale(request, settings)}", status_code=303)
            raise

    @get("/c/{token:str}")
    async def counter_page(self, request: AnyRequest, token: FromPath[str]) -> PreparedResponse | Template:
        await integrity.public_rate_limit(request)
        db = await _db(request)
        response = _survey_page(request, services.resolve_counter(db, token=token, today=_today(request)))
        _keep_device_cookie(request, response)
        return response

    @post("/c/{token:str}")
    async def counter_submit(
        self, request: AnyRequest, token: FromPath[str], data: Form
    ) -> PreparedResponse | Template | Redirect:
        # One rating per device, counter and day: a second one is stored with the REPEAT_DEVICE flag (not refused).
        await integrity.public_rate_limit(request)
        db = await _db(request)
        marker = _device_marker(request, token)
        store = request.app.stores.get(STORE_NAME)
        repeat = marker is not None and await store.exists(marker)
        target = services.resolve_counter(db, token=token, today=_today(request))
        response, stored = await _survey_submit(request, db, target, data, repeat_device=repeat)
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


async def _db(request: AnyRequest) -> DirectDb:
    db: DirectDb = request.app.state.direct_db
    await db.ready()
    return db


def _today(request: AnyRequest) -> date:
    return _settings(request).today()


def _survey_page(
    request: AnyRequest,
    target: SurveyTarget,
    *,
    parsed: ParsedAnswers | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> PreparedResponse | Template:
    """The survey page: from the pre-rendered parts (``survey.citizen.pages``) when it is shown fresh,
    from the template when it comes back with errors or a notice."""
    settings = _settings(request)
    locale = request_locale(request, settings)
    if parsed is None and notice is None and status_code == 200:
        pages: SurveyPages = request.app.state.survey_pages
        body, headers = pages.fresh(target, locale, secret=settings.secret_key, gzip=accepts_gzip(request.scope))
        return PreparedResponse(body, headers, cookies=lang_cookies(request, locale))
    token = codes.sign_form_token(settings.secret_key, target.form_target)
    context = survey_context(spec=target.spec, where=target.where(locale), token=token, parsed=parsed, notice=notice)
    return page(request, TEMPLATE, settings=settings, locale=locale, status_code=status_code, context=context)


async def _survey_submit(
    request: AnyRequest,
    db: DirectDb,
    target: SurveyTarget,
    data: dict[str, Any],
    *,
    repeat_device: bool = False,
) -> tuple[PreparedResponse | Template | Redirect, bool]:
    """The page to answer with, and whether a new response was stored."""
    settings = _settings(request)
    locale = request_locale(request, settings)
    checked = check_submission(settings, target, data, repeat_device=repeat_device)
    if isinstance(checked, Refused):
        return _survey_page(request, target, parsed=checked.parsed, notice=checked.notice, status_code=400), False
    return Redirect(f"/thanks?lang={locale}", status_code=303), await store_submission(db, checked)


def _device_marker(request: AnyRequest, counter_token: str) -> str | None:
    """The store key for "this device rated this counter today", or None when the browser has no valid cookie."""
    settings = _settings(request)
    device = integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE))
    if device is None:
        return None
    return integrity.device_marker(settings.secret_key, device, counter_token, settings.today())


def _keep_device_cookie(request: AnyRequest, response: PreparedResponse | Template | Redirect) -> None:
    """Give the browser a signed random device id if it has none (or a forged one)."""
    settings = _settings(request)
    if integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE)) is None:
        response.cookies.append(integrity.device_cookie(integrity.new_device_cookie(settings.secret_key), settings))
