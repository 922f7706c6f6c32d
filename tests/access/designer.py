"""Routes of the questionnaire designer and of the printed material (posters, receipt codes)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.db.audited import publish_questionnaire
from survey.db.models import QuestionnaireVersion, ReceiptCode, ServicePoint, Wave, WaveUnit, pk
from survey.officer.designer import forms
from survey.officer.designer.services import draft_hash
from survey.questionnaires.spec import load_file
from survey.receipts import codes
from tests.access import LOGIN, Call, Route, get, unit_for
from tests.conftest import StaffWorld


def form_of(definition: dict[str, Any]) -> dict[str, str]:
    """What the edit page would send back unchanged for ``definition``."""
    view = forms.form_view(definition)
    data = {"title_vi": view.title_vi, "title_en": view.title_en, "sections": str(len(view.sections))}
    data |= {"description_vi": view.description_vi, "description_en": view.description_en}
    for s in view.sections:
        p = f"s{s.n}_"
        data |= {f"{p}id": s.id, f"{p}title_vi": s.title_vi, f"{p}title_en": s.title_en, f"{p}items": str(len(s.items))}
        if s.element:
            data[f"{p}element"] = "1"
        for it in s.items:
            q = f"{p}i{it.n}_"
            for name in ("id", "type", "role", "scale", "text_vi", "text_en", "hint_vi", "hint_en", "options"):
                data[q + name] = getattr(it, name)
            data[q + "max_choices"], data[q + "max_length"] = it.max_choices, it.max_length
            if it.required:
                data[q + "required"] = "1"
            if it.sensitive:
                data[q + "sensitive"] = "1"
    return data


def _draft(engine: Engine) -> int:
    """A fresh draft of a questionnaire of its own (a copy of the quick rating)."""
    spec = load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml")
    code = f"acc-{secrets.token_hex(4)}"
    with Session(engine) as s:
        published = publish_questionnaire(s, spec.model_copy(update={"code": code}), actor="test")
        definition = {**spec.model_dump(mode="json", exclude_none=True), "code": code, "version": 2}
        draft = QuestionnaireVersion(
            questionnaire_id=published.questionnaire_id,
            version=2,
            definition=definition,
            content_hash=draft_hash(definition),
        )
        s.add(draft)
        s.commit()
        return pk(draft)


def _version_call(action: str, check_of: str = "") -> object:
    def call(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
        version_id = _draft(engine)
        url = f"/staff/questionnaires/versions/{version_id}/{action}".rstrip("/")
        if action == "diff":
            return Call("GET", f"{url}?against={version_id}")
        if check_of == "":
            return Call("GET", url)

        def check(engine: Engine, allowed: bool) -> None:
            with Session(engine) as s:
                version = s.get(QuestionnaireVersion, version_id)
            if check_of == "deleted":
                assert (version is None) == allowed, role
            elif check_of == "published":
                assert version is not None and (version.status == "published") == allowed, role
            else:
                assert version is not None and (version.definition["title"]["en"] == "Changed") == allowed, role

        data: dict[str, str] = {}
        if check_of == "edited":
            with Session(engine) as s:
                version = s.get(QuestionnaireVersion, version_id)
                assert version is not None
                data = form_of(version.definition) | {"title_en": "Changed"}
        return Call("POST", url, data, check)

    return call


def _new_draft(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    code = f"accnew-{secrets.token_hex(4)}"

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            made = [v for v in s.scalars(select(QuestionnaireVersion)).all() if v.definition.get("code") == code]
        assert bool(made) == allowed, role

    return Call("POST", "/staff/questionnaires/new", {"source": "template:quick_rating.yaml", "code": code}, check)


def _point(engine: Engine, unit_id: int) -> int:
    with Session(engine) as s:
        point = ServicePoint(
            unit_id=unit_id,
            code=f"P{secrets.token_hex(5)}",
            name_vi="Quầy thử",
            name_en="Test counter",
            counter_token=codes.new_counter_token(),
        )
        s.add(point)
        s.commit()
        return pk(point)


def _poster(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    return Call("GET", f"/staff/points/{_point(engine, unit_for(world, role, scope))}/poster")


def _unit_posters(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    unit_id = unit_for(world, role, scope)
    _point(engine, unit_id)
    return Call("GET", f"/staff/units/{unit_id}/posters")


def receipt_wave(engine: Engine, unit_ids: list[int]) -> int:
    """An open wave taking receipt codes in ``unit_ids``."""
    spec = load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml")
    today = datetime.now(UTC).date()
    with Session(engine) as s:
        version = publish_questionnaire(s, spec, actor="test")
        wave = Wave(
            code=f"w{secrets.token_hex(5)}",
            name_vi="Đợt",
            name_en="Wave",
            questionnaire_version_id=pk(version),
            starts_on=today - timedelta(days=5),
            ends_on=today + timedelta(days=60),
            status="open",
            channels="receipt",
        )
        s.add(wave)
        s.flush()
        s.execute(insert(WaveUnit), [{"wave_id": wave.id, "unit_id": u} for u in unit_ids])
        s.commit()
        return pk(wave)


def _issue(world: StaffWorld, engine: Engine, role: str, scope: str) -> Call:
    unit_id = unit_for(world, role, scope)
    wave_id = receipt_wave(engine, [unit_id])

    def check(engine: Engine, allowed: bool) -> None:
        with Session(engine) as s:
            n = s.scalar(select(func.count()).where(col(ReceiptCode.wave_id) == wave_id))
        issued = role in ("admin", "officer") and scope == "in"  # answered with a page (200), not a redirect
        assert n == (3 if issued else 0), (role, scope, n)

    return Call("POST", "/staff/receipt-codes", {"wave_id": str(wave_id), "unit_id": str(unit_id), "count": "3"}, check)


_READ: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 200}
_EDITORS: dict[str, int | str] = {"anonymous": LOGIN, "admin": 200, "officer": 200, "leader": 403}
_CHANGE: dict[str, int | str] = {"anonymous": 401, "admin": 303, "officer": 303, "leader": 403}
_SCOPED_READ: dict[str, int | str] = {
    "anonymous/in": LOGIN,
    "anonymous/out": LOGIN,
    "admin/in": 200,
    "admin/out": 403,
    "officer/in": 200,
    "officer/out": 403,
    "leader/in": 403,
    "leader/out": 403,
}
# Issuing answers with the batch itself (200): the codes exist only in that response.
_SCOPED_ISSUE: dict[str, int | str] = {
    **{k: v for k, v in _SCOPED_READ.items() if not k.startswith("anonymous")},
    "anonymous/in": 401,
    "anonymous/out": 401,
}
V = "/staff/questionnaires/versions/{version_id:int}"

ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/staff/questionnaires"): Route(get("/staff/questionnaires"), _READ, notes="questionnaires are shared"),
    ("POST", "/staff/questionnaires/new"): Route(_new_draft, _CHANGE),
    ("GET", V): Route(_version_call(""), _READ),  # type: ignore[arg-type]
    ("GET", f"{V}/edit"): Route(_version_call("edit"), _EDITORS),  # type: ignore[arg-type]
    ("POST", f"{V}/edit"): Route(_version_call("edit", "edited"), _CHANGE),  # type: ignore[arg-type]
    ("GET", f"{V}/preview"): Route(_version_call("preview"), _READ),  # type: ignore[arg-type]
    ("POST", f"{V}/publish"): Route(_version_call("publish", "published"), _CHANGE),  # type: ignore[arg-type]
    ("GET", f"{V}/diff"): Route(_version_call("diff"), _READ),  # type: ignore[arg-type]
    ("POST", f"{V}/delete"): Route(_version_call("delete", "deleted"), _CHANGE),  # type: ignore[arg-type]
    ("GET", "/staff/points/{point_id:int}/poster"): Route(_poster, _SCOPED_READ, scoped=True),
    ("GET", "/staff/units/{unit_id:int}/posters"): Route(_unit_posters, _SCOPED_READ, scoped=True),
    ("GET", "/staff/receipt-codes"): Route(get("/staff/receipt-codes"), _EDITORS),
    ("POST", "/staff/receipt-codes"): Route(_issue, _SCOPED_ISSUE, scoped=True, notes="scope checked on the unit"),
}
