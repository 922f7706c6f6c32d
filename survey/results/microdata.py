"""Microdata: a wave's responses, one row each, anonymised and protected by disclosure control.

A row has no response id, no submission time, no counter and no free-text comment. Every exported
combination of unit, field, channel and profile answers is shared by at least k rows (k is
``SIPAS_DISCLOSURE_MIN_CELL``): smaller groups are coarsened or left out, and sensitive answers are
never shown with a unit for a group smaller than k (`survey.results.disclosure`). Rows are sorted by
what they export, so their order tells nothing about when they came in or what was coarsened. The
codebook names every column and code and says what disclosure control did.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.csvsafe import BOM, csv_writer
from survey.db.models import Channel, ProcedureField, QuestionnaireVersion, Unit, Wave
from survey.errors import NotFoundError
from survey.i18n import gettext_for
from survey.leader.labels import Gettext
from survey.questionnaires.spec import Spec, spec_of
from survey.results.arrays import WaveArrays, load_wave
from survey.results.disclosure import FIELD_WITHHELD, PROFILE_WITHHELD, level_counts, protect
from survey.results.exports import Column, Table, Value, ascii_name

FIXED_COLUMNS = ("wave", "unit_code", "field_code", "channel", "questionnaire", "flags")
WITHHELD = "*"  # a field or channel withheld by disclosure control
BLANK = -1  # an answer withheld by disclosure control (an empty cell)
DEFAULT_MIN_CELL = 5


@dataclass(frozen=True, eq=False)
class Microdata:
    """A wave's exported rows, already protected and sorted; answer columns are named by item id.

    Multi-select items have one 0/1 column per option, named ``<item>__<option>``. ``answers`` holds the
    stored codes, with -1 where disclosure control withheld one.
    """

    wave_code: str
    questionnaire: str
    spec: Spec
    answer_columns: tuple[str, ...]
    layout_positions: tuple[int, ...]  # the stored answer-vector column of each answer column
    include_profile: bool
    min_cell: int
    unit_codes: np.ndarray  # object (n,): the unit each row is exported under
    field_codes: np.ndarray  # object (n,): a code, "" for none, "*" withheld
    channels: np.ndarray  # object (n,): a channel name or "*"
    flags: np.ndarray  # int (n,)
    answers: np.ndarray  # int16 (n, len(answer_columns)); -1 = withheld
    level: np.ndarray  # int8 (n,): each row's step on the disclosure-control ladder
    blank_sensitive: np.ndarray  # bool (n,): its sensitive answers are blank
    origin_codes: np.ndarray  # object (n,): the unit each row was recorded at; never exported (see `within`)
    suppressed_codes: np.ndarray  # object (m,): the unit of each record left out
    sensitive_items: tuple[str, ...]  # sensitive items with a column here
    outside: int = 0  # rows of the viewer's units exported under a unit above their scope
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def columns(self) -> tuple[str, ...]:
        return FIXED_COLUMNS + self.answer_columns

    @property
    def n(self) -> int:
        return int(self.level.size)

    def within(self, unit_codes: Collection[str]) -> Microdata:
        """Only the rows exported under one of ``unit_codes`` (a viewer's subtree).

        Whole cells stay together, since every cell has one exported unit: the file is still protected.
        Rows of these units that climbed to a unit outside them are counted in ``outside``.
        """
        codes = set(unit_codes)
        keep = np.fromiter((c in codes for c in self.unit_codes.tolist()), dtype=bool, count=self.n)
        mine = np.fromiter((c in codes for c in self.origin_codes.tolist()), dtype=bool, count=self.n)
        gone = np.fromiter((c in codes for c in self.suppressed_codes.tolist()), dtype=bool)
        return replace(
            self,
            unit_codes=self.unit_codes[keep],
            field_codes=self.field_codes[keep],
            channels=self.channels[keep],
            flags=self.flags[keep],
            answers=self.answers[keep],
            level=self.level[keep],
            blank_sensitive=self.blank_sensitive[keep],
            origin_codes=self.origin_codes[keep],
            suppressed_codes=self.suppressed_codes[gone],
            outside=self.outside + int((mine & ~keep).sum()),
        )

    def disclosure_counts(self) -> dict[str, int]:
        """Rows by what disclosure control did to them, suppressed records and blanked sensitive answers."""
        counts = level_counts(self.level)
        counts["suppressed"] = int(self.suppressed_codes.size)
        counts["sensitive_blanked"] = int(self.blank_sensitive.sum()) if self.sensitive_items else 0
        counts["outside"] = self.outside
        return counts

    def csv_chunks(self, rows: int = 20_000) -> Iterator[bytes]:
        """The CSV in pieces (UTF-8 with BOM; the header line first), for a streamed download."""
        buf = io.StringIO()
        writer = csv_writer(buf)
        writer.writerow(self.columns)
        yield (BOM + buf.getvalue()).encode("utf-8")
        wave, questionnaire = self.wave_code, self.questionnaire
        for start in range(0, self.n, rows):
            buf.seek(0)
            buf.truncate()
            end = min(start + rows, self.n)
            block = self.answers[start:end]
            answers = block.astype(object)
            answers[block < 0] = None
            columns = zip(
                self.unit_codes[start:end].tolist(),
                self.field_codes[start:end].tolist(),
                self.channels[start:end].tolist(),
                self.flags[start:end].tolist(),
                answers.tolist(),
                strict=True,
            )
            for unit, field_code, channel, flags, answer in columns:
                writer.writerow([wave, unit, field_code, channel, questionnaire, flags, *answer])
            yield buf.getvalue().encode("utf-8")

    def to_csv(self) -> bytes:
        return b"".join(self.csv_chunks())

    def codebook(self, locale: str = "vi", *, timezone: str = "Asia/Ho_Chi_Minh") -> Table:
        """What every column and code means, what was left out, and what disclosure control did."""
        _ = gettext_for(locale)
        spec = self.spec
        rows: list[tuple[Value, ...]] = [
            ("wave", _("Wave code"), "", ""),
            (
                "unit_code",
                _("Code of the unit that served the respondent; where field_code is *, this unit or one below it"),
                "",
                "",
            ),
            (
                "field_code",
                _("Procedure field (empty for counter ratings; * = withheld to protect a small group)"),
                "",
                "",
            ),
            (
                "channel",
                _("How the response came in (* = withheld to protect a small group)"),
                "",
                "; ".join(c.name for c in Channel),
            ),
            ("questionnaire", _("Questionnaire code and version answered"), "", ""),
            ("flags", _("Integrity flags"), "", _("0 = none; any other value = flagged for review (a bit set)")),
        ]
        na = _("not applicable")
        unanswered = _("not answered")
        withheld = _("empty = withheld to protect a small group")
        for name, position in zip(self.answer_columns, self.layout_positions, strict=True):
            column = spec.layout[position]
            item = spec.item_by_id[column.item]
            if column.option is not None:
                option = next(o for o in spec.options_of(item) if o.value == column.option)
                question = f"{item.text.get(locale)}: {option.label.get(locale)}"
                codes = [_("1 = chosen; 0 = not chosen")]
                kind = _("multiple choice, one column per option")
            else:
                question = item.text.get(locale)
                options = [f"{k} = {o.label.get(locale)}" for k, o in enumerate(spec.options_of(item), start=1)]
                codes = [f"0 = {unanswered}", *options, f"255 = {na}"]
                kind = _("rating scale") if item.type == "scale" else _("single choice")
            if item.role == "profile" or item.sensitive:
                codes.append(withheld)
            if item.sensitive:
                kind += "; " + _("sensitive")
            rows.append((name, question, kind, "; ".join(codes)))
        header = [
            (_("Wave"), self.wave_code),
            (_("Questionnaire"), self.questionnaire),
            (_("Rows"), str(self.n)),
            (_("Generated at"), self.generated_at.astimezone(ZoneInfo(timezone)).isoformat(timespec="seconds")),
            (_("File"), _("CSV, UTF-8 with a byte-order mark, comma-separated, one row per response.")),
            (
                _("Left out"),
                _(
                    "No response id, no submission time (the wave gives the period), no counter and no free-text "
                    "comment: comments can identify people, so they are never exported."
                ),
            ),
            (
                _("Order"),
                _("Rows are sorted by what they show (unit, field, channel, answers), not in the order they came in."),
            ),
            *self._disclosure_header(_),
            (
                _("Weights"),
                _(
                    "None in this file. The published indices weight each response by transactions over "
                    "responses in its stratum (unit and field) where the frame covers every stratum."
                ),
            ),
        ]
        return Table(
            title=_("Codebook"),
            sheet=_("Codebook")[:31],
            filename=ascii_name("codebook", self.wave_code),
            header=tuple(header),
            columns=(
                Column("column", _("Column")),
                Column("meaning", _("Meaning")),
                Column("kind", _("Kind")),
                Column("codes", _("Codes")),
            ),
            rows=tuple(rows),
        )

    def _disclosure_header(self, _: Gettext) -> list[tuple[str, str]]:
        c = self.disclosure_counts()
        k = self.min_cell
        if self.include_profile:
            identifiers = _("unit, field, channel and profile answers")
            profile = ""
        else:
            identifiers = _("unit, field and channel")
            profile = " " + _("Profile questions (respondent type, age, sex) are left out.")
        lines = [
            (
                _("Small groups"),
                _(
                    "Every combination of {identifiers} in this file is shared by at least {k} rows. Smaller "
                    "groups had their profile answers withheld, then their field and channel, then their unit "
                    "replaced by the unit above; what was still smaller was left out.",
                    identifiers=identifiers,
                    k=k,
                )
                + profile,
            ),
            (_("Minimum group size (k)"), str(k)),
            (_("Rows as recorded"), str(c["as_recorded"])),
            (_("Rows with profile answers withheld"), str(c["profile_withheld"])),
            (_("Rows with field and channel withheld too"), str(c["field_withheld"])),
            (_("Rows under a higher unit"), str(c["unit_coarsened"])),
            (_("Rows left out (suppressed)"), str(c["suppressed"])),
        ]
        if self.sensitive_items:
            lines.append(
                (
                    _("Sensitive answers blanked"),
                    _(
                        "{items}: blank in {count} rows, so that they are never shown with a unit for a group "
                        "(unit, field and channel) of fewer than {k} responses",
                        items=", ".join(self.sensitive_items),
                        count=c["sensitive_blanked"],
                        k=k,
                    ),
                )
            )
        if c["outside"]:
            lines.append(
                (
                    _("Rows under a unit above your scope"),
                    _(
                        "{count}: rows of your units that had to be placed under a unit above your scope; they are "
                        "in the file of whoever sees that unit, not in this one",
                        count=c["outside"],
                    ),
                )
            )
        return lines


def wave_microdata(
    engine: Engine, *, wave_code: str, include_profile: bool = True, min_cell: int = DEFAULT_MIN_CELL
) -> Microdata:
    """Every response of a wave (to its questionnaire version), anonymised and protected, with its codebook.

    ``min_cell`` is k of the disclosure control (1 turns it off: for tests of the raw rows only).
    ``include_profile=False`` leaves out the optional profile questions (respondent type, age band, sex),
    which are then no quasi-identifiers either, so fewer rows need coarsening.
    """
    with Session(engine) as session:
        wave = session.scalars(select(Wave).where(col(Wave.code) == wave_code)).first()
        if wave is None or wave.id is None:
            raise NotFoundError(f"No wave with code '{wave_code}'.")
        version = session.get(QuestionnaireVersion, wave.questionnaire_version_id)
        assert version is not None and version.id is not None
        spec = spec_of(version)
        tree = session.execute(select(col(Unit.id), col(Unit.code), col(Unit.parent_id))).all()
        fields = {
            int(i or 0): str(c) for i, c in session.execute(select(col(ProcedureField.id), col(ProcedureField.code)))
        }
        wave_id, version_id = wave.id, version.id
    arrays = load_wave(engine, wave_id=wave_id, version_id=version_id, spec=spec)
    return protected_microdata(
        arrays,
        spec=spec,
        wave_code=wave_code,
        units={int(i or 0): (str(code), None if p is None else int(p)) for i, code, p in tree},
        fields=fields,
        include_profile=include_profile,
        min_cell=min_cell,
    )


def protected_microdata(
    arrays: WaveArrays,
    *,
    spec: Spec,
    wave_code: str,
    units: Mapping[int, tuple[str, int | None]],
    fields: Mapping[int, str],
    include_profile: bool = True,
    min_cell: int = DEFAULT_MIN_CELL,
) -> Microdata:
    """The microdata of loaded ``arrays``: ``units`` maps unit ids to (code, parent id), ``fields`` ids to codes."""
    codes = {u: code for u, (code, _parent) in units.items()}
    parents = {u: parent for u, (_code, parent) in units.items()}
    names: list[str] = []
    positions: list[int] = []
    for position, column in enumerate(spec.layout):
        if not include_profile and spec.item_by_id[column.item].role == "profile":
            continue
        names.append(column.item if column.option is None else f"{column.item}__{column.option}")
        positions.append(position)
    item_of = [spec.item_by_id[spec.layout[p].item] for p in positions]
    profile_at = [j for j, item in enumerate(item_of) if item.role == "profile"]
    sensitive_at = [j for j, item in enumerate(item_of) if item.sensitive]
    protection = protect(
        unit_id=arrays.unit_id,
        field_id=arrays.field_id,
        channel=arrays.channel,
        profile=arrays.answers[:, [positions[j] for j in profile_at]],
        parents=parents,
        min_cell=min_cell,
    )
    kept = protection.kept
    level = protection.level[kept]
    answers = arrays.answers[kept][:, positions].astype(np.int16)
    answers[np.ix_(np.flatnonzero(level >= PROFILE_WITHHELD), np.array(profile_at, dtype=np.intp))] = BLANK
    blank_sensitive = protection.blank_sensitive[kept]
    answers[np.ix_(np.flatnonzero(blank_sensitive), np.array(sensitive_at, dtype=np.intp))] = BLANK
    hidden = (level >= FIELD_WITHHELD).tolist()
    channel_names = {int(c): c.name for c in Channel}
    unit_codes = _codes(protection.unit_id[kept], codes)
    field_ids, channel_ids = arrays.field_id[kept].tolist(), arrays.channel[kept].tolist()
    field_codes = np.array(
        [WITHHELD if h else ("" if f < 0 else fields.get(f, str(f))) for f, h in zip(field_ids, hidden, strict=True)],
        dtype=object,
    )
    channels = np.array(
        [WITHHELD if h else channel_names.get(c, str(c)) for c, h in zip(channel_ids, hidden, strict=True)],
        dtype=object,
    )
    flags = arrays.flags[kept]
    # sorted by what is exported, every column: the order tells nothing about arrival or coarsening
    keys = [answers[:, j] for j in reversed(range(answers.shape[1]))]
    keys += [flags, _ranks(channels), _ranks(field_codes), _ranks(unit_codes)]
    order = np.lexsort(keys) if level.size else np.zeros(0, dtype=np.int64)
    sensitive_items = tuple(dict.fromkeys(item_of[j].id for j in sensitive_at))
    return Microdata(
        wave_code=wave_code,
        questionnaire=f"{spec.code} v{spec.version}",
        spec=spec,
        answer_columns=tuple(names),
        layout_positions=tuple(positions),
        include_profile=include_profile,
        min_cell=min_cell,
        unit_codes=unit_codes[order],
        field_codes=field_codes[order],
        channels=channels[order],
        flags=flags[order],
        answers=answers[order],
        level=level[order],
        blank_sensitive=blank_sensitive[order],
        origin_codes=_codes(arrays.unit_id[kept], codes)[order],
        suppressed_codes=_codes(arrays.unit_id[~kept], codes),
        sensitive_items=sensitive_items,
    )


def _codes(unit_ids: np.ndarray, units: Mapping[int, str]) -> np.ndarray:
    return np.array([units.get(u, str(u)) for u in unit_ids.tolist()], dtype=object)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Integer codes that sort like the strings."""
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, codes = np.unique(values.astype(str), return_inverse=True)
    return np.asarray(codes)
