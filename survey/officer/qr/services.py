"""Counter posters and receipt-code batches: every query, scope check and write. No HTTP here.

Posters carry the counter's URL (``{public_url}/c/{counter_token}``) as an inline SVG QR code. Receipt codes
are issued with ``survey.db.audited.issue_receipt_codes``: only their hashes are stored, so the batch returned
here is the one copy; nothing else (no file, no session) keeps it.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.guards import ensure_in_scope
from survey.auth.services import Principal
from survey.csvsafe import csv_writer
from survey.db.audited import issue_receipt_codes
from survey.db.models import (
    AuditLog,
    Channel,
    ProcedureField,
    ReceiptCode,
    ServicePoint,
    Unit,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.errors import ForbiddenError, NotFoundError, SipasError
from survey.i18n import N_
from survey.officer.forms import FormError
from survey.officer.services import UnitChoice, unit_choices
from survey.receipts import codes
from survey.receipts.qr import qr_svg

MAX_BATCH = 1000
# Printed in both languages whatever the page's language: read them with gettext_for("vi") and ("en").
POSTER_CALL = N_("Were you satisfied with our service today?")
POSTER_STEPS = (
    N_("Open your phone's camera and scan this QR code."),
    N_("Answer a few questions, less than a minute. We do not ask your name or any personal details."),
)
SLIP_TEXT = N_("Scan to rate our service (one-time code).")
_SVG_HEAD = re.compile(rb"^<\?xml[^>]*>\s*")
_SIZE = re.compile(rb'\s(width|height)="[^"]*"')


def inline_svg(data: str, *, label: str) -> Markup:
    """``survey.receipts.qr.qr_svg`` ready to sit in a page: no XML prolog, no fixed size or duplicate id,
    a text alternative."""
    svg = _SVG_HEAD.sub(b"", qr_svg(data))
    svg = _SIZE.sub(b"", svg, count=2).replace(b' id="qr-path"', b"")
    escaped = label.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    svg = svg.replace(b"<svg ", f'<svg class="qr" role="img" aria-label="{escaped}" '.encode(), 1)
    return Markup(svg.decode("utf-8"))  # noqa: S704 - our own SVG from the qrcode library, label escaped


def counter_url(public_url: str, token: str) -> str:
    return f"{public_url}/c/{token}"


def receipt_url(public_url: str, code: str) -> str:
    return f"{public_url}/r/{code}"


@dataclass(frozen=True, slots=True)
class Poster:
    point_id: int
    point_name_vi: str
    point_name_en: str
    unit_name_vi: str
    unit_name_en: str
    url: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class UnitPosters:
    unit_id: int
    unit_name_vi: str
    unit_name_en: str
    posters: list[Poster]

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi


def _poster(point: ServicePoint, unit: Unit, public_url: str) -> Poster:
    url = counter_url(public_url, point.counter_token)
    return Poster(
        point_id=pk(point),
        point_name_vi=point.name_vi,
        point_name_en=point.name_en,
        unit_name_vi=unit.name_vi,
        unit_name_en=unit.name_en,
        url=url,
        svg=inline_svg(url, label=f"QR: {url}"),
    )


def poster(session: Session, *, viewer: Principal, point_id: int, public_url: str) -> Poster:
    """The poster of one counter of ``viewer``'s subtree (404 if there is none, 403 outside the subtree)."""
    point = session.get(ServicePoint, point_id)
    if point is None:
        raise NotFoundError(N_("There is no such counter."))
    unit = ensure_in_scope(session, viewer, point.unit_id)
    return _poster(point, unit, public_url)


def unit_posters(session: Session, *, viewer: Principal, unit_id: int, public_url: str) -> UnitPosters:
    """The posters of every active counter of one unit (not of the units below it)."""
    unit = ensure_in_scope(session, viewer, unit_id)
    points = session.scalars(
        select(ServicePoint)
        .where(col(ServicePoint.unit_id) == unit_id, col(ServicePoint.active))
        .order_by(col(ServicePoint.code))
    ).all()
    return UnitPosters(
        unit_id=unit_id,
        unit_name_vi=unit.name_vi,
        unit_name_en=unit.name_en,
        posters=[_poster(p, unit, public_url) for p in points],
    )


# --- Receipt codes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Choice:
    id: int
    code: str
    name_vi: str
    name_en: str

    def label(self, locale: str) -> str:
        return f"{self.name_en if locale == 'en' else self.name_vi} ({self.code})"


@dataclass(frozen=True, slots=True)
class CodeChoices:
    waves: list[Choice]
    units: list[UnitChoice]
    fields: list[Choice]


def code_choices(session: Session, *, viewer: Principal) -> CodeChoices:
    """Waves that take receipt codes and survey a unit of ``viewer``'s subtree; the subtree's units; all fields."""
    waves = session.scalars(
        select(Wave)
        .where(
            col(Wave.status) != WaveStatus.closed.value,
            col(Wave.id).in_(
                select(col(WaveUnit.wave_id))
                .join(Unit, col(Unit.id) == col(WaveUnit.unit_id))
                .where(col(Unit.path).startswith(viewer.unit_path, autoescape=True))
            ),
        )
        .order_by(col(Wave.starts_on).desc(), col(Wave.code))
    ).all()
    fields = session.scalars(select(ProcedureField).order_by(col(ProcedureField.code))).all()
    return CodeChoices(
        waves=[Choice(pk(w), w.code, w.name_vi, w.name_en) for w in waves if w.allows(Channel.receipt)],
        units=unit_choices(session, viewer=viewer),
        fields=[Choice(pk(f), f.code, f.name_vi, f.name_en) for f in fields],
    )


@dataclass(frozen=True, slots=True)
class CodeRequest:
    wave_id: int | None
    unit_id: int | None
    field_id: int | None
    count: int | None

    @property
    def kept(self) -> dict[str, Any]:
        return {"wave_id": self.wave_id, "unit_id": self.unit_id, "field_id": self.field_id, "count": self.count}


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else None
    value = str(value or "").strip()
    return int(value) if value.isdigit() and len(value) < 10 else None


def parse_request(data: dict[str, Any]) -> tuple[CodeRequest, list[FormError]]:
    form = CodeRequest(_int(data, "wave_id"), _int(data, "unit_id"), _int(data, "field_id"), _int(data, "count"))
    errors = []
    if form.wave_id is None:
        errors.append(FormError("wave_id", N_("Choose a wave.")))
    if form.unit_id is None:
        errors.append(FormError("unit_id", N_("Choose a unit.")))
    if form.count is None or not 1 <= form.count <= MAX_BATCH:
        errors.append(FormError("count", N_("Enter a number of codes from 1 to {max}."), {"max": MAX_BATCH}))
    return form, errors


@dataclass(frozen=True, slots=True)
class Slip:
    code: str
    pretty: str
    url: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class Batch:
    wave: Choice
    unit_name_vi: str
    unit_name_en: str
    field: Choice | None
    expires_in_days: int
    slips: list[Slip]

    def unit_name(self, locale: str) -> str:
        return self.unit_name_en if locale == "en" else self.unit_name_vi


def issue(session: Session, *, viewer: Principal, form: CodeRequest, valid_days: int, public_url: str) -> Batch:
    """Issue a batch of receipt codes for a unit of ``viewer``'s subtree (audited; only hashes are stored)."""
    assert form.wave_id is not None and form.unit_id is not None and form.count is not None
    unit = ensure_in_scope(session, viewer, form.unit_id)
    wave = session.get(Wave, form.wave_id)
    if wave is None:
        raise NotFoundError(N_("There is no such wave."))
    field = session.get(ProcedureField, form.field_id) if form.field_id is not None else None
    if form.field_id is not None and field is None:
        raise NotFoundError(N_("There is no such procedure field."))
    fresh = issue_receipt_codes(
        session,
        wave_code=wave.code,
        unit_id=pk(unit),
        field_id=form.field_id,
        count=form.count,
        valid_days=valid_days,
        actor=viewer.username,
    )
    for entry in session.new:  # the catalog's audit entry: say which account it was, for the officers' audit log
        if isinstance(entry, AuditLog) and entry.action == "issue_codes" and entry.user_id is None:
            entry.user_id = viewer.id
    session.commit()
    slips = []
    for c in fresh:
        url = receipt_url(public_url, c)
        slips.append(Slip(code=c, pretty=codes.pretty(c), url=url, svg=inline_svg(url, label=codes.pretty(c))))
    return Batch(
        wave=Choice(pk(wave), wave.code, wave.name_vi, wave.name_en),
        unit_name_vi=unit.name_vi,
        unit_name_en=unit.name_en,
        field=Choice(pk(field), field.code, field.name_vi, field.name_en) if field else None,
        expires_in_days=valid_days,
        slips=slips,
    )


class NotOurCodes(SipasError):
    def __init__(self) -> None:
        super().__init__(N_("These codes could not be checked: issue a new batch and download it from its page."))


def codes_csv(session: Session, *, viewer: Principal, raw: str, public_url: str) -> str:
    """The CSV of a batch just shown (sent back by its page): only codes of ``viewer``'s subtree, unspent."""
    compact = [codes.normalise(part) for part in raw.split()][: MAX_BATCH + 1]
    if not compact or len(compact) > MAX_BATCH or any(c is None for c in compact):
        raise NotOurCodes()
    known = session.execute(
        select(col(ReceiptCode.code_hash), col(Unit.path))
        .join(Unit, col(Unit.id) == col(ReceiptCode.unit_id))
        .where(col(ReceiptCode.code_hash).in_([codes.code_hash(c) for c in compact if c]))
    ).all()
    if len(known) != len(set(compact)):
        raise NotOurCodes()
    if not all(viewer.covers(path) for _h, path in known):
        raise ForbiddenError(N_("This unit is outside your scope."))
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(["code", "url"])
    for c in compact:
        assert c is not None
        writer.writerow([codes.pretty(c), receipt_url(public_url, c)])
    return out.getvalue()
