"""Loading a wave's responses into numpy arrays, for the scoring engine.

One query over compact columns, no ORM objects: the answer vectors are joined into one buffer and
viewed as a 2-D uint8 array. Arrays are per questionnaire version, since the layout is the version's.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine

from survey.questionnaires.spec import Spec


@dataclass(frozen=True, slots=True)
class WaveArrays:
    """A wave's responses to one questionnaire version, as columns.

    ``answers[i, j]`` is response i's byte in layout column j (see ``Spec.layout``); ``field_id`` is
    -1 where unknown (counter ratings).
    """

    wave_id: int
    version_id: int
    unit_id: np.ndarray  # int32
    field_id: np.ndarray  # int32
    channel: np.ndarray  # int8
    flags: np.ndarray  # int32
    answers: np.ndarray  # uint8, shape (n, width)

    @property
    def n(self) -> int:
        return int(self.unit_id.size)


_SELECT = (
    "SELECT unit_id, COALESCE(field_id, -1), channel, flags, answers "
    "FROM response WHERE {wave} = {p} AND questionnaire_version_id = {p}"
)
# On SQLite, "+wave_id" keeps the planner off the (wave_id, unit_id) index: reading a whole wave through it
# jumps around the table (2.4-3.1 s for 1,000,000 rows here) where a sequential scan takes about 1.1 s.
_SQL = {
    "sqlite": _SELECT.format(wave="+wave_id", p="?"),
    "postgresql": _SELECT.format(wave="wave_id", p="%s"),
}


def load_wave(engine: Engine, *, wave_id: int, version_id: int, spec: Spec) -> WaveArrays:
    """Read every response of ``wave_id`` answered on ``version_id`` into arrays."""
    width = len(spec.layout)
    # Millions of short-lived row tuples would trigger the cyclic garbage collector over and over
    # (it tripled the time here); none of them can form a cycle, so it is paused while they exist.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            assert dbapi is not None
            cursor = dbapi.cursor()  # the DBAPI cursor: SQLAlchemy Row objects would add a second per million
            try:
                cursor.execute(_SQL[conn.dialect.name], (wave_id, version_id))
                rows = cursor.fetchall()
            finally:
                cursor.close()
        n = len(rows)
        if n == 0:
            empty = np.zeros(0, dtype=np.int32)
            return WaveArrays(
                wave_id, version_id, empty, empty, np.zeros(0, np.int8), empty, np.zeros((0, width), np.uint8)
            )
        units, fields, channels, flags, blobs = zip(*rows, strict=True)
        del rows
        buffer = b"".join(blobs)  # psycopg returns bytes for bytea, as sqlite3 does for blobs
    finally:
        if gc_was_enabled:
            gc.enable()
    if len(buffer) != n * width:
        raise ValueError(
            f"wave {wave_id}: answer vectors do not all have the {width} bytes of version {version_id}'s layout"
        )
    return WaveArrays(
        wave_id=wave_id,
        version_id=version_id,
        unit_id=np.fromiter(units, dtype=np.int32, count=n),
        field_id=np.fromiter(fields, dtype=np.int32, count=n),
        channel=np.fromiter(channels, dtype=np.int8, count=n),
        flags=np.fromiter(flags, dtype=np.int32, count=n),
        answers=np.frombuffer(buffer, dtype=np.uint8).reshape(n, width),
    )
