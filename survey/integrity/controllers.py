"""Staff pages of integrity: the flagged responses of one's subtree, decisions on them, and the sensitivity view."""

from __future__ import annotations

from typing import Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role
from survey.i18n import N_
from survey.integrity import services
from survey.integrity.flags import CHANNEL_LABELS, REASONS, Flag

Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]

_DONE = {
    "confirm": N_("Response {id} is confirmed as not genuine: it stays out of the headline figures."),
    "clear": N_("Response {id} is cleared as genuine: a new scan will leave it alone."),
}


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


class FlagsController(Controller):
    path = "/staff/flags"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        groups, total = services.flagged_responses(db, viewer=me)
        done, rid = request.query_params.get("done"), request.query_params.get("id", "")
        notice = _DONE.get(done or "") if rid.isdigit() else None
        return staff_page(
            request,
            "officer/flags/index.html",
            me=me,
            context={
                "groups": groups,
                "total": total,
                "reasons": REASONS,
                "channels": CHANNEL_LABELS,
                "flag": Flag,
                "notice": notice,
                "notice_params": {"id": rid},
            },
        )

    @post("/{response_id:int}/confirm", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def confirm(self, me: Me, db: Db, response_id: FromPath[int]) -> Redirect:
        return _decide(db, me, response_id, "confirm")

    @post("/{response_id:int}/clear", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def clear(self, me: Me, db: Db, response_id: FromPath[int]) -> Redirect:
        return _decide(db, me, response_id, "clear")

    @get("/sensitivity", sync_to_thread=True)
    def sensitivity(self, request: AnyRequest, me: Me, db: Db, wave: FromQuery[str | None] = None) -> Template:
        waves = services.waves_in_scope(db, viewer=me)
        result = services.sensitivity(request.app.state.engine, db, viewer=me, wave_code=wave) if wave else None
        return staff_page(
            request, "officer/flags/sensitivity.html", me=me, context={"waves": waves, "result": result, "wave": wave}
        )


def _decide(db: Session, me: Principal, response_id: int, decision: Literal["confirm", "clear"]) -> Redirect:
    services.review(db, viewer=me, response_id=response_id, decision=decision)
    return Redirect(f"/staff/flags?done={decision}&id={response_id}", status_code=303)
