"""Hub limits (issue 10): connections per follower token, publishes per strategy per minute, failed
authentications per address; each refusal is clear and the hub keeps serving everyone else."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from hub_helpers import admin_create_follower, admin_create_strategy, auth, publish, running_hub, ws_connect
from octobot_signals.core import protocol
from octobot_signals.feed.publisher_client import RETRYABLE_NACK_PREFIXES
from octobot_signals.hub.limits import Limits, LimitSettings
from octobot_signals.hub.server import HubHandle


@pytest_asyncio.fixture
async def hub(tmp_path: Path) -> AsyncIterator[HubHandle]:
    async with running_hub(tmp_path / "hub") as handle:
        handle.state.limits = Limits(LimitSettings(connections_per_token=2, publishes_per_minute=3,
                                                   failed_auths_per_window=4, failed_auth_window_s=60))
        yield handle


async def _upgrade_status(session: aiohttp.ClientSession, hub: HubHandle, token: str) -> tuple[int, dict]:
    url = hub.base_url.replace("http://", "ws://", 1) + protocol.WS_PATH
    try:
        ws = await session.ws_connect(url, headers=auth(token))
    except aiohttp.WSServerHandshakeError as err:
        return err.status, {}
    await ws.close()
    return 101, {}


async def test_a_follower_token_opens_a_bounded_number_of_connections(hub: HubHandle) -> None:
    assert hub.admin_token
    await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    other = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        first, second = await ws_connect(session, hub.base_url, token), await ws_connect(session, hub.base_url, token)
        async with session.get(hub.base_url + protocol.WS_PATH, headers={**auth(token), "Connection": "Upgrade",
                               "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as refused:
            body = await refused.json()
        assert refused.status == 429 and body["error"] == "too_many_connections", body
        assert "at most 2 open connections per follower token" in body["message"]
        assert (await _upgrade_status(session, hub, other))[0] == 101  # another token is not affected
        await first.close()
        for _ in range(50):  # the slot is given back when a connection ends
            await asyncio.sleep(0.05)
            if (await _upgrade_status(session, hub, token))[0] == 101:
                break
        else:
            pytest.fail("a closed connection never gave its slot back")
        await second.close()


async def test_a_strategy_publishes_a_bounded_number_per_minute(hub: HubHandle) -> None:
    assert hub.admin_token
    strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    other = await admin_create_strategy(hub.base_url, hub.admin_token, "s2")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        publisher = await ws_connect(session, hub.base_url, strategy["publish_secret"])
        answers = [await publish(publisher, strategy) for _ in range(4)]
        assert [a["type"] for a in answers] == ["ack", "ack", "ack", "nack"], answers
        assert answers[3]["message"].startswith("rate_limited: at most 3 publishes per minute for s1, retry in")
        assert answers[3]["message"].startswith(RETRYABLE_NACK_PREFIXES)  # our publisher retries it later
        assert (await publish(publisher, strategy))["type"] == "nack"  # the connection stays usable
        second = await ws_connect(session, hub.base_url, other["publish_secret"])
        assert (await publish(second, other))["type"] == "ack"  # per strategy, not global
        await publisher.close()
        await second.close()


async def test_an_address_that_keeps_failing_to_authenticate_is_refused_for_a_while(hub: HubHandle) -> None:
    assert hub.admin_token
    await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
    good = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        for attempt in range(4):  # wrong tokens, on the API and on /cable alike
            path = "/api/strategies" if attempt % 2 else protocol.WS_PATH
            async with session.get(hub.base_url + path, headers=auth(f"ft_wrong{attempt}")) as response:
                assert response.status == 401, await response.text()
        async with session.get(hub.base_url + "/api/strategies", headers=auth(good)) as response:
            body = await response.json()
        # even a right token is refused from this address until the window has passed
        assert response.status == 429 and body["error"] == "too_many_failed_auths", body
        assert "retry in" in body["message"]
        assert (await _upgrade_status(session, hub, good))[0] == 429


def test_the_windows_slide_and_memory_stays_bounded() -> None:
    now = [0.0]
    limits = Limits(LimitSettings(publishes_per_minute=2, failed_auths_per_window=2, failed_auth_window_s=10),
                    clock=lambda: now[0])
    assert limits.publish_retry_after("s") is None and limits.publish_retry_after("s") is None
    assert limits.publish_retry_after("s") == pytest.approx(60.0)
    now[0] = 60.5
    assert limits.publish_retry_after("s") is None
    limits.record_failed_auth("a")
    limits.record_failed_auth("a")
    assert limits.auth_retry_after("a") == pytest.approx(10.0 - (now[0] - 60.5))
    now[0] += 11
    assert limits.auth_retry_after("a") is None
    assert json.dumps(sorted(limits._failed)) == "[]"  # forgotten once its window is empty
