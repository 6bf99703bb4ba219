"""`octobot-signals chaos`: a short real run (hub and followers as child processes, SIGKILLed and restarted,
links cut by the run's proxy, re-sends) ends with every counter at 0; the accounting counts each kind of
failure when fed a broken history; the proxy's cut resets live connections and refuses new ones."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest
from octobot_signals.chaos.check import FollowerHistory, FollowerRun, Resend, check_run
from octobot_signals.chaos.pg import unavailable_reason
from octobot_signals.chaos.proxy import LinkProxy
from octobot_signals.chaos.stalls import HubKillStalls

RUN_TIMEOUT_S = 240


def _chaos(*args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-m", "octobot_signals.cli.main", "chaos", *args], capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def _assert_clean_run(args: list[str], kinds: set[str]) -> dict:
    code, lines, stderr = _chaos(*args, "--json")
    summary = json.loads(lines[-1])
    assert code == 0, "\n".join(lines[-30:]) + stderr[-2000:]
    assert summary["ok"] is True
    assert {k: summary[k] for k in ("lost", "duplicates", "gaps", "out_of_order", "skipped")} == {
        "lost": 0, "duplicates": 0, "gaps": 0, "out_of_order": 0, "skipped": 0}
    assert summary["last_q"] == summary["signals"]
    assert summary["converge_s"] is not None and summary["crashes"] == 0
    assert kinds <= set(summary["faults"]), summary["faults"]  # the faults really happened
    assert not any(kind.endswith("_failed") for kind in summary["faults"]), summary["faults"]
    assert summary["resends"]["acked"] >= 1
    assert summary["hub_starts"] > summary["replicas"]  # a hub was killed and came back
    assert any(f["runs"] > 1 for f in summary["per_follower"])  # a follower was killed and came back
    assert any("kill -9 follower" in line for line in lines)  # progress output names what it does
    # added fields: one stall record per hub kill, bounded by the longest stall overall
    assert len(summary["hub_kill_stalls"]) == summary["faults"]["kill_hub"]
    assert summary["longest_stall_after_hub_back_s"] <= summary["longest_stall_s"]
    assert summary["longest_feed_stall_s"] <= summary["longest_stall_s"]
    assert all("longest_feed_stall_s" in f for f in summary["per_follower"])
    return summary


def test_short_chaos_run_on_sqlite_counts_zero():
    _assert_clean_run(["--signals", "60", "--followers", "2", "--rate", "10", "--seed", "3"],
                      {"kill_follower", "kill_hub", "cut_publisher", "cut_follower", "resend"})


def test_short_chaos_run_on_postgresql_with_replicas_counts_zero():
    reason = unavailable_reason()
    if reason:  # as the store contract tests do: in CI a missing server is a failure (.ci/setup installs it)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    summary = _assert_clean_run(
        ["--store", "postgresql", "--replicas", "2", "--signals", "60", "--followers", "2", "--rate", "8",
         "--seed", "5"],
        {"kill_follower", "kill_hub", "resend", "restart_postgres"})
    assert summary["postgres_restarts"] >= 1


def test_a_follower_that_loses_its_data_fails_the_run():
    """The counters can fail in a real run: follower-1's data directory is wiped at its first kill, so it starts
    again "from now" and never prints what was published while it was down."""
    # (restarted after the last publish, it never prints the last q: a short convergence timeout)
    code, lines, stderr = _chaos("--signals", "60", "--followers", "2", "--rate", "10", "--seed", "3",
                                 "--break-follower", "--converge-timeout", "15", "--json")
    summary = json.loads(lines[-1])
    assert code == 1, "\n".join(lines[-30:]) + stderr[-2000:]
    assert summary["ok"] is False and summary["lost"] > 0
    broken, healthy = summary["per_follower"]
    assert broken["lost"] > 0 and "lost" not in healthy
    kept = [line.removeprefix("work directory kept: ") for line in lines if line.startswith("work directory kept: ")]
    assert "FAIL" in lines and len(kept) == 1
    shutil.rmtree(kept[0], ignore_errors=True)  # a failed run keeps its logs for a post-mortem: not this one


def test_bad_arguments_exit_2_with_the_reason():
    code, _, stderr = _chaos("--replicas", "2")
    assert code == 2 and "one hub process per data directory" in stderr and "--store postgresql" in stderr
    code, _, stderr = _chaos("--signals", "0")
    assert code == 2 and "--signals" in stderr


# ---------------------------------------------------------------- the accounting, on synthetic histories

def _line(q: int, action: str, result: str, order: str, reason: str | None = None, local: str = "") -> dict:
    return {"u": f"u{q}", "q": q, "order_id": order, "action": action, "result": result, "reason": reason,
            "orders": [{"id": local or f"my-{order}"}] if result in ("created", "cancelled") else []}


def _journal(n: int) -> tuple[list[tuple[str, int | None]], list[tuple[int, str]]]:
    return [(f"u{q}", q) for q in range(1, n + 1)], [(q, f"u{q}") for q in range(1, n + 1)]


def test_accounting_of_a_clean_history_with_restarts_is_zero():
    published, journal = _journal(6)
    first = FollowerRun([_line(1, "create", "created", "A"), _line(2, "cancel", "cancelled", "A"),
                         _line(3, "create", "created", "B")])  # then kill -9: B's copy dies with this run
    second = FollowerRun([
        _line(3, "create", "skipped", "B", "duplicate message u=u3: already applied"),  # re-delivered
        _line(4, "cancel", "skipped", "B", "my copy of B is already closed (filled or cancelled)"),
        _line(5, "create", "created", "C"), _line(6, "cancel", "cancelled", "C")],
        stopped={"open_orders": []})
    report = check_run(published, journal, [Resend("u2", 2, 2)], [FollowerHistory("f", [first, second])])
    assert report.counters() == {"lost": 0, "duplicates": 0, "gaps": 0, "out_of_order": 0, "skipped": 0}
    assert report.ok and report.recognised == 2


def test_accounting_counts_every_kind_of_failure():
    published, journal = _journal(8)
    broken = FollowerRun([
        _line(1, "create", "created", "A"),
        _line(1, "create", "created", "A", local="second-copy"),  # applied twice
        _line(2, "cancel", "cancelled", "A"),
        _line(4, "cancel", "skipped", "B", "my copy of B is already closed (filled or cancelled)"),  # same run:
        # not a restart's doing, and printed before q=3 (a gap)
        _line(3, "create", "created", "B"),  # applied after q=4 was handled: not out of order (4 was skipped)
        _line(6, "cancel", "cancelled", "C"),  # q=5 never comes: a gap, then lost
        _line(7, "create", "created", "D"),
        _line(5, "create", "created", "C"),  # applied after q=7: out of order
    ], stopped={"open_orders": [{"id": "my-D"}, {"id": "second-copy"}, {"id": "ghost"}]})  # no line placed ghost
    report = check_run(published, journal, [], [FollowerHistory("broken", [broken])])
    assert report.duplicates == 2  # the second create of A, and an open order no line placed
    assert report.skipped == 1
    assert report.gaps == 2  # q=4 before 3, q=6 before 5 (q=7 before 5 is the same hole)
    assert report.out_of_order == 1
    assert report.lost == 1  # q=8: no line
    assert report.per_follower["broken"]["lost"] == 1
    assert not report.ok and report.examples


def test_accounting_of_the_publisher_and_the_journal():
    published = [("u1", 1), ("u2", 2), ("u3", None), ("u4", 4), ("u5", 3)]
    journal = [(1, "u1"), (2, "u2"), (3, "u5"), (4, "u4"), (6, "u1")]  # u1 twice, q=5 missing, u3 absent
    report = check_run(published, journal, [Resend("u2", 2, 7)], [])
    assert report.lost == 1  # u3 never acked
    assert report.duplicates == 2  # u1 under q=1 and q=6; the re-send of u2 acked q=7
    assert report.gaps == 1  # q=5
    assert report.out_of_order == 1  # u5 acked q=3 after u4's q=4


# ---------------------------------------------------------------- the stalls per hub kill

def test_stalls_per_hub_kill_count_from_the_kill_and_from_the_hubs_return():
    stalls = HubKillStalls()
    names = ["f1", "f2", "f3"]
    stalls.observe(9.0, {"f1": 8.0}, names)  # before any kill: no window
    stalls.hub_killed("hub-1", at=10.0, down_s=1.0)
    stalls.follower_killed("f3")  # its stall is a bot restart: left out
    stalls.observe(11.0, {"f1": 8.0, "f3": 10.5}, names)
    stalls.hub_back("hub-1", at=12.0)
    stalls.observe(13.0, {"f1": 8.0, "f2": 12.5, "f3": 10.5}, names)
    stalls.observe(14.5, {"f2": 12.5, "f3": 10.5}, names)  # f1 printed again
    stalls.observe(15.0, {"f3": 10.5}, names)  # every follower still running is level: the window closes
    stalls.observe(20.0, {"f2": 19.0}, names)  # after the window: not this kill's
    [window] = stalls.as_json(started=0.0)
    assert window == {"hub": "hub-1", "at_s": 10.0, "down_s": 1.0, "back_after_s": 2.0,
                      "worst_stall_s": 3.0, "worst_follower": "f1",  # from the kill at the earliest, not 8.0
                      "worst_after_back_s": 2.0, "worst_after_back_follower": "f2"}  # f1: 1.0 after the return
    assert stalls.longest_after_back() == 2.0


def test_a_new_hub_kill_closes_the_previous_window():
    stalls = HubKillStalls()
    stalls.hub_killed("hub-1", at=1.0, down_s=0.5)
    stalls.hub_back("hub-1", at=2.0)
    stalls.hub_killed("hub-2", at=2.5, down_s=0.5)
    stalls.observe(3.0, {"f1": 1.5}, ["f1"])
    first, second = stalls.as_json(started=0.0)
    assert first["worst_stall_s"] == 0.0 and first["worst_follower"] is None
    assert second["worst_stall_s"] == 0.5 and second["back_after_s"] is None


# ---------------------------------------------------------------- the proxy

async def test_proxy_cut_resets_connections_and_refuses_until_restored():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    import random

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = LinkProxy("t", lambda: [port], random.Random(1))
    await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.read(4), 5) == b"ping"
        proxy.cut()
        assert await asyncio.wait_for(reader.read(4), 5) == b""  # the live connection is gone
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        assert await asyncio.wait_for(reader.read(4), 5) == b""  # refused while cut
        writer.close()
        proxy.restore()
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(b"back")
        assert await asyncio.wait_for(reader.read(4), 5) == b"back"
        writer.close()
    finally:
        await proxy.stop()
        server.close()
        await server.wait_closed()
