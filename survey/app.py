"""The app factory: assembles the Litestar app from settings; does no work at import time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.compression import CompressionConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, NotFoundException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from survey.citizen.controllers import CitizenController
from survey.db import guards
from survey.db.engine import make_engine
from survey.errors import GoneError, NotFoundError, ServiceUnavailableError, SipasError
from survey.i18n import N_
from survey.settings import PROJECT_ROOT, Settings, get_settings
from survey.web import page

log = logging.getLogger("sipas")
TEMPLATES_DIR = PROJECT_ROOT / "templates"
STATIC_DIR = PROJECT_ROOT / "survey" / "static"

_STATUS_MESSAGES = {
    400: N_("Something in the request was not right. Please go back and try again."),
    404: N_("We could not find this page."),
    405: N_("This page cannot be used like that."),
    413: N_("What was sent is too large."),
    500: N_("Something went wrong on our side. Your answers have not been lost if you saw a thank-you page."),
    503: N_("The service is busy or under maintenance. Please try again in a few minutes."),
}


def _provide_db(state: State) -> Iterator[Session]:
    with Session(state.engine, expire_on_commit=False) as session:
        yield session


def _wants_json(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api/")


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
    known = {400, 404, 409, 410, 500, 503}
    chosen = template or f"errors/{status if status in known else (500 if status >= 500 else 400)}.html"
    return page(request, chosen, settings=settings, status_code=status, context={"message": message})


def _on_sipas_error(request: Request[Any, Any, Any], exc: SipasError) -> Any:
    return _error_page(request, exc.status_code, exc.message, exc.template)


def _on_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Any:
    status = exc.status_code
    if status >= 500:
        log.error("HTTP %s on %s %s: %s", status, request.method, request.url.path, exc.detail)
    return _error_page(request, status, _STATUS_MESSAGES.get(status, _STATUS_MESSAGES[400]))


def _on_database_error(request: Request[Any, Any, Any], exc: DBAPIError) -> Any:
    log.exception("database error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 503, _STATUS_MESSAGES[503], ServiceUnavailableError.template)


def _on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Any:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, _STATUS_MESSAGES[500])


@get("/healthz", media_type=MediaType.JSON, include_in_schema=False, sync_to_thread=True)
def healthz(state: State) -> dict[str, str]:
    """Liveness and database reachability, for a load balancer."""
    try:
        with state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        raise ServiceUnavailableError("database unreachable") from exc
    return {"status": "ok"}


def template_environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Litestar:
    """The platform's ASGI app. Tests pass their own settings and engine."""
    settings = settings or get_settings()
    guards.install()
    owned_engine = engine is None
    engine = engine or make_engine(settings.database_url)

    def _dispose() -> None:
        if owned_engine:
            engine.dispose()

    return Litestar(
        route_handlers=[
            CitizenController,
            healthz,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={"db": Provide(_provide_db)},
        state=State({"settings": settings, "engine": engine}),
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(template_environment())),
        compression_config=CompressionConfig(backend="gzip", minimum_size=500, gzip_compress_level=6),
        allowed_hosts=(
            None if settings.allowed_hosts == ["*"] else AllowedHostsConfig(allowed_hosts=settings.allowed_hosts)
        ),
        exception_handlers={
            SipasError: _on_sipas_error,
            NotFoundError: _on_sipas_error,
            GoneError: _on_sipas_error,
            HTTPException: _on_http_error,
            NotFoundException: _on_http_error,
            DBAPIError: _on_database_error,
            Exception: _on_unexpected,
        },
        request_max_body_size=256 * 1024,
        on_shutdown=[_dispose],
        debug=False,
    )
