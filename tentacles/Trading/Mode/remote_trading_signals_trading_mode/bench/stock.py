"""Benchmark part 4, side by side: the STOCK RemoteTradingSignalsTradingMode's CPU per bundle type.

OctoBot's own mode (from its default tentacles zip, or its .py file) on the same offline simulated
exchange as ours, fed the same four bundle types, measured the same way: process CPU time around applying
one bundle, warm-up rounds discarded. Its producer only forwards signals and cannot be created on a
backtesting exchange manager, so the bundles go straight to its consumer's `handle_signal`, the stock
path from a parsed signal to exchange orders.

It runs in a child process (`python -m octobot_signals.bench.stock --zip PATH --samples N`, one JSON
line on stdout): OctoBot looks tentacle classes up by name, so the stock classes never share a process
with ours. The stock code is loaded from the given file at run time, never copied into this project.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import octobot_commons.signals as commons_signals

from ..cli.replay import quiet_octobot_logs
from ..demo.signal_bundles import BENCH_SYMBOL
from ..demo.stats import percentile, rounded
from ..simulator.sim_exchange import sim_exchange
from .mode import KINDS, WARMUP_ROUNDS, bench_spec, feed_gap, round_bundles

STOCK_MEMBER = "reference_tentacles/Trading/Mode/remote_trading_signals_trading_mode/remote_trading_signals_trading.py"
STOCK_CONSUMER = "RemoteTradingSignalsModeConsumer"
_PRIVATE_MODULE = "_octobot_signals_bench_stock_mode"
# Our mode's modules: none may be imported in the child process.
_OUR_MODE_MODULES = ("octobot_signals.remote_trading_signals_trading_mode", "octobot_signals.remote_trading_signals_trading")
# Prices and sizes as octobot-trading's publisher writes them (floats): the stock consumer reads
# `stop_price or limit_price`, and the string "0" our bench bundles carry would be truthy there.
_NUMERIC_FIELDS = ("quantity", "limit_price", "updated_limit_price", "stop_price", "updated_stop_price",
                   "current", "updated_current_price")
SUBPROCESS_TIMEOUT_S = 600.0


class StockBenchError(RuntimeError):
    """The stock mode could not be loaded or did not apply a bundle: its figures would mean nothing."""


def stock_source_problem(path: Path) -> str | None:
    """Why `path` cannot provide the stock mode (None when it can): a readable zip holding STOCK_MEMBER,
    or the stock .py file itself."""
    if not path.is_file():
        return "no such file"
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                if STOCK_MEMBER not in archive.namelist():
                    return f"the zip does not hold {STOCK_MEMBER}"
                return None
        text = path.read_text(encoding="utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile) as err:
        return f"cannot read it ({err})"
    if f"class {STOCK_CONSUMER}" not in text:
        return f"neither a tentacles zip nor the stock mode's .py (no class {STOCK_CONSUMER})"
    return None


def stock_module_file(source: Path, into: Path) -> Path:
    """The stock .py: `source` itself, or extracted from the zip into `into`."""
    if not zipfile.is_zipfile(source):
        return source
    target = into / "remote_trading_signals_trading.py"
    with zipfile.ZipFile(source) as archive:
        target.write_bytes(archive.read(STOCK_MEMBER))
    return target


def load_stock_module(path: Path) -> ModuleType:
    """Import the stock .py under a private name (it only imports octobot_* and async_channel)."""
    spec = importlib.util.spec_from_file_location(_PRIVATE_MODULE, path)
    if spec is None or spec.loader is None:
        raise StockBenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVATE_MODULE] = module
    spec.loader.exec_module(module)
    return module


def stock_contents(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The order signals' contents of a bench feed message, numbers as the stock feed carries them."""
    return [_with_float_numbers(signal["content"]) for signal in message["s"]["signals"]]


def _with_float_numbers(content: dict[str, Any]) -> dict[str, Any]:
    converted = dict(content)
    for key in _NUMERIC_FIELDS:
        if isinstance(converted.get(key), str):
            converted[key] = float(converted[key])
    converted["additional_orders"] = [_with_float_numbers(c) for c in content.get("additional_orders") or []]
    return converted


def _check_applied(kind: str, contents: list[dict[str, Any]], open_ids: set[str]) -> None:
    """Every resting order a bundle creates is open, every order it cancels is gone: else fail loudly."""
    for content in _flatten(contents):
        order_id, action = content["order_id"], content["action"]
        resting = action == "create" and not content["type"].endswith("_market")
        if resting and order_id not in open_ids:
            raise StockBenchError(f"stock mode did not create {kind} order {order_id} ({content['type']})")
        if action == "cancel" and order_id in open_ids:
            raise StockBenchError(f"stock mode did not cancel {kind} order {order_id} ({content['type']})")


def _flatten(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for content in contents:
        flat.append(content)
        flat.extend(_flatten(content.get("additional_orders") or []))
    return flat


async def stock_mode_cpu(module: ModuleType, samples: int, gap_ms: float = 0.0) -> dict[str, dict[str, Any]]:
    """{kind: {"p50", "p99", "n"}}: CPU ms of the stock consumer per bundle, on bench/mode.py's exchange."""
    cpu_ms: dict[str, list[float]] = {kind: [] for kind in KINDS}
    async with sim_exchange(bench_spec()) as sim:
        # the clock stays where sim_exchange set the mark price: the stock consumer sizes from
        # get_pre_order_data, which refuses a mark price older than the simulated "now"
        consumer = _stock_consumer(module, sim)
        for index in range(WARMUP_ROUNDS + samples):
            for kind, message in round_bundles():
                contents = stock_contents(message)
                await feed_gap(gap_ms)
                cpu_start = time.process_time()
                for content in contents:
                    # the consumer edits a content in place (max volume): each is used once
                    await consumer.handle_signal(BENCH_SYMBOL, commons_signals.Signal("orders", content))
                cpu = time.process_time() - cpu_start
                _check_applied(kind, contents, {order.order_id for order in sim.open_orders()})
                if index >= WARMUP_ROUNDS:
                    cpu_ms[kind].append(cpu * 1000)
            if sim.open_orders():
                raise StockBenchError(f"open orders left after round {index}: {sim.open_orders()}")
    return {kind: {"p50": rounded(percentile(values, 50)), "p99": rounded(percentile(values, 99)), "n": len(values)}
            for kind, values in cpu_ms.items()}


def _stock_consumer(module: ModuleType, sim: Any) -> Any:
    """The stock mode object with what its consumer reads, without initialize() (its producer raises
    NotImplementedError on a backtesting exchange manager)."""
    mode = module.RemoteTradingSignalsTradingMode(sim.config, sim.exchange_manager)
    mode.trading_config = {"trading_strategy": "bench", "max_volume": 100,
                           "round_to_minimal_size_if_necessary": True, "required_strategies": []}
    mode.symbol = BENCH_SYMBOL
    mode.cryptocurrency = BENCH_SYMBOL.split("/")[0]
    sim.exchange_manager.trading_modes.append(mode)  # as our harness registers ours
    return module.RemoteTradingSignalsModeConsumer(mode)


async def run_stock_subprocess(source: Path, samples: int, gap_ms: float = 0.0) -> dict[str, dict[str, Any]]:
    """Run this module in a child process and return its figures."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, "--zip", str(source), "--samples", str(samples), "--gap-ms", str(gap_ms),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), SUBPROCESS_TIMEOUT_S)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise StockBenchError(f"the stock mode bench took more than {SUBPROCESS_TIMEOUT_S:g} s") from None
    lines = stdout.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = stderr.decode(errors="replace")[-2000:]
        raise StockBenchError(f"the stock mode bench failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1])


def vs_stock(ours: dict[str, dict[str, Any]], stock: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """{kind: our p50 / stock p50}, rounded to 2 decimals (None when either is missing)."""
    ratios: dict[str, float | None] = {}
    for kind, figure in stock.items():
        mine, theirs = ours.get(kind, {}).get("p50"), figure.get("p50")
        ratios[kind] = round(mine / theirs, 2) if mine is not None and theirs else None
    return ratios


async def _main_async(source: Path, samples: int, gap_ms: float) -> dict[str, dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="octobot-signals-bench-stock-") as tmp:
        module = load_stock_module(stock_module_file(source, Path(tmp)))
        figures = await stock_mode_cpu(module, samples, gap_ms)
    if loaded := [name for name in _OUR_MODE_MODULES if name in sys.modules]:
        raise StockBenchError(f"our mode was imported beside the stock one: {loaded}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m octobot_signals.bench.stock",
                                     description="CPU ms per bundle type of the stock mode (one JSON line)")
    parser.add_argument("--zip", required=True, type=Path, dest="source",
                        help="OctoBot's default tentacles zip, or the stock remote_trading_signals_trading.py")
    parser.add_argument("--samples", type=int, default=200, help="measured rounds (default 200)")
    parser.add_argument("--gap-ms", type=float, default=0.0, dest="gap_ms",
                        help="idle before each bundle, not measured (default 0: back to back)")
    args = parser.parse_args(argv)
    if problem := stock_source_problem(args.source):
        parser.error(f"--zip {args.source}: {problem}")
    if args.samples < 1:
        parser.error("--samples must be at least 1")
    if not 0 <= args.gap_ms <= 1000:
        parser.error("--gap-ms must be between 0 and 1000")
    quiet_octobot_logs()  # the same log level as the bench process running our mode
    figures = asyncio.run(_main_async(args.source, args.samples, args.gap_ms))
    sys.stdout.write(json.dumps(figures, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
