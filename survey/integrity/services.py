"""Integrity queries and transactions: scanning a wave, and the sensitivity view.

Flagged responses are kept, never deleted: a scan sets bits in ``Response.flags`` (in the caller's
transaction, with one audit entry and ``mark_responses_changed`` so cached scores recompute). Reviews
of flags, and who may make them, are in ``survey.integrity.review``; the watch on receipt-code issuing
in ``survey.integrity.issuance``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.services import Principal
from survey.db.audited import audit
from survey.db.models import Channel, QuestionnaireVersion, Response, Unit, UnitLevel, Wave, WaveUnit
from survey.errors import NotFoundError
from survey.i18n import N_
from survey.integrity import detect, issuance
from survey.integrity.flags import FROM_SCAN, HEADLINE, REASONS, SUSPICIOUS, Flag
from survey.questionnaires.spec import spec_of
from survey.results.scores import index_layout, mark_responses_changed, wave_scores
from survey.settings import Settings

_CHUNK = 500


def opening_minutes(settings: Settings) -> tuple[int, int]:
    """``opening_hours`` ("07:00-17:30") as minutes after midnight (opens, closes)."""
    try:
        start, end = (part.strip() for part in settings.opening_hours.split("-"))
        opens = int(start[:2]) * 60 + int(start[3:5])
        closes = int(end[:2]) * 60 + int(end[3:5])
    except (ValueError, IndexError):
        raise ValueError(f"SIPAS_OPENING_HOURS must look like 07:00-17:30, not {settings.opening_hours!r}") from None
    if not 0 <= opens < closes <= 24 * 60:
        raise ValueError(f"SIPAS_OPENING_HOURS must open before it closes: {settings.opening_hours!r}")
    return opens, closes


# -- the scan -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitJump:
    """A unit whose share of satisfied responses changed sharply from one week of the wave to the next."""

    unit_code: str
    week_start: date
    p1: float
    p2: float
    n1: int
    n2: int
    z: float
    p_value: float


@dataclass(frozen=True)
class ScanResult:
    wave_code: str
    responses: int
    changed: int  # responses whose flags this scan changed
    reviewed_kept: int  # responses an officer cleared, left alone
    by_reason: dict[str, int] = field(default_factory=dict)  # flag name -> responses carrying it after the scan
    jumps: tuple[UnitJump, ...] = ()
    alerts: int = 0  # new alerts to the level above (survey.integrity.issuance)


@dataclass(frozen=True)
class ScanParameters:
    burst_alpha: float = 1e-4
    burst_min_count: int = 8
    pattern_window_minutes: int = 60
    pattern_min_repeats: int | None = None  # None: 5 for long questionnaires (10+ criteria), 15 for short ones
    jump_alpha: float = 0.001


def scan_wave(
    session: Session, *, wave_code: str, settings: Settings, actor: str = "cli", params: ScanParameters | None = None
) -> ScanResult:
    """Run every detector over a wave and set the scan's flags (in the caller's transaction).

    Scan bits are recomputed each time (a rescan after more responses may flag more, or fewer); flags
    set at submission and officers' decisions are kept, and a response cleared by an officer
    (``REVIEWED_OK``) is not touched at all. Strata issued more receipt codes than their frame has
    transactions, and units whose receipt codes were answered in a burst, get an alert to the level
    above (``survey.integrity.issuance``).
    """
    params = params or ScanParameters()
    wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
    if wave is None or wave.id is None:
        raise NotFoundError(f"No wave with code '{wave_code}'.")
    version = session.get(QuestionnaireVersion, wave.questionnaire_version_id)
    assert version is not None
    spec = spec_of(version)
    criteria = np.asarray(index_layout(spec).criteria, dtype=np.int64)
    rows = session.execute(
        select(
            col(Response.id),
            col(Response.unit_id),
            col(Response.service_point_id),
            col(Response.submitted_at),
            col(Response.flags),
            col(Response.answers),
            col(Response.field_id),
            col(Response.channel),
        )
        .where(col(Response.wave_id) == wave.id, col(Response.questionnaire_version_id) == version.id)
        .order_by(col(Response.id))
    ).all()
    n = len(rows)
    if n == 0:  # nothing to flag yet; codes issued beyond the frame still alert the level above
        strata, none = issuance.over_issued(session, wave=wave), np.zeros(0, dtype=np.int64)
        masks = [none.astype(bool)] * len(strata)
        found = issuance.findings(strata, masks, none, unit=none, receipt=none.astype(bool))
        return ScanResult(wave_code, 0, 0, 0, alerts=issuance.raise_alerts(session, wave=wave, found=found))
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    unit = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
    point = np.fromiter((r[2] if r[2] is not None else -1 for r in rows), dtype=np.int64, count=n)
    field_of = np.fromiter((r[6] if r[6] is not None else -1 for r in rows), dtype=np.int64, count=n)
    receipt = np.fromiter((r[7] == int(Channel.receipt) for r in rows), dtype=bool, count=n)
    old = np.fromiter((r[4] for r in rows), dtype=np.int64, count=n)
    width = len(spec.layout)
    answers = np.frombuffer(b"".join(bytes(r[5]).ljust(width, b"\0")[:width] for r in rows), dtype=np.uint8)
    answers = answers.reshape(n, width)
    tz = ZoneInfo(settings.timezone)
    local = [r[3].astimezone(tz) for r in rows]
    epoch = np.fromiter((int(r[3].timestamp()) for r in rows), dtype=np.int64, count=n)
    minute = np.fromiter((t.hour * 60 + t.minute for t in local), dtype=np.int64, count=n)
    weekday = np.fromiter((t.weekday() for t in local), dtype=np.int64, count=n)
    day = np.fromiter((t.toordinal() for t in local), dtype=np.int64, count=n)

    # a counter's responses group by counter; receipt responses (no counter) by their unit
    place = np.where(point >= 0, point, -unit)
    _, group = np.unique(place, return_inverse=True)
    group = group.reshape(-1)
    opens, closes = opening_minutes(settings)
    per_day = max(1, (closes - opens) // settings.time_bucket_minutes)
    group_days = np.unique(np.column_stack([group, day]), axis=0)[:, 0]
    exposure = np.bincount(group_days, minlength=int(group.max()) + 1).astype(np.float64) * per_day
    bucket = epoch // (settings.time_bucket_minutes * 60)

    detected = np.zeros(n, dtype=np.int64)
    burst = detect.bursts(group, bucket, exposure, alpha=params.burst_alpha, min_count=params.burst_min_count)
    detected[burst.mask] |= int(Flag.BURST)
    off = detect.outside_hours(minute, weekday, opens=opens, closes=closes, weekdays=tuple(settings.opening_weekdays))
    detected[off] |= int(Flag.OFF_HOURS)
    repeats = params.pattern_min_repeats or (5 if criteria.size >= 10 else 15)
    window = epoch // (params.pattern_window_minutes * 60)
    repeated = detect.repeated_patterns(group, window, answers, min_repeats=repeats)
    detected[repeated] |= int(Flag.REPEATED_PATTERN)
    detected[repeated & detect.straight_lined(answers, criteria)] |= int(Flag.STRAIGHT_LINE)
    strata = issuance.over_issued(session, wave=wave)
    masks = [issuance.responses_of(s, unit=unit, field=field_of, receipt=receipt, epoch=epoch, tz=tz) for s in strata]
    for mask in masks:
        detected[mask] |= int(Flag.OVER_ISSUED)

    reviewed = (old & int(Flag.REVIEWED_OK)) != 0
    new = np.where(reviewed, old, (old & ~int(FROM_SCAN)) | detected)
    changed = new != old
    alerts = issuance.raise_alerts(
        session, wave=wave, found=issuance.findings(strata, masks, new, unit=unit, receipt=receipt)
    )
    by_value: dict[int, list[int]] = defaultdict(list)
    for rid, value in zip(ids[changed].tolist(), new[changed].tolist(), strict=True):
        by_value[value].append(rid)
    for value, members in by_value.items():
        for i in range(0, len(members), _CHUNK):
            session.execute(update(Response).where(col(Response.id).in_(members[i : i + _CHUNK])).values(flags=value))
    by_reason = {bit.name or str(int(bit)): int(((new & int(bit)) != 0).sum()) for bit in REASONS}
    if changed.any():
        mark_responses_changed(session, wave_id=wave.id)
    audit(
        session,
        actor=actor,
        action="integrity.scan",
        entity="wave",
        entity_id=wave.code,
        before={"flagged": int(((old & int(SUSPICIOUS)) != 0).sum())},
        after={
            "flagged": int(((new & int(SUSPICIOUS)) != 0).sum()),
            "changed": int(changed.sum()),
            "alerts": alerts,
            **by_reason,
        },
    )
    headline = (new == 0) | (new == int(Flag.REVIEWED_OK))
    jumps = _weekly_jumps(session, wave, unit, day, answers, criteria, headline, params.jump_alpha)
    return ScanResult(wave_code, n, int(changed.sum()), int(reviewed.sum()), by_reason, jumps, alerts)


def _weekly_jumps(
    session: Session,
    wave: Wave,
    unit: np.ndarray,
    day: np.ndarray,
    answers: np.ndarray,
    criteria: np.ndarray,
    keep: np.ndarray,
    alpha: float,
) -> tuple[UnitJump, ...]:
    """Units whose share of satisfied responses (half or more of their valid criteria 4 or 5) jumps week to week."""
    block = answers[:, criteria].astype(np.int64)
    valid = (block >= 1) & (block <= 5)
    answered = valid.sum(axis=1)
    satisfied = ((block >= 4) & valid).sum(axis=1) * 2 >= answered
    use = keep & (answered > 0)
    if not use.any():
        return ()
    week = (day[use] - wave.starts_on.toordinal()) // 7
    keys, inverse = np.unique(np.column_stack([unit[use], week]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    trials = np.bincount(inverse, minlength=len(keys))
    wins = np.bincount(inverse, weights=satisfied[use].astype(np.float64), minlength=len(keys))
    nxt = np.flatnonzero(keys[1:, 0] == keys[:-1, 0])  # consecutive weeks with responses of the same unit
    if nxt.size == 0:
        return ()
    test = detect.proportion_jump(wins[nxt], trials[nxt], wins[nxt + 1], trials[nxt + 1], alpha=alpha)
    codes = dict(
        session.execute(select(col(Unit.id), col(Unit.code)).where(col(Unit.id).in_(set(keys[:, 0].tolist())))).all()
    )
    out = []
    for k in np.flatnonzero(test.significant):
        i = int(nxt[k])
        out.append(
            UnitJump(
                unit_code=str(codes.get(int(keys[i + 1, 0]), keys[i + 1, 0])),
                week_start=wave.starts_on + timedelta(days=7 * int(keys[i + 1, 1])),
                p1=float(test.p1[k]),
                p2=float(test.p2[k]),
                n1=int(trials[i]),
                n2=int(trials[i + 1]),
                z=float(test.z[k]),
                p_value=float(test.p_value[k]),
            )
        )
    return tuple(out)


# -- the sensitivity view -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WaveChoice:
    code: str
    name_vi: str
    name_en: str


@dataclass(frozen=True, slots=True)
class SensitivityRow:
    code: str
    name_vi: str
    name_en: str
    n_all: int
    index_all: float
    n_clean: int
    index_clean: float

    @property
    def difference(self) -> float:
        """Points the headline (flagged left out) differs from the index with every response."""
        return (self.index_clean - self.index_all) * 100.0

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


@dataclass(frozen=True)
class Sensitivity:
    wave_code: str
    level: str
    rows: tuple[SensitivityRow, ...]
    excluded: int  # flagged responses of the viewer's subtree left out of the headline figures


def waves_in_scope(session: Session, *, viewer: Principal) -> list[WaveChoice]:
    """Waves surveying at least one unit of ``viewer``'s subtree, newest first."""
    rows = session.execute(
        select(col(Wave.code), col(Wave.name_vi), col(Wave.name_en))
        .where(
            col(Wave.id).in_(
                select(col(WaveUnit.wave_id))
                .join(Unit, col(Unit.id) == col(WaveUnit.unit_id))
                .where(col(Unit.path).startswith(viewer.unit_path, autoescape=True))
            )
        )
        .order_by(col(Wave.starts_on).desc(), col(Wave.id).desc())
    ).all()
    return [WaveChoice(*r) for r in rows]


def sensitivity(engine: Engine, session: Session, *, viewer: Principal, wave_code: str) -> Sensitivity:
    """Each surveyed unit of ``viewer``'s subtree: its index with every response and without the flagged ones.

    404 for a wave that surveys no unit of the subtree; every count is of the subtree's responses only.
    """
    if wave_code not in {w.code for w in waves_in_scope(session, viewer=viewer)}:
        raise NotFoundError(N_("There is no such wave among your units."))
    level = session.execute(
        select(col(UnitLevel.code), func.count())
        .join(Unit, col(Unit.level_id) == col(UnitLevel.id))
        .join(WaveUnit, col(WaveUnit.unit_id) == col(Unit.id))
        .join(Wave, col(Wave.id) == col(WaveUnit.wave_id))
        .where(col(Wave.code) == wave_code, col(Unit.path).startswith(viewer.unit_path, autoescape=True))
        .group_by(col(UnitLevel.code))
        .order_by(func.count().desc(), col(UnitLevel.code))
    ).first()
    assert level is not None  # the wave surveys a unit in scope
    every = wave_scores(engine, wave_code=wave_code, level=level[0], include_flagged=True)
    clean = wave_scores(engine, wave_code=wave_code, level=level[0], include_flagged=False)
    excluded = session.scalar(
        select(func.count())
        .select_from(Response)
        .join(Unit, col(Unit.id) == col(Response.unit_id))
        .join(Wave, col(Wave.id) == col(Response.wave_id))
        .where(
            col(Wave.code) == wave_code,
            col(Response.questionnaire_version_id) == col(Wave.questionnaire_version_id),
            col(Response.flags).not_in(HEADLINE),
            col(Unit.path).startswith(viewer.unit_path, autoescape=True),
        )
    )
    rows = []
    for i, unit in enumerate(every.units):
        if not unit.path.startswith(viewer.unit_path):
            continue
        a, c = every.estimate(i), clean.estimate(i)
        if a.n == 0:
            continue
        rows.append(SensitivityRow(unit.code, unit.name_vi, unit.name_en, a.n, a.point, c.n, c.point))
    return Sensitivity(wave_code, level[0], tuple(rows), int(excluded or 0))
