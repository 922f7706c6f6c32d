"""Routes of the citizen journey: thin handlers, each one service call, then a page or a redirect."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from litestar.template import TemplateEngineProtocol

from survey.citizen import services
from survey.citizen.forms import ParsedAnswers
from survey.citizen.pages import TEMPLATE, SurveyPages, gzip_whole, survey_context
from survey.citizen.services import SurveyTarget
from survey.citizen.submission import Refused, check_submission, store_submission
from survey.db.bounded import BoundedDb
from survey.integrity import citizen as integrity
from survey.limits import Counters
from survey.receipts import codes
from survey.settings import Settings
from survey.web import (
    PRECOMPRESSED,
    accepts_gzip,
    lang_cookies,
    new_nonce,
    page,
    page_context,
    request_locale,
    security_headers,
)

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]


class CitizenController(Controller):
    """Async handlers: the rate limit is counted on the event loop; every query runs in a worker thread
    (``survey.db.bounded``), so a stalled database delays only the survey pages, and only up to a deadline."""

    path = "/"
    include_in_schema = False

    @get("/", sync_to_thread=False)
    def home(self, request: AnyRequest, code: FromQuery[str | None] = None) -> Template | Redirect:
        """A place to type a receipt code by hand, for people whose phone cannot scan."""
        if code:
            compact = codes.normalise(code)
            return Redirect(f"/r/{compact or quote(code.strip()[:40], safe='')}", status_code=303)
        return page(request, "citizen/home.html", settings=_settings(request))

    @get("/r/{code:str}", opt=PRECOMPRESSED)
    async def receipt_page(self, request: AnyRequest, code: FromPath[str]) -> Response[bytes]:
        await integrity.public_rate_limit(request)
        target = await _db(request).read(services.resolve_receipt, code, _today(request))
        return _survey_page(request, target)

    @post("/r/{code:str}", opt=PRECOMPRESSED)
    async def receipt_submit(self, request: AnyRequest, code: FromPath[str], data: Form) -> Response[bytes] | Redirect:
        await integrity.public_rate_limit(request)
        db = _db(request)
        try:
            target = await db.read(services.resolve_receipt, code, _today(request))
            return (await _survey_submit(request, db, target, data))[0]
        except services.CodeAlreadyUsed:
            # the same page sent again (the network went away before the answer came): the same thank-you
            settings = _settings(request)
            max_age_s = settings.form_token_max_age_hours * 3600
            if await db.read(services.page_was_stored, code, data.get("token"), settings.secret_key, max_age_s):
                return Redirect(f"/thanks?lang={request_locale(request, settings)}", status_code=303)
            raise

    @get("/c/{token:str}", opt=PRECOMPRESSED)
    async def counter_page(self, request: AnyRequest, token: FromPath[str]) -> Response[bytes]:
        await integrity.public_rate_limit(request)
        target = await _db(request).read(services.resolve_counter, token, _today(request))
        response = _survey_page(request, target)
        _keep_device_cookie(request, response)
        return response

    @post("/c/{token:str}", opt=PRECOMPRESSED)
    async def counter_submit(self, request: AnyRequest, token: FromPath[str], data: Form) -> Response[bytes] | Redirect:
        # One rating per device, counter and day: a second one is stored with the REPEAT_DEVICE flag (not refused).
        await integrity.public_rate_limit(request)
        db = _db(request)
        counters: Counters = request.app.state.counters
        marker = _device_marker(request, token)
        repeat = marker is not None and await counters.peek(marker) is not None
        target = await db.read(services.resolve_counter, token, _today(request))
        response, stored = await _survey_submit(request, db, target, data, repeat_device=repeat)
        if stored and marker is not None:
            await counters.hit(marker, window_s=integrity.DEVICE_MARKER_TTL_S)
        if isinstance(response, Redirect):
            _keep_device_cookie(request, response)
        return response

    @get("/thanks", sync_to_thread=False)
    def thanks(self, request: AnyRequest) -> Template:
        return page(request, "citizen/thanks.html", settings=_settings(request))


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _db(request: AnyRequest) -> BoundedDb:
    db: BoundedDb = request.app.state.citizen_db
    return db


def _template_engine(request: AnyRequest) -> TemplateEngineProtocol[Any, Any]:
    engine = request.app.template_engine
    assert engine is not None, "the app is made with its templates (survey.app.create_app)"
    return engine


def _today(request: AnyRequest) -> date:
    return _settings(request).today()


def _survey_page(
    request: AnyRequest,
    target: SurveyTarget,
    *,
    parsed: ParsedAnswers | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response[bytes]:
    """The survey page, gzip-encoded when the browser takes it: a fresh one from the pre-rendered parts
    (``survey.citizen.pages``), one that comes back with errors or a notice from the template."""
    settings = _settings(request)
    locale = request_locale(request, settings)
    token = codes.sign_form_token(settings.secret_key, target.form_target)
    gzip = accepts_gzip(request)
    if parsed is None and notice is None and status_code == 200:
        pages: SurveyPages = request.app.state.survey_pages
        survey = pages.get(target.version_id, target.version_hash, target.spec, locale)
        body, headers = survey.body(target.where(locale), token, gzip=gzip), survey.headers()
    else:
        nonce = new_nonce()
        context = {
            **page_context(locale, nonce),
            "request_path": request.url.path,
            **survey_context(spec=target.spec, where=target.where(locale), token=token, parsed=parsed, notice=notice),
        }
        html = _template_engine(request).get_template(TEMPLATE).render(**context).encode()
        body, headers = (gzip_whole(html) if gzip else html), security_headers(nonce)
    if gzip:
        headers["Content-Encoding"] = "gzip"
    headers["Vary"] = "Accept-Encoding"
    return Response(
        body, status_code=status_code, media_type=MediaType.HTML, headers=headers, cookies=lang_cookies(request, locale)
    )


async def _survey_submit(
    request: AnyRequest,
    db: BoundedDb,
    target: SurveyTarget,
    data: dict[str, Any],
    *,
    repeat_device: bool = False,
) -> tuple[Response[bytes] | Redirect, bool]:
    """The page to answer with, and whether a new response was stored."""
    settings = _settings(request)
    locale = request_locale(request, settings)
    checked = check_submission(settings, target, data, repeat_device=repeat_device)
    if isinstance(checked, Refused):
        return _survey_page(request, target, parsed=checked.parsed, notice=checked.notice, status_code=400), False
    return Redirect(f"/thanks?lang={locale}", status_code=303), await store_submission(db, checked)


def _device_marker(request: AnyRequest, counter_token: str) -> str | None:
    """The counter key for "this device rated this counter today", or None when the browser has no valid cookie."""
    settings = _settings(request)
    device = integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE))
    if device is None:
        return None
    return integrity.device_marker(settings.secret_key, device, counter_token, settings.today())


def _keep_device_cookie(request: AnyRequest, response: Response[Any]) -> None:
    """Give the browser a signed random device id if it has none (or a forged one)."""
    settings = _settings(request)
    if integrity.device_id(settings.secret_key, request.cookies.get(integrity.DEVICE_COOKIE)) is None:
        response.cookies.append(integrity.device_cookie(integrity.new_device_cookie(settings.secret_key), settings))
