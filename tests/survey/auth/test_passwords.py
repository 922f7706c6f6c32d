"""The password policy against the shipped list of common and breached passwords, and the hashing bound."""

from __future__ import annotations

import gzip
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import TestClient

from survey.auth import passwords
from survey.auth.passwords import (
    CALENDAR,
    HAS_USERNAME,
    PLATFORM,
    TOO_COMMON,
    HashingBusy,
    HashingGate,
    common_passwords,
    configure_hashing,
    policy_problems,
)
from survey.i18n import gettext_for
from tests.conftest import StaffWorld, sign_in

ROOT = Path(__file__).resolve().parents[3]


def _messages(password: str, username: str = "ana") -> list[str]:
    return [p.message for p in policy_problems(password, username=username)]


def test_the_shipped_list_is_the_named_public_list() -> None:
    listed = common_passwords()
    assert len(listed) > 19_000
    assert {"password", "123456", "qwertyuiop", "iloveyou", "dragon", "anhyeuem", "matkhau"} <= listed
    notice = (ROOT / "survey" / "auth" / "common-passwords.NOTICE").read_text()
    assert "Royce Williams" in notice and "Django" in notice and "Redistribution and use" in notice
    with gzip.open(passwords.COMMON_PASSWORDS_FILE, "rt") as fh:
        assert sum(1 for _ in fh) == 19_640


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Summer2026!!", CALENDAR),  # the report's example
        ("summer 2026!!", CALENDAR),
        ("Winter-2025-#", CALENDAR),
        ("December2026#", CALENDAR),
        ("Mùa Đông 2026!!", CALENDAR),  # Vietnamese, with diacritics and spaces
        ("Tháng12năm2026", CALENDAR),
        ("Sipas2026!!!", PLATFORM),
        ("KhaoSat@2026!!", PLATFORM),
        ("P@ssw0rd2026!", TOO_COMMON),  # look-alike digits read as letters
        ("iloveyou1234", TOO_COMMON),
        ("Monkey!!123456", TOO_COMMON),
        ("dragondragon12", TOO_COMMON),  # a listed word said twice
        ("qwertyuiop12", TOO_COMMON),
        ("1234567890123", TOO_COMMON),  # a run
        ("abcabcabcabc", TOO_COMMON),  # a repeated block
        ("Anhyeuem2026!!", TOO_COMMON),  # a Vietnamese favourite
        ("matkhau@123456", TOO_COMMON),
        ("aaaaaaaaaaaaaa", TOO_COMMON),
    ],
)
def test_common_breached_and_calendar_passwords_are_refused(password: str, expected: str) -> None:
    assert _messages(password) == [expected]


@pytest.mark.parametrize(
    "password",
    [
        "a long enough test password",
        "correct horse battery staple",
        "Mật khẩu rất dài 2026",
        "kj3#Lm9!qP2z",
        "xe đạp đỏ ở ngã tư",
        "Trời mưa to, đường ngập 2026",
    ],
)
def test_good_passwords_pass(password: str) -> None:
    assert _messages(password) == []


def test_random_passwords_pass_and_the_username_is_refused() -> None:
    assert not [pw for pw in (secrets.token_urlsafe(12) for _ in range(2000)) if policy_problems(pw, username="x")]
    assert _messages("nguyenvana-2026!", username="nguyenvana") == [HAS_USERNAME]
    assert _messages("Nguyễn Văn A 2026!", username="nguyenvana") == [HAS_USERNAME]
    vi = gettext_for("vi")
    for message in (CALENDAR, PLATFORM, TOO_COMMON, HAS_USERNAME):
        assert vi(message) != message


# --- the hashing bound --------------------------------------------------------------------------------------


class SlowHasher:
    """Stands in for Argon2: counts how many computations run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def _work(self) -> None:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1

    def hash(self, password: str) -> str:
        self._work()
        return "$argon2id$fake"

    def verify(self, stored: str, password: str) -> bool:
        self._work()
        return True

    def check_needs_rehash(self, stored: str) -> bool:
        return False


def test_at_most_the_configured_number_of_hashes_run_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SlowHasher()
    monkeypatch.setattr(passwords, "_hasher", fake)
    configure_hashing(slots=2, wait_s=10)
    try:
        threads = [threading.Thread(target=passwords.verify_password, args=("$argon2id$x", "pw")) for _ in range(12)]
        threads += [threading.Thread(target=passwords.hash_password, args=("pw",)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert fake.most == 2
    finally:
        configure_hashing(slots=passwords.DEFAULT_SLOTS, wait_s=passwords.DEFAULT_WAIT_S)


def test_a_hash_that_waits_too_long_is_busy(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = SlowHasher()
    monkeypatch.setattr(passwords, "_hasher", fake)
    configure_hashing(slots=1, wait_s=0.01)
    errors: list[HashingBusy] = []

    def attempt() -> None:
        try:
            passwords.hash_password("pw")
        except HashingBusy as exc:
            errors.append(exc)

    try:
        threads = [threading.Thread(target=attempt) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        configure_hashing(slots=passwords.DEFAULT_SLOTS, wait_s=passwords.DEFAULT_WAIT_S)
    assert 1 <= len(errors) <= 3 and errors[0].status_code == 503


def test_the_async_gate_queues_without_threads_and_gives_up_after_its_wait() -> None:
    gate = HashingGate(slots=2, wait_s=0.3)
    running = {"now": 0, "most": 0}

    def work() -> str:
        running["now"] += 1
        running["most"] = max(running["most"], running["now"])
        time.sleep(0.05)
        running["now"] -= 1
        return "done"

    async def many() -> list[str | Exception]:
        results: list[str | Exception] = []

        async def one() -> None:
            try:
                results.append(await gate.run(work))
            except HashingBusy as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
        return results

    results = anyio.run(many)
    assert results == ["done"] * 8 and running["most"] == 2 and gate.in_use == 0
    slow = HashingGate(slots=1, wait_s=0.05)

    async def crowded() -> list[str | Exception]:
        results: list[str | Exception] = []

        async def one() -> None:
            try:
                results.append(await slow.run(_nap))
            except HashingBusy as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(one)
        return results

    outcome = anyio.run(crowded)
    assert sum(isinstance(r, HashingBusy) for r in outcome) == 2 and slow.in_use == 0


def _nap() -> str:
    time.sleep(0.3)
    return "slept"


# The peak resident size from /proc (VmHWM, this process's own): getrusage's ru_maxrss is inherited across
# fork and exec on Linux, so under a large test runner it starts at the runner's peak.
_MEMORY_SCRIPT = """
import sys, threading
from survey.auth import passwords
def peak_kib():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])
passwords.configure_hashing(slots=int(sys.argv[1]), wait_s=60)
stored = passwords.hash_password("a long enough test password")
base = peak_kib()
threads = [threading.Thread(target=passwords.verify_password, args=(stored, "a wrong password!!")) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(base // 1024, peak_kib() // 1024)
"""


def _peak_mib(slots: int) -> tuple[int, int]:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(slots)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    ).stdout.split()
    return int(out[0]), int(out[1])


def test_sixteen_verifications_at_once_hold_two_hashes_of_memory() -> None:
    base, bounded = _peak_mib(2)
    _, unbounded = _peak_mib(16)
    # Each Argon2 computation holds 64 MiB: two at once stay within ~150 MiB above the start, sixteen do not.
    assert bounded - base < 160, (base, bounded)
    assert unbounded - base > 400, (base, unbounded)


class _NoSlotFree(HashingGate):
    async def run(self, fn: object, *args: object) -> Any:
        raise HashingBusy()


def test_a_sign_in_that_finds_no_free_slot_gets_a_busy_page(staff: TestClient, staff_world: StaffWorld) -> None:
    app: Any = staff.app
    app.state.hashing = _NoSlotFree()
    response = sign_in(staff, staff_world.admin)
    assert response.status_code == 503
    assert "Lúc này có nhiều người đang đăng nhập" in response.text
    assert 'name="password"' in response.text  # the sign-in form, ready for the next try
