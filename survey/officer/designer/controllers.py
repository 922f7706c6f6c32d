"""The questionnaire designer's pages. Thin handlers: one service call, then a page or a redirect."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.auth.guards import role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.citizen.forms import field_name
from survey.db.models import Role
from survey.errors import SipasError
from survey.i18n import N_
from survey.officer.controllers import AnyRequest, Db, Form, Me, _me
from survey.officer.designer import forms, services
from survey.officer.forms import FormError

EDITORS = role_required(Role.admin, Role.officer)
NOTICES = {
    "created": N_("A new draft has been created. Edit it, preview it, then publish it."),
    "saved": N_("The draft has been saved."),
    "copied": N_("The version you edited is published and cannot change: your changes are in this new draft."),
    "published": N_("The version has been published. It can no longer change; waves can now use it."),
    "deleted": N_("The draft has been deleted."),
}


def _notice(request: AnyRequest) -> str | None:
    return NOTICES.get(request.query_params.get("done", ""))


def _edit_page(
    request: AnyRequest,
    me: Principal,
    detail: services.VersionDetail,
    *,
    errors: list[FormError],
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/designer/edit.html",
        me=me,
        status_code=status_code,
        context={
            "v": detail,
            "form": forms.form_view(detail.definition),
            "problems": detail.problems,
            "errors": errors,
            "types": forms.ITEM_TYPES,
            "type_labels": forms.TYPE_LABELS,
            "roles": forms.ROLES,
            "role_labels_q": forms.ROLE_LABELS,
            "notice": _notice(request),
        },
    )


def _index_page(
    request: AnyRequest,
    me: Principal,
    db: Session,
    *,
    errors: list[FormError],
    kept: dict[str, str],
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/designer/index.html",
        me=me,
        status_code=status_code,
        context={
            "questionnaires": services.list_questionnaires(db),
            "templates": services.template_files(),
            "errors": errors,
            "kept": kept,
            "can_edit": me.role in services.EDITORS,
            "notice": _notice(request),
        },
    )


class DesignerController(Controller):
    path = "/staff/questionnaires"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return _index_page(request, me, db, errors=[], kept={})

    @post("/new", guards=[EDITORS], sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        form, errors = forms.parse_new(data)
        if not errors:
            try:
                version = services.create_draft(db, viewer=me, source=form.source, code=form.code)
            except SipasError as exc:
                errors = [FormError("source", exc.message)]
            else:
                return Redirect(f"/staff/questionnaires/versions/{version.id}/edit?done=created", status_code=303)
        kept = {"source": form.source, "code": form.code}
        return _index_page(request, me, db, errors=errors, kept=kept, status_code=400)

    @get("/versions/{version_id:int}", sync_to_thread=True)
    def view(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int]) -> Template:
        detail = services.get_version(db, version_id=version_id)
        return staff_page(
            request,
            "officer/designer/view.html",
            me=me,
            context={
                "v": detail,
                "spec": detail.spec(),
                "problems": detail.problems,
                "others": services.other_versions(db, version_id=version_id),
                "can_edit": me.role in services.EDITORS,
                "type_labels": forms.TYPE_LABELS,
                "role_labels_q": forms.ROLE_LABELS,
                "notice": _notice(request),
            },
        )

    @get("/versions/{version_id:int}/edit", guards=[EDITORS], sync_to_thread=True)
    def edit_page(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int]) -> Template:
        return _edit_page(request, me, services.get_version(db, version_id=version_id), errors=[])

    @post("/versions/{version_id:int}/edit", guards=[EDITORS], sync_to_thread=True)
    def edit(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int], data: Form) -> Template | Redirect:
        result = services.save_edit(db, viewer=me, version_id=version_id, data=data)
        url = f"/staff/questionnaires/versions/{result.version_id}/edit"
        if result.action == "save" and result.problems and not result.new_draft:
            detail = services.get_version(db, version_id=result.version_id)
            errors = [p.as_form_error() for p in result.problems]
            return _edit_page(request, me, detail, errors=errors, status_code=400)
        done = "copied" if result.new_draft else "saved"
        return Redirect(f"{url}?done={done}{'#' + result.anchor if result.anchor else ''}", status_code=303)

    @get("/versions/{version_id:int}/preview", sync_to_thread=True)
    def preview(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int]) -> Template:
        detail = services.get_version(db, version_id=version_id)
        return staff_page(
            request,
            "officer/designer/preview.html",
            me=me,
            context={
                "v": detail,
                "spec": detail.spec(),
                "problems": detail.problems,
                "kept": {},
                "errors_by_field": {},
                "field_name": field_name,
            },
        )

    @post("/versions/{version_id:int}/publish", guards=[EDITORS], sync_to_thread=True)
    def publish(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int]) -> Template | Redirect:
        try:
            services.publish(db, viewer=me, version_id=version_id)
        except services.DraftInvalid as exc:
            db.rollback()
            detail = services.get_version(db, version_id=version_id)
            return _edit_page(request, me, detail, errors=[p.as_form_error() for p in exc.problems], status_code=400)
        return Redirect(f"/staff/questionnaires/versions/{version_id}?done=published", status_code=303)

    @get("/versions/{version_id:int}/diff", sync_to_thread=True)
    def diff(self, request: AnyRequest, me: Me, db: Db, version_id: FromPath[int], against: FromQuery[int]) -> Template:
        comparison = services.compare(db, version_id=version_id, against_id=against)
        return staff_page(request, "officer/designer/diff.html", me=me, context={"c": comparison})

    @post("/versions/{version_id:int}/delete", guards=[EDITORS], sync_to_thread=True)
    def delete(self, me: Me, db: Db, version_id: FromPath[int]) -> Redirect:
        services.delete_version(db, viewer=me, version_id=version_id)
        return Redirect("/staff/questionnaires?done=deleted", status_code=303)
