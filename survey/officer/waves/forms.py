"""Form input of the wave pages: a new wave and the parameters of a sampling plan."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from survey.i18n import N_
from survey.officer.forms import FormError

METHODS = ("proportional", "equal")


def _values(data: dict[str, Any], name: str) -> list[str]:
    value = data.get(name)
    items = value if isinstance(value, list) else [value]
    return [v.strip()[:100] for v in items if isinstance(v, str) and v.strip()]


def _text(data: dict[str, Any], name: str, *, limit: int = 400) -> str:
    values = _values(data, name)
    return values[0][:limit] if values else ""


def _int(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _number(raw: str) -> float | None:
    try:
        value = float(raw.replace(",", "."))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _date(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class WaveForm:
    code: str
    name_vi: str
    name_en: str
    starts_on: date | None
    ends_on: date | None
    version_id: int | None
    unit_ids: tuple[int, ...]
    under_id: int | None
    level_id: int | None
    channels: tuple[str, ...]
    min_responses: int
    target: float
    raw: dict[str, Any] = field(default_factory=dict)
    errors: tuple[FormError, ...] = ()


def parse_wave(data: dict[str, Any]) -> WaveForm:
    raw: dict[str, Any] = {
        k: _text(data, k)
        for k in ("code", "name_vi", "name_en", "starts_on", "ends_on", "version_id", "under_id", "level_id")
    }
    raw["min_responses"] = _text(data, "min_responses") or "30"
    raw["target"] = _text(data, "target") or "90"
    raw["units"] = [u for u in (_int(v) for v in _values(data, "units")) if u is not None]
    raw["channels"] = [c for c in _values(data, "channels") if c in ("receipt", "counter")]
    errors: list[FormError] = []
    if not raw["code"]:
        errors.append(FormError("code", N_("Enter a code.")))
    if not raw["name_vi"]:
        errors.append(FormError("name_vi", N_("Enter the name in Vietnamese.")))
    starts, ends = _date(raw["starts_on"]), _date(raw["ends_on"])
    if starts is None:
        errors.append(FormError("starts_on", N_("Enter the first day as a date, for example 2026-07-01.")))
    if ends is None:
        errors.append(FormError("ends_on", N_("Enter the last day as a date, for example 2026-09-30.")))
    if starts and ends and ends < starts:
        errors.append(FormError("ends_on", N_("The last day cannot come before the first day.")))
    version = _int(raw["version_id"])
    if version is None:
        errors.append(FormError("version_id", N_("Choose a published questionnaire version.")))
    if not raw["channels"]:
        errors.append(FormError("channel-receipt", N_("Choose at least one channel.")))
    minimum = _int(raw["min_responses"])
    if minimum is None or not 1 <= minimum <= 100_000:
        errors.append(FormError("min_responses", N_("Enter a whole number between 1 and 100000.")))
    target = _number(raw["target"])
    if target is None or not 0 < target <= 100:
        errors.append(FormError("target", N_("Enter a percentage above 0 and at most 100.")))
    return WaveForm(
        code=raw["code"],
        name_vi=raw["name_vi"],
        name_en=raw["name_en"],
        starts_on=starts,
        ends_on=ends,
        version_id=version,
        unit_ids=tuple(raw["units"]),
        under_id=_int(raw["under_id"]),
        level_id=_int(raw["level_id"]),
        channels=tuple(raw["channels"]),
        min_responses=minimum or 30,
        target=target or 90.0,
        raw=raw,
        errors=tuple(errors),
    )


@dataclass(frozen=True)
class PlanForm:
    margin: float = 0.05
    response_rate: float = 0.6
    deff: float = 1.0
    method: str = "proportional"
    frame_from: date | None = None
    frame_to: date | None = None
    raw: dict[str, str] = field(default_factory=dict)

    @property
    def query(self) -> dict[str, str]:
        return self.raw


def default_plan_raw() -> dict[str, str]:
    return {
        "margin": "5",
        "response_rate": "60",
        "deff": "1",
        "method": "proportional",
        "frame_from": "",
        "frame_to": "",
    }


def parse_plan(data: dict[str, Any]) -> tuple[PlanForm, list[FormError]]:
    raw = {k: _text(data, k) or v for k, v in default_plan_raw().items()}
    errors: list[FormError] = []
    margin = _number(raw["margin"])
    if margin is None or not 0.5 <= margin <= 20:
        errors.append(FormError("margin", N_("Enter a margin of error between 0.5 and 20 percentage points.")))
    rate = _number(raw["response_rate"])
    if rate is None or not 1 <= rate <= 100:
        errors.append(FormError("response_rate", N_("Enter an expected response rate between 1 and 100 percent.")))
    deff = _number(raw["deff"])
    if deff is None or not 1 <= deff <= 10:
        errors.append(FormError("deff", N_("Enter a design effect between 1 and 10.")))
    if raw["method"] not in METHODS:
        errors.append(FormError("method-proportional", N_("Choose how the sample is shared among fields.")))
    frame_from = _date(raw["frame_from"]) if raw["frame_from"] else None
    frame_to = _date(raw["frame_to"]) if raw["frame_to"] else None
    if raw["frame_from"] and frame_from is None:
        errors.append(FormError("frame_from", N_("Enter the first day as a date, for example 2026-07-01.")))
    if raw["frame_to"] and frame_to is None:
        errors.append(FormError("frame_to", N_("Enter the last day as a date, for example 2026-09-30.")))
    if frame_from and frame_to and frame_to < frame_from:
        errors.append(FormError("frame_to", N_("The last day cannot come before the first day.")))
    form = PlanForm(
        margin=(margin or 5) / 100,
        response_rate=(rate or 60) / 100,
        deff=deff or 1.0,
        method=raw["method"] if raw["method"] in METHODS else "proportional",
        frame_from=frame_from,
        frame_to=frame_to,
        raw=raw,
    )
    return form, errors
