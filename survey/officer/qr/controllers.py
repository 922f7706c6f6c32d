"""Printed material: counter posters and receipt-code slips. Thin handlers; unit scope is checked in services."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import Provide
from litestar.params import FromPath
from litestar.response import Template
from sqlalchemy.orm import Session

from survey.auth.guards import role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role
from survey.errors import ConflictError, NotFoundError
from survey.i18n import gettext_for
from survey.officer.controllers import AnyRequest, Db, Form, Me, _me, _settings
from survey.officer.forms import FormError
from survey.officer.qr import services
from survey.web import security_headers

BILINGUAL = {
    "vi_": gettext_for("vi"),
    "en_": gettext_for("en"),
    "poster_call": services.POSTER_CALL,
    "poster_steps": services.POSTER_STEPS,
    "slip_text": services.SLIP_TEXT,
}


def _codes_page(
    request: AnyRequest,
    me: Principal,
    db: Session,
    *,
    form: services.CodeRequest | None = None,
    errors: list[FormError] | None = None,
    batch: services.Batch | None = None,
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/qr/receipt_codes.html",
        me=me,
        status_code=status_code,
        context={
            "choices": services.code_choices(db, viewer=me),
            "kept": form.kept if form else {"count": 50},
            "errors": errors or [],
            "batch": batch,
            "max_batch": services.MAX_BATCH,
            **BILINGUAL,
        },
    )


class PrintController(Controller):
    path = "/staff"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/points/{point_id:int}/poster", sync_to_thread=True)
    def poster(self, request: AnyRequest, me: Me, db: Db, point_id: FromPath[int]) -> Template:
        public_url = _settings(request).public_url
        found = services.poster(db, viewer=me, point_id=point_id, public_url=public_url)
        return staff_page(
            request, "officer/qr/posters.html", me=me, context={"posters": [found], "unit": None, **BILINGUAL}
        )

    @get("/units/{unit_id:int}/posters", sync_to_thread=True)
    def unit_posters(self, request: AnyRequest, me: Me, db: Db, unit_id: FromPath[int]) -> Template:
        public_url = _settings(request).public_url
        found = services.unit_posters(db, viewer=me, unit_id=unit_id, public_url=public_url)
        return staff_page(
            request, "officer/qr/posters.html", me=me, context={"posters": found.posters, "unit": found, **BILINGUAL}
        )

    @get("/receipt-codes", sync_to_thread=True)
    def codes_form(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return _codes_page(request, me, db)

    @post("/receipt-codes", sync_to_thread=True)
    def issue(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Response[str]:
        settings = _settings(request)
        if data.get("action") == "csv":  # the batch's page sends its codes back once, for the file
            raw = data.get("codes")
            text = services.codes_csv(
                db, viewer=me, raw=raw if isinstance(raw, str) else "", public_url=settings.public_url
            )
            headers = {**security_headers("none"), "Content-Disposition": 'attachment; filename="receipt-codes.csv"'}
            return Response(text, status_code=200, media_type="text/csv; charset=utf-8", headers=headers)
        form, errors = services.parse_request(data)
        if not errors:
            try:
                batch = services.issue(
                    db,
                    viewer=me,
                    form=form,
                    valid_days=settings.receipt_code_valid_days,
                    public_url=settings.public_url,
                )
            except (ConflictError, NotFoundError) as exc:
                db.rollback()
                errors = [FormError("wave_id", exc.message)]
            else:
                return _codes_page(request, me, db, form=form, batch=batch)
        return _codes_page(request, me, db, form=form, errors=errors, status_code=400)
