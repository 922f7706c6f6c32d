"""Leader dashboards: the province overview, league tables, unit pages and their exports. Thin handlers.

Leaders, officers and admins may read; every page and export is restricted to the viewer's unit
subtree on the server (``survey.leader.services``), and a wave that surveys no unit of it is 404.
Microdata is for admins and officers only.
Scores come from the app's board (``survey.leader.board``): computed once, refreshed in the background.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Stream, Template
from sqlalchemy.orm import Session

from survey.auth.guards import principal_of, role_required, staff_required
from survey.auth.pages import staff_page
from survey.auth.services import Principal
from survey.db.models import Role
from survey.i18n import gettext_for
from survey.leader import services as sv
from survey.leader import views
from survey.leader.board import Board, board_of
from survey.leader.labels import HOW_TO_READ, RELIABILITY, TIER_PROVINCE, TIER_SHORT, TIER_TARGET, number
from survey.results.exports import Table, league_table, scorecard_table, table_csv, table_xlsx
from survey.results.microdata import Microdata, wave_microdata
from survey.settings import Settings
from survey.web import request_locale

Db = NamedDependency[Session]
Me = NamedDependency[Principal]
AnyRequest = Request[Any, Any, Any]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _me(request: AnyRequest) -> Principal:
    return principal_of(request)


def _settings(request: AnyRequest) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _board(request: AnyRequest) -> Board:
    return board_of(request.app.state)


def _locale(request: AnyRequest) -> str:
    return request_locale(request, _settings(request))


def _download(content: bytes, filename: str, media_type: str) -> Response[bytes]:
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


def _table(table: Table, kind: str) -> Response[bytes]:
    if kind == "xlsx":
        return _download(table_xlsx(table), f"{table.filename}.xlsx", XLSX)
    return _download(table_csv(table), f"{table.filename}.csv", "text/csv; charset=utf-8")


def _root(db: Session, me: Principal) -> sv.UnitInfo:
    return sv.scoped_unit(db, unit_path=me.unit_path, unit_id=me.unit_id)


def _query(request: AnyRequest, db: Session, me: Principal, wave: sv.WaveInfo) -> tuple[sv.Query, dict[str, Any]]:
    q = request.query_params
    levels = sv.levels_below(db, unit_path=me.unit_path, root_id=me.unit_id)
    fields = sv.field_choices(db)
    query = sv.parse_query(
        level=q.get("level"),
        levels=levels,
        measure=q.get("element"),
        spec=wave.spec,
        channel=q.get("channel"),
        field=q.get("field"),
        fields=fields,
        sort=q.get("sort"),
    )
    choices = {"levels": levels, "fields": fields, "elements": sv.element_choices(wave.spec)}
    return query, choices


def _level_name(choices: dict[str, Any], level: str, locale: str) -> str:
    return next((c.name(locale) for c in choices["levels"] if c.code == level), level)


def _filter_lines(query: sv.Query, locale: str) -> list[str]:
    _ = gettext_for(locale)
    lines = [_("receipt-backed responses only") if query.channel == "receipt" else _("responses of every channel")]
    if query.field:
        lines.append(_("procedure field: {field}", field=query.field))
    return lines


LABELS = {
    "tier_short": TIER_SHORT,
    "tier_target": TIER_TARGET,
    "tier_province": TIER_PROVINCE,
    "reliability": RELIABILITY,
    "how_to_read": HOW_TO_READ,
    "quota": sv.QUOTA_LABELS,
}


def _formats(locale: str) -> dict[str, Any]:
    """Number formatting for the templates: shares as 0-100 numbers, signed changes, plain numbers."""

    point = "," if locale == "vi" else "."  # what Babel gives for 0-100 with one decimal, 25x faster on 1,000 rows

    def pct(share: float | None) -> str:
        return "–" if share is None or not math.isfinite(share) else f"{share * 100:.1f}".replace(".", point)

    def num(value: float | None) -> str:
        return "–" if value is None or not math.isfinite(value) else number(value, locale)

    def signed(share: float) -> str:
        return ("+" if share > 0 else "") + pct(share)

    return {"pct": pct, "num": num, "signed": signed}


def _league_table(request: AnyRequest, me: Principal, db: Session, wave_code: str) -> Table:
    wave = sv.find_wave(db, wave_code, unit_path=me.unit_path)
    query, choices = _query(request, db, me, wave)
    locale = _locale(request)
    full = sv.scores(
        _board(request),
        wave_code=wave.code,
        level=query.level,
        measure=query.measure,
        channel=query.channel,
        field=query.field,
    )
    ws = sv.subset(full, sv.within(full, me.unit_path))
    progress = sv.progress_by_unit(_board(request), wave_code=wave.code, today=_settings(request).today())
    rates = {u: p.response_rate for u, p in progress.items() if p.response_rate is not None} if progress else None
    table = league_table(
        ws,
        locale=locale,
        response_rates=rates,
        filters=_filter_lines(query, locale),
        level_name=_level_name(choices, query.level, locale),
        timezone=_settings(request).timezone,
    )
    return table


class ResultsController(Controller):
    path = "/staff/results"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer, Role.leader)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/", sync_to_thread=True)
    def overview(self, request: AnyRequest, me: Me, db: Db) -> Template:
        wave = sv.find_wave(db, request.query_params.get("wave"), unit_path=me.unit_path)
        query, choices = _query(request, db, me, wave)
        locale = _locale(request)
        data = views.overview(db, _board(request), wave=wave, root=_root(db, me), level=query.level, locale=locale)
        context = {
            "o": data,
            "waves": sv.list_waves(db, unit_path=me.unit_path),
            "choices": choices,
            "level_name": _level_name(choices, query.level, locale),
            "labels": LABELS,
            **_formats(locale),
        }
        return staff_page(request, "leader/overview.html", me=me, context=context)

    @get("/{wave_code:str}/league", sync_to_thread=True)
    def league(self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str]) -> Template:
        wave = sv.find_wave(db, wave_code, unit_path=me.unit_path)
        query, choices = _query(request, db, me, wave)
        locale = _locale(request)
        level_name = _level_name(choices, query.level, locale)
        data = views.league(
            _board(request),
            wave=wave,
            query=query,
            unit_path=me.unit_path,
            today=_settings(request).today(),
            locale=locale,
            level_name=level_name,
        )
        params = {"level": query.level, "element": query.measure, "channel": query.channel, "field": query.field or ""}
        context = {
            "lg": data,
            "choices": choices,
            "level_name": level_name,
            "labels": LABELS,
            "params": params,
            "qs": urlencode(params),
            "sort_qs": urlencode({k: v for k, v in params.items() if v}),
            **_formats(locale),
        }
        return staff_page(request, "leader/league.html", me=me, context=context)

    # One handler per path: Litestar 2 mis-handles a sync_to_thread handler registered on a list of paths.
    @get("/{wave_code:str}/league.csv", sync_to_thread=True)
    def league_csv(self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str]) -> Response[bytes]:
        return _table(_league_table(request, me, db, wave_code), "csv")

    @get("/{wave_code:str}/league.xlsx", sync_to_thread=True)
    def league_xlsx(self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str]) -> Response[bytes]:
        return _table(_league_table(request, me, db, wave_code), "xlsx")

    @get("/{wave_code:str}/units/{unit_id:int}", sync_to_thread=True)
    def unit(self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str], unit_id: FromPath[int]) -> Template:
        unit = sv.scoped_unit(db, unit_path=me.unit_path, unit_id=unit_id)
        wave = sv.find_wave(db, wave_code, unit_path=me.unit_path)
        locale = _locale(request)
        show_flagged = request.query_params.get("flagged") == "1"
        _ = gettext_for(locale)
        data = views.unit_page(
            db,
            _board(request),
            wave=wave,
            unit=unit,
            locale=locale,
            today=_settings(request).today(),
            show_flagged=show_flagged,
            trend_title=_("Trend of the overall index: {unit}", unit=unit.name(locale)),
            min_cell=_settings(request).disclosure_min_cell,
        )
        return staff_page(request, "leader/unit.html", me=me, context={"u": data, "labels": LABELS, **_formats(locale)})

    @get("/{wave_code:str}/units/{unit_id:int}/scorecard.csv", sync_to_thread=True)
    def scorecard_csv(
        self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str], unit_id: FromPath[int]
    ) -> Response[bytes]:
        return _table(_scorecard(request, me, db, wave_code, unit_id), "csv")

    @get("/{wave_code:str}/units/{unit_id:int}/scorecard.xlsx", sync_to_thread=True)
    def scorecard_xlsx(
        self, request: AnyRequest, me: Me, db: Db, wave_code: FromPath[str], unit_id: FromPath[int]
    ) -> Response[bytes]:
        return _table(_scorecard(request, me, db, wave_code, unit_id), "xlsx")


def _scorecard(request: AnyRequest, me: Principal, db: Session, wave_code: str, unit_id: int) -> Table:
    unit = sv.scoped_unit(db, unit_path=me.unit_path, unit_id=unit_id)
    wave = sv.find_wave(db, wave_code, unit_path=me.unit_path)
    ws = sv.scores(_board(request), wave_code=wave.code, level=unit.level)
    g = sv.position_of(ws, unit.id)
    settings = _settings(request)
    return scorecard_table(
        ws, unit.code if g is None else g, locale=_locale(request), spec=wave.spec, timezone=settings.timezone
    )


def _microdata(request: AnyRequest, me: Principal, db: Session, wave_code: str) -> Microdata:
    """The wave's protected microdata with only the rows exported under the viewer's subtree."""
    wave = sv.find_wave(db, wave_code, unit_path=me.unit_path)
    min_cell = _settings(request).disclosure_min_cell
    md = wave_microdata(request.app.state.engine, wave_code=wave.code, min_cell=min_cell)
    return md.within(sv.unit_codes_within(db, me.unit_path))


class MicrodataController(Controller):
    """Anonymised microdata and its codebook: admins and officers only, rows of their subtree only."""

    path = "/staff/results"
    include_in_schema = False
    guards = [staff_required, role_required(Role.admin, Role.officer)]  # noqa: RUF012
    dependencies = {"me": Provide(_me, sync_to_thread=False)}  # noqa: RUF012

    @get("/{wave_code:str}/microdata.csv", sync_to_thread=True)
    def microdata(self, me: Me, db: Db, request: AnyRequest, wave_code: FromPath[str]) -> Stream:
        md = _microdata(request, me, db, wave_code)

        def chunks() -> Iterator[bytes]:
            yield from md.csv_chunks()

        return Stream(
            chunks(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="microdata-{md.wave_code}.csv"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    @get("/{wave_code:str}/codebook.csv", sync_to_thread=True)
    def codebook(self, me: Me, db: Db, request: AnyRequest, wave_code: FromPath[str]) -> Response[bytes]:
        md = _microdata(request, me, db, wave_code)
        table = md.codebook(_locale(request), timezone=_settings(request).timezone)
        return _table(table, "csv")
