"""Watching how receipt codes are issued: strata given more codes than their frame has transactions, and the
alerts the integrity scan addresses to the level above a unit.

A receipt code proves a real transaction only while codes are not issued beyond the transactions: an
officer who prints codes for his own unit and answers them himself passes every check at submission.
For each unit of a wave that has a frame in the wave's period (``FrameCount`` rows whose period starts
between the wave's first and last day), the scan compares the codes issued (printed batches and the
issuing API alike) with the transactions:

* per unit and field: the codes issued for that field against the field's transactions;
* per unit: every code of the unit (with a field or without) against all its transactions.

A unit with no frame row in the wave's period is not judged: there is nothing to compare with. A
stratum is over-issued from the day its codes, counted in the order of the days they were issued, first
outnumber its transactions. Its receipt responses sent from that day on get ``Flag.OVER_ISSUED``: a
response never records its code, so those of the extra codes cannot be told from the others, but a
response sent before that day cannot come from them. Officers above the unit review them
(``survey.integrity.review``); the unit's own accounts cannot.

Each over-issued stratum, and each unit whose receipt responses came in a ``BURST``, gets one
``IntegrityAlert`` per wave, addressed to the unit's parent; a rescan that finds it again updates its
counts, and an alert whose cause has gone (say, a frame imported later) stays, with its last counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import FrameCount, IntegrityAlert, ReceiptCode, Unit, Wave, pk, utcnow
from survey.i18n import N_
from survey.integrity.flags import Flag

OVER_ISSUED = "over_issued"
BURST = "burst"
ALERT_KINDS: dict[str, str] = {
    OVER_ISSUED: N_("More receipt codes issued than transactions"),
    BURST: N_("Receipt codes answered in a burst"),
}


@dataclass(frozen=True, slots=True)
class OverIssued:
    """A stratum of a wave given more codes than its transactions: a field of a unit, or (``field_id`` None)
    the unit as a whole."""

    unit_id: int
    field_id: int | None
    codes_issued: int
    transactions: int
    since: date  # the day the codes issued first outnumbered the transactions


def _first_day_over(per_day: dict[date, int], transactions: int) -> date | None:
    total = 0
    for day in sorted(per_day):
        total += per_day[day]
        if total > transactions:
            return day
    return None


def over_issued(session: Session, *, wave: Wave) -> list[OverIssued]:
    """The wave's over-issued strata, among the units its frame covers (see the module's docstring)."""
    frame = session.execute(
        select(col(FrameCount.unit_id), col(FrameCount.field_id), func.sum(FrameCount.transactions))
        .where(col(FrameCount.period_start) >= wave.starts_on, col(FrameCount.period_start) <= wave.ends_on)
        .group_by(col(FrameCount.unit_id), col(FrameCount.field_id))
    ).all()
    by_field: dict[tuple[int, int], int] = {(int(u), int(f)): int(n or 0) for u, f, n in frame}
    by_unit: dict[int, int] = defaultdict(int)
    for (u, _f), n in by_field.items():
        by_unit[u] += n
    if not by_unit:
        return []
    issued = session.execute(
        select(col(ReceiptCode.unit_id), col(ReceiptCode.field_id), col(ReceiptCode.issued_on), func.count())
        .where(col(ReceiptCode.wave_id) == wave.id)
        .group_by(col(ReceiptCode.unit_id), col(ReceiptCode.field_id), col(ReceiptCode.issued_on))
    ).all()
    field_days: dict[tuple[int, int], dict[date, int]] = defaultdict(lambda: defaultdict(int))
    unit_days: dict[int, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for u, f, day, n in issued:
        if int(u) not in by_unit:
            continue
        unit_days[int(u)][day] += int(n)
        if f is not None:
            field_days[(int(u), int(f))][day] += int(n)
    found: list[OverIssued] = []
    for u, days in sorted(unit_days.items()):
        since = _first_day_over(days, by_unit[u])
        if since is not None:
            found.append(OverIssued(u, None, sum(days.values()), by_unit[u], since))
    for (u, f), days in sorted(field_days.items()):
        transactions = by_field.get((u, f), 0)
        since = _first_day_over(days, transactions)
        if since is not None:
            found.append(OverIssued(u, f, sum(days.values()), transactions, since))
    return found


def day_start(day: date, tz: ZoneInfo) -> int:
    """The earliest moment (epoch seconds) that can fall on ``day``, whether it is a UTC or a local date.

    Codes are issued on dates of either kind (printed batches: UTC; the issuing API: the offices' time
    zone), so a response sent from this moment on may come from a code of that day.
    """
    return int(min(datetime.combine(day, time.min, tzinfo=UTC), datetime.combine(day, time.min, tzinfo=tz)).timestamp())


def responses_of(
    stratum: OverIssued, *, unit: np.ndarray, field: np.ndarray, receipt: np.ndarray, epoch: np.ndarray, tz: ZoneInfo
) -> np.ndarray:
    """Which responses (arrays over a wave's rows) are receipt responses of ``stratum`` sent since it was over."""
    mask = receipt & (unit == stratum.unit_id) & (epoch >= day_start(stratum.since, tz))
    if stratum.field_id is not None:
        mask &= field == stratum.field_id
    return np.asarray(mask)


@dataclass(frozen=True, slots=True)
class Finding:
    """What one alert says: a unit (and field), the kind, the figures, the responses now flagged for it."""

    unit_id: int
    field_id: int | None
    kind: str
    codes_issued: int | None
    transactions: int | None
    responses: int


def findings(
    strata: list[OverIssued],
    masks: list[np.ndarray],
    flags: np.ndarray,
    *,
    unit: np.ndarray,
    receipt: np.ndarray,
) -> list[Finding]:
    """One finding per over-issued stratum, and one per unit whose receipt responses carry ``BURST``."""
    over = (flags & int(Flag.OVER_ISSUED)) != 0
    out = [
        Finding(s.unit_id, s.field_id, OVER_ISSUED, s.codes_issued, s.transactions, int((m & over).sum()))
        for s, m in zip(strata, masks, strict=True)
    ]
    burst = receipt & ((flags & int(Flag.BURST)) != 0)
    units, counts = np.unique(unit[burst], return_counts=True)
    out.extend(Finding(int(u), None, BURST, None, None, int(c)) for u, c in zip(units, counts, strict=True))
    return out


def raise_alerts(session: Session, *, wave: Wave, found: list[Finding]) -> int:
    """Store ``found`` as the wave's alerts (in the caller's transaction): new ones addressed to each unit's
    parent, known ones with their counts brought up to date. Returns how many are new."""
    if not found:
        return 0
    wave_id = pk(wave)
    known = {
        (a.unit_id, a.field_id, a.kind): a
        for a in session.scalars(select(IntegrityAlert).where(col(IntegrityAlert.wave_id) == wave_id))
    }
    parents = dict(
        session.execute(
            select(col(Unit.id), col(Unit.parent_id)).where(col(Unit.id).in_({f.unit_id for f in found}))
        ).all()
    )
    new = 0
    now = utcnow()
    for f in found:
        counts = {"codes_issued": f.codes_issued, "transactions": f.transactions, "responses": f.responses}
        alert = known.get((f.unit_id, f.field_id, f.kind))
        if alert is None:
            session.add(
                IntegrityAlert(
                    wave_id=wave_id,
                    unit_id=f.unit_id,
                    addressed_to=parents.get(f.unit_id),
                    field_id=f.field_id,
                    kind=f.kind,
                    codes_issued=f.codes_issued,
                    transactions=f.transactions,
                    responses=f.responses,
                    raised_at=now,
                    updated_at=now,
                )
            )
            new += 1
        elif any(getattr(alert, k) != v for k, v in counts.items()):
            session.execute(
                update(IntegrityAlert).where(col(IntegrityAlert.id) == alert.id).values(updated_at=now, **counts)
            )
    return new
