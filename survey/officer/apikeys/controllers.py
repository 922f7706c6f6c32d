"""Staff pages of API keys: list, create (the secret shown once), revoke. Admins and officers. Thin handlers."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.api.keys import SCOPES
from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role
from survey.i18n import N_
from survey.officer import services as staff
from survey.officer.apikeys import services
from survey.officer.forms import FormError

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]

FLASH = "sipas_new_api_key"  # the session entry holding a new key's secret until the next page shows it
REVOKED = N_("The key has been revoked: systems using it are refused from now on.")


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _values(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    items = value if isinstance(value, list) else [value]
    return [v.strip()[:200] for v in items if isinstance(v, str) and v.strip()]


class ApiKeysController(Controller):
    path = "/staff/api-keys"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        # The secret of a key created on the previous request: shown on this page once, then gone.
        created = request.session.pop(FLASH, None) if isinstance(request.session, dict) else None
        notice = REVOKED if request.query_params.get("revoked") else None
        return _page(request, me, db, created=created if isinstance(created, dict) else None, notice=notice)

    @post("/", sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        name = (_values(data, "name") or [""])[0]
        unit_raw = (_values(data, "unit_id") or [""])[0]
        scopes = tuple(_values(data, "scopes"))
        new, errors = services.create_key(
            db, viewer=me, name=name, unit_id=int(unit_raw) if unit_raw.isdigit() else None, scopes=scopes
        )
        if new is None:
            kept = {"name": name, "unit_id": unit_raw, "scopes": scopes}
            return _page(request, me, db, errors=errors, kept=kept, status_code=400)
        request.session[FLASH] = {"prefix": new.prefix, "secret": new.secret, "name": name}
        return Redirect("/staff/api-keys", status_code=303)

    @post("/{key_id:int}/revoke", sync_to_thread=True)
    def revoke(self, me: Me, db: Db, key_id: FromPath[int]) -> Redirect:
        services.revoke_key(db, viewer=me, key_id=key_id)
        return Redirect("/staff/api-keys?revoked=1", status_code=303)


def _page(
    request: AnyRequest,
    me: Principal,
    db: Session,
    *,
    created: dict[str, Any] | None = None,
    notice: str | None = None,
    errors: list[FormError] | None = None,
    kept: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    return staff_page(
        request,
        "officer/apikeys/index.html",
        me=me,
        status_code=status_code,
        context={
            "keys": services.list_keys(db, viewer=me),
            "created": created,
            "notice": notice,
            "errors": errors or [],
            "kept": kept or {"name": "", "unit_id": "", "scopes": ("issue",)},
            "units": staff.unit_choices(db, viewer=me),
            "scopes": SCOPES,
            "scope_labels": services.SCOPE_LABELS,
        },
    )
