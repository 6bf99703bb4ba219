"""Login throttling and failed-authentication limits over real sockets (issue 17, items 2, 4 and 5).

- concurrent guesses are counted before their password is checked (no race past the limit);
- `GET /api/mqtt` goes through the API's failed-authentication limiter;
- bad guesses from one address never lock the owner (or the operator) out from another address.

The hub listens on 127.0.0.1; a client whose socket is bound to 127.0.0.2 is "another address" (Linux
routes the whole 127.0.0.0/8 to loopback, and the hub takes the TCP peer as the client's address).
"""
from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hub_helpers import admin_create_follower, admin_create_strategy, auth, running_hub
from octobot_signals.hub.limits import LimitSettings
from octobot_signals.hub.mqtt_runtime import MqttSettings
from octobot_signals.hub.server import HubHandle, start_hub
from octobot_signals.hub.web import pages_account
from octobot_signals.hub.web.context import WEB_KEY
from octobot_signals.hub.web.passwords import hash_password
from octobot_signals.hub.web.throttle import (
    MAX_FAILURES_PER_ACCOUNT,
    MAX_FAILURES_PER_ADDRESS,
    Attempt,
    LoginThrottle,
    Refusal,
)

PASSWORD = "correct horse battery"
ATTACKER = "127.0.0.1"
OWNER = "127.0.0.2"
TIMEOUT = aiohttp.ClientTimeout(total=60)


@dataclass
class WebClient:
    """One visitor from one source address, with its cookies (the CSRF double-submit cookie)."""

    base: str
    session: aiohttp.ClientSession

    @classmethod
    def open(cls, hub: HubHandle, address: str) -> WebClient:
        connector = aiohttp.TCPConnector(local_addr=(address, 0), limit=100)
        # unsafe=True: aiohttp's jar otherwise drops cookies set by an IP address host
        session = aiohttp.ClientSession(timeout=TIMEOUT, connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True))
        return cls(hub.base_url, session)

    async def csrf(self, path: str) -> str:
        async with self.session.get(self.base + path) as resp:
            match = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert match, path
        return match.group(1)

    async def post(self, path: str, form: dict[str, str]) -> int:
        async with self.session.post(self.base + path, data=form, allow_redirects=False) as resp:
            await resp.read()
            return resp.status

    async def login(self, username: str, password: str, csrf: str | None = None) -> int:
        form = {"username": username, "password": password, "csrf": csrf or await self.csrf("/login")}
        return await self.post("/login", form)

    async def operator_login(self, token: str) -> int:
        return await self.post("/operator/login", {"admin_token": token, "csrf": await self.csrf("/operator/login")})


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        yield handle


@pytest.fixture
async def clients(hub: HubHandle) -> AsyncIterator[Callable[[str], WebClient]]:
    opened: list[WebClient] = []

    def make(address: str) -> WebClient:
        opened.append(WebClient.open(hub, address))
        return opened[-1]

    yield make
    for client in opened:
        await client.session.close()


async def create_account(hub: HubHandle, username: str) -> None:
    password_hash = await hash_password(PASSWORD)
    await hub.state.store.run(lambda db: db.create_account(f"acc_{username}", username, password_hash, None,
                                                           time.time()))


def throttle_of(hub: HubHandle) -> LoginThrottle:
    return hub._runner.app[WEB_KEY].throttle


def count_password_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords the login handler sent to argon2, in order."""
    checked: list[str] = []
    real: Callable[[str | None, str], Awaitable[bool]] = pages_account.verify_password

    async def counting(password_hash: str | None, password: str) -> bool:
        checked.append(password)
        return await real(password_hash, password)

    monkeypatch.setattr(pages_account, "verify_password", counting)
    return checked


# ---- item 2: concurrent guesses ------------------------------------------------------------------------

async def test_concurrent_guesses_are_counted_before_their_password_is_checked(
        hub: HubHandle, clients: Callable[[str], WebClient], monkeypatch: pytest.MonkeyPatch) -> None:
    await create_account(hub, "dora")
    checked = count_password_checks(monkeypatch)
    attacker = clients(ATTACKER)
    csrf = await attacker.csrf("/login")
    guesses = [PASSWORD if index == 40 else f"wrong password {index}" for index in range(50)]
    statuses = await asyncio.gather(*(attacker.login("dora", guess, csrf) for guess in guesses))
    # Only the first <limit> attempts reach argon2; the others are refused before any check.
    assert len(checked) <= MAX_FAILURES_PER_ACCOUNT, (len(checked), statuses)
    assert sum(status != 429 for status in statuses) <= MAX_FAILURES_PER_ACCOUNT, statuses
    assert 303 not in statuses, statuses  # the right password, 41st in line, never got checked


async def test_concurrent_guesses_at_many_accounts_stop_at_the_address_limit(
        hub: HubHandle, clients: Callable[[str], WebClient], monkeypatch: pytest.MonkeyPatch) -> None:
    checked = count_password_checks(monkeypatch)
    attacker = clients(ATTACKER)
    csrf = await attacker.csrf("/login")
    statuses = await asyncio.gather(*(attacker.login(f"user{index}", "wrong password", csrf) for index in range(40)))
    assert len(checked) <= MAX_FAILURES_PER_ADDRESS, (len(checked), statuses)
    assert statuses.count(429) >= 40 - MAX_FAILURES_PER_ADDRESS, statuses


# ---- item 5: a lockout nobody can impose from elsewhere ------------------------------------------------

async def test_bad_guesses_from_one_address_do_not_lock_the_owner_out_from_another(
        hub: HubHandle, clients: Callable[[str], WebClient]) -> None:
    await create_account(hub, "dora")
    throttle_of(hub).slow_down_s = 0.3  # keep the test quick; the delay itself is checked below
    attacker, owner = clients(ATTACKER), clients(OWNER)
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert await attacker.login("dora", "wrong password") == 401
    assert await attacker.login("dora", PASSWORD) == 429  # that address is done with this account
    started = time.monotonic()
    assert await owner.login("dora", PASSWORD) == 303  # the owner, from elsewhere, gets in
    # ... after the account-wide slow-down: a cost an attacker can impose, never a refusal
    assert time.monotonic() - started >= 0.3
    assert await attacker.login("dora", PASSWORD) == 429  # the owner's login does not unlock the attacker


async def test_the_operator_token_is_never_locked_out_per_account(
        hub: HubHandle, clients: Callable[[str], WebClient]) -> None:
    assert hub.admin_token
    attacker, operator = clients(ATTACKER), clients(OWNER)
    for index in range(MAX_FAILURES_PER_ADDRESS):
        assert await attacker.operator_login(f"adm_wrong_{index}") == 401, index
    assert await attacker.operator_login(hub.admin_token) == 429  # only the guessing address's own limit
    assert await operator.operator_login(hub.admin_token) == 303


def reserved(outcome: Attempt | Refusal) -> Attempt:
    assert isinstance(outcome, Attempt), outcome
    return outcome


def test_a_reservation_is_released_by_a_success_and_the_window_slides() -> None:
    throttle = LoginThrottle(window_s=10, per_account=2, per_address=3, slow_down_after=2)
    first = reserved(throttle.begin("dora", "a", now=0))
    assert first.delay_s == 0
    throttle.succeeded(first)
    for _ in range(2):
        assert reserved(throttle.begin("dora", "a", now=1)).delay_s == 0
    assert throttle.begin("dora", "a", now=2) == Refusal("account", 9)  # reserved attempts count as failures
    assert reserved(throttle.begin("bob", "a", now=2)).delay_s == 0
    assert throttle.begin("carl", "a", now=2) == Refusal("address", 9)
    assert reserved(throttle.begin("dora", "b", now=2)).delay_s == throttle.slow_down_s  # slowed, not refused
    assert reserved(throttle.begin(None, "c", now=2)).delay_s == 0  # the operator: no account key
    assert reserved(throttle.begin("dora", "a", now=11.5)).delay_s == 0  # the window slid


# ---- item 4: /api/mqtt and the failed-authentication limiter -------------------------------------------

async def test_api_mqtt_counts_failed_authentications_like_every_route(tmp_path: Path) -> None:
    hub = await start_hub("127.0.0.1", 0, tmp_path / "hub", admin_token="adm_test_" + "y" * 40, mqtt=MqttSettings(),
                          limits=LimitSettings(failed_auths_per_window=3))
    try:
        assert hub.admin_token
        await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        good = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            for index in range(3):
                async with session.get(f"{hub.base_url}/api/mqtt", headers=auth(f"ft_wrong{index}")) as resp:
                    assert resp.status == 401, await resp.text()
            for path in ("/api/mqtt", "/api/strategies"):  # the same budget as the rest of the API
                async with session.get(hub.base_url + path, headers=auth(good)) as resp:
                    body = await resp.json()
                    assert resp.status == 429 and body["error"] == "too_many_failed_auths", (path, body)
    finally:
        await hub.stop()
