"""The leader pages' score board: the last computed results, served at once, refreshed in the background.

A page asks the board for a result by key (a wave's scores with their options, a wave's fieldwork
progress...). The first request computes it; every later one gets the stored result without touching
the responses. A background thread (started with the app, see `start_refresher`) checks each stored
result's wave every few seconds with one indexed query (`survey.results.scores.wave_freshness`) and recomputes
the results whose wave has new or changed responses, then swaps them in: recomputation never happens
on the request path, and a page shows the previous result (with its "computed at" time) meanwhile.
Results not asked for within ``keep_for`` seconds are dropped, so the refresher only works for pages
people read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine

from survey.results.scores import wave_freshness

log = logging.getLogger("sipas.leader")
T = TypeVar("T")


@dataclass
class _Entry:
    wave_code: str
    compute: Callable[[], Any]
    value: Any
    version: tuple[int, int, int] | None
    computed_at: float
    used_at: float
    max_age: float | None
    cost: float = 0.0  # seconds the last computation took


class Board:
    """Stored results by key, each tied to the wave whose responses it depends on."""

    def __init__(
        self,
        engine: Engine,
        *,
        max_entries: int = 256,
        keep_for: float = 3600.0,
        cost_factor: float = 5.0,
        min_interval: float = 0.0,
    ) -> None:
        self.engine = engine
        self.cost_factor = cost_factor
        self.min_interval = min_interval
        self.max_entries = max_entries
        self.keep_for = keep_for
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._computing = threading.RLock()  # one computation at a time: a burst of pages cannot pile them up
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, key: Hashable, compute: Callable[[], T], *, wave_code: str, max_age: float | None = None) -> T:
        """The stored result for ``key``; computed now (and stored) only the first time it is asked for."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                entry.used_at = now
                self._entries.move_to_end(key)
                value: T = entry.value
                return value
        with self._computing:
            with self._lock:  # another request may have computed it while this one waited
                entry = self._entries.get(key)
                if entry is not None:
                    found: T = entry.value
                    return found
            version = wave_freshness(self.engine, wave_code=wave_code)
            started = time.monotonic()
            value = compute()
            cost = time.monotonic() - started
        with self._lock:
            self._entries[key] = _Entry(wave_code, compute, value, version, time.monotonic(), now, max_age, cost)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value

    def computed_at(self, key: Hashable) -> float | None:
        with self._lock:
            entry = self._entries.get(key)
            return None if entry is None else entry.computed_at

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def refresh(self) -> int:
        """Recompute the stored results whose wave changed (or that are older than their ``max_age``).

        Returns how many were recomputed. Called by the background thread; safe to call from a test.
        """
        now = time.monotonic()
        with self._lock:
            for key in [k for k, e in self._entries.items() if now - e.used_at > self.keep_for]:
                del self._entries[key]
            items = list(self._entries.items())
        versions: dict[str, tuple[int, int, int] | None] = {}
        done = 0
        for key, entry in items:
            if self._stop.is_set():
                break
            if entry.wave_code not in versions:
                versions[entry.wave_code] = wave_freshness(self.engine, wave_code=entry.wave_code)
            version = versions[entry.wave_code]
            too_old = entry.max_age is not None and now - entry.computed_at > entry.max_age
            if version == entry.version and not too_old:
                continue
            # While citizens answer, the wave changes all day: an expensive result is refreshed at most once
            # per `cost_factor` times what it costs (a 30 s league table every 2.5 min), so the refresher
            # takes a bounded share of a worker's CPU however large the wave; and never more often than
            # `min_interval` (a minute by default: a burst of submissions must not keep every worker computing).
            if now - entry.computed_at < max(self.cost_factor * entry.cost, self.min_interval):
                continue
            try:
                with self._computing:
                    started = time.monotonic()
                    value = entry.compute()
                    entry.cost = time.monotonic() - started
            except Exception:  # a wave deleted or a questionnaire changed: forget the result, keep going
                log.exception("could not refresh %r; dropped", key)
                with self._lock:
                    self._entries.pop(key, None)
                continue
            with self._lock:
                if key in self._entries:
                    entry.value, entry.version, entry.computed_at = value, version, time.monotonic()
            done += 1
        return done

    def start(self, interval: float) -> None:
        """Refresh every ``interval`` seconds in a daemon thread, until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.refresh()
                except Exception:
                    log.exception("score refresher: a round failed")

        self._thread = threading.Thread(target=loop, name="sipas-score-refresher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


BOARD_STATE = "leader_board"
REFRESH_SECONDS = 10.0


def board_of(state: Any) -> Board:
    """The app's board (made on first use if the startup hook did not run, e.g. in a bare test app)."""
    board = state.get(BOARD_STATE) if hasattr(state, "get") else None
    if board is None:
        board = Board(state.engine)
        state[BOARD_STATE] = board
    assert isinstance(board, Board)
    return board


def start_refresher(app: Any) -> None:
    """``on_startup`` hook: the app's board and its background refresher, and (when the settings ask for
    it) the league tables of open waves computed in the background, so the first leader waits for none."""
    board = board_of(app.state)
    settings = app.state.get("settings")
    board.min_interval = float(getattr(settings, "score_refresh_seconds", 0.0))
    board.start(REFRESH_SECONDS)
    if settings is not None and getattr(settings, "prewarm_scores", False):
        threading.Thread(target=prewarm, args=(board,), name="sipas-score-prewarm", daemon=True).start()


def prewarm(board: Board) -> int:
    """Compute the default league table of every level of every open wave; returns how many were computed."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from sqlmodel import col

    from survey.db.models import Unit, UnitLevel, Wave, WaveStatus, WaveUnit
    from survey.errors import SipasError
    from survey.leader.services import scores

    with Session(board.engine) as session:
        pairs = session.execute(
            select(col(Wave.code), col(UnitLevel.code))
            .join(WaveUnit, col(WaveUnit.wave_id) == col(Wave.id))
            .join(Unit, col(Unit.id) == col(WaveUnit.unit_id))
            .join(UnitLevel, col(UnitLevel.id) == col(Unit.level_id))
            .where(col(Wave.status) == WaveStatus.open.value)
            .distinct()
        ).all()
    done = 0
    for wave_code, level in pairs:
        if board._stop.is_set():
            break
        try:
            scores(board, wave_code=wave_code, level=level)
            done += 1
        except SipasError as exc:  # e.g. a counter wave's questionnaire has no criteria: its pages say so
            log.info("prewarm: no league table for wave %s, level %s: %s", wave_code, level, exc.message)
        except Exception:
            log.warning("prewarm: wave %s, level %s failed", wave_code, level, exc_info=True)
    return done


def stop_refresher(app: Any) -> None:
    """``on_shutdown`` hook."""
    board = app.state.get(BOARD_STATE)
    if isinstance(board, Board):
        board.stop()
