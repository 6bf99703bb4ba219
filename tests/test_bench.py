"""`octobot-signals bench`: a short smoke run with tiny sizes (the real figures come from a full run)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "octobot_signals.cli.main"]


def run_cli(args: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


def test_bench_smoke_json_contract_and_cleanup(tmp_path: Path) -> None:
    proc = run_cli(["bench", "--json", "--samples", "20", "--followers", "3,10", "--catch-up", "50",
                    "--rounds", "10"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    # the original four figures, plus (added fields) the hub's idle RSS and the fan-out across 2 PostgreSQL replicas
    assert set(result) == {"signal_to_order_ms", "fanout", "catch_up_1000_s", "rss_per_idle_follower_kb",
                           "hub_idle_rss_kb", "fanout_replicas"}
    assert 10_000 < result["hub_idle_rss_kb"] < 200_000
    replicas = result["fanout_replicas"]
    assert (replicas["store"], replicas["replicas"]) == ("postgresql", 2)
    assert "skipped" not in replicas, replicas  # CI installs PostgreSQL's server binaries
    assert len(replicas["hub_idle_rss_kb"]) == 2
    assert [entry["followers"] for entry in replicas["fanout"]] == [3, 10]
    for entry in replicas["fanout"]:  # every follower, on either replica, got every signal
        assert entry["delivered_per_s"] > 0 and entry["p99_ms"] > 0

    latency = result["signal_to_order_ms"]
    assert set(latency) == {"p50", "p99", "n"}
    assert latency["n"] == 20  # every create was placed by the follower's mode
    assert 0 < latency["p50"] <= latency["p99"] < 5000

    assert [entry["followers"] for entry in result["fanout"]] == [3, 10]
    for entry in result["fanout"]:
        assert set(entry) == {"followers", "delivered_per_s", "p99_ms"}
        assert entry["delivered_per_s"] > 0 and entry["p99_ms"] > 0

    assert 0 < result["catch_up_1000_s"] < 60
    assert isinstance(result["rss_per_idle_follower_kb"], int | float)

    assert "signal->order: " in proc.stdout or "signal -> order:" in proc.stdout  # progress, not silence
    assert "catch-up: 50 missed signals applied in order" in proc.stdout
    pid = int(re.search(r"hub \(pid (\d+)\)", proc.stdout).group(1))  # type: ignore[union-attr]
    assert not Path(f"/proc/{pid}").exists()  # the child hub was stopped and reaped
    assert list(tmp_path.iterdir()) == []  # hub data, outbox, follower state: removed


def test_bench_unusable_arguments_exit_2(tmp_path: Path) -> None:
    proc = run_cli(["bench", "--followers", "ten"], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--followers" in proc.stderr
    proc = run_cli(["bench", "--samples", "0"], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--samples" in proc.stderr


def test_bench_mode_cpu_only_reports_each_bundle_type_with_and_without_history(tmp_path: Path) -> None:
    proc = run_cli(["bench", "--json", "--mode-cpu-only", "--mode-samples", "5", "--history-links", "2000"],
                   tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"mode_cpu_ms"}
    assert set(result["mode_cpu_ms"]) == {"links_0", "links_2000", "persistence"}  # persistence: added later
    persistence = result["mode_cpu_ms"]["persistence"]
    assert set(persistence) == {"round_trip", "write_ahead"}
    for figure in persistence.values():
        assert set(figure) == {"cpu_p50", "wall_p50", "n"} and figure["n"] >= 200
        assert figure["wall_p50"] > 0 and figure["cpu_p50"] >= 0
    for figures in (result["mode_cpu_ms"]["links_0"], result["mode_cpu_ms"]["links_2000"]):
        assert set(figures) == {"limit_create", "limit_cancel", "market_with_stop_loss", "stop_loss_cancel"}
        for figure in figures.values():
            assert set(figure) == {"p50", "p99", "n", "wall_p50"}
            assert figure["n"] == 5 and 0 < figure["p50"] <= figure["p99"] < 1000
    assert "WARNING" not in proc.stdout  # every bundle was applied (created / cancelled), none skipped
    assert list(tmp_path.iterdir()) == []  # the order map files are removed
    proc = run_cli(["bench", "--mode-cpu-only", "--history-links", "-1"], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--history-links" in proc.stderr


def test_bench_mode_cpu_feed_gap_idles_between_bundles_and_says_so(tmp_path: Path) -> None:
    proc = run_cli(["bench", "--json", "--mode-cpu-only", "--mode-samples", "3", "--history-links", "0",
                    "--feed-gap-ms", "2"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 ms idle before each bundle" in proc.stdout
    result = json.loads(proc.stdout.strip().splitlines()[-1])["mode_cpu_ms"]
    assert result["feed_gap_ms"] == 2.0  # added field, only when a gap was asked for
    assert {figure["n"] for figure in result["links_0"].values()} == {3}
    for bad in ("-1", "1001", "nan"):
        proc = run_cli(["bench", "--mode-cpu-only", "--feed-gap-ms", bad], tmp_path, timeout=30)
        assert proc.returncode == 2 and "--feed-gap-ms" in proc.stderr
    proc = run_cli(["bench", "--feed-gap-ms", "2"], tmp_path, timeout=30)  # only with --mode-cpu[-only]
    assert proc.returncode == 2 and "--feed-gap-ms needs --mode-cpu" in proc.stderr
