"""A publisher (signals or performance) first started in an event loop that then closes works in the next one.

OctoBot 2.1.1 runs part of its start in an event loop it then closes: a task our bridge starts there is
cancelled with it, and a client that took "a task exists" for "running" never sent again (found live: the
DCA leader's performance reporter never reported). Real sockets: a hub on 127.0.0.1.
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from hub_helpers import DEFAULT_ADMIN_TOKEN, admin_create_strategy, free_port, make_bundle, running_hub
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.performance_outbox import PerformanceOutbox
from octobot_signals.feed.performance_publisher import PerformancePublisher
from octobot_signals.feed.performance_reporter import PerformanceReporter
from octobot_signals.feed.publisher_client import PublisherClient


def test_publisher_started_in_a_closed_loop_sends_from_the_next_one(tmp_path: Path) -> None:
    port = free_port()
    outbox = Outbox(tmp_path / "outbox")
    client = PublisherClient(f"http://127.0.0.1:{port}", "ps_not_yet", "s1", outbox)

    async def first_loop() -> None:  # no hub yet: the client starts, retries, and its loop goes away
        await client.start()
        await asyncio.sleep(0.2)
    asyncio.run(first_loop())

    async def second_loop() -> int:
        async with running_hub(tmp_path / "hub", port=port) as hub:
            strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
            client._secret = strategy["publish_secret"]
            await client.start()
            await client.publish(make_bundle("s1"))
            assert await client.flush(10), "nothing sent from the second loop"
            await client.stop()
            return client.stats.acked
    assert asyncio.run(second_loop()) == 1
    outbox.close()


def test_performance_reporter_started_in_a_closed_loop_runs_in_the_next_one(tmp_path: Path) -> None:
    publisher = PerformancePublisher("http://127.0.0.1:9", "ps_x", "s1", PerformanceOutbox(tmp_path))
    reporter = PerformanceReporter(publisher, lambda: None, check_hub=False, poll_s=0.05)

    async def first_loop() -> None:
        reporter.start()
        await asyncio.sleep(0.1)
    asyncio.run(first_loop())
    assert not reporter.running  # its loop closed under it

    async def second_loop() -> bool:
        reporter.start()
        await asyncio.sleep(0.2)
        running = reporter.running
        await reporter.stop()
        return running
    assert asyncio.run(second_loop())
