"""Reconnect pacing: the pure policy (feed/backoff.py ReconnectBackoff, with a seeded or scripted rng) and a real
hub process SIGKILLed and restarted several times in a row, after which the followers and the publisher (both
with their default 30 s cap) must be back within RESUME_BOUND_S.

The policy figures asserted here (outages of a few seconds cost about a second, a long outage stays paced, a herd
stays spread) are the ones the module doc and docs/chaos-run.md quote."""
from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hub_helpers import (
    HubProcess,
    admin_create_follower,
    admin_create_strategy,
    make_bundle,
    publish,
    ws_connect,
)
from octobot_signals.feed.backoff import STABLE_LINK_S, Backoff, LinkOutcome, ReconnectBackoff
from octobot_signals.feed.follower_client import FollowerClient
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.feed.state_store import FollowerState

RESUME_BOUND_S = 3.0  # after the last restart: the follower copies at most this late
MEASURE_WAIT_S = 12.0  # how long a failing run waits, to report how late it really was
CONNECT_COST_S = 0.005  # a refused connection on 127.0.0.1


class TopRng(random.Random):
    """Every draw at its upper bound: the worst case of full jitter, deterministic."""

    def uniform(self, a: float, b: float) -> float:
        return b


def reconnect_lag(backoff: Backoff | ReconnectBackoff, outage: float) -> tuple[float, int]:
    """(seconds from the hub's return to the next attempt, attempts made while it was down) for a link lost at 0."""
    now, attempts = 0.0, 0
    while True:
        now += backoff.next_delay()
        if now >= outage:
            return now - outage, attempts
        now += CONNECT_COST_S
        attempts += 1


# ---------------------------------------------------------------------------------------------- the policy


def test_the_ceiling_follows_the_outage_and_stays_under_the_cap() -> None:
    backoff = ReconnectBackoff(cap=30.0, rng=TopRng())
    delays = [backoff.next_delay() for _ in range(40)]
    assert delays[0] == 0.25  # a short jitter, not a stampede on the remaining replicas
    assert delays[1:5] == [1.0, 1.0, 1.0, 1.0]  # the floor while less than 4 s were waited
    waited = delays[0]
    for delay in delays[1:]:
        assert delay == pytest.approx(min(30.0, max(1.0, waited / 4)))
        waited += delay
    assert delays[-1] == 30.0 and max(delays) == 30.0


def test_after_a_short_outage_the_client_is_back_within_a_second_where_doubling_took_seconds() -> None:
    rng = random.Random(2026)
    for outage in (1.0, 2.0, 3.0, 4.0):
        lags = [reconnect_lag(ReconnectBackoff(rng=rng), outage)[0] for _ in range(2000)]
        assert max(lags) <= 1.0, outage
    # the old policy (doubling from 0.5 s, reset only by a working link) on a 6 s outage: often several seconds
    old = sorted(reconnect_lag(Backoff(base=0.5, cap=30.0, rng=rng), 6.0)[0] for _ in range(2000))
    new = sorted(reconnect_lag(ReconnectBackoff(rng=rng), 6.0)[0] for _ in range(2000))
    assert old[int(0.9 * len(old))] > 5.0 and new[-1] <= 1.5


def test_the_wait_after_any_outage_is_bounded_by_a_quarter_of_it() -> None:
    rng = random.Random(7)
    for outage in (8.0, 15.0, 40.0, 90.0, 300.0):
        for _ in range(300):
            lag, _ = reconnect_lag(ReconnectBackoff(rng=rng), outage)
            assert lag <= min(30.0, max(1.0, outage / 4)), outage


def test_a_hub_that_stays_down_is_not_hammered() -> None:
    rng = random.Random(11)
    minute = [reconnect_lag(ReconnectBackoff(rng=rng), 60.0)[1] for _ in range(300)]
    ten = [reconnect_lag(ReconnectBackoff(rng=rng), 600.0)[1] for _ in range(300)]
    assert 25 <= sum(minute) / len(minute) <= 40 and max(minute) <= 60  # about one attempt per 2 s, first minute
    assert sum(ten) / len(ten) <= 80  # at the cap: 4 a minute, as before
    backoff = ReconnectBackoff(rng=rng)
    for _ in range(200):
        backoff.next_delay()
    later = [backoff.next_delay() for _ in range(2000)]
    assert max(later) <= 30.0 and 13.5 <= sum(later) / len(later) <= 16.5  # full jitter under the cap


@pytest.mark.parametrize(("outage", "window"), [(3.0, 1.0), (60.0, 15.0)])
def test_a_herd_cut_off_by_one_restart_comes_back_spread_over_the_window(outage: float, window: float) -> None:
    rng = random.Random(3)
    lags = [reconnect_lag(ReconnectBackoff(rng=rng), outage)[0] for _ in range(4000)]
    assert max(lags) <= window
    # the next attempts of a herd in jittered sleeps thin out over the window (densest at once, none at its end)
    buckets = Counter(int(lag / (window / 10)) for lag in lags)
    assert max(buckets.values()) <= 0.25 * len(lags)  # no tenth of the window gets more than a quarter
    assert sorted(lags)[len(lags) // 2] >= window / 5


def test_a_link_that_worked_starts_the_next_outage_afresh() -> None:
    backoff = ReconnectBackoff(rng=TopRng())
    for _ in range(30):
        backoff.next_delay()
    backoff.link_ended(LinkOutcome(welcomed_at=100.0, worked=True), now=100.1)
    assert backoff.next_delay() == 0.25 and backoff.attempts == 1


def test_a_greeted_link_counts_as_working_only_once_it_stayed_up() -> None:
    backoff = ReconnectBackoff(rng=TopRng())
    for _ in range(30):
        backoff.next_delay()
    high = backoff.ceiling()
    # welcomed then dropped at once (a hub that accepts and falls over): the outage goes on
    backoff.link_ended(LinkOutcome(welcomed_at=100.0), now=100.0 + STABLE_LINK_S / 2)
    assert backoff.ceiling() == high
    backoff.link_ended(LinkOutcome(welcomed_at=100.0), now=100.0 + STABLE_LINK_S)
    assert backoff.ceiling() == 0.25
    backoff.link_ended(LinkOutcome(), now=200.0)  # never reached the hub: nothing changes
    assert backoff.ceiling() == 0.25


def test_a_hub_that_says_no_is_not_hurried() -> None:
    backoff = ReconnectBackoff(rng=TopRng())
    ceilings = []
    for _ in range(6):
        # a rejected subscription on a link that had worked: the refusal wins
        backoff.link_ended(LinkOutcome(welcomed_at=0.0, worked=True, refused=True), now=0.1)
        ceilings.append(backoff.next_delay())
    assert ceilings == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    backoff.healthy()
    assert backoff.ceiling() == 0.25 and backoff.refusals == 0


def test_small_caps_bound_every_wait() -> None:
    backoff = ReconnectBackoff(cap=0.2, rng=TopRng())
    backoff.refused()
    assert {backoff.next_delay() for _ in range(20)} == {0.2}
    with pytest.raises(ValueError):
        ReconnectBackoff(cap=0)
    with pytest.raises(ValueError):
        ReconnectBackoff(ratio=0)


# ---------------------------------------------------------------------------------------------- a real hub


class Arrivals:
    """A follower handler noting when each q arrived."""

    def __init__(self) -> None:
        self.at: dict[int, float] = {}

    async def __call__(self, message: dict[str, Any]) -> None:
        self.at.setdefault(int(message["q"]), time.monotonic())


async def _wait_all(done: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


async def test_followers_and_publisher_are_back_soon_after_repeated_hub_kills(tmp_path: Path) -> None:
    """Four SIGKILLs in a row, the hub up only 0.3 s between them (the clients mostly miss it): ~7 s of outage.
    Doubling from 0.5 s reaches 8-16 s ceilings by then: the followers (default 30 s cap) would copy seconds late."""
    hub = HubProcess(tmp_path / "hub")
    await asyncio.to_thread(hub.start)
    states = [FollowerState(tmp_path / f"f{index}") for index in range(4)]
    arrivals = [Arrivals() for _ in states]
    followers: list[FollowerClient] = []
    outbox = Outbox(tmp_path / "outbox")
    publisher: PublisherClient | None = None
    try:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, "s1")
        for state, handler in zip(states, arrivals, strict=True):
            token = (await admin_create_follower(hub.base_url, hub.admin_token, "s1"))["token"]
            followers.append(FollowerClient(hub.base_url, token, state))
            followers[-1].subscribe("s1", handler)
            await followers[-1].start()
        await asyncio.gather(*(f.wait_until_subscribed(10.0) for f in followers))
        publisher = PublisherClient(hub.base_url, strategy["publish_secret"], "s1", outbox)
        await publisher.start()
        await publisher.publish(make_bundle("s1", tag="before"))
        assert await publisher.flush(10.0)
        for cycle in range(4):
            await asyncio.to_thread(hub.kill)
            await publisher.publish(make_bundle("s1", tag=f"down{cycle}"))  # pending through the outages
            await asyncio.sleep(0.5)
            await asyncio.to_thread(hub.start)
            if cycle < 3:
                await asyncio.sleep(0.3)
        back = time.monotonic()
        flushed = asyncio.ensure_future(_flushed_at(publisher))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            ws = await ws_connect(session, hub.base_url, strategy["publish_secret"])
            ack = await publish(ws, strategy, bundle=make_bundle("s1", tag="after"))
            await ws.close()
        assert ack["type"] == "ack", ack
        await _wait_all(lambda: all(ack["q"] in a.at for a in arrivals), MEASURE_WAIT_S)
        flushed_at = await flushed
        lags = [round(a.at[ack["q"]] - back, 2) if ack["q"] in a.at else None for a in arrivals]
        publisher_lag = None if flushed_at is None else round(flushed_at - back, 2)
        report = f"follower lags {lags} s, publisher lag {publisher_lag} s after the last restart"
        print(report)
        assert all(lag is not None and lag <= RESUME_BOUND_S for lag in lags), report
        assert publisher_lag is not None and publisher_lag <= RESUME_BOUND_S, report
    finally:
        for follower in followers:
            await follower.stop()
        if publisher is not None:
            await publisher.stop()
        outbox.close()
        for state in states:
            state.close()
        await asyncio.to_thread(hub.terminate)


async def _flushed_at(publisher: PublisherClient) -> float | None:
    return time.monotonic() if await publisher.flush(MEASURE_WAIT_S) else None
