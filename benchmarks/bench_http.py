"""The citizen paths under load, as a phone meets them: through a reverse proxy, rate limits on, every request
counted by the limiter.

    .venv/bin/python -m benchmarks.bench_http [--backend sqlite|postgres|both] [--duration 10] [--repeat 2]
        [--connections 32] [--workers 2] [--responses 5000] [--wait-quiet 0] [--redis-db 14] [--strict]

Needs Debian's ``wrk`` (``make bench-http`` installs it). For each backend:

1. a fresh database with the demo province (``load_demo``, ``--responses`` responses): the SQLite file
   ``var/bench/http.db`` (the embedded default: rate-limit counters in a SQLite file beside it), or the
   PostgreSQL database ``sipas_bench_http`` (created and dropped here) with the counters in Redis
   (``redis://127.0.0.1:6379/<--redis-db>``, flushed before each run);
2. the platform served as the README deploys it, ``sipas serve --workers 2`` (``tests.servers.live_server``),
   with production settings: a random 48-character secret, allowed hosts set, the limits at their defaults
   (60 survey requests a minute per client address, nothing exempt, loopback the trusted proxy);
3. four paths: the receipt survey page ``GET /r/<code>`` (gzip accepted, as a phone sends), the receipt
   submission ``POST /r/<code>`` (each spending its own fresh code, with a complete answer sheet and a form
   token signed with the server's secret), the counter page ``GET /c/<token>`` and the counter submission
   ``POST /c/<token>`` (each with its own form token). The load generator plays the reverse proxy on
   loopback: every request carries its own ``X-Forwarded-For`` address of 10.0.0.0/8, so no address reaches
   the limit and none is spared by it; after each run the limiter's counters are counted;
4. throughput: wrk, closed loop (``benchmarks/wrk/walk.lua``), ``--connections`` connections;
   latency: ``benchmarks/loadgen.py``, open loop at a constant rate (1,000 pages/s, 250 submissions/s: half
   the throughput goals; ``--page-rate``, ``--submission-rate``),
   latency from each request's intended send time;
5. the database counted afterwards: every submission answered 2xx/3xx stored exactly once, nothing else.

Each run is measured ``--repeat`` times; the best is reported with the others beside it. The CPU the server's
processes spent per answered request (from /proc) is printed beside each figure. Exits 1 on an error, a lost
answer or a request the limiter did not count; ``--strict`` also on a missed goal. Never a test: timing
depends on the machine.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks import citizen_data as data
from benchmarks import machine
from survey.db.engine import make_engine, migrate
from survey.demo.load import load_demo
from survey.settings import PROJECT_ROOT, Settings
from tests.servers import LiveServer, free_port, live_server

WORK_DIR = PROJECT_ROOT / "var" / "bench"
LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "walk.lua"
HOST = "127.0.0.1"
GOAL_RATE = {"page": 2000.0, "submission": 500.0}  # requests/s, closed loop
GOAL_P99_MS = {"page": 50.0, "submission": 150.0}
PROBE = "100.64.0.1"  # the address of the checks before the runs (outside 10/8, which the runs use)


@dataclass(frozen=True)
class Route:
    label: str
    kind: str  # "page" or "submission"
    method: str
    channel: str  # "receipt" or "counter"


ROUTES = (
    Route("survey page GET /r/<code>", "page", "GET", "receipt"),
    Route("submission POST /r/<code>", "submission", "POST", "receipt"),
    Route("counter page GET /c/<token>", "page", "GET", "counter"),
    Route("counter submission POST /c/<token>", "submission", "POST", "counter"),
)


@dataclass
class Run:
    """One measured run of one route."""

    route: Route
    tool: str  # "wrk" or "loadgen"
    rate: float  # answered requests/s
    latency_ms: dict[str, float]
    statuses: dict[int, int]
    failures: dict[str, int]  # requests without an answer, by kind (timeout: none within 10 s)
    sent: int
    cpu: machine.CpuUse
    counted: int  # keys in the limiter's store after the run
    sessions: int | None  # PostgreSQL sessions opened during the run
    exhausted: bool = False

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 400)

    @property
    def errors(self) -> int:
        return sum(self.failures.values()) + self.answered - self.ok

    def ms(self, seconds: float) -> float:
        return 1000 * seconds / max(1, self.answered)


@dataclass
class Backend:
    name: str  # "sqlite" or "postgres"
    label: str
    server: LiveServer
    database: str | None  # the PostgreSQL database whose backends' CPU is counted
    redis_url: str | None
    counters_file: Path | None
    get_files: dict[str, Path]  # channel: lines file
    posts: dict[str, list[data.PostLines]]  # channel: prepared submissions, one batch per run
    sent: dict[str, data.Sent] = field(default_factory=dict)
    runs: list[Run] = field(default_factory=list)
    xff: int = 0  # the next unused client address
    checks: list[str] = field(default_factory=list)
    ledgers: list[data.Ledger] = field(default_factory=list)


# --- runs ---------------------------------------------------------------------------------------------------


def lines_for(b: Backend, route: Route) -> tuple[Path, data.PostLines | None]:
    """The lines file of a run: the pages in turn (GET), or the next batch of fresh submissions (POST)."""
    if route.method == "GET":
        return b.get_files[route.channel], None
    batch = b.posts[route.channel].pop()
    path = WORK_DIR / f"{b.name}-{route.channel}-post.tsv"
    batch.write(path)
    return path, batch


def measure(b: Backend, args: argparse.Namespace, command: list[str], prefix: str) -> tuple[Any, Any, int | None]:
    """Run ``command`` on a fresh limiter store; its result line, the CPU it cost, the sessions it opened."""
    machine.wait_quiet(args.wait_quiet)
    data.limiter_reset(b.redis_url, b.counters_file)
    sessions = data.sessions_opened(args.postgres) if b.database else None
    before = machine.snapshot(b.server.process.pid, b.database)
    out = subprocess.run(command, capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    cpu = machine.cpu_between(before, machine.snapshot(b.server.process.pid, b.database))
    if sessions is not None:
        sessions = data.sessions_opened(args.postgres) - sessions
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith(prefix)), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"{command[0]} failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return json.loads(line.removeprefix(prefix)), cpu, sessions


def wrk(b: Backend, args: argparse.Namespace, route: Route, seconds: float, record: bool = True) -> Run:
    """Closed loop: ``--connections`` connections, each sending its next request when the last is answered."""
    lines, batch = lines_for(b, route)
    recycle = math.ceil(args.connections / args.threads / args.connection_life) if args.connection_life > 0 else 0
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(seconds))}s", "--timeout=10s"]
    command += ["-H", "Accept-Encoding: gzip", "-s", str(LUA_SCRIPT), f"http://{HOST}:{b.server.port}", "--"]
    command += [str(lines), route.method, "once" if batch else "cycle", str(args.threads), str(recycle), str(b.xff)]
    result, cpu, sessions = measure(b, args, command, "WRK_RESULT ")
    per_thread = result["sent_per_thread"]
    b.xff += args.threads * (max(per_thread) + 1)
    e = result["errors"]
    run = Run(
        route=route,
        tool="wrk",
        rate=result["requests"] / (result["duration_us"] / 1e6),
        latency_ms={k: result[f"{k}_us"] / 1000 for k in ("p50", "p90", "p99", "max")},
        statuses={int(k): int(v) for k, v in result["statuses"].items()},
        failures={k: e[k] for k in ("connect", "read", "write", "timeout") if e[k]},
        sent=result["sent"],
        cpu=cpu,
        counted=data.limiter_count(b.redis_url, b.counters_file),
        sessions=sessions,
        exhausted=bool(result["exhausted"]),
    )
    if batch is not None:  # thread k sent lines k, k + threads, ...: the first per_thread[k] of them
        sent = [i for k, n in enumerate(per_thread) for i in range(k, k + n * args.threads, args.threads)]
        b.sent.setdefault(route.channel, data.Sent()).note(batch, sent, None)
        b.sent[route.channel].ok_counted += run.ok
        b.sent[route.channel].unanswered += result["sent"] - result["answered"]
    if record:
        b.runs.append(run)
    return run


def loadgen(b: Backend, args: argparse.Namespace, route: Route) -> Run:
    """Open loop: a request due every 1/rate seconds whatever the answers before it; latency from that moment."""
    rate = args.page_rate if route.kind == "page" else args.submission_rate
    lines, batch = lines_for(b, route)
    command = [sys.executable, "-m", "benchmarks.loadgen", f"--port={b.server.port}", f"--file={lines}"]
    command += [f"--method={route.method}", f"--rate={rate:g}", f"--duration={args.duration:g}"]
    command += [f"--connections={args.connections}", f"--connection-life={args.connection_life:g}"]
    result, cpu, sessions = measure(b, args, [*command, f"--xff-offset={b.xff}"], "LOADGEN ")
    b.xff += result["requests"]
    cpu.client = result["cpu_s"]  # its own, while the clock ran (not its start-up)
    run = Run(
        route=route,
        tool="loadgen",
        rate=result["achieved_rate"],
        latency_ms=result["latency_ms"],
        statuses={int(k): int(v) for k, v in result["statuses"].items()},
        failures=result["errors"],
        sent=result["requests"],
        cpu=cpu,
        counted=data.limiter_count(b.redis_url, b.counters_file),
        sessions=sessions,
    )
    if batch is not None:
        b.sent.setdefault(route.channel, data.Sent()).note(batch, range(result["requests"]), result["answered_indices"])
    b.runs.append(run)
    return run


def check(b: Backend, condition: bool, what: str) -> None:
    b.checks.append(("checked: " if condition else "FAILED: ") + what)


def probe(b: Backend, path: str) -> int:
    """The status of one GET of ``path`` from the address PROBE."""
    conn = http.client.HTTPConnection(HOST, b.server.port, timeout=10)
    try:
        conn.request("GET", path, headers={"X-Forwarded-For": PROBE})
        return conn.getresponse().status
    finally:
        conn.close()


def preflight(b: Backend, settings: Settings, first_pages: dict[str, str]) -> None:
    """Each route answers as it should, and the limit is on: the 61st page from one address in a minute is 429."""
    for path in first_pages.values():
        check(b, probe(b, path) == 200, f"GET /{path.split('/')[1]}/... answered 200")
    limit = settings.public_rate_limit_per_minute
    answers = [probe(b, first_pages["receipt"]) for _ in range(limit)]
    check(
        b,
        answers[: limit - 2] == [200] * (limit - 2) and answers[-1] == 429,
        f"the limit is on: {limit} requests a minute from {PROBE} answered {answers.count(200)} x 200 and "
        f"{answers.count(429)} x 429 (with the {len(first_pages)} before)",
    )


# --- one backend --------------------------------------------------------------------------------------------


def prepare(name: str, args: argparse.Namespace) -> tuple[str, Settings, dict[str, Path], dict[str, Any], str]:
    """A fresh database with the demo province, the lines of the page runs, and the submissions of every run."""
    url = data.fresh_database(name, args.postgres, WORK_DIR)
    secret = secrets.token_urlsafe(48)
    settings = Settings(environment="production", database_url=url, secret_key=secret)
    t0 = time.perf_counter()
    migrate(url)
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("select sqlite_version()" if name == "sqlite" else "show server_version")
            label = f"SQLite {version.scalar()}" if name == "sqlite" else f"PostgreSQL {version.scalar()}"
        summary = load_demo(engine, settings, seed=2026, responses=args.responses)
        today = settings.today()
        receipts = data.receipt_pages(engine, settings, summary.current_wave, 1000)
        counters = data.counter_pages(engine, today)
        get_files = {}
        for channel, pages in (("receipt", receipts), ("counter", counters)):
            get_files[channel] = WORK_DIR / f"{name}-{channel}-get.tsv"
            get_files[channel].write_text("".join(f"{p.path}\t\n" for p in pages), encoding="ascii")
        answers = {
            p.version_id: data.answer_sheet(data.survey_of(engine, p.path, today).spec)
            for p in (receipts[0], counters[0])
        }
        # the submissions of every run, one batch each: wrk gets --post-budget a second, loadgen its rate
        wrk_n = math.ceil(args.post_budget * (args.duration + 1)) + 2 * args.connections
        loadgen_n = math.ceil(args.submission_rate * args.duration)
        sizes = [wrk_n] * args.repeat + [loadgen_n] * args.repeat
        fresh = data.receipt_pages(engine, settings, summary.current_wave, sum(sizes))
        posts: dict[str, list[data.PostLines]] = {"receipt": [], "counter": []}
        start = 0
        for n in sizes:  # popped from the end: the wrk runs' batches come first
            posts["receipt"].insert(0, data.post_lines(secret, fresh[start : start + n], answers))
            posts["counter"].insert(0, data.post_lines(secret, (counters * (n // len(counters) + 1))[:n], answers))
            start += n
        data.settle(engine)
        body = len(posts["receipt"][0].bodies[0])
        print(
            f"   {label}: demo province ({summary.responses:,} responses), {len(counters)} open counters, "
            f"{len(fresh):,} receipt codes with signed form tokens for the submissions (a receipt answer sheet: "
            f"{body} bytes) in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
    finally:
        engine.dispose()
    return url, settings, get_files, posts, label


def bench_backend(name: str, args: argparse.Namespace) -> Backend:
    print(f"\n== {name}: preparing", flush=True)
    url, settings, get_files, posts, label = prepare(name, args)
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}" if name == "postgres" else None
    port = free_port()
    env = {
        "SIPAS_ENVIRONMENT": "production",
        "SIPAS_SECRET_KEY": settings.secret_key,
        "SIPAS_ALLOWED_HOSTS": json.dumps([f"{HOST}:{port}"]),  # Litestar matches the Host header whole
        "SIPAS_RATE_LIMIT_EXEMPT": "[]",  # tests.servers exempts loopback for the tests; the default exempts none
        "SIPAS_PREWARM_SCORES": "true",
    }
    if redis_url:
        env["SIPAS_REDIS_URL"] = redis_url
        redis.Redis.from_url(redis_url).flushdb()
    log = WORK_DIR / f"{name}-server.log"
    log.unlink(missing_ok=True)
    engine = make_engine(url)
    try:
        with live_server(url, workers=args.workers, port=port, log_path=log, env=env, startup_timeout_s=90) as server:
            counters_file = None if redis_url else WORK_DIR / "limits.sqlite"
            b = Backend(name, label, server, data.PG_DATABASE if name == "postgres" else None, redis_url,
                        counters_file, get_files, posts)  # fmt: skip
            print(f"== {name}: sipas serve --workers {args.workers} on port {server.port}", flush=True)
            firsts = {ch: f.read_text().split("\t", 1)[0] for ch, f in get_files.items()}
            preflight(b, settings, firsts)
            last_id, spent_before = data.last_response_id(engine), data.spent_hashes(engine)
            for route in (ROUTES[0], ROUTES[2]):
                wrk(b, args, route, args.warmup, record=False)
            for _ in range(args.repeat):
                for route in ROUTES:
                    run = wrk(b, args, route, args.duration)
                    print(f"   wrk     {route.label:36} {run.rate:7,.0f} req/s, {run.errors} errors", flush=True)
            for _ in range(args.repeat):
                for route in ROUTES:
                    run = loadgen(b, args, route)
                    print(
                        f"   loadgen {route.label:36} {run.rate:7,.0f} req/s, p99 {run.latency_ms['p99']:.1f} ms, "
                        f"{run.errors} errors",
                        flush=True,
                    )
            time.sleep(2)  # what wrk cut off at the end is still being finished
            warnings = [ln for ln in log.read_text(errors="replace").splitlines() if "WARNING" in ln or "ERROR" in ln]
        stored = data.responses_after(engine, last_id)
        newly_spent = data.spent_hashes(engine) - spent_before
    finally:
        engine.dispose()
        if not args.keep:
            data.drop_database(name, args.postgres)
    all_sent = set().union(*(s.keys for s in b.sent.values()))
    keys = {k for k in stored if k}
    for channel, sent in sorted(b.sent.items(), reverse=True):
        b.ledgers.append(data.ledger(channel, sent, keys, newly_spent if channel == "receipt" else None))
    unsent = sum(1 for k in stored if k not in all_sent)
    check(b, unsent == 0, f"new responses that no run sent: {unsent}")
    check(b, len(stored) == len(keys), f"{len(stored):,} new responses, each with its own submission key")
    first = f", the first: {warnings[0]}" if warnings else ""
    check(b, not warnings, f"server log: {len(warnings)} warnings or errors{first}")
    return b


# --- report -------------------------------------------------------------------------------------------------


def best(runs: list[Run], tool: str, route: Route) -> tuple[Run, list[Run]]:
    mine = [r for r in runs if r.tool == tool and r.route == route]
    top = max(mine, key=lambda r: r.rate) if tool == "wrk" else min(mine, key=lambda r: r.latency_ms["p99"])
    return top, [r for r in mine if r is not top]


COLUMNS = (
    f"{'errors':>6} {'app':>6} {'db':>5} {'redis':>5} {'client':>6} {'others':>6} {'busiest':>7} {'counted':>7} "
    f"{'sessions':>8}"
)


def columns(run: Run, workers: int) -> str:
    """Errors, CPU ms per answered request by whom, the limiter's count and PostgreSQL's new sessions."""
    c = run.cpu
    return (
        f"{run.errors:6} {run.ms(c.server):6.3f} {run.ms(c.database):5.3f} {run.ms(c.redis):5.3f} "
        f"{run.ms(c.client):6.3f} {c.others_share:6.0%} {c.busiest_share(workers):7.0%} {run.counted:7,} "
        f"{'-' if run.sessions is None else run.sessions:>8}"
    )


def report(b: Backend, args: argparse.Namespace) -> list[tuple[str, bool | None]]:
    """Print the backend's two tables, its ledger and checks; returns its goals (label, met)."""
    counters = f"counters in Redis db {args.redis_db}" if b.redis_url else "counters in a SQLite file beside it"
    print(f"\n{b.label}, {counters}; sipas serve --workers {args.workers}, production settings, limits on")
    note = f"best of {args.repeat}, the others in brackets" if args.repeat > 1 else "one run"
    print(f"throughput: wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s, closed loop ({note})")
    print(f"{'path':36} {'req/s':>7} {'(others)':>13} {'alone':>6} {'p99 ms':>7} {COLUMNS}")
    goals: list[tuple[str, bool | None]] = []
    for route in ROUTES:
        run, others = best(b.runs, "wrk", route)
        rest = "(" + ", ".join(f"{r.rate:,.0f}" for r in others) + ")" if others else ""
        shown = (">=" if run.exhausted else "") + f"{run.rate:,.0f}"
        c = run.cpu
        alone = machine.CORES * run.answered / max(1e-9, c.server + c.database + c.redis + c.client)
        p99 = run.latency_ms["p99"]
        print(f"{route.label:36} {shown:>7} {rest:>13} {alone:6,.0f} {p99:7.1f} {columns(run, args.workers)}")
        goal = GOAL_RATE[route.kind]
        goals.append((f"{b.name}: {route.label} {run.rate:,.0f} req/s (goal >= {goal:,.0f})", run.rate >= goal))
    print(
        f"latency: benchmarks/loadgen.py, open loop at a constant rate, {args.connections} connections, "
        f"{args.duration:g}s; ms from each request's intended send time ({note.replace('best', 'best p99')})"
    )
    print(f"{'path':36} {'rate':>5} {'p50':>6} {'p90':>6} {'p99':>6} {'(others)':>13} {'max':>6} {COLUMNS}")
    for route in ROUTES:
        run, others = best(b.runs, "loadgen", route)
        lat, rate = run.latency_ms, args.page_rate if route.kind == "page" else args.submission_rate
        rest = "(" + ", ".join(f"{r.latency_ms['p99']:.1f}" for r in others) + ")" if others else ""
        print(
            f"{route.label:36} {rate:5,.0f} {lat['p50']:6.1f} {lat['p90']:6.1f} {lat['p99']:6.1f} {rest:>13} "
            f"{lat['max']:6.0f} {columns(run, args.workers)}"
        )
        goal, goal_rate = GOAL_P99_MS[route.kind], GOAL_RATE[route.kind] / 2
        label = f"{b.name}: {route.label} at {rate:,.0f}/s: p99 {lat['p99']:.1f} ms"
        label += f" (goal <= {goal:g} at {goal_rate:,.0f}/s)"
        goals.append((label, lat["p99"] <= goal if rate == goal_rate else None))
    for led in b.ledgers:
        low, high = led.lost
        lost = f"{low}" if low == high else f"between {low} and {high}"
        spent = "" if led.spent is None else f", codes spent {led.spent:,} ({led.spent_unsent} not sent)"
        print(f"{led.label} submissions: sent {led.sent:,}, answered 2xx/3xx {led.ok:,}, stored {led.stored:,}"
              f"{spent}; answered but not stored: {lost}")  # fmt: skip
    for line in b.checks:
        print(line)
    return goals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=float, default=10, help="seconds of each measured run")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of page load before measuring")
    parser.add_argument("--repeat", type=int, default=2, help="measure each run this many times, report the best")
    parser.add_argument("--connections", type=int, default=32, help="open connections (wrk and loadgen)")
    parser.add_argument("--threads", type=int, default=1, help="wrk's threads (it shares the machine)")
    parser.add_argument(
        "--connection-life", type=float, default=4, help="a connection's average life in seconds; 0: the whole run"
    )
    parser.add_argument("--page-rate", type=float, default=1000, help="open-loop pages/s (half the goal)")
    parser.add_argument("--submission-rate", type=float, default=250, help="open-loop submissions/s (half the goal)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--responses", type=int, default=5_000, help="demo responses loaded first")
    parser.add_argument("--post-budget", type=float, default=2500, help="receipt codes issued per second of a wrk run")
    parser.add_argument("--redis-db", type=int, default=14, help="the Redis database of the PostgreSQL run (flushed)")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("SIPAS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
        help=f"a server to create the {data.PG_DATABASE} database on",
    )
    parser.add_argument("--wait-quiet", type=float, default=0, help="before each run, wait up to this long for calm")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed, too")
    parser.add_argument("--keep", action="store_true", help=f"keep the {data.PG_DATABASE} database")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install wrk (or `make bench-http`)")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    print(machine.machine_line())
    print(machine.code_line(PROJECT_ROOT))
    print("command: " + " ".join(["python -m benchmarks.bench_http", *sys.argv[1:]]))
    print(f"load before the start: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
    results = [
        bench_backend(name, args) for name in (["sqlite", "postgres"] if args.backend == "both" else [args.backend])
    ]
    goals = [goal for b in results for goal in report(b, args)]
    print(
        "\nCPU: ms per answered request of the server's processes (app: uvicorn and its workers), of PostgreSQL's "
        "backends of the bench database (db), of redis-server (shared with other users of it) and of the load "
        "generator; others: the share of the machine other work took during the run; busiest: the busiest "
        "worker's share of the workers' CPU; counted: client addresses in the limiter's store after the run; "
        "sessions: PostgreSQL sessions opened during the run; alone: the rate all the cores would give at the "
        "run's CPU per request (app, db, redis and client), with nothing else running"
    )
    print()
    for label, met in goals:
        print(f"{'not a goal rate' if met is None else 'goal met   ' if met else 'goal missed'} {label}")
    errors = sum(r.errors for b in results for r in b.runs)
    for b in results:
        for r in b.runs:
            if r.errors:
                kinds = {**r.failures, **{str(s): n for s, n in r.statuses.items() if not 200 <= s < 400}}
                print(f"errors: {b.name} {r.tool} {r.route.label}: {kinds}")
    uncounted = [r for b in results for r in b.runs if r.counted < r.ok]
    kept = all(led.correct for b in results for led in b.ledgers)
    checked = not any(c.startswith("FAILED") for b in results for c in b.checks)
    correct = errors == 0 and not uncounted and kept and checked
    print(f"{'met   ' if errors == 0 else 'MISSED'} zero errors ({errors} in all runs)")
    print(f"{'met   ' if not uncounted else 'MISSED'} every answered request counted by the limiter")
    print(f"{'met   ' if kept else 'MISSED'} zero lost answers")
    if not correct or (args.strict and not all(met is not False for _, met in goals)):
        sys.exit(1)


if __name__ == "__main__":
    main()
