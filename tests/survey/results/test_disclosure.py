"""Disclosure control: hand-counted small datasets (pure, then stored on SQLite and PostgreSQL and exported),
and a property test that every exported combination of quasi-identifiers is shared by at least k rows."""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter, defaultdict
from datetime import UTC, date, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from survey.db.models import Channel, ProcedureField, Response, Unit, Wave, pk
from survey.questionnaires.spec import Spec
from survey.results.arrays import WaveArrays
from survey.results.disclosure import SUPPRESSED, Protection, cell_sizes, exported_columns, protect
from survey.results.exports import table_csv
from survey.results.microdata import Microdata, protected_microdata, wave_microdata
from tests.factories import World

# --- the ladder, by hand ---------------------------------------------------------------------------------

# P (1) is the root; D1 (2) and D2 (3) are below it; C1 (4) and C2 (5) below D1. Q (6) is another root.
TREE: dict[int, int | None] = {1: None, 2: 1, 3: 1, 4: 2, 5: 2, 6: None}
F1, F2, NO_FIELD = 11, 12, -1
RECEIPT, COUNTER = int(Channel.receipt), int(Channel.counter)


def _protect(rows: list[tuple[int, int, int, int]], k: int) -> Protection:
    """``rows`` are (unit, field, channel, age band); one profile column."""
    a = np.array(rows, dtype=np.int64)
    return protect(unit_id=a[:, 0], field_id=a[:, 1], channel=a[:, 2], profile=a[:, 3:4], parents=TREE, min_cell=k)


def test_each_record_climbs_only_as_far_as_its_group_needs() -> None:
    rows = [
        *[(4, F1, RECEIPT, 2)] * 3,  # C1, a group of 3: as recorded
        (4, F1, RECEIPT, 4),  # C1, alone with its age band: profile withheld, still alone, so field withheld
        *[(4, F2, RECEIPT, 2)] * 2,  # C1, two in F2: with the one above, 3 at "C1, field withheld"
        (5, F1, RECEIPT, 2),  # C2 alone: climbs to D1, then with D1's own row to P
        (2, F1, RECEIPT, 2),  # D1's own desk, alone: waits at D1 for C2, then both climb to P
        (3, F1, COUNTER, 3),  # D2 alone: climbs to P with them; 3 at "P, field withheld"
        (6, F1, RECEIPT, 1),  # Q alone at a root: left out
    ]
    p = _protect(rows, k=3)
    assert p.level.tolist() == [0, 0, 0, 2, 2, 2, 4, 3, 3, SUPPRESSED]
    assert p.unit_id.tolist() == [4, 4, 4, 4, 4, 4, 1, 1, 1, -1]
    # sensitive answers: blank in C1's coarsened cell, which holds the two rows of C1 x F2 (a group of 2 < 3,
    # still shown under C1); the cell at P keeps them: its rows are no longer shown under their own units
    assert p.blank_sensitive.tolist() == [False, False, False, True, True, True, False, False, False, False]
    # k = 1 changes nothing
    one = _protect(rows, k=1)
    assert one.level.tolist() == [0] * len(rows) and one.unit_id.tolist() == [r[0] for r in rows]
    assert not one.blank_sensitive.any()


def test_a_units_own_small_group_is_joined_by_its_childrens_before_it_climbs() -> None:
    rows = [(1, NO_FIELD, COUNTER, 0), (1, NO_FIELD, COUNTER, 0), (4, F1, RECEIPT, 1)]
    p = _protect(rows, k=3)
    # C1's row climbs to D1, then to P, where P's own two rows waited for it
    assert p.level.tolist() == [2, 2, 4] and p.unit_id.tolist() == [1, 1, 1]
    assert p.blank_sensitive.tolist() == [True, True, True]  # P's own group of 2 is still shown under P
    assert _protect(rows[:2], k=3).level.tolist() == [SUPPRESSED, SUPPRESSED]


def test_protect_refuses_k_below_one() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        _protect([(1, F1, RECEIPT, 0)], k=0)


# --- the property ------------------------------------------------------------------------------------------


@st.composite
def datasets(draw: st.DrawFn) -> tuple[dict[int, int | None], np.ndarray, int, int]:
    size = draw(st.integers(1, 9))
    parents: dict[int, int | None] = {1: None}
    for u in range(2, size + 1):
        parents[u] = draw(st.one_of(st.none(), st.integers(1, u - 1)))
    n = draw(st.integers(0, 60))
    width = draw(st.integers(0, 2))
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(1, size),
                st.sampled_from([NO_FIELD, F1, F2, 13]),
                st.sampled_from([RECEIPT, COUNTER]),
                *[st.integers(0, 3)] * width,
            ),
            min_size=n,
            max_size=n,
        )
    )
    data = np.array(rows, dtype=np.int64).reshape(n, 3 + width)
    return parents, data, width, draw(st.integers(1, 6))


def _ancestors(parents: dict[int, int | None], unit: int) -> list[int]:
    chain = [unit]
    while (up := parents[chain[-1]]) is not None:
        chain.append(up)
    return chain


@settings(max_examples=300, deadline=None)
@given(datasets())
def test_every_exported_combination_is_shared_by_k_rows_or_suppressed(
    case: tuple[dict[int, int | None], np.ndarray, int, int],
) -> None:
    parents, data, width, k = case
    unit, field, channel, profile = data[:, 0], data[:, 1], data[:, 2], data[:, 3 : 3 + width]
    p = protect(unit_id=unit, field_id=field, channel=channel, profile=profile, parents=parents, min_cell=k)
    kept = p.kept
    columns = exported_columns(p.level, p.unit_id, field_id=field, channel=channel, profile=profile)
    exported = Counter(tuple(int(c[i]) for c in columns) for i in np.flatnonzero(kept))
    assert all(count >= k for count in exported.values())
    recorded = cell_sizes([unit, field, channel, *profile.T], np.ones(unit.size, dtype=bool))
    small_unit_group = cell_sizes([unit, field, channel], np.ones(unit.size, dtype=bool)) < k
    blank_by_cell: dict[tuple[int, ...], set[bool]] = defaultdict(set)
    for i in range(unit.size):
        level = int(p.level[i])
        if level == SUPPRESSED:
            continue
        chain = _ancestors(parents, int(unit[i]))
        # exported under its own unit up to level 2, then under the ancestor (level - 2) steps up
        assert int(p.unit_id[i]) == chain[max(level - 2, 0)]
        assert level == 0 or recorded[i] < k  # coarsened only when its own group was too small
        if not p.blank_sensitive[i] and level <= 2:  # a sensitive answer shown with its own unit ...
            assert not small_unit_group[i]  # ... comes from a unit x field x channel group of at least k
        blank_by_cell[tuple(int(c[i]) for c in columns)].add(bool(p.blank_sensitive[i]))
    assert all(len(b) == 1 for b in blank_by_cell.values())  # blanks never single a row out of its cell
    if k == 1:
        assert (p.level == 0).all() and not p.blank_sensitive.any()


PROFILE = ("respondent_type", "age_band", "sex")


@settings(max_examples=60, deadline=None)
@given(datasets(), st.data())
def test_the_exported_csv_is_k_anonymous(
    sipas: Spec, case: tuple[dict[int, int | None], np.ndarray, int, int], data: st.DataObject
) -> None:
    """The same property read back from the microdata CSV itself, with the real questionnaire's profile."""
    parents, rows, _width, k = case
    n = rows.shape[0]
    layout = sipas.layout
    answers = np.zeros((n, len(layout)), dtype=np.uint8)
    for j, column in enumerate(layout):
        item = sipas.item_by_id[column.item]
        top = 1 if column.option is not None else len(sipas.options_of(item))
        answers[:, j] = data.draw(st.lists(st.integers(0, top), min_size=n, max_size=n), label=column.item)
    arrays = WaveArrays(
        wave_id=1,
        version_id=1,
        unit_id=rows[:, 0].astype(np.int32),
        field_id=rows[:, 1].astype(np.int32),
        channel=rows[:, 2].astype(np.int8),
        flags=np.zeros(n, dtype=np.int32),
        answers=answers,
    )
    units = {u: (f"U{u}", p) for u, p in parents.items()}
    md = protected_microdata(
        arrays, spec=sipas, wave_code="w", units=units, fields={F1: "f1", F2: "f2", 13: "f3"}, min_cell=k
    )
    table = _rows(md)
    qi = ("unit_code", "field_code", "channel", *PROFILE)
    cells = Counter(tuple(r[c] for c in qi) for r in table)
    assert all(count >= k for count in cells.values())
    assert len(table) + md.disclosure_counts()["suppressed"] == n
    blanks: dict[tuple[str, ...], set[bool]] = defaultdict(set)
    for r in table:
        blanks[tuple(r[c] for c in qi)].add(r["harassment"] == "" and r["informal_payment"] == "")
        assert (r["harassment"] == "") == (r["informal_payment"] == "")
    assert all(len(b) == 1 for b in blanks.values())


@pytest.fixture(scope="module")
def sipas() -> Spec:
    from seed_data import QUESTIONNAIRE_DIR
    from survey.questionnaires.spec import load_file

    return load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")


def _rows(md: Microdata) -> list[dict[str, str]]:
    data = md.to_csv()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


# --- stored and exported, on both backends --------------------------------------------------------------------

CITIZEN, ORGANISATION = 1, 2
A18, A30, A60 = 1, 2, 4
MALE, FEMALE = 1, 2
NONE, SOME, MANY = 1, 2, 3  # harassment
NO, YES = 1, 2  # informal payment


def _answers(spec: Spec, profile: tuple[int, int, int], harassment: int, payment: int) -> bytes:
    vector = bytearray(len(spec.layout))
    for item in spec.items:
        if item.type == "scale":
            vector[spec.column_index[(item.id, None)]] = 4
    for name, value in zip(PROFILE, profile, strict=True):
        vector[spec.column_index[(name, None)]] = value
    vector[spec.column_index[("harassment", None)]] = harassment
    vector[spec.column_index[("informal_payment", None)]] = payment
    return bytes(vector)


def _small_wave(engine: Engine, world: World) -> tuple[str, dict[str, str]]:
    """Nine hand-placed responses in a fresh wave; returns its code and the unit codes by role."""
    spec = world.sipas
    code = f"sdc{secrets.token_hex(4)}"
    with Session(engine) as s, s.begin():
        commune = s.get(Unit, world.unit_id)
        other = s.get(Unit, world.other_unit_id)
        assert commune is not None and other is not None and commune.parent_id is not None
        root = s.get(Unit, commune.parent_id)
        assert root is not None
        field2 = ProcedureField(code=f"f{secrets.token_hex(4)}", name_vi="Đất đai", name_en="Land")
        wave = Wave(
            code=code,
            name_vi="Nhỏ",
            name_en="Small",
            questionnaire_version_id=world.sipas_version_id,
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 3, 31),
            status="closed",
            channels="receipt,counter",
        )
        s.add_all([field2, wave])
        s.flush()
        f1, f2 = world.field_id, pk(field2)
        people = [
            *[(commune, f1, RECEIPT, (CITIZEN, A30, FEMALE), NONE, NO)] * 3,
            (commune, f1, RECEIPT, (CITIZEN, A60, MALE), MANY, YES),  # the one response of its kind
            *[(commune, f2, RECEIPT, (ORGANISATION, A18, MALE), NONE, NO)] * 2,
            (other, f1, RECEIPT, (CITIZEN, A30, FEMALE), SOME, YES),
            *[(root, None, COUNTER, (0, 0, 0), NONE, NO)] * 2,
        ]
        s.execute(
            insert(Response),
            [
                {
                    "wave_id": pk(wave),
                    "unit_id": pk(unit),
                    "field_id": fld,
                    "channel": channel,
                    "questionnaire_version_id": world.sipas_version_id,
                    "submitted_at": datetime(2026, 2, 2, 9, 0, tzinfo=UTC),
                    "answers": _answers(spec, profile, harassment, payment),
                    "flags": 0,
                }
                for unit, fld, channel, profile, harassment, payment in people
            ],
        )
        names = {"commune": commune.code, "other": other.code, "root": root.code}
        names["field"] = s.scalars(select(col(ProcedureField.code)).where(col(ProcedureField.id) == f1)).one()
    return code, names


@pytest.fixture(scope="module")
def small_wave(engine: Engine, world: World) -> tuple[str, dict[str, str]]:
    return _small_wave(engine, world)


def _shown(rows: list[dict[str, str]]) -> Counter[tuple[str, str, str, str, str, str]]:
    return Counter(
        (r["unit_code"], r["field_code"], r["channel"], r["age_band"], r["sex"], r["harassment"]) for r in rows
    )


def test_k3_coarsens_the_lone_respondent_and_blanks_its_harassment_answer(
    engine: Engine, small_wave: tuple[str, dict[str, str]]
) -> None:
    code, u = small_wave
    md = wave_microdata(engine, wave_code=code, min_cell=3)
    rows = _rows(md)
    c, o, p, f = u["commune"], u["other"], u["root"], u["field"]
    assert _shown(rows) == Counter(
        {
            (c, f, "receipt", str(A30), str(FEMALE), str(NONE)): 3,  # a group of 3: as recorded
            # the lone 60+ man and the two organisations in the second field: 3 at the commune, field,
            # channel and profile withheld, harassment blank (a unit x field group of 2 is still shown there)
            (c, "*", "*", "", "", ""): 3,
            # the other commune's one respondent joins the root's own two counter ratings: 3, unit coarsened
            # for one of them, and the root's own pair is a group of 2 shown under the root: blank
            (p, "*", "*", "", "", ""): 3,
        }
    )
    assert not any(r["unit_code"] == o for r in rows)
    assert all(r["informal_payment"] == "" for r in rows if r["field_code"] == "*")
    assert {r["overall"] for r in rows} == {"4"}  # the other answers stay
    assert md.disclosure_counts() == {
        "as_recorded": 3,
        "profile_withheld": 0,
        "field_withheld": 5,
        "unit_coarsened": 1,
        "suppressed": 0,
        "sensitive_blanked": 6,
        "outside": 0,
    }
    header = dict(md.codebook("en").header)
    assert header["Minimum group size (k)"] == "3" and header["Rows"] == "9"
    assert header["Rows as recorded"] == "3" and header["Rows with field and channel withheld too"] == "5"
    assert header["Rows under a higher unit"] == "1" and header["Rows left out (suppressed)"] == "0"
    assert header["Sensitive answers blanked"].startswith("harassment, informal_payment: blank in 6 rows")
    assert "at least 3 rows" in header["Small groups"]
    codes = {str(r[0]): str(r[3]) for r in md.codebook("en").rows}
    assert "empty = withheld" in codes["harassment"] and "empty = withheld" in codes["sex"]
    assert "sensitive" in {str(r[0]): str(r[2]) for r in md.codebook("en").rows}["harassment"]
    # the codebook as a file says the same
    assert b"Rows left out (suppressed),0" in table_csv(md.codebook("en"))


def test_a_commune_officer_gets_whole_cells_and_is_told_what_went_above(
    engine: Engine, small_wave: tuple[str, dict[str, str]]
) -> None:
    code, u = small_wave
    md = wave_microdata(engine, wave_code=code, min_cell=3)
    mine = md.within({u["commune"]})
    assert mine.n == 6 and set(mine.unit_codes.tolist()) == {u["commune"]}
    assert mine.disclosure_counts()["outside"] == 0
    theirs = md.within({u["other"]})
    assert theirs.n == 0 and theirs.disclosure_counts()["outside"] == 1
    assert "1: rows of your units" in dict(theirs.codebook("en").header)["Rows under a unit above your scope"]


def test_k4_and_k6_by_hand_down_to_suppression(engine: Engine, small_wave: tuple[str, dict[str, str]]) -> None:
    code, u = small_wave
    c, p, f = u["commune"], u["root"], u["field"]
    four = wave_microdata(engine, wave_code=code, min_cell=4)
    assert _shown(_rows(four)) == Counter(
        {
            (c, f, "receipt", "", "", str(NONE)): 3,  # 4 in the commune and field once the profile is withheld
            (c, f, "receipt", "", "", str(MANY)): 1,  # the same cell: its harassment answer stays (group of 4)
            (p, "*", "*", "", "", ""): 5,  # the organisations and the other commune climb to the root's pair
        }
    )
    assert four.disclosure_counts()["suppressed"] == 0 and four.disclosure_counts()["unit_coarsened"] == 3
    six = wave_microdata(engine, wave_code=code, min_cell=6)
    assert _shown(_rows(six)) == Counter({(c, "*", "*", "", "", ""): 6})
    counts = six.disclosure_counts()
    assert counts["suppressed"] == 3 and counts["field_withheld"] == 6 and counts["sensitive_blanked"] == 6
    assert dict(six.codebook("en").header)["Rows left out (suppressed)"] == "3"


def test_k1_is_the_raw_data(engine: Engine, small_wave: tuple[str, dict[str, str]]) -> None:
    code, u = small_wave
    rows = _rows(wave_microdata(engine, wave_code=code, min_cell=1))
    assert len(rows) == 9 and Counter(r["unit_code"] for r in rows)[u["other"]] == 1
    assert Counter(r["harassment"] for r in rows) == Counter({str(NONE): 7, str(MANY): 1, str(SOME): 1})


def test_the_demo_provinces_file_at_the_default_k(demo_db: tuple[Engine, object, str]) -> None:
    engine = demo_db[0]
    md = wave_microdata(engine, wave_code="2026")
    assert md.min_cell == 5
    rows = _rows(md)
    qi = ("unit_code", "field_code", "channel", *PROFILE)
    assert min(Counter(tuple(r[c] for c in qi) for r in rows).values()) >= 5
    counts = md.disclosure_counts()
    assert (
        len(rows)
        == md.n
        == sum(v for k, v in counts.items() if k not in ("suppressed", "sensitive_blanked", "outside"))
    )
    raw = wave_microdata(engine, wave_code="2026", min_cell=1)
    assert md.n + counts["suppressed"] == raw.n
    assert counts["as_recorded"] < raw.n  # a province of 3,000 responses has small groups: something was done
