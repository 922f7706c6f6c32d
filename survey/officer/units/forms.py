"""Form input of the unit, service point and field pages: the posted values, trimmed and bounded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def text(data: dict[str, Any], name: str, *, limit: int = 400) -> str:
    value = data.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return value[:limit].strip() if isinstance(value, str) else ""


def checked(data: dict[str, Any], name: str) -> bool:
    return text(data, name) in ("1", "on", "true", "yes")


@dataclass(frozen=True, slots=True)
class UnitForm:
    name_vi: str
    name_en: str
    kind: str
    active: bool


def parse_unit(data: dict[str, Any]) -> UnitForm:
    return UnitForm(
        name_vi=text(data, "name_vi"),
        name_en=text(data, "name_en"),
        kind=text(data, "kind"),
        active=checked(data, "active"),
    )


@dataclass(frozen=True, slots=True)
class PointForm:
    code: str
    name_vi: str
    name_en: str
    active: bool


def parse_point(data: dict[str, Any]) -> PointForm:
    return PointForm(
        code=text(data, "code", limit=200),
        name_vi=text(data, "name_vi"),
        name_en=text(data, "name_en"),
        active=checked(data, "active"),
    )


@dataclass(frozen=True, slots=True)
class FieldForm:
    code: str
    name_vi: str
    name_en: str


def parse_field(data: dict[str, Any]) -> FieldForm:
    return FieldForm(code=text(data, "code", limit=200), name_vi=text(data, "name_vi"), name_en=text(data, "name_en"))
