"""Load the demo province (Tây Ninh) with a year and more of synthetic activity into a database."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from faker import Faker
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from seed_data import QUESTIONNAIRE_DIR, generator, province
from survey.auth.passwords import policy_problems
from survey.auth.services import create_user
from survey.citizen.services import bucket
from survey.db.audited import audit, count_rows, issue_receipt_codes, publish_questionnaire
from survey.db.models import (
    Channel,
    FrameCount,
    ProcedureField,
    ReceiptCode,
    Response,
    Role,
    ServicePoint,
    Unit,
    UnitLevel,
    Wave,
    WaveStatus,
    WaveUnit,
    pk,
)
from survey.questionnaires.spec import NOT_APPLICABLE, Spec, load_file
from survey.settings import Settings

ACTOR = "demo"
# Wave codes follow the year the demo is loaded in; these are the ones of a demo loaded in 2026 (the tests').
PREVIOUS_WAVE = "2025"
CURRENT_WAVE = "2026"
COUNTER_WAVE = "quay-2026"
# One staff account per role: (username, role, unit code).
DEMO_ACCOUNTS = (
    ("quantri", Role.admin, "TN"),  # the province: sees everything
    ("canbo.gd", Role.officer, "GD"),  # Gò Dầu district and its communes
    ("lanhdao.stp", Role.leader, "STP"),  # the Department of Justice
)


def form_shape(spec: Spec) -> generator.FormShape:
    """What the demo generator needs of a questionnaire: its items, options and answer columns."""
    items = tuple(
        generator.ItemShape(
            id=item.id,
            type=item.type,
            role=item.role,
            options=tuple(o.value for o in spec.options_of(item)),
            not_applicable=spec.not_applicable_of(item) is not None,
            max_choices=item.max_choices,
        )
        for item in spec.items
    )
    columns = tuple((c.item, c.option) for c in spec.layout)
    return generator.FormShape(items=items, columns=columns, not_applicable=NOT_APPLICABLE)


@dataclass
class DemoSummary:
    units: int = 0
    service_points: int = 0
    frame_rows: int = 0
    responses: int = 0
    receipt_codes: int = 0
    seconds: float = 0.0
    receipt_links: list[tuple[str, str]] = field(default_factory=list)  # (unit name, url)
    current_wave: str = CURRENT_WAVE
    previous_wave: str = PREVIOUS_WAVE
    counter_links: list[tuple[str, str]] = field(default_factory=list)
    accounts: list[tuple[str, str, str, str]] = field(default_factory=list)  # (username, role, unit name, password)


def is_loaded(engine: Engine) -> bool:
    with Session(engine) as session:
        return count_rows(session, Unit) > 0


def _counter_token(seed: int, code: str) -> str:
    """Deterministic counter tokens for the demo, so printed posters stay valid across reloads."""
    return hashlib.sha256(f"demo-counter:{seed}:{code}".encode()).hexdigest()[:16]


def load_demo(
    engine: Engine, settings: Settings, *, seed: int = 2026, responses: int = 50_000, today: date | None = None
) -> DemoSummary:
    """Fill an empty, migrated database with the demo province. Deterministic given ``seed``."""
    started = time.perf_counter()
    today = today or settings.today()
    rng = np.random.default_rng(seed)
    faker = Faker("vi_VN")
    faker.seed_instance(seed)
    prov = province.load()
    summary = DemoSummary()

    with Session(engine, expire_on_commit=False) as session, session.begin():
        if count_rows(session, Unit):
            raise RuntimeError("the database already holds units: load the demo into an empty database")
        level_ids: dict[str, int] = {}
        for lv in prov.levels:
            row = UnitLevel(code=lv.code, depth=lv.depth, name_vi=lv.name_vi, name_en=lv.name_en)
            session.add(row)
            session.flush()
            assert row.id is not None
            level_ids[lv.code] = row.id
        field_ids: dict[str, int] = {}
        for f in prov.fields:
            frow = ProcedureField(code=f.code, name_vi=f.name_vi, name_en=f.name_en)
            session.add(frow)
            session.flush()
            assert frow.id is not None
            field_ids[f.code] = frow.id
        unit_rows: dict[str, Unit] = {}
        for u in prov.units:
            parent = unit_rows.get(u.parent) if u.parent else None
            urow = Unit(
                code=u.code,
                name_vi=u.name_vi,
                name_en=u.name_en,
                level_id=level_ids[u.level],
                parent_id=parent.id if parent else None,
                kind=u.kind,
            )
            session.add(urow)
            session.flush()
            urow.path = f"{parent.path if parent else '/'}{urow.id}/"
            unit_rows[u.code] = urow
        summary.units = len(unit_rows)

        # Counters: three at each department and district one-stop desk, one at each commune.
        points: dict[str, list[ServicePoint]] = {}
        for u in prov.units:
            if u.level == "province":
                continue
            n_points = 1 if u.level == "commune" else 3
            urow = unit_rows[u.code]
            assert urow.id is not None
            points[u.code] = []
            for k in range(1, n_points + 1):
                sp = ServicePoint(
                    unit_id=urow.id,
                    code=f"{u.code}-Q{k}",
                    name_vi=f"Quầy số {k}",
                    name_en=f"Counter {k}",
                    counter_token=_counter_token(seed, f"{u.code}-Q{k}"),
                )
                session.add(sp)
                points[u.code].append(sp)
        session.flush()
        summary.service_points = sum(len(v) for v in points.values())

        sipas = publish_questionnaire(session, load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml"), actor=ACTOR)
        quick = publish_questionnaire(session, load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml"), actor=ACTOR)
        sipas_spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
        quick_spec = load_file(QUESTIONNAIRE_DIR / "quick_rating.yaml")

        year = today.year
        waves = {
            PREVIOUS_WAVE: Wave(
                code=str(year - 1),
                name_vi=f"Khảo sát năm {year - 1}",
                name_en=f"Survey {year - 1}",
                questionnaire_version_id=pk(sipas),
                starts_on=date(year - 1, 1, 1),
                ends_on=date(year - 1, 12, 31),
                status=WaveStatus.closed.value,
                channels="receipt",
            ),
            CURRENT_WAVE: Wave(
                code=str(year),
                name_vi=f"Khảo sát năm {year}",
                name_en=f"Survey {year}",
                questionnaire_version_id=pk(sipas),
                starts_on=date(year, 1, 1),
                ends_on=date(year, 12, 31),
                status=WaveStatus.open.value,
                channels="receipt",
            ),
            COUNTER_WAVE: Wave(
                code=f"quay-{year}",
                name_vi=f"Đánh giá nhanh tại quầy {year}",
                name_en=f"Quick counter ratings {year}",
                questionnaire_version_id=pk(quick),
                starts_on=date(year, 1, 1),
                ends_on=date(year, 12, 31),
                status=WaveStatus.open.value,
                channels="counter",
            ),
        }
        session.add_all(waves.values())
        session.flush()
        surveyed = [u for u in prov.units if u.level != "province"]
        session.execute(
            insert(WaveUnit),
            [{"wave_id": w.id, "unit_id": unit_rows[u.code].id} for w in waves.values() for u in surveyed],
        )

        # Volumes: a department or district desk handles far more than a commune's.
        base_volume = {"department": 900.0, "district": 1400.0, "commune": 180.0}
        field_index = {code: i for i, code in enumerate(field_ids)}
        unit_ids = np.array([unit_rows[u.code].id for u in surveyed])
        sp_ids = {u.code: tuple(int(p.id) for p in points[u.code] if p.id is not None) for u in surveyed}
        profiles = [
            generator.UnitProfile(
                unit_index=i,
                field_indices=tuple(field_index[f] for f in u.fields),
                monthly_volume=base_volume[u.level] * float(rng.lognormal(0.0, 0.45)),
                service_points=sp_ids[u.code],
            )
            for i, u in enumerate(surveyed)
        ]
        last_complete = date(today.year, today.month, 1)
        month_list = generator.months(date(year - 1, 1, 1), last_complete)[:-1]
        frame = generator.frame_counts(rng, profiles, month_list)
        field_id_list = list(field_ids.values())
        session.execute(
            insert(FrameCount),
            [
                {
                    "unit_id": int(unit_ids[u]),
                    "field_id": field_id_list[int(f)],
                    "period_start": m,
                    "period_end": _month_end(m),
                    "transactions": int(c),
                }
                for u, f, m, c in zip(
                    frame.unit_index, frame.field_index, frame.month_start, frame.transactions, strict=True
                )
            ],
        )
        summary.frame_rows = len(frame.transactions)

        truth_prev = generator.true_satisfaction(rng, len(surveyed))
        truth_now = np.clip(truth_prev + rng.normal(0.0, 0.025, size=len(surveyed)), 0.75, 0.98)
        volume = np.array([p.monthly_volume for p in profiles])
        # 92% of responses through receipt codes, split over the two waves; the rest are counter ratings.
        n_receipt_prev = int(responses * 0.40)
        n_receipt_now = int(responses * 0.52)
        n_counter = responses - n_receipt_prev - n_receipt_now
        summary.responses = responses
        batches = [
            (
                waves[PREVIOUS_WAVE],
                sipas_spec,
                truth_prev,
                n_receipt_prev,
                Channel.receipt,
                date(year - 1, 1, 1),
                date(year - 1, 12, 31),
            ),
            (
                waves[CURRENT_WAVE],
                sipas_spec,
                truth_now,
                n_receipt_now,
                Channel.receipt,
                date(year, 1, 1),
                max(date(year, 1, 2), today),
            ),
            (
                waves[COUNTER_WAVE],
                quick_spec,
                truth_now,
                n_counter,
                Channel.counter,
                date(year, 1, 1),
                max(date(year, 1, 2), today),
            ),
        ]
        for wave, spec, truth, n_total, channel, start, end in batches:
            share = np.sqrt(volume) / np.sqrt(volume).sum()
            counts = rng.multinomial(n_total, share)
            batch = generator.responses(
                rng, faker, form_shape(spec), unit_level=truth, units=profiles, counts=counts, start=start, end=end
            )
            version_id = wave.questionnaire_version_id
            rows = []
            for r in range(len(batch.comments)):
                fi = int(batch.field_index[r])
                rows.append(
                    {
                        "wave_id": wave.id,
                        "unit_id": int(unit_ids[batch.unit_index[r]]),
                        "service_point_id": int(batch.service_point[r]) if channel == Channel.counter else None,
                        "field_id": field_id_list[fi] if fi >= 0 and channel == Channel.receipt else None,
                        "channel": int(channel),
                        "questionnaire_version_id": version_id,
                        "submitted_at": bucket(batch.submitted_at[r], settings.time_bucket_minutes),
                        "answers": batch.answers[r].tobytes(),
                        "comment": batch.comments[r],
                        "flags": 0,
                        "submission_key": None,
                    }
                )
            rows.sort(key=lambda row: row["submitted_at"])
            session.execute(insert(Response), rows)
            if channel == Channel.receipt:
                summary.receipt_codes += _spent_and_unspent_codes(session, rng, wave, rows, end)

        # Fresh codes to try the survey with: a department, a district and a commune.
        for code in ("STP", "GD", "TPTN-W01"):
            unit = unit_rows[code]
            assert unit.id is not None
            f_code = next(u.fields[0] for u in surveyed if u.code == code)
            fresh = issue_receipt_codes(
                session,
                wave_code=waves[CURRENT_WAVE].code,
                unit_id=unit.id,
                field_id=field_ids[f_code],
                count=3,
                valid_days=settings.receipt_code_valid_days,
                actor=ACTOR,
                today=today,
            )
            summary.receipt_codes += len(fresh)
            summary.receipt_links.extend((unit.name_vi, f"{settings.public_url}/r/{c}") for c in fresh)
        for code in ("STP", "GD", "TPTN-W01"):
            sp = points[code][0]
            summary.counter_links.append(
                (f"{unit_rows[code].name_vi} · {sp.name_vi}", f"{settings.public_url}/c/{sp.counter_token}")
            )
        summary.current_wave, summary.previous_wave = waves[CURRENT_WAVE].code, waves[PREVIOUS_WAVE].code
        for username, role, unit_code in DEMO_ACCOUNTS:
            password = _demo_password(username)
            create_user(
                session,
                username=username,
                password=password,
                role=role,
                unit_id=pk(unit_rows[unit_code]),
                actor=ACTOR,
            )
            summary.accounts.append((username, role.value, unit_rows[unit_code].name_vi, password))
        audit(
            session,
            actor=ACTOR,
            action="load_demo",
            entity="database",
            after={"seed": seed, "responses": responses, "units": summary.units},
        )
    summary.seconds = time.perf_counter() - started
    return summary


def _demo_password(username: str) -> str:
    """A fresh random password (not derived from the seed: printed once, then only its hash is kept)."""
    while True:
        password = secrets.token_urlsafe(12)
        if not policy_problems(password, username=username):
            return password


def _month_end(first: date) -> date:
    nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return date.fromordinal(nxt.toordinal() - 1)


def _spent_and_unspent_codes(
    session: Session, rng: np.random.Generator, wave: Wave, rows: list[dict], end: date
) -> int:
    """Codes behind the synthetic receipt responses (spent), plus unanswered ones (~55% response rate)."""
    per_stratum = Counter((r["unit_id"], r["field_id"]) for r in rows)
    code_rows = []
    for (unit_id, field_id), answered in per_stratum.items():
        issued = answered + int(rng.binomial(max(1, int(answered * 0.8)), 0.8))
        for k in range(issued):
            raw = rng.bytes(16)
            code_rows.append(
                {
                    "code_hash": hashlib.sha256(raw).hexdigest(),
                    "wave_id": wave.id,
                    "unit_id": unit_id,
                    "field_id": field_id,
                    "issued_on": wave.starts_on,
                    "expires_on": min(end, wave.ends_on),
                    "spent": k < answered,
                }
            )
    session.execute(insert(ReceiptCode), code_rows)
    return len(code_rows)
