"""The JSON API (``/api/v1``): receipt codes for one-stop systems. Authenticated with API keys."""

from __future__ import annotations

import base64
from typing import Any

import anyio.to_thread
from litestar import Controller, Request, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.handlers.base import BaseRouteHandler
from litestar.params import JSONBody
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from survey.api import issuing
from survey.api.keys import Caller, authenticate
from survey.api.limits import API_MAX_BODY_BYTES
from survey.api.schemas import (
    BatchRequest,
    BatchResponse,
    IssuedCode,
    TransactionDecision,
    TransactionRequest,
    problem_responses,
)
from survey.receipts import codes
from survey.receipts.qr import qr_png, qr_svg
from survey.settings import Settings


def _settings(request: Request[Any, Any, Any]) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def provide_caller(request: Request[Any, Any, Any], db: NamedDependency[Session]) -> Caller:
    return authenticate(db, request.headers.get("authorization"), today=_settings(request).today())


async def api_key_required(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """A guard letting through any valid API key, whatever its scopes (401 otherwise): the schema in production."""
    settings: Settings = connection.app.state.settings
    engine: Engine = connection.app.state.engine

    def check() -> None:
        with Session(engine) as session:
            authenticate(session, connection.headers.get("authorization"), today=settings.today())

    await anyio.to_thread.run_sync(check)


class IssuingController(Controller):
    """For one-stop systems: is a transaction selected for the survey, and its code; batches for printing."""

    path = "/api/v1"
    tags = ("receipt codes",)
    security = ({"apiKey": []},)
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=True)}  # noqa: RUF012
    request_max_body_size = API_MAX_BODY_BYTES

    @post(
        "/transactions",
        status_code=200,
        sync_to_thread=True,
        summary="Ask whether a transaction gets a code",
        responses=problem_responses(401, 403, 404, 409),
    )
    def transaction(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        caller: NamedDependency[Caller],
        data: JSONBody[TransactionRequest],
    ) -> TransactionDecision:
        """Bernoulli selection with the stratum's planned probability. Asking again with the same
        ``transaction_ref`` returns the same decision and the same code (idempotent)."""
        caller.require("issue")
        settings = _settings(request)
        stratum = issuing.find_stratum(db, caller, wave_code=data.wave, unit_code=data.unit, field_code=data.field)
        decision = issuing.decide(
            db,
            stratum,
            transaction_ref=data.transaction_ref,
            secret=settings.secret_key,
            today=settings.today(),
            valid_days=settings.receipt_code_valid_days,
        )
        result = TransactionDecision(
            selected=decision.selected,
            probability=decision.probability,
            repeated=decision.repeated,
            expires_on=decision.expires_on,
        )
        if decision.code is not None:
            url = f"{settings.public_url}/r/{decision.code}"
            result.code = codes.pretty(decision.code)
            result.url = url
            if data.qr == "svg":
                result.qr_svg = qr_svg(url).decode()
            elif data.qr == "png":
                result.qr_png_base64 = base64.b64encode(qr_png(url, box_size=4)).decode()
        return result

    @post(
        "/receipt-codes",
        status_code=201,
        sync_to_thread=True,
        summary="Issue a batch of codes for printing",
        responses=problem_responses(401, 403, 404, 409),
    )
    def batch(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        caller: NamedDependency[Caller],
        data: JSONBody[BatchRequest],
    ) -> BatchResponse:
        """``count`` fresh one-time codes for a wave, unit and field. The response is the only copy of the
        codes: store or print it."""
        caller.require("issue")
        settings = _settings(request)
        stratum = issuing.find_stratum(db, caller, wave_code=data.wave, unit_code=data.unit, field_code=data.field)
        fresh, expires = issuing.issue_batch(
            db,
            stratum,
            count=data.count,
            today=settings.today(),
            valid_days=settings.receipt_code_valid_days,
            actor=f"api:{caller.prefix}",
        )
        return BatchResponse(
            wave=data.wave,
            unit=data.unit,
            field=data.field,
            expires_on=expires,
            codes=[IssuedCode(code=codes.pretty(c), url=f"{settings.public_url}/r/{c}") for c in fresh],
        )
