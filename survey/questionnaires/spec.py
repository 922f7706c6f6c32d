"""Questionnaires as data: the spec, its validation on load, and the answer layout it implies.

A questionnaire file (YAML) names sections, items and answer scales, every label in Vietnamese and
English. ``load_file`` validates it and raises ``QuestionnaireError`` naming the file, the item and
the problem. ``Spec.layout`` fixes the byte columns a response of this version is stored in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from survey.errors import QuestionnaireError

if TYPE_CHECKING:
    from survey.db.models import QuestionnaireVersion

NOT_APPLICABLE = 255
NOT_ANSWERED = 0
MAX_OPTIONS = 254

Ident = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]

ItemType = Literal["scale", "choice", "multi", "text"]
Role = Literal[
    "criterion",  # a satisfaction criterion of an element: counts in the index
    "overall",  # overall satisfaction
    "assessment",  # categorical assessment (harassment, informal payment...)
    "expectation",  # areas to improve (multi-select)
    "went_well",
    "went_badly",
    "profile",  # optional respondent profile: type, age band, sex
    "comment",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Label(_Strict):
    vi: Text
    en: Text

    def get(self, locale: str) -> str:
        return self.en if locale == "en" else self.vi


class Option(_Strict):
    value: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{0,39}$")]
    label: Label


class Scale(_Strict):
    options: list[Option] = Field(min_length=2, max_length=11)
    not_applicable: Label | None = None


class Item(_Strict):
    id: Ident
    type: ItemType
    role: Role
    text: Label
    hint: Label | None = None
    required: bool = False
    scale: Ident | None = None
    options: list[Option] | None = None
    max_choices: int | None = Field(default=None, ge=1)
    max_length: int | None = Field(default=None, ge=1, le=10000)
    # Harassment, informal payment...: never exported with a unit for a group smaller than the minimum
    # cell size (survey.results.disclosure). Left out of the stored definition when false, so specs
    # without it keep their content hash.
    sensitive: bool = Field(default=False, exclude_if=lambda value: value is False)

    @model_validator(mode="after")
    def _check_shape(self) -> Item:
        if self.type == "scale":
            if not self.scale:
                raise ValueError("a scale item needs 'scale:' naming one of the questionnaire's scales")
            if self.options:
                raise ValueError("a scale item takes its options from its scale, not 'options:'")
        elif self.type in ("choice", "multi"):
            if not self.options or len(self.options) < 2:
                raise ValueError(f"a {self.type} item needs at least two options")
            if len(self.options) > MAX_OPTIONS:
                raise ValueError(f"a {self.type} item has at most {MAX_OPTIONS} options")
            values = [o.value for o in self.options]
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"option values repeat: {', '.join(dupes)}")
            if self.scale:
                raise ValueError(f"a {self.type} item lists 'options:', it takes no 'scale:'")
        elif self.type == "text" and (self.options or self.scale):
            raise ValueError("a text item has no options or scale")
        if self.max_choices is not None and self.type != "multi":
            raise ValueError("'max_choices' applies only to multi items")
        if self.max_length is not None and self.type != "text":
            raise ValueError("'max_length' applies only to text items")
        if self.role == "criterion" and self.type != "scale":
            raise ValueError("a criterion must be a scale item")
        if self.role == "comment" and self.type != "text":
            raise ValueError("a comment must be a text item")
        if self.type == "text" and self.role != "comment":
            raise ValueError("a text item must have role 'comment'")
        if self.sensitive and self.type == "text":
            raise ValueError("a free comment is never exported: 'sensitive' applies to scale and choice items")
        return self


class Section(_Strict):
    id: Ident
    title: Label
    element: bool = Field(default=False, description="a SIPAS element: its criteria make an element index")
    items: list[Item] = Field(min_length=1)


class Column(BaseModel):
    """One byte of the stored answer vector."""

    model_config = ConfigDict(frozen=True)

    item: str
    option: str | None = None  # for multi items: one column per option


class Spec(_Strict):
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,59}$")]
    version: int = Field(ge=1)
    title: Label
    description: Label | None = None
    note: str | None = None
    scales: dict[Ident, Scale] = Field(default_factory=dict)
    sections: list[Section] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_references(self) -> Spec:
        seen: dict[str, str] = {}
        section_ids = [s.id for s in self.sections]
        for sid in {s for s in section_ids if section_ids.count(s) > 1}:
            raise ValueError(f"section id '{sid}' is used more than once")
        for section in self.sections:
            for item in section.items:
                if item.id in seen:
                    raise _ItemProblem(item.id, f"id is used twice (sections '{seen[item.id]}' and '{section.id}')")
                seen[item.id] = section.id
                if item.type == "scale" and item.scale not in self.scales:
                    known = ", ".join(sorted(self.scales)) or "none"
                    raise _ItemProblem(item.id, f"scale '{item.scale}' is not defined (scales: {known})")
                if item.role == "criterion" and not section.element:
                    raise _ItemProblem(item.id, f"criterion in section '{section.id}', which is not an element")
        for scale_id, scale in self.scales.items():
            values = [o.value for o in scale.options]
            if len(set(values)) != len(values):
                raise ValueError(f"scale '{scale_id}' repeats an option value")
        if not any(i.role == "overall" for i in self.items):
            pass  # an overall item is recommended, not required (quick ratings have one, but not all forms must)
        return self

    @property
    def items(self) -> list[Item]:
        return [item for section in self.sections for item in section.items]

    @cached_property
    def item_by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}

    def options_of(self, item: Item) -> list[Option]:
        if item.type == "scale":
            assert item.scale is not None
            return self.scales[item.scale].options
        return list(item.options or [])

    def not_applicable_of(self, item: Item) -> Label | None:
        return self.scales[item.scale].not_applicable if item.type == "scale" and item.scale else None

    @cached_property
    def layout(self) -> tuple[Column, ...]:
        """The byte columns of a stored response, in order. Text items are stored apart (``comment``)."""
        cols: list[Column] = []
        for item in self.items:
            if item.type in ("scale", "choice"):
                cols.append(Column(item=item.id))
            elif item.type == "multi":
                cols.extend(Column(item=item.id, option=o.value) for o in self.options_of(item))
        return tuple(cols)

    @cached_property
    def column_index(self) -> dict[tuple[str, str | None], int]:
        return {(c.item, c.option): i for i, c in enumerate(self.layout)}

    def to_definition(self) -> dict[str, Any]:
        """What is stored with a version: the spec plus its layout."""
        data = self.model_dump(mode="json", exclude_none=True)
        data["layout"] = [c.model_dump(exclude_none=True) for c in self.layout]
        return data

    def content_hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


class _ItemProblem(ValueError):
    def __init__(self, item: str, problem: str) -> None:
        super().__init__(problem)
        self.item = item
        self.problem = problem


def _item_at(raw: Any, loc: tuple[Any, ...]) -> str | None:
    """The id of the item a pydantic error location points into, if any."""
    if len(loc) >= 4 and loc[0] == "sections" and loc[2] == "items":
        try:
            item = raw["sections"][loc[1]]["items"][loc[3]]
        except (KeyError, IndexError, TypeError):
            return None
        if isinstance(item, dict):
            return str(item.get("id") or f"#{loc[3] + 1} of section {loc[1] + 1}")
    return None


def parse(raw: Any, source: str) -> Spec:
    """Validate a questionnaire already read into Python data; ``source`` names it in errors."""
    if not isinstance(raw, dict):
        raise QuestionnaireError(source, None, "the file must hold a mapping (code, version, title, sections...)")
    try:
        return Spec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = err.get("ctx", {}).get("error")
        if isinstance(ctx_error, _ItemProblem):
            raise QuestionnaireError(source, ctx_error.item, ctx_error.problem) from None
        loc = tuple(err["loc"])
        item = _item_at(raw, loc)
        inner = loc[4:] if item and len(loc) > 4 else (() if item else loc)
        where = ".".join(str(p) for p in inner)
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "missing":
            message = f"'{where}' is missing"
        elif err["type"] == "extra_forbidden":
            message = f"'{where}' is not a known key"
        elif where:
            message = f"{where}: {message}"
        extra = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
        raise QuestionnaireError(source, item, message + extra) from None


def load_file(path: Path) -> Spec:
    """Read and validate one questionnaire file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise QuestionnaireError(str(path), None, "file not found") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise QuestionnaireError(str(path), None, f"not valid YAML: {exc}") from None
    return parse(raw, path.name)


def from_definition(definition: dict[str, Any]) -> Spec:
    """The spec of a stored version (its layout is recomputed and must match what was stored)."""
    data = {k: v for k, v in definition.items() if k != "layout"}
    spec = parse(data, f"questionnaire {data.get('code')} v{data.get('version')}")
    stored = [Column(**c) for c in definition.get("layout", [])]
    if stored and tuple(stored) != spec.layout:
        raise QuestionnaireError(spec.code, None, "stored answer layout does not match the spec")
    return spec


_SPECS: dict[tuple[int, str], Spec] = {}


def cached_spec(version_id: int, content_hash: str, definition: Callable[[], dict[str, Any]]) -> Spec:
    """The validated spec of a stored version, cached by id and content hash: a published version never
    changes, and a draft's edits change its hash (so no serialising the definition to key the cache).
    ``definition`` is called only when the spec is not cached yet."""
    key = (version_id, content_hash)
    spec = _SPECS.get(key)
    if spec is None:
        spec = from_definition(definition())
        if len(_SPECS) >= 256:
            _SPECS.clear()
        _SPECS[key] = spec
    return spec


def spec_of(version: QuestionnaireVersion) -> Spec:
    """The validated spec of a version row."""
    assert version.id is not None
    return cached_spec(version.id, version.content_hash, lambda: version.definition)
