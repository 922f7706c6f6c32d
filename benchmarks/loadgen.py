"""Open-loop HTTP/1.1 load at a constant rate, latency measured from each request's intended send time.

    .venv/bin/python -m benchmarks.loadgen --port PORT --file LINES --rate 1000 --duration 10 [--method POST]
        [--connections 32] [--connection-life 4] [--xff-offset N] [--timeout 10]

Request ``i`` is due at ``t0 + i / rate`` whatever happened to the ones before it (a phone does not wait for
another phone's answer). It goes out on an idle keep-alive connection of a fixed pool; when none is idle it
waits in a queue, and its latency still counts from the moment it was due, so a server that falls behind
shows it in the figures (no coordinated omission). Answers are read by ``Content-Length``.

``LINES`` holds one request a line: the path, a tab, the form body (empty for GET); GET lines are used in
turn as often as needed, POST lines once each (the file must hold enough). Each request carries its own
``X-Forwarded-For`` client address, ``10.0.0.0/8`` counted from ``--xff-offset``: the generator plays the
reverse proxy in front of the app. Each connection closes after about ``--connection-life`` seconds and a
new one is opened, so connections come and go and spread over the server's worker processes.

Prints one line ``LOADGEN {json}``: answers by status, errors, latency percentiles in ms (from the intended
send time, and from the actual one), the largest lag of a send behind its due time while a connection was
idle, and the generator's own CPU seconds (uvloop when installed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import re
import resource
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)
CLOSE = re.compile(rb"\r\nconnection:[ \t]*close", re.IGNORECASE)
CHUNKED = re.compile(rb"\r\ntransfer-encoding:", re.IGNORECASE)
clock = time.perf_counter  # the event loop's own clock can be as coarse as a millisecond (uvloop)


def forwarded_for(index: int) -> str:
    """The ``index``-th client address of 10.0.0.0/8 (index 0 is 10.0.0.1); ``walk.lua`` counts the same way."""
    n = index + 1
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def read_lines(path: Path) -> list[tuple[str, str]]:
    lines = []
    for line in path.read_text(encoding="ascii").splitlines():
        target, _, body = line.partition("\t")
        lines.append((target, body))
    return lines


def build_requests(
    lines: list[tuple[str, str]], method: str, count: int, host: str, xff_offset: int
) -> list[tuple[bytes, bytes]]:
    """``count`` requests as (head without its final blank line, body): built before the clock starts."""
    if method == "POST" and len(lines) < count:
        raise SystemExit(f"{count} POST requests need as many lines; the file has {len(lines)}")
    out = []
    for i in range(count):
        target, body = lines[i % len(lines)]
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sipas-loadgen\r\nAccept: text/html\r\n"
            f"Accept-Encoding: gzip\r\nX-Forwarded-For: {forwarded_for(xff_offset + i)}\r\n"
        )
        raw_body = body.encode("ascii") if method == "POST" else b""
        if method == "POST":
            head += f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(raw_body)}\r\n"
        out.append((head.encode("ascii"), raw_body))
    return out


@dataclass
class Figures:
    due: list[float]
    sent_at: list[float]
    done_at: list[float]
    status: list[int]
    errors: dict[str, int] = field(default_factory=dict)
    max_idle_lag: float = 0.0
    connections_opened: int = 0


class Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request when the generator hands it one, reads the answer."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.current: int | None = None
        self.need: int | None = None
        self.closing = False
        self.retire_at = 0.0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        life = self.gen.connection_life
        self.retire_at = clock() + (random.uniform(0.5, 1.5) * life if life > 0 else float("inf"))
        self.gen.figures.connections_opened += 1
        self.gen.ready(self)

    def send(self, index: int) -> None:
        assert self.transport is not None
        head, body = self.gen.requests[index]
        self.current, self.need = index, None
        now = clock()
        self.closing = now >= self.retire_at
        self.gen.figures.sent_at[index] = now
        self.transport.write(head + (b"Connection: close\r\n\r\n" if self.closing else b"\r\n") + body)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.current is None:
            self.gen.error("answer without a request")
            return
        if self.need is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end])
            length = CONTENT_LENGTH.search(head)
            if length is None:
                self.gen.error("chunked answer" if CHUNKED.search(head) else "answer without Content-Length")
                length_value = 0
            else:
                length_value = int(length.group(1))
            self.need = end + 4 + length_value
            self.gen.figures.status[self.current] = int(head[9:12])
            self.closing = self.closing or CLOSE.search(head) is not None
        if len(self.buffer) < self.need:
            return
        del self.buffer[: self.need]
        index, self.current = self.current, None
        self.gen.answered(index)
        if self.closing:
            assert self.transport is not None
            self.transport.close()  # connection_lost opens the next one
        else:
            self.gen.ready(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.current is not None:
            self.gen.error("connection lost with a request in flight")
            self.gen.answered(self.current, failed=True)
            self.current = None
        self.gen.reopen(self)


class Generator:
    def __init__(self, args: argparse.Namespace, requests: list[tuple[bytes, bytes]]) -> None:
        self.loop = asyncio.get_running_loop()
        self.args = args
        self.requests = requests
        self.connection_life = args.connection_life
        n = len(requests)
        self.figures = Figures([0.0] * n, [0.0] * n, [0.0] * n, [0] * n)
        self.idle: deque[Connection] = deque()  # first in, first out: every connection is used in turn
        self.queue: deque[int] = deque()
        self.next_index = 0
        self.pending = n
        self.finished = asyncio.Event()
        self.stopping = False

    def error(self, kind: str) -> None:
        self.figures.errors[kind] = self.figures.errors.get(kind, 0) + 1

    def ready(self, conn: Connection) -> None:
        if self.queue:
            conn.send(self.queue.popleft())
        else:
            self.idle.append(conn)

    def answered(self, index: int, *, failed: bool = False) -> None:
        self.figures.done_at[index] = -1.0 if failed else clock()
        self.pending -= 1
        if self.pending == 0:
            self.finished.set()

    def reopen(self, conn: Connection) -> None:
        if conn in self.idle:
            self.idle.remove(conn)
        if not self.stopping:
            self.loop.create_task(self.connect())

    async def connect(self) -> None:
        try:
            await self.loop.create_connection(lambda: Connection(self), "127.0.0.1", self.args.port)
        except OSError:
            self.error("connect")
            if not self.stopping:
                self.loop.call_later(0.05, lambda: self.loop.create_task(self.connect()))

    def tick(self, start: float) -> None:
        now = clock()
        rate, n = self.args.rate, len(self.requests)
        while self.next_index < n and start + self.next_index / rate <= now:
            index = self.next_index
            self.figures.due[index] = start + index / rate
            self.next_index += 1
            if self.idle and not self.queue:
                self.figures.max_idle_lag = max(self.figures.max_idle_lag, now - self.figures.due[index])
                self.idle.popleft().send(index)
            else:
                self.queue.append(index)
        if self.next_index < n:
            self.loop.call_later(max(0.0, start + self.next_index / rate - clock()), self.tick, start)

    async def run(self) -> None:
        await asyncio.gather(*(self.connect() for _ in range(self.args.connections)))
        await asyncio.sleep(0.2)
        self.tick(clock() + 0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.finished.wait(), self.args.duration + self.args.timeout)
        self.stopping = True
        for conn in self.idle:
            if conn.transport is not None:
                conn.transport.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


def summary(fig: Figures, rate: float, cpu_s: float, wall_s: float) -> dict[str, Any]:
    done = [i for i, t in enumerate(fig.done_at) if t > 0]
    latency = sorted(1000 * (fig.done_at[i] - fig.due[i]) for i in done)
    service = sorted(1000 * (fig.done_at[i] - fig.sent_at[i]) for i in done)
    statuses: dict[str, int] = {}
    for i in done:
        statuses[str(fig.status[i])] = statuses.get(str(fig.status[i]), 0) + 1
    unanswered = sum(1 for t in fig.done_at if t == 0.0)
    failed = sum(1 for t in fig.done_at if t < 0)
    errors = dict(fig.errors)
    if unanswered:
        errors["timeout"] = unanswered
    first, last = (min(fig.due[i] for i in done), max(fig.done_at[i] for i in done)) if done else (0.0, 1.0)
    return {
        "rate": rate,
        "requests": len(fig.due),
        "answered": len(done),
        "failed": failed,
        "unanswered": unanswered,
        "answered_indices": [i for i in done if 200 <= fig.status[i] < 400],
        "achieved_rate": len(done) / max(1e-9, last - first),
        "statuses": statuses,
        "errors": errors,
        "latency_ms": {f"p{q:g}": percentile(latency, q) for q in (50, 90, 99, 99.9)} | {"max": max(latency or [0])},
        "service_ms": {f"p{q:g}": percentile(service, q) for q in (50, 99)},
        "max_idle_lag_ms": 1000 * fig.max_idle_lag,
        "connections_opened": fig.connections_opened,
        "cpu_s": cpu_s,
        "wall_s": wall_s,
    }


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    count = round(args.rate * args.duration)
    lines = read_lines(args.file)
    requests = build_requests(lines, args.method, count, f"127.0.0.1:{args.port}", args.xff_offset)
    gen = Generator(args, requests)
    cpu0, wall0 = own_cpu(), time.monotonic()
    await gen.run()
    return summary(gen.figures, args.rate, own_cpu() - cpu0, time.monotonic() - wall0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--file", type=Path, required=True, help="one request a line: path, tab, body")
    parser.add_argument("--method", choices=["GET", "POST"], default="GET")
    parser.add_argument("--rate", type=float, required=True, help="requests a second, on schedule")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--connection-life", type=float, default=4, help="seconds, on average; 0: the whole run")
    parser.add_argument("--xff-offset", type=int, default=0, help="the first client address's index in 10/8")
    parser.add_argument("--timeout", type=float, default=10, help="seconds after the last due time to wait")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(main_async(args))
    else:
        result = uvloop.run(main_async(args))
    print("LOADGEN " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
