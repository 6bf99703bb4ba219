"""`mosquitto-config` reads the store the hub really uses: the SQLite file in --data, or --store postgresql://."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from hub_helpers import admin_create_follower, admin_create_strategy
from octobot_signals.hub.server import start_hub
from pg_helpers import pg_server, store_url  # noqa: F401, F811  (fixtures)

CLI = [sys.executable, "-m", "octobot_signals.cli.main"]


async def test_the_acl_lists_the_followers_of_the_hubs_own_store(tmp_path: Path, store_url: str | None) -> None:  # noqa: F811
    data = tmp_path / "hub"
    hub = await start_hub("127.0.0.1", 0, data, admin_token="adm_test", store_url=store_url)
    try:
        await admin_create_strategy(hub.base_url, "adm_test", "s1")
        await admin_create_follower(hub.base_url, "adm_test", "s1")
    finally:
        await hub.stop()
    args = [*CLI, "mosquitto-config", "--data", str(data), "--out", str(tmp_path / "mq")]
    if store_url is not None:
        args += ["--store", store_url]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "(1 follower usernames" in result.stdout, result.stdout
    acl = (tmp_path / "mq" / "followers.acl").read_text()
    assert "topic read t/s1" in acl, acl


def test_a_bad_store_is_refused_by_name(tmp_path: Path) -> None:
    result = subprocess.run([*CLI, "mosquitto-config", "--data", str(tmp_path), "--store", "mysql://x"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and "--store: expected a postgresql:// URL" in result.stderr
