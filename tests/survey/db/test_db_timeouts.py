"""A PostgreSQL address that accepts connections but never answers gives an error, not a hang."""

from __future__ import annotations

import socket
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from survey.db.engine import make_engine


def test_a_silent_server_gives_up_instead_of_hanging() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            held.append(conn)  # accepted, never answered

    threading.Thread(target=accept, daemon=True).start()
    engine = make_engine(f"postgresql+psycopg://postgres@127.0.0.1:{port}/nothing")
    outcome: list[BaseException | None] = []

    def connect() -> None:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            outcome.append(None)
        except BaseException as exc:  # recorded for the assertion below
            outcome.append(exc)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(timeout=60)  # the engine gives up after 5 s; 60 s only guards the test run against a hang
    listener.close()
    for conn in held:
        conn.close()
    engine.dispose()
    if worker.is_alive():
        pytest.fail("connecting to a silent server still waits after 60 s: no connect timeout")
    assert len(outcome) == 1 and isinstance(outcome[0], DBAPIError)
    assert "timeout" in str(outcome[0]).lower()
