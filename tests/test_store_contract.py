"""The store contract, run on both implementations: SQLite (the embedded default) and PostgreSQL.

Every test takes `store_url` (parametrized: sqlite, postgresql) and calls the store only through the
interface the hub uses (`AsyncStore.run(lambda db: db.method(...))`, `append`, `read_after`, `last_q`).
PostgreSQL is a real server (tests/pg_helpers.py) on a Unix socket in a temp dir.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from octobot_signals.hub.mqtt_tables import USERNAME_PREFIX
from octobot_signals.hub.store import AsyncStore, Capability, DuplicateStrategy, Strategy
from octobot_signals.hub.web.tables import DuplicateAccount, InvitationRefused
from pg_helpers import pg_server, store_url  # noqa: F401  (fixtures)


def strategy(strategy_id: str, visibility: str = "public") -> Strategy:
    return Strategy(strategy_id, f"Strategy {strategy_id}", visibility, ("BTC/USDT",), "spot", "binance", None,
                    f"st_{strategy_id}")


@pytest_asyncio.fixture
async def store(tmp_path: Path, store_url: str | None) -> AsyncIterator[AsyncStore]:  # noqa: F811
    opened = AsyncStore(tmp_path, store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_journal_q_is_gapless_and_a_resent_u_returns_its_first_q(store: AsyncStore) -> None:
    await store.run(lambda db: db.create_strategy(strategy("s1"), "h1"))
    await store.run(lambda db: db.create_strategy(strategy("s2"), "h2"))
    first = await store.append("s1", "u1", 1000.5, {"identifier": "s1", "n": 1}, None)
    second = await store.append("s1", "u2", 1001, {"identifier": "s1", "n": "é"}, "sig")
    again = await store.append("s1", "u1", 9999, {"other": True}, None)
    other = await store.append("s2", "u1", 1, {}, None)  # u is unique per strategy only
    assert (first.q, first.created, second.q, second.created) == (1, True, 2, True)
    assert (again.q, again.created) == (1, False)
    assert (other.q, other.created) == (1, True)
    entries = await store.read_after("s1", 0, 10)
    assert [(e.q, e.u, e.d, e.s, e.g) for e in entries] == [
        (1, "u1", 1000.5, {"identifier": "s1", "n": 1}, None), (2, "u2", 1001, {"identifier": "s1", "n": "é"}, "sig")]
    assert [e.q for e in await store.read_after("s1", 1, 10)] == [2]
    assert await store.last_q("s1") == 2 and await store.last_q("unknown") == 0


async def test_history_pages_are_bounded_by_bytes_and_by_limit(store: AsyncStore) -> None:
    await store.run(lambda db: db.create_strategy(strategy("s1"), "h1"))
    for i in range(200):
        await store.append("s1", f"u{i}", i, {"pad": "x" * 100, "i": i}, None)

    def page(after: int, limit: int, max_bytes: int | None = None, jsonl: bool = False):  # type: ignore[no-untyped-def]
        return store.run(lambda db: db.read_history_page("s1", "st_s1", after, limit, jsonl=jsonl, max_bytes=max_bytes))

    full = await page(0, 150)
    messages = json.loads(full.body)
    assert [m["q"] for m in messages] == list(range(1, 151)) and full.last_q == 150 and not full.cut_by_size
    assert messages[0] == {"u": "u0", "i": "st_s1", "t": "t", "v": "1.0.0", "d": 0, "q": 1,
                           "s": {"i": 0, "pad": "x" * 100}, "g": None}
    cut = await page(10, 150, max_bytes=1000)
    lines = cut.body.splitlines()
    assert cut.cut_by_size and 5 <= len(json.loads(cut.body)) <= 10 and cut.last_q == 10 + len(json.loads(cut.body))
    assert len(lines) == 1  # a JSON array on one line
    tail = await page(195, 150, max_bytes=1000, jsonl=True)  # the byte budget is not reached: not cut
    assert [json.loads(line)["q"] for line in tail.body.splitlines()] == [196, 197, 198, 199, 200]
    assert not tail.cut_by_size and tail.last_q == 200
    empty = await page(200, 10)
    assert empty.body == b"[]" and empty.last_q is None and not empty.cut_by_size


async def test_two_store_instances_appending_at_once_share_one_gapless_sequence(
        tmp_path: Path, store_url: str | None) -> None:  # noqa: F811
    """What two hub replicas do: same strategy, interleaved appends, half of the u's sent through both."""
    stores = [AsyncStore(tmp_path, store_url), AsyncStore(tmp_path, store_url)]
    for opened in stores:
        await opened.open()
    try:
        await stores[0].run(lambda db: db.create_strategy(strategy("s1"), "h1"))

        async def publisher(index: int) -> dict[str, int]:
            acked = {}
            for i in range(60):
                u = f"shared-{i}" if i % 2 == 0 else f"own-{index}-{i}"
                acked[u] = (await stores[index].append("s1", u, i, {"i": i}, None)).q
            return acked

        results = await asyncio.gather(publisher(0), publisher(1))
        for u in set(results[0]) & set(results[1]):
            assert results[0][u] == results[1][u], u  # a u sent through both gets one q
        journal = await stores[1].read_after("s1", 0, 1000)
        assert [e.q for e in journal] == list(range(1, 91))  # 30 shared + 2 x 30 own, no gap, no reuse
        assert len({e.u for e in journal}) == 90
        assert {e.u: e.q for e in journal} == {**results[0], **results[1]}
    finally:
        for opened in stores:
            await opened.close()


async def test_strategies_tokens_memberships_and_capabilities(store: AsyncStore) -> None:
    await store.run(lambda db: db.create_strategy(strategy("pub"), "hash-pub"))
    await store.run(lambda db: db.create_strategy(strategy("priv", "private"), "hash-priv"))
    with pytest.raises(DuplicateStrategy):
        await store.run(lambda db: db.create_strategy(strategy("pub"), "another-hash"))
    loaded = {s.id: s for s in await store.run(lambda db: db.load_strategies())}
    assert loaded["pub"] == strategy("pub") and loaded["priv"].visibility == "private"
    assert await store.run(lambda db: db.strategy_for_publish_secret("hash-priv")) == "priv"
    assert await store.run(lambda db: db.strategy_for_publish_secret("nope")) is None

    await store.run(lambda db: db.create_follower_token("fol_1", "tok-hash", "pub"))
    await store.run(lambda db: db.add_membership("fol_1", "priv"))
    await store.run(lambda db: db.add_membership("fol_1", "priv"))  # idempotent
    follower = await store.run(lambda db: db.follower_for_hash("tok-hash"))
    assert follower is not None and follower.token_id == "fol_1" and follower.strategies == {"pub", "priv"}

    now = time.time()
    await store.run(lambda db: db.create_capability("cap-live", Capability("fol_1", "pub", "ft_plain", now + 900)))
    await store.run(lambda db: db.create_capability("cap-old", Capability("fol_1", "pub", "ft_plain", now - 1)))
    cap = await store.run(lambda db: db.get_capability("cap-live", now))
    assert cap == Capability("fol_1", "pub", "ft_plain", now + 900)
    assert await store.run(lambda db: db.get_capability("cap-old", now)) is None
    assert await store.run(lambda db: db.capability_expired("cap-old"))  # a late download answers 410
    assert not await store.run(lambda db: db.capability_expired("cap-live"))

    assert await store.run(lambda db: db.revoke_follower("fol_1"))
    assert not await store.run(lambda db: db.revoke_follower("fol_1"))
    assert await store.run(lambda db: db.follower_for_hash("tok-hash")) is None
    assert await store.run(lambda db: db.get_capability("cap-live", now)) is None  # revoked with its token

    assert await store.run(lambda db: db.get_meta("k")) is None
    await store.run(lambda db: db.set_meta("k", "v1"))
    await store.run(lambda db: db.set_meta("k", "v2"))
    assert await store.run(lambda db: db.get_meta("k")) == "v2"


async def test_accounts_invitations_and_sessions(store: AsyncStore) -> None:
    now = time.time()
    await store.run(lambda db: db.create_invitation("inv1", "code-hash", "for alice", now, now + 3600))
    await store.run(lambda db: db.create_invitation("inv2", "old-hash", "", now - 10, now - 1))
    await store.run(lambda db: db.create_account("acc1", "Alice", "pw-hash", "code-hash", now))
    with pytest.raises(InvitationRefused, match="already used"):
        await store.run(lambda db: db.create_account("acc2", "bob", "pw", "code-hash", now))
    with pytest.raises(InvitationRefused, match="expired"):
        await store.run(lambda db: db.create_account("acc2", "bob", "pw", "old-hash", now))
    with pytest.raises(InvitationRefused, match="not valid"):
        await store.run(lambda db: db.create_account("acc2", "bob", "pw", "unknown", now))
    with pytest.raises(DuplicateAccount):  # usernames are compared without case, as SQLite's NOCASE does
        await store.run(lambda db: db.create_account("acc3", "alice", "pw", None, now))
    account = await store.run(lambda db: db.account_by_username("ALICE"))
    assert account is not None and account.account_id == "acc1" and account.username == "Alice"
    assert (await store.run(lambda db: db.account_by_id("acc1"))) == account
    await store.run(lambda db: db.set_password_hash("acc1", "new-hash"))
    assert (await store.run(lambda db: db.account_by_id("acc1"))).password_hash == "new-hash"
    invitations = await store.run(lambda db: db.list_invitations())
    assert {(i.invitation_id, i.used_by) for i in invitations} == {("inv1", "Alice"), ("inv2", None)}

    await store.run(lambda db: db.create_web_session("sess1", "acc1", False, "csrf1", now, now + 60))
    await store.run(lambda db: db.create_web_session("op", None, True, "csrf2", now, now + 60))
    session = await store.run(lambda db: db.get_web_session("sess1", now))
    assert session is not None and (session.username, session.operator, session.csrf) == ("Alice", False, "csrf1")
    assert (await store.run(lambda db: db.get_web_session("op", now))).operator is True
    assert await store.run(lambda db: db.get_web_session("sess1", now + 61)) is None  # expired
    await store.run(lambda db: db.delete_web_session("op"))
    assert await store.run(lambda db: db.get_web_session("op", now)) is None


async def test_subscriptions_disable_and_page_statistics(store: AsyncStore) -> None:
    now = time.time()
    await store.run(lambda db: db.create_account("author", "author", "pw", None, now))
    await store.run(lambda db: db.create_account("fan", "fan", "pw", None, now))
    await store.run(lambda db: db.create_owned_strategy(strategy("s1", "private"), "secret-hash", "author", "desc"))
    with pytest.raises(DuplicateStrategy):
        await store.run(lambda db: db.create_owned_strategy(strategy("s1"), "other-hash", "author", ""))
    details = await store.run(lambda db: db.strategy_details("s1"))
    assert (details.owner_id, details.description, details.archived) == ("author", "desc", False)
    await store.run(lambda db: db.update_strategy("s1", "Renamed", "new desc", ["ETH/USDT"], None))
    assert {s.id: s.name for s in await store.run(lambda db: db.load_strategies())} == {"s1": "Renamed"}
    await store.run(lambda db: db.invite_to_strategy("s1", "fan", now))
    await store.run(lambda db: db.invite_to_strategy("s1", "fan", now))
    assert await store.run(lambda db: db.invited_strategy_ids("fan")) == {"s1"}
    assert await store.run(lambda db: db.strategy_invitees("s1")) == ["fan"]

    assert await store.run(lambda db: db.create_subscription("fan", "s1", "fol_fan", "fan-hash", "sealed", now))
    assert not await store.run(lambda db: db.create_subscription("fan", "s1", "fol_x", "x-hash", "sealed", now))
    subscription = await store.run(lambda db: db.get_subscription("fan", "s1"))
    assert subscription is not None and subscription.token_id == "fol_fan"
    assert [s.strategy_id for s in await store.run(lambda db: db.list_subscriptions("fan"))] == ["s1"]
    assert (await store.run(lambda db: db.follower_for_hash("fan-hash"))).strategies == {"s1"}

    for i in range(5):
        await store.append("s1", f"u{i}", i, {"i": i}, None)
    stats = await store.run(lambda db: db.strategy_stats("s1"))
    assert (stats.signals, stats.followers) == (5, 1) and stats.first_at <= stats.last_at
    assert (await store.run(lambda db: db.all_strategy_stats()))["s1"] == stats
    today = int(time.time() // 86400)
    assert await store.run(lambda db: db.daily_signal_counts("s1", today - 2, 3)) == {today: 5}
    latest = await store.run(lambda db: db.latest_journal("s1", 2))
    assert [(row[0], row[2]) for row in latest] == [(5, {"i": 4}), (4, {"i": 3})]
    accounts = {a.username: (a.subscriptions, a.strategies) for a in await store.run(lambda db: db.list_accounts())}
    assert accounts == {"author": (0, 1), "fan": (1, 0)}

    assert await store.run(lambda db: db.delete_subscription("fan", "s1")) == "fol_fan"
    assert await store.run(lambda db: db.delete_subscription("fan", "s1")) is None
    assert await store.run(lambda db: db.follower_for_hash("fan-hash")) is None

    await store.run(lambda db: db.create_web_session("author-session", "author", False, "c", now, now + 60))
    result = await store.run(lambda db: db.disable_account("author", {"s1": "dead-hash"}))
    assert result == ([], ["s1"])
    assert await store.run(lambda db: db.disable_account("author", {"s1": "dead-hash"})) is None
    assert await store.run(lambda db: db.get_web_session("author-session", now)) is None
    assert await store.run(lambda db: db.strategy_for_publish_secret("dead-hash")) == "s1"
    assert await store.run(lambda db: db.archive_strategy("s1", "dead-2"))
    assert not await store.run(lambda db: db.archive_strategy("s1", "dead-3"))
    assert (await store.run(lambda db: db.strategy_details("s1"))).archived
    assert await store.run(lambda db: db.set_publish_secret_hash("s1", "h9"))
    assert not await store.run(lambda db: db.set_publish_secret_hash("missing", "h10"))


async def test_mqtt_tables(store: AsyncStore) -> None:
    await store.run(lambda db: db.create_strategy(strategy("pub"), "h1"))
    await store.run(lambda db: db.create_strategy(strategy("priv", "private"), "h2"))
    for i in range(3):
        await store.append("pub", f"u{i}", i, {}, None)
    await store.run(lambda db: db.create_follower_token("fol_a", "ha", "pub"))
    before = await store.run(lambda db: db.mqtt_readers_fingerprint())
    await store.run(lambda db: db.create_follower_token("fol_b", "hb", "priv"))
    after = await store.run(lambda db: db.mqtt_readers_fingerprint())
    assert before != after and after == await store.run(lambda db: db.mqtt_readers_fingerprint())
    name = await store.run(lambda db: db.mqtt_username("fol_a"))
    assert name.startswith(USERNAME_PREFIX) and name == await store.run(lambda db: db.mqtt_username("fol_a"))
    readers = {r.username: r.strategy_ids for r in await store.run(lambda db: db.mqtt_readers())}
    assert readers[name] == ("pub",) and sorted(readers.values()) == [("priv", "pub"), ("pub",)]
    # archived: no new followers on the broker either; its members keep their topic
    await store.run(lambda db: db.create_strategy(strategy("old"), "h3"))
    await store.run(lambda db: db.create_follower_token("fol_c", "hc", "old"))
    readers = {r.username: r.strategy_ids for r in await store.run(lambda db: db.mqtt_readers())}
    assert readers[name] == ("old", "pub")
    before = await store.run(lambda db: db.mqtt_readers_fingerprint())
    assert await store.run(lambda db: db.archive_strategy("old", "dead"))
    assert await store.run(lambda db: db.mqtt_readers_fingerprint()) != before
    readers = {r.username: r.strategy_ids for r in await store.run(lambda db: db.mqtt_readers())}
    member = await store.run(lambda db: db.mqtt_username("fol_c"))
    assert readers[name] == ("pub",) and readers[member] == ("old", "pub")
    await store.run(lambda db: db.revoke_follower("fol_b"))
    await store.run(lambda db: db.revoke_follower("fol_c"))
    assert len(await store.run(lambda db: db.mqtt_readers())) == 1

    assert await store.run(lambda db: db.start_egress_positions("b:1", ["pub", "priv"])) == {"pub": 3, "priv": 0}
    await store.run(lambda db: db.set_egress_position("b:1", "pub", 7))
    await store.run(lambda db: db.set_egress_position("b:1", "pub", 5))  # never moves back
    assert await store.run(lambda db: db.egress_positions("b:1")) == {"pub": 7, "priv": 0}
    assert await store.run(lambda db: db.start_egress_positions("b:1", ["pub"])) == {"pub": 7, "priv": 0}


async def test_append_latency(store: AsyncStore, store_url: str | None) -> None:  # noqa: F811
    """Durable appends one after the other (what one publisher waits for before its ack): printed figures,
    and a loose bound that only a broken store (a lock wait, a reconnect per call) would exceed."""
    await store.run(lambda db: db.create_strategy(strategy("s1"), "h1"))
    bundle = {"identifier": "s1", "version": "1.0.0", "signals": [{"topic": "orders", "content": {"x": 1}}]}
    for i in range(10):  # warm-up (prepared statements, caches)
        await store.append("s1", f"w{i}", i, bundle, None)
    samples = []
    for i in range(200):
        started = time.perf_counter()
        await store.append("s1", f"u{i}", i, bundle, None)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p50, p99 = statistics.median(samples), samples[int(len(samples) * 0.99) - 1]
    print(f"\nappend latency ({'postgresql' if store_url else 'sqlite'}, n=200): p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    assert p99 < 250, samples[-5:]
