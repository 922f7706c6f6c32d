"""Units, service points and procedure fields as the staff pages see them: every query and change.

Who may do what:

- Everyone signed in reads the units of their own subtree (a unit, its service points and children).
- **Admins and officers** change the units and service points of their subtree (their own unit included).
- **Leaders** change nothing.
- Procedure fields are shared by the whole platform: everyone reads them, only **admins** create or edit them.

Every change is audited with the values before and after, and the acting account's id (so an officer's
audit page shows it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.guards import ensure_in_scope
from survey.auth.services import Principal
from survey.db.audited import audit, audit_change
from survey.db.models import ProcedureField, Role, ServicePoint, Unit, UnitLevel, pk
from survey.errors import ForbiddenError, NotFoundError
from survey.i18n import N_
from survey.officer.forms import FormError
from survey.receipts import codes

CHANGERS = (Role.admin, Role.officer)
NO_CHANGE = N_("Your role does not allow changes here.")


def can_change(viewer: Principal) -> bool:
    return viewer.role in CHANGERS


def ensure_changer(viewer: Principal) -> None:
    if not can_change(viewer):
        raise ForbiddenError(NO_CHANGE)


def ensure_admin(viewer: Principal) -> None:
    if viewer.role != Role.admin:
        raise ForbiddenError(N_("Only administrators change procedure fields."))


def _subtree(viewer: Principal) -> Any:
    return col(Unit.path).startswith(viewer.unit_path, autoescape=True)


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitRow:
    id: int
    code: str
    name_vi: str
    name_en: str
    level_vi: str
    level_en: str
    kind: str | None
    active: bool
    depth: int
    points: int
    parent_id: int | None

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi

    def level(self, locale: str) -> str:
        return self.level_en if locale == "en" else self.level_vi


def unit_tree(session: Session, *, viewer: Principal, root_id: int | None = None) -> list[UnitRow]:
    """The units of ``viewer``'s subtree (or of ``root_id``'s, inside it), each under its parent, depth-first."""
    root = ensure_in_scope(session, viewer, root_id if root_id is not None else viewer.unit_id)
    points = select(col(ServicePoint.unit_id), func.count().label("n")).group_by(col(ServicePoint.unit_id)).subquery()
    rows = session.execute(
        select(Unit, UnitLevel, func.coalesce(points.c.n, 0))
        .join(UnitLevel, col(UnitLevel.id) == col(Unit.level_id))
        .outerjoin(points, points.c.unit_id == col(Unit.id))
        .where(col(Unit.path).startswith(root.path, autoescape=True))
    ).all()
    by_parent: dict[int | None, list[tuple[Unit, UnitLevel, int]]] = {}
    for unit, level, n in rows:
        by_parent.setdefault(unit.parent_id, []).append((unit, level, int(n)))
    out: list[UnitRow] = []

    def add(unit: Unit, level: UnitLevel, n: int, depth: int) -> None:
        out.append(
            UnitRow(
                id=pk(unit),
                code=unit.code,
                name_vi=unit.name_vi,
                name_en=unit.name_en,
                level_vi=level.name_vi,
                level_en=level.name_en,
                kind=unit.kind,
                active=unit.active,
                depth=depth,
                points=n,
                parent_id=unit.parent_id,
            )
        )
        for child in sorted(by_parent.get(unit.id, []), key=lambda r: (r[0].code, r[0].name_vi)):
            add(*child, depth + 1)

    top = next((r for r in rows if r[0].id == root.id), None)
    if top is not None:
        add(top[0], top[1], int(top[2]), 0)
    return out


@dataclass(frozen=True)
class UnitDetail:
    unit: Unit
    level: UnitLevel
    parent: Unit | None
    points: list[ServicePoint]
    children: list[UnitRow]
    parent_in_scope: bool


def unit_detail(session: Session, *, viewer: Principal, unit_id: int) -> UnitDetail:
    unit = ensure_in_scope(session, viewer, unit_id)
    level = session.get(UnitLevel, unit.level_id)
    assert level is not None
    parent = session.get(Unit, unit.parent_id) if unit.parent_id else None
    points = list(
        session.scalars(
            select(ServicePoint).where(col(ServicePoint.unit_id) == unit.id).order_by(col(ServicePoint.code))
        )
    )
    children = [r for r in unit_tree(session, viewer=viewer, root_id=unit_id) if r.parent_id == unit.id]
    return UnitDetail(
        unit=unit,
        level=level,
        parent=parent,
        points=points,
        children=children,
        parent_in_scope=parent is not None and viewer.covers(parent.path),
    )


def levels(session: Session) -> list[UnitLevel]:
    return list(session.scalars(select(UnitLevel).order_by(col(UnitLevel.depth), col(UnitLevel.code))))


# --- units --------------------------------------------------------------------------------------------------

KIND_MAX = 40
NAME_MAX = 200


def _unit_state(unit: Unit) -> dict[str, Any]:
    return {"name_vi": unit.name_vi, "name_en": unit.name_en, "kind": unit.kind, "active": unit.active}


def check_names(name_vi: str, name_en: str) -> list[FormError]:
    errors = []
    if not name_vi:
        errors.append(FormError("name_vi", N_("Enter the name in Vietnamese.")))
    elif len(name_vi) > NAME_MAX:
        errors.append(FormError("name_vi", N_("Use at most {count} characters."), {"count": NAME_MAX}))
    if len(name_en) > NAME_MAX:
        errors.append(FormError("name_en", N_("Use at most {count} characters."), {"count": NAME_MAX}))
    return errors


def update_unit(
    session: Session, *, viewer: Principal, unit_id: int, name_vi: str, name_en: str, kind: str, active: bool
) -> tuple[Unit | None, list[FormError]]:
    """Change a unit of ``viewer``'s subtree; returns the unit, or the form's problems (nothing changed)."""
    ensure_changer(viewer)
    unit = ensure_in_scope(session, viewer, unit_id)
    errors = check_names(name_vi, name_en)
    if len(kind) > KIND_MAX:
        errors.append(FormError("kind", N_("Use at most {count} characters."), {"count": KIND_MAX}))
    if not active and unit.id == viewer.unit_id:
        errors.append(FormError("active", N_("You cannot deactivate the unit your account belongs to.")))
    if errors:
        return None, errors
    before = _unit_state(unit)
    unit.name_vi, unit.name_en, unit.kind, unit.active = name_vi, name_en or name_vi, kind or None, active
    after = _unit_state(unit)
    audit_change(
        session, actor=viewer.username, user_id=viewer.id, entity="unit", entity_id=unit.id, before=before, after=after
    )
    session.commit()
    return unit, []


# --- service points -----------------------------------------------------------------------------------------

POINT_CODE_MAX = 60


def _point_state(point: ServicePoint) -> dict[str, Any]:
    return {"code": point.code, "name_vi": point.name_vi, "name_en": point.name_en, "active": point.active}


def _check_point(
    session: Session, *, code: str, name_vi: str, name_en: str, point_id: int | None = None
) -> list[FormError]:
    errors = []
    if not code:
        errors.append(FormError("code", N_("Enter a code.")))
    elif len(code) > POINT_CODE_MAX or not code_ok(code):
        errors.append(FormError("code", CODE_RULE, {"count": POINT_CODE_MAX}))
    else:
        taken = session.scalars(select(ServicePoint).where(col(ServicePoint.code) == code)).first()
        if taken is not None and taken.id != point_id:
            errors.append(FormError("code", N_("Another service point already has this code.")))
    return errors + check_names(name_vi, name_en)


CODE_RULE = N_("A code has at most {count} characters: letters, digits, dots, hyphens or underscores.")


def code_ok(code: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "._-") for c in code)


def ensure_point_in_scope(session: Session, viewer: Principal, point_id: int) -> tuple[ServicePoint, Unit]:
    point = session.get(ServicePoint, point_id)
    if point is None:
        raise NotFoundError(N_("There is no such service point."))
    unit = ensure_in_scope(session, viewer, point.unit_id)
    return point, unit


def create_point(
    session: Session, *, viewer: Principal, unit_id: int, code: str, name_vi: str, name_en: str, active: bool
) -> tuple[ServicePoint | None, list[FormError]]:
    ensure_changer(viewer)
    unit = ensure_in_scope(session, viewer, unit_id)
    errors = _check_point(session, code=code, name_vi=name_vi, name_en=name_en)
    if errors:
        return None, errors
    point = ServicePoint(
        unit_id=pk(unit),
        code=code,
        name_vi=name_vi,
        name_en=name_en or name_vi,
        counter_token=codes.new_counter_token(),
        active=active,
    )
    session.add(point)
    session.flush()
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="create",
        entity="service_point",
        entity_id=point.id,
        after={**_point_state(point), "unit": unit.code},
    )
    session.commit()
    return point, []


def update_point(
    session: Session, *, viewer: Principal, point_id: int, code: str, name_vi: str, name_en: str, active: bool
) -> tuple[ServicePoint | None, list[FormError]]:
    ensure_changer(viewer)
    point, _unit = ensure_point_in_scope(session, viewer, point_id)
    errors = _check_point(session, code=code, name_vi=name_vi, name_en=name_en, point_id=point_id)
    if errors:
        return None, errors
    before = _point_state(point)
    point.code, point.name_vi, point.name_en, point.active = code, name_vi, name_en or name_vi, active
    after = _point_state(point)
    audit_change(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        entity="service_point",
        entity_id=point.id,
        before=before,
        after=after,
    )
    session.commit()
    return point, []


# --- procedure fields ---------------------------------------------------------------------------------------

FIELD_CODE_MAX = 40


def list_fields(session: Session) -> list[ProcedureField]:
    return list(session.scalars(select(ProcedureField).order_by(col(ProcedureField.code))))


def get_field(session: Session, *, field_id: int) -> ProcedureField:
    fld = session.get(ProcedureField, field_id)
    if fld is None:
        raise NotFoundError(N_("There is no such procedure field."))
    return fld


def save_field(
    session: Session, *, viewer: Principal, field_id: int | None, code: str, name_vi: str, name_en: str
) -> tuple[ProcedureField | None, list[FormError]]:
    """Create (``field_id`` None) or change a procedure field; admins only."""
    ensure_admin(viewer)
    fld = get_field(session, field_id=field_id) if field_id is not None else None
    errors = []
    if not code:
        errors.append(FormError("code", N_("Enter a code.")))
    elif len(code) > FIELD_CODE_MAX or not code_ok(code):
        errors.append(FormError("code", CODE_RULE, {"count": FIELD_CODE_MAX}))
    else:
        taken = session.scalars(select(ProcedureField).where(col(ProcedureField.code) == code)).first()
        if taken is not None and (fld is None or taken.id != fld.id):
            errors.append(FormError("code", N_("Another procedure field already has this code.")))
    errors += check_names(name_vi, name_en)
    if errors:
        return None, errors
    before = None if fld is None else {"code": fld.code, "name_vi": fld.name_vi, "name_en": fld.name_en}
    if fld is None:
        fld = ProcedureField(code=code, name_vi=name_vi, name_en=name_en or name_vi)
        session.add(fld)
    else:
        fld.code, fld.name_vi, fld.name_en = code, name_vi, name_en or name_vi
    session.flush()
    after = {"code": fld.code, "name_vi": fld.name_vi, "name_en": fld.name_en}
    if after != before:
        audit(
            session,
            actor=viewer.username,
            user_id=viewer.id,
            action="create" if before is None else "update",
            entity="field",
            entity_id=fld.id,
            before=before,
            after=after,
        )
    session.commit()
    return fld, []
