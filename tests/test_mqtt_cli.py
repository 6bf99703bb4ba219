"""The MQTT commands as a user runs them: `octobot-signals hub --mqtt-egress ... --mosquitto-dir ...` as a child
process (SIGKILLed and restarted: it resumes after the last saved q), `mosquitto-config`, and their refusals."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import aiohttp
from hub_helpers import (
    DEFAULT_ADMIN_TOKEN,
    HUB_CLI,
    HubProcess,
    admin_create_follower,
    admin_create_strategy,
    free_port,
    publish,
    ws_connect,
)
from mqtt_broker import (
    MosquittoProcess,
    Subscriber,
    assert_in_order,
    mqtt_identity,
    require_mosquitto,
    write_mosquitto_config,
)
from octobot_signals.hub.server import start_hub

CLI = [sys.executable, "-m", "octobot_signals.cli.main"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def hub_cli(data: Path, out: Path, hub_port: int) -> HubProcess:
    """`octobot-signals hub --mqtt-egress ... --mosquitto-dir ...`, as a user starts it."""
    return HubProcess(data, command=HUB_CLI, log_name="hub-cli.log",
                      extra_args=["--mqtt-egress", f"mqtt://127.0.0.1:{hub_port}", "--mosquitto-dir", str(out)])


async def test_hub_command_egress_resumes_after_kill_9(tmp_path: Path) -> None:
    require_mosquitto()
    data, out = tmp_path / "hub", tmp_path / "mosquitto"
    followers_port, hub_port = free_port(), free_port()
    hub = await start_hub("127.0.0.1", 0, data, admin_token=DEFAULT_ADMIN_TOKEN)
    try:
        strategy = await admin_create_strategy(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
        follower = await admin_create_follower(hub.base_url, DEFAULT_ADMIN_TOKEN, "s1")
    finally:
        await hub.stop()
    printed = await asyncio.to_thread(write_mosquitto_config, data, out, followers_port, hub_port)
    assert f"--mqtt-egress mqtt://127.0.0.1:{hub_port}" in printed and "osf_" not in printed
    for name in ("mosquitto.conf", "followers.acl", "hub.acl", "hub.passwd"):
        assert (out / name).stat().st_mode & 0o077 in (0, 0o040), name  # not world-readable
    with MosquittoProcess(out / "mosquitto.conf", [followers_port, hub_port]):
        cli = hub_cli(data, out, hub_port)
        await asyncio.to_thread(cli.start)
        sub: Subscriber | None = None
        try:
            identity = await mqtt_identity(cli.base_url, follower["token"])
            sub = Subscriber(followers_port, identity["username"], identity["topics"])
            sub.start()
            await asyncio.wait_for(sub.subscribed.wait(), 10)
            await asyncio.sleep(0.3)  # the egress connects in the background
            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, cli.base_url, strategy["publish_secret"])
                for _ in range(30):
                    assert (await publish(ws, strategy))["type"] == "ack"
                await sub.wait_for(30)
                await ws.close()
            await asyncio.sleep(0.2)  # the egress saves its position right after each PUBACK
            await asyncio.to_thread(cli.kill)
            await asyncio.to_thread(cli.start)
            async with aiohttp.ClientSession() as session:
                ws = await ws_connect(session, cli.base_url, strategy["publish_secret"])
                for _ in range(10):
                    assert (await publish(ws, strategy))["type"] == "ack"
                await sub.wait_for(40)
                await ws.close()
            await asyncio.sleep(0.3)
            assert assert_in_order(sub.qs(), 1, 40) == 0, sub.qs()
        finally:
            if sub is not None:
                await sub.stop()
            await asyncio.to_thread(cli.terminate)
    log = (data / "hub-cli.log").read_text()
    assert follower["token"] not in log and identity["username"] not in log and "mqtt_hub_password" not in log


def test_refusals_name_the_field(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    result = _cli("hub", "--data", str(data), "--port", "0", "--mqtt-egress", "mqtt://hub:pw@127.0.0.1:1884")
    assert result.returncode == 2 and "--mqtt-egress: no credentials" in result.stderr and "pw@" not in result.stderr
    result = _cli("hub", "--data", str(data), "--port", "0", "--mosquitto-dir", str(tmp_path / "missing"))
    assert result.returncode == 2 and "--mosquitto-dir" in result.stderr
    result = _cli("mosquitto-config", "--data", str(data))
    assert result.returncode == 2 and "--data: no hub store" in result.stderr
    data.mkdir()
    (data / "hub.sqlite3").touch()
    for args, field in ((["--listen", "0.0.0.0"], "--listen"), (["--hub-listen", "127.0.0.1:0"], "--hub-listen"),
                        (["--listen", "bad host:1883"], "--listen"), (["--user", "x\nlistener 1 0.0.0.0"], "user")):
        result = _cli("mosquitto-config", "--data", str(data), "--out", str(tmp_path / "o"), *args)
        assert result.returncode == 2 and field in result.stderr, (args, result.stderr)
