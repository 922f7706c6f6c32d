"""Survey waves as the staff pages see them: list, create, open and close, plan, and quota progress.

Who may do what:

- A wave **touches** a subtree when one of its units lies in it. Everyone signed in reads the waves that
  touch their subtree, and their quota progress restricted to that subtree (leaders included).
- **Admins and officers** create waves over units of their subtree, and open, close and plan the waves
  whose units **all** lie in their subtree: a district officer cannot close a province-wide wave.
- A wave goes draft -> open -> closed, never back: the codes of a closed wave answer "this survey has
  closed" in the citizen journey.

Every change is audited with the acting account's id.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.services import Principal
from survey.csvsafe import BOM, csv_writer
from survey.db.audited import audit
from survey.db.models import (
    AuditLog,
    Questionnaire,
    QuestionnaireVersion,
    Quota,
    ReceiptCode,
    Role,
    Unit,
    VersionStatus,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.errors import ConflictError, ForbiddenError, NotFoundError
from survey.fieldwork.plans import WavePlan, plan_wave, save_plan
from survey.fieldwork.progress import WaveProgress, wave_progress
from survey.i18n import N_
from survey.officer.forms import FormError
from survey.officer.units.services import code_ok
from survey.officer.waves.forms import PlanForm, WaveForm

CHANNELS = ("receipt", "counter")
WAVE_STATUS_LABELS = {
    WaveStatus.draft.value: N_("Draft"),
    WaveStatus.open.value: N_("Open"),
    WaveStatus.closed.value: N_("Closed"),
}
CHANNEL_LABELS = {"receipt": N_("Receipt codes"), "counter": N_("Counter QR codes")}
CODE_MAX = 60


def can_change(viewer: Principal) -> bool:
    return viewer.role in (Role.admin, Role.officer)


# --- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaveRow:
    id: int
    code: str
    name_vi: str
    name_en: str
    starts_on: date
    ends_on: date
    status: str
    units: int
    units_in_scope: int

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi

    @property
    def whole(self) -> bool:
        """Whether every unit of the wave lies in the viewer's subtree (then an officer may change it)."""
        return self.units == self.units_in_scope


def list_waves(session: Session, *, viewer: Principal) -> list[WaveRow]:
    """The waves touching ``viewer``'s subtree, newest first."""
    inside = case((col(Unit.path).startswith(viewer.unit_path, autoescape=True), 1), else_=0)
    rows = session.execute(
        select(Wave, func.count(), func.sum(inside))
        .join(WaveUnit, col(WaveUnit.wave_id) == col(Wave.id))
        .join(Unit, col(Unit.id) == col(WaveUnit.unit_id))
        .group_by(col(Wave.id))
        .having(func.sum(inside) > 0)
        .order_by(col(Wave.starts_on).desc(), col(Wave.id).desc())
    ).all()
    return [
        WaveRow(pk(w), w.code, w.name_vi, w.name_en, w.starts_on, w.ends_on, w.status, int(n), int(k or 0))
        for w, n, k in rows
    ]


def _unit_paths(session: Session, wave_id: int) -> list[str]:
    return list(
        session.scalars(
            select(col(Unit.path))
            .join(WaveUnit, col(WaveUnit.unit_id) == col(Unit.id))
            .where(col(WaveUnit.wave_id) == wave_id)
        )
    )


def wave_for(session: Session, *, viewer: Principal, wave_id: int, change: bool = False) -> Wave:
    """The wave if ``viewer`` may read it (or change it, with ``change``): 404 if none, 403 outside the scope."""
    wave = session.get(Wave, wave_id)
    if wave is None:
        raise NotFoundError(N_("There is no such wave."))
    paths = _unit_paths(session, wave_id)
    if not any(viewer.covers(p) for p in paths):
        raise ForbiddenError(N_("This wave is outside your scope."))
    if change:
        if not can_change(viewer):
            raise ForbiddenError(N_("Your role does not allow changes here."))
        if not all(viewer.covers(p) for p in paths):
            raise ForbiddenError(
                N_("This wave reaches units outside your scope: only an account over all of them changes it.")
            )
    return wave


@dataclass(frozen=True)
class WaveSummary:
    wave: Wave
    questionnaire: str
    units: list[Unit]
    units_total: int
    quotas: int
    target: int
    codes_issued: int
    can_change: bool

    @property
    def channels(self) -> list[str]:
        return [c.strip() for c in self.wave.channels.split(",") if c.strip()]


def wave_summary(session: Session, *, viewer: Principal, wave_id: int) -> WaveSummary:
    wave = wave_for(session, viewer=viewer, wave_id=wave_id)
    version = session.execute(
        select(col(Questionnaire.code), col(QuestionnaireVersion.version))
        .join(Questionnaire, col(Questionnaire.id) == col(QuestionnaireVersion.questionnaire_id))
        .where(col(QuestionnaireVersion.id) == wave.questionnaire_version_id)
    ).one()
    units = list(
        session.scalars(
            select(Unit)
            .join(WaveUnit, col(WaveUnit.unit_id) == col(Unit.id))
            .where(col(WaveUnit.wave_id) == wave_id)
            .order_by(col(Unit.path))
        )
    )
    visible = [u for u in units if viewer.covers(u.path)]
    ids = [pk(u) for u in visible]
    quotas, target = session.execute(
        select(func.count(), func.coalesce(func.sum(Quota.target), 0)).where(
            col(Quota.wave_id) == wave_id, col(Quota.unit_id).in_(ids)
        )
    ).one()
    issued = session.scalar(
        select(func.count()).where(col(ReceiptCode.wave_id) == wave_id, col(ReceiptCode.unit_id).in_(ids))
    )
    return WaveSummary(
        wave=wave,
        questionnaire=f"{version[0]} v{version[1]}",
        units=visible,
        units_total=len(units),
        quotas=int(quotas),
        target=int(target),
        codes_issued=int(issued or 0),
        can_change=can_change(viewer) and len(visible) == len(units),
    )


@dataclass(frozen=True, slots=True)
class VersionChoice:
    id: int
    label: str


def published_versions(session: Session) -> list[VersionChoice]:
    rows = session.execute(
        select(QuestionnaireVersion, col(Questionnaire.code), col(QuestionnaireVersion.version), Questionnaire)
        .join(Questionnaire, col(Questionnaire.id) == col(QuestionnaireVersion.questionnaire_id))
        .where(col(QuestionnaireVersion.status) == VersionStatus.published.value)
        .order_by(col(Questionnaire.code), col(QuestionnaireVersion.version).desc())
    ).all()
    return [VersionChoice(pk(q_v), f"{q.title_vi} / {q.title_en} ({code} v{v})") for q_v, code, v, q in rows]


# --- creating -----------------------------------------------------------------------------------------------


def _expand(session: Session, *, viewer: Principal, form: WaveForm) -> tuple[set[int], list[FormError]]:
    """The units chosen one by one, plus "every unit of level L under X" (all inside ``viewer``'s subtree)."""
    errors: list[FormError] = []
    chosen = set(form.unit_ids)
    if form.under_id is not None or form.level_id is not None:
        if form.under_id is None or form.level_id is None:
            errors.append(FormError("under_id", N_("Choose both a unit and a level, or neither.")))
        else:
            under = session.get(Unit, form.under_id)
            if under is None or not viewer.covers(under.path):
                errors.append(FormError("under_id", N_("This unit is outside your scope.")))
            else:
                chosen |= set(
                    session.scalars(
                        select(col(Unit.id)).where(
                            col(Unit.path).startswith(under.path, autoescape=True),
                            col(Unit.id) != under.id,
                            col(Unit.level_id) == form.level_id,
                            col(Unit.active),
                        )
                    )
                )
    if chosen:
        paths = dict(
            session.execute(select(col(Unit.id), col(Unit.path)).where(col(Unit.id).in_(sorted(chosen)))).all()
        )
        if len(paths) != len(chosen) or not all(viewer.covers(p) for p in paths.values()):
            raise ForbiddenError(N_("This unit is outside your scope."))
    elif not errors:
        errors.append(FormError("units", N_("Choose at least one unit for the wave.")))
    return chosen, errors


def create_wave(session: Session, *, viewer: Principal, form: WaveForm) -> tuple[Wave | None, list[FormError]]:
    if not can_change(viewer):
        raise ForbiddenError(N_("Your role does not allow changes here."))
    errors = list(form.errors)
    if form.code:
        if len(form.code) > CODE_MAX or not code_ok(form.code):
            errors.append(
                FormError(
                    "code",
                    N_("A code has at most {count} characters: letters, digits, dots, hyphens or underscores."),
                    {"count": CODE_MAX},
                )
            )
        elif session.scalars(select(Wave).where(col(Wave.code) == form.code)).first() is not None:
            errors.append(FormError("code", N_("Another wave already has this code.")))
    published = {v.id for v in published_versions(session)}
    if form.version_id is not None and form.version_id not in published:
        errors.append(FormError("version_id", N_("Choose a published questionnaire version.")))
    units, unit_errors = _expand(session, viewer=viewer, form=form)
    errors += unit_errors
    if errors:
        return None, errors
    assert form.version_id is not None and form.starts_on is not None and form.ends_on is not None
    wave = Wave(
        code=form.code,
        name_vi=form.name_vi,
        name_en=form.name_en or form.name_vi,
        questionnaire_version_id=form.version_id,
        starts_on=form.starts_on,
        ends_on=form.ends_on,
        status=WaveStatus.draft.value,
        channels=",".join(c for c in CHANNELS if c in form.channels),
        min_responses=form.min_responses,
        target=form.target,
    )
    session.add(wave)
    session.flush()
    session.execute(insert(WaveUnit), [{"wave_id": wave.id, "unit_id": u} for u in sorted(units)])
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action="create",
        entity="wave",
        entity_id=wave.id,
        after={
            "code": wave.code,
            "period": f"{wave.starts_on} – {wave.ends_on}",
            "questionnaire_version_id": wave.questionnaire_version_id,
            "units": len(units),
            "channels": wave.channels,
            "min_responses": wave.min_responses,
            "target": wave.target,
        },
    )
    session.commit()
    return wave, []


# --- opening and closing ------------------------------------------------------------------------------------

_MOVES = {"open": (WaveStatus.draft, WaveStatus.open), "close": (WaveStatus.open, WaveStatus.closed)}


def move_wave(session: Session, *, viewer: Principal, wave_id: int, to: str) -> Wave:
    """Open a draft wave or close an open one (409 for any other move)."""
    wave = wave_for(session, viewer=viewer, wave_id=wave_id, change=True)
    source, target = _MOVES[to]
    if wave.status != source.value:
        if to == "open":
            raise ConflictError(N_("Only a draft wave can be opened; a closed wave stays closed."))
        raise ConflictError(N_("Only an open wave can be closed."))
    wave.status = target.value
    audit(
        session,
        actor=viewer.username,
        user_id=viewer.id,
        action=to,
        entity="wave",
        entity_id=wave.id,
        before={"status": source.value},
        after={"status": target.value},
    )
    session.commit()
    return wave


# --- planning -----------------------------------------------------------------------------------------------


def preview_plan(session: Session, *, viewer: Principal, wave_id: int, form: PlanForm) -> WavePlan:
    wave = wave_for(session, viewer=viewer, wave_id=wave_id, change=True)
    return plan_wave(
        session,
        wave_code=wave.code,
        margin=form.margin,
        deff=form.deff,
        response_rate=form.response_rate,
        method=form.method,
        frame_from=form.frame_from,
        frame_to=form.frame_to,
    )


def store_plan(session: Session, *, viewer: Principal, wave_id: int, form: PlanForm) -> int:
    """Replace the wave's quotas with the plan of ``form``; audited under the viewer's account."""
    wave = wave_for(session, viewer=viewer, wave_id=wave_id, change=True)
    if wave.status == WaveStatus.closed.value:
        raise ConflictError(N_("A closed wave cannot be planned again."))
    plan = preview_plan(session, viewer=viewer, wave_id=wave_id, form=form)
    count = save_plan(session, plan, actor=viewer.username)
    for entry in session.new:  # save_plan audits with the actor's name only: add the account
        if isinstance(entry, AuditLog) and entry.user_id is None and entry.actor == viewer.username:
            entry.user_id = viewer.id
    session.commit()
    return count


# --- progress -----------------------------------------------------------------------------------------------

STATUS_LABELS = {
    0: N_("Not planned"),
    1: N_("Behind"),
    2: N_("On track"),
    3: N_("Done"),
    4: N_("Over the target"),
}


def progress(session: Session, *, viewer: Principal, wave_id: int, today: date) -> tuple[Wave, WaveProgress]:
    wave = wave_for(session, viewer=viewer, wave_id=wave_id)
    return wave, wave_progress(session, wave_code=wave.code, today=today, unit_path=viewer.unit_path)


def _rate(value: float | None) -> Decimal | None:
    return None if value is None else _one_decimal(100 * value)


def _one_decimal(value: float) -> Decimal:
    return Decimal(f"{value:.1f}")


def progress_csv(result: WaveProgress) -> str:
    """The progress per unit, then per stratum, as CSV (UTF-8 with a BOM, so Excel reads the diacritics).

    Names and codes are text, defused by `survey.csvsafe`; counts and rates are numbers.
    """
    buf = io.StringIO()
    out = csv_writer(buf)
    out.writerow(
        [
            "level",
            "unit_code",
            "unit_name",
            "field_code",
            "population",
            "target",
            "achieved",
            "expected_by_today",
            "codes_issued",
            "response_rate_pct",
            "status",
        ]
    )
    rows: Iterable[Any] = result.units
    for u in rows:
        out.writerow(
            [
                "unit",
                u.unit_code,
                u.unit_name_vi,
                "",
                u.population,
                u.target,
                u.achieved,
                _one_decimal(u.expected_by_now),
                u.codes_issued,
                _rate(u.response_rate),
                u.status.label,
            ]
        )
    for s in result.strata:
        out.writerow(
            [
                "stratum",
                s.unit_code,
                s.unit_name_vi,
                s.field_code,
                s.population,
                s.target,
                s.achieved,
                _one_decimal(s.expected_by_now),
                s.codes_issued,
                _rate(s.response_rate),
                s.status.label,
            ]
        )
    return BOM + buf.getvalue()
