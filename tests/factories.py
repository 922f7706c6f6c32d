"""Tiny factories: a small province with open, closed and counter waves, fresh receipt codes, the stored answers
of a page, a zip bomb."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.citizen.mixer import flush_everything
from survey.db.audited import publish_questionnaire
from survey.db.bounded import BoundedDb
from survey.db.models import ProcedureField, ReceiptCode, Response, ServicePoint, Unit, UnitLevel, Wave, WaveUnit, pk
from survey.questionnaires.spec import Spec, load_file
from survey.receipts import codes


@dataclass
class World:
    unit_id: int
    other_unit_id: int
    field_id: int
    service_point_id: int
    counter_token: str
    closed_counter_token: str
    open_wave_id: int
    closed_wave_id: int
    counter_wave_id: int
    sipas_version_id: int
    quick_version_id: int
    sipas: Spec
    quick: Spec
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


def _unique(prefix: str) -> str:
    return f"{prefix}{codes.new_counter_token()[:8]}".replace("-", "x").replace("_", "y")


def build_world(engine: Engine) -> World:
    """A province, a district, a commune with one counter; waves open, closed and for counters."""
    today = datetime.now(UTC).date()
    with Session(engine, expire_on_commit=False) as s, s.begin():
        lv = UnitLevel(code=_unique("lvl"), name_vi="Cấp", name_en="Level", depth=0)
        s.add(lv)
        s.flush()
        assert lv.id is not None
        root = Unit(code=_unique("P"), name_vi="Tỉnh Thử", name_en="Test Province", level_id=lv.id)
        s.add(root)
        s.flush()
        commune = Unit(
            code=_unique("C"),
            name_vi="Xã Thử Nghiệm",
            name_en="Test Commune",
            level_id=lv.id,
            parent_id=root.id,
            kind="commune",
        )
        other = Unit(
            code=_unique("C"),
            name_vi="Xã Bên Cạnh",
            name_en="Next Commune",
            level_id=lv.id,
            parent_id=root.id,
            kind="commune",
        )
        fld = ProcedureField(code=_unique("f"), name_vi="Hộ tịch", name_en="Civil status")
        s.add_all([commune, other, fld])
        s.flush()
        root.path = f"/{root.id}/"
        commune.path = f"/{root.id}/{commune.id}/"
        other.path = f"/{root.id}/{other.id}/"
        point = ServicePoint(
            unit_id=pk(commune),
            code=_unique("Q"),
            name_vi="Quầy số 1",
            name_en="Counter 1",
            counter_token=codes.new_counter_token(),
        )
        closed_point = ServicePoint(
            unit_id=pk(other),
            code=_unique("Q"),
            name_vi="Quầy số 2",
            name_en="Counter 2",
            counter_token=codes.new_counter_token(),
        )
        s.add_all([point, closed_point])
        sipas_spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
        quick_spec = load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml")
        sipas = publish_questionnaire(s, sipas_spec, actor="test")
        quick = publish_questionnaire(s, quick_spec, actor="test")
        open_wave = Wave(
            code=_unique("open"),
            name_vi="Mở",
            name_en="Open",
            questionnaire_version_id=pk(sipas),
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=30),
            status="open",
            channels="receipt",
        )
        closed_wave = Wave(
            code=_unique("closed"),
            name_vi="Đóng",
            name_en="Closed",
            questionnaire_version_id=pk(sipas),
            starts_on=today - timedelta(days=400),
            ends_on=today - timedelta(days=35),
            status="closed",
            channels="receipt,counter",
        )
        counter_wave = Wave(
            code=_unique("counter"),
            name_vi="Quầy",
            name_en="Counter",
            questionnaire_version_id=pk(quick),
            starts_on=today - timedelta(days=30),
            ends_on=today + timedelta(days=30),
            status="open",
            channels="counter",
        )
        s.add_all([open_wave, closed_wave, counter_wave])
        s.flush()
        s.execute(
            insert(WaveUnit),
            [
                {"wave_id": open_wave.id, "unit_id": commune.id},
                {"wave_id": closed_wave.id, "unit_id": commune.id},
                {"wave_id": closed_wave.id, "unit_id": other.id},
                {"wave_id": counter_wave.id, "unit_id": commune.id},
            ],
        )
        world = World(
            unit_id=pk(commune),
            other_unit_id=pk(other),
            field_id=pk(fld),
            service_point_id=pk(point),
            counter_token=point.counter_token,
            closed_counter_token=closed_point.counter_token,
            open_wave_id=pk(open_wave),
            closed_wave_id=pk(closed_wave),
            counter_wave_id=pk(counter_wave),
            sipas_version_id=pk(sipas),
            quick_version_id=pk(quick),
            sipas=sipas_spec,
            quick=quick_spec,
            today=today,
        )
    return world


def new_code(
    engine: Engine,
    world: World,
    *,
    wave: str = "open",
    expires_in_days: int = 30,
    field_id: int | str | None = "default",
) -> str:
    """Issue one receipt code straight into the table and return it."""
    wave_id = {"open": world.open_wave_id, "closed": world.closed_wave_id}[wave]
    code = codes.new_receipt_code()
    with Session(engine) as s, s.begin():
        s.execute(
            insert(ReceiptCode).values(
                code_hash=codes.code_hash(code),
                wave_id=wave_id,
                unit_id=world.unit_id,
                field_id=world.field_id if field_id == "default" else field_id,
                issued_on=world.today - timedelta(days=1),
                expires_on=world.today + timedelta(days=expires_in_days),
                spent=False,
            )
        )
    return code


def flush_answers(engine: Engine) -> int:
    """Move every answer waiting in the mixing buffer into ``response`` now (the app's mixer moves whole time
    buckets once they have ended; see ``survey.citizen.mixer``). Returns how many were moved."""
    return flush_everything(BoundedDb(engine))


def submission_key(token: str) -> str:
    """The key stored with the answers of a page sent with the form token ``token`` (see codes.FormToken)."""
    issued, nonce, _mac = token.split(".")
    return codes.FormToken(target="", issued_at=int(issued), nonce=nonce).submission_key


def stored_response(engine: Engine, token: str) -> Response | None:
    """The response stored for the page sent with ``token`` (the buffer flushed first), or None."""
    flush_answers(engine)
    with Session(engine) as s:
        return s.scalars(select(Response).where(col(Response.submission_key) == submission_key(token))).first()


def full_answers(spec: Spec, *, value: str = "4") -> dict[str, str | list[str]]:
    """A complete, valid answer to every required item (and a few optional ones)."""
    data: dict[str, str | list[str]] = {}
    for item in spec.items:
        name = f"q_{item.id}"
        if item.type == "scale":
            data[name] = value
        elif item.type == "choice" and item.role == "assessment":
            data[name] = spec.options_of(item)[0].value
        elif item.type == "multi":
            data[name] = [o.value for o in spec.options_of(item)[: min(2, item.max_choices or 2)]]
    return data


def zip_bomb(workbook: bytes, *, unpacked: int) -> bytes:
    """``workbook`` (an .xlsx) with one more member: ``unpacked`` zero bytes, deflated to about a thousandth."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(workbook)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in source.infolist():
            bomb.writestr(member, source.read(member))
        with bomb.open("xl/media/zeros.bin", "w") as zeros:
            block = bytes(1024 * 1024)
            for _ in range(unpacked // len(block)):
                zeros.write(block)
            zeros.write(bytes(unpacked % len(block)))
    return out.getvalue()


def open_receipt_wave(
    session: Session, world: World, *, prefix: str, version_id: int | None = None, days: tuple[int, int] = (30, 30)
) -> Wave:
    """A fresh open wave of the receipt channel over the world's unit (``days`` before and after today), flushed."""
    wave = Wave(
        code=f"{prefix}{codes.new_counter_token()[:10]}",
        name_vi=f"Đợt {prefix}",
        name_en=f"Wave {prefix}",
        questionnaire_version_id=version_id if version_id is not None else world.quick_version_id,
        starts_on=world.today - timedelta(days=days[0]),
        ends_on=world.today + timedelta(days=days[1]),
        status="open",
        channels="receipt",
    )
    session.add(wave)
    session.flush()
    session.execute(insert(WaveUnit).values(wave_id=pk(wave), unit_id=world.unit_id))
    return wave
