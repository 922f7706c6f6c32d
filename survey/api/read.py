"""The read-only JSON API for BI tools (``/api/v1``): waves, league tables and scorecards.

Authenticated with API keys that have the ``read`` scope; every answer is restricted to the key's
unit subtree (a unit outside it: 403; a wave that surveys no unit of it: 404, and it is not listed).
Scores come from the app's board, like the leader pages.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, Parameter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from survey.api.controllers import provide_caller
from survey.api.keys import Caller
from survey.api.schemas import problem_responses
from survey.errors import ForbiddenError
from survey.leader import services as sv
from survey.leader.board import board_of
from survey.results.exports import scorecard_table
from survey.results.scores import TIER_NAMES, league_rows


class WaveOut(BaseModel):
    code: str
    name_vi: str
    name_en: str
    status: str
    starts_on: date
    ends_on: date
    target: float = Field(description="the wave's target index, in percent")
    min_responses: int = Field(description="units with fewer responses are not ranked")


class LeagueRow(BaseModel):
    unit: str = Field(description="the unit's code")
    name_vi: str
    name_en: str
    ranked: bool = Field(description="false: insufficient data (fewer than min_responses), never ranked")
    rank: int | None = None
    rank_lower: int | None = Field(default=None, description="95% rank interval: from")
    rank_upper: int | None = Field(default=None, description="95% rank interval: to")
    index: float | None = Field(default=None, description="percent")
    lower: float | None = Field(default=None, description="95% interval, percent")
    upper: float | None = None
    n: int
    tier_target: str | None = Field(default=None, description="above / indistinguishable / below the target")
    tier_province: str | None = None


class League(BaseModel):
    wave: str
    level: str
    measure: str
    channel: str
    field: str | None
    province: float = Field(description="the whole wave's index, percent")
    target: float
    min_responses: int
    ranked_units: int = Field(description="ranks are among this many ranked units of the whole wave")
    generated_at: datetime
    rows: list[LeagueRow] = Field(
        description="ranked units by rank (ties by unit code), then the units with insufficient data by unit code"
    )


class ScorecardRow(BaseModel):
    kind: str = Field(description="index, element or criterion")
    measure: str
    label_vi: str
    label_en: str
    index: float | None = None
    lower: float | None = None
    upper: float | None = None
    n: int
    province: float | None = None


class Scorecard(BaseModel):
    wave: str
    unit: str
    level: str
    rows: list[ScorecardRow]


def _pct(value: float | None) -> float | None:
    return round(value * 100, 4) if value is not None and math.isfinite(value) else None


class ReadController(Controller):
    """For BI tools: scores of the key's subtree, as JSON."""

    path = "/api/v1"
    tags = ("results",)
    security = ({"apiKey": []},)
    dependencies = {"caller": Provide(provide_caller, sync_to_thread=True)}  # noqa: RUF012

    @get(
        "/waves",
        sync_to_thread=True,
        summary="List the waves that have results",
        responses=problem_responses(401, 403),
    )
    def waves(self, db: NamedDependency[Session], caller: NamedDependency[Caller]) -> list[WaveOut]:
        """Every wave that can be scored (not drafts) and surveys a unit of the key's subtree, newest first.
        Needs the ``read`` scope."""
        caller.require("read")
        return [
            WaveOut(
                code=w.code,
                name_vi=w.name_vi,
                name_en=w.name_en,
                status=w.status,
                starts_on=w.starts_on,
                ends_on=w.ends_on,
                target=round(w.target * 100, 4),
                min_responses=w.min_responses,
            )
            for w in sv.list_waves(db, unit_path=caller.unit_path)
        ]

    @get(
        "/waves/{code:str}/league",
        sync_to_thread=True,
        summary="A wave's league table for one level",
        responses=problem_responses(401, 403, 404),
    )
    def league(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        caller: NamedDependency[Caller],
        code: FromPath[str],
        level: Annotated[str, Parameter(description="unit level code (department, district, commune...)")],
        measure: Annotated[str, Parameter(description="'index' or an element id")] = "index",
        channel: Annotated[str, Parameter(description="'all' or 'receipt' (receipt-backed only)")] = "all",
        field: Annotated[str | None, Parameter(description="a procedure field's code")] = None,
    ) -> League:
        """The units of the key's subtree at ``level``: index with its 95% interval, rank with its rank interval
        (among every ranked unit of the wave), n and tiers. Units with too few responses have ``ranked: false``."""
        caller.require("read")
        wave = sv.find_wave(db, code, unit_path=caller.unit_path)
        if channel not in ("all", "receipt"):
            channel = "all"
        full = sv.scores(
            board_of(request.app.state), wave_code=wave.code, level=level, measure=measure, channel=channel, field=field
        )
        ws = sv.subset(full, sv.within(full, caller.unit_path))
        rows = [
            LeagueRow(
                unit=r.unit.code,
                name_vi=r.unit.name_vi,
                name_en=r.unit.name_en,
                ranked=r.ranked,
                rank=r.rank,
                rank_lower=r.rank_lower,
                rank_upper=r.rank_upper,
                index=_pct(r.index),
                lower=_pct(r.lower),
                upper=_pct(r.upper),
                n=r.n,
                tier_target=None if r.tier_target is None else TIER_NAMES[r.tier_target],
                tier_province=None if r.tier_province is None else TIER_NAMES[r.tier_province],
            )
            for r in league_rows(ws)
        ]
        return League(
            wave=wave.code,
            level=level,
            measure=ws.measure,
            channel=channel,
            field=field,
            province=round(ws.province.point * 100, 4),
            target=round(ws.target * 100, 4),
            min_responses=ws.min_responses,
            ranked_units=int(full.league.ranked.sum()),
            generated_at=ws.generated_at,
            rows=rows,
        )

    @get(
        "/waves/{code:str}/units/{unit_code:str}/scorecard",
        sync_to_thread=True,
        summary="One unit's scorecard",
        responses=problem_responses(401, 403, 404),
    )
    def scorecard(
        self,
        request: Request[Any, Any, Any],
        db: NamedDependency[Session],
        caller: NamedDependency[Caller],
        code: FromPath[str],
        unit_code: FromPath[str],
    ) -> Scorecard:
        """The unit's overall, element and criterion indices with 95% intervals and n, and the province's.
        403 for a unit outside the key's subtree."""
        caller.require("read")
        unit = sv.scoped_unit(db, unit_path="/", unit_code=unit_code)
        if not caller.covers(unit.path):
            raise ForbiddenError("This unit is outside the API key's subtree.")
        wave = sv.find_wave(db, code, unit_path=caller.unit_path)
        ws = sv.scores(board_of(request.app.state), wave_code=wave.code, level=unit.level)
        g = sv.position_of(ws, unit.id)
        vi = scorecard_table(ws, unit.code if g is None else g, locale="vi", spec=wave.spec)
        en = scorecard_table(ws, unit.code if g is None else g, locale="en", spec=wave.spec)
        col = {c.key: k for k, c in enumerate(en.columns)}
        kinds = {"Overall": "index", "Element": "element", "Criterion": "criterion"}
        rows = [
            ScorecardRow(
                kind=kinds.get(str(r_en[col["kind"]]), str(r_en[col["kind"]])),
                measure=str(r_en[col["measure"]]),
                label_vi=str(r_vi[col["label"]]),
                label_en=str(r_en[col["label"]]),
                index=_round(r_en[col["index"]]),
                lower=_round(r_en[col["lower"]]),
                upper=_round(r_en[col["upper"]]),
                n=int(r_en[col["n"]] or 0),
                province=_round(r_en[col["province"]]),
            )
            for r_vi, r_en in zip(vi.rows, en.rows, strict=True)
        ]
        return Scorecard(wave=wave.code, unit=unit.code, level=unit.level, rows=rows)


def _round(value: object) -> float | None:
    return round(float(value), 4) if isinstance(value, int | float) and math.isfinite(value) else None
