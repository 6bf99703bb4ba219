"""The persisted leader -> local order map: round trip, corrupt files, bounded memory, failed and refused writes."""
from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest
from octobot_signals.follower import order_map as order_map_module
from octobot_signals.follower.order_map import (
    OrderLink,
    OrderMap,
    OrderMapClosed,
    OrderMapWriteError,
    PendingCreate,
)


async def test_round_trip_keeps_links_and_applied_messages(tmp_path):
    path = tmp_path / "map.sqlite3"
    first = OrderMap.load(path)
    first.link("L1", OrderLink("local-1", "BTC/USDT", "0.1", "0.01"))
    first.mark_applied("u-1")
    first.close("L1")
    first.mark_pending("L2", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000"))
    await first.save()
    first.close_storage()
    second = OrderMap.load(path)
    assert second.pending["L2"].price == "19000"
    assert second.local_id("L1") == "local-1" and second.links["L1"].closed
    assert second.was_applied("u-1") and not second.was_applied("u-2")


def test_corrupt_file_is_moved_aside_and_the_map_starts_empty(tmp_path):
    path = tmp_path / "map.sqlite3"
    path.write_text("not a database, not even close" * 100)
    loaded = OrderMap.load(path)
    assert loaded.links == {} and loaded.load_warning and "unreadable" in loaded.load_warning
    assert (tmp_path / "map.sqlite3.corrupt").read_text().startswith("not a database")
    loaded.close_storage()


def test_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(order_map_module, "_MAX_REMEMBERED_CLOSED", 3)
    monkeypatch.setattr(order_map_module, "_MAX_REMEMBERED_MESSAGES", 3)
    links = OrderMap()
    for i in range(6):
        links.link(f"L{i}", OrderLink(f"l{i}", "BTC/USDT", "1", "1"))
        links.close(f"L{i}")
        links.mark_applied(f"u{i}")
    links.link("OPEN", OrderLink("lo", "BTC/USDT", "1", "1"))
    links.close("L5")
    assert sorted(links.links) == ["L3", "L4", "L5", "OPEN"]  # open links are never pruned
    assert list(links.applied_messages) == ["u3", "u4", "u5"]


async def test_saves_write_only_what_changed(tmp_path):
    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    for i in range(2000):
        order_map.link(f"L{i}", OrderLink(f"l{i}", "BTC/USDT", "1", "1"))
    await order_map.save()
    assert order_map._take_changes() == []  # nothing left to write
    order_map.mark_applied("u-new")
    assert len(order_map._take_changes()) == 1  # one message costs one row, whatever the history
    order_map.close_storage()


def _refuse_applied_rows(path) -> sqlite3.Connection:
    """A real SQLite failure inside the write's transaction (as a full disk or an I/O error would give)."""
    other = sqlite3.connect(path)
    other.execute("CREATE TRIGGER refuse BEFORE INSERT ON applied BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    other.commit()
    return other


def _accept_again(other: sqlite3.Connection) -> None:
    other.execute("DROP TRIGGER refuse")
    other.commit()
    other.close()


async def test_a_failed_write_keeps_its_changes_for_the_next_save(tmp_path):
    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    other = _refuse_applied_rows(path)
    order_map.link("L1", OrderLink("local-1", "BTC/USDT", "0.1", "0.01"))
    order_map.mark_pending("L2", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000"))
    order_map.mark_applied("u-1")
    with pytest.raises(OrderMapWriteError, match="disk says no"):
        await order_map.save()
    _accept_again(other)
    await order_map.save()  # the disk works again: everything the failed write held gets written now
    order_map.close_storage()
    reloaded = OrderMap.load(path)
    assert reloaded.local_id("L1") == "local-1"
    assert reloaded.pending["L2"].price == "19000"
    assert reloaded.was_applied("u-1")
    reloaded.close_storage()


async def test_save_after_the_storage_is_closed_raises(tmp_path):
    order_map = OrderMap.load(tmp_path / "map.sqlite3")
    order_map.close_storage()
    order_map.mark_pending("L1", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000"))
    # a write-ahead entry that cannot be written must stop the order it protects, never pass silently
    with pytest.raises(OrderMapClosed):
        await order_map.save()
    assert order_map._take_changes(), "the change is still waiting to be written"


async def test_a_map_without_a_file_saves_to_nowhere():
    order_map = OrderMap()  # backtests and throwaway harnesses
    order_map.mark_applied("u-1")
    await order_map.save()
    assert order_map._take_changes() == []


class _NoScan(dict):
    """A links dict that refuses to be walked: lookups and updates only."""

    def _refuse(self, *args, **kwargs):
        raise AssertionError("the order map scanned every link")

    __iter__ = items = values = keys = _refuse  # type: ignore[assignment]


def test_lookups_link_and_close_never_scan_the_history():
    links = OrderMap()
    for i in range(1000):
        links.link(f"L{i}", OrderLink(f"l{i}", "BTC/USDT", "1", "1"))
    links.links = _NoScan(links.links)
    links.link("NEW", OrderLink("l-new", "BTC/USDT", "1", "1"))
    assert links.local_id("L500") == "l500" and links.leader_id("l500") == "L500"
    assert links.leader_id("l-new") == "NEW" and links.leader_id("someone-elses") is None
    links.close("L500")
    links.close("L500")  # twice: still one closed link
    assert links.open_link_count() == 1000
    links.update_quantities("L1", "2", None)


async def test_local_id_index_and_state_survive_a_reload(tmp_path):
    path = tmp_path / "map.sqlite3"
    first = OrderMap.load(path)
    first.link("L1", OrderLink("local-1", "BTC/USDT", "1", "1"))
    first.link("L2", OrderLink("local-2", "BTC/USDT", "1", "1"))
    first.close("L2")
    first.set_state("drawdown_peak", "2000")
    first.save_soon()  # the end-of-message commit: no fsync, still committed
    await first.flush()
    first.close_storage()
    second = OrderMap.load(path)
    assert second.leader_id("local-1") == "L1" and second.leader_id("local-2") == "L2"
    assert second.open_link_count() == 1 and second.state == {"drawdown_peak": "2000"}
    indexes = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "links_by_local_order_id" in indexes
    second.close_storage()


async def test_closed_links_pruned_oldest_first_and_deleted_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(order_map_module, "_MAX_REMEMBERED_CLOSED", 2)
    path = tmp_path / "map.sqlite3"
    links = OrderMap.load(path)
    for i in range(5):
        links.link(f"L{i}", OrderLink(f"l{i}", "BTC/USDT", "1", "1"))
        links.close(f"L{i}")
    await links.save()
    links.close_storage()
    rows = sqlite3.connect(path).execute("SELECT leader_id FROM links ORDER BY leader_id").fetchall()
    assert rows == [("L3",), ("L4",)]
    assert OrderMap.load(path).leader_id("l0") is None


def _rows(path, sql):
    """Read the map file from another connection, as a restarted bot would."""
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


async def test_save_soon_waits_in_memory_until_the_next_job_on_the_shared_writer(tmp_path):
    from octobot_signals.feed.state_store import FollowerState

    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    state = FollowerState(tmp_path / "feed")
    try:
        order_map.link("L1", OrderLink("local-1", "BTC/USDT", "0.1", "0.01"))
        order_map.mark_applied("u-1")
        order_map.save_soon()  # the end of a message: no thread round trip
        assert _rows(path, "SELECT u FROM applied") == []  # still in memory
        # the feed records the message as done: the map's changes are queued ahead of that record
        await state.aset_last_q("strategy-a", 1)
        assert _rows(path, "SELECT u FROM applied") == [("u-1",)]
        assert _rows(path, "SELECT leader_id, local_order_id FROM links") == [("L1", "local-1")]
        assert state.last_q("strategy-a") == 1
    finally:
        state.close()
        order_map.close_storage()


async def test_save_soon_reaches_the_file_on_its_timer_without_any_other_job(tmp_path, monkeypatch):
    import asyncio

    monkeypatch.setattr(order_map_module, "LAZY_SAVE_SECONDS", 0.01)
    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    try:
        order_map.mark_applied("u-timer")
        order_map.save_soon()
        for _ in range(200):  # the timer fires after 10 ms; the write follows on the writer thread
            await asyncio.sleep(0.01)
            if _rows(path, "SELECT u FROM applied"):
                break
        assert _rows(path, "SELECT u FROM applied") == [("u-timer",)]
    finally:
        order_map.close_storage()


async def test_close_writes_what_save_soon_held_back(tmp_path):
    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    order_map.mark_pending("L9", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000"))
    order_map.mark_applied("u-9")
    order_map.save_soon()
    order_map.close_storage()  # the bot stops right after a message
    reloaded = OrderMap.load(path)
    assert reloaded.was_applied("u-9") and reloaded.pending["L9"].price == "19000"
    reloaded.close_storage()


async def test_a_failed_save_soon_is_raised_by_the_next_save_and_written_then(tmp_path):
    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)
    other = _refuse_applied_rows(path)
    order_map.mark_applied("u-1")
    order_map.save_soon()
    with pytest.raises(OrderMapWriteError, match="disk says no"):
        await order_map.flush()  # the held-back write ran and failed: said at the next wait
    # and the next write-ahead entry must not pass as if the last message were recorded
    order_map.mark_pending("L2", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000"))
    order_map.save_soon()
    with pytest.raises(OrderMapWriteError, match="disk says no"):
        await order_map.save()
    _accept_again(other)
    await order_map.save()  # works again: the held-back change is written with the new one
    assert _rows(path, "SELECT u FROM applied") == [("u-1",)]
    assert _rows(path, "SELECT leader_id FROM pending") == [("L2",)]
    order_map.close_storage()


async def test_write_ahead_entries_keep_their_size_and_older_files_gain_the_column(tmp_path):
    path = tmp_path / "map.sqlite3"
    old = sqlite3.connect(path)  # a map written before entries recorded their size
    old.executescript("CREATE TABLE pending (leader_id TEXT PRIMARY KEY, symbol TEXT NOT NULL, side TEXT NOT NULL,"
                      " order_type TEXT NOT NULL, price TEXT NOT NULL);"
                      "INSERT INTO pending VALUES ('OLD', 'BTC/USDT', 'buy', 'buy_limit', '19000');")
    old.close()
    order_map = OrderMap.load(path)
    assert order_map.pending["OLD"] == PendingCreate("BTC/USDT", "buy", "buy_limit", "19000", "")
    order_map.mark_pending("NEW", PendingCreate("BTC/USDT", "sell", "sell_limit", "21000", "0.0125"))
    await order_map.save()
    order_map.close_storage()
    reloaded = OrderMap.load(path)
    assert reloaded.pending["NEW"].quantity == "0.0125" and reloaded.pending["OLD"].quantity == ""
    reloaded.close_storage()


def test_a_recovered_order_matches_as_numbers_and_by_size():
    from types import SimpleNamespace

    from octobot_signals.follower import order_lookup

    def order(order_id, price, quantity):
        return SimpleNamespace(order_id=order_id, side=SimpleNamespace(value="buy"),
                               order_type=SimpleNamespace(value="buy_limit"), origin_price=Decimal(price),
                               origin_quantity=Decimal(quantity))

    orders = [order("user", "19000", "0.002"), order("mine", "19000.0", "0.0050")]
    manager = SimpleNamespace(get_open_orders=lambda symbol: orders)
    exchange_manager = SimpleNamespace(exchange_personal_data=SimpleNamespace(orders_manager=manager))
    order_map = OrderMap()
    order_map.mark_pending("L", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000", "0.005"))
    assert order_lookup.recover_pending(exchange_manager, order_map, "L").order_id == "mine"
    order_map.mark_pending("L", PendingCreate("BTC/USDT", "buy", "buy_limit", "19000", ""))  # an older entry
    assert order_lookup.recover_pending(exchange_manager, order_map, "L") is None  # two fit: refused


def test_close_outside_any_event_loop_still_writes_what_save_soon_held_back(tmp_path):
    import asyncio

    path = tmp_path / "map.sqlite3"
    order_map = OrderMap.load(path)

    async def one_message() -> None:
        order_map.mark_applied("u-late")
        order_map.save_soon()

    asyncio.run(one_message())  # the loop is gone (a bot shutting down), the change is still in memory
    order_map.close_storage()
    assert _rows(path, "SELECT u FROM applied") == [("u-late",)]


async def test_a_lazy_change_is_only_ever_taken_on_its_own_event_loop(tmp_path):
    import asyncio
    import threading

    from octobot_signals.feed import local_writer

    mine = OrderMap.load(tmp_path / "mine.sqlite3")
    mine.mark_applied("u-mine")
    mine.save_soon()
    seen: list[str] = []

    def other_thread() -> None:
        async def other_loop_job() -> None:
            await local_writer.shared().run(int)  # must not take `mine`'s changes from this thread
            seen.append("ran")

        asyncio.run(other_loop_job())

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert seen == ["ran"]
    assert _rows(tmp_path / "mine.sqlite3", "SELECT u FROM applied") == []  # still held back on my loop
    await mine.flush()
    assert _rows(tmp_path / "mine.sqlite3", "SELECT u FROM applied") == [("u-mine",)]
    mine.close_storage()


def test_the_writer_in_a_forked_child_runs_on_a_thread_of_its_own() -> None:
    import os
    import signal

    from octobot_signals.feed import local_writer

    writer = local_writer.shared()
    assert writer.call(os.getpid) == os.getpid()  # the parent's writer thread is running
    pid = os.fork()
    if pid == 0:  # the child has the writer but not its thread: the next job starts one there
        signal.alarm(10)
        os._exit(0 if writer.call(os.getpid) == os.getpid() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert writer.call(os.getpid) == os.getpid()
