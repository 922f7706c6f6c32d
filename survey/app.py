"""The app factory: assembles the Litestar app from settings; does no work at import time."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.stores.base import Store
from litestar.template.config import TemplateConfig
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from survey.api.controllers import IssuingController, api_key_required
from survey.api.limits import refuse_deep_json
from survey.api.read import ReadController
from survey.auth.csrf import csrf_config
from survey.auth.guards import LoginRequired, login_url
from survey.auth.passwords import HashingGate, configure_hashing
from survey.auth.sessions import STORE_NAME, session_config
from survey.auth.sessions import session_store as default_session_store
from survey.citizen.controllers import CitizenController
from survey.citizen.mixer import start_mixer, stop_mixer
from survey.citizen.pages import SurveyPages
from survey.db import guards
from survey.db.bounded import BoundedDb
from survey.db.engine import make_engine
from survey.errors import GoneError, NotFoundError, ServiceUnavailableError, SipasError
from survey.i18n import N_
from survey.integrity.controllers import FlagsController
from survey.leader.board import start_refresher, stop_refresher
from survey.leader.controllers import MicrodataController, ResultsController
from survey.limits import Counters, counters_for
from survey.officer.account.controllers import AccountController
from survey.officer.apikeys.controllers import ApiKeysController
from survey.officer.controllers import StaffController, UsersController
from survey.officer.designer.controllers import DesignerController
from survey.officer.qr.controllers import PrintController
from survey.officer.signin.controllers import AuthController
from survey.officer.units.controllers import FieldsController, PointsController, UnitsController
from survey.officer.waves.controllers import WavesController
from survey.settings import PROJECT_ROOT, Settings, get_settings
from survey.web import PRECOMPRESSED_OPT, page

log = logging.getLogger("sipas")
TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "survey" / "static"

_STATUS_MESSAGES = {
    400: N_("Something in the request was not right. Please go back and try again."),
    401: N_("Please sign in to continue. If you were signed in, your session has ended."),
    403: N_("You do not have access to this page."),
    404: N_("We could not find this page."),
    405: N_("This page cannot be used like that."),
    413: N_("What was sent is too large."),
    500: N_("Something went wrong on our side. Your answers have not been lost if you saw a thank-you page."),
    503: N_("The service is busy or under maintenance. Please try again in a few minutes."),
}
CSRF_FAILED = N_(
    "This form could not be checked: it was open for a long time, or it was not sent from this site. "
    "Go back, reload the page and try again."
)


async def _provide_db(state: State) -> AsyncIterator[Session]:
    """One session per request, closed (its connection back in the pool) in a thread of anyio's own.

    Not a sync generator: Litestar would run its cleanup in the executor that runs the sync handlers, queued
    behind them; with more requests than pooled connections, the handlers waiting for a connection hold
    every thread and the cleanups that would give connections back never run (a 30 s stall, then 500s).
    """
    session = Session(state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        await anyio.to_thread.run_sync(session.close)


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(("/api/", "/schema"))


def _problem(status: int, title: str, detail: str) -> Response[dict[str, Any]]:
    return Response(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
    )


def _error_page(request: Request[Any, Any, Any], status: int, message: str, template: str | None = None) -> Any:
    settings: Settings = request.app.state.settings
    if _wants_json(request):
        return _problem(status, message, message)
    known = {400, 401, 403, 404, 409, 410, 500, 503}
    chosen = template or f"errors/{status if status in known else (500 if status >= 500 else 400)}.html"
    return page(request, chosen, settings=settings, status_code=status, context={"message": message})


def _on_sipas_error(request: Request[Any, Any, Any], exc: SipasError) -> Any:
    # An error class that kept the generic template gets the page of its status (401, 403...).
    template = None if exc.template == SipasError.template else exc.template
    return _error_page(request, exc.status_code, exc.message, template)


def _on_login_required(request: Request[Any, Any, Any], exc: LoginRequired) -> Any:
    """A page asked for without a session: sign in, then come back. Anything else: 401."""
    if request.method in ("GET", "HEAD") and not _wants_json(request):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(login_url(here), status_code=303)
    return _on_sipas_error(request, exc)


def _on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Any:
    status = exc.status_code
    if status >= 500:
        log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, exc.detail)
    if _wants_json(request) and status < 500:
        problem = _problem(status, str(exc.detail), str(exc.detail))
        if exc.extra:  # a validation error: which field, and what is wrong with it
            problem.content["errors"] = exc.extra
        return problem
    message = _STATUS_MESSAGES.get(status, _STATUS_MESSAGES[400])
    if status == 403 and exc.detail == "CSRF token verification failed":
        message = CSRF_FAILED
    return _error_page(request, status, message)


def _on_database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Any:
    log.exception("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 503, _STATUS_MESSAGES[503], ServiceUnavailableError.template)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Any:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, _STATUS_MESSAGES[500])


@get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=False)
def healthz() -> dict[str, str]:
    """Liveness, for a load balancer: this process answers (it asks the database nothing; see ``/readyz``)."""
    return {"status": "ok"}


def _select_one(conn: Connection) -> None:
    conn.execute(text("SELECT 1"))


@get("/readyz", media_type=MediaType.JSON, include_in_schema=False)
async def readyz(state: State) -> dict[str, str]:
    """Readiness: the database answers within the citizen's deadline (503 otherwise)."""
    db: BoundedDb = state.citizen_db
    try:
        await db.read(_select_one)
    except DBAPIError as exc:
        raise ServiceUnavailableError("database unreachable") from exc
    return {"status": "ok"}


_BASELINE = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
# Production is served over HTTPS only: browsers that have seen this never try plain HTTP for a year.
HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def _baseline_headers(settings: Settings) -> Any:
    """A ``before_send`` hook adding the baseline headers to every answer, errors, JSON, CSV and files included
    (pages add their CSP in ``survey.web``); in production also HSTS."""
    baseline = (*_BASELINE, HSTS) if settings.is_production else _BASELINE

    async def add(message: Any, scope: Any) -> None:
        if message["type"] == "http.response.start":
            # ASGI header names are lower-case bytes; Litestar's header helpers would decode every one of them
            headers = message.setdefault("headers", [])
            names = {name for name, _ in headers}
            missing = [header for header in baseline if header[0] not in names]
            if missing:
                message["headers"] = [*headers, *missing]

    return add


def _freeze_startup_objects(app: Litestar) -> None:
    """Move everything made at start-up (modules, routes, templates) out of the garbage collector's sight:
    it would otherwise walk them again in every full collection while requests come in. Not in tests,
    which make many apps in one process (frozen cycles are never collected)."""
    if app.state.settings.environment != "test":
        gc.freeze()


def openapi_config(settings: Settings) -> OpenAPIConfig:
    """The JSON API's schema at /schema (the JSON; also /schema/openapi.json and /schema/openapi.yaml).

    No documentation page: Swagger UI, ReDoc and the others load their scripts from third-party CDNs, which
    the staff origin never serves. In production the schema is given to API key holders only (401 without a
    valid key): it is for the one-stop systems and BI tools that hold one, not for every visitor.
    """
    guarded = settings.environment == "production"
    router = Router(path="/schema", route_handlers=[], guards=[api_key_required]) if guarded else None
    return OpenAPIConfig(
        title="SIPAS platform API",
        version="1.0.0",
        description="Receipt codes for one-stop systems. Authenticate with an API key: "
        "'Authorization: Bearer sipas_<prefix>_<secret>' (create one with 'sipas apikey create').",
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="an API key from 'sipas apikey'")
            }
        ),
        render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"]), YamlRenderPlugin()],
        path="/schema",
        openapi_router=router,
    )


def template_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    *,
    session_store: Store | None = None,
    counters: Counters | None = None,
) -> Litestar:
    """The platform's ASGI app. Tests pass their own settings, engine, session store and counters."""
    settings = settings or get_settings()
    guards.install()
    owned_engine = engine is None
    engine = engine or make_engine(
        settings.database_url,
        statement_timeout_s=settings.db_statement_timeout_seconds,
        lock_timeout_s=settings.db_lock_timeout_seconds,
        pool_timeout_s=settings.citizen_wait_seconds,
    )
    counters = counters if counters is not None else counters_for(settings)
    configure_hashing(slots=settings.password_hash_concurrency, wait_s=settings.password_hash_wait_seconds)
    templates = template_environment()

    async def _dispose() -> None:
        await counters.close()
        if owned_engine:
            engine.dispose()

    return Litestar(
        route_handlers=[
            CitizenController,
            IssuingController,
            ReadController,
            AuthController,
            StaffController,
            UsersController,
            AccountController,
            ResultsController,
            MicrodataController,
            DesignerController,
            PrintController,
            FlagsController,
            UnitsController,
            PointsController,
            FieldsController,
            WavesController,
            ApiKeysController,
            healthz,
            readyz,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={"db": Provide(_provide_db)},
        middleware=[session_config(settings).middleware],
        compression_config=CompressionConfig(
            backend="gzip", gzip_compress_level=6, minimum_size=500, exclude_opt_key=PRECOMPRESSED_OPT
        ),
        csrf_config=csrf_config(settings),
        stores={STORE_NAME: session_store if session_store is not None else default_session_store(settings)},
        state=State(
            {
                "settings": settings,
                "engine": engine,
                "citizen_db": BoundedDb(engine, wait_s=settings.citizen_wait_seconds),
                "counters": counters,
                "hashing": HashingGate(
                    slots=settings.password_hash_concurrency, wait_s=settings.password_hash_wait_seconds
                ),
                "survey_pages": SurveyPages(templates),
            }
        ),
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(templates)),
        allowed_hosts=(
            None
            if settings.allowed_hosts == ["*"]
            # a load balancer's health check names the machine, not the platform
            else AllowedHostsConfig(allowed_hosts=settings.allowed_hosts, exclude=["^/healthz$", "^/readyz$"])
        ),
        exception_handlers={
            SipasError: _on_sipas_error,
            NotFoundError: _on_sipas_error,
            GoneError: _on_sipas_error,
            LoginRequired: _on_login_required,
            HTTPException: _on_http_error,
            NotFoundException: _on_http_error,
            DBAPIError: _on_database_error,
            Exception: _on_unexpected,
        },
        openapi_config=openapi_config(settings),
        before_send=[_baseline_headers(settings)],
        before_request=refuse_deep_json,
        request_max_body_size=256 * 1024,
        on_startup=[start_refresher, start_mixer, _freeze_startup_objects],
        on_shutdown=[stop_refresher, stop_mixer, _dispose],
        debug=False,
    )
