"""`octobot-signals bench --mode-cpu-only --stock-zip`: the stock mode measured beside ours, for real."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from octobot_signals.bench.stock import STOCK_MEMBER

STOCK_ZIP = Path(__file__).resolve().parents[2] / "shared" / "octobot-2.1.1" / "octobot-default-tentacles-2.1.1.zip"
KINDS = {"limit_create", "limit_cancel", "market_with_stop_loss", "stop_loss_cancel"}
CLI = [sys.executable, "-m", "octobot_signals.cli.main"]
needs_zip = pytest.mark.skipif(not STOCK_ZIP.is_file(), reason=f"OctoBot's default tentacles zip not at {STOCK_ZIP}")

# A "stock mode" that applies nothing: the bench must refuse to report figures for it.
NO_OP_MODE = '''
class RemoteTradingSignalsTradingMode:
    def __init__(self, config, exchange_manager):
        self.exchange_manager = exchange_manager


class RemoteTradingSignalsModeConsumer:
    def __init__(self, trading_mode):
        self.trading_mode = trading_mode

    async def handle_signal(self, symbol, data):
        return None
'''


def run_cli(args: list[str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp_path)}  # so the test sees what the bench leaves behind
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


@needs_zip
def test_stock_figures_beside_ours_and_ratios(tmp_path: Path) -> None:
    proc = run_cli(["bench", "--json", "--mode-cpu-only", "--mode-samples", "20", "--history-links", "0",
                    "--stock-zip", str(STOCK_ZIP)], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    mode_cpu = result["mode_cpu_ms"]
    assert set(mode_cpu) == {"links_0", "stock", "vs_stock", "persistence"}  # added fields only
    for figure in mode_cpu["links_0"].values():  # ours: the contract is unchanged
        assert set(figure) == {"p50", "p99", "n", "wall_p50"}
    assert set(mode_cpu["stock"]) == KINDS == set(mode_cpu["vs_stock"])
    for kind, figure in mode_cpu["stock"].items():
        assert set(figure) == {"p50", "p99", "n"}
        assert figure["n"] == 20 and 0 < figure["p50"] <= figure["p99"] < 1000
        assert mode_cpu["vs_stock"][kind] == round(mode_cpu["links_0"][kind]["p50"] / figure["p50"], 2)
        assert f"mode CPU {kind} vs stock (0 links, p50): " in proc.stdout  # the target line, met or missed
    assert "the target <= 1.2x" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # the extracted stock module and the exchange's files are removed


@needs_zip
def test_stock_bench_takes_the_stock_py_itself(tmp_path: Path) -> None:
    source = tmp_path / "remote_trading_signals_trading.py"
    with zipfile.ZipFile(STOCK_ZIP) as archive:
        source.write_bytes(archive.read(STOCK_MEMBER))
    proc = subprocess.run([sys.executable, "-m", "octobot_signals.bench.stock", "--zip", str(source),
                           "--samples", "3"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures) == KINDS and all(f["n"] == 3 and f["p50"] > 0 for f in figures.values())


def test_a_stock_mode_that_applies_nothing_fails_loudly(tmp_path: Path) -> None:
    source = tmp_path / "src" / "remote_trading_signals_trading.py"
    source.parent.mkdir()
    source.write_text(NO_OP_MODE, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "octobot_signals.bench.stock", "--zip", str(source),
                           "--samples", "1"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "stock mode did not create limit_create order" in proc.stderr
    assert proc.stdout.strip() == ""  # no figures for a no-op


def test_unusable_stock_zip_is_a_usage_error_naming_the_flag(tmp_path: Path) -> None:
    missing = tmp_path / "missing.zip"
    proc = run_cli(["bench", "--mode-cpu-only", "--stock-zip", str(missing)], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--stock-zip" in proc.stderr and "no such file" in proc.stderr
    empty_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(empty_zip, "w") as archive:
        archive.writestr("reference_tentacles/other.py", "")
    proc = run_cli(["bench", "--mode-cpu-only", "--stock-zip", str(empty_zip)], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--stock-zip" in proc.stderr and STOCK_MEMBER in proc.stderr
    not_stock = tmp_path / "notes.txt"
    not_stock.write_text("hello", encoding="utf-8")
    proc = run_cli(["bench", "--mode-cpu-only", "--stock-zip", str(not_stock)], tmp_path, timeout=30)
    assert proc.returncode == 2 and "--stock-zip" in proc.stderr
    proc = run_cli(["bench", "--stock-zip", str(empty_zip)], tmp_path, timeout=30)  # without --mode-cpu
    assert proc.returncode == 2 and "--stock-zip needs --mode-cpu" in proc.stderr
