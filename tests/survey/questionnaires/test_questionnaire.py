"""Questionnaires as data: the shipped templates load, and broken files say what and where."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seed_data import QUESTIONNAIRE_DIR
from survey.errors import QuestionnaireError
from survey.questionnaires.spec import Column, from_definition, load_file, parse

SIPAS = QUESTIONNAIRE_DIR / "sipas_5x22.yaml"
QUICK = QUESTIONNAIRE_DIR / "quick_rating.yaml"


def test_sipas_template_has_five_elements_and_twenty_two_criteria() -> None:
    spec = load_file(SIPAS)
    elements = [s for s in spec.sections if s.element]
    assert [s.id for s in elements] == ["access", "procedures", "staff", "results", "feedback"]
    assert [sum(i.role == "criterion" for i in s.items) for s in elements] == [4, 5, 6, 3, 4]
    criteria = [i for i in spec.items if i.role == "criterion"]
    assert len(criteria) == 22
    assert all(i.type == "scale" and i.required for i in criteria)
    scale = spec.scales["satisfaction5"]
    assert [o.value for o in scale.options] == ["1", "2", "3", "4", "5"]
    assert scale.options[3].label.vi == "Hài lòng" and scale.options[4].label.vi == "Rất hài lòng"
    assert scale.not_applicable is not None  # a separate "not applicable" choice, never a low score
    roles = {i.role for i in spec.items}
    assert {"overall", "assessment", "expectation", "comment", "profile"} <= roles
    profile = {i.id for i in spec.items if i.role == "profile"}
    assert profile == {"respondent_type", "age_band", "sex"}
    assert not any(i.required for i in spec.items if i.role in ("profile", "comment", "expectation"))
    assessments = {i.id for i in spec.items if i.role == "assessment"}
    assert assessments == {"harassment", "informal_payment"}


def test_quick_rating_has_one_overall_item_and_two_multi_selects() -> None:
    spec = load_file(QUICK)
    assert [i.id for i in spec.items if i.required] == ["overall"]
    assert {i.role for i in spec.items if i.type == "multi"} == {"went_well", "went_badly"}
    assert spec.item_by_id["comment"].type == "text"


@pytest.mark.parametrize("path", [SIPAS, QUICK], ids=["sipas", "quick"])
def test_every_label_is_in_vietnamese_and_english(path: Path) -> None:
    spec = load_file(path)
    labels = [spec.title]
    for section in spec.sections:
        labels.append(section.title)
        for item in section.items:
            labels.append(item.text)
            labels.extend(o.label for o in spec.options_of(item))
    for label in labels:
        assert label.vi.strip() and label.en.strip()
    # Vietnamese labels really are Vietnamese: most carry diacritics
    assert sum(any(ord(ch) > 127 for ch in label.vi) for label in labels) > 0.8 * len(labels)


@pytest.mark.parametrize("path", [SIPAS, QUICK], ids=["sipas", "quick"])
def test_layout_has_one_byte_per_single_answer_and_per_multi_option(path: Path) -> None:
    spec = load_file(path)
    expected = 0
    for item in spec.items:
        if item.type in ("scale", "choice"):
            expected += 1
        elif item.type == "multi":
            expected += len(spec.options_of(item))
    assert len(spec.layout) == expected
    assert len(set(spec.layout)) == len(spec.layout)
    # a stored version gives back the same spec and layout
    again = from_definition(spec.to_definition())
    assert again == spec and again.layout == spec.layout and again.content_hash() == spec.content_hash()


def test_sensitive_items_are_marked_and_the_flag_is_stored_only_when_set() -> None:
    sipas, quick = load_file(SIPAS), load_file(QUICK)
    assert {i.id for i in sipas.items if i.sensitive} == {"harassment", "informal_payment"}
    assert {i.id for i in quick.items if i.sensitive} == {"went_badly"}  # one option: payment beyond the fees
    definition = sipas.to_definition()
    stored = {i["id"]: i for s in definition["sections"] for i in s["items"]}
    assert stored["harassment"]["sensitive"] is True and "sensitive" not in stored["overall"]
    # a spec without the flag has the content hash it had before the flag existed
    plain = sipas.model_copy(
        update={
            "sections": [
                s.model_copy(update={"items": [i.model_copy(update={"sensitive": False}) for i in s.items]})
                for s in sipas.sections
            ]
        }
    )
    assert "sensitive" not in str(plain.model_dump(mode="json"))
    raw = yaml.safe_load(SIPAS.read_text(encoding="utf-8"))
    for section in raw["sections"]:
        for item in section["items"]:
            item.pop("sensitive", None)
    assert parse(raw, "sipas").content_hash() == plain.content_hash() != sipas.content_hash()


def _broken(tmp_path: Path, mutate: Any) -> Path:
    data = yaml.safe_load(SIPAS.read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _item(data: dict[str, Any], item_id: str) -> dict[str, Any]:
    for section in data["sections"]:
        for item in section["items"]:
            if item["id"] == item_id:
                return item
    raise KeyError(item_id)


CASES = [
    (
        "missing English label",
        lambda d: _item(d, "staff_polite")["text"].pop("en"),
        "staff_polite",
        "'text.en' is missing",
    ),
    ("empty Vietnamese label", lambda d: _item(d, "proc_fees")["text"].update(vi="  "), "proc_fees", "text.vi"),
    ("unknown scale", lambda d: _item(d, "access_seats").update(scale="stars"), "access_seats", "scale 'stars'"),
    ("unknown key", lambda d: _item(d, "overall").update(colour="red"), "overall", "'colour' is not a known key"),
    ("duplicate id", lambda d: _item(d, "fb_easy").update(id="fb_channel"), "fb_channel", "used twice"),
    (
        "criterion as choice",
        lambda d: _item(d, "result_complete").update(type="choice"),
        "result_complete",
        "at least two options",
    ),
    (
        "repeated option",
        lambda d: _item(d, "harassment")["options"].append(_item(d, "harassment")["options"][0]),
        "harassment",
        "option values repeat: none",
    ),
    (
        "criterion outside an element",
        lambda d: d["sections"][5]["items"].append({**_item(d, "access_signs"), "id": "stray"}),
        "stray",
        "not an element",
    ),
    ("bad item id", lambda d: _item(d, "sex").update(id="Sex!"), None, "should match pattern"),
    ("sensitive comment", lambda d: _item(d, "comment").update(sensitive=True), "comment", "never exported"),
]


@pytest.mark.parametrize(("case", "mutate", "item", "problem"), CASES, ids=[c[0] for c in CASES])
def test_broken_questionnaire_names_file_item_and_problem(
    tmp_path: Path, case: str, mutate: Any, item: str | None, problem: str
) -> None:
    path = _broken(tmp_path, mutate)
    with pytest.raises(QuestionnaireError) as err:
        load_file(path)
    message = str(err.value)
    assert message.startswith("broken.yaml"), message
    if item:
        assert err.value.item == item and f"item '{item}'" in message, message
    assert problem in message, message


def test_unreadable_files_give_named_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("code: [unclosed\n", encoding="utf-8")
    with pytest.raises(QuestionnaireError, match=r"bad\.yaml.*not valid YAML"):
        load_file(bad_yaml)
    with pytest.raises(QuestionnaireError, match="file not found"):
        load_file(tmp_path / "missing.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n", encoding="utf-8")
    with pytest.raises(QuestionnaireError, match=r"scalar\.yaml: the file must hold a mapping"):
        load_file(scalar)


def test_stored_definition_with_a_different_layout_is_refused() -> None:
    spec = load_file(QUICK)
    definition = spec.to_definition()
    definition["layout"] = [Column(item="overall").model_dump(exclude_none=True)]
    with pytest.raises(QuestionnaireError, match="layout does not match"):
        from_definition(definition)
