"""The designer's edit form: a draft's definition as flat form fields, back again, and its problems.

A draft is stored as the questionnaire's raw definition (the YAML's shape: ``title``, ``scales``,
``sections`` with ``items``), even while it does not validate yet, so a person can save half-done work.
``problems`` checks it with the same rules as a questionnaire file (``survey.questionnaires.spec.Spec``), plus
the designer's own, and names the section and the item of each problem.

Field names: ``title_vi``, ``s{n}_title_vi``, ``s{n}_i{m}_text_vi``... (n, m from 0). The edit form has one
"action" button per structural change (add, remove, move), so no JavaScript is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, get_args

from pydantic import ValidationError

from survey.i18n import N_
from survey.officer.forms import FormError
from survey.questionnaires.spec import MAX_OPTIONS, ItemType, Role, Spec

ITEM_TYPES: tuple[str, ...] = get_args(ItemType)
ROLES: tuple[str, ...] = get_args(Role)
IDENT_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
VALUE_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,39}$")
CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
MAX_SECTIONS = 30
MAX_ITEMS = 80
LABEL_LIMIT = 500

TYPE_LABELS = {
    "scale": N_("Rating on a scale"),
    "choice": N_("One choice"),
    "multi": N_("Several choices"),
    "text": N_("Free comment"),
}
ROLE_LABELS = {
    "criterion": N_("Criterion of an element (counts in the index)"),
    "overall": N_("Overall satisfaction"),
    "assessment": N_("Assessment (yes/no, informal payment...)"),
    "expectation": N_("Areas to improve"),
    "went_well": N_("What went well"),
    "went_badly": N_("What went badly"),
    "profile": N_("Respondent profile"),
    "comment": N_("Comment"),
}

ID_RULE = N_("Use 1 to 40 lowercase letters a-z, digits or underscores, starting with a letter.")


def _text(data: dict[str, Any], name: str, limit: int = LABEL_LIMIT + 50) -> str:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    if not isinstance(value, str):
        return ""
    return value.replace("\r\n", "\n").strip()[:limit]


def _label(vi: str, en: str) -> dict[str, str]:
    return {"vi": vi, "en": en}


def options_to_text(options: list[dict[str, Any]] | None) -> str:
    """Options as the textarea shows them: ``value | Vietnamese | English``, one a line."""
    lines = []
    for o in options or []:
        label = o.get("label") or {}
        lines.append(f"{o.get('value', '')} | {label.get('vi', '')} | {label.get('en', '')}")
    return "\n".join(lines)


def text_to_options(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        parts += [""] * (3 - len(parts))
        out.append({"value": parts[0], "label": _label(parts[1], " | ".join(parts[2:]).strip(" |"))})
    return out[: MAX_OPTIONS + 1]


def _int_or_none(raw: str) -> int | str | None:
    if not raw:
        return None
    return int(raw) if raw.isdigit() else raw


@dataclass(frozen=True, slots=True)
class Posted:
    """What the edit form sent: the definition it describes and the button pressed."""

    definition: dict[str, Any]
    action: str
    target: tuple[int, ...] = ()


ACTIONS = (
    "save",
    "add_section",
    "add_item",
    "remove_item",
    "item_up",
    "item_down",
    "remove_section",
    "section_up",
    "section_down",
)


def parse_action(raw: str) -> tuple[str, tuple[int, ...]]:
    name, *rest = (raw or "save").split(":")
    if name not in ACTIONS or not all(p.isdigit() for p in rest):
        return "save", ()
    return name, tuple(int(p) for p in rest)


def parse_edit(data: dict[str, Any], *, base: dict[str, Any]) -> Posted:
    """The definition the form describes, on top of ``base`` (which keeps what the form does not show)."""
    definition = {k: v for k, v in base.items() if k not in ("title", "description", "sections", "layout")}
    definition["title"] = _label(_text(data, "title_vi"), _text(data, "title_en"))
    dvi, den = _text(data, "description_vi", 2000), _text(data, "description_en", 2000)
    if dvi or den:
        definition["description"] = _label(dvi, den)
    sections = []
    s_count = min(_count(data, "sections"), MAX_SECTIONS)
    for s in range(s_count):
        p = f"s{s}_"
        items = []
        for i in range(min(_count(data, f"{p}items"), MAX_ITEMS)):
            q = f"{p}i{i}_"
            item: dict[str, Any] = {
                "id": _text(data, f"{q}id", 60),
                "type": _text(data, f"{q}type", 20),
                "role": _text(data, f"{q}role", 20),
                "text": _label(_text(data, f"{q}text_vi"), _text(data, f"{q}text_en")),
                "required": _text(data, f"{q}required", 5) == "1",
            }
            if _text(data, f"{q}sensitive", 5) == "1":  # written only when set, as in the questionnaire files
                item["sensitive"] = True
            hvi, hen = _text(data, f"{q}hint_vi"), _text(data, f"{q}hint_en")
            if hvi or hen:
                item["hint"] = _label(hvi, hen)
            if item["type"] == "scale":
                item["scale"] = _text(data, f"{q}scale", 60)
            if item["type"] in ("choice", "multi"):
                item["options"] = text_to_options(_text(data, f"{q}options", 40_000))
            if item["type"] == "multi" and (mc := _int_or_none(_text(data, f"{q}max_choices", 10))) is not None:
                item["max_choices"] = mc
            if item["type"] == "text" and (ml := _int_or_none(_text(data, f"{q}max_length", 10))) is not None:
                item["max_length"] = ml
            items.append(item)
        sections.append(
            {
                "id": _text(data, f"{p}id", 60),
                "title": _label(_text(data, f"{p}title_vi"), _text(data, f"{p}title_en")),
                "element": _text(data, f"{p}element", 5) == "1",
                "items": items,
            }
        )
    definition["sections"] = sections
    action, target = parse_action(_text(data, "action", 40))
    return Posted(definition=definition, action=action, target=target)


def _count(data: dict[str, Any], name: str) -> int:
    raw = _text(data, name, 5)
    return int(raw) if raw.isdigit() else 0


# --- Structural changes -------------------------------------------------------------------------------------------


def _fresh_id(taken: set[str], prefix: str) -> str:
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def new_item(definition: dict[str, Any]) -> dict[str, Any]:
    """A valid yes/no question to start from (so adding one never makes a draft invalid)."""
    taken = {str(i.get("id")) for s in definition.get("sections", []) for i in s.get("items", [])}
    return {
        "id": _fresh_id(taken, "q"),
        "type": "choice",
        "role": "assessment",
        "text": _label("Câu hỏi mới", "New question"),
        "required": False,
        "options": [
            {"value": "yes", "label": _label("Có", "Yes")},
            {"value": "no", "label": _label("Không", "No")},
        ],
    }


def apply_action(definition: dict[str, Any], action: str, target: tuple[int, ...]) -> tuple[dict[str, Any], str]:
    """``definition`` after a structural change; also the form anchor to come back to."""
    sections: list[dict[str, Any]] = definition["sections"]
    anchor = ""
    if action == "add_section" and len(sections) < MAX_SECTIONS:
        taken = {str(s.get("id")) for s in sections}
        sid = _fresh_id(taken, "section")
        sections.append(
            {"id": sid, "title": _label("Phần mới", "New section"), "element": False, "items": [new_item(definition)]}
        )
        anchor = f"s{len(sections) - 1}"
    elif action in ("remove_section", "section_up", "section_down") and len(target) == 1 and target[0] < len(sections):
        s = target[0]
        if action == "remove_section":
            del sections[s]
            anchor = f"s{max(0, s - 1)}" if sections else ""
        else:
            other = s - 1 if action == "section_up" else s + 1
            if 0 <= other < len(sections):
                sections[s], sections[other] = sections[other], sections[s]
                anchor = f"s{other}"
    elif action == "add_item" and len(target) == 1 and target[0] < len(sections):
        items = sections[target[0]]["items"]
        if sum(len(s["items"]) for s in sections) < MAX_ITEMS:
            items.append(new_item(definition))
            anchor = f"s{target[0]}_i{len(items) - 1}"
    elif action in ("remove_item", "item_up", "item_down") and len(target) == 2:
        s, i = target
        if s < len(sections) and i < len(sections[s]["items"]):
            items = sections[s]["items"]
            if action == "remove_item":
                del items[i]
                anchor = f"s{s}"
            elif action == "item_up" and i > 0:
                items[i - 1], items[i] = items[i], items[i - 1]
                anchor = f"s{s}_i{i - 1}"
            elif action == "item_up" and s > 0:  # the first of its section goes to the end of the one before
                sections[s - 1]["items"].append(items.pop(i))
                anchor = f"s{s - 1}_i{len(sections[s - 1]['items']) - 1}"
            elif action == "item_down" and i < len(items) - 1:
                items[i + 1], items[i] = items[i], items[i + 1]
                anchor = f"s{s}_i{i + 1}"
            elif action == "item_down" and s < len(sections) - 1:  # the last goes to the start of the next
                sections[s + 1]["items"].insert(0, items.pop(i))
                anchor = f"s{s + 1}_i0"
    return definition, anchor


# --- Problems -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Where:
    """Which section and item a problem is about, for the summary ("Section 2 “Your rating”, item 3 “q3”")."""

    section: int | None = None
    section_title: str = ""
    item: int | None = None
    item_id: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    field: str | None
    message: str
    params: dict[str, Any] = dc_field(default_factory=dict)
    where: Where = dc_field(default_factory=Where)

    def as_form_error(self) -> FormError:
        return FormError(self.field, self.message, self.params)


def _blank(label: Any) -> tuple[bool, bool]:
    label = label if isinstance(label, dict) else {}
    return (not str(label.get("vi") or "").strip(), not str(label.get("en") or "").strip())


def problems(definition: dict[str, Any]) -> list[Problem]:
    """Everything that stops ``definition`` from being published, each naming its section and item."""
    out: list[Problem] = []
    vi_blank, en_blank = _blank(definition.get("title"))
    if vi_blank:
        out.append(Problem("title_vi", N_("Enter the questionnaire's title in Vietnamese.")))
    if en_blank:
        out.append(Problem("title_en", N_("Enter the questionnaire's title in English.")))
    sections = definition.get("sections") or []
    if not sections:
        out.append(Problem(None, N_("A questionnaire needs at least one section.")))
    scales = definition.get("scales") or {}
    seen_sections: set[str] = set()
    seen_items: dict[str, int] = {}
    text_items = 0
    for s, section in enumerate(sections):
        title = (section.get("title") or {}).get("vi", "")
        sw = Where(section=s + 1, section_title=title)
        p = f"s{s}_"
        sid = str(section.get("id") or "")
        if not IDENT_RE.fullmatch(sid):
            out.append(Problem(f"{p}id", ID_RULE, where=sw))
        elif sid in seen_sections:
            out.append(Problem(f"{p}id", N_("Another section has the id “{id}”."), {"id": sid}, sw))
        seen_sections.add(sid)
        vi_blank, en_blank = _blank(section.get("title"))
        if vi_blank:
            out.append(Problem(f"{p}title_vi", N_("Enter the section's title in Vietnamese."), where=sw))
        if en_blank:
            out.append(Problem(f"{p}title_en", N_("Enter the section's title in English."), where=sw))
        items = section.get("items") or []
        if not items:
            out.append(Problem(f"{p}id", N_("A section needs at least one question."), where=sw))
        for i, item in enumerate(items):
            q = f"{p}i{i}_"
            iid = str(item.get("id") or "")
            w = Where(section=s + 1, section_title=title, item=i + 1, item_id=iid)
            if not IDENT_RE.fullmatch(iid):
                out.append(Problem(f"{q}id", ID_RULE, where=w))
            elif iid in seen_items:
                out.append(Problem(f"{q}id", N_("Another question has the id “{id}”."), {"id": iid}, w))
            seen_items.setdefault(iid, s)
            vi_blank, en_blank = _blank(item.get("text"))
            if vi_blank:
                out.append(Problem(f"{q}text_vi", N_("Enter the question in Vietnamese."), where=w))
            if en_blank:
                out.append(Problem(f"{q}text_en", N_("Enter the question in English."), where=w))
            kind, role = item.get("type"), item.get("role")
            if kind not in ITEM_TYPES:
                out.append(Problem(f"{q}type", N_("Choose the kind of question."), where=w))
                continue
            if role not in ROLES:
                out.append(Problem(f"{q}role", N_("Choose what the question measures."), where=w))
            elif role == "criterion" and kind != "scale":
                out.append(Problem(f"{q}role", N_("A criterion must be a rating on a scale."), where=w))
            elif role == "criterion" and not section.get("element"):
                out.append(Problem(f"{q}role", N_("A criterion belongs in a section marked as an element."), where=w))
            elif (role == "comment") != (kind == "text"):
                out.append(Problem(f"{q}role", N_("A free comment, and only it, has the role “Comment”."), where=w))
            if kind == "text":
                text_items += 1
                if text_items > 1:
                    out.append(
                        Problem(f"{q}type", N_("A questionnaire has at most one free comment question."), where=w)
                    )
            if kind == "scale" and item.get("scale") not in scales:
                out.append(Problem(f"{q}scale", N_("Choose one of the questionnaire's scales."), where=w))
            if kind in ("choice", "multi"):
                out.extend(_option_problems(item.get("options") or [], f"{q}options", w))
    if not out:
        out.extend(_spec_problems(definition))
    return out


def _option_problems(options: list[dict[str, Any]], name: str, w: Where) -> list[Problem]:
    out = []
    if len(options) < 2:
        out.append(Problem(name, N_("List at least two answer options, one a line."), where=w))
    if len(options) > MAX_OPTIONS:
        out.append(Problem(name, N_("List at most {count} answer options."), {"count": MAX_OPTIONS}, w))
    values = [str(o.get("value") or "") for o in options]
    for n, (o, value) in enumerate(zip(options, values, strict=True), start=1):
        vi_blank, en_blank = _blank(o.get("label"))
        if not VALUE_RE.fullmatch(value) or vi_blank or en_blank:
            out.append(
                Problem(
                    name,
                    N_("Option {n}: write “value | Vietnamese | English”; the value uses a-z, 0-9 and _."),
                    {"n": n},
                    w,
                )
            )
        elif values.count(value) > 1:
            out.append(Problem(name, N_("Option {n}: the value “{value}” is used twice."), {"n": n, "value": value}, w))
    return out


def _spec_problems(definition: dict[str, Any]) -> list[Problem]:
    """What the questionnaire rules still find (messages in English, from ``survey.questionnaires.spec``)."""
    try:
        Spec.model_validate({k: v for k, v in definition.items() if k != "layout"})
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            w, name = Where(), None
            if len(loc) >= 2 and loc[0] == "sections" and isinstance(loc[1], int):
                s = loc[1]
                w = Where(section=s + 1)
                name = f"s{s}_id"
                if len(loc) >= 4 and loc[2] == "items" and isinstance(loc[3], int):
                    w = Where(section=s + 1, item=loc[3] + 1)
                    name = f"s{s}_i{loc[3]}_type"
            message = str(err["msg"]).removeprefix("Value error, ")
            out.append(Problem(name, N_("{problem}"), {"problem": message}, w))
        return out
    return []


# --- The form as the page shows it --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ItemView:
    n: int
    id: str
    type: str
    role: str
    scale: str
    text_vi: str
    text_en: str
    hint_vi: str
    hint_en: str
    required: bool
    sensitive: bool
    options: str
    max_choices: str
    max_length: str


@dataclass(frozen=True, slots=True)
class SectionView:
    n: int
    id: str
    title_vi: str
    title_en: str
    element: bool
    items: list[ItemView]


@dataclass(frozen=True, slots=True)
class FormView:
    title_vi: str
    title_en: str
    description_vi: str
    description_en: str
    scales: list[str]
    sections: list[SectionView]


def _get(label: Any, lang: str) -> str:
    return str(label.get(lang) or "") if isinstance(label, dict) else ""


def form_view(definition: dict[str, Any]) -> FormView:
    sections = []
    for s, section in enumerate(definition.get("sections") or []):
        items = [
            ItemView(
                n=i,
                id=str(item.get("id") or ""),
                type=str(item.get("type") or ""),
                role=str(item.get("role") or ""),
                scale=str(item.get("scale") or ""),
                text_vi=_get(item.get("text"), "vi"),
                text_en=_get(item.get("text"), "en"),
                hint_vi=_get(item.get("hint"), "vi"),
                hint_en=_get(item.get("hint"), "en"),
                required=bool(item.get("required")),
                sensitive=bool(item.get("sensitive")),
                options=options_to_text(item.get("options")),
                max_choices=str(item.get("max_choices") or ""),
                max_length=str(item.get("max_length") or ""),
            )
            for i, item in enumerate(section.get("items") or [])
        ]
        sections.append(
            SectionView(
                n=s,
                id=str(section.get("id") or ""),
                title_vi=_get(section.get("title"), "vi"),
                title_en=_get(section.get("title"), "en"),
                element=bool(section.get("element")),
                items=items,
            )
        )
    return FormView(
        title_vi=_get(definition.get("title"), "vi"),
        title_en=_get(definition.get("title"), "en"),
        description_vi=_get(definition.get("description"), "vi"),
        description_en=_get(definition.get("description"), "en"),
        scales=sorted(definition.get("scales") or {}),
        sections=sections,
    )


@dataclass(frozen=True, slots=True)
class NewDraftForm:
    source: str
    code: str


def parse_new(data: dict[str, Any]) -> tuple[NewDraftForm, list[FormError]]:
    form = NewDraftForm(source=_text(data, "source", 200), code=_text(data, "code", 80).lower())
    errors = []
    if not form.source:
        errors.append(FormError("source", N_("Choose a template or a version to start from.")))
    if form.code and not CODE_RE.fullmatch(form.code):
        errors.append(
            FormError("code", N_("A code has 1 to 60 lowercase letters a-z, digits, hyphens or underscores."))
        )
    return form, errors
