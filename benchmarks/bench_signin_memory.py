"""Peak memory and time of many bogus sign-ins at once, with and without the bound on password hashing.

    .venv/bin/python -m benchmarks.bench_signin_memory [--attempts 40] [--slots 2 40]

For each number of hashing slots (``password_hash_concurrency``), a fresh Python process serves the app
in-process (httpx over ASGI) against a throwaway SQLite database, opens the sign-in page ``attempts`` times,
then sends every sign-in at once, each with a wrong password for an existing account, and prints its peak
resident memory before and after, the statuses, and the time. 40 slots is the unbounded case (every
attempt hashes at once); Argon2 holds 64 MiB per computation. The address limit is raised so that the
back-off does not stop the attempts before they are hashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent


def _peak_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


async def _attack(slots: int, attempts: int) -> dict[str, object]:
    import httpx
    from sqlalchemy.orm import Session

    from survey.app import create_app
    from survey.auth.services import create_user
    from survey.db.engine import make_engine, migrate
    from survey.db.models import Unit, UnitLevel, pk
    from survey.limits import MemoryCounters
    from survey.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'signin.db'}"
        migrate(url)
        engine = make_engine(url)
        with Session(engine) as s:
            level = UnitLevel(code="p", name_vi="Tỉnh", name_en="Province", depth=0)
            s.add(level)
            s.flush()
            unit = Unit(code="P", name_vi="Tỉnh", name_en="Province", level_id=pk(level), path="/")
            s.add(unit)
            s.flush()
            unit.path = f"/{unit.id}/"
            create_user(
                s, username="target", password=secrets.token_urlsafe(16), role="admin", unit_id=pk(unit), actor="b"
            )
            s.commit()
        settings = Settings(
            environment="test",
            database_url=url,
            secret_key="bench-secret-" + "k" * 40,
            password_hash_concurrency=slots,
            password_hash_wait_seconds=120,
            login_max_failures_per_address=10_000,
            login_max_failures=10_000,
            prewarm_scores=False,
        )
        app = create_app(settings, engine, counters=MemoryCounters())
        transport = httpx.ASGITransport(app=cast(Any, app))  # Litestar's scope types are narrower than httpx's
        clients = [httpx.AsyncClient(transport=transport, base_url="http://testserver") for _ in range(attempts)]
        tokens = []
        for c in clients:
            page = await c.get("/login")
            match = re.search(r'name="_csrf_token" value="([^"]+)"', page.text)
            assert match, page.text[:300]
            tokens.append(match.group(1))
        before = _peak_mib()
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(
                c.post("/login", data={"username": "target", "password": f"wrong guess {i}", "_csrf_token": t})
                for i, (c, t) in enumerate(zip(clients, tokens, strict=True))
            )
        )
        elapsed = time.perf_counter() - started
        for c in clients:
            await c.aclose()
        engine.dispose()
    return {
        "slots": slots,
        "attempts": attempts,
        "peak_before_mib": before,
        "peak_after_mib": _peak_mib(),
        "seconds": round(elapsed, 2),
        "statuses": dict(Counter(r.status_code for r in responses)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=40)
    parser.add_argument("--slots", type=int, nargs="+", default=[2, 40])
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # run one measurement in this process
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(asyncio.run(_attack(args.one, args.attempts))))
        return
    print(f"{'slots':>5} {'attempts':>8} {'peak before':>12} {'peak after':>11} {'growth':>8} {'time':>7}  statuses")
    for slots in args.slots:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_signin_memory",
                "--one",
                str(slots),
                "--attempts",
                str(args.attempts),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        r = json.loads(out.strip().splitlines()[-1])
        growth = int(r["peak_after_mib"]) - int(r["peak_before_mib"])
        print(
            f"{r['slots']:>5} {r['attempts']:>8} {r['peak_before_mib']:>9} MiB {r['peak_after_mib']:>7} MiB "
            f"{growth:>4} MiB {r['seconds']:>6}s  {r['statuses']}"
        )


if __name__ == "__main__":
    main()
