"""Units, service points, fields and the import of units: HTML workflows, and the import service itself."""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
from typing import Any

import openpyxl
import pytest
from litestar.testing import TestClient
from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.services import Principal, load_principal, session_fingerprint
from survey.db.models import AuditLog, ProcedureField, ServicePoint, Unit, UnitLevel, User
from survey.officer.units import imports
from tests.access.workspace import fresh_point, fresh_unit
from tests.conftest import StaffWorld, csrf_token, signed_in
from tests.factories import zip_bomb


def _unit(engine: Engine, unit_id: int) -> Unit:
    with Session(engine) as s:
        unit = s.get(Unit, unit_id)
        assert unit is not None
        return unit


def _level_code(engine: Engine, unit_id: int) -> str:
    with Session(engine) as s:
        unit = s.get(Unit, unit_id)
        assert unit is not None
        level = s.get(UnitLevel, unit.level_id)
        assert level is not None
        return level.code


def _principal(engine: Engine, user_id: int) -> Principal:
    with Session(engine) as s:
        user = s.get(User, user_id)
        assert user is not None
        principal = load_principal(s, user_id=user_id, fingerprint=session_fingerprint(user.password_hash))
        assert principal is not None
        return principal


def _units_with(engine: Engine, codes: list[str]) -> list[Unit]:
    with Session(engine) as s:
        return list(s.scalars(select(Unit).where(col(Unit.code).in_(codes))))


def _latest_audit(engine: Engine, action: str) -> AuditLog:
    with Session(engine) as s:
        entry = s.scalars(
            select(AuditLog).where(col(AuditLog.action) == action).order_by(col(AuditLog.id).desc())
        ).first()
        assert entry is not None
        return entry


def _csv(rows: list[list[str]], *, bom: bool = True, sep: str = ",") -> bytes:
    text = "\r\n".join(sep.join(r) for r in rows) + "\r\n"
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


# --- import: the whole workflow through the page -----------------------------------------------------------


def test_an_officer_imports_a_unit_tree_from_a_vietnamese_csv(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    token = signed_in(staff, staff_world.officer)
    district = _unit(engine, staff_world.district_id)
    level = _level_code(engine, staff_world.district_id)
    tag = secrets.token_hex(3).upper()
    ward, hamlet, extra = f"PW{tag}", f"KP{tag}", f"XA{tag}"
    body = _csv(
        [
            ["Mã đơn vị", "Tên đơn vị", "Tên tiếng Anh", "Mã cấp", "Mã đơn vị cha", "Loại", "Ghi chú"],
            [hamlet, "Khu phố 1", "", level, ward, "khu phố", "cha ở dòng sau"],  # its parent comes later
            [ward, "Phường Hiệp Ninh", "Hiep Ninh Ward", level, district.code, "phường", ""],
            [extra, "Xã Thạnh Tân", "Thanh Tan Commune", level, district.code, "", ""],
        ],
        sep=";",
    )
    page = staff.get("/staff/units/import")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    done = staff.post(
        "/staff/units/import",
        data={"_csrf_token": csrf_token(page.text), "kind": "units"},
        files={"file": ("don_vi.csv", body, "text/csv")},
    )
    assert done.status_code == 200, done.text[:500]
    assert str(done.url).endswith("/staff/units?imported=3&kind=units")
    assert "Đã nhập 3 đơn vị." in done.text
    assert "Phường Hiệp Ninh" in done.text and "Khu phố 1" in done.text
    made = {u.code: u for u in _units_with(engine, [ward, hamlet, extra])}
    assert set(made) == {ward, hamlet, extra}
    assert made[ward].path == f"{district.path}{made[ward].id}/"
    assert made[hamlet].path == f"{made[ward].path}{made[hamlet].id}/"
    assert made[hamlet].name_en == "Khu phố 1"  # no English name: the Vietnamese one
    assert made[ward].kind == "phường" and made[extra].kind is None
    entry = _latest_audit(engine, "import_units")
    assert entry.user_id == staff_world.officer.id and entry.after is not None
    assert entry.after["rows"] == 3 and ward in entry.after["codes"]
    # and the new unit's page is within the officer's reach
    shown = staff.get(f"/staff/units/{made[ward].id}")
    assert shown.status_code == 200 and "Khu phố 1" in shown.text
    assert token


def test_a_bad_file_is_refused_whole_with_every_problem_on_its_row(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    district = _unit(engine, staff_world.district_id)
    outside = _unit(engine, staff_world.other_district_id)
    level = _level_code(engine, staff_world.district_id)
    tag = secrets.token_hex(3).upper()
    good, dup = f"OK{tag}", f"DU{tag}"
    body = _csv(
        [
            ["ma_don_vi", "ten_don_vi", "cap", "don_vi_cha"],
            [good, "Xã Hợp Lệ", level, district.code],  # row 2: fine on its own
            [dup, "Xã Trùng", level, district.code],  # row 3
            [dup, "Xã Trùng Lần Hai", level, district.code],  # row 4: duplicate code
            [f"WP{tag}", "Xã Sai Cha", level, "KHONG-CO"],  # row 5: unknown parent
            [f"OS{tag}", "Xã Ngoài Phạm Vi", level, outside.code],  # row 6: parent outside the district
            [f"NL{tag}", "", "cap-khong-co", district.code],  # row 7: empty name, unknown level
        ]
    )
    page = staff.get("/staff/units/import?lang=en")
    refused = staff.post(
        "/staff/units/import?lang=en",
        data={"_csrf_token": csrf_token(page.text), "kind": "units"},
        files={"file": ("units.csv", body, "text/csv")},
    )
    assert refused.status_code == 400
    html = refused.text
    assert "<title>Error: " in html and "5 problem(s) found" in html
    for expected in (
        f"<tr><td>4</td><td>ma_don_vi</td><td>The code &#39;{dup}&#39; is already on row 3",
        "<tr><td>5</td><td>don_vi_cha</td><td>There is no unit with code &#39;KHONG-CO&#39;",
        f"<tr><td>6</td><td>don_vi_cha</td><td>The unit &#39;{outside.code}&#39; is outside your scope.",
        "<tr><td>7</td><td>ten_don_vi</td><td>This cell is empty.",
        "<tr><td>7</td><td>cap</td><td>There is no level with code &#39;cap-khong-co&#39;.",
    ):
        assert expected in html, expected
    assert "<tr><td>2</td>" not in html
    assert _units_with(engine, [good, dup, f"WP{tag}", f"OS{tag}", f"NL{tag}"]) == []  # nothing written


def test_the_import_service_names_row_and_column_without_http(staff_world: StaffWorld, engine: Engine) -> None:
    officer = _principal(engine, staff_world.officer.id)
    district = _unit(engine, staff_world.district_id)
    level = _level_code(engine, staff_world.district_id)
    tag = secrets.token_hex(3).upper()
    missing_column = _csv([["Mã đơn vị", "Tên đơn vị", "Mã cấp"], [f"A{tag}", "Xã A", level]])
    cycle = _csv(
        [
            ["code", "name_vi", "level", "parent"],
            [f"C1{tag}", "Xã Một", level, f"C2{tag}"],
            [f"C2{tag}", "Xã Hai", level, f"C1{tag}"],
            [f"C3{tag}", "Xã Ba", level, district.code],
        ],
        bom=False,
    )
    with Session(engine) as s:
        with pytest.raises(imports.UnitImportError) as no_parent:
            imports.import_units(s, viewer=officer, data=missing_column, filename="a.csv")
        assert [(p.row, p.column, p.message) for p in no_parent.value.problems] == [
            (1, "Mã đơn vị cha", imports.MISSING_COLUMN)
        ]
        with pytest.raises(imports.UnitImportError) as circle:
            imports.import_units(s, viewer=officer, data=cycle, filename="b.csv")
        assert [(p.row, p.column, p.message) for p in circle.value.problems] == [
            (2, "parent", imports.CYCLE),
            (3, "parent", imports.CYCLE),
        ]
        with pytest.raises(imports.UnitImportError) as wrong_type:
            imports.import_units(s, viewer=officer, data=cycle, filename="b.ods")
        assert wrong_type.value.problems[0].message == imports.NOT_A_TABLE
    assert _units_with(engine, [f"A{tag}", f"C1{tag}", f"C2{tag}", f"C3{tag}"]) == []


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def test_service_points_import_from_xlsx_all_or_nothing(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    unit = _unit(engine, unit_id)
    outside = _unit(engine, staff_world.other_district_id)
    tag = secrets.token_hex(3).upper()
    bad = _xlsx(
        [
            ["Mã đơn vị", "Mã quầy", "Tên quầy", "Tên tiếng Anh"],
            [unit.code, f"Q1{tag}", "Quầy 1", "Desk 1"],
            [outside.code, f"Q2{tag}", "Quầy 2", "Desk 2"],
        ]
    )
    page = staff.get("/staff/units/import")
    refused = staff.post(
        "/staff/units/import",
        data={"_csrf_token": csrf_token(page.text), "kind": "points"},
        files={"file": ("quay.xlsx", bad, "application/octet-stream")},
    )
    assert refused.status_code == 400
    assert (
        f"<tr><td>3</td><td>Mã đơn vị</td><td>Đơn vị &#39;{outside.code}&#39; nằm ngoài phạm vi của bạn."
        in refused.text
    )
    good = _xlsx(
        [
            ["Mã đơn vị", "Mã quầy", "Tên quầy", "Tên tiếng Anh"],
            [unit.code, f"Q1{tag}", "Quầy 1", "Desk 1"],
            [unit.code, f"Q2{tag}", "Quầy 2", None],
        ]
    )
    done = staff.post(
        "/staff/units/import",
        data={"_csrf_token": csrf_token(refused.text), "kind": "points"},
        files={"file": ("quay.xlsx", good, "application/octet-stream")},
    )
    assert done.status_code == 200 and "Đã nhập 2 quầy phục vụ." in done.text
    with Session(engine) as s:
        points = list(s.scalars(select(ServicePoint).where(col(ServicePoint.unit_id) == unit_id)))
    assert sorted(p.code for p in points) == [f"Q1{tag}", f"Q2{tag}"]
    assert len({p.counter_token for p in points}) == 2 and all(len(p.counter_token) >= 16 for p in points)
    shown = staff.get(f"/staff/units/{unit_id}")
    assert f"Q1{tag}" in shown.text and f"Q2{tag}" in shown.text


# --- import: limits, and parsing off the event loop ---------------------------------------------------------


def _points_xlsx(unit_code: str, tag: str) -> bytes:
    return _xlsx(
        [["Mã đơn vị", "Mã quầy", "Tên quầy"], [unit_code, f"Z1{tag}", "Quầy 1"], [unit_code, f"Z2{tag}", "Quầy 2"]]
    )


def _points_of(engine: Engine, unit_id: int) -> list[ServicePoint]:
    with Session(engine) as s:
        return list(s.scalars(select(ServicePoint).where(col(ServicePoint.unit_id) == unit_id)))


def _all_points(engine: Engine) -> int:
    with Session(engine) as s:
        return len(list(s.scalars(select(col(ServicePoint.id)))))


def _post_import(staff: TestClient, name: str, body: bytes, *, kind: str = "points", lang: str = "vi") -> Any:
    page = staff.get(f"/staff/units/import?lang={lang}")
    return staff.post(
        f"/staff/units/import?lang={lang}",
        data={"_csrf_token": csrf_token(page.text), "kind": kind},
        files={"file": (name, body, "application/octet-stream")},
    )


def test_a_zip_bomb_is_refused_before_openpyxl_opens_it(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    tag = secrets.token_hex(3).upper()
    bomb = zip_bomb(_points_xlsx(_unit(engine, unit_id).code, tag), unpacked=imports.MAX_UNPACKED + 1)
    assert len(bomb) < imports.MAX_UPLOAD  # small on the wire: only its zip directory tells
    opened: list[object] = []
    real_load = openpyxl.load_workbook

    def load_workbook(*args: Any, **kwargs: Any) -> Any:
        opened.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(openpyxl, "load_workbook", load_workbook)
    refused = _post_import(staff, "quay.xlsx", bomb, lang="en")
    assert refused.status_code == 400
    assert "<title>Error: " in refused.text and "1 problem(s) found" in refused.text
    assert "The workbook unpacks to more than 20 MB. Keep only the sheet to import, or save it as CSV." in refused.text
    assert opened == [] and _points_of(engine, unit_id) == []
    # the same rows, unpadded, import: the refusal was the padding's
    done = _post_import(staff, "quay.xlsx", _points_xlsx(_unit(engine, unit_id).code, tag))
    assert done.status_code == 200 and "Đã nhập 2 quầy phục vụ." in done.text
    assert len(opened) == 1 and len(_points_of(engine, unit_id)) == 2


def test_a_workbook_compressed_beyond_any_real_one_is_refused(staff_world: StaffWorld, engine: Engine) -> None:
    officer = _principal(engine, staff_world.officer.id)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    dense = zip_bomb(_points_xlsx(_unit(engine, unit_id).code, "D"), unpacked=8 * 1024 * 1024)  # under 20 MB
    with Session(engine) as s, pytest.raises(imports.UnitImportError) as info:
        imports.import_points(s, viewer=officer, data=dense, filename="quay.xlsx")
    [problem] = info.value.problems
    assert (
        problem.message
        == "The workbook unpacks to {ratio} times its size, which no real workbook does; it was not opened."
    )
    assert int(problem.params["ratio"].replace(" ", "")) > 100
    assert _points_of(engine, unit_id) == []


def test_a_file_over_the_row_limit_is_refused_whole(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    unit = _unit(engine, unit_id)
    # the real limit, in a CSV: 20 001 short rows still fit under the upload's size limit
    rows = [["unit", "code", "name"]] + [[unit.code, f"R{i}", "Q"] for i in range(imports.MAX_ROWS + 1)]
    body = _csv([[u[-2:], c[-2:], n] for u, c, n in rows], bom=False)
    assert len(body) <= imports.MAX_UPLOAD
    before = _all_points(engine)
    refused = _post_import(staff, "quay.csv", body)
    assert refused.status_code == 400
    assert "Tệp có hơn 20 000 dòng; hãy chia thành nhiều tệp." in refused.text
    assert _all_points(engine) == before
    # an XLSX counts its rows the same way (a lower limit keeps the workbook small)
    monkeypatch.setattr(imports, "MAX_ROWS", 1)
    refused = _post_import(staff, "quay.xlsx", _points_xlsx(unit.code, "X"), lang="en")
    assert refused.status_code == 400 and "The file has more than 1 rows; split it into several files." in refused.text
    assert _points_of(engine, unit_id) == []
    # limits count data rows: a header and exactly MAX_ROWS rows import
    monkeypatch.setattr(imports, "MAX_ROWS", 2)
    assert _post_import(staff, "quay.xlsx", _points_xlsx(unit.code, "X")).status_code == 200
    assert len(_points_of(engine, unit_id)) == 2


def test_a_file_over_the_size_limit_is_refused_in_words_never_a_500(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    header = f"unit,code,name\r\n{_unit(engine, unit_id).code},BIG,Q\r\n".encode()
    big = header + b"," * (imports.MAX_UPLOAD + 1 - len(header))
    refused = _post_import(staff, "quay.csv", big)
    assert refused.status_code == 400 and "Tệp quá lớn: tối đa 200 KB." in refused.text
    # past the app's body limit, Litestar refuses the request itself: a 413 page, still not a 500
    huge = _post_import(staff, "quay.csv", header + b"," * (400 * 1024))
    assert huge.status_code == 413
    assert _points_of(engine, unit_id) == []


def test_uploads_are_parsed_in_a_worker_thread_not_on_the_event_loop(
    staff: TestClient, staff_world: StaffWorld, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    unit = _unit(engine, unit_id)
    seen: list[tuple[str, bool, bool]] = []

    def spying(name: str) -> Any:
        real = getattr(imports, name)

        def parse(*args: Any, **kwargs: Any) -> Any:
            try:
                asyncio.get_running_loop()
                on_loop = True
            except RuntimeError:  # no event loop runs in this thread
                on_loop = False
            seen.append((name, on_loop, threading.current_thread() is threading.main_thread()))
            return real(*args, **kwargs)

        return parse

    monkeypatch.setattr(imports, "_rows_from_xlsx", spying("_rows_from_xlsx"))
    monkeypatch.setattr(imports, "_rows_from_csv", spying("_rows_from_csv"))
    done = _post_import(staff, "quay.xlsx", _points_xlsx(unit.code, "T"))
    assert done.status_code == 200 and "Đã nhập 2 quầy phục vụ." in done.text
    refused = _post_import(staff, "quay.csv", _csv([["unit", "code", "name"], ["NOPE", "T9", "Q"]]))
    assert refused.status_code == 400
    assert seen == [("_rows_from_xlsx", False, False), ("_rows_from_csv", False, False)]


# --- editing units, points and fields ---------------------------------------------------------------------


def test_an_officer_renames_a_unit_and_the_change_is_audited(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.officer)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    form = staff.get(f"/staff/units/{unit_id}/edit")
    assert form.status_code == 200 and 'value="Xã mới"' in form.text
    empty = staff.post(
        f"/staff/units/{unit_id}/edit", data={"_csrf_token": csrf_token(form.text), "name_vi": "", "active": "1"}
    )
    assert empty.status_code == 400 and "Lỗi: " in empty.text and 'href="#name_vi"' in empty.text
    saved = staff.post(
        f"/staff/units/{unit_id}/edit",
        data={"_csrf_token": csrf_token(form.text), "name_vi": "Xã Trường Hòa", "name_en": "Truong Hoa", "kind": "xã"},
    )
    assert saved.status_code == 200 and str(saved.url).endswith(f"/staff/units/{unit_id}?saved=unit")
    assert "Đã lưu đơn vị." in saved.text and "Xã Trường Hòa" in saved.text
    unit = _unit(engine, unit_id)
    assert (unit.name_vi, unit.name_en, unit.kind, unit.active) == ("Xã Trường Hòa", "Truong Hoa", "xã", False)
    entry = _latest_audit(engine, "update")
    assert entry.entity == "unit" and entry.entity_id == str(unit_id) and entry.user_id == staff_world.officer.id
    assert entry.before == {"name_vi": "Xã mới", "name_en": "New commune", "kind": None, "active": True}
    assert entry.after == {"name_vi": "Xã Trường Hòa", "name_en": "Truong Hoa", "kind": "xã", "active": False}


def test_service_points_are_added_and_changed_with_a_counter_token(
    staff: TestClient, staff_world: StaffWorld, engine: Engine
) -> None:
    signed_in(staff, staff_world.admin)
    unit_id = fresh_unit(engine, staff_world.commune_id)
    taken = fresh_point(engine, unit_id)
    with Session(engine) as s:
        taken_code = s.get(ServicePoint, taken).code  # type: ignore[union-attr]
    form = staff.get(f"/staff/units/{unit_id}/points/new")
    token = csrf_token(form.text)
    clash = staff.post(
        f"/staff/units/{unit_id}/points/new", data={"_csrf_token": token, "code": taken_code, "name_vi": "Quầy"}
    )
    assert clash.status_code == 400 and "Đã có một quầy phục vụ khác dùng mã này." in clash.text
    code = f"QA{secrets.token_hex(3)}"
    made = staff.post(
        f"/staff/units/{unit_id}/points/new",
        data={"_csrf_token": token, "code": code, "name_vi": "Quầy đất đai", "active": "1"},
    )
    assert made.status_code == 200 and "Quầy đất đai" in made.text
    with Session(engine) as s:
        point = s.scalars(select(ServicePoint).where(col(ServicePoint.code) == code)).one()
    assert point.active and point.unit_id == unit_id and point.name_en == "Quầy đất đai" and point.counter_token
    edit = staff.get(f"/staff/points/{point.id}/edit")
    assert edit.status_code == 200 and f"/c/{point.counter_token}" in edit.text and "data:image/svg+xml" in edit.text
    staff.post(
        f"/staff/points/{point.id}/edit",
        data={"_csrf_token": csrf_token(edit.text), "code": code, "name_vi": "Quầy đất đai", "name_en": "Land desk"},
    )
    with Session(engine) as s:
        changed = s.get(ServicePoint, point.id)
    assert changed is not None and changed.name_en == "Land desk" and changed.active is False
    assert changed.counter_token == point.counter_token  # the poster keeps working
    entry = _latest_audit(engine, "update")
    assert entry.entity == "service_point" and entry.before == {"name_en": "Quầy đất đai", "active": True}


def test_the_unit_tree_shows_ones_own_subtree_only(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    signed_in(staff, staff_world.leader)
    tree = staff.get("/staff/units")
    assert tree.status_code == 200
    assert f'href="/staff/units/{staff_world.commune_id}"' in tree.text
    assert f'href="/staff/units/{staff_world.other_district_id}"' not in tree.text
    assert f'href="/staff/units/{staff_world.root_id}"' not in tree.text
    assert "/staff/units/import" not in tree.text and "/edit" not in tree.text  # leaders change nothing
    detail = staff.get(f"/staff/units/{staff_world.district_id}")
    assert detail.status_code == 200 and "/points/new" not in detail.text


def test_only_admins_change_procedure_fields(staff: TestClient, staff_world: StaffWorld, engine: Engine) -> None:
    signed_in(staff, staff_world.admin)
    form = staff.get("/staff/fields/new")
    code = f"lv{secrets.token_hex(3)}"
    made = staff.post(
        "/staff/fields/new",
        data={"_csrf_token": csrf_token(form.text), "code": code, "name_vi": "Đất đai", "name_en": "Land"},
    )
    assert made.status_code == 200 and "Đã lưu lĩnh vực thủ tục." in made.text and code in made.text
    again = staff.post(
        "/staff/fields/new", data={"_csrf_token": csrf_token(form.text), "code": code, "name_vi": "Trùng"}
    )
    assert again.status_code == 400 and "Đã có một lĩnh vực thủ tục khác dùng mã này." in again.text
    with Session(engine) as s:
        assert len(list(s.scalars(select(ProcedureField).where(col(ProcedureField.code) == code)))) == 1
    entry = _latest_audit(engine, "create")
    assert entry.entity == "field" and entry.after == {"code": code, "name_vi": "Đất đai", "name_en": "Land"}
