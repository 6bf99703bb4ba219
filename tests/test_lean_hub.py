"""The hub and the CLI import only what they use: no OctoBot stack in a hub process (issue 10)."""
from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, sys
{imports}
heavy = sorted({{name.split(".")[0] for name in sys.modules}} & {{"octobot_trading", "octobot_commons",
                "octobot_backtesting", "octobot_tentacles_manager", "async_channel", "ccxt", "numpy"}})
print(json.dumps({{"heavy": heavy, "modules": len(sys.modules)}}))
"""


def _probe(imports: str) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE.format(imports=imports)], capture_output=True, text=True,
                            timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_hub_process_never_imports_octobot() -> None:
    # what `python -m octobot_signals.hub` and `octobot-signals hub` load before serving
    probe = _probe("import octobot_signals.hub.server, octobot_signals.hub.cli\n"
                   "from octobot_signals.cli.main import build_parser\nbuild_parser('hub')")
    assert probe["heavy"] == [], probe


def test_the_mode_still_loads_the_octobot_stack_when_asked_for() -> None:
    # OctoBot's loader reads __all__ (`from ... import *`): the mode and its stack arrive then
    probe = _probe("from octobot_signals import *\nassert RemoteTradingSignalsTradingMode.__name__")
    assert "octobot_trading" in probe["heavy"], probe
