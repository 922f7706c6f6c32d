"""How fast the league table page is served from cached scores: 1,000 units, 1,000,000 responses, SQLite.

    .venv/bin/python -m benchmarks.bench_league_page [--responses 1000000] [--units 1000] [--requests 30]

Builds a throwaway SQLite database with the real schema (a province with 1,000 communes, one wave of
the SIPAS-style questionnaire, N synthetic responses by bulk insert), signs an admin in through the
real app (Litestar test client, the whole middleware stack), then times:
- the first league page (computes the scores: load the wave, scorecard, bootstrap rank sets, charts);
- the league page again and again (served from the board's stored scores): median and 95th percentile;
- the page right after new responses arrive (still the stored scores: no recomputation on the request);
- the background refresher's round that recomputes them.
Prints the figures; nothing is asserted. docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR
from survey.auth.services import create_user
from survey.db.audited import publish_questionnaire
from survey.db.engine import make_engine, migrate
from survey.db.models import Response, Unit, UnitLevel, Wave, WaveUnit, pk
from survey.leader.board import board_of
from survey.questionnaires.spec import load_file
from tests.conftest import STAFF_PASSWORD, make_settings, sign_in, staff_client

WAVE = "bench"


def fill(engine: Engine, n: int, units: int, batch: int = 50_000) -> int:
    """A province with ``units`` communes and one wave of ``n`` responses; returns the admin's user id."""
    spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
    rng = np.random.default_rng(1)
    with Session(engine) as s, s.begin():
        province = UnitLevel(code="province", name_vi="Tỉnh", name_en="Province", depth=0)
        commune = UnitLevel(code="commune", name_vi="Xã", name_en="Commune", depth=1)
        s.add_all([province, commune])
        s.flush()
        root = Unit(code="P", name_vi="Tỉnh Thử", name_en="Test Province", level_id=pk(province))
        s.add(root)
        s.flush()
        root.path = f"/{root.id}/"
        rows = [
            Unit(
                code=f"U{i:05d}", name_vi=f"Xã số {i}", name_en=f"Commune {i}", level_id=pk(commune), parent_id=root.id
            )
            for i in range(units)
        ]
        s.add_all(rows)
        s.flush()
        for u in rows:
            u.path = f"{root.path}{u.id}/"
        version = publish_questionnaire(s, spec, actor="bench")
        wave = Wave(
            code=WAVE,
            name_vi="Đợt",
            name_en="Wave",
            questionnaire_version_id=pk(version),
            starts_on=date(2026, 1, 1),
            ends_on=date(2026, 12, 31),
            status="open",
        )
        s.add(wave)
        s.flush()
        s.execute(insert(WaveUnit), [{"wave_id": pk(wave), "unit_id": pk(u)} for u in rows])
        unit_ids = np.array([pk(u) for u in rows])
        wave_id, version_id = pk(wave), pk(version)
        admin = create_user(
            s, username="benchadmin", password=STAFF_PASSWORD, role="admin", unit_id=pk(root), actor="bench"
        )
        admin_id = pk(admin)
    width = len(spec.layout)
    now = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    truth = 0.75 + 0.23 * rng.beta(2.0, 1.5, units)
    done = 0
    while done < n:
        m = min(batch, n - done)
        who = rng.integers(0, units, size=m)
        satisfied = rng.random((m, width)) < truth[who][:, None]
        answers = np.where(satisfied, rng.integers(4, 6, (m, width)), rng.integers(1, 4, (m, width))).astype(np.uint8)
        add(engine, wave_id, version_id, unit_ids[who], answers, now)
        done += m
    return admin_id


def add(engine: Engine, wave_id: int, version_id: int, units: np.ndarray, answers: np.ndarray, now: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(Response),
            [
                {
                    "wave_id": wave_id,
                    "unit_id": int(units[i]),
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
                for i in range(len(units))
            ],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        migrate(url)
        engine = make_engine(url)
        t0 = time.perf_counter()
        fill(engine, args.responses, args.units)
        print(f"built {args.responses:,} responses x {args.units:,} units in {time.perf_counter() - t0:.1f} s")
        page = f"/staff/results/{WAVE}/league?level=commune"
        with staff_client(make_settings(url), engine) as client:
            assert sign_in(client, "benchadmin", STAFF_PASSWORD).status_code == 303
            t = time.perf_counter()
            first = client.get(page)
            cold = time.perf_counter() - t
            assert first.status_code == 200, first.text[:500]
            rows = first.text.count("<tr data-code=")
            times = []
            for _ in range(args.requests):
                t = time.perf_counter()
                r = client.get(page)
                times.append(time.perf_counter() - t)
                assert r.status_code == 200
            times.sort()
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            print(
                f"league page, {rows:,} unit rows, {len(first.content) / 1024:.0f} KiB: first (computes) {cold:.2f} s; "
                f"cached median {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
                f"best {times[0] * 1000:.0f} ms ({args.requests} requests)"
            )
            board = board_of(client.app.state)
            with Session(engine) as s:
                wave = s.scalars(select(Wave).where(col(Wave.code) == WAVE)).one()
                unit_ids = np.array(s.scalars(select(col(Unit.id)).where(col(Unit.code).like("U%")).limit(50)).all())
                version_id = wave.questionnaire_version_id
                wave_id = pk(wave)
            add(engine, wave_id, version_id, unit_ids, np.full((50, 37), 5, dtype=np.uint8), datetime.now(UTC))
            t = time.perf_counter()
            stale = client.get(page)
            after = time.perf_counter() - t
            t = time.perf_counter()
            recomputed = board.refresh()
            refresh = time.perf_counter() - t
            t = time.perf_counter()
            client.get(page)
            fresh = time.perf_counter() - t
            print(
                f"after 50 new responses: page {after * 1000:.0f} ms (the stored scores, status {stale.status_code}); "
                f"background refresh of {recomputed} stored result(s) {refresh:.2f} s; "
                f"then the page {fresh * 1000:.0f} ms (first render of the new charts)"
            )
        engine.dispose()


if __name__ == "__main__":
    main()
