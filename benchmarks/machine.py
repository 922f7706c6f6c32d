"""The machine a benchmark runs on, and who spent its CPU during a run (read from /proc; Linux only)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def machine_line() -> str:
    mem_gb = 0.0
    with open("/proc/meminfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    import litestar
    import uvicorn

    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout.split(" [")[0]
    return (
        f"machine: {cpu_model()}, {CORES} cores, {mem_gb:.0f} GB RAM, {platform.machine()}, Python "
        f"{platform.python_version()}, Litestar {litestar.__version__.formatted(short=True)}, uvicorn "
        f"{uvicorn.__version__}, {wrk.strip()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def code_line(root: Path) -> str:
    """Which code was measured (read-only git queries): the commit, and whether the tree had changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    changed = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    n = len(changed.stdout.splitlines())
    return f"code: git {head.stdout.strip() or '?'}" + (f" with {n} changed or new files" if n else "")


def machine_busy() -> float:
    """CPU seconds the machine has spent on anything but idling, since boot."""
    with open("/proc/stat", encoding="ascii") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values[:8]) - idle) / TICK  # user..steal (guest time is already in user)


def children_cpu() -> float:
    """CPU seconds of this process's ended children (wrk, the load generator)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    """CPU seconds so far: the server's processes, the PostgreSQL backends of one database, Redis, the machine."""

    at: float
    busy: float
    client: float
    server: dict[int, float]
    backends: dict[int, float]
    redis: float


@dataclass
class CpuUse:
    """CPU seconds spent during one run, by whom."""

    elapsed: float
    server: float  # the uvicorn supervisor and its workers
    database: float  # PostgreSQL backends of the bench database (alive at the end: the app's pool keeps them)
    redis: float  # redis-server (shared with whatever else uses it)
    client: float  # wrk or the load generator
    others: float  # everything else on the machine
    per_process: list[float]  # the server's processes, busiest first

    @property
    def others_share(self) -> float:
        """The share of the machine other work took during the run."""
        return self.others / (self.elapsed * CORES)

    def busiest_share(self, workers: int) -> float:
        """The busiest worker's share of the workers' CPU (1/workers when the load is spread evenly)."""
        top = self.per_process[:workers]
        return top[0] / sum(top) if top and sum(top) > 0 else 0.0


def _stat(pid: str) -> tuple[str, list[str]] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            stat = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()


def snapshot(server_group: int, database: str | None) -> Snapshot:
    """CPU seconds of each process in ``server_group``, of PostgreSQL on ``database`` and of redis-server."""
    server: dict[int, float] = {}
    backends: dict[int, float] = {}
    redis = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or (found := _stat(entry)) is None:
            continue
        name, fields = found
        used = (int(fields[11]) + int(fields[12])) / TICK
        if int(fields[2]) == server_group:
            server[int(entry)] = used
        elif name == "redis-server":
            redis += used
        elif database and name == "postgres":
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    title = fh.read().decode("utf-8", "replace")
            except (FileNotFoundError, ProcessLookupError):
                continue
            if f" {database} " in title:
                backends[int(entry)] = used
    return Snapshot(time.monotonic(), machine_busy(), children_cpu(), server, backends, redis)


def cpu_between(before: Snapshot, after: Snapshot) -> CpuUse:
    per_process = sorted((t - before.server.get(pid, 0.0) for pid, t in after.server.items()), reverse=True)
    # Backends that ended during the run are missed (the postmaster's count of its ended children's CPU would
    # mix in every other database's on a shared server); the bench counts the sessions opened instead.
    database = sum(t - before.backends.get(pid, 0.0) for pid, t in after.backends.items())
    server, redis, client = sum(per_process), after.redis - before.redis, after.client - before.client
    others = max(0.0, after.busy - before.busy - server - database - redis - client)
    return CpuUse(after.at - before.at, server, database, redis, client, others, per_process)


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
        share = (busy1 - busy0) / ((t1 - t0) * CORES)
        busy0, t0 = busy1, t1
        calm = calm + 1 if share < 0.10 else 0
        if calm >= 2:
            return
    print(f"   the machine did not become quiet within {limit:.0f} s: measuring anyway", flush=True)
