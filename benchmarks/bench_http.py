"""The citizen paths under load: wrk on loopback against the platform served with several workers.

    .venv/bin/python -m benchmarks.bench_http [--backend sqlite|postgres|both] [--duration 12]
        [--connections 32] [--workers 2] [--threads 1] [--connection-life 4] [--responses 10000]
        [--wait-quiet 600] [--retries 2] [--set NAME=VALUE] [--postgres URL] [--keep] [--strict]

Needs Debian's ``wrk`` (``make bench-http`` installs it). For each backend:

1. a fresh database (SQLite file var/bench/http.db, or the PostgreSQL database ``sipas_bench_http``,
   created and dropped here) with the demo province (``load_demo``, ``--responses`` responses);
2. a bare Litestar hello-world (``benchmarks/hello_app.py``) served by uvicorn with the same worker
   count and settings, measured first: the scale for the platform's figures;
3. as many fresh receipt codes as the POST test could spend at 30% of the hello-world's rate (issued
   in bulk with ``issue_receipt_codes``), each with a form token signed with the server's secret,
   written with a complete answer sheet as one (path, body) line per submission (a run that used
   them up would stop and be reported invalid); 1,000 more codes for the GET test;
4. the platform served as the README deploys it (``sipas serve --workers N``, production settings),
   warmed up, then wrk on the survey page (GET /r/<code>, gzip accepted as by a phone) and on the
   submission (POST /r/<code>, each request spending its own code: real, successful submissions);
5. the database counted afterwards: every submission answered 2xx/3xx must be stored, exactly once.

``benchmarks/wrk/walk.lua`` walks through the prepared lines and prints the figures wrk's own summary
lacks (p50/p99, answers by status, requests sent). It closes a few connections each second so that
they come and go as phones do: wrk opens all of them at once, and one worker often accepts them all.

Goals on a 2-core machine: the survey page at least 25% of the hello-world's rate, the submission
at least 10%, no errors, no lost response. Prints the figures (docs/benchmarks.md records them);
exits 1 on an error or a lost response, and with ``--strict`` on a missed rate goal too. The CPU
each request cost the server is printed beside the rates, and the share of the machine that other
work took during each run: on a shared machine, use ``--wait-quiet``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlmodel import col

from seed_data import QUESTIONNAIRE_DIR, province
from survey.db.audited import issue_receipt_codes
from survey.db.engine import make_engine, migrate
from survey.db.models import ProcedureField, ReceiptCode, Response, Unit, Wave
from survey.demo.load import load_demo
from survey.questionnaires.spec import load_file
from survey.receipts import codes
from survey.settings import PROJECT_ROOT, Settings
from tests.factories import full_answers

ROOT = PROJECT_ROOT
WORK_DIR = ROOT / "var" / "bench"
LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "walk.lua"
PG_DATABASE = "sipas_bench_http"
# Where the bench's codes are issued: a department, a district and a commune, as in the demo's links.
UNITS = ("STP", "GD", "TPTN-W01")
GET_CODES = 1_000
GOAL_GET = 0.25
GOAL_POST = 0.10
DISTURBED = 0.10  # a run during which other work took more than this share of the machine is measured again


@dataclass
class CpuUse:
    """CPU seconds spent during one wrk run, by whom (from /proc): the way to read figures on a shared machine."""

    elapsed: float
    server: float  # the uvicorn supervisor and its workers
    database: float  # PostgreSQL backends serving the bench database
    client: float  # wrk
    others: float  # everything else on the machine
    per_process: list[float]  # the server's processes, busiest first

    def busiest_share(self, workers: int) -> float:
        """The busiest worker's share of the workers' CPU (1/workers when the load is spread evenly)."""
        top = self.per_process[:workers]
        return top[0] / sum(top) if top and sum(top) > 0 else 0.0

    @property
    def others_share(self) -> float:
        return self.others / (self.elapsed * (os.cpu_count() or 1))


@dataclass
class Run:
    """One wrk run: its figures as printed by walk.lua's done()."""

    label: str
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    statuses: dict[int, int]
    sent: int
    answered: int
    sent_per_thread: list[int]
    exhausted: bool
    cpu: CpuUse
    skips: list[int]  # lines each thread skipped (sent by an earlier run)

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_ms(self) -> float:
        """CPU milliseconds per answered request: app processes plus their PostgreSQL backends."""
        return 1000 * (self.cpu.server + self.cpu.database) / max(1, self.requests)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 400)

    @property
    def errors(self) -> int:
        """Socket errors and timeouts plus every answer outside 2xx/3xx."""
        return self.socket_errors + sum(n for s, n in self.statuses.items() if not 200 <= s < 400)


@dataclass
class Ledger:
    """What the database says about the POST run, against what wrk saw."""

    stored: int  # new response rows
    spent: int  # codes spent during the run
    spent_unsent: int  # bench codes spent that wrk never sent (must be 0)
    ok: int  # submissions answered 2xx/3xx
    unanswered: int  # sent but not answered when wrk stopped (in flight at the end)

    @property
    def lost_range(self) -> tuple[int, int]:
        """Submissions answered 2xx/3xx without a stored row: exact when both ends agree.

        Of ``stored`` rows, up to ``unanswered`` may belong to requests wrk cut off at the end, so
        lost = ok - stored + (cut-off requests stored), somewhere in [ok - stored, ok - stored + unanswered].
        """
        low = max(0, self.ok - self.stored)
        high = min(self.ok, max(0, self.ok - self.stored + self.unanswered))
        return low, high


@dataclass
class BackendResult:
    backend: str
    hellos: list[Run]  # every run; the last one is reported
    gets: list[Run]
    posts: list[Run]
    ledger: Ledger

    @property
    def hello(self) -> Run:
        return self.hellos[-1]

    @property
    def get(self) -> Run:
        return self.gets[-1]

    @property
    def post(self) -> Run:
        return self.posts[-1]

    def rate_goals(self) -> dict[str, bool]:
        return {
            f"survey page >= {GOAL_GET:.0%} of hello-world": self.get.rps >= GOAL_GET * self.hello.rps,
            f"submission >= {GOAL_POST:.0%} of hello-world": self.post.rps >= GOAL_POST * self.hello.rps,
        }

    def correctness_goals(self) -> dict[str, bool]:
        lost_high = self.ledger.lost_range[1]
        return {
            "zero errors": sum(r.errors for r in (*self.hellos, *self.gets, *self.posts)) == 0,
            "zero lost responses": lost_high == 0
            and self.ledger.stored == self.ledger.spent
            and self.ledger.spent_unsent == 0,
            "enough codes for the whole submission run": not any(r.exhausted for r in self.posts),
        }


# --- the machine -------------------------------------------------------------------------------


def machine_line() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    import litestar
    import uvicorn

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split(" [")[0]
    return (
        f"machine: {cpu}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, {platform.machine()}, Python "
        f"{platform.python_version()}, Litestar {litestar.__version__.formatted(short=True)}, uvicorn "
        f"{uvicorn.__version__}, {wrk_version}, {datetime.now(UTC):%Y-%m-%d}"
    )


def code_line() -> str:
    """Which code was measured (read-only git queries): the commit, and whether the tree had changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    n = len(changed.stdout.splitlines())
    return f"code: git {head.stdout.strip() or '?'}" + (f" with {n} changed or new files" if n else "")


# --- servers ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(url: str, secret: str, port: int, extra: list[str] | None = None) -> dict[str, str]:
    """The platform's environment: production settings on the bench database, plus ``extra`` NAME=VALUE pairs."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SIPAS_")}
    env.update(
        SIPAS_ENVIRONMENT="production",
        SIPAS_DATABASE_URL=url,
        SIPAS_SECRET_KEY=secret,
        SIPAS_BASE_URL=f"http://127.0.0.1:{port}",
        SIPAS_ALLOWED_HOSTS=json.dumps([f"127.0.0.1:{port}", "127.0.0.1"]),  # production refuses "*"
    )
    for pair in extra or []:
        name, _, value = pair.partition("=")
        env[name if name.upper().startswith("SIPAS_") else f"SIPAS_{name.upper()}"] = value
    return env


@contextmanager
def serving(
    name: str, cmd: list[str], env: dict[str, str], port: int, ready_path: str, database: str | None = None
) -> Iterator[Target]:
    """Run ``cmd`` (a uvicorn supervisor and its workers) in its own process group until the block ends."""
    log_path = WORK_DIR / f"{name}.log"
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{ready_path}", timeout=5) as r:
                        if r.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not answer on port {port} within 90 s; see {log_path}")
                time.sleep(0.3)
            time.sleep(2)  # the other workers finish importing
            yield Target(port, group=proc.pid, database=database)
        finally:
            # Ctrl+C as in a terminal: the supervisor and its workers shut down gracefully.
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def uvicorn_hello(port: int, workers: int) -> list[str]:
    """The hello-world with the uvicorn settings ``sipas serve`` uses (proxy headers on, access log off)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.hello_app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--proxy-headers",
        "--no-access-log",
    ]


def sipas_serve(port: int, workers: int) -> list[str]:
    return [str(Path(sys.executable).with_name("sipas")), "serve", "--port", str(port), "--workers", str(workers)]


# --- CPU accounting ---------------------------------------------------------------------------

TICK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the machine has spent on anything but idling, since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK  # user..steal (guest time is already in user)


@dataclass
class Snapshot:
    """CPU seconds so far of the server's processes and of the PostgreSQL backends on the bench database."""

    server: dict[int, float]
    backends: dict[int, float]
    reaped: float  # CPU of PostgreSQL backends that have ended (the postmaster's children's time)

    def database_since(self, before: Snapshot) -> float:
        """Backends' CPU since ``before``: the live ones' growth, plus those that ended (pools open and
        close connections; a new backend costs PostgreSQL a fork and a warm-up) less what they had used before.
        """
        live = sum(t - before.backends.get(pid, 0.0) for pid, t in self.backends.items())
        ended_before = sum(t for pid, t in before.backends.items() if pid not in self.backends)
        return live + (self.reaped - before.reaped) - ended_before


def processes_cpu(server_group: int, database: str | None) -> Snapshot:
    """CPU seconds of each process in ``server_group``, and of PostgreSQL on ``database`` (from /proc)."""
    server: dict[int, float] = {}
    backends: dict[int, float] = {}
    postgres: dict[int, tuple[int, float]] = {}  # pid: (parent, CPU of its ended children)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
            fields = stat[stat.rindex(")") + 2 :].split()
            used = (int(fields[11]) + int(fields[12])) / TICK
            if int(fields[2]) == server_group:
                server[int(entry)] = used
            elif database and stat[stat.index("(") : stat.rindex(")") + 1] == "(postgres)":
                postgres[int(entry)] = (int(fields[1]), (int(fields[13]) + int(fields[14])) / TICK)
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    title = fh.read().decode("utf-8", "replace")
                if f" {database} " in title:
                    backends[int(entry)] = used
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    # The postmaster is the PostgreSQL process whose parent is not one; it reaps every backend.
    reaped = sum(children for parent, children in postgres.values() if parent not in postgres)
    return Snapshot(server, backends, reaped)


def wait_quiet(limit: float) -> None:
    """Wait (at most ``limit`` seconds) for 10 s in which the machine is at least 90% idle."""
    if limit <= 0:
        return
    started = time.monotonic()
    calm = 0
    busy0, t0 = machine_busy(), time.monotonic()
    while time.monotonic() - started < limit:
        time.sleep(5)
        busy1, t1 = machine_busy(), time.monotonic()
        share = (busy1 - busy0) / ((t1 - t0) * (os.cpu_count() or 1))
        busy0, t0 = busy1, t1
        calm = calm + 1 if share < 0.10 else 0
        if calm >= 2:
            return
    print(f"   the machine did not become quiet within {limit:.0f} s: measuring anyway", flush=True)


def children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- wrk ----------------------------------------------------------------------------------------


@dataclass
class Target:
    """A server under test: its port, its process group (for CPU accounting) and its database, if PostgreSQL."""

    port: int
    group: int = 0
    database: str | None = None


def wrk(
    label: str,
    target: Target,
    lines_file: Path,
    method: str,
    mode: str,
    args: argparse.Namespace,
    seconds: float,
    skips: list[int] | None = None,
) -> Run:
    """One wrk run; thread k starts after the first ``skips[k]`` of its lines (those an earlier run sent)."""
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={args.timeout}s",
        "-H",
        "Accept-Encoding: gzip",
        "-s",
        str(LUA_SCRIPT),
        f"http://127.0.0.1:{target.port}",
        "--",
        str(lines_file),
        method,
        mode,
        str(args.threads),
        str(math.ceil(args.connections / args.threads / args.connection_life) if args.connection_life > 0 else 0),
        ",".join(str(n) for n in skips or [0] * args.threads),
    ]
    if label != "warm-up":
        wait_quiet(args.wait_quiet)
    busy0, client0, wall0 = machine_busy(), children_cpu(), time.monotonic()
    before = processes_cpu(target.group, target.database)
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    after = processes_cpu(target.group, target.database)
    busy1, client1, wall1 = machine_busy(), children_cpu(), time.monotonic()
    per_process = sorted((t - before.server.get(pid, 0.0) for pid, t in after.server.items()), reverse=True)
    server, db, client = sum(per_process), after.database_since(before), client1 - client0
    others = max(0.0, busy1 - busy0 - server - db - client)
    cpu = CpuUse(wall1 - wall0, server, db, client, others, per_process)
    result = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None)
    if out.returncode != 0 or result is None:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    data: dict[str, Any] = json.loads(result.removeprefix("WRK_RESULT "))
    e = data["errors"]
    return Run(
        label=label,
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        socket_errors=e["connect"] + e["read"] + e["write"] + e["timeout"],
        statuses={int(k): int(v) for k, v in data["statuses"].items()},
        sent=data["sent"],
        answered=data["answered"],
        sent_per_thread=list(data["sent_per_thread"]),
        skips=list(skips or [0] * args.threads),
        exhausted=bool(data["exhausted"]),
        cpu=cpu,
    )


def measure(
    label: str, target: Target, lines_file: Path, method: str, mode: str, args: argparse.Namespace
) -> list[Run]:
    """Measure, and measure again (up to --retries times) while other work disturbs the run; every run is kept.

    In "once" mode each new run starts after the lines the earlier ones sent: no code is sent twice.
    """
    runs: list[Run] = []
    skips = [0] * args.threads
    for attempt in range(1 + args.retries):
        run = wrk(label, target, lines_file, method, mode, args, args.duration, skips)
        runs.append(run)
        if mode == "once":
            skips = [a + b for a, b in zip(skips, run.sent_per_thread, strict=True)]
        if run.cpu.others_share <= DISTURBED or run.exhausted or attempt == args.retries:
            break
        print(f"   {label}: other work took {run.cpu.others_share:.0%} of the machine; measuring again", flush=True)
    return runs


# --- the database -----------------------------------------------------------------------------


def fresh_database(backend: str, admin_url: str) -> str:
    if backend == "sqlite":
        path = WORK_DIR / "http.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_DATABASE}"))
    finally:
        admin.dispose()
    return make_url(admin_url).set(database=PG_DATABASE).render_as_string(hide_password=False)


def drop_database(backend: str, admin_url: str) -> None:
    if backend == "postgres":
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)"))
        admin.dispose()


def issue(engine: Engine, settings: Settings, wave_code: str, count: int) -> list[str]:
    """``count`` fresh receipt codes of the open wave, spread over UNITS (each with its first field)."""
    fields_of = {u.code: u.fields[0] for u in province.load().units if u.code in UNITS}
    fresh: list[str] = []
    with Session(engine) as session, session.begin():
        targets = []
        for code in UNITS:
            unit_id = session.scalar(select(col(Unit.id)).where(col(Unit.code) == code))
            field_id = session.scalar(select(col(ProcedureField.id)).where(col(ProcedureField.code) == fields_of[code]))
            assert unit_id is not None and field_id is not None
            targets.append((unit_id, field_id))
        done = 0
        while done < count:
            unit_id, field_id = targets[(done // 10_000) % len(targets)]
            n = min(10_000, count - done)
            fresh += issue_receipt_codes(
                session,
                wave_code=wave_code,
                unit_id=unit_id,
                field_id=field_id,
                count=n,
                valid_days=settings.receipt_code_valid_days,
                actor="bench",
            )
            done += n
    return fresh


def settle(engine: Engine, backend: str) -> None:
    """After a bulk insert: what autovacuum (PostgreSQL) or the next checkpoint (SQLite) would do anyway."""
    if backend == "postgres":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def spent_hashes(engine: Engine, wave_id: int) -> set[str]:
    with Session(engine) as s:
        spent = col(ReceiptCode.spent).is_(True)
        return set(s.scalars(select(col(ReceiptCode.code_hash)).where(col(ReceiptCode.wave_id) == wave_id, spent)))


def count_responses(engine: Engine) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(Response)) or 0)


# --- one backend ------------------------------------------------------------------------------


def bench_backend(backend: str, args: argparse.Namespace) -> BackendResult:
    print(f"\n== {backend}: preparing the database", flush=True)
    url = fresh_database(backend, args.postgres)
    secret = secrets.token_urlsafe(48)
    settings = Settings(environment="production", database_url=url, secret_key=secret, allowed_hosts=["127.0.0.1"])
    t0 = time.perf_counter()
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("select sqlite_version()" if backend == "sqlite" else "show server_version")
            print(f"   {backend} {version.scalar()}", flush=True)
        summary = load_demo(engine, settings, seed=2026, responses=args.responses)
        wave_code = summary.current_wave
        with Session(engine) as s:
            wave_id = s.scalar(select(col(Wave.id)).where(col(Wave.code) == wave_code))
        assert wave_id is not None
        get_file = WORK_DIR / f"{backend}-get.tsv"
        get_file.write_text("".join(f"/r/{c}\t\n" for c in issue(engine, settings, wave_code, GET_CODES)))
        hello_file = WORK_DIR / "hello.tsv"
        hello_file.write_text("/\t\n" * max(1, args.threads))
        print(
            f"   demo province ({summary.responses:,} responses) and {GET_CODES:,} codes for the page test "
            f"in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

        port = free_port()
        print(f"== {backend}: hello-world, {args.workers} workers, port {port}", flush=True)
        with serving(f"{backend}-hello", uvicorn_hello(port, args.workers), os.environ.copy(), port, "/") as server:
            wrk("warm-up", server, hello_file, "GET", "cycle", args, args.warmup)
            hellos = measure("hello-world GET /", server, hello_file, "GET", "cycle", args)
        hello = hellos[-1]
        print(f"   {hello.rps:,.0f} requests/s", flush=True)

        # Enough codes for a submission run at --post-budget times the hello-world's rate (3x the goal);
        # a faster run would stop early and be reported as invalid, never re-send a code.
        n_post = math.ceil(hello.rps * args.post_budget * (args.duration + 1)) + args.connections * 2
        t0 = time.perf_counter()
        post_codes = issue(engine, settings, wave_code, n_post)
        spec = load_file(QUESTIONNAIRE_DIR / "sipas_5x22.yaml")
        answers = {**full_answers(spec), **{f"q_{i.id}": "" for i in spec.items if i.type == "text"}}
        answer_part = urlencode(answers, doseq=True)
        post_file = WORK_DIR / f"{backend}-post.tsv"
        body_bytes = 0
        with post_file.open("w", encoding="ascii") as fh:
            for c in post_codes:
                token = codes.sign_form_token(secret, f"r:{codes.code_hash(c)}")
                body = f"{urlencode({'token': token, 'lang': 'vi'})}&{answer_part}"
                body_bytes = max(body_bytes, len(body))
                fh.write(f"/r/{c}\t{body}\n")
        settle(engine, backend)
        print(
            f"   {n_post:,} codes with signed form tokens for the submission test in "
            f"{time.perf_counter() - t0:.1f} s (a body: every item of the SIPAS-style page, {body_bytes} bytes)",
            flush=True,
        )

        port = free_port()
        print(f"== {backend}: the platform (sipas serve --workers {args.workers}), port {port}", flush=True)
        database = PG_DATABASE if backend == "postgres" else None
        env = server_env(url, secret, port, args.set)
        with serving(f"{backend}-sipas", sipas_serve(port, args.workers), env, port, "/healthz", database) as server:
            wrk("warm-up", server, get_file, "GET", "cycle", args, args.warmup)
            pages = measure("survey page GET /r/<code>", server, get_file, "GET", "cycle", args)
            print(f"   page: {pages[-1].rps:,.0f} requests/s", flush=True)
            before_rows = count_responses(engine)
            before_spent = spent_hashes(engine, wave_id)
            posts = measure("submission POST /r/<code>", server, post_file, "POST", "once", args)
            time.sleep(2)  # requests wrk cut off at the end are still being finished by the server
        after_rows = count_responses(engine)
        newly_spent = spent_hashes(engine, wave_id) - before_spent
        print(f"   submission: {posts[-1].rps:,.0f} requests/s", flush=True)
    finally:
        engine.dispose()
        if not args.keep:
            drop_database(backend, args.postgres)
            (WORK_DIR / f"{backend}-post.tsv").unlink(missing_ok=True)

    # Which codes wrk sent: thread k walks lines k, k+T, ...; each run sent sent_per_thread[k] after its skips[k].
    hashes = [codes.code_hash(c) for c in post_codes]
    sent = {
        h
        for run in posts
        for k, n in enumerate(run.sent_per_thread)
        for h in hashes[k :: args.threads][run.skips[k] : run.skips[k] + n]
    }
    ledger = Ledger(
        stored=after_rows - before_rows,
        spent=len(newly_spent),
        spent_unsent=len(newly_spent - sent),
        ok=sum(run.ok for run in posts),
        unanswered=sum(run.sent - run.answered for run in posts),
    )
    return BackendResult(backend, hellos, pages, posts, ledger)


# --- report -------------------------------------------------------------------------------------


def report(results: list[BackendResult], args: argparse.Namespace) -> tuple[bool, bool]:
    """Print the table and the goals; returns (rate goals met, correctness goals met)."""
    print(
        f"\nwrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --timeout={args.timeout}s on loopback, "
        f"uvicorn with {args.workers} workers (httptools, uvloop); latency in ms"
    )
    print(
        "cpu/req: CPU ms per request of the server processes and their PostgreSQL backends (db: those alone); "
        "cpu ratio: the hello-world's cpu/req over the path's, the share of its rate the path would reach with "
        "the machine to itself; wrk: wrk's CPU ms per request; others: CPU share of other work on the machine "
        "during the run; busiest: the busiest worker's share of the workers' CPU"
    )
    header = (
        f"{'backend':8} {'path':26} {'req/s':>7} {'p50':>7} {'p99':>7} {'errors':>6} {'vs hello':>8} "
        f"{'cpu/req':>7} {'db':>5} {'cpu ratio':>9} {'wrk':>5} {'others':>6} {'busiest':>7}  statuses"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        for run in (r.hello, r.get, r.post):
            statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(run.statuses.items()))
            wrk_ms = 1000 * run.cpu.client / max(1, run.requests)
            db_ms = 1000 * run.cpu.database / max(1, run.requests)
            print(
                f"{r.backend:8} {run.label:26} {run.rps:7,.0f} {run.p50_ms:7.2f} {run.p99_ms:7.2f} "
                f"{run.errors:6} {run.rps / r.hello.rps:8.1%} {run.server_ms:7.3f} {db_ms:5.2f} "
                f"{r.hello.server_ms / run.server_ms:9.1%} {wrk_ms:5.3f} {run.cpu.others_share:6.0%} "
                f"{run.cpu.busiest_share(args.workers):7.0%}  {statuses}"
            )
    for r in results:
        for runs in (r.hellos, r.gets, r.posts):
            if len(runs) > 1:
                shares = ", ".join(f"{run.cpu.others_share:.0%}" for run in runs)
                print(f"{r.backend} {runs[-1].label}: measured {len(runs)} times, other work took {shares}")
            if runs[-1].cpu.others_share > DISTURBED:
                print(
                    f"{r.backend} {runs[-1].label}: other work took {runs[-1].cpu.others_share:.0%} of the machine "
                    "during the run: its figures are disturbed (--wait-quiet waits for an idle machine)"
                )
    rates_met = correct = True
    for r in results:
        led = r.ledger
        low, high = led.lost_range
        lost = f"{low}" if low == high else f"between {low} and {high}"
        sent, answered = sum(run.sent for run in r.posts), sum(run.answered for run in r.posts)
        n_runs = f" in {len(r.posts)} runs" if len(r.posts) > 1 else ""
        print(
            f"\n{r.backend}: submissions sent {sent:,}{n_runs}, answered {answered:,} "
            f"({led.ok:,} with 2xx/3xx), {led.unanswered} in flight when wrk stopped; "
            f"responses stored {led.stored:,}, codes spent {led.spent:,} "
            f"({led.spent_unsent} not sent by wrk); answered 2xx/3xx but not stored: {lost}"
        )
        for goal, met in r.rate_goals().items():
            rates_met &= met
            print(f"{r.backend}: {'met   ' if met else 'MISSED'} {goal}")
        for goal, met in r.correctness_goals().items():
            correct &= met
            print(f"{r.backend}: {'met   ' if met else 'MISSED'} {goal}")
    return rates_met, correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=12, help="seconds of each measured wrk run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=32, help="wrk's open connections")
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads (it shares the machine)")
    parser.add_argument(
        "--connection-life",
        type=float,
        default=4,
        help="a connection's average life in seconds (phones come and go); 0: the whole run",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="uvicorn worker processes")
    parser.add_argument("--timeout", type=int, default=10, help="wrk counts slower answers as errors")
    parser.add_argument("--responses", type=int, default=10_000, help="demo responses loaded first")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SIPAS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
        help=f"a server to create the {PG_DATABASE} database on",
    )
    parser.add_argument(
        "--post-budget", type=float, default=0.3, help="issue codes for a submission rate this share of the hello's"
    )
    parser.add_argument(
        "--wait-quiet", type=float, default=0, help="before each run, wait up to this long for an idle machine"
    )
    parser.add_argument(
        "--retries", type=int, default=2, help="measure again while other work takes over 10%% of the machine"
    )
    parser.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a setting for the platform server, e.g. --set PREWARM_SCORES=false (repeatable)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a rate goal is missed, too")
    parser.add_argument("--keep", action="store_true", help=f"keep the {PG_DATABASE} database and the POST lines")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (or `make bench-http`)")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(code_line())
    print("command: " + " ".join(["python -m benchmarks.bench_http", *sys.argv[1:]]))
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = [bench_backend(b, args) for b in backends]
    rates_met, correct = report(results, args)
    if not correct or (args.strict and not rates_met):
        sys.exit(1)


if __name__ == "__main__":
    main()
