"""Sign-in back-off: exponential per device and address, a known device untouched by strangers, no bypass by
cookies or X-Forwarded-For, and the staff device cookie cannot be forged."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import Engine

from survey.auth.sessions import COOKIE_NAME
from survey.auth.throttle import DEVICE_COOKIE, Attempt, LoginThrottle, device_id, new_device_cookie
from survey.limits import MemoryCounters, clients
from survey.settings import Settings
from tests.conftest import StaffWorld, make_account, make_settings, sign_in, staff_client


class Clock:
    def __init__(self) -> None:
        self.now = 5_000_000.0

    def __call__(self) -> float:
        return self.now


def _throttle(clock: Clock, **overrides: int) -> tuple[LoginThrottle, MemoryCounters]:
    counters = MemoryCounters(clock=clock)
    values = {"free_failures": 5, "free_failures_per_address": 20, "memory_s": 900, "max_delay_s": 900}
    values.update(overrides)
    return LoginThrottle(counters=counters, secret="s" * 40, **values), counters


@pytest.mark.anyio
async def test_the_wait_doubles_with_each_failure_up_to_the_limit() -> None:
    clock = Clock()
    throttle, _ = _throttle(clock, max_delay_s=60)
    attempt = Attempt(username="ana", address="203.0.113.9", device=None)
    waits = []
    for _ in range(12):
        assert await throttle.wait_for(attempt) is None  # each attempt comes once the last wait is over
        waits.append(await throttle.failed(attempt))
        clock.now += waits[-1] or 0
    assert waits == [None, None, None, None, 2, 4, 8, 16, 32, 60, 60, 60]
    assert await throttle.wait_for(attempt) is None
    await throttle.failed(attempt)
    assert await throttle.wait_for(attempt) == 60
    clock.now += 59
    assert await throttle.wait_for(attempt) == 1
    # Failures are forgotten a quiet memory_s after the last one: the next failure is free again.
    clock.now += 900
    assert await throttle.failed(attempt) is None


@pytest.mark.anyio
async def test_a_known_device_is_never_slowed_by_strangers() -> None:
    clock = Clock()
    throttle, _ = _throttle(clock)
    mine = Attempt(username="ana", address="198.51.100.7", device="my-laptop")
    await throttle.succeeded(mine)
    assert await throttle.known_device(mine)
    for i in range(200):  # strangers everywhere: many addresses, devices, or none
        stranger = Attempt(username="ANA ", address=f"203.0.113.{i % 250}", device=None if i % 2 else f"d{i}")
        await throttle.failed(stranger)
    assert await throttle.wait_for(Attempt(username="ana", address="203.0.113.1", device=None)) == 900
    assert await throttle.wait_for(mine) is None
    # The same laptop's own failures count in its own bucket only.
    for _ in range(5):
        await throttle.failed(mine)
    assert await throttle.wait_for(mine) == 2
    other_known = Attempt(username="ana", address="198.51.100.7", device="my-phone")
    await throttle.succeeded(other_known)
    assert await throttle.wait_for(other_known) is None
    # Knowing a device is per username: the laptop is a stranger for another account.
    assert not await throttle.known_device(Attempt(username="bao", address="198.51.100.7", device="my-laptop"))


@pytest.mark.anyio
async def test_success_clears_the_attempts_buckets_but_not_the_address() -> None:
    clock = Clock()
    throttle, _ = _throttle(clock, free_failures_per_address=3)
    for i in range(3):
        await throttle.failed(Attempt(username=f"guess{i}", address="203.0.113.5", device=None))
    someone = Attempt(username="ana", address="203.0.113.5", device="d1")
    assert await throttle.wait_for(someone) == 2  # the address waits, whoever comes from it
    clock.now += 2
    await throttle.succeeded(someone)
    await throttle.failed(Attempt(username="bao", address="203.0.113.5", device=None))
    assert await throttle.wait_for(Attempt(username="chi", address="203.0.113.5", device=None)) == 4


def test_device_cookies_are_signed() -> None:
    value = new_device_cookie("k" * 40)
    device = device_id("k" * 40, value)
    assert device and value.startswith(device + ".")
    assert device_id("another secret " * 3, value) is None
    assert device_id("k" * 40, device + ".0000") is None
    assert device_id("k" * 40, "my-laptop") is None and device_id("k" * 40, None) is None
    assert device_id("k" * 40, value + ".x") is None


@pytest.mark.parametrize(
    "forwarded",
    [
        ["1.2.3.4"],
        ["5.6.7.8"],
        ["9.9.9.9, 10.0.0.1"],
    ],
)
def test_rotating_x_forwarded_for_does_not_change_the_counted_address(forwarded: list[str]) -> None:
    trusted = ("127.0.0.1/32",)
    # From a client that is not a proxy the header is ignored altogether...
    assert clients.client_address("203.0.113.9", forwarded, trusted) == "203.0.113.9"
    # ...and behind the trusted proxy only the hop the proxy added counts, not what the client put before it.
    assert clients.client_address("127.0.0.1", [f"{forwarded[0]}, 203.0.113.9"], trusted) == "203.0.113.9"


def test_over_http_a_stranger_waits_and_the_owners_browser_signs_in(
    settings: Settings, engine: Engine, staff_world: StaffWorld
) -> None:
    counters = MemoryCounters(clock=Clock())
    account = make_account(engine, "officer", staff_world.district_id)
    with staff_client(settings, engine, counters=counters) as owner:
        assert sign_in(owner, account).status_code == 303  # this browser is now known for the account
        owner.post("/logout", data={"_csrf_token": owner.cookies.get("sipas_csrf") or ""})
        owner.cookies.delete(COOKIE_NAME)
        device_cookie = owner.cookies.get(DEVICE_COOKIE)
        assert device_cookie and device_id(settings.secret_key, device_cookie)
    with staff_client(settings, engine, counters=counters) as stranger:
        statuses = []
        for i in range(12):
            stranger.cookies.clear()  # a fresh device every time, and a forged X-Forwarded-For
            stranger.headers["x-forwarded-for"] = f"198.51.100.{i}"
            statuses.append(sign_in(stranger, account, password=f"guess number {i}").status_code)
        assert statuses[:4] == [400] * 4 and set(statuses[4:]) == {429}
        # A copied cookie value without its signature, or the owner's device id alone, does not help.
        stranger.cookies.set(DEVICE_COOKIE, device_cookie.split(".")[0] + ".forged", domain="testserver.local")
        assert sign_in(stranger, account).status_code == 429
    with staff_client(settings, engine, counters=counters) as owner_again:
        owner_again.cookies.set(DEVICE_COOKIE, device_cookie, domain="testserver.local")
        assert sign_in(owner_again, account).status_code == 303


def test_a_browser_without_a_device_cookie_gets_one(settings: Settings, engine: Engine) -> None:
    with staff_client(settings, engine) as c:
        first = c.get("/login")
        cookie = next(h for h in first.headers.get_list("set-cookie") if h.startswith(f"{DEVICE_COOKIE}="))
        assert "HttpOnly" in cookie and "Path=/" in cookie and "SameSite=lax" in cookie
        again = c.get("/login")
        assert not any(h.startswith(f"{DEVICE_COOKIE}=") for h in again.headers.get_list("set-cookie"))


def test_many_usernames_from_one_browser_make_that_browser_wait(
    db_url: str, engine: Engine, staff_world: StaffWorld
) -> None:
    settings = make_settings(db_url)
    with staff_client(settings, engine, counters=MemoryCounters(clock=Clock())) as c:
        statuses = [sign_in(c, f"nobody{secrets.token_hex(3)}", "some wrong password").status_code for _ in range(6)]
        assert statuses == [400, 400, 400, 400, 429, 429]
