"""What each leader page shows, built from the scores of the board and restricted to the viewer's subtree.

Numbers stay shares in [0, 1] here; templates format them (``pct``) and draw the interval bars from
the geometry computed here (``Bar``), so no template does arithmetic on estimates.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from scoring.indices import Estimate
from survey.errors import NotFoundError
from survey.fieldwork.progress import UnitProgress
from survey.i18n import N_
from survey.leader import services as sv
from survey.leader.board import Board
from survey.leader.charts import TrendPoint, caterpillar_svg, funnel_svg, trend_svg
from survey.leader.charts.geometry import percent_domain
from survey.results.exports import Table, scorecard_table
from survey.results.scores import LeagueRow, UnitRow, WaveScores, league_rows

BAR_WIDTH = 160.0


@dataclass(frozen=True, slots=True)
class Bar:
    """An interval drawn on a 0..BAR_WIDTH scale: the interval, the point, the target and the province."""

    lo: float
    hi: float
    x: float
    target: float
    province: float


class BarScale:
    def __init__(self, values: list[float], target: float, province: float) -> None:
        self.d0, self.d1 = percent_domain([*values, target * 100, province * 100])
        self.target, self.province = self(target), self(province)

    def __call__(self, share: float) -> float:
        value = min(max(share * 100, self.d0), self.d1)
        return round((value - self.d0) / (self.d1 - self.d0) * BAR_WIDTH, 1)

    def bar(self, point: float | None, lower: float | None, upper: float | None) -> Bar | None:
        if point is None or lower is None or upper is None:
            return None
        if not (math.isfinite(point) and math.isfinite(lower) and math.isfinite(upper)):
            return None
        return Bar(self(lower), self(upper), self(point), self.target, self.province)


@dataclass(frozen=True)
class League:
    wave: sv.WaveInfo
    query: sv.Query
    ws: WaveScores  # restricted to the viewer's units
    ranked: list[LeagueRow]  # in league order, or in the order the viewer chose (``query.sort``)
    unranked: list[LeagueRow]  # in league order
    ranked_total: int  # ranked units in the whole wave (ranks are among these)
    has_plan: bool
    scale: BarScale
    bars: dict[int, Bar | None]  # unit id -> its interval bar
    funnel: str
    caterpillar: str


_charts: OrderedDict[tuple[Any, ...], tuple[WaveScores, str, str]] = OrderedDict()
_charts_lock = threading.Lock()


def _charts_for(full: WaveScores, ws: WaveScores, path: str, locale: str, level_name: str) -> tuple[str, str]:
    """The funnel and caterpillar SVGs of ``ws``, kept while ``full`` (the board's result) is unchanged."""
    key = (id(full), path, locale, level_name)
    with _charts_lock:
        hit = _charts.get(key)
        if hit is not None and hit[0] is full:
            return hit[1], hit[2]
    funnel = funnel_svg(ws, locale=locale, level_name=level_name, chart_id="funnel")
    caterpillar = caterpillar_svg(ws, locale=locale, level_name=level_name, chart_id="caterpillar", label_limit=60)
    with _charts_lock:
        _charts[key] = (full, funnel, caterpillar)
        while len(_charts) > 64:
            _charts.popitem(last=False)
    return funnel, caterpillar


def _bars(rows: tuple[LeagueRow, ...], scale: BarScale) -> dict[int, Bar | None]:
    return {r.unit.id: scale.bar(r.index, r.lower, r.upper) for r in rows}


def _sort(rows: list[LeagueRow], how: str, locale: str) -> list[LeagueRow]:
    """``rows`` (in league order) in the order the viewer chose; "rank" keeps the league order."""
    if how == "index":
        return sorted(rows, key=lambda r: (-(r.index if r.index is not None else -1.0), r.unit.code))
    if how == "n":
        return sorted(rows, key=lambda r: (-r.n, r.unit.code))
    if how == "name":
        return sorted(rows, key=lambda r: ((r.unit.name_en if locale == "en" else r.unit.name_vi).lower(), r.unit.code))
    if how == "rate":
        return sorted(rows, key=lambda r: (r.response_rate is None, -(r.response_rate or 0.0), r.unit.code))
    return rows


def league(
    board: Board, *, wave: sv.WaveInfo, query: sv.Query, unit_path: str, today: date, locale: str, level_name: str
) -> League:
    full = sv.scores(
        board, wave_code=wave.code, level=query.level, measure=query.measure, channel=query.channel, field=query.field
    )
    ws = sv.subset(full, sv.within(full, unit_path))
    progress = sv.progress_by_unit(board, wave_code=wave.code, today=today)
    j = ws.card.column(ws.measure)
    shown = [float(v) * 100 for v in ws.card.point[:, j] if math.isfinite(v)]
    scale = BarScale(shown, ws.target, float(ws.total.point[0, j]))
    rates = {u: p.response_rate for u, p in progress.items() if p.response_rate is not None}
    rows = league_rows(ws, response_rates=rates)
    funnel, caterpillar = _charts_for(full, ws, unit_path, locale, level_name)
    return League(
        wave=wave,
        query=query,
        ws=ws,
        ranked=_sort([r for r in rows if r.ranked], query.sort, locale),
        unranked=[r for r in rows if not r.ranked],
        ranked_total=int(full.league.ranked.sum()),
        has_plan=bool(progress),
        scale=scale,
        bars=_bars(rows, scale),
        funnel=funnel,
        caterpillar=caterpillar,
    )


# --- the overview --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    label: str
    point: float
    lower: float
    upper: float
    n: int
    province: float | None = None
    tier: int = 0


@dataclass(frozen=True, slots=True)
class Changed:
    unit: UnitRow
    diff: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Overview:
    wave: sv.WaveInfo
    root: sv.UnitInfo
    level: str
    headline: Figure
    milestones: list[tuple[int, float, int]]  # (year, target, tier of the headline's interval against it)
    elements: list[Figure]
    distribution: list[tuple[str, int]]  # (band label, units)
    tiers: dict[int, int]  # tier against the target -> ranked units
    unranked: int
    lowest: list[LeagueRow]
    highest: list[LeagueRow]
    previous: sv.WaveInfo | None
    headline_change: Changed | None
    changed: list[Changed]
    scale: BarScale
    bars: dict[int, Bar | None]  # unit id -> its interval bar


BANDS = ((0.0, 0.80), (0.80, 0.85), (0.85, 0.90), (0.90, 0.95), (0.95, 1.0001))


def _tier(lower: float, upper: float, value: float) -> int:
    return 1 if lower > value else (-1 if upper < value else 0)


def overview(db: Session, board: Board, *, wave: sv.WaveInfo, root: sv.UnitInfo, level: str, locale: str) -> Overview:
    top = sv.scores(board, wave_code=wave.code, level=root.level, scope="subtree")
    g = sv.position_of(top, root.id)
    card = top.card if g is not None else top.total
    g = 0 if g is None else g
    e = card.get(g, "index")
    headline = Figure(
        root.name(locale), e.point, e.lower, e.upper, e.n, top.province.point, _tier(e.lower, e.upper, wave.target)
    )
    milestones = [(year, goal, _tier(e.lower, e.upper, goal)) for year, goal in sv.PLAN_TARGETS]
    titles = {c.code: c for c in sv.element_choices(wave.spec)}
    elements = []
    for name, choice in titles.items():
        x = card.get(g, name)
        elements.append(
            Figure(
                choice.name(locale),
                x.point,
                x.lower,
                x.upper,
                x.n,
                float(top.total.point[0, top.total.column(name)]),
                _tier(x.lower, x.upper, wave.target),
            )
        )
    full = sv.scores(board, wave_code=wave.code, level=level)
    idx = sv.within(full, root.path)
    ws = sv.subset(full, idx)
    j = ws.card.column("index")
    shown = [float(v) * 100 for v in ws.card.point[:, j] if math.isfinite(v)]
    scale = BarScale(shown, ws.target, float(ws.total.point[0, j]))
    rows = league_rows(ws)
    ranked = [r for r in rows if r.ranked]
    points = [r.index for r in ranked if r.index is not None]  # every ranked unit has an index
    distribution = [
        (f"{lo * 100:g}–{min(hi, 1.0) * 100:g}", sum(1 for x in points if lo <= x < hi)) for lo, hi in BANDS
    ]
    tiers = {t: sum(1 for r in ranked if r.tier_target == t) for t in (1, 0, -1)}
    by_point = sorted(ranked, key=lambda r: (r.index or 0.0, r.unit.code))
    previous = sv.previous_wave(db, wave, unit_path=root.path)
    changed: list[Changed] = []
    headline_change = None
    if previous is not None:
        change = sv.change_between(board, previous, full)
        for i in idx:
            if change.significant[i]:
                changed.append(
                    Changed(full.units[i], float(change.diff[i]), float(change.lower[i]), float(change.upper[i]))
                )
        changed.sort(key=lambda c: c.diff)
        top_change = sv.change_between(board, previous, top)
        k = sv.position_of(top, root.id)
        if k is not None and math.isfinite(float(top_change.lower[k])):
            headline_change = Changed(
                top.units[k], float(top_change.diff[k]), float(top_change.lower[k]), float(top_change.upper[k])
            )
    return Overview(
        wave=wave,
        root=root,
        level=level,
        headline=headline,
        milestones=milestones,
        elements=elements,
        distribution=distribution,
        tiers=tiers,
        unranked=len(rows) - len(ranked),
        lowest=by_point[:5],
        highest=list(reversed(by_point[-5:])) if len(by_point) > 5 else list(reversed(by_point)),
        previous=previous,
        headline_change=headline_change,
        changed=changed,
        scale=scale,
        bars=_bars(rows, scale),
    )


# --- a unit --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitPage:
    wave: sv.WaveInfo
    unit: sv.UnitInfo
    parent: sv.UnitInfo | None
    ws: WaveScores
    position: int
    table: Table  # the scorecard (the same rows as its export)
    parent_points: dict[str, float]  # measure -> the parent's (subtree) index
    previous: sv.WaveInfo | None
    change: Changed | None
    significant: bool
    trend: str
    respondents_choosing: int
    expectations: list[sv.Share]
    comments: list[sv.Comment]
    comments_total: int
    comments_flagged: int
    comments_hidden: bool  # the unit has fewer than min_cell responses
    min_cell: int
    show_flagged: bool
    progress: UnitProgress | None
    reviewed: int  # of the unit's responses in the headline figures, those cleared by a review of their flags
    counted: int  # the unit's responses in the headline figures
    without_reviewed: Estimate | None  # the overall index without the cleared ones (when there are any)


def unit_page(
    db: Session,
    board: Board,
    *,
    wave: sv.WaveInfo,
    unit: sv.UnitInfo,
    locale: str,
    today: date,
    show_flagged: bool,
    trend_title: str,
    min_cell: int,
) -> UnitPage:
    ws = sv.scores(board, wave_code=wave.code, level=unit.level)
    g = sv.position_of(ws, unit.id)
    if g is None:
        raise NotFoundError(N_("There is no such unit."))
    table = scorecard_table(ws, g, locale=locale, spec=wave.spec)
    parent = sv.unit_info(db, unit.parent_id) if unit.parent_id is not None else None
    parent_points: dict[str, float] = {}
    if parent is not None:
        pws = sv.scores(board, wave_code=wave.code, level=parent.level, scope="subtree")
        k = sv.position_of(pws, parent.id)
        if k is not None:
            parent_points = {m: float(pws.card.point[k, c]) for c, m in enumerate(pws.card.measures)}
    previous = sv.previous_wave(db, wave, unit_path=unit.path)
    change, significant = None, False
    if previous is not None:
        ch = sv.change_between(board, previous, ws)
        if math.isfinite(float(ch.lower[g])):
            change = Changed(ws.units[g], float(ch.diff[g]), float(ch.lower[g]), float(ch.upper[g]))
            significant = bool(ch.significant[g])
    points = []
    trend_waves = sv.trend_waves(db, wave, unit_path=unit.path)  # waves that survey the unit or a unit below it
    if all(w.code != wave.code for w in trend_waves):
        trend_waves.append(wave)  # this one (the viewer's) even if it surveys neither: the point says "no responses"
    for w in trend_waves:
        tws = ws if w.code == wave.code else sv.scores(board, wave_code=w.code, level=unit.level)
        k = sv.position_of(tws, unit.id)
        est = tws.estimate(k) if k is not None else None
        points.append(
            TrendPoint(
                w.code,
                w.code,
                est.point if est else math.nan,
                est.lower if est else math.nan,
                est.upper if est else math.nan,
                est.n if est else 0,
            )
        )
    trend = trend_svg(points, target=wave.target, title=trend_title, locale=locale)
    base, shares = sv.expectations(db, wave=wave, unit_id=unit.id, locale=locale)
    said = sv.comments(db, wave=wave, unit_id=unit.id, show_flagged=show_flagged, min_cell=min_cell)
    progress = sv.progress_by_unit(board, wave_code=wave.code, today=today).get(unit.id)
    reviewed, counted = sv.reviewed_share(db, wave=wave, unit_id=unit.id)
    without_reviewed = None
    if reviewed:
        strict = sv.scores(board, wave_code=wave.code, level=unit.level, count_reviewed=False)
        k = sv.position_of(strict, unit.id)
        without_reviewed = strict.estimate(k) if k is not None else None
    return UnitPage(
        wave=wave,
        unit=unit,
        parent=parent,
        ws=ws,
        position=g,
        table=table,
        parent_points=parent_points,
        previous=previous,
        change=change,
        significant=significant,
        trend=trend,
        respondents_choosing=base,
        expectations=shares,
        comments=said.shown,
        comments_total=said.total,
        comments_flagged=said.flagged,
        comments_hidden=said.hidden,
        min_cell=min_cell,
        show_flagged=show_flagged,
        progress=progress,
        reviewed=reviewed,
        counted=counted,
        without_reviewed=without_reviewed,
    )
