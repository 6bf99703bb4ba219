"""Durable outbox, follower state store and backoff: real SQLite files in a temp dir."""
from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest
from octobot_signals.core.protocol import ProtocolError
from octobot_signals.feed.backoff import Backoff, BackoffExhausted
from octobot_signals.feed.outbox import ACKED, PENDING, REJECTED, Outbox
from octobot_signals.feed.state_store import FollowerState


def bundle(tag: str, strategy_id: str = "s1") -> dict:
    return {"identifier": strategy_id, "version": "1.0.0",
            "signals": [{"topic": "orders", "content": {"action": "cancel", "order_id": tag}, "dependencies": None}]}


def test_outbox_order_ack_reject_and_reopen(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    ids = [outbox.enqueue("s1", bundle(f"b{i}")) for i in range(5)]
    assert len(set(ids)) == 5 and all(len(u) == 32 for u in ids)
    assert [item.u for item in outbox.pending(10)] == ids
    assert [item.bundle["signals"][0]["content"]["order_id"] for item in outbox.pending(2)] == ["b0", "b1"]
    outbox.mark_acked(ids[0], 1)
    outbox.mark_rejected(ids[1], "bad_bundle: nope")
    assert outbox.count_pending() == 3
    assert outbox.get(ids[0]).state == ACKED and outbox.get(ids[0]).q == 1
    assert outbox.get(ids[1]).state == REJECTED and outbox.get(ids[1]).reason == "bad_bundle: nope"
    d_before = outbox.get(ids[2]).d
    outbox.close()
    # A crash/restart: same file, same pending rows, same u and d (so retries are identical).
    reopened = Outbox(tmp_path / "publisher_outbox.sqlite")
    pending = reopened.pending(10)
    assert [item.u for item in pending] == ids[2:]
    assert pending[0].d == d_before and pending[0].state == PENDING
    reopened.close()


def test_outbox_same_u_is_stored_once_and_keeps_first_payload(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    assert outbox.enqueue("s1", bundle("first"), u="msg-1", d=100.5) == "msg-1"
    assert outbox.enqueue("s1", bundle("second"), u="msg-1", d=200.0) == "msg-1"
    (item,) = outbox.pending(10)
    assert item.bundle["signals"][0]["content"]["order_id"] == "first" and item.d == 100.5
    outbox.mark_acked("msg-1", 7)
    outbox.enqueue("s1", bundle("again"), u="msg-1")  # already acked: stays acked
    assert outbox.count_pending() == 0 and outbox.count(ACKED) == 1
    outbox.close()


def test_outbox_refuses_bad_input(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    with pytest.raises(ProtocolError):
        outbox.enqueue("bad id!", bundle("x"))
    with pytest.raises(ProtocolError):
        outbox.enqueue("s1", {"identifier": "s1", "version": "3.0.0", "signals": []})
    with pytest.raises(ValueError, match="JSON-safe"):
        outbox.enqueue("s1", {**bundle("x"), "extra": float("nan")})
    with pytest.raises(ProtocolError):
        outbox.enqueue("s1", bundle("x"), u="")
    assert outbox.count_pending() == 0
    outbox.close()


def test_outbox_is_wal_and_full_sync(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    outbox.enqueue("s1", bundle("x"))
    conn = sqlite3.connect(outbox.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert outbox._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    # Another reader sees the committed row at once (it is on disk, not in a buffer).
    assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 1
    conn.close()
    outbox.close()


async def test_outbox_async_api_runs_off_loop_and_keeps_order(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    ids = await asyncio.gather(*(outbox.aenqueue("s1", bundle(f"b{i}")) for i in range(50)))
    assert [item.u for item in await outbox.apending(100)] == list(ids)
    await outbox.amark_acked(ids[0], 1)
    await outbox.amark_rejected(ids[1], "x")
    assert await outbox.acount_pending() == 48
    outbox.close()


def test_outbox_prune_keeps_pending(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path)
    a = outbox.enqueue("s1", bundle("a"))
    outbox.enqueue("s1", bundle("b"))
    outbox.mark_acked(a, 1)
    assert outbox.prune(older_than_s=-1) == 1
    assert outbox.count_pending() == 1 and outbox.get(a) is None
    outbox.close()


async def test_follower_state_is_durable_and_monotonic(tmp_path: Path) -> None:
    state = FollowerState(tmp_path)
    assert state.last_q("s1") == 0 and state.all_last_q() == {}
    state.set_last_q("s1", 5)
    await state.aset_last_q("s1", 3)  # never moves backwards
    await state.aset_last_q("s2", 1)
    assert await state.alast_q("s1") == 5
    with pytest.raises(ValueError):
        state.set_last_q("s1", -1)
    with pytest.raises(ProtocolError):
        state.set_last_q("bad id!", 1)
    state.close()
    reopened = FollowerState(tmp_path / "follower_state.sqlite")
    assert reopened.all_last_q() == {"s1": 5, "s2": 1}
    reopened.reset("s1", 0)
    assert reopened.last_q("s1") == 0
    reopened.close()


def test_backoff_immediate_then_capped_exponential_with_jitter() -> None:
    backoff = Backoff(base=0.5, cap=4.0, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    assert delays[0] == 0.0
    ceilings = [0.5, 1.0, 2.0, 4.0] + [4.0] * 7
    assert all(0.0 <= d <= c for d, c in zip(delays[1:], ceilings, strict=True))
    assert len(set(delays[1:])) == 11  # jittered, not a fixed ladder
    backoff.reset()
    assert backoff.next_delay() == 0.0
    for _ in range(1000):  # a very long outage never overflows and stays under the cap
        assert backoff.next_delay() <= 4.0


def test_backoff_bounded_attempts() -> None:
    backoff = Backoff(max_attempts=3)
    for _ in range(3):
        backoff.next_delay()
    assert backoff.exhausted
    with pytest.raises(BackoffExhausted):
        backoff.next_delay()
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(max_attempts=0)
