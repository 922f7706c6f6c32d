"""The demo province's unit tree and procedure fields, read from YAML and checked on load."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from seed_data import PROVINCE_DIR

KIND_PREFIX = {
    "ward": ("Phường", "Ward"),
    "township": ("Thị trấn", "Township"),
    "commune": ("Xã", "Commune"),
}


class ProvinceFileError(ValueError):
    """A province file that does not validate; the message names the file and the entry."""


@dataclass(frozen=True, slots=True)
class LevelSeed:
    code: str
    depth: int
    name_vi: str
    name_en: str


@dataclass(frozen=True, slots=True)
class FieldSeed:
    code: str
    name_vi: str
    name_en: str
    levels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class UnitSeed:
    code: str
    name_vi: str
    name_en: str
    level: str
    parent: str | None
    kind: str | None
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProvinceSeed:
    levels: tuple[LevelSeed, ...]
    fields: tuple[FieldSeed, ...]
    units: tuple[UnitSeed, ...]  # parents before children

    def by_level(self, level: str) -> list[UnitSeed]:
        return [u for u in self.units if u.level == level]


def _name(entry: dict[str, Any], where: str) -> tuple[str, str]:
    name = entry.get("name")
    if not isinstance(name, dict) or not name.get("vi") or not name.get("en"):
        raise ProvinceFileError(f"{where}: needs a name with 'vi' and 'en'")
    return str(name["vi"]), str(name["en"])


def load(path: Path = PROVINCE_DIR / "tay_ninh.yaml") -> ProvinceSeed:
    """Read the province file; commune fields are those of the commune level."""
    src = path.name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    levels = tuple(
        LevelSeed(lv["code"], int(lv["depth"]), *_name(lv, f"{src}: level {lv.get('code')}")) for lv in data["levels"]
    )
    level_codes = {lv.code for lv in levels}
    for needed in ("province", "department", "district", "commune"):
        if needed not in level_codes:
            raise ProvinceFileError(f"{src}: level '{needed}' is missing")
    fields = tuple(
        FieldSeed(f["code"], *_name(f, f"{src}: field {f.get('code')}"), tuple(f.get("levels", [])))
        for f in data["fields"]
    )
    field_codes = {f.code for f in fields}
    for f in fields:
        unknown = set(f.levels) - level_codes
        if unknown:
            raise ProvinceFileError(f"{src}: field '{f.code}': unknown level(s) {sorted(unknown)}")

    prov = data["province"]
    units: list[UnitSeed] = [UnitSeed(prov["code"], *_name(prov, f"{src}: province"), "province", None, None, ())]
    for d in data["departments"]:
        bad = set(d.get("fields", [])) - field_codes
        if bad:
            raise ProvinceFileError(f"{src}: department '{d.get('code')}': unknown field(s) {sorted(bad)}")
        units.append(
            UnitSeed(
                d["code"],
                *_name(d, f"{src}: department {d.get('code')}"),
                "department",
                prov["code"],
                "department",
                tuple(d["fields"]),
            )
        )
    district_fields = tuple(f.code for f in fields if "district" in f.levels)
    commune_fields = tuple(f.code for f in fields if "commune" in f.levels)
    for dist in data["districts"]:
        units.append(
            UnitSeed(
                dist["code"],
                *_name(dist, f"{src}: district {dist.get('code')}"),
                "district",
                prov["code"],
                "district",
                district_fields,
            )
        )
        for kind, names in dist["communes"].items():
            if kind not in KIND_PREFIX:
                raise ProvinceFileError(f"{src}: district '{dist['code']}': unknown kind '{kind}'")
            vi_prefix, en_prefix = KIND_PREFIX[kind]
            for i, nm in enumerate(names, start=1):
                code = f"{dist['code']}-{kind[0].upper()}{i:02d}"
                units.append(
                    UnitSeed(
                        code, f"{vi_prefix} {nm}", f"{en_prefix} {nm}", "commune", dist["code"], kind, commune_fields
                    )
                )
    codes = [u.code for u in units]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise ProvinceFileError(f"{src}: unit codes repeat: {', '.join(dupes)}")
    return ProvinceSeed(levels=levels, fields=fields, units=tuple(units))
