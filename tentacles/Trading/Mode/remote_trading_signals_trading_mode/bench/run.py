"""`octobot-signals bench`: latency, fan-out, catch-up and memory figures on loopback.

Real sockets, a real hub (child process) and, for signal -> order, the real mode on the real
simulated exchange. Returns issue 4's --json shape.
"""
from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catchup import catch_up
from .fanout import fanout
from .hub import HubSubprocess
from .latency import signal_to_order
from .mode import describe as describe_mode_cpu
from .mode import mode_cpu
from .persistence import describe as describe_persistence
from .persistence import persistence_costs
from .replicas import fanout_replicas
from .stock import run_stock_subprocess, vs_stock

FD_HEADROOM = 256
TARGETS = {"signal_to_order_p99_ms": 5.0, "fanout_1000_p99_ms": 250.0, "catch_up_1000_s": 1.0}
VS_STOCK_TARGET = 1.2  # issue 12: our mode's CPU per bundle within 1.2x of the stock mode's, at 0 links


@dataclass(frozen=True)
class BenchOptions:
    samples: int = 200
    followers: list[int] = field(default_factory=lambda: [10, 100, 1000])
    catch_up: int = 1000
    rounds: int = 0  # signals per fan-out size; 0 = automatic (more rounds for fewer followers)
    mode_cpu: bool = False      # also measure the mode's CPU per bundle type
    mode_cpu_only: bool = False  # ...and nothing else (no hub)
    mode_samples: int = 200
    history_links: int = 100_000
    pg_replicas: int = 0  # > 0: also a fan-out across that many hub replicas on a throwaway PostgreSQL
    stock_zip: Path | None = None  # also measure the stock mode (its tentacles zip or .py) beside ours
    feed_gap_ms: float = 0.0  # idle before each measured bundle, as between live messages (0: back to back)
    octobot: Path | None = None  # also our follower bot beside the stock follower bot, live (an OctoBot 2.1.1 venv)
    octobot_signals: int = 50
    default_tentacles: Path | None = None


def rounds_for(options: BenchOptions) -> Callable[[int], int]:
    if options.rounds:
        return lambda _size: options.rounds
    return lambda size: max(50, min(200, 50000 // size))


def raise_fd_limit(needed: int) -> None:
    """1,000 followers = 1,000 sockets here (and as many in the hub): lift the soft limit if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def run_mode_cpu(options: BenchOptions, write: Callable[[str], None]) -> dict[str, Any]:
    """{"links_0": ..., "links_<N>": ...}: the same bundles with an empty map and with N links of history."""
    results: dict[str, Any] = {}
    for links in sorted({0, options.history_links}):
        gap = f", {options.feed_gap_ms:g} ms idle before each bundle" if options.feed_gap_ms else ""
        write(f"mode CPU per bundle: {options.mode_samples} rounds, {links:,} links of history{gap}")
        result = await mode_cpu(options.mode_samples, links, write, options.feed_gap_ms)
        for line in describe_mode_cpu(result):
            write(line)
        results[f"links_{links}"] = result["cpu_ms"]
        if links == 0 and options.stock_zip is not None:  # right after ours at 0 links: same machine state
            results.update(await run_stock(options.stock_zip, options.mode_samples, result["cpu_ms"], write,
                                           options.feed_gap_ms))
    if options.feed_gap_ms:
        results["feed_gap_ms"] = options.feed_gap_ms
    results["persistence"] = await persistence_costs(max(options.mode_samples, 200))
    for line in describe_persistence(results["persistence"]):
        write(line)
    return results


async def run_stock(stock_zip: Path, samples: int, ours: dict[str, Any], write: Callable[[str], None],
                    gap_ms: float = 0.0) -> dict[str, Any]:
    """{"stock": {kind: {"p50", "p99", "n"}}, "vs_stock": {kind: ratio}}: the stock mode in a child process."""
    write(f"stock mode CPU per bundle: {samples} rounds, same exchange and bundles, from {stock_zip}")
    stock = await run_stock_subprocess(stock_zip, samples, gap_ms)
    ratios = vs_stock(ours, stock)
    for kind, figure in stock.items():
        ratio = ratios[kind]
        verdict = "not measured" if ratio is None else f"{ratio:g}x, {_meets(ratio)} <= {VS_STOCK_TARGET:g}x"
        write(f"    {kind:<22} p50 {figure['p50']:>7} p99 {figure['p99']:>7}  "
              f"ours p50 {ours[kind]['p50']} = {verdict}")
    return {"stock": stock, "vs_stock": ratios}


async def run_octobot_live(options: BenchOptions, write: Callable[[str], None]) -> dict[str, Any]:
    from .octobot import (
        run_octobot_bench,  # real OctoBots and the local exchange: loaded only when asked
    )

    assert options.octobot is not None
    write(f"live: our follower bot beside the stock follower bot, {options.octobot_signals} signals")
    live = await run_octobot_bench(options.octobot, options.octobot_signals, options.default_tentacles, write)
    for name in ("ours", "stock"):
        if name in live:
            figures = live[name]
            write(f"  {name}: publish -> POST p50 {figures['create_to_post_ms']['p50']} ms, p99 "
                  f"{figures['create_to_post_ms']['p99']} ms; cancel -> DELETE p50 "
                  f"{figures['cancel_to_delete_ms']['p50']} ms; RSS idle {figures['idle']['rss_mb']} MB, copying "
                  f"{figures['copying']['rss_mb']} MB; CPU idle {figures['idle']['cpu_percent']} %, copying "
                  f"{figures['copying']['cpu_percent']} %")
    return live


def _meets(ratio: float) -> str:
    return "meets" if ratio <= VS_STOCK_TARGET else "MISSES"


async def run_bench(options: BenchOptions, write: Callable[[str], None]) -> dict[str, Any]:
    if options.mode_cpu_only:
        result = {"mode_cpu_ms": await run_mode_cpu(options, write)}
        if options.octobot is not None:
            result["octobot_live"] = await run_octobot_live(options, write)
        return result
    raise_fd_limit(max(options.followers, default=0) * 2 + FD_HEADROOM)  # the child hub inherits it
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="octobot-signals-bench-") as tmp:
        hub = HubSubprocess(Path(tmp) / "hub")
        await hub.start()
        try:
            idle_rss_kb = hub.rss_kb()
            write(f"hub (pid {hub.pid}) on {hub.base_url}, SQLite store, idle RSS {idle_rss_kb / 1024:.1f} MB")
            write(f"signal -> order: {options.samples} samples (publisher -> hub -> FollowerClient -> mode)")
            latency = await signal_to_order(hub.base_url, hub.admin_token, options.samples, Path(tmp) / "latency",
                                            write)
            write(f"  signal -> order: p50 {latency['p50']} ms, p99 {latency['p99']} ms (n={latency['n']})")
            write(f"fan-out to {', '.join(map(str, options.followers))} followers")
            fanout_results, rss_kb = await fanout(hub, options.followers, rounds_for(options), write)
            write(f"catch-up of {options.catch_up} missed signals")
            catch_up_s = await catch_up(hub.base_url, hub.admin_token, options.catch_up, Path(tmp) / "catchup", write)
        finally:
            hub.stop()
        replicas = None
        if options.pg_replicas:
            write(f"fan-out across {options.pg_replicas} hub replicas on PostgreSQL")
            replicas = await fanout_replicas(options.followers, options.pg_replicas, rounds_for(options),
                                             Path(tmp) / "replicas", write)
    result: dict[str, Any] = {
        "signal_to_order_ms": latency,
        "fanout": fanout_results,
        "catch_up_1000_s": round(catch_up_s, 3),
        "rss_per_idle_follower_kb": None if rss_kb is None else round(rss_kb, 1),
        "hub_idle_rss_kb": idle_rss_kb,
    }
    if replicas is not None:
        result["fanout_replicas"] = replicas
    if options.mode_cpu:
        result["mode_cpu_ms"] = await run_mode_cpu(options, write)
    if options.octobot is not None:
        result["octobot_live"] = await run_octobot_live(options, write)
    write(f"bench done in {time.monotonic() - started:.1f} s")
    return result


def target_lines(result: dict[str, Any]) -> list[str]:
    """Targets from issues 4 and 12, reported (never asserted)."""
    lines: list[str] = []
    if "signal_to_order_ms" in result:  # not with --mode-cpu-only
        p99 = result["signal_to_order_ms"]["p99"]
        lines.append(_verdict("signal -> order p99", p99, TARGETS["signal_to_order_p99_ms"], "ms"))
        for entry in result["fanout"]:
            if entry["followers"] == 1000:
                lines.append(_verdict("1,000-follower fan-out p99", entry["p99_ms"], TARGETS["fanout_1000_p99_ms"],
                                      "ms"))
        lines.append(_verdict("catch-up", result["catch_up_1000_s"], TARGETS["catch_up_1000_s"], "s"))
    return lines + _vs_stock_lines(result.get("mode_cpu_ms", {}).get("vs_stock"))


def _vs_stock_lines(ratios: dict[str, float | None] | None) -> list[str]:
    """Issue 12's target, one line per bundle type (only when the stock mode was measured)."""
    lines: list[str] = []
    for kind, ratio in (ratios or {}).items():
        name = f"mode CPU {kind} vs stock (0 links, p50)"
        if ratio is None:
            lines.append(f"{name}: not measured (target <= {VS_STOCK_TARGET:g}x)")
        else:
            lines.append(f"{name}: {ratio:g}x {_meets(ratio)} the target <= {VS_STOCK_TARGET:g}x")
    return lines


def _verdict(name: str, value: float | None, target: float, unit: str) -> str:
    if value is None:
        return f"{name}: not measured (target <= {target:g} {unit})"
    mark = "meets" if value <= target else "MISSES"
    return f"{name}: {value:g} {unit} {mark} the target <= {target:g} {unit}"
