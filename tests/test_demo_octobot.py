"""`octobot-signals demo --octobot PATH` (issue 18.5): the loop with real OctoBot 2.1.1 bots, as a user runs it.

The command is run as a user types it, with OctoBot's venv and the default tentacles zip (offline machine):
it prints each follower's web UI, the copies as they arrive, the plain demo's summary (table and --json,
fields added only), then keeps the bots running until Ctrl-C, which stops everything it started.
Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from octobot_real import support
from octobot_real.webui import DEFAULT_TENTACLES_ZIP

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")
RUN_TIMEOUT_S = 400
PLAIN_DEMO_KEYS = {"published", "hub", "leader", "followers", "latency_ms"}
FOLLOWER_KEYS = {"name", "sizing", "portfolio_start", "last_applied_q", "duplicates", "copies", "skipped"}


def processes_in(folder_prefix: str) -> list[int]:
    """Pids whose working directory is under a folder of this demo's (its bots run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(folder_prefix):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_live_demo_with_real_octobots_until_ctrl_c() -> None:
    venv = support.octobot_venv()
    command = [sys.executable, "-m", "octobot_signals.cli.main", "demo", "--octobot", str(venv / "bin" / "OctoBot"),
               "--default-tentacles", str(DEFAULT_TENTACLES_ZIP), "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    summary = None
    deadline = time.monotonic() + RUN_TIMEOUT_S
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("{"):
                summary = json.loads(line)
            if "Ctrl-C stops everything" in line or time.monotonic() > deadline:
                break
        assert summary is not None, "\n".join(lines[-60:])
        web_uis = [f["web_ui"] for f in summary["followers"]]
        found = re.search(r"working folder (\S+) ", "\n".join(lines))
        assert found, "\n".join(lines[:5])
        work = found[1]
        running = processes_in(work)
        assert len(running) >= 2, "both follower OctoBots are still running while the demo holds"
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        rest, _ = process.communicate(timeout=90)
        lines.extend(rest.splitlines())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "\n".join(lines)
    assert process.returncode == 130, output[-3000:]
    assert "stopped: every bot, the hub and the exchange this demo started are gone" in output
    assert processes_in(work) == [], "a bot outlived the demo"
    assert not Path(work).exists()

    # each follower's web UI was printed, and the plain demo's summary shape is kept (fields added only)
    for url in web_uis:
        assert f"OctoBot web UI {url}" in output
    assert PLAIN_DEMO_KEYS <= set(summary)
    assert summary["published"] == 4 and summary["hub"]["last_q"] == 4
    assert [f["trading"] for f in summary["followers"]] == ["simulated", "real"]
    for follower in summary["followers"]:
        assert FOLLOWER_KEYS <= set(follower)
        assert follower["last_applied_q"] == 4 and follower["duplicates"] == 0 and follower["skipped"] == []
        copies = {c["leader_order_id"]: c for c in follower["copies"]}
        # 10 % of each follower's 1000 USDT at 30000 = 0.0033 BTC; entry-2 moved to 28800, then cancelled
        assert {k: Decimal(c["quantity"]) for k, c in copies.items()} == {
            "entry-1": Decimal("0.0033"), "tp-1": Decimal("0.0033"), "entry-2": Decimal("0.0033")}
        assert Decimal(copies["entry-2"]["price"]) == 28800 and copies["entry-2"]["status"] == "cancelled"
    # the real follower's orders reached the exchange: entry-1, entry-2, entry-2 again (OctoBot edits a HollaEx
    # order by cancelling and placing it anew) and the take-profit once entry-1 filled at 29400
    assert summary["exchange"]["orders_posted"] == 4, summary["exchange"]
    assert "follower-real| open orders in its web UI: " in output
