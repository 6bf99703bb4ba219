"""Chained and bundled creates meet the follower's risk controls unless they truly protect their parent.

Issue 17, defect 1: a create with `chained_to` / `bundled_with` used to take the linked path, sized as
my_parent x leader_child / leader_parent with no max_volume, max_exposure_percent, max_open_copies, drawdown
stop or pair_filter. Now only a true exit of its parent (same symbol, closing side or reduce-only, no larger
than the parent) keeps that proportional size; anything else is sized and checked like an entry.
"""
from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import signal_factory as sf
from follower_helpers import only
from octobot_signals.simulator.harness import follower_on_sim_exchange
from octobot_signals.simulator.sim_exchange import SimExchangeSpec

BTC, ETH = "BTC/USDT", "ETH/USDT"


def spec(portfolio: dict[str, str], prices: dict[str, str] | None = None) -> SimExchangeSpec:
    return SimExchangeSpec(portfolio={k: Decimal(v) for k, v in portfolio.items()},
                           prices={k: Decimal(v) for k, v in (prices or {BTC: "20000"}).items()})


def parent_buy(order_id: str = "P", share: str = "1%", quantity: float = 0.0005, limit_price: float = 20000.0,
               **extra):
    return sf.order_content(order_id=order_id, order_type="buy_limit", quantity=quantity, limit_price=limit_price,
                            target_amount=share, **extra)


def replay(journal: list[dict], tmp_path: Path, *settings: str) -> list[dict]:
    """`octobot-signals replay` on a journal file, as the outside review ran it."""
    path = tmp_path / "journal.jsonl"
    path.write_text("".join(json.dumps(message) + "\n" for message in journal), encoding="utf-8")
    args = [sys.executable, "-m", "octobot_signals.cli.main", "replay", str(path), "--portfolio", "USDT=1000",
            "--price", "BTC/USDT=20000", "--price", "ETH/USDT=2000", "--json"]
    for setting in settings:
        args += ["--set", setting]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()][:-1]


def by_order(rows: list[dict]) -> dict[str, dict]:
    return {row["order_id"]: row for row in rows if row["action"] == "create"}


# ---- the review's reproductions, through the replay CLI ---------------------------------------------------
def test_replay_a_same_side_chained_child_is_sized_like_an_entry(tmp_path):
    # the leader's 1 % buy, then a buy_limit chained to it at 95x its size (90 % of my portfolio)
    child = sf.order_content(order_id="CHILD", order_type="buy_limit", quantity=0.0475, limit_price=19000.0,
                             target_amount="90%", chained_to="P")
    rows = by_order(replay([sf.message(sf.signal(parent_buy(additional_orders=[child])))], tmp_path,
                           "max_volume=10", "max_exposure_percent=20"))
    assert rows["P"]["result"] == "created"
    assert Decimal(rows["P"]["orders"][0]["quantity"]) == Decimal("0.0005")
    placed = rows["CHILD"]
    assert placed["result"] == "created", placed
    # max_volume 10 % of 1000 USDT / 20000 = 0.005 BTC, not 0.0475 (~902 USDT)
    assert Decimal(placed["orders"][0]["quantity"]) <= Decimal("0.005"), placed
    assert "max_volume" in placed["reason"] and "not an exit of P" in placed["reason"], placed


def test_replay_a_chained_child_on_another_pair_meets_pair_filter(tmp_path):
    parent = parent_buy(share="1%", limit_price=19500.0)  # open: the child waits for its fill
    foreign = sf.order_content(order_id="ETH-CHILD", symbol=ETH, order_type="buy_market", quantity=0.45,
                               current=2000.0, limit_price=2000.0, target_amount="90%", chained_to="P")
    rows = by_order(replay([sf.message(sf.signal(parent)), sf.message(sf.signal(foreign))], tmp_path,
                           "pair_filter=BTC/USDT"))
    assert rows["P"]["result"] == "created"
    assert rows["ETH-CHILD"]["result"] == "skipped", rows["ETH-CHILD"]
    assert rows["ETH-CHILD"]["reason"].startswith("pair_filter: ETH/USDT is not followed"), rows["ETH-CHILD"]


# ---- legitimate protective children keep the parent's size ------------------------------------------------
async def test_take_profit_and_stop_loss_children_keep_the_parent_size_under_every_control():
    tp = sf.order_content(order_id="TP", side="sell", order_type="sell_limit", quantity=0.004, limit_price=22000.0,
                          target_amount="4%", chained_to="E", group_id="g", group_type="OneCancelsTheOtherOrderGroup")
    sl = sf.order_content(order_id="SL", side="sell", order_type="stop_loss", quantity=0.004, limit_price=18000.0,
                          stop_price=18000.0, target_amount="4%", chained_to="E", group_id="g",
                          group_type="OneCancelsTheOtherOrderGroup")
    entry = sf.order_content(order_id="E", order_type="buy_limit", quantity=0.004, limit_price=19500.0,
                             target_amount="8%", additional_orders=[tp, sl])
    controls = {"max_volume": "10", "max_exposure_percent": "20", "max_open_copies": "1", "pair_filter": "BTC/USDT"}
    async with follower_on_sim_exchange(spec({"USDT": "2000"}), controls) as f:
        outcomes = await f.apply(sf.message(sf.signal(entry)))
        assert [o.result.value for o in outcomes] == ["created"] * 3, [o.reason for o in outcomes]
        mine = Decimal(outcomes[0].orders[0]["quantity"])
        assert mine == Decimal("0.008")
        assert [Decimal(o.orders[0]["quantity"]) for o in outcomes[1:]] == [mine, mine]
        # a stop-loss sent later, chained to the open copy: still an exit, max_open_copies=1 does not stop it
        later = only(await f.apply(sf.create(order_id="SL2", side="sell", order_type="stop_loss", quantity=0.002,
                                             limit_price=17000.0, stop_price=17000.0, target_amount="2%",
                                             chained_to="E")))
        assert later.result.value == "created", later.reason
        assert Decimal(later.orders[0]["quantity"]) == Decimal("0.004")  # half of mine, as the leader did


async def test_an_exit_child_larger_than_its_parent_is_not_proportional():
    # a sell chained to a buy but twice its size: it would sell what the parent never bought
    big = sf.order_content(order_id="BIG", side="sell", order_type="sell_limit", quantity=0.02, limit_price=22000.0,
                           target_amount="100%", chained_to="E")
    entry = sf.order_content(order_id="E", order_type="buy_limit", quantity=0.01, limit_price=19500.0,
                             target_amount="10%", additional_orders=[big])
    async with follower_on_sim_exchange(spec({"USDT": "2000", "BTC": "0.5"})) as f:
        outcomes = await f.apply(sf.message(sf.signal(entry)))
        assert outcomes[0].result.value == "created"
        child = outcomes[1]
        # sized like an entry sell: 100 % of my BTC would be 0.5, capped by the default max_volume... it is not
        # my_parent x 2 = 0.02 either way: the reason says it is not an exit of its parent
        assert child.reason and "not an exit of E" in child.reason, child
        assert child.result.value in ("created", "skipped")


async def test_same_side_child_of_an_open_copy_meets_the_drawdown_stop_and_max_open_copies():
    async with follower_on_sim_exchange(spec({"USDT": "1000", "BTC": "0.05"}),
                                        {"drawdown_stop_percent": "5", "max_open_copies": "1"}) as f:
        assert only(await f.apply(sf.message(sf.signal(parent_buy(share="5%", quantity=0.0025, limit_price=15000.0))))).result.value \
            == "created"
        # max_open_copies=1: the parent is my one open entry, a chained buy is another one
        grow = only(await f.apply(sf.create(order_id="GROW", order_type="buy_limit", quantity=0.05,
                                            limit_price=19000.0, target_amount="50%", chained_to="P")))
        assert grow.result.value == "skipped" and grow.reason.startswith("max_open_copies"), grow
        await f.sim.move_price(BTC, Decimal(17000))  # 1850 from 2000: 7.5 % down, the stop trips
        grow = only(await f.apply(sf.create(order_id="GROW2", order_type="buy_limit", quantity=0.05,
                                            limit_price=16000.0, target_amount="50%", bundled_with="P")))
        assert grow.result.value == "skipped" and grow.reason.startswith("drawdown stop"), grow
        # a protective stop-loss still applies while the stop is tripped
        sl = only(await f.apply(sf.create(order_id="SLX", side="sell", order_type="stop_loss", quantity=0.0025,
                                          limit_price=15000.0, stop_price=15000.0, target_amount="5%",
                                          chained_to="P")))
        assert sl.result.value == "created", sl.reason


async def test_a_same_side_child_counts_its_pending_parent_in_the_exposure():
    # 1000 USDT, max_exposure 20 % = 200 USDT: the parent takes 150, so the child may only add 50
    child = sf.order_content(order_id="C", order_type="buy_limit", quantity=0.01, limit_price=20000.0,
                             target_amount="15%", chained_to="P")
    parent = parent_buy(share="15%", quantity=0.0075, additional_orders=[child])
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_exposure_percent": "20"}) as f:
        outcomes = await f.apply(sf.message(sf.signal(parent)))
        assert Decimal(outcomes[0].orders[0]["quantity"]) == Decimal("0.0075")
        assert outcomes[1].result.value == "created", outcomes[1].reason
        assert Decimal(outcomes[1].orders[0]["quantity"]) == Decimal("0.0025"), outcomes[1]
        assert "max_exposure_percent" in outcomes[1].reason


async def test_futures_reduce_only_child_keeps_the_parent_size_and_a_same_side_child_is_capped():
    perp = "BTC/USDT:USDT"
    futures = SimExchangeSpec(portfolio={"USDT": Decimal(1000)}, prices={perp: Decimal(20000)}, exchange_type="future")

    def order(order_id: str, **extra):
        return sf.order_content(order_id=order_id, symbol=perp, exchange_type="future", **extra)

    stop = order("FSL", side="sell", order_type="stop_loss", quantity=0.01, limit_price=18000.0, stop_price=18000.0,
                 target_amount="20%", reduce_only=True, chained_to="FE")
    same_side = order("FADD", order_type="buy_limit", quantity=0.05, limit_price=19000.0, target_amount="100%",
                      chained_to="FE")
    entry = order("FE", order_type="buy_limit", quantity=0.01, limit_price=19500.0, target_amount="20%",
                  additional_orders=[stop, same_side])
    async with follower_on_sim_exchange(futures, {"max_volume": "25"}) as f:
        outcomes = await f.apply(sf.message(sf.signal(entry)))
        assert [o.result.value for o in outcomes] == ["created"] * 3, [o.reason for o in outcomes]
        mine = Decimal(outcomes[0].orders[0]["quantity"])
        assert Decimal(outcomes[1].orders[0]["quantity"]) == mine  # the reduce-only stop protects all of it
        added = Decimal(outcomes[2].orders[0]["quantity"])
        assert added < mine * 5 and "max_volume" in outcomes[2].reason, outcomes[2]


# ---- a protective exit sent after my copy of its parent filled ---------------------------------------------
async def test_a_stop_loss_chained_to_a_filled_copy_protects_what_filled():
    # the leader's market buy fills at once (mine too); its stop-loss comes in a later message
    entry = sf.create(order_id="MB", order_type="buy_market", quantity=0.01, target_amount="10%")
    stop = sf.create(order_id="MB-SL", side="sell", order_type="stop_loss", quantity=0.01, limit_price=18000.0,
                     stop_price=18000.0, target_amount="10%", chained_to="MB")
    async with follower_on_sim_exchange(spec({"USDT": "1000"})) as f:
        bought = only(await f.apply(entry))
        assert bought.result.value == "created", bought.reason
        assert f.sim.open_orders() == []  # filled
        held = f.sim.portfolio()["BTC"]["total"]
        protected = only(await f.apply(stop))
        assert protected.result.value == "created", protected.reason
        assert "after my copy of MB filled" in protected.reason
        # what filled (0.005 BTC), less the fee the exchange took in BTC: never more than I hold
        assert Decimal(protected.orders[0]["quantity"]) == held == Decimal("0.004995")
        assert [o.order_type.value for o in f.sim.open_orders()] == ["stop_loss"]


async def test_a_same_side_order_chained_to_a_filled_copy_is_an_entry():
    entry = sf.create(order_id="MB2", order_type="buy_market", quantity=0.001, target_amount="1%")
    more = sf.create(order_id="MB2-ADD", order_type="buy_limit", quantity=0.05, limit_price=19000.0,
                     target_amount="50%", chained_to="MB2")
    async with follower_on_sim_exchange(spec({"USDT": "1000"}), {"max_volume": "10"}) as f:
        assert only(await f.apply(entry)).result.value == "created"
        added = only(await f.apply(more))
        assert added.result.value == "created", added.reason
        assert Decimal(added.orders[0]["quantity"]) <= Decimal("0.005") and "max_volume" in added.reason
