"""Runs in the OctoBot 2.1.1 venv with a bot folder as cwd, where only our tentacles zip was installed.

Proves the zip alone is enough for a bot: no `octobot_signals` anywhere on the path, every installed
module of the tentacle imports, the installed mode copies a signal on a simulated exchange, and the
tentacle's own tests pass. Prints one JSON line.
"""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import json
import os
import sys
import time
import traceback
from decimal import Decimal
from pathlib import Path

import octobot_tentacles_manager.api as tentacles_api

PACKAGE = "tentacles.Trading.Mode.remote_trading_signals_trading_mode"


def _message(action: str, order_id: str) -> dict:
    content = {"action": action, "strategy": "s", "symbol": "BTC/USDT", "exchange": "binance",
               "exchange_type": "spot", "side": "buy", "type": "buy_limit", "quantity": 0.01,
               "target_amount": "10%" if action == "create" else None, "limit_price": 19000.0, "stop_price": 0.0,
               "current": 20000.0, "order_id": order_id}
    return {"u": f"u-{action}-{order_id}", "i": "stream-s", "t": "t", "v": "1.0.0", "d": time.time(), "q": 1,
            "s": {"identifier": "s", "version": "1.0.0",
                  "signals": [{"topic": "orders", "content": content, "dependencies": None}]}, "g": None}


async def _copy_one_signal() -> list:
    harness = importlib.import_module(f"{PACKAGE}.simulator.harness")
    sim = importlib.import_module(f"{PACKAGE}.simulator.sim_exchange")
    spec = sim.SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={"BTC/USDT": Decimal(20000)})
    async with harness.follower_on_sim_exchange(spec, {"trading_strategy": "s", "max_open_copies": 1}) as follower:
        results = []
        for action, order_id in (("create", "A"), ("create", "B"), ("cancel", "A")):
            for outcome in await follower.apply(_message(action, order_id)):
                results.append([outcome.order_id, outcome.result.value, outcome.reason,
                                [order["quantity"] for order in outcome.orders]])
        return results


def _tentacle_tests() -> dict:
    outcomes = {}
    for module_name in ("test_remote_trading_signals_trading_consumer", "test_remote_trading_signals_trading_producer"):
        try:
            module = importlib.import_module(f"{PACKAGE}.tests.{module_name}")
        except ModuleNotFoundError as err:
            if err.name != "pytest":
                raise
            outcomes[module_name] = "needs pytest"  # a bot's venv has no test runner: OctoBot's dev setup has
            continue
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if not name.startswith("test_") or function.__module__ != module.__name__:
                continue
            try:
                result = function()
                if inspect.iscoroutine(result):
                    asyncio.run(result)
                outcomes[f"{module_name}.{name}"] = "passed"
            except Exception:  # report, never hide: the test asserts "passed" for each
                outcomes[f"{module_name}.{name}"] = traceback.format_exc()[-1500:]
    return outcomes


def main() -> None:
    repo = Path(sys.argv[1]).resolve()
    bot = Path(os.getcwd()).resolve()
    sys.path.insert(0, str(bot))  # `tentacles` is importable from the bot folder, as in OctoBot
    ours_on_path = [entry for entry in sys.path if entry and Path(entry).resolve().is_relative_to(repo)]
    pip_package = importlib.util.find_spec("octobot_signals") is not None
    tentacles_api.load_tentacles(verbose=False)
    installed = bot / "tentacles" / "Trading" / "Mode" / "remote_trading_signals_trading_mode"
    import_errors = {}
    for path in sorted(installed.rglob("*.py")):
        relative = path.relative_to(installed).with_suffix("")
        parts = [part for part in relative.parts if part != "__init__"]
        name = ".".join([PACKAGE, *parts])
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if not (err.name == "pytest" and ".tests." in name):  # tests may need the test runner, not the bot
                import_errors[name] = f"{err.__class__.__name__}: {err}"
        except Exception as err:  # every failure is reported by module
            import_errors[name] = f"{err.__class__.__name__}: {err}"
    mode_class = importlib.import_module(PACKAGE).RemoteTradingSignalsTradingMode
    copied = asyncio.run(_copy_one_signal())
    tests = _tentacle_tests()
    ours = sorted(name for name in sys.modules if name.split(".")[0] == "octobot_signals")
    outside = sorted(name for name, module in sys.modules.items()
                     if name.startswith(PACKAGE) and getattr(module, "__file__", None)
                     and not Path(module.__file__).resolve().is_relative_to(bot))
    print(json.dumps({
        "ours_on_path": ours_on_path, "pip_package": pip_package, "octobot_signals_modules": ours,
        "modules_outside_bot": outside, "import_errors": import_errors,
        "modules_imported": sum(1 for name in sys.modules if name.startswith(PACKAGE)),
        "class": f"{mode_class.__module__}.{mode_class.__name__}", "copied": copied, "tentacle_tests": tests,
    }))


if __name__ == "__main__":
    main()
