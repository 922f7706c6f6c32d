"""Staff pages of survey waves: list, create, open and close, plan, quota progress. Thin handlers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role, pk
from survey.i18n import N_
from survey.officer.forms import FormError
from survey.officer.units import services as units
from survey.officer.waves import forms, services
from survey.settings import Settings
from survey.web import security_headers

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]

CHANGERS = role_required(Role.admin, Role.officer)
NOTICES = {
    "created": N_("The wave has been created as a draft. Plan its quotas, then open it."),
    "open": N_("The wave is open: its codes and counters take answers."),
    "close": N_("The wave is closed: its codes now answer that the survey has closed."),
    "plan": N_("The sampling plan has been saved as the wave's quotas."),
}


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


class WavesController(Controller):
    path = "/staff/waves"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        waves = services.list_waves(db, viewer=me)
        return staff_page(
            request,
            "officer/waves/index.html",
            me=me,
            context={
                "waves": waves,
                "can_change": services.can_change(me),
                "wave_status_labels": services.WAVE_STATUS_LABELS,
            },
        )

    @get("/new", guards=[CHANGERS], sync_to_thread=True)
    def new(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return _wave_form(request, me, db, raw={"min_responses": "30", "target": "90", "channels": ["receipt"]})

    @post("/new", guards=[CHANGERS], sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        form = forms.parse_wave(data)
        wave, errors = services.create_wave(db, viewer=me, form=form)
        if wave is not None:
            return Redirect(f"/staff/waves/{pk(wave)}?done=created", status_code=303)
        return _wave_form(request, me, db, raw=form.raw, errors=errors, status_code=400)

    @get("/{wave_id:int}", sync_to_thread=True)
    def show(self, request: AnyRequest, me: Me, db: Db, wave_id: FromPath[int]) -> Template:
        summary = services.wave_summary(db, viewer=me, wave_id=wave_id)
        return staff_page(
            request,
            "officer/waves/show.html",
            me=me,
            context={
                "s": summary,
                "notice": NOTICES.get(request.query_params.get("done", "")),
                "wave_status_labels": services.WAVE_STATUS_LABELS,
                "channel_labels": services.CHANNEL_LABELS,
            },
        )

    @post("/{wave_id:int}/open", guards=[CHANGERS], sync_to_thread=True)
    def open(self, me: Me, db: Db, wave_id: FromPath[int]) -> Redirect:
        services.move_wave(db, viewer=me, wave_id=wave_id, to="open")
        return Redirect(f"/staff/waves/{wave_id}?done=open", status_code=303)

    @post("/{wave_id:int}/close", guards=[CHANGERS], sync_to_thread=True)
    def close(self, me: Me, db: Db, wave_id: FromPath[int]) -> Redirect:
        services.move_wave(db, viewer=me, wave_id=wave_id, to="close")
        return Redirect(f"/staff/waves/{wave_id}?done=close", status_code=303)

    @get("/{wave_id:int}/plan", guards=[CHANGERS], sync_to_thread=True)
    def plan(self, request: AnyRequest, me: Me, db: Db, wave_id: FromPath[int]) -> Template:
        """The plan's parameters (a GET form: previewing changes nothing) and the plan they give."""
        wave = services.wave_for(db, viewer=me, wave_id=wave_id, change=True)
        asked = bool(request.query_params)
        form, errors = forms.parse_plan(dict(request.query_params) if asked else {})
        plan = services.preview_plan(db, viewer=me, wave_id=wave_id, form=form) if not errors else None
        return staff_page(
            request,
            "officer/waves/plan.html",
            me=me,
            status_code=400 if errors else 200,
            context={"wave": wave, "raw": form.raw, "errors": errors, "plan": plan, "methods": forms.METHODS},
        )

    @post("/{wave_id:int}/plan", guards=[CHANGERS], sync_to_thread=True)
    def save(self, request: AnyRequest, me: Me, db: Db, wave_id: FromPath[int], data: Form) -> Template | Redirect:
        form, errors = forms.parse_plan(data)
        if not errors:
            services.store_plan(db, viewer=me, wave_id=wave_id, form=form)
            return Redirect(f"/staff/waves/{wave_id}?done=plan", status_code=303)
        wave = services.wave_for(db, viewer=me, wave_id=wave_id, change=True)
        return staff_page(
            request,
            "officer/waves/plan.html",
            me=me,
            status_code=400,
            context={"wave": wave, "raw": form.raw, "errors": errors, "plan": None, "methods": forms.METHODS},
        )

    @get("/{wave_id:int}/progress", sync_to_thread=True)
    def progress(self, request: AnyRequest, me: Me, db: Db, wave_id: FromPath[int]) -> Template:
        wave, result = services.progress(db, viewer=me, wave_id=wave_id, today=_settings(request).today())
        return staff_page(
            request,
            "officer/waves/progress.html",
            me=me,
            context={"wave": wave, "p": result, "status_labels": services.STATUS_LABELS},
        )

    @get("/{wave_id:int}/progress.csv", sync_to_thread=True)
    def progress_csv(self, request: AnyRequest, me: Me, db: Db, wave_id: FromPath[int]) -> Response[str]:
        wave, result = services.progress(db, viewer=me, wave_id=wave_id, today=_settings(request).today())
        headers = security_headers("none")
        headers["Content-Disposition"] = f'attachment; filename="progress-{wave.code}-{result.today}.csv"'
        return Response(
            services.progress_csv(result), media_type="text/csv; charset=utf-8", headers=headers, status_code=200
        )


def _wave_form(
    request: AnyRequest,
    me: Principal,
    db: Session,
    *,
    raw: dict[str, Any],
    errors: list[FormError] | None = None,
    status_code: int = 200,
) -> Template:
    tree = [u for u in units.unit_tree(db, viewer=me) if u.active]
    return staff_page(
        request,
        "officer/waves/new.html",
        me=me,
        status_code=status_code,
        context={
            "raw": raw,
            "errors": errors or [],
            "versions": services.published_versions(db),
            "tree": tree,
            "levels": units.levels(db),
            "channels": services.CHANNELS,
            "channel_labels": services.CHANNEL_LABELS,
        },
    )
