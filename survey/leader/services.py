"""What the leader pages and the read API ask of the database and the scores, always inside one unit subtree.

Scores come from the app's `Board` (computed once, refreshed in the background); everything a page
shows is restricted here to the viewer's subtree (``Unit.path`` prefix), never in a template. A viewer
sees only the waves that survey a unit of the subtree (``list_waves``); any other wave is 404 for them.
Ranks stay those of the wave's whole league table (the province's), so a district leader sees where
its communes stand among all communes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

import numpy as np
from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from sampling.quota import QuotaStatus
from scoring.change import Change
from survey.db.models import (
    ProcedureField,
    QuestionnaireVersion,
    Response,
    Unit,
    UnitLevel,
    Wave,
    WaveStatus,
    WaveUnit,
)
from survey.errors import ForbiddenError, NotFoundError
from survey.fieldwork.progress import UnitProgress, wave_progress
from survey.i18n import N_
from survey.integrity.flags import HEADLINE, Flag
from survey.leader.board import Board
from survey.questionnaires.spec import Spec, spec_of
from survey.results.scores import CHANNEL_FILTERS, WaveScores, compare_waves, index_layout, wave_scores

# The demo province's plan targets (Tây Ninh: at least 90% by 2025, 95% by 2030; METHOD.md). A wave's own
# target (``Wave.target``) drives the tiers; these milestones are shown beside the headline.
PLAN_TARGETS: tuple[tuple[int, float], ...] = ((2025, 0.90), (2030, 0.95))
PROGRESS_MAX_AGE = 300.0  # receipt codes issued change response rates without new responses: at most 5 min old
SORTS = ("rank", "index", "n", "name", "rate")
NO_PERMISSION = N_("This unit is outside your scope.")


@dataclass(frozen=True, slots=True)
class WaveInfo:
    id: int
    code: str
    name_vi: str
    name_en: str
    status: str
    starts_on: date
    ends_on: date
    target: float  # a share in [0, 1]
    min_responses: int
    questionnaire_id: int
    version_id: int
    spec: Spec

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class Choice:
    code: str
    name_vi: str
    name_en: str

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class UnitInfo:
    id: int
    code: str
    name_vi: str
    name_en: str
    path: str
    level: str
    parent_id: int | None

    def name(self, locale: str) -> str:
        return self.name_en if locale == "en" else self.name_vi


@dataclass(frozen=True, slots=True)
class Query:
    """A league table's parameters (from the page's GET form or the API), validated."""

    level: str
    measure: str = "index"
    channel: str = "all"
    field: str | None = None
    sort: str = "rank"


def _wave_info(wave: Wave, version: QuestionnaireVersion) -> WaveInfo:
    assert wave.id is not None and version.id is not None
    return WaveInfo(
        id=wave.id,
        code=wave.code,
        name_vi=wave.name_vi,
        name_en=wave.name_en,
        status=wave.status,
        starts_on=wave.starts_on,
        ends_on=wave.ends_on,
        target=wave.target / 100.0,
        min_responses=wave.min_responses,
        questionnaire_id=version.questionnaire_id,
        version_id=version.id,
        spec=spec_of(version),
    )


def _scored(spec: Spec) -> bool:
    return any(item.role == "criterion" for item in spec.items)


def list_waves(db: Session, *, unit_path: str) -> list[WaveInfo]:
    """Waves that can be scored (not drafts; questionnaires with criteria) and survey at least one unit of the
    subtree at ``unit_path``, newest first."""
    touching = (
        select(col(WaveUnit.wave_id))
        .join(Unit, col(Unit.id) == col(WaveUnit.unit_id))
        .where(col(Unit.path).startswith(unit_path, autoescape=True))
    )
    rows = db.execute(
        select(Wave, QuestionnaireVersion)
        .join(QuestionnaireVersion, col(QuestionnaireVersion.id) == col(Wave.questionnaire_version_id))
        .where(col(Wave.status) != WaveStatus.draft.value, col(Wave.id).in_(touching))
        .order_by(col(Wave.starts_on).desc(), col(Wave.id).desc())
    ).all()
    waves = [_wave_info(w, v) for w, v in rows]
    return [w for w in waves if _scored(w.spec)]


def find_wave(db: Session, code: str | None, *, unit_path: str) -> WaveInfo:
    """The wave ``code`` among those of the subtree at ``unit_path`` (404 for any other, or one that cannot be
    scored), or the newest of them when ``code`` is None."""
    waves = list_waves(db, unit_path=unit_path)
    if code is None:
        if not waves:
            raise NotFoundError(N_("There is no survey wave with results yet."))
        return waves[0]
    for w in waves:
        if w.code == code:
            return w
    raise NotFoundError(N_("There is no survey wave with this code."))


def previous_wave(db: Session, wave: WaveInfo, *, unit_path: str) -> WaveInfo | None:
    """The latest wave of the same questionnaire, of the subtree at ``unit_path``, that started before ``wave``."""
    earlier = [
        w
        for w in list_waves(db, unit_path=unit_path)
        if w.questionnaire_id == wave.questionnaire_id and w.starts_on < wave.starts_on
    ]
    return earlier[0] if earlier else None


def trend_waves(db: Session, wave: WaveInfo, *, unit_path: str) -> list[WaveInfo]:
    """Waves of the same questionnaire, of the subtree at ``unit_path``, up to ``wave``, oldest first."""
    same = [
        w
        for w in list_waves(db, unit_path=unit_path)
        if w.questionnaire_id == wave.questionnaire_id and w.starts_on <= wave.starts_on
    ]
    return sorted(same, key=lambda w: (w.starts_on, w.id))


def unit_info(db: Session, unit_id: int) -> UnitInfo | None:
    row = db.execute(
        select(Unit, col(UnitLevel.code))
        .join(UnitLevel, col(UnitLevel.id) == col(Unit.level_id))
        .where(col(Unit.id) == unit_id)
    ).first()
    if row is None:
        return None
    unit, level = row
    assert unit.id is not None
    return UnitInfo(unit.id, unit.code, unit.name_vi, unit.name_en, unit.path, level, unit.parent_id)


def scoped_unit(db: Session, *, unit_path: str, unit_id: int | None = None, unit_code: str | None = None) -> UnitInfo:
    """A unit of the viewer's subtree: 404 if there is none, 403 if it lies outside ``unit_path``."""
    if unit_code is not None:
        found = db.scalars(select(col(Unit.id)).where(col(Unit.code) == unit_code)).first()
        unit_id = int(found) if found is not None else None
    unit = unit_info(db, unit_id) if unit_id is not None else None
    if unit is None:
        raise NotFoundError(N_("There is no such unit."))
    if not unit.path.startswith(unit_path):
        raise ForbiddenError(NO_PERMISSION)
    return unit


def levels_below(db: Session, *, unit_path: str, root_id: int) -> list[Choice]:
    """The unit levels in the subtree at ``unit_path`` (its root left out unless it is alone), shallow first."""
    rows = db.execute(
        select(col(UnitLevel.code), col(UnitLevel.name_vi), col(UnitLevel.name_en), col(UnitLevel.depth))
        .join(Unit, col(Unit.level_id) == col(UnitLevel.id))
        .where(col(Unit.path).startswith(unit_path), col(Unit.id) != root_id)
        .group_by(col(UnitLevel.code), col(UnitLevel.name_vi), col(UnitLevel.name_en), col(UnitLevel.depth))
        .order_by(col(UnitLevel.depth), col(UnitLevel.code))
    ).all()
    if not rows:
        rows = db.execute(
            select(col(UnitLevel.code), col(UnitLevel.name_vi), col(UnitLevel.name_en), col(UnitLevel.depth))
            .join(Unit, col(Unit.level_id) == col(UnitLevel.id))
            .where(col(Unit.id) == root_id)
        ).all()
    return [Choice(str(c), str(vi), str(en)) for c, vi, en, _ in rows]


def field_choices(db: Session) -> list[Choice]:
    rows = db.execute(
        select(col(ProcedureField.code), col(ProcedureField.name_vi), col(ProcedureField.name_en)).order_by(
            col(ProcedureField.code)
        )
    ).all()
    return [Choice(str(c), str(vi), str(en)) for c, vi, en in rows]


def element_choices(spec: Spec) -> list[Choice]:
    layout = index_layout(spec)
    titles = {s.id: s.title for s in spec.sections}
    return [Choice(name, titles[name].vi, titles[name].en) for name, _ in layout.elements]


def parse_query(
    *,
    level: str | None,
    levels: list[Choice],
    measure: str | None,
    spec: Spec,
    channel: str | None,
    field: str | None,
    fields: list[Choice],
    sort: str | None,
) -> Query:
    """The league's parameters: unknown values fall back to the defaults (a page never fails on a bad link)."""
    level_codes = [c.code for c in levels]
    elements = [c.code for c in element_choices(spec)]
    return Query(
        level=level if level in level_codes else (level_codes[0] if level_codes else "commune"),
        measure=measure if measure in elements else "index",
        channel=channel if channel in CHANNEL_FILTERS else "all",
        field=field if field in {f.code for f in fields} else None,
        sort=sort if sort in SORTS else "rank",
    )


# --- scores from the board ---------------------------------------------------------------------------------


def scores(
    board: Board,
    *,
    wave_code: str,
    level: str,
    scope: str = "own",
    measure: str = "index",
    channel: str = "all",
    field: str | None = None,
    count_reviewed: bool = True,
) -> WaveScores:
    """A level's scores from the board (computed on the first request only; refreshed in the background)."""
    engine: Engine = board.engine
    key = ("scores", wave_code, level, scope, measure, channel, field, count_reviewed)
    return board.get(
        key,
        lambda: wave_scores(
            engine,
            wave_code=wave_code,
            level=level,
            scope=scope,
            measure=measure,
            channel=channel,
            field=field,
            count_reviewed=count_reviewed,
        ),
        wave_code=wave_code,
    )


def progress_by_unit(board: Board, *, wave_code: str, today: date) -> dict[int, UnitProgress]:
    """Each planned unit's fieldwork progress (response rate, quota status), from the board."""
    engine: Engine = board.engine

    def compute() -> dict[int, UnitProgress]:
        with Session(engine) as s:
            return {u.unit_id: u for u in wave_progress(s, wave_code=wave_code, today=today).units}

    return board.get(("progress", wave_code, today), compute, wave_code=wave_code, max_age=PROGRESS_MAX_AGE)


def within(ws: WaveScores, unit_path: str) -> list[int]:
    """Positions in ``ws.units`` of the units inside the subtree at ``unit_path``."""
    return [i for i, u in enumerate(ws.units) if u.path.startswith(unit_path)]


def position_of(ws: WaveScores, unit_id: int) -> int | None:
    return next((i for i, u in enumerate(ws.units) if u.id == unit_id), None)


def subset(ws: WaveScores, idx: list[int]) -> WaveScores:
    """``ws`` with only the units at ``idx`` (their ranks, tiers and province figures unchanged)."""
    take = np.asarray(idx, dtype=np.int64)
    card = ws.card
    sliced = replace(
        card,
        point=card.point[take],
        se=card.se[take],
        lower=card.lower[take],
        upper=card.upper[take],
        n=card.n[take],
        n_eff=card.n_eff[take],
        deff=card.deff[take],
        df=card.df[take],
        n_any=card.n_any[take],
        reliability=card.reliability[take],
        vs_total_se=None if card.vs_total_se is None else card.vs_total_se[take],
    )
    lg = ws.league
    league = replace(
        lg,
        ranked=lg.ranked[take],
        rank=lg.rank[take],
        marginal_lower=lg.marginal_lower[take],
        marginal_upper=lg.marginal_upper[take],
        simultaneous_lower=lg.simultaneous_lower[take],
        simultaneous_upper=lg.simultaneous_upper[take],
        tier_target=lg.tier_target[take],
        tier_total=lg.tier_total[take],
    )
    return replace(ws, units=tuple(ws.units[i] for i in idx), card=sliced, league=league)


def change_between(board: Board, earlier: WaveInfo, ws: WaveScores) -> Change:
    """Each unit's change in ``ws``'s measure since ``earlier`` (same level, scope and filters)."""
    before = scores(board, wave_code=earlier.code, level=ws.level, scope=ws.scope, measure=ws.measure)
    return compare_waves(before, ws)


# --- a unit's own rows: reviews, expectations and comments ----------------------------------------------------


def reviewed_share(db: Session, *, wave: WaveInfo, unit_id: int) -> tuple[int, int]:
    """(responses cleared by review, responses in the headline figures) of the unit's own responses."""
    counted, cleared = db.execute(
        select(
            func.count(),
            func.sum(case((col(Response.flags) == int(Flag.REVIEWED_OK), 1), else_=0)),
        ).where(
            col(Response.wave_id) == wave.id,
            col(Response.unit_id) == unit_id,
            col(Response.questionnaire_version_id) == wave.version_id,
            col(Response.flags).in_(HEADLINE),
        )
    ).one()
    return int(cleared or 0), int(counted or 0)


@dataclass(frozen=True, slots=True)
class Share:
    code: str
    label: str
    count: int
    share: float


def expectations(db: Session, *, wave: WaveInfo, unit_id: int, locale: str) -> tuple[int, list[Share]]:
    """Areas to improve: the share of the unit's (unflagged) respondents who chose each, most chosen first.

    The denominator is the respondents who chose at least one area; shares sum past 100%.
    """
    spec = wave.spec
    items = [i for i in spec.items if i.role == "expectation" and i.type == "multi"]
    if not items:
        return 0, []
    blobs = db.scalars(
        select(col(Response.answers)).where(
            col(Response.wave_id) == wave.id,
            col(Response.unit_id) == unit_id,
            col(Response.questionnaire_version_id) == wave.version_id,
            col(Response.flags).in_(HEADLINE),
        )
    ).all()
    width = len(spec.layout)
    if not blobs:
        return 0, []
    answers = np.frombuffer(b"".join(blobs), dtype=np.uint8).reshape(len(blobs), width)
    item = items[0]
    options = spec.options_of(item)
    columns = [spec.column_index[(item.id, o.value)] for o in options]
    chosen = answers[:, columns] == 1
    base = int(chosen.any(axis=1).sum())
    counts = chosen.sum(axis=0)
    shares = [
        Share(o.value, o.label.get(locale), int(c), (int(c) / base) if base else 0.0)
        for o, c in zip(options, counts, strict=True)
    ]
    return base, sorted(shares, key=lambda s: (-s.count, s.code))


@dataclass(frozen=True, slots=True)
class Comment:
    month: str  # "2026-05": the coarsest time that still orders them; never the bucketed minute
    text: str
    flagged: bool


COMMENT_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Comments:
    """What the unit page shows of a unit's comments."""

    shown: list[Comment]  # newest first, at most COMMENT_LIMIT
    total: int
    flagged: int
    hidden: bool  # fewer than the minimum cell size of responses: no comment and no count is shown


def comments(db: Session, *, wave: WaveInfo, unit_id: int, show_flagged: bool, min_cell: int) -> Comments:
    """The unit's comments, newest first (at most ``COMMENT_LIMIT``), with the total and the flagged count.

    Only the text and the month: no counter, no field, no exact time, nothing that could point at a person.
    A unit with fewer than ``min_cell`` responses that count in its indices (``HEADLINE``) shows none: among
    so few respondents a comment points at its writer.
    """
    respondents = db.scalar(
        select(func.count()).where(
            col(Response.wave_id) == wave.id,
            col(Response.unit_id) == unit_id,
            col(Response.flags).in_(HEADLINE),
        )
    )
    if int(respondents or 0) < min_cell:
        return Comments([], 0, 0, hidden=True)
    base = [
        col(Response.wave_id) == wave.id,
        col(Response.unit_id) == unit_id,
        col(Response.comment).is_not(None),
        col(Response.comment) != "",
    ]
    flagged = int(db.scalar(select(func.count()).where(*base, col(Response.flags) != 0)) or 0)
    total = int(db.scalar(select(func.count()).where(*base)) or 0)
    where = base if show_flagged else [*base, col(Response.flags).in_(HEADLINE)]
    rows = db.execute(
        select(col(Response.submitted_at), col(Response.comment), col(Response.flags))
        .where(*where)
        .order_by(col(Response.submitted_at).desc(), col(Response.id).desc())
        .limit(COMMENT_LIMIT)
    ).all()
    out = [Comment(_month(at), str(text), int(flags) != 0) for at, text, flags in rows]
    return Comments(out, total, flagged, hidden=False)


def _month(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


QUOTA_LABELS: dict[int, str] = {
    int(QuotaStatus.NOT_PLANNED): N_("not planned"),
    int(QuotaStatus.BEHIND): N_("behind schedule"),
    int(QuotaStatus.ON_TRACK): N_("on track"),
    int(QuotaStatus.DONE): N_("quota reached"),
    int(QuotaStatus.OVER): N_("well over the quota"),
}


def unit_codes_within(db: Session, unit_path: str) -> set[str]:
    """The codes of every unit in the subtree at ``unit_path``."""
    return {str(c) for c in db.scalars(select(col(Unit.code)).where(col(Unit.path).startswith(unit_path)))}
