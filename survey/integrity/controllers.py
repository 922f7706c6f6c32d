"""Staff pages of integrity: the flagged responses of one's subtree and the alerts about units below it,
decisions on them (from above the unit only, with a reason), and the sensitivity view."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role
from survey.i18n import N_
from survey.integrity import review, services
from survey.integrity.flags import CHANNEL_LABELS, REASONS, Flag
from survey.integrity.issuance import ALERT_KINDS
from survey.officer.forms import FormError

Db = NamedDependency[Session]
Me = NamedDependency[Principal]
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
AnyRequest = Request[Any, Any, Any]

_DONE = {
    "confirm": N_("Response {id} is confirmed as not genuine: it stays out of the headline figures."),
    "clear": N_("Response {id} is cleared as genuine: a new scan will leave it alone."),
}


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _flags_page(
    request: AnyRequest, me: Principal, db: Session, *, errors: list[FormError] | None = None, status_code: int = 200
) -> Template:
    groups, total = review.flagged_responses(db, viewer=me)
    done, rid = request.query_params.get("done"), request.query_params.get("id", "")
    notice = _DONE.get(done or "") if rid.isdigit() and not errors else None
    return staff_page(
        request,
        "officer/flags/index.html",
        me=me,
        status_code=status_code,
        context={
            "groups": groups,
            "total": total,
            "alerts": review.alerts_for(db, viewer=me),
            "alert_kinds": ALERT_KINDS,
            "reasons": REASONS,
            "channels": CHANNEL_LABELS,
            "flag": Flag,
            "notice": notice,
            "notice_params": {"id": rid},
            "errors": errors or [],
            "reviewed_above": review.REVIEWED_ABOVE,
            "reason_max": review.REASON_MAX,
        },
    )


class FlagsController(Controller):
    path = "/staff/flags"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return _flags_page(request, me, db)

    @post("/{response_id:int}/confirm", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def confirm(
        self, request: AnyRequest, me: Me, db: Db, response_id: FromPath[int], data: Form
    ) -> Redirect | Template:
        return _decide(request, db, me, response_id, "confirm", data)

    @post("/{response_id:int}/clear", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def clear(self, request: AnyRequest, me: Me, db: Db, response_id: FromPath[int], data: Form) -> Redirect | Template:
        return _decide(request, db, me, response_id, "clear", data)

    @get("/sensitivity", sync_to_thread=True)
    def sensitivity(self, request: AnyRequest, me: Me, db: Db, wave: FromQuery[str | None] = None) -> Template:
        waves = services.waves_in_scope(db, viewer=me)
        result = services.sensitivity(request.app.state.engine, db, viewer=me, wave_code=wave) if wave else None
        return staff_page(
            request, "officer/flags/sensitivity.html", me=me, context={"waves": waves, "result": result, "wave": wave}
        )


def _decide(
    request: AnyRequest,
    db: Session,
    me: Principal,
    response_id: int,
    decision: Literal["confirm", "clear"],
    data: dict[str, Any],
) -> Redirect | Template:
    reason = data.get("reason")
    try:
        review.review(
            db,
            viewer=me,
            response_id=response_id,
            decision=decision,
            reason=reason if isinstance(reason, str) else "",
        )
    except review.ReasonRequired as exc:
        db.rollback()
        return _flags_page(request, me, db, errors=[FormError(f"reason-{response_id}", exc.message)], status_code=400)
    return Redirect(f"/staff/flags?done={decision}&id={response_id}", status_code=303)
