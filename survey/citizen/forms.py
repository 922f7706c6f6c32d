"""Reading a submitted survey page against the exact questionnaire version it was rendered from."""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Any

from survey.i18n import N_
from survey.questionnaires.spec import NOT_ANSWERED, NOT_APPLICABLE, Item, Spec

NA_VALUE = "na"
HONEYPOT_FIELD = "contact_note"  # hidden from people; see templates/citizen/survey.html
CONTROL_FIELDS = frozenset({"token", "lang", HONEYPOT_FIELD})


def field_name(item: Item) -> str:
    return f"q_{item.id}"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem, as a message id and its parameters; ``field`` is the form field (None = whole form)."""

    field: str | None
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedAnswers:
    answers: bytes
    comment: str | None
    errors: tuple[FieldError, ...]
    kept: dict[str, list[str]]  # what the citizen chose, to show the page again with answers kept

    @property
    def ok(self) -> bool:
        return not self.errors


def _values(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, list):
        return [str(v) for v in raw]
    return [str(raw)]


def _clean_text(text: str) -> str:
    """Normalise to NFC and drop control characters except newlines and tabs."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()


@dataclass(frozen=True, slots=True)
class _Field:
    """How one item of a spec is read from the form (worked out once per spec: a submission only looks up)."""

    name: str
    item: Item
    options: tuple[str, ...]
    position: dict[str, int]  # option value -> its stored byte (1..k)
    column: int  # the item's byte (scale and choice items)
    columns: dict[str, int]  # option value -> its byte (multi items)
    not_applicable: bool


_PLANS: dict[int, tuple[Spec, tuple[_Field, ...], frozenset[str]]] = {}


def _plan(spec: Spec) -> tuple[tuple[_Field, ...], frozenset[str]]:
    """The fields of ``spec`` and the names the form may carry, cached (the entry keeps ``spec`` alive, so its
    id cannot be reused by another spec while the entry exists)."""
    found = _PLANS.get(id(spec))
    if found is None or found[0] is not spec:
        index = spec.column_index
        fields = []
        for item in spec.items:
            options = tuple(o.value for o in spec.options_of(item))
            multi = item.type == "multi"
            fields.append(
                _Field(
                    name=field_name(item),
                    item=item,
                    options=options,
                    position={v: i + 1 for i, v in enumerate(options)},
                    column=-1 if multi or item.type == "text" else index[(item.id, None)],
                    columns={v: index[(item.id, v)] for v in options} if multi else {},
                    not_applicable=spec.not_applicable_of(item) is not None,
                )
            )
        if len(_PLANS) >= 256:
            _PLANS.clear()
        found = _PLANS[id(spec)] = (spec, tuple(fields), frozenset(f.name for f in fields) | CONTROL_FIELDS)
    return found[1], found[2]


def parse_answers(spec: Spec, form: dict[str, Any], *, comment_max_chars: int) -> ParsedAnswers:
    """Validate ``form`` (field name -> value or list of values) and encode it as the stored byte vector.

    Unknown fields, values outside an item's options, repeated single answers, too many choices and
    oversized comments are errors; so is a required item left blank.
    """
    errors: list[FieldError] = []
    kept: dict[str, list[str]] = {}
    vector = bytearray(len(spec.layout))
    comment: str | None = None
    fields, allowed = _plan(spec)

    if any(k not in allowed for k in form):
        errors.append(FieldError(None, N_("The form contained answers this survey does not ask for.")))

    for f in fields:
        name, item = f.name, f.item
        raw = form.get(name)
        if raw is None or raw == "":
            values = []
        elif isinstance(raw, str):
            values = [raw]
        else:
            values = [v for v in _values(raw) if v != ""]
        if item.type == "text":
            text = _clean_text(values[0]) if len(values) == 1 else ""
            kept[name] = [text] if text else []
            limit = min(item.max_length or comment_max_chars, comment_max_chars)
            if len(values) > 1:
                errors.append(FieldError(name, N_("This answer was sent more than once.")))
            elif len(text) > limit:
                errors.append(FieldError(name, N_("Please shorten this to {limit} characters."), {"limit": limit}))
            elif text:
                comment = text
            continue

        position = f.position
        kept[name] = [v for v in values if v in position or v == NA_VALUE]
        if item.type == "multi":
            if any(v not in position for v in values) or len(set(values)) != len(values):
                errors.append(FieldError(name, N_("This answer is not one of the choices offered.")))
                continue
            if item.max_choices and len(values) > item.max_choices:
                errors.append(
                    FieldError(name, N_("Please choose at most {count} options."), {"count": item.max_choices})
                )
                continue
            if item.required and not values:
                errors.append(FieldError(name, N_("Please choose at least one option.")))
                continue
            for v in values:
                vector[f.columns[v]] = 1
            continue

        # scale and choice items: exactly one value
        if len(values) > 1:
            errors.append(FieldError(name, N_("Please choose only one answer.")))
            continue
        if not values:
            if item.required:
                errors.append(FieldError(name, N_("Please choose an answer.")))
            vector[f.column] = NOT_ANSWERED
            continue
        value = values[0]
        if value == NA_VALUE and f.not_applicable:
            vector[f.column] = NOT_APPLICABLE
        elif value in position:
            vector[f.column] = position[value]
        else:
            errors.append(FieldError(name, N_("This answer is not one of the choices offered.")))

    return ParsedAnswers(answers=bytes(vector), comment=comment, errors=tuple(errors), kept=kept)
