"""Scorecards and league tables of a wave: database rows in, the scoring engine's results out.

The only place that turns stored responses into ``scoring`` inputs: it loads the wave's compact
arrays, builds the design (strata = procedure fields within units; equal weights until the wave has
sampling weights), maps units to the requested level, and calls the pure functions. Results are
cached per wave and parameters, keyed on the wave's response count and newest id, so they are
recomputed as soon as new responses arrive and never served stale.

`league_rows` turns a result into the rows of its league table, in the one league order that the
leader pages, the CSV/XLSX exports, the read API and ``sipas score`` all show.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from sampling.weights import WeightDiagnostics, diagnostics, poststratify
from scoring.change import Change, wave_change
from scoring.design import Design
from scoring.indices import Estimate, IndexLayout, Scorecard, scorecard
from scoring.league import League, league
from survey.db.models import (
    Channel,
    FrameCount,
    ProcedureField,
    QuestionnaireVersion,
    Quota,
    Response,
    Unit,
    UnitLevel,
    Wave,
)
from survey.errors import NotFoundError
from survey.integrity.flags import HEADLINE
from survey.questionnaires.spec import Spec, spec_of
from survey.results.arrays import WaveArrays, load_wave


@dataclass(frozen=True, slots=True)
class UnitRow:
    id: int
    code: str
    name_vi: str
    name_en: str
    level: str
    path: str


@dataclass(frozen=True, eq=False)
class WaveScores:
    """One level's scorecard for a wave, with its league table."""

    wave_code: str
    level: str
    scope: str  # "own": each unit's own responses; "subtree": the unit and everything below it
    units: tuple[UnitRow, ...]
    card: Scorecard
    total: Scorecard
    league: League
    measure: str
    target: float
    min_responses: int
    responses: int
    excluded_flagged: int
    weighting: str = "equal"
    weights: WeightDiagnostics | None = None  # spread of the weights (Kish's deff from weighting), when weighted
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def estimate(self, i: int) -> Estimate:
        return self.card.get(i, self.measure)

    @property
    def province(self) -> Estimate:
        return self.total.get(0, self.measure)


TIER_NAMES: dict[int, str] = {1: "above", 0: "indistinguishable", -1: "below"}  # for machine-readable outputs


@dataclass(frozen=True, slots=True)
class LeagueRow:
    """One unit's line of a league table, as every output shows it.

    Shares are in [0, 1]. A value the unit does not have is None: no index, interval or tier without
    responses; no rank or rank interval for a unit with insufficient data. Tiers are 1 above,
    0 indistinguishable from, -1 below the wave's target or the province.
    """

    unit: UnitRow
    position: int  # the unit's index in ``WaveScores.units``, to join other per-unit arrays (e.g. a Change)
    ranked: bool  # False: insufficient data (fewer than the wave's minimum of responses), never ranked
    rank: int | None  # 1 = best; units with the same index share a rank
    rank_lower: int | None  # the rank's 95% interval, for this unit alone (marginal)
    rank_upper: int | None
    rank_lower_table: int | None  # the rank interval for the whole table at once (simultaneous)
    rank_upper_table: int | None
    index: float | None  # the measure (the overall index or an element), a share
    lower: float | None  # the measure's interval at the scorecard's level (95%)
    upper: float | None
    n: int
    n_eff: float
    df: int
    reliability: int
    response_rate: float | None  # responses over codes issued (or over the frame), when known
    tier_target: int | None
    tier_province: int | None

    @property
    def insufficient_data(self) -> bool:
        return not self.ranked


def league_rows(ws: WaveScores, *, response_rates: Mapping[int, float] | None = None) -> tuple[LeagueRow, ...]:
    """Every unit of ``ws`` as a `LeagueRow`, in league order.

    League order: the ranked units first, by rank, which is by index descending (a rank is 1 + the
    number of ranked units with a strictly higher index, so tied units share it), ties by unit code;
    then the units with insufficient data, by unit code (they have no rank, and their order must
    not read as one). ``response_rates`` maps unit ids to shares in [0, 1].
    """
    lg, card = ws.league, ws.card
    j = card.column(ws.measure)
    rates = response_rates or {}
    rows = []
    for i, unit in enumerate(ws.units):
        ranked, n = bool(lg.ranked[i]), int(card.n[i, j])
        ranks = (lg.rank, lg.marginal_lower, lg.marginal_upper, lg.simultaneous_lower, lg.simultaneous_upper)
        rank, rank_lower, rank_upper, lower_table, upper_table = (int(r[i]) if ranked else None for r in ranks)
        index, lower, upper = (
            float(x) if n > 0 and math.isfinite(x) else None
            for x in (card.point[i, j], card.lower[i, j], card.upper[i, j])
        )
        rows.append(
            LeagueRow(
                unit=unit,
                position=i,
                ranked=ranked,
                rank=rank,
                rank_lower=rank_lower,
                rank_upper=rank_upper,
                rank_lower_table=lower_table,
                rank_upper_table=upper_table,
                index=index,
                lower=lower,
                upper=upper,
                n=n,
                n_eff=float(card.n_eff[i, j]),
                df=int(card.df[i]),
                reliability=int(card.reliability[i, j]),
                response_rate=rates.get(unit.id),
                tier_target=int(lg.tier_target[i]) if n > 0 else None,
                tier_province=int(lg.tier_total[i]) if n > 0 else None,
            )
        )
    rows.sort(key=lambda r: (not r.ranked, r.rank or 0, r.unit.code))
    return tuple(rows)


def index_layout(spec: Spec) -> IndexLayout:
    """The criteria and elements of a questionnaire version, as the scoring engine wants them."""
    criteria: list[int] = []
    names: list[str] = []
    elements: list[tuple[str, tuple[int, ...]]] = []
    for section in spec.sections:
        members = [item for item in section.items if item.role == "criterion"]
        if not members:
            continue
        start = len(criteria)
        for item in members:
            criteria.append(spec.column_index[(item.id, None)])
            names.append(item.id)
        elements.append((section.id, tuple(range(start, len(criteria)))))
    if not criteria:
        raise NotFoundError(f"Questionnaire '{spec.code}' has no satisfaction criteria to score.")
    return IndexLayout(tuple(criteria), tuple(names), tuple(elements))


_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_CACHE_SIZE = 32


def _cached(key: tuple[Any, ...], compute: Any) -> Any:
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    value = compute()
    with _lock:
        _cache[key] = value
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return value


def _freshness(session: Session, wave: Wave) -> tuple[int, int, int]:
    """What changes when the wave's responses do: their count, the newest id, and the wave's revision."""
    count, newest = session.execute(
        select(func.count(), func.max(Response.id)).where(col(Response.wave_id) == wave.id)
    ).one()
    return int(count or 0), int(newest or 0), wave.revision


def wave_freshness(engine: Engine, *, wave_code: str) -> tuple[int, int, int] | None:
    """What a cached score of ``wave_code`` depends on (count, newest id, revision), or None for no such wave.

    For a background refresher: one indexed query that tells whether a wave's scores are stale.
    """
    with Session(engine) as session:
        wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
        return None if wave is None else _freshness(session, wave)


def mark_responses_changed(session: Session, *, wave_id: int) -> None:
    """Call in the transaction that changes stored responses (flags, corrections): scores recompute."""
    session.execute(update(Wave).where(col(Wave.id) == wave_id).values(revision=col(Wave.revision) + 1))


def wave_scores(
    engine: Engine,
    *,
    wave_code: str,
    level: str = "commune",
    scope: str = "own",
    measure: str = "index",
    aggregation: str = "mean_of_elements",
    min_responses: int | None = None,
    target: float | None = None,
    rank_method: str = "bootstrap",
    include_flagged: bool = False,
    count_reviewed: bool = True,
    weighting: str = "frame",
    channel: str = "all",
    field: str | None = None,
) -> WaveScores:
    """The scorecard and league table of every unit of ``level`` in a wave (cached until new responses).

    ``channel="receipt"`` keeps only receipt-backed responses (``"all"``, the default, keeps every channel);
    ``field`` (a procedure field's code) keeps only that field's responses. Both filter the loaded arrays
    before scoring and are part of the cache key.

    Headline figures leave flagged responses out, except those an officer cleared by review
    (``HEADLINE``); ``include_flagged`` keeps every response, and ``count_reviewed=False`` leaves the
    cleared ones out too (what a figure would be without the reviews).

    ``weighting="frame"`` weights each response by N_h / r_h (transactions over responses in its stratum,
    a procedure field of a unit) with a finite population correction, when the wave's quotas or the
    frame counts of its period cover every stratum; otherwise, or with ``"equal"``, all weigh the same.
    """
    if weighting not in ("frame", "equal"):
        raise ValueError("weighting must be 'frame' or 'equal'")
    if scope not in ("own", "subtree"):
        raise ValueError("scope must be 'own' or 'subtree'")
    if channel not in CHANNEL_FILTERS:
        raise ValueError(f"channel must be one of {CHANNEL_FILTERS}")
    with Session(engine) as session:
        field_id = _field_id(session, field)
        wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
        if wave is None or wave.id is None:
            raise NotFoundError(f"No wave with code '{wave_code}'.")
        version = session.get(QuestionnaireVersion, wave.questionnaire_version_id)
        assert version is not None and version.id is not None
        spec = spec_of(version)
        level_row = session.scalars(select(UnitLevel).where(col(UnitLevel.code) == level)).first()
        if level_row is None:
            known = ", ".join(session.scalars(select(col(UnitLevel.code))).all())
            raise NotFoundError(f"No unit level '{level}' (levels: {known}).")
        rows = session.execute(
            select(col(Unit.id), col(Unit.code), col(Unit.name_vi), col(Unit.name_en), col(Unit.path))
            .where(col(Unit.level_id) == level_row.id)
            .order_by(col(Unit.code))
        ).all()
        units = tuple(UnitRow(int(r[0] or 0), r[1], r[2], r[3], level, r[4]) for r in rows)
        all_paths = {int(i or 0): str(p) for i, p in session.execute(select(col(Unit.id), col(Unit.path)))}
        freshness = _freshness(session, wave)
        populations = _populations(session, wave) if weighting == "frame" else {}
        wave_id, version_id = wave.id, version.id
        min_n = wave.min_responses if min_responses is None else min_responses
        goal = wave.target / 100.0 if target is None else target
    arrays: WaveArrays = _cached(
        ("arrays", wave_id, version_id, freshness),
        lambda: load_wave(engine, wave_id=wave_id, version_id=version_id, spec=spec),
    )
    options = (level, scope, measure, aggregation, min_n, goal, rank_method, include_flagged, count_reviewed)
    frame_key = hash(tuple(sorted(populations.items())))
    return _cached(
        ("scores", wave_id, freshness, weighting, frame_key, channel, field_id, *options),
        lambda: _compute(
            _filtered(arrays, channel, field_id), spec, wave_code, units, all_paths, *options, populations
        ),
    )


CHANNEL_FILTERS = ("all", "receipt")


def _field_id(session: Session, field: str | None) -> int | None:
    """The id of the procedure field coded ``field`` (None for no filter); 404 for an unknown code."""
    if field is None:
        return None
    found = session.scalars(select(col(ProcedureField.id)).where(col(ProcedureField.code) == field)).first()
    if found is None:
        raise NotFoundError(f"No procedure field '{field}'.")
    return int(found)


def _filtered(arrays: WaveArrays, channel: str, field_id: int | None) -> WaveArrays:
    """The responses of one channel group and field (the arrays themselves when there is no filter)."""
    if channel == "all" and field_id is None:
        return arrays
    keep = np.ones(arrays.n, dtype=bool)
    if channel == "receipt":
        keep &= arrays.channel == int(Channel.receipt)
    if field_id is not None:
        keep &= arrays.field_id == field_id
    return replace(
        arrays,
        unit_id=arrays.unit_id[keep],
        field_id=arrays.field_id[keep],
        channel=arrays.channel[keep],
        flags=arrays.flags[keep],
        answers=arrays.answers[keep],
    )


def _populations(session: Session, wave: Wave) -> dict[tuple[int, int], int]:
    """Transactions per (unit, field) for the wave: its saved quotas, else the frame counts of its period."""
    quotas = session.execute(
        select(col(Quota.unit_id), col(Quota.field_id), col(Quota.population)).where(col(Quota.wave_id) == wave.id)
    ).all()
    if quotas:
        return {(int(u), int(f)): int(n) for u, f, n in quotas}
    rows = session.execute(
        select(col(FrameCount.unit_id), col(FrameCount.field_id), func.sum(FrameCount.transactions))
        .where(col(FrameCount.period_start) >= wave.starts_on, col(FrameCount.period_start) <= wave.ends_on)
        .group_by(col(FrameCount.unit_id), col(FrameCount.field_id))
    ).all()
    return {(int(u), int(f)): int(n or 0) for u, f, n in rows}


def _design(
    unit_id: np.ndarray, field_id: np.ndarray, strata: np.ndarray, populations: dict[tuple[int, int], int]
) -> tuple[Design, str, WeightDiagnostics | None]:
    """Weights from the frame, with an fpc where valid; equal weights where the frame cannot give them.

    Each response weighs N_h / r_h, transactions over responses in its stratum (a field of a unit): the
    base weight N_h / m_h of the m_h codes issued times the class nonresponse adjustment m_h / r_h, so
    the stratum's weights sum to its transactions. Strata of a unit with transactions but no response
    are collapsed into the unit: its weights are post-stratified to the unit's frame total.
    """
    if not populations or unit_id.size == 0 or (field_id < 0).any():
        return Design.build(strata=strata, lonely_psu="adjust"), "equal", None
    keys, first, responses = np.unique(strata, return_index=True, return_counts=True)
    pop = np.array([populations.get((int(unit_id[i]), int(field_id[i])), 0) for i in first], dtype=np.float64)
    if (pop <= 0).any():
        return Design.build(strata=strata, lonely_psu="adjust"), "equal (the frame misses some strata)", None
    position = np.searchsorted(keys, strata)
    with np.errstate(all="ignore"):
        weights = np.maximum(pop / responses, 0.0)[position]
    units, unit_pos = np.unique(unit_id, return_inverse=True)
    unit_total: dict[int, int] = {}
    for (u, _f), n in populations.items():
        unit_total[u] = unit_total.get(u, 0) + n
    covered = {(int(unit_id[i]), int(field_id[i])) for i in first}
    present = set(units.tolist())
    empty = sum(1 for (u, f), n in populations.items() if n > 0 and u in present and (u, f) not in covered)
    label = "frame (N_h / r_h"
    if empty:
        weights = poststratify(weights, unit_pos, np.array([unit_total[int(u)] for u in units], dtype=np.float64))
        label += f"; {empty} strata without responses collapsed into their unit"
    diag = diagnostics(weights)
    if (pop >= responses).all():
        design = Design.build(weights=weights, strata=strata, population_psus=pop[position], lonely_psu="adjust")
        return design, label + ", with fpc)", diag
    return Design.build(weights=weights, strata=strata, lonely_psu="adjust"), label + ", no fpc: r_h > N_h)", diag


def _compute(
    arrays: WaveArrays,
    spec: Spec,
    wave_code: str,
    units: tuple[UnitRow, ...],
    all_paths: dict[int, str],
    level: str,
    scope: str,
    measure: str,
    aggregation: str,
    min_n: int,
    goal: float,
    rank_method: str,
    include_flagged: bool,
    count_reviewed: bool,
    populations: dict[tuple[int, int], int],
) -> WaveScores:
    if include_flagged:
        keep = np.ones(arrays.n, dtype=bool)
    else:
        keep = np.isin(arrays.flags, HEADLINE) if count_reviewed else arrays.flags == 0
    unit_id = arrays.unit_id[keep]
    field_id = arrays.field_id[keep]
    answers = arrays.answers[keep]
    layout = index_layout(spec)
    # strata: procedure fields within units (a missing field is a stratum of its own)
    strata = unit_id.astype(np.int64) * 100_003 + (field_id.astype(np.int64) + 1)
    design, weighting, weight_diagnostics = _design(unit_id, field_id, strata, populations)
    position = {u.id: i for i, u in enumerate(units)}
    if scope == "own":
        lookup = position
    else:  # each response counts for the level's unit on its path
        lookup = {}
        for uid, path in all_paths.items():
            for part in path.strip("/").split("/"):
                if part and int(part) in position:
                    lookup[uid] = position[int(part)]
    max_id = int(max(all_paths)) + 1 if all_paths else 1
    table = np.full(max_id, -1, dtype=np.int64)
    for uid, g in lookup.items():
        table[uid] = g
    domain = table[unit_id]
    card = scorecard(
        design, answers, layout, domain=domain, n_domains=len(units), aggregation=aggregation, compare_with_total=True
    )
    assert card.total is not None  # compare_with_total gives the whole sample's card too
    total = card.total
    if measure not in card.measures:
        raise NotFoundError(f"No measure '{measure}' (measures: {', '.join(card.measures)}).")
    j = card.column(measure)
    assert card.vs_total_se is not None
    ranks = league(
        card.point[:, j],
        card.se[:, j],
        card.n[:, j],
        card.lower[:, j],
        card.upper[:, j],
        min_responses=min_n,
        target=goal,
        total_point=float(total.point[0, j]),
        vs_total_se=card.vs_total_se[:, j],
        df=card.df,
        level=card.level,
        rank_method=rank_method,
    )
    return WaveScores(
        wave_code=wave_code,
        level=level,
        scope=scope,
        units=units,
        card=card,
        total=total,
        league=ranks,
        measure=measure,
        target=goal,
        min_responses=min_n,
        responses=int(keep.sum()),
        excluded_flagged=int((~keep).sum()),
        weighting=weighting,
        weights=weight_diagnostics,
    )


def compare_waves(earlier: WaveScores, later: WaveScores) -> Change:
    """Each unit's change in the measure from ``earlier`` to ``later`` (the same level and measure)."""
    if earlier.level != later.level or earlier.measure != later.measure:
        raise ValueError("compare waves on the same level and measure")
    position = {u.id: i for i, u in enumerate(earlier.units)}
    j1, j2 = earlier.card.column(earlier.measure), later.card.column(later.measure)
    idx = np.array([position.get(u.id, -1) for u in later.units])
    found = idx >= 0
    safe = np.where(found, idx, 0)
    nan = np.full(idx.size, np.nan)
    return wave_change(
        np.where(found, earlier.card.point[safe, j1], nan),
        np.where(found, earlier.card.se[safe, j1], nan),
        np.where(found, earlier.card.df[safe], 0),
        later.card.point[:, j2],
        later.card.se[:, j2],
        later.card.df,
        level=later.card.level,
    )
