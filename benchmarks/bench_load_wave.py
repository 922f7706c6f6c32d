"""How long it takes to load a wave of N responses into numpy, on SQLite (and PostgreSQL if reachable).

    .venv/bin/python benchmarks/bench_load_wave.py [--responses 1000000] [--postgres URL]

Builds a throwaway database with the real schema (migrations), fills one wave with N synthetic
responses of the SIPAS-style questionnaire (37 answer bytes each) by bulk insert, then times
``survey.results.arrays.load_wave`` (best of 3). Prints the figures; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, create_engine, insert, text
from sqlalchemy.orm import Session

from seed_data import QUESTIONNAIRE_DIR
from survey.db.audited import publish_questionnaire
from survey.db.engine import make_engine, migrate
from survey.db.models import Response, Unit, UnitLevel, Wave, pk
from survey.questionnaires.spec import load_file
from survey.results.arrays import load_wave


def fill(engine: Engine, n: int, units: int = 1000, batch: int = 50_000) -> tuple[int, int]:
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    rng = np.random.default_rng(1)
    with Session(engine) as s, s.begin():
        level = UnitLevel(code="bench", name_vi="Cấp", name_en="Level", depth=0)
        s.add(level)
        s.flush()
        rows = [
            Unit(code=f"U{i:05d}", name_vi=f"Đơn vị {i}", name_en=f"Unit {i}", level_id=pk(level)) for i in range(units)
        ]
        s.add_all(rows)
        version = publish_questionnaire(s, spec, actor="bench")
        wave = Wave(
            code="bench",
            name_vi="Đợt",
            name_en="Wave",
            questionnaire_version_id=pk(version),
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            status="open",
        )
        s.add(wave)
        s.flush()
        unit_ids = np.array([pk(u) for u in rows])
        wave_id, version_id = pk(wave), pk(version)
    width = len(spec.layout)
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    done = 0
    while done < n:
        m = min(batch, n - done)
        answers = rng.integers(1, 6, size=(m, width), dtype=np.uint8)
        who = rng.integers(0, units, size=m)
        with engine.begin() as conn:
            conn.execute(
                insert(Response),
                [
                    {
                        "wave_id": wave_id,
                        "unit_id": int(unit_ids[who[i]]),
                        "field_id": None,
                        "service_point_id": None,
                        "channel": 1,
                        "questionnaire_version_id": version_id,
                        "submitted_at": now,
                        "answers": answers[i].tobytes(),
                        "comment": None,
                        "flags": 0,
                        "submission_key": None,
                    }
                    for i in range(m)
                ],
            )
        done += m
    return wave_id, version_id


def bench(label: str, engine: Engine, n: int) -> None:
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    t0 = time.perf_counter()
    wave_id, version_id = fill(engine, n)
    filled = time.perf_counter() - t0
    times = []
    for _ in range(3):
        t = time.perf_counter()
        arrays = load_wave(engine, wave_id=wave_id, version_id=version_id, spec=spec)
        times.append(time.perf_counter() - t)
    assert arrays.n == n
    print(
        f"{label}: {n:,} responses x {arrays.answers.shape[1]} bytes; insert {filled:.1f} s; "
        f"load_wave best {min(times):.3f} s, median {sorted(times)[1]:.3f} s "
        f"({n / min(times) / 1e6:.2f} M responses/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SIPAS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        bench("SQLite", engine, args.responses)
        engine.dispose()
    try:
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS sipas_bench WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE sipas_bench"))
    except Exception as exc:
        print(f"PostgreSQL: skipped ({exc.__class__.__name__}: not reachable)")
        return
    from sqlalchemy.engine import make_url

    url = make_url(args.postgres).set(database="sipas_bench").render_as_string(hide_password=False)
    migrate(url)
    engine = make_engine(url)
    try:
        bench("PostgreSQL", engine, args.responses)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS sipas_bench WITH (FORCE)"))


if __name__ == "__main__":
    main()
