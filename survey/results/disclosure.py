"""Statistical disclosure control for microdata: no exported group of respondents is smaller than k.

The **quasi-identifiers** are what an insider may know about a respondent and find in the file: the
unit that served them, the procedure field, the channel, and the profile answers exported (respondent
type, age band, sex). Time is never exported (the wave is the only period). A **cell** is a set of
records with the same exported values of every quasi-identifier; ``min_cell`` is k.

`protect` makes every exported cell hold at least k records by local recoding, as a statistics office
does (Hundepool et al., *Statistical Disclosure Control*, Wiley 2012, ch. 3: global and local recoding,
local suppression; sdcMicro's ``localSuppression``). A record climbs the ladder below only as far as its
cell needs:

====== ===================================================================================
level  what the record is exported with
====== ===================================================================================
0      as recorded
1      profile answers withheld
2      field and channel withheld too
3, 4.. unit replaced by its parent, grandparent...: the record is "from this unit or below it"
-1     suppressed (left out): still fewer than k at the root of the unit tree
====== ===================================================================================

Cells are counted after each step over every record still exported, so a coarsened record may join
records exported as recorded (a cell once large enough only grows). Climbing goes bottom-up: at each
step only the records at the deepest units climb, so a unit's own small group can be joined by its
children's before it climbs in turn.

**Sensitive items** (``sensitive: true`` in the questionnaire: harassment, informal payment) are never
exported with a unit for a group smaller than k: a record whose unit x field x channel, as recorded,
holds fewer than k records and that is still exported under its own unit makes the sensitive answers of
its whole exported cell blank (the whole cell, so that blanks do not single a row out). A record whose
unit was coarsened keeps them: it is no longer shown at unit level.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

SUPPRESSED = -1
AS_RECORDED = 0
PROFILE_WITHHELD = 1
FIELD_WITHHELD = 2  # field and channel; from 3 on, the unit is an ancestor too

FIELD_HIDDEN = -2  # field_id of a record whose field is withheld (-1 is "no field": counter ratings)
CHANNEL_HIDDEN = 0
PROFILE_HIDDEN = 256  # outside a stored answer byte's 0..255


@dataclass(frozen=True, slots=True)
class Protection:
    """What `protect` decided for each record (arrays aligned with its input)."""

    min_cell: int
    level: np.ndarray  # int8: see the module's ladder; -1 = suppressed
    unit_id: np.ndarray  # int64: the unit the record is exported under (its own or an ancestor); -1 if suppressed
    blank_sensitive: np.ndarray  # bool: its sensitive answers are exported blank

    @property
    def kept(self) -> np.ndarray:
        return self.level != SUPPRESSED


def level_counts(level: np.ndarray) -> dict[str, int]:
    """Records by what was done to them: ``as_recorded``, ``profile_withheld``, ``field_withheld`` (unit
    kept), ``unit_coarsened``, ``suppressed``."""
    return {
        "as_recorded": int((level == AS_RECORDED).sum()),
        "profile_withheld": int((level == PROFILE_WITHHELD).sum()),
        "field_withheld": int((level == FIELD_WITHHELD).sum()),
        "unit_coarsened": int((level > FIELD_WITHHELD).sum()),
        "suppressed": int((level == SUPPRESSED).sum()),
    }


def exported_columns(
    level: np.ndarray, unit_id: np.ndarray, *, field_id: np.ndarray, channel: np.ndarray, profile: np.ndarray
) -> list[np.ndarray]:
    """The quasi-identifiers as exported at ``level`` (withheld values as the ``*_HIDDEN`` codes), int64 each."""
    hide = level >= FIELD_WITHHELD
    withheld = level >= PROFILE_WITHHELD
    return [
        np.asarray(unit_id, dtype=np.int64),
        np.where(hide, FIELD_HIDDEN, field_id).astype(np.int64),
        np.where(hide, CHANNEL_HIDDEN, channel).astype(np.int64),
        *(np.where(withheld, PROFILE_HIDDEN, profile[:, j]).astype(np.int64) for j in range(profile.shape[1])),
    ]


def cell_ids(columns: Sequence[np.ndarray], keep: np.ndarray) -> np.ndarray:
    """For each record in ``keep``, a number shared by exactly the kept records with its values in every
    column (-1 outside ``keep``)."""
    ids = np.full(keep.size, -1, dtype=np.int64)
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        return ids
    key = np.zeros(rows.size, dtype=np.int64)
    span = 1  # key < span
    for column in columns:
        values, codes = np.unique(column[rows], return_inverse=True)
        if span * values.size >= 2**62:  # re-number the combined key before it could overflow
            _, key = np.unique(key, return_inverse=True)
            span = int(key.max()) + 1
        key = key * values.size + codes
        span *= values.size
    _, ids[rows] = np.unique(key, return_inverse=True)
    return ids


def cell_sizes(columns: Sequence[np.ndarray], keep: np.ndarray) -> np.ndarray:
    """For each record, how many records in ``keep`` share its values in every column (0 outside ``keep``)."""
    ids = cell_ids(columns, keep)
    sizes = np.zeros(keep.size, dtype=np.int64)
    if keep.any():
        counts = np.bincount(ids[keep])
        sizes[keep] = counts[ids[keep]]
    return sizes


def protect(
    *,
    unit_id: np.ndarray,
    field_id: np.ndarray,
    channel: np.ndarray,
    profile: np.ndarray,
    parents: Mapping[int, int | None],
    min_cell: int,
) -> Protection:
    """Coarsen, then suppress, until every exported cell holds at least ``min_cell`` records.

    Parameters
    ----------
    unit_id, field_id, channel : (n,) integer arrays
        Each record's unit, field (-1 where none) and channel (positive codes).
    profile : (n, p) integer array
        The exported profile answer columns (p may be 0).
    parents : mapping
        Every unit's parent (``None`` at a root); a unit missing from it counts as a root.
    min_cell : int
        k, at least 1 (1 changes nothing).

    Returns
    -------
    Protection
        Each record's level on the ladder, the unit it is exported under, and whether its sensitive
        answers are blank.
    """
    if min_cell < 1:
        raise ValueError(f"min_cell must be at least 1, not {min_cell}")
    n = int(unit_id.size)
    recorded = np.asarray(unit_id, dtype=np.int64)
    units = recorded.copy()
    level = np.zeros(n, dtype=np.int8)
    depth_of = _depths(parents)
    while n:
        alive = level != SUPPRESSED
        columns = exported_columns(level, units, field_id=field_id, channel=channel, profile=profile)
        pending = alive & (cell_sizes(columns, alive) < min_cell)
        if not pending.any():
            break
        early = pending & (level < FIELD_WITHHELD)
        if early.any():  # first withhold the profile, then the field and channel
            level[early] += 1
            continue
        # every pending record has its field withheld: those at the deepest units climb one level
        at = np.flatnonzero(pending)
        depth = np.fromiter((depth_of.get(int(u), 0) for u in units[at]), dtype=np.int64, count=at.size)
        climb = at[depth == depth.max()]
        up = np.fromiter((_parent(parents, int(u)) for u in units[climb]), dtype=np.int64, count=climb.size)
        units[climb] = up
        level[climb] = np.where(up >= 0, level[climb] + 1, SUPPRESSED)
    kept = level != SUPPRESSED
    # sensitive answers: blank in every exported cell holding a record shown under its own unit whose
    # unit x field x channel group, as recorded, is smaller than k
    everyone = np.ones(n, dtype=bool)
    small = cell_sizes([recorded, field_id, channel], everyone) < min_cell
    cells = cell_ids(exported_columns(level, units, field_id=field_id, channel=channel, profile=profile), kept)
    exposed = np.unique(cells[kept & small & (level <= FIELD_WITHHELD)])
    blank = kept & np.isin(cells, exposed)
    return Protection(min_cell=min_cell, level=level, unit_id=units, blank_sensitive=blank)


def _parent(parents: Mapping[int, int | None], unit: int) -> int:
    parent = parents.get(unit)
    return -1 if parent is None else parent


def _depths(parents: Mapping[int, int | None]) -> dict[int, int]:
    """Each unit's depth in the tree (0 at a root)."""
    depths: dict[int, int] = {}
    for start in parents:
        chain: list[int] = []
        u: int | None = start
        while u is not None and u not in depths:
            chain.append(u)
            if len(chain) > len(parents):
                raise ValueError(f"the unit tree has a cycle through unit {start}")
            u = parents.get(u)
        base = -1 if u is None else depths[u]
        for k, v in enumerate(reversed(chain), start=1):
            depths[v] = base + k
    return depths
