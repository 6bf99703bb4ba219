"""`octobot-signals bench --octobot PATH` (issue 18.6): our follower bot beside OctoBot's stock follower bot.

Both are real OctoBot 2.1.1 bots trading for real on the local exchange, on the same signals; the exchange's
request log is the clock. The figures are printed, never asserted against a target (machines are shared);
what is asserted is that both bots copied every signal and that the JSON has its fields. A SIGTERM stops
everything the bench started. Skipped only when OCTOBOT_SIGNALS_SKIP_REAL=1.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mqtt_broker import require_mosquitto
from octobot_real import support
from octobot_real.webui import DEFAULT_TENTACLES_ZIP

pytestmark = pytest.mark.skipif(support.skip_requested(),
                                reason="OCTOBOT_SIGNALS_SKIP_REAL=1: real OctoBot 2.1.1 tests skipped on request")
WORK_PREFIX = "/tmp/octobot-signals-bench-live-"


def bench_command(signals: int) -> list[str]:
    return [sys.executable, "-m", "octobot_signals.cli.main", "bench", "--mode-cpu-only", "--mode-samples", "1",
            "--history-links", "0", "--octobot", str(support.octobot_venv()), "--default-tentacles",
            str(DEFAULT_TENTACLES_ZIP), "--octobot-signals", str(signals), "--json"]


def bench_processes() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd").startswith(WORK_PREFIX):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_bench_octobot_ours_beside_the_stock_follower_bot() -> None:
    require_mosquitto()
    result = subprocess.run(bench_command(5), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])["octobot_live"]
    print("\n" + "\n".join(line for line in result.stdout.splitlines() if line.startswith("  ours")
                           or line.startswith("  stock")))
    assert figures["signals"] == 5 and figures["machine"]["cpus"] >= 1
    for name in ("ours", "stock"):
        bot = figures[name]
        assert bot["missed"] == 0, figures
        assert bot["create_to_post_ms"]["n"] == 5 and bot["cancel_to_delete_ms"]["n"] == 5
        assert 0 < bot["create_to_post_ms"]["p50"] <= bot["create_to_post_ms"]["p99"]
        for phase in ("idle", "copying"):
            assert bot[phase]["rss_mb"] > 50 and bot[phase]["cpu_percent"] >= 0
    assert bench_processes() == []


def test_bench_octobot_sigterm_stops_every_bot_it_started() -> None:
    require_mosquitto()
    process = subprocess.Popen(bench_command(50), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 300
        for line in process.stdout:
            lines.append(line)
            if "both bots following" in line or time.monotonic() > deadline:
                break
        assert len(bench_processes()) >= 2, "".join(lines[-30:])
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, "".join(lines[-30:]) + rest[-2000:]
    assert "bench stopped: everything it started is gone" in rest
    assert bench_processes() == []
