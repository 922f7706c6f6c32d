"""Staff pages: the staff home, accounts and the audit log (signing in: ``survey.officer.signin``). Thin handlers.

Every route under ``/staff`` is guarded by ``staff_required`` (anonymous visitors are sent to
``/login?next=...``); the expected outcome of each route for each role is declared in
``tests/survey/test_access_matrix.py``, which fails for a route it does not know.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from sqlalchemy.orm import Session

from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.passwords import MIN_LENGTH, POLICY, WeakPassword
from survey.auth.services import USERNAME_RE, Principal, UsernameTaken
from survey.db.models import Role
from survey.i18n import N_
from survey.officer import services
from survey.officer.forms import FormError, NewUserForm, parse_new_user, role_field
from survey.settings import Settings

Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


class StaffController(Controller):
    path = "/staff"
    include_in_schema = False
    guards = [staff_required]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=False)
    def home(self, request: AnyRequest, me: Me) -> Template:
        return staff_page(
            request,
            "officer/home.html",
            me=me,
            context={"role_hint": services.ROLE_HINTS[me.role.value], "manages": bool(services.creatable_roles(me))},
        )

    @get("/audit", guards=[role_required(Role.admin, Role.officer)], sync_to_thread=True)
    def audit(self, request: AnyRequest, me: Me, db: Db, page: FromQuery[int] = 1) -> Template:
        result = services.audit_page(db, viewer=me, page=page)
        return staff_page(request, "officer/audit.html", me=me, context={"log": result})


class UsersController(Controller):
    path = "/staff/users"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def index(self, request: AnyRequest, me: Me, db: Db) -> Template:
        notice, params = None, {}
        for key, message in (
            ("created", N_("The account {username} has been created.")),
            ("deactivated", N_("The account {username} has been deactivated.")),
        ):
            name = request.query_params.get(key)
            if name and USERNAME_RE.fullmatch(name):
                notice, params = message, {"username": name}
        users = services.list_users(db, viewer=me)
        return staff_page(
            request, "officer/users.html", me=me, context={"users": users, "notice": notice, "notice_params": params}
        )

    @get("/new", sync_to_thread=True)
    def new(self, request: AnyRequest, me: Me, db: Db) -> Template:
        return self._form(request, me, db, form=None, errors=[])

    @post("/new", sync_to_thread=True)
    def create(self, request: AnyRequest, me: Me, db: Db, data: Form) -> Template | Redirect:
        roles = services.creatable_roles(me)
        form, errors = parse_new_user(data, roles=roles)
        if not errors and form.unit_id is not None:
            try:
                user = services.create_account(
                    db, viewer=me, username=form.username, role=form.role, unit_id=form.unit_id, password=form.password
                )
            except UsernameTaken as exc:
                errors = [FormError("username", exc.message)]
            except WeakPassword as exc:
                errors = [FormError("password", p.message, p.params) for p in exc.problems]
            else:
                return Redirect(f"/staff/users?created={quote(user.username)}", status_code=303)
        return self._form(request, me, db, form=form, errors=errors, status_code=400)

    @post("/{user_id:int}/deactivate", sync_to_thread=True)
    def deactivate(self, me: Me, db: Db, user_id: FromPath[int]) -> Redirect:
        user = services.deactivate_account(db, viewer=me, user_id=user_id)
        return Redirect(f"/staff/users?deactivated={quote(user.username)}", status_code=303)

    @staticmethod
    def _form(
        request: AnyRequest,
        me: Principal,
        db: Session,
        *,
        form: NewUserForm | None,
        errors: list[FormError],
        status_code: int = 200,
    ) -> Template:
        roles = services.creatable_roles(me)
        return staff_page(
            request,
            "officer/user_new.html",
            me=me,
            status_code=status_code,
            context={
                "roles": roles,
                "role_hints": services.ROLE_HINTS,
                "role_field": role_field(roles),
                "units": services.unit_choices(db, viewer=me),
                "kept": form.kept if form else {"username": "", "role": roles[0].value if len(roles) == 1 else ""},
                "errors": errors,
                "policy": POLICY,
                "min_length": MIN_LENGTH,
            },
        )
