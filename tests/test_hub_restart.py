"""The hub as a real subprocess: SIGKILL it mid-stream, restart it on the same data dir."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from hub_helpers import (
    HubProcess,
    admin_create_follower,
    admin_create_strategy,
    auth,
    make_bundle,
    publish,
    publish_command,
    recv_json,
    subscribe,
    ws_connect,
)
from octobot_signals.core import protocol


async def history(session: aiohttp.ClientSession, base_url: str, token: str, after: int = 0) -> list[dict[str, Any]]:
    async with session.get(f"{base_url}/api/strategies/s1/signals?after={after}&limit=5000", headers=auth(token)) as r:
        assert r.status == 200
        return await r.json()


async def test_sigkill_restart_keeps_sequence_and_replays_exactly_once(tmp_path: Path) -> None:
    proc = HubProcess(tmp_path / "hub")
    proc.start()
    try:
        private_key, public_key = protocol.generate_keypair()
        strategy = await admin_create_strategy(proc.base_url, proc.admin_token, "s1", public_key=public_key)
        token = (await admin_create_follower(proc.base_url, proc.admin_token, "s1"))["token"]
        acked: dict[str, int] = {}
        commands: list[tuple[str, str]] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            follower = await ws_connect(session, proc.base_url, token)
            await subscribe(follower, ["s1"])
            publisher = await ws_connect(session, proc.base_url, strategy["publish_secret"])
            for i in range(30):
                bundle = make_bundle("s1", tag=f"a{i}")
                ack = await publish(publisher, strategy, bundle=bundle, u=f"u-{i:03d}", private_key=private_key, d=1000.0 + i)
                assert ack["type"] == "ack", ack
                acked[ack["u"]] = ack["q"]
                commands.append(publish_command(strategy, bundle=bundle, u=f"u-{i:03d}", private_key=private_key,
                                                d=1000.0 + i))
            seen = []
            for _ in range(10):
                frame = await recv_json(follower)
                seen.append(frame["message"]["q"])
            assert seen == list(range(1, 11))
            # More messages in flight, not waited for, then a crash.
            for i in range(30, 40):
                bundle = make_bundle("s1", tag=f"a{i}")
                cmd = publish_command(strategy, bundle=bundle, u=f"u-{i:03d}", private_key=private_key, d=1000.0 + i)
                commands.append(cmd)
                await publisher.send_str(cmd[0])
            await asyncio.sleep(0.02)
            proc.kill()
            for ws in (publisher, follower):
                await ws.close()

        proc.start()  # same port, same data dir
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            journal = await history(session, proc.base_url, token)
            # Every acked message survived the crash, at its acked q; q is gapless.
            by_u = {m["u"]: m["q"] for m in journal}
            assert all(by_u.get(u) == q for u, q in acked.items())
            assert [m["q"] for m in journal] == list(range(1, len(journal) + 1))
            survived = len(journal)
            assert 30 <= survived <= 40
            # The follower resumes from what it had applied; the publisher re-sends everything.
            follower = await ws_connect(session, proc.base_url, token)
            await subscribe(follower, ["s1"], resume={"s1": 10})
            publisher = await ws_connect(session, proc.base_url, strategy["publish_secret"])
            for text, u in commands:
                await publisher.send_str(text)
                ack = await recv_json(publisher)
                assert ack["type"] == "ack" and ack["u"] == u, ack
                if u in acked:
                    assert ack["q"] == acked[u]  # duplicate: same ack, not journaled twice
                acked[u] = ack["q"]
            for i in range(40, 45):  # and new messages continue the sequence
                ack = await publish(publisher, strategy, bundle=make_bundle("s1", tag=f"a{i}"), u=f"u-{i:03d}",
                                    private_key=private_key, d=1000.0 + i)
                assert ack["q"] == i + 1, ack
                acked[ack["u"]] = ack["q"]
            received = []
            for _ in range(45 - 10):
                frame = await recv_json(follower)
                received.append(frame["message"])
            assert [m["q"] for m in received] == list(range(11, 46))
            assert [m["u"] for m in received] == [f"u-{i:03d}" for i in range(10, 45)]
            for message in received:
                assert protocol.parse_feed_message(message).verify(public_key)
            with_timeout = asyncio.wait_for(follower.receive(), 0.3)
            try:
                extra = await with_timeout
                assert extra.type == aiohttp.WSMsgType.TEXT and '"type":"ping"' in extra.data, extra
            except asyncio.TimeoutError:
                pass
            final = await history(session, proc.base_url, token)
            assert [m["q"] for m in final] == list(range(1, 46))
            assert sorted(m["u"] for m in final) == sorted(acked) and len({m["u"] for m in final}) == 45
            await publisher.close()
            await follower.close()
    finally:
        proc.terminate()


async def test_graceful_stop_and_admin_token_from_env(tmp_path: Path) -> None:
    with HubProcess(tmp_path / "hub", admin_token="adm_env_token_" + "z" * 30) as proc:
        await admin_create_strategy(proc.base_url, proc.admin_token, "s1")
        proc.terminate()
        assert proc.proc is not None and proc.proc.returncode == 0
        proc.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"{proc.base_url}/api/strategies", headers=auth(proc.admin_token)) as resp:
                assert resp.status == 200
                assert [s["id"] for s in await resp.json()] == ["s1"]
