"""The questionnaire designer: drafts from templates and copies, edits, problems, publication, diff, deletion."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.auth.services import Principal
from survey.db.models import AuditLog, QuestionnaireVersion, Role, pk
from survey.errors import ConflictError, ForbiddenError
from survey.officer.designer import forms, services
from survey.officer.designer.diff import diff
from survey.questionnaires.spec import from_definition
from survey.settings import Settings
from tests.access.designer import form_of as _form_of
from tests.conftest import StaffWorld, signed_in, staff_client
from tests.factories import World


def _principal(world: StaffWorld, role: str = "officer") -> Principal:
    account = {"officer": world.officer, "admin": world.admin, "leader": world.leader}[role]
    return Principal(
        id=account.id,
        username=account.username,
        role=Role(role),
        unit_id=account.unit_id,
        unit_path="/",
        unit_code="x",
        unit_name_vi="x",
        unit_name_en="x",
    )


@pytest.fixture()
def officer(staff_world: StaffWorld) -> Principal:
    return _principal(staff_world)


def test_round_trip_of_the_form_keeps_a_template_intact(engine: Engine, officer: Principal, world: World) -> None:
    with Session(engine) as s:
        draft = services.create_draft(s, viewer=officer, source="template:sipas_5x22.yaml", code="")
        raw = services.raw_definition(draft)
        posted = forms.parse_edit(_form_of(raw), base=raw)
    assert posted.action == "save"
    assert posted.definition == raw
    assert (
        from_definition(posted.definition).content_hash()
        == world.sipas.model_copy(update={"version": raw["version"]}).content_hash()
    )


def test_a_draft_is_edited_validated_published_and_then_immutable(
    engine: Engine, officer: Principal, world: World
) -> None:
    code = f"designer-{officer.id}"
    with Session(engine, expire_on_commit=False) as s:
        draft = services.create_draft(s, viewer=officer, source="template:quick_rating.yaml", code=code)
        assert draft.status == "draft" and draft.version == 1
        vid = pk(draft)
        raw = services.raw_definition(draft)
        data = _form_of(raw) | {"action": "add_item:0"}
        result = services.save_edit(s, viewer=officer, version_id=vid, data=data)
        assert result.anchor == "s0_i4" and not result.problems
        detail = services.get_version(s, version_id=vid)
        assert [i["id"] for i in detail.definition["sections"][0]["items"]][-1] == "q1"
        # An empty English question and a bad id: named by section and item, nothing published.
        data = _form_of(detail.definition) | {"s0_i4_text_en": "", "s0_i1_id": "Bad Id"}
        result = services.save_edit(s, viewer=officer, version_id=vid, data=data)
        where = {(p.field, p.where.section, p.where.item) for p in result.problems}
        assert ("s0_i4_text_en", 1, 5) in where and ("s0_i1_id", 1, 2) in where
        with pytest.raises(services.DraftInvalid):
            services.publish(s, viewer=officer, version_id=vid)
        s.rollback()
        data = _form_of(services.get_version(s, version_id=vid).definition)
        data |= {"s0_i4_text_en": "Was the counter easy to find?", "s0_i1_id": "went_well"}
        assert not services.save_edit(s, viewer=officer, version_id=vid, data=data).problems
        published = services.publish(s, viewer=officer, version_id=vid)
        assert published.status == "published" and published.published_at is not None
        spec = from_definition(published.definition)
        assert spec.item_by_id["q1"].text.en == "Was the counter easy to find?"
        assert published.content_hash == spec.content_hash()
        # Publishing again, or deleting, is refused; the guard would refuse a direct change too.
        with pytest.raises(ConflictError):
            services.publish(s, viewer=officer, version_id=vid)
        with pytest.raises(ConflictError):
            services.delete_version(s, viewer=officer, version_id=vid)
        # "Editing" the published version makes version 2 with the change; version 1 stays as it was.
        data = _form_of(services.raw_definition(published)) | {"s0_i0_text_en": "How was it?"}
        result = services.save_edit(s, viewer=officer, version_id=vid, data=data)
        assert result.new_draft and result.version_id != vid
        copy = s.get(QuestionnaireVersion, result.version_id)
        assert copy is not None and copy.status == "draft" and copy.version == 2
        s.refresh(published)
        assert from_definition(published.definition).item_by_id["overall"].text.en != "How was it?"
        changes = services.compare(s, version_id=copy.id or 0, against_id=vid).changes
        assert [c.message for c in changes] == ["Question “{id}” relabelled: “{old}” → “{new}”"]
        # Every step is in the audit log, with the account.
        actions = s.scalars(
            select(col(AuditLog.action)).where(
                col(AuditLog.entity) == "questionnaire_version",
                col(AuditLog.entity_id).in_([str(vid), str(copy.id)]),
                col(AuditLog.user_id) == officer.id,
            )
        ).all()
        assert sorted(set(actions)) == ["create_draft", "edit_draft", "publish"]
        assert services.delete_version(s, viewer=officer, version_id=copy.id or 0) == (code, 2)
        assert s.get(QuestionnaireVersion, copy.id) is None


def test_structural_buttons_move_and_remove(officer: Principal) -> None:
    definition = {
        "title": {"vi": "a", "en": "a"},
        "sections": [
            {"id": "one", "title": {"vi": "1", "en": "1"}, "items": [forms.new_item({"sections": []})]},
            {"id": "two", "title": {"vi": "2", "en": "2"}, "items": []},
        ],
    }
    moved, anchor = forms.apply_action(definition, "item_down", (0, 0))
    assert anchor == "s1_i0" and not moved["sections"][0]["items"] and moved["sections"][1]["items"][0]["id"] == "q1"
    swapped, _ = forms.apply_action(moved, "section_up", (1,))
    assert [s["id"] for s in swapped["sections"]] == ["two", "one"]
    problems = forms.problems(swapped)
    assert any(p.message == "A section needs at least one question." and p.where.section == 2 for p in problems)
    removed, _ = forms.apply_action(swapped, "remove_section", (1,))
    assert [s["id"] for s in removed["sections"]] == ["two"]


def test_designer_rules_beyond_the_file_rules() -> None:
    base = forms.new_item({"sections": []})
    text = {"id": "c", "type": "text", "role": "comment", "text": {"vi": "x", "en": "x"}}
    definition: dict[str, Any] = {
        "code": "x",
        "version": 1,
        "title": {"vi": "a", "en": "a"},
        "sections": [{"id": "s", "title": {"vi": "s", "en": "s"}, "items": [base, text, {**text, "id": "d"}]}],
    }
    found = forms.problems(definition)
    assert [p.field for p in found] == ["s0_i2_type"]  # one free comment at most (responses keep one)
    bad = {**base, "options": [{"value": "yes", "label": {"vi": "Có", "en": ""}}]}
    definition["sections"][0]["items"] = [bad]
    messages = {p.message for p in forms.problems(definition)}
    assert "List at least two answer options, one a line." in messages


def test_diff_names_added_removed_retyped_and_option_changes(world: World) -> None:
    old = world.quick.model_dump(mode="json", exclude_none=True)
    new = world.quick.model_dump(mode="json", exclude_none=True)
    items = new["sections"][0]["items"]
    items[1]["options"] = [*items[1]["options"][:-1], {"value": "fast", "label": {"vi": "Nhanh", "en": "Fast"}}]
    items[2]["type"] = "choice"
    del items[3]
    items.append(forms.new_item(new))
    kinds = {(c.kind, c.params.get("id"), c.message.split(":")[0]) for c in diff(old, new)}
    assert ("removed", "comment", "Question “{id}” removed from section “{section}”") in kinds
    assert ("added", "q1", "Question “{id}” added to section “{section}”") in kinds
    assert ("changed", "went_badly", "Question “{id}” retyped") in kinds
    option_change = next(c for c in diff(old, new) if c.params.get("id") == "went_well")
    assert option_change.params["added"] == "fast" and option_change.params["removed"] == "on_time"
    items[0]["sensitive"] = True
    assert ("changed", "overall", "Question “{id}” is now sensitive") in {
        (c.kind, c.params.get("id"), c.message) for c in diff(old, new)
    }
    assert any(c.message == "Question “{id}” is no longer sensitive" for c in diff(new, old))


def test_leaders_cannot_change_questionnaires(engine: Engine, staff_world: StaffWorld) -> None:
    with Session(engine) as s, pytest.raises(ForbiddenError):
        services.create_draft(s, viewer=_principal(staff_world, "leader"), source="template:quick_rating.yaml")


def test_the_pages_of_the_designer(settings: Settings, engine: Engine, staff_world: StaffWorld) -> None:
    with staff_client(settings, engine) as client:
        token = signed_in(client, staff_world.officer)
        code = f"pages-{staff_world.officer.id}"
        made = client.post(
            "/staff/questionnaires/new",
            data={"_csrf_token": token, "source": "template:quick_rating.yaml", "code": code},
            follow_redirects=False,
        )
        assert made.status_code == 303
        edit_url = made.headers["location"].split("?")[0]
        version_id = int(re.findall(r"\d+", edit_url)[0])
        page = client.get(edit_url)
        assert page.status_code == 200 and 'name="s0_i0_text_vi"' in page.text
        with Session(engine) as s:
            raw = services.get_version(s, version_id=version_id).definition
        # A blank Vietnamese title: the page comes back with the error summary naming the section and question.
        bad = _form_of(raw) | {"_csrf_token": token, "s0_i2_text_vi": "", "action": "save"}
        again = client.post(edit_url, data=bad)
        assert again.status_code == 400
        assert "<title>Lỗi: " in again.text or "<title>Error: " in again.text
        assert 'href="#s0_i2_text_vi"' in again.text and "“went_badly”" in again.text
        # The draft is kept as typed; its preview says what is missing instead of the questions.
        broken = client.get(f"/staff/questionnaires/versions/{version_id}/preview?lang=en").text
        assert "Enter the question in Vietnamese." in broken and 'name="q_overall"' not in broken
        listing = client.get("/staff/questionnaires").text
        assert code in listing
        # Publishing with a problem left: refused, shown, still a draft.
        refused = client.post(f"/staff/questionnaires/versions/{version_id}/publish", data={"_csrf_token": token})
        assert refused.status_code == 400
        fixed = _form_of(raw) | {"_csrf_token": token, "action": "save"}
        assert client.post(edit_url, data=fixed, follow_redirects=False).status_code == 303
        # Preview in English: the citizen's partials, a notice, a form that goes nowhere real.
        preview = client.get(f"/staff/questionnaires/versions/{version_id}/preview?lang=en")
        assert preview.status_code == 200
        assert 'name="q_overall"' in preview.text and "not sent anywhere" in preview.text
        assert 'method="get" action="/staff/questionnaires/versions/' in preview.text
        done = client.post(
            f"/staff/questionnaires/versions/{version_id}/publish", data={"_csrf_token": token}, follow_redirects=False
        )
        assert done.status_code == 303
        with Session(engine) as s:
            version = s.get(QuestionnaireVersion, version_id)
            assert version is not None and version.status == "published"
        view = client.get(f"/staff/questionnaires/versions/{version_id}?lang=en").text
        assert "Published" in view and "Delete this draft" not in view
        diff_page = client.get(f"/staff/questionnaires/versions/{version_id}/diff?against={version_id}")
        assert diff_page.status_code == 200
