"""Staff pages of units, service points and procedure fields, and the import of units. Thin handlers."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
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
from survey.officer.units import forms, imports, services
from survey.receipts import qr
from survey.settings import Settings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Upload = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.MULTI_PART)]
Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]

CHANGERS = role_required(Role.admin, Role.officer)
ADMINS = role_required(Role.admin)
NOTICES = {
    "unit": N_("The unit has been saved."),
    "point": N_("The service point has been saved."),
    "field": N_("The procedure field has been saved."),
}
IMPORTED = {
    False: N_("{count} units have been imported."),
    True: N_("{count} service points have been imported."),
}


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _notice(request: AnyRequest) -> str | None:
    return NOTICES.get(request.query_params.get("saved", ""))


class UnitsController(Controller):
    path = "/staff/units"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        tree = services.unit_tree(db, viewer=me)
        notice, params = _notice(request), {}
        imported = request.query_params.get("imported", "")
        if imported.isdigit():
            notice, params = IMPORTED[request.query_params.get("kind") == imports.POINTS], {"count": int(imported)}
        return staff_page(
            request,
            "officer/units/index.html",
            me=me,
            context={"tree": tree, "can_change": services.can_change(me), "notice": notice, "notice_params": params},
        )

    @get("/{unit_id:int}", sync_to_thread=True)
    def show(self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int]) -> Template:
        detail = services.unit_detail(db, viewer=me, unit_id=unit_id)
        return staff_page(
            request,
            "officer/units/show.html",
            me=me,
            context={"d": detail, "can_change": services.can_change(me), "notice": _notice(request)},
        )

    @get("/{unit_id:int}/edit", guards=[CHANGERS], sync_to_thread=True)
    def edit(self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int]) -> Template:
        detail = services.unit_detail(db, viewer=me, unit_id=unit_id)
        u = detail.unit
        form = forms.UnitForm(name_vi=u.name_vi, name_en=u.name_en, kind=u.kind or "", active=u.active)
        return _unit_form(request, me, detail, form, [])

    @post("/{unit_id:int}/edit", guards=[CHANGERS], sync_to_thread=True)
    def update(self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int], data: Form) -> Template | Redirect:
        form = forms.parse_unit(data)
        unit, errors = services.update_unit(
            db,
            viewer=me,
            unit_id=unit_id,
            name_vi=form.name_vi,
            name_en=form.name_en,
            kind=form.kind,
            active=form.active,
        )
        if unit is not None:
            return Redirect(f"/staff/units/{unit_id}?saved=unit", status_code=303)
        detail = services.unit_detail(db, viewer=me, unit_id=unit_id)
        return _unit_form(request, me, detail, form, errors, status_code=400)

    @get("/{unit_id:int}/points/new", guards=[CHANGERS], sync_to_thread=True)
    def new_point(self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int]) -> Template:
        detail = services.unit_detail(db, viewer=me, unit_id=unit_id)
        return _point_form(request, me, unit=detail.unit, point=None, form=forms.PointForm("", "", "", True), errors=[])

    @post("/{unit_id:int}/points/new", guards=[CHANGERS], sync_to_thread=True)
    def create_point(
        self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int], data: Form
    ) -> Template | Redirect:
        form = forms.parse_point(data)
        point, errors = services.create_point(
            db,
            viewer=me,
            unit_id=unit_id,
            code=form.code,
            name_vi=form.name_vi,
            name_en=form.name_en,
            active=form.active,
        )
        if point is not None:
            return Redirect(f"/staff/units/{unit_id}?saved=point", status_code=303)
        detail = services.unit_detail(db, viewer=me, unit_id=unit_id)
        return _point_form(request, me, unit=detail.unit, point=None, form=form, errors=errors, status_code=400)

    @get("/import", guards=[CHANGERS], sync_to_thread=False)
    def import_form(self, request: AnyRequest, me: Me) -> Template:
        return _import_page(request, me, kind=imports.UNITS)

    @post("/import", guards=[CHANGERS], sync_to_thread=True)
    def import_file(self, request: AnyRequest, me: Me, db: Db, data: Upload) -> Template | Redirect:
        # Litestar receives the upload on the event loop; reading and checking it runs here, in a worker thread.
        kind = data.get("kind") if data.get("kind") in imports.KINDS else imports.UNITS
        upload = data.get("file")
        assert isinstance(kind, str)
        if not isinstance(upload, UploadFile) or not upload.filename:
            problem = FormError("file", N_("Choose a CSV or XLSX file to import."))
            return _import_page(request, me, kind=kind, errors=[problem], status_code=400)
        content = upload.file.read(imports.MAX_UPLOAD + 1)
        if len(content) > imports.MAX_UPLOAD:
            problem = FormError("file", imports.TOO_LARGE, {"size": imports.MAX_UPLOAD // 1024})
            return _import_page(request, me, kind=kind, errors=[problem], status_code=400)
        try:
            result = imports.import_file(db, viewer=me, kind=kind, data=content, filename=upload.filename)
        except imports.UnitImportError as exc:
            summary = FormError("file", exc.message, {"count": len(exc.problems)})
            return _import_page(
                request, me, kind=kind, errors=[summary], problems=exc.problems, source=upload.filename, status_code=400
            )
        return Redirect(f"/staff/units?imported={result.created}&kind={result.kind}", status_code=303)


def _unit_form(
    request: AnyRequest,
    me: Principal,
    detail: services.UnitDetail,
    form: forms.UnitForm,
    errors: list[FormError],
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/units/edit.html",
        me=me,
        status_code=status_code,
        context={"d": detail, "form": form, "errors": errors},
    )


def _point_form(
    request: AnyRequest,
    me: Principal,
    *,
    unit: Any,
    point: Any,
    form: forms.PointForm,
    errors: list[FormError],
    status_code: int = 200,
) -> Template:
    settings: Settings = request.app.state.settings
    poster = None
    if point is not None:
        link = f"{settings.public_url}/c/{point.counter_token}"
        poster = {"link": link, "svg": base64.b64encode(qr.qr_svg(link)).decode("ascii")}
    return staff_page(
        request,
        "officer/units/point.html",
        me=me,
        status_code=status_code,
        context={"unit": unit, "point": point, "form": form, "errors": errors, "poster": poster},
    )


def _import_page(
    request: AnyRequest,
    me: Principal,
    *,
    kind: str,
    errors: list[FormError] | None = None,
    problems: list[imports.ImportProblem] | None = None,
    source: str = "",
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/units/import.html",
        me=me,
        status_code=status_code,
        context={
            "kind": kind,
            "errors": errors or [],
            "problems": problems or [],
            "source": source,
            "layouts": imports.LAYOUTS,
        },
    )


class PointsController(Controller):
    path = "/staff/points"
    include_in_schema = False
    guards = [staff_required, CHANGERS]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/{point_id:int}/edit", sync_to_thread=True)
    def edit(self, request: AnyRequest, me: Me, db: Db, point_id: FromPath[int]) -> Template:
        point, unit = services.ensure_point_in_scope(db, me, point_id)
        form = forms.PointForm(point.code, point.name_vi, point.name_en, point.active)
        return _point_form(request, me, unit=unit, point=point, form=form, errors=[])

    @post("/{point_id:int}/edit", sync_to_thread=True)
    def update(self, request: AnyRequest, me: Me, db: Db, point_id: FromPath[int], data: Form) -> Template | Redirect:
        form = forms.parse_point(data)
        point, errors = services.update_point(
            db,
            viewer=me,
            point_id=point_id,
            code=form.code,
            name_vi=form.name_vi,
            name_en=form.name_en,
            active=form.active,
        )
        if point is not None:
            return Redirect(f"/staff/units/{point.unit_id}?saved=point", status_code=303)
        existing, unit = services.ensure_point_in_scope(db, me, point_id)
        return _point_form(request, me, unit=unit, point=existing, form=form, errors=errors, status_code=400)


class FieldsController(Controller):
    path = "/staff/fields"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return staff_page(
            request,
            "officer/units/fields.html",
            me=me,
            context={"fields": services.list_fields(db), "can_edit": me.role == Role.admin, "notice": _notice(request)},
        )

    @get("/new", guards=[ADMINS], sync_to_thread=False)
    def new(self, request: AnyRequest, me: Me) -> Template:
        return _field_form(request, me, field_id=None, form=forms.FieldForm("", "", ""), errors=[])

    @post("/new", guards=[ADMINS], sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        return _save_field(request, me, db, None, data)

    @get("/{field_id:int}/edit", guards=[ADMINS], sync_to_thread=True)
    def edit(self, request: AnyRequest, me: Me, db: Db, field_id: FromPath[int]) -> Template:
        fld = services.get_field(db, field_id=field_id)
        return _field_form(
            request, me, field_id=field_id, form=forms.FieldForm(fld.code, fld.name_vi, fld.name_en), errors=[]
        )

    @post("/{field_id:int}/edit", guards=[ADMINS], sync_to_thread=True)
    def update(self, request: AnyRequest, me: Me, db: Db, field_id: FromPath[int], data: Form) -> Template | Redirect:
        return _save_field(request, me, db, field_id, data)


def _save_field(request: AnyRequest, me: Principal, db: Session, field_id: int | None, data: dict[str, Any]) -> Any:
    form = forms.parse_field(data)
    fld, errors = services.save_field(
        db, viewer=me, field_id=field_id, code=form.code, name_vi=form.name_vi, name_en=form.name_en
    )
    if fld is not None:
        return Redirect(f"/staff/fields?saved=field#field-{pk(fld)}", status_code=303)
    return _field_form(request, me, field_id=field_id, form=form, errors=errors, status_code=400)


def _field_form(
    request: AnyRequest,
    me: Principal,
    *,
    field_id: int | None,
    form: forms.FieldForm,
    errors: list[FormError],
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/units/field.html",
        me=me,
        status_code=status_code,
        context={"field_id": field_id, "form": form, "errors": errors},
    )
