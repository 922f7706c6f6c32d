"""Counter posters and receipt-code batches: the QR carries the right URL, codes are stored only as hashes."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import AuditLog, ReceiptCode, ServicePoint
from survey.officer.qr.services import inline_svg
from survey.receipts import codes
from survey.settings import Settings
from tests.access.designer import _point, receipt_wave
from tests.conftest import StaffWorld, signed_in, staff_client


def test_inline_svg_fits_in_a_page() -> None:
    svg = str(inline_svg("http://testserver/c/abc", label='a "b" <c>'))
    assert svg.startswith("<svg ") and "<?xml" not in svg and 'id="qr-path"' not in svg
    assert 'aria-label="a &quot;b&quot; &lt;c>"' in svg and 'width="' not in svg.split(">")[0]


def test_posters_carry_the_counter_url(settings: Settings, engine: Engine, staff_world: StaffWorld) -> None:
    point_id = _point(engine, staff_world.commune_id)
    other_id = _point(engine, staff_world.commune_id)
    with Session(engine) as s:
        tokens = [s.get(ServicePoint, i).counter_token for i in (point_id, other_id)]  # type: ignore[union-attr]
    with staff_client(settings, engine) as client:
        signed_in(client, staff_world.officer)
        one = client.get(f"/staff/points/{point_id}/poster")
        assert one.status_code == 200
        assert f"{settings.public_url}/c/{tokens[0]}" in one.text and '<svg class="qr"' in one.text
        assert 'href="/static/print.css"' in one.text and "Quầy thử" in one.text
        assert "Open your phone" in one.text and "Mở camera" in one.text  # both languages, always
        sheet = client.get(f"/staff/units/{staff_world.commune_id}/posters").text
        assert all(f"/c/{t}" in sheet for t in tokens) and sheet.count('<section class="poster"') >= 2
        css = client.get("/static/print.css").text
        assert "@media print" in css and "break-after:page" in css


def test_a_batch_is_shown_once_and_stored_as_hashes(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    wave_id = receipt_wave(engine, [staff_world.commune_id])
    with staff_client(settings, engine) as client:
        token = signed_in(client, staff_world.officer)
        form = client.get("/staff/receipt-codes").text
        assert f'<option value="{wave_id}"' in form
        too_many = client.post(
            "/staff/receipt-codes",
            data={
                "_csrf_token": token,
                "wave_id": str(wave_id),
                "unit_id": str(staff_world.commune_id),
                "count": "1001",
            },
        )
        assert too_many.status_code == 400 and 'href="#count"' in too_many.text
        page = client.post(
            "/staff/receipt-codes",
            data={"_csrf_token": token, "wave_id": str(wave_id), "unit_id": str(staff_world.commune_id), "count": "5"},
        )
        assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
        shown = re.findall(r'<p class="slip-code">([0-9A-Z-]+)</p>', page.text)
        assert len(shown) == 5 and page.text.count('<svg class="qr"') == 5
        compact = [codes.normalise(c) for c in shown]
        with Session(engine) as s:
            hashes = set(s.scalars(select(col(ReceiptCode.code_hash)).where(col(ReceiptCode.wave_id) == wave_id)))
            audited = s.scalar(
                select(func.count()).where(
                    col(AuditLog.action) == "issue_codes", col(AuditLog.user_id) == staff_world.officer.id
                )
            )
        assert hashes == {codes.code_hash(c) for c in compact if c}
        assert audited and audited >= 1
        assert not any(c in str(client.cookies) for c in compact if c)  # nothing kept in the session cookie
        # The CSV: sent back once by the page, checked against the stored hashes.
        field = re.search(r'name="codes" value="([^"]+)"', page.text)
        assert field is not None
        got = client.post("/staff/receipt-codes", data={"_csrf_token": token, "action": "csv", "codes": field.group(1)})
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
        rows = list(csv.reader(io.StringIO(got.text)))
        assert rows[0] == ["code", "url"] and [r[0] for r in rows[1:]] == shown
        forged = client.post(
            "/staff/receipt-codes", data={"_csrf_token": token, "action": "csv", "codes": codes.new_receipt_code()}
        )
        assert forged.status_code == 400
