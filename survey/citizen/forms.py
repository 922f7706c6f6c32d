"""Reading a submitted survey page against the exact questionnaire version it was rendered from."""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from typing import Any

from survey.i18n import N_
from survey.questionnaire import NOT_ANSWERED, NOT_APPLICABLE, Item, Spec

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


def parse_answers(spec: Spec, form: dict[str, Any], *, comment_max_chars: int) -> ParsedAnswers:
    """Validate ``form`` (field name -> value or list of values) and encode it as the stored byte vector.

    Unknown fields, values outside an item's options, repeated single answers, too many choices and
    oversized comments are errors; so is a required item left blank.
    """
    errors: list[FieldError] = []
    kept: dict[str, list[str]] = {}
    vector = bytearray(len(spec.layout))
    index = spec.column_index
    comment: str | None = None
    known = {field_name(item): item for item in spec.items}

    unknown = sorted(k for k in form if k not in known and k not in CONTROL_FIELDS)
    if unknown:
        errors.append(FieldError(None, N_("The form contained answers this survey does not ask for.")))

    for name, item in known.items():
        values = [v for v in _values(form.get(name)) if v != ""]
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

        options = [o.value for o in spec.options_of(item)]
        kept[name] = [v for v in values if v in options or v == NA_VALUE]
        if item.type == "multi":
            bad = [v for v in values if v not in options]
            if bad or len(set(values)) != len(values):
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
                vector[index[(item.id, v)]] = 1
            continue

        # scale and choice items: exactly one value
        if len(values) > 1:
            errors.append(FieldError(name, N_("Please choose only one answer.")))
            continue
        if not values:
            if item.required:
                errors.append(FieldError(name, N_("Please choose an answer.")))
            vector[index[(item.id, None)]] = NOT_ANSWERED
            continue
        value = values[0]
        if value == NA_VALUE and spec.not_applicable_of(item) is not None:
            vector[index[(item.id, None)]] = NOT_APPLICABLE
        elif value in options:
            vector[index[(item.id, None)]] = options.index(value) + 1
        else:
            errors.append(FieldError(name, N_("This answer is not one of the choices offered.")))

    return ParsedAnswers(answers=bytes(vector), comment=comment, errors=tuple(errors), kept=kept)
