"""The platform as it is deployed, in its own processes: for reliability tests and benchmarks.

``live_server(url)`` runs ``sipas serve`` (migrate, then uvicorn with ``--workers``) in a subprocess that
leads its own process group, on a free loopback port, waits until ``/healthz`` answers and every worker
has started, yields a ``LiveServer`` and kills the whole group on exit. ``LiveServer.kill()`` is the
power cut: SIGKILL to the supervisor and every worker at once, nothing flushed, nothing cleaned up.

``TcpProxy`` sits between the app and a database server so a test can take the database away (and give it
back on the same port) without stopping the real server, which other work on the machine may be using.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 30.0
SERVE = "from survey.cli import main; main()"  # exactly what the `sipas` console script runs


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def server_environment(database_url: str, base_url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment with every inherited SIPAS_* removed and a test configuration put in."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SIPAS_")}
    env.update(
        SIPAS_ENVIRONMENT="test",
        SIPAS_SECRET_KEY=secrets.token_urlsafe(48),
        SIPAS_DATABASE_URL=database_url,
        SIPAS_BASE_URL=base_url,
        SIPAS_PREWARM_SCORES="false",  # the servers under test are for submissions; nobody reads a league table
        # the tests' own requests come from this machine and are not what the rate limit is for (tests of the
        # limit set their own networks and send X-Forwarded-For through a trusted proxy)
        SIPAS_RATE_LIMIT_EXEMPT='["127.0.0.0/8", "::1/128"]',
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra or {})
    return env


@dataclass
class LiveServer:
    """A running ``sipas serve``: its address, its process group and its log."""

    base_url: str
    port: int
    workers: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_in_s: float = 0.0

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the supervisor and every worker at once (a crash, not a shutdown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        # The listening socket is gone once no process of the group holds it any more.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _accepts(self.port):
            time.sleep(0.05)

    def log(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _started_workers(log_path: Path) -> int:
    try:
        return log_path.read_text(errors="replace").count("Application startup complete")
    except OSError:
        return 0


@contextmanager
def live_server(
    database_url: str,
    *,
    workers: int = 2,
    port: int | None = None,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
) -> Iterator[LiveServer]:
    """``sipas serve --workers N`` on ``database_url``; yields once every worker is up, kills the group after.

    ``log_path`` receives the server's output (appended, so a restarted server's log follows the first).
    """
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    already = _started_workers(log_path)
    started = time.monotonic()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            cmd,
            cwd=log_path.parent,  # no stray .env from the working tree
            env=server_environment(database_url, base_url, env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches every worker
        )
    server = LiveServer(base_url=base_url, port=port, workers=workers, process=process, log_path=log_path)
    try:
        deadline = started + startup_timeout_s
        healthy = False
        while not (healthy and _started_workers(log_path) - already >= workers):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with code {process.returncode}:\n{server.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server was not up within {startup_timeout_s:.0f} s:\n{server.log()}")
            if not healthy:
                with contextlib.suppress(httpx.TransportError):
                    healthy = httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200
            time.sleep(0.05)
        server.started_in_s = time.monotonic() - started
        yield server
    finally:
        server.kill()


@dataclass
class TcpProxy:
    """A loopback TCP relay to ``target``; ``stop()`` refuses new connections and cuts open ones; ``freeze()``
    keeps accepting and keeps open connections open but relays nothing (a server that never answers) until
    ``thaw()``.

    It runs an asyncio loop in a daemon thread, so it works beside synchronous and asynchronous tests.
    ``start()`` after ``stop()`` listens again on the same port.
    """

    target_host: str
    target_port: int
    port: int = 0
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _server: asyncio.Server | None = field(default=None, init=False, repr=False)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set, init=False, repr=False)
    _flowing: asyncio.Event | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float = 10.0) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    @property
    def listening(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    def freeze(self) -> None:
        self._call(self._set_flowing(False))

    def thaw(self) -> None:
        self._call(self._set_flowing(True))

    async def _set_flowing(self, flowing: bool) -> None:
        event = self._event()
        if flowing:
            event.set()
        else:
            event.clear()

    def _event(self) -> asyncio.Event:
        if self._flowing is None:  # made on the proxy's own loop
            self._flowing = asyncio.Event()
            self._flowing.set()
        return self._flowing

    def close(self) -> None:
        if self._thread is None:
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._thread = None

    async def _start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, as when a database host goes away
        self._writers.clear()
        if server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flowing = self._event()
        await flowing.wait()
        try:
            up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while chunk := await src.read(65536):
                    await flowing.wait()
                    dst.write(chunk)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    try:
        proxy.start()
        yield proxy
    finally:
        proxy.close()
