"""A follower bot (`octobot-signals follow`: the real mode on a simulated exchange, fed by a real hub on
127.0.0.1) killed with SIGKILL mid-stream and restarted applies every signal exactly once."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import signal_factory as sf
from hub_helpers import admin_create_follower, admin_create_strategy, running_hub
from octobot_signals.feed.outbox import Outbox
from octobot_signals.feed.publisher_client import PublisherClient
from octobot_signals.follower.order_map import OrderMap

STRATEGY = "live-strat"
N_SIGNALS = 24


class FollowerProcess:
    def __init__(self, hub_url: str, token: str, data: Path) -> None:
        self.args = [sys.executable, "-m", "octobot_signals.cli.main", "follow", "--hub", hub_url,
                     "--strategy", STRATEGY, "--data", str(data), "--portfolio", "USDT=100000",
                     "--price", "BTC/USDT=20000", "--json"]
        self.env = {**os.environ, "OCTOBOT_SIGNALS_FOLLOWER_TOKEN": token}
        self.lines: list[dict] = []
        self.proc: asyncio.subprocess.Process | None = None
        self.reader: asyncio.Task | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(*self.args, env=self.env, stdout=asyncio.subprocess.PIPE,
                                                         stderr=asyncio.subprocess.DEVNULL)
        self.reader = asyncio.create_task(self._read())
        await self.wait_for(lambda: any("following" in line for line in self.lines), 60)

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(json.loads(raw))

    def created(self) -> list[str]:
        return [line["order_id"] for line in self.lines if line.get("result") == "created"]

    def already_applied(self) -> list[str]:
        """Messages re-delivered after the kill that the follower had applied before dying."""
        return [line["order_id"] for line in self.lines
                if line.get("result") == "skipped" and "already applied" in (line.get("reason") or "")]

    def accounted(self) -> set[str]:
        return set(self.created()) | set(self.already_applied())

    async def wait_for(self, condition, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition():
            assert asyncio.get_running_loop().time() < deadline, self.lines[-5:]
            assert self.proc is not None and self.proc.returncode is None, "follower exited"
            await asyncio.sleep(0.05)

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        if self.reader is not None:
            await self.reader

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 30)
        if self.reader is not None:
            await self.reader


async def test_follower_killed_mid_stream_applies_every_signal_exactly_once(tmp_path):
    async with running_hub(tmp_path / "hub") as hub:
        strategy = await admin_create_strategy(hub.base_url, hub.admin_token, STRATEGY)
        token = (await admin_create_follower(hub.base_url, hub.admin_token, STRATEGY))["token"]
        publisher = PublisherClient(hub.base_url, strategy["publish_secret"], STRATEGY, Outbox(tmp_path / "pub"))
        await publisher.start()
        follower = FollowerProcess(hub.base_url, token, tmp_path / "follower")
        try:
            await follower.start()
            leader_ids = [f"L{i:03d}" for i in range(N_SIGNALS)]

            async def publish_all() -> None:
                for leader_id in leader_ids:
                    content = sf.order_content(order_id=leader_id, order_type="buy_limit", limit_price=19000.0,
                                               target_amount="1%", strategy=STRATEGY)
                    message = sf.message(sf.signal(content), strategy=STRATEGY)
                    await publisher.publish(message["s"])
                    await asyncio.sleep(0.03)

            publishing = asyncio.create_task(publish_all())
            await follower.wait_for(lambda: len(follower.created()) >= 6, 60)
            await follower.kill()  # mid-stream: the publisher keeps going while the follower is down
            first_run = follower.created()
            await follower.start()
            await publishing
            assert await publisher.flush(30)
            await follower.wait_for(lambda: len(follower.accounted()) >= N_SIGNALS, 60)
            await asyncio.sleep(0.5)  # anything applied twice would show up now
            created = follower.created()
            assert len(created) == len(set(created)), "no signal applied twice"
            assert sorted(follower.accounted()) == leader_ids, "every signal applied"
            # a message killed between its order and its report is re-delivered and recognised
            assert set(follower.already_applied()) <= set(first_run) | set(leader_ids[:len(first_run) + 2])
            assert len(first_run) < N_SIGNALS
            order_map = OrderMap.load(next((tmp_path / "follower").glob("order_map_*.sqlite3")))
            assert sorted(order_map.links) == leader_ids and not order_map.pending
            order_map.close_storage()
            # each copy was sized on the follower's own portfolio: 1% of 100000 USDT / 20000
            quantities = {Decimal(line["orders"][0]["quantity"]) for line in follower.lines
                          if line.get("result") == "created"}
            assert quantities == {Decimal("0.05")}
        finally:
            await follower.stop()
            await publisher.stop()
