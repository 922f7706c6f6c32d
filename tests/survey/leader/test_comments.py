"""A unit's comments are shown only when it has at least k responses (SIPAS_DISCLOSURE_MIN_CELL)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from html import unescape

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Channel, Response, Unit, Wave, WaveUnit, pk
from survey.demo.load import CURRENT_WAVE, DemoSummary
from survey.integrity.flags import HEADLINE
from survey.leader import services as sv
from tests.conftest import make_account, make_settings, signed_in, staff_client
from tests.factories import World


def _respond(engine: Engine, world: World, wave_id: int, comments: list[str | None], flags: int = 0) -> None:
    with Session(engine) as s, s.begin():
        s.execute(
            insert(Response),
            [
                {
                    "wave_id": wave_id,
                    "unit_id": world.unit_id,
                    "field_id": world.field_id,
                    "channel": int(Channel.receipt),
                    "questionnaire_version_id": world.sipas_version_id,
                    "submitted_at": datetime(2026, 2, 2, 9, 0, tzinfo=UTC),
                    "answers": bytes(len(world.sipas.layout)),
                    "comment": text,
                    "flags": flags,
                }
                for text in comments
            ],
        )


def test_comments_wait_for_k_responses_that_count(engine: Engine, world: World) -> None:
    with Session(engine) as s, s.begin():
        wave = Wave(
            code=f"cm{secrets.token_hex(4)}",
            name_vi="Ý kiến",
            name_en="Comments",
            questionnaire_version_id=world.sipas_version_id,
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 3, 31),
            status="closed",
            channels="receipt",
        )
        s.add(wave)
        s.flush()
        s.add(WaveUnit(wave_id=pk(wave), unit_id=world.unit_id))  # the wave surveys the unit
        wave_id, code = pk(wave), wave.code
    _respond(engine, world, wave_id, ["một", "hai", "ba", "bốn"])
    _respond(engine, world, wave_id, ["gắn cờ"], flags=1)  # flagged: does not count towards k
    with Session(engine) as db:
        unit = db.get(Unit, world.unit_id)
        assert unit is not None
        info = sv.find_wave(db, code, unit_path=unit.path)
        hidden = sv.comments(db, wave=info, unit_id=world.unit_id, show_flagged=True, min_cell=5)
        assert hidden == sv.Comments([], 0, 0, hidden=True)
        assert not sv.comments(db, wave=info, unit_id=world.unit_id, show_flagged=False, min_cell=4).hidden
    _respond(engine, world, wave_id, [None])  # the fifth response that counts, without a comment
    with Session(engine) as db:
        shown = sv.comments(db, wave=info, unit_id=world.unit_id, show_flagged=False, min_cell=5)
        assert not shown.hidden and (shown.total, shown.flagged) == (5, 1)
        assert sorted(c.text for c in shown.shown) == sorted(["một", "hai", "ba", "bốn"])
        everything = sv.comments(db, wave=info, unit_id=world.unit_id, show_flagged=True, min_cell=5)
        assert len(everything.shown) == 5 and sum(c.flagged for c in everything.shown) == 1


def test_the_unit_page_hides_comments_below_k(demo_db: tuple[Engine, DemoSummary, str]) -> None:
    engine, _, url = demo_db
    with Session(engine) as s:
        wave_id = s.scalars(select(col(Wave.id)).where(col(Wave.code) == CURRENT_WAVE)).one()
        unit_id, text = s.execute(
            select(col(Response.unit_id), col(Response.comment))
            .join(Unit, col(Unit.id) == col(Response.unit_id))
            .where(col(Response.wave_id) == wave_id, col(Response.comment) != "", col(Response.flags).in_(HEADLINE))
            .order_by(col(Response.id))
        ).first() or (0, "")
        assert unit_id and text
        counted = s.scalar(
            select(func.count()).where(
                col(Response.wave_id) == wave_id, col(Response.unit_id) == unit_id, col(Response.flags).in_(HEADLINE)
            )
        )
        root = s.scalars(select(col(Unit.id)).where(col(Unit.parent_id).is_(None))).first()
    assert counted and counted >= 2 and root
    account = make_account(engine, "admin", root)
    pages = {}
    for k in (counted, counted + 1):
        with staff_client(make_settings(url, disclosure_min_cell=k), engine) as client:
            signed_in(client, account)
            page = client.get(f"/staff/results/{CURRENT_WAVE}/units/{unit_id}?lang=en")
            assert page.status_code == 200
            pages[k] = unescape(page.text)
    comments = re.compile(r'<div id="comments">(.*?)</div>', re.S)
    at_k, below_k = (comments.search(pages[k]) for k in (counted, counted + 1))
    assert at_k and below_k
    assert "<blockquote>" in at_k.group(1) and "Hidden" not in at_k.group(1)
    assert "<blockquote>" not in below_k.group(1) and text not in pages[counted + 1]
    assert f"fewer than {counted + 1} responses" in below_k.group(1)
