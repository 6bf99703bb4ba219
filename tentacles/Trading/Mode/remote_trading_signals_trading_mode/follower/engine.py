"""The follower engine: applies validated strategy feed messages to one OctoBot exchange.

Flow per message: decode + validate (core.signal_schema) -> dedup on `u` -> age check ->
for each signal in dependency order: size (core.sizing) and act through the trading mode
(so OctoBot's own order paths run) or the trader. Every order content yields one Outcome.
Nothing here raises on bad input: a bad message or signal becomes a rejected Outcome and the
next message is still applied.
"""
from __future__ import annotations

import asyncio
import dataclasses
import decimal
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data

from ..core import protocol, risk, sizing
from ..core import settings as settings_module
from ..core import signal_schema as schema
from ..core.decimal_util import plain
from . import exchange_view, order_builder, order_lookup, symbol_map
from .order_map import OrderLink, OrderMap, OrderMapStorageError, PendingCreate
from .outcome import Outcome, Result

Decimal = decimal.Decimal
_MARKET_TYPES = (trading_enums.TraderOrderType.BUY_MARKET, trading_enums.TraderOrderType.SELL_MARKET)
# links of filled orders are never closed by a signal: they are swept (closed when their order is gone
# from the exchange) each time the open links double, so a sweep costs O(1) per link on average
_SWEEP_MIN_OPEN_LINKS = 1000
_DRAWDOWN_KEYS = ("drawdown_peak", "drawdown_stopped_at", "drawdown_reset")
# a live bot's feed subscribes while its exchange still loads: a create waits this long for my first price
# (in order: later messages wait behind it) instead of being skipped for good
FIRST_PRICE_WAIT_S = 60.0
# a create OctoBot answered with None (refused, or the exchange failed): look again after these (jittered) delays
_CREATE_RETRY_DELAYS_S = (1.0, 2.0, 4.0)


@dataclass(frozen=True)
class _LostAnswer:
    """A create the exchange took although OctoBot never got its answer (found by asking the exchange)."""

    exchange_order_id: str


@dataclass(frozen=True)
class _PendingParent:
    """A copy built in this bundle and not on the exchange yet: what its linked children must not reuse."""

    signal: schema.OrderSignal
    quantity: Decimal
    cost_price: Decimal

    @property
    def side(self) -> schema.Side:
        assert self.signal.side is not None  # a create's side is required by the schema (it was placed)
        return self.signal.side


@dataclass
class _Context:
    message: schema.FeedMessage
    now: Decimal
    outcomes: list[Outcome]
    failed_order_ids: set[str]
    too_old: sizing.Skip | None = None  # a late message opens nothing, but still edits and cancels


class FollowerEngine:
    def __init__(
        self, exchange_manager: Any, settings: settings_module.FollowerSettings, order_map: OrderMap,
        *, trading_mode: Any = None, clock: Callable[[], float] = time.time, check_age: bool = True,
        logger: logging.Logger | None = None,
    ) -> None:
        self.exchange_manager = exchange_manager
        self.settings = settings
        self.order_map = order_map
        self.trading_mode = trading_mode
        self.clock = clock
        self.check_age = check_age
        self.logger = logger or logging.getLogger("RemoteTradingSignalsFollower")
        self.exchange_type = schema.ExchangeType.FUTURE if exchange_manager.is_future else schema.ExchangeType.SPOT
        self._next_sweep = max(_SWEEP_MIN_OPEN_LINKS, 2 * order_map.open_link_count())
        self._validation: tuple[tuple[Any, ...], schema.ValidationContext] | None = None

    # ---- entry point -------------------------------------------------------------------
    def validation_context(self) -> schema.ValidationContext:
        """What a message is validated against: my traded pairs, my exchange type, the strategy I follow.
        Rebuilt whenever one of them changes (checked on every message), else the same object."""
        is_future = bool(self.exchange_manager.is_future)
        key = (tuple(self.exchange_manager.exchange_config.traded_symbol_pairs), is_future,
               self.settings.trading_strategy or None)
        if self._validation is None or self._validation[0] != key:
            self._validation = key, schema.ValidationContext(
                symbols=exchange_view.known_symbols(self.exchange_manager),
                exchange_type=schema.ExchangeType.FUTURE if is_future else schema.ExchangeType.SPOT,
                strategy_id=key[2],
            )
        return self._validation[1]

    async def apply_message(self, raw: Any) -> list[Outcome]:
        """Apply one feed message (dict, JSON text or bytes). Never raises on bad input."""
        try:
            if isinstance(raw, (bytes, bytearray)):
                raw = raw.decode("utf-8")
            if isinstance(raw, str):
                raw = json.loads(raw)
            mapped = symbol_map.map_message_symbols(raw, self.settings.quote_mapping)
            message = schema.parse_feed_message(mapped, self.validation_context())
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            reason = str(err) if isinstance(err, schema.SignalValidationError) else f"not a feed message: {err}"
            outcome = Outcome(_get(raw, "u"), _get(raw, "q"), None, None, Result.REJECTED, reason)
            self._log(outcome)
            return [outcome]
        signature_error = self._signature_error(raw, message)
        if signature_error is not None:
            outcome = Outcome(message.u, message.q, None, None, Result.REJECTED, signature_error)
            self._log(outcome)
            return [outcome]
        if self.order_map.was_applied(message.u):
            return self._skip_all(message, f"duplicate message u={message.u}: already applied")
        now = Decimal(str(self.clock()))
        age_skip = sizing.check_signal_age(now, message.d, self.settings) if self.check_age else None
        ctx = _Context(message, now, [], set(), age_skip)
        if self.settings.drawdown_stop_percent > 0:
            self._update_drawdown()
        for signal in schema.dependency_order(message.bundle):
            await self._apply_signal(ctx, signal)
        outcomes = ctx.outcomes
        self.order_map.mark_applied(message.u)
        # handed to the writer thread without waiting: it is written before the feed records this message as
        # done (one FIFO thread); not fsynced, so it survives a kill -9 (WAL), and were a power loss to drop it,
        # every order the message placed still has its durable write-ahead entry, which later signals recover
        self.order_map.save_soon()
        return outcomes

    def _signature_error(self, raw: dict[str, Any], message: schema.FeedMessage) -> str | None:
        """With the publisher's key configured, only its signed messages count (journals and backtests too)."""
        if not self.settings.public_key:
            return None
        if not message.g:
            return "g: unsigned message refused (this strategy's public key is configured)"
        # the signature covers the message as sent: raw d, raw s, the strategy id
        if not protocol.verify_message(self.settings.public_key, raw.get("d"), message.bundle.identifier,
                                       raw.get("s"), message.u, message.g):
            return "g: signature does not match the strategy's public key"
        return None

    # ---- dispatch ----------------------------------------------------------------------
    async def _apply_signal(self, ctx: _Context, signal: schema.ParsedSignal | schema.RejectedSignal) -> None:
        if isinstance(signal, schema.RejectedSignal):
            if signal.order_id:
                ctx.failed_order_ids.add(signal.order_id)
            self._record(ctx, Outcome(ctx.message.u, ctx.message.q, signal.order_id, signal.action,
                                      Result.REJECTED, str(signal.error)))
            return
        content = signal.content
        if isinstance(content, schema.PositionSignal):
            await self._edit_leverage(ctx, content)
            return
        missing = [dep for dep in signal.depends_on_order_ids if dep in ctx.failed_order_ids]
        if missing:
            self._skip_tree(ctx, content, f"depends on leader order {missing[0]}, which was not applied")
            return
        try:
            await getattr(self, _HANDLERS[content.action])(ctx, content)
        except OrderMapStorageError:
            raise  # nothing can be recorded: stop this message, it is applied again once the map works
        except Exception as err:  # an exchange error must not stop the feed: report and go on
            self.logger.exception("unexpected error applying %s %s", content.action.value, content.order_id)
            self._skip_tree(ctx, content, f"exchange error: {err.__class__.__name__}: {err}")

    # ---- create ------------------------------------------------------------------------
    async def _create(self, ctx: _Context, signal: schema.OrderSignal) -> None:
        if ctx.too_old is not None:
            # too late to enter at the leader's terms; its later edits and cancels find nothing to do
            self._skip_tree(ctx, signal, ctx.too_old.reason)
            return
        existing = self._find_local(signal.order_id)
        if existing is not None or self.order_map.local_id(signal.order_id):
            self._skip_tree(ctx, signal, f"leader order {signal.order_id} already copied")
            return
        if signal.order_id in self.order_map.pending:
            self._skip_tree(ctx, signal, self._recover_pending(signal))
            return
        if not self.exchange_manager.is_backtesting:
            await exchange_view.wait_for_mark_price(self.exchange_manager, signal.symbol, FIRST_PRICE_WAIT_S)
        parent_id = signal.chained_to or signal.bundled_with
        if parent_id:
            await self._create_chained_to_existing(ctx, signal, parent_id)
            return
        entry = self._entry_plan(signal)
        if isinstance(entry, sizing.Skip):
            self._skip_tree(ctx, signal, entry.reason)  # like a sizing skip: what it carries goes with it
            return
        plan, my_price = entry
        order = order_builder.build_order(self.exchange_manager, self._strategy(signal), signal, plan, my_price)
        pending = (_PendingParent(signal, plan.quantity, plan.price or my_price),)
        children = await self._attach_children(ctx, signal, order, plan.quantity, pending)
        created = await self._submit(order, signal)
        if created is None:
            self._skip_tree(ctx, signal, "the exchange refused the order")
            return
        if isinstance(created, _LostAnswer):
            self._record_lost_answer(ctx, signal, created)
            return
        self._link(signal, created, plan.quantity)
        self._record(ctx, self._outcome(ctx, signal, Result.CREATED, plan_note(plan), [created]))
        for child_signal, child_order, child_qty, note in children:
            self._link(child_signal, child_order, child_qty)
            self._record(ctx, self._outcome(ctx, child_signal, Result.CREATED, note, [child_order]))
        for sibling in _group_siblings(signal):
            await self._create(ctx, sibling)

    def _entry_plan(self, signal: schema.OrderSignal, pending: tuple[_PendingParent, ...] = (),
                    ) -> tuple[sizing.OrderPlan, Decimal] | sizing.Skip:
        """A new copy sized and checked like an entry: pair_filter, the drawdown stop, the market price
        deviation, max_open_copies, max_exposure_percent, max_volume, funds. `pending`: parents placed in the
        same bundle just before it, whose funds and exposure are already taken."""
        my_price = exchange_view.mark_price(self.exchange_manager, signal.symbol)
        if my_price is None:
            return sizing.Skip(f"no price for {signal.symbol} yet")
        refusal = self._risk_refusal(signal)
        if refusal is not None:
            return refusal
        if signal.order_type in _MARKET_TYPES and signal.current is not None:
            deviation = sizing.check_price_deviation(my_price, signal.current, self.settings)
            if deviation is not None:
                return deviation
        view = None
        if self.settings.max_exposure_percent > 0 or self.settings.max_open_copies > 0:
            view = exchange_view.risk_view(self.exchange_manager, signal.symbol, self._is_copy)
        held = exchange_view.holdings(self.exchange_manager, signal.symbol)
        for parent in pending:
            held, view = sizing.reserve_pending_parent(
                held, view, parent.signal.symbol, parent.side, parent.quantity, parent.cost_price, signal.symbol,
                self.exchange_type, sizing.is_entry(parent.signal, self.exchange_type))
        limits = exchange_view.market_limits(self.exchange_manager, signal.symbol)
        plan = self._size(signal, my_price, limits, holdings=held, view=view)
        return plan if isinstance(plan, sizing.Skip) else (plan, my_price)

    def _size(self, signal: schema.OrderSignal, my_price: Decimal, limits: sizing.MarketLimits,
              share: schema.Share | None = None, holdings: sizing.Holdings | None = None,
              view: risk.RiskView | None = None,
              ) -> sizing.OrderPlan | sizing.Skip:
        return sizing.size_entry(
            signal, holdings or exchange_view.holdings(self.exchange_manager, signal.symbol), my_price, limits,
            self.settings, self.exchange_type,
            futures_max_size=exchange_view.futures_max_size(self.exchange_manager, signal.symbol, my_price),
            share=share, risk=view,
        )

    # ---- risk controls -------------------------------------------------------------------
    def _risk_refusal(self, signal: schema.OrderSignal) -> sizing.Skip | None:
        """pair_filter (any new copy) and the drawdown stop (entries): the controls that refuse before sizing.
        A control that is off refuses nothing: its inputs are not even read."""
        if self.settings.pair_filter:
            filtered = risk.pair_filter_skip(self._leader_symbol(signal.symbol), signal.symbol, self.settings)
            if filtered is not None:
                return filtered
        if self.settings.drawdown_stop_percent != 0 and sizing.is_entry(signal, self.exchange_type):
            return risk.drawdown_skip(self._drawdown_state(), self.settings)
        return None

    def _leader_symbol(self, my_symbol: str) -> str:
        """Undo quote_mapping: the pair as the leader named it (pair_filter accepts either name)."""
        inverse = tuple((mine, leader) for leader, mine in self.settings.quote_mapping)
        return risk.map_symbol(my_symbol, inverse)

    def _is_copy(self, local_order_id: str) -> bool:
        return self.order_map.leader_id(local_order_id) is not None

    def _drawdown_state(self) -> risk.DrawdownState:
        state = self.order_map.state
        peak, stopped_at = state.get("drawdown_peak"), state.get("drawdown_stopped_at")
        return risk.DrawdownState(
            peak=Decimal(peak) if peak else None, stopped_at=Decimal(stopped_at) if stopped_at else None,
            reset=int(state.get("drawdown_reset", "0")),
        )

    def _update_drawdown(self) -> None:
        """The peak since following began (or the last drawdown_reset), kept in the order map across restarts."""
        currency = exchange_view.reference_market(self.exchange_manager)
        value = exchange_view.portfolio_value(self.exchange_manager, currency)
        before = self._drawdown_state()
        after, message = risk.update_drawdown(before, value, self.settings)
        if after != before:
            for key, item in zip(_DRAWDOWN_KEYS, (after.peak, after.stopped_at, after.reset), strict=True):
                self.order_map.set_state(key, "" if item is None else str(item))
        if message:
            self.logger.warning("%s (%s)", message, currency)

    def _holdings_for_edit(self, order: Any) -> sizing.Holdings:
        """My holdings as an edit of `order` sees them: what the order locks is released by the edit (the
        exchange re-locks the new size), so it is available to the edited order; sizing against the free part
        alone would shrink every edit of an order that uses most of my funds."""
        held = exchange_view.holdings(self.exchange_manager, order.symbol)
        locked = self._locked_by(order)
        if not locked:
            return held
        if order.side is trading_enums.TradeOrderSide.BUY:
            return dataclasses.replace(held, quote_available=held.quote_available + locked)
        return dataclasses.replace(held, base_available=held.base_available + locked)

    @staticmethod
    def _locked_by(order: Any) -> Decimal:
        """What `order` locks in my portfolio now: a chained order still waiting for its entry locks nothing yet."""
        if not (order.is_open() and order.is_counted_in_available_funds()):
            return Decimal(0)
        return Decimal(personal_data.get_order_locked_amount(order, force_use_origin_quantity_and_price=True))

    def _limit_edit_increase(self, order: Any, plan: sizing.OrderPlan, cost_price: Decimal,
                             limits: sizing.MarketLimits) -> sizing.OrderPlan | sizing.Skip:
        """An edit growing a copied entry meets max_exposure_percent and the drawdown stop, like a new entry."""
        current = Decimal(order.origin_quantity)
        side = schema.Side(order.side.value)
        if plan.quantity <= current or not sizing.is_entry_order(side, order.order_type, bool(order.reduce_only),
                                                                 self.exchange_type):
            return plan  # a decrease or an exit: never limited (and no risk view to read)
        view = None
        if self.settings.max_exposure_percent > 0:
            view = exchange_view.risk_view(self.exchange_manager, order.symbol, self._is_copy)
        drawdown = risk.drawdown_skip(self._drawdown_state(), self.settings)
        return sizing.limit_edit_increase(plan, self._edited_entry(order), Decimal(cost_price), limits,
                                          self.settings, order.symbol, view, drawdown)

    def _edited_entry(self, order: Any) -> risk.EditedEntry:
        """My order as exchange_view.risk_view counts it in the exposure now (so the edit never counts it twice)."""
        quantity = Decimal(order.origin_quantity)
        if not order.is_open():
            return risk.EditedEntry(quantity, Decimal(0))  # waiting for its entry: not on the exchange yet
        if self.exchange_manager.is_future:
            return risk.EditedEntry(quantity, quantity * Decimal(order.origin_price or 0))
        return risk.EditedEntry(quantity, self._locked_by(order), Decimal(order.filled_quantity))

    async def _attach_children(
        self, ctx: _Context, parent_signal: schema.OrderSignal, parent_order: Any, parent_qty: Decimal,
        pending: tuple[_PendingParent, ...],
    ) -> list[tuple[schema.OrderSignal, Any, Decimal, str | None]]:
        """Chain the leader's additional orders (stop-loss / take-profit...) to my copy: exits keep its size,
        anything else is sized like an entry."""
        attached: list[tuple[schema.OrderSignal, Any, Decimal, str | None]] = []
        assert parent_signal.side is not None  # a create's side is required by the schema (it was placed)
        parent = sizing.LinkedParent(parent_signal.order_id, parent_signal.symbol, parent_signal.side,
                                     parent_signal.quantity)
        for child in parent_signal.additional_orders:
            if parent_signal.order_id not in (child.chained_to, child.bundled_with):
                continue  # a group sibling packed with this order, created on its own after it
            linked = self._linked_child_plan(child, parent, parent_qty, pending)
            if isinstance(linked, sizing.Skip):
                self._skip_tree(ctx, child, linked.reason)
                continue
            plan, my_price, note = linked
            child_order = order_builder.build_order(self.exchange_manager, self._strategy(child), child, plan, my_price)
            await order_builder.chain(parent_order, child_order, child)
            attached.append((child, child_order, plan.quantity, note))
            # grandchildren hang on this child the same way (both wait to be placed: both are reserved)
            attached.extend(await self._attach_children(
                ctx, child, child_order, plan.quantity,
                (*pending, _PendingParent(child, plan.quantity, plan.price or my_price))))
        return attached

    def _linked_child_plan(self, child: schema.OrderSignal, parent: sizing.LinkedParent, my_parent_qty: Decimal,
                           pending: tuple[_PendingParent, ...] = (),
                           ) -> tuple[sizing.OrderPlan, Decimal, str | None] | sizing.Skip:
        """A chained/bundled create: a true exit of its parent follows my parent's size; anything else (same
        side, another pair, larger than the parent) meets every entry control, or it would escape them all."""
        why_not = sizing.not_an_exit_of(child, parent, self.exchange_type)
        if why_not is None:
            my_price = exchange_view.mark_price(self.exchange_manager, child.symbol)
            if my_price is None:
                return sizing.Skip(f"no price for {child.symbol} yet")
            limits = exchange_view.market_limits(self.exchange_manager, child.symbol)
            plan = self._linked_plan(parent.leader_quantity, my_parent_qty, child, limits)
            return plan if isinstance(plan, sizing.Skip) else (plan, my_price, f"chained to {parent.order_id}")
        entry = self._entry_plan(child, pending)
        if isinstance(entry, sizing.Skip):
            return sizing.Skip(f"{entry.reason} ({why_not}: checked like an entry)")
        plan, my_price = entry
        notes = "; ".join((f"chained to {parent.order_id}", f"{why_not}: sized like an entry", *plan.notes))
        return plan, my_price, notes

    def _linked_plan(self, leader_parent_qty: Decimal | None, my_parent_qty: Decimal, child: schema.OrderSignal,
                     limits: sizing.MarketLimits) -> sizing.OrderPlan | sizing.Skip:
        if not leader_parent_qty or child.quantity is None:
            return sizing.Skip(f"cannot size chained order {child.order_id}: leader quantities missing")
        price = child.limit_price or child.stop_price
        # an exit never grows past my parent, not even when rounded up to the market minimum
        plan = sizing.size_linked(leader_parent_qty, my_parent_qty, child.quantity, limits,
                                  settings=self.settings, price=price, available=my_parent_qty, symbol=child.symbol)
        if isinstance(plan, sizing.Skip):
            return plan
        adapted = sizing.adapt_price(price, limits) if price is not None else None
        stop = sizing.adapt_price(child.stop_price, limits) if child.stop_price is not None else None
        return sizing.OrderPlan(plan.quantity, adapted, stop, plan.notes)

    async def _create_chained_to_existing(self, ctx: _Context, signal: schema.OrderSignal, parent_id: str) -> None:
        link = self.order_map.links.get(parent_id)
        parent = self._find_local(parent_id)
        filled = None
        if link is not None and parent is None:
            # my copy is gone from the open orders: what OctoBot traded of it says whether it filled, and how much
            filled = exchange_view.filled_part(self.exchange_manager, link.local_order_id)
        if link is None or (parent is None and filled is None):
            self._skip_tree(ctx, signal, f"chained to leader order {parent_id}, which I have not copied")
            return
        if parent is not None:
            linked_parent = sizing.LinkedParent(parent_id, parent.symbol, schema.Side(parent.side.value),
                                                Decimal(link.leader_quantity))
            my_parent_qty = Decimal(link.local_quantity)
        else:
            assert filled is not None
            side, my_parent_qty = filled
            linked_parent = sizing.LinkedParent(parent_id, link.symbol, side, Decimal(link.leader_quantity))
            if self.exchange_type is schema.ExchangeType.SPOT and signal.side is schema.Side.SELL:
                # a protective sell after the fill never sells more than I hold now (the fee came out of it)
                my_parent_qty = min(my_parent_qty, exchange_view.holdings(self.exchange_manager, link.symbol)
                                    .base_available)
        linked = self._linked_child_plan(signal, linked_parent, my_parent_qty)
        if isinstance(linked, sizing.Skip):
            self._skip_tree(ctx, signal, linked.reason)
            return
        plan, my_price, note = linked
        if parent is None:
            note = f"{note}; placed after my copy of {parent_id} filled ({plain(my_parent_qty)} held of it)"
        order = order_builder.build_order(self.exchange_manager, self._strategy(signal), signal, plan, my_price)
        if parent is not None and (parent.is_open() or parent.is_pending_creation()):
            await order_builder.chain(parent, order, signal)
            created = order
        else:
            created = await self._submit(order, signal)
        if created is None:
            self._skip_tree(ctx, signal, "the exchange refused the order")
            return
        if isinstance(created, _LostAnswer):
            self._record_lost_answer(ctx, signal, created)
            return
        self._link(signal, created, plan.quantity)
        self._record(ctx, self._outcome(ctx, signal, Result.CREATED, note, [created]))

    async def _submit(self, order: Any, signal: schema.OrderSignal) -> Any:
        # write-ahead: if the bot dies after the exchange took the order but before the message is recorded,
        # the re-delivered message finds this entry and never places a second copy
        self.order_map.mark_pending(signal.order_id, PendingCreate(
            order.symbol, order.side.value, order.order_type.value, str(order.origin_price),
            str(order.origin_quantity)))
        await self.order_map.save()
        created = await self._send(order)
        if created is None and not self.exchange_manager.is_backtesting and not self.exchange_manager.is_simulated:
            created = await self._retry_unanswered(order, signal)
        if created is None:
            self.order_map.clear_pending(signal.order_id)
        return created

    async def _send(self, order: Any) -> Any:
        if self.trading_mode is not None:
            return await self.trading_mode.create_order(order)
        return await self.exchange_manager.trader.create_order(order)

    async def _retry_unanswered(self, order: Any, signal: schema.OrderSignal) -> Any:
        """OctoBot answers None for a refused order and for an exchange that failed (5xx, timeout, a lost answer)
        alike. Before sending again, ask the exchange itself whether it took the order: if it did, it is my copy
        (found by its write-ahead entry: `_LostAnswer`), never placed twice; if it cannot tell, do not resend."""
        for delay in _CREATE_RETRY_DELAYS_S:
            await asyncio.sleep(delay * (0.5 + random.random()))  # jitter: many followers hit one exchange
            try:
                found = await order_lookup.pending_on_exchange(self.exchange_manager, self.order_map, signal.order_id)
            except order_lookup.ExchangeUnreachable as err:
                self.logger.warning("exchange unreachable after sending my copy of %s (%s): waiting before I "
                                    "check again", signal.order_id, err)
                continue
            if found is not None:
                return _LostAnswer(found)
            self.logger.warning("my copy of %s is not on the exchange: sending it again", signal.order_id)
            created = await self._send(order)
            if created is not None:
                return created
        return None

    def _record_lost_answer(self, ctx: _Context, signal: schema.OrderSignal, lost: _LostAnswer) -> None:
        # the write-ahead entry stays: my next look at this leader order (edit, cancel) links the order once
        # OctoBot has synced it from the exchange; its children were not attached to an order OctoBot knows
        self._record(ctx, self._outcome(
            ctx, signal, Result.CREATED,
            f"the exchange took my order {lost.exchange_order_id} but its answer was lost: linked on the next "
            f"signal for {signal.order_id}", []))
        for child in signal.additional_orders:
            self._skip_tree(ctx, child, f"parent {signal.order_id}'s answer was lost: its linked orders are not "
                                        f"placed")

    def _recover_pending(self, signal: schema.OrderSignal) -> str:
        order = order_lookup.recover_pending(self.exchange_manager, self.order_map, signal.order_id)
        if order is not None:
            self._link(signal, order, order.origin_quantity)
            return f"leader order {signal.order_id} already copied (my order {order.order_id}, found after a restart)"
        return (f"leader order {signal.order_id} was being copied when the bot stopped and no matching open order "
                f"is left (filled, or never placed): not placing it twice")

    # ---- edit / cancel / group -----------------------------------------------------------
    async def _edit(self, ctx: _Context, signal: schema.OrderSignal) -> None:
        order = self._find_local(signal.order_id, signal)
        if order is None:
            self._skip(ctx, signal, self._missing_copy_reason(signal.order_id))
            return
        waiting = order.is_waiting_for_chained_trigger and not order.is_open()
        if not (order.is_open() or waiting):
            self._skip(ctx, signal, f"my copy of {signal.order_id} is {order.status.value}, not open")
            return
        limits = exchange_view.market_limits(self.exchange_manager, order.symbol)
        my_price = exchange_view.mark_price(self.exchange_manager, order.symbol) or order.origin_price
        price = sizing.adapt_price(signal.updated_limit_price, limits) if signal.updated_limit_price else None
        stop = sizing.adapt_price(signal.updated_stop_price, limits) if signal.updated_stop_price else None
        quantity = None
        note = None
        kept = False  # a risk control refused the quantity increase: my copy keeps its size
        if signal.updated_target_amount is not None:
            # an edit may omit side/type: my copy knows them
            sized = dataclasses.replace(signal, side=signal.side or schema.Side(order.side.value),
                                        order_type=signal.order_type or order.order_type)
            plan = self._size(sized, my_price, limits, share=signal.updated_target_amount,
                              holdings=self._holdings_for_edit(order))
            if isinstance(plan, sizing.Skip):
                self._skip(ctx, signal, plan.reason)
                return
            checked = self._limit_edit_increase(order, plan, price or order.origin_price or my_price, limits)
            if isinstance(checked, sizing.Skip):
                kept, note = True, checked.reason  # the price part of the edit still applies
            else:
                quantity = checked.quantity
                note = plan_note(checked)  # a capped or reduced edit says why, like a create does
        if quantity is None and price is None and stop is None:
            if kept:
                self._update_link_quantities(signal, order.origin_quantity)
            self._skip(ctx, signal, note if kept else "edit changes nothing I can apply")
            return
        if waiting:
            # not on the exchange yet (waits for its entry's fill): edit what will be created
            order.update(quantity=quantity or Decimal(0), price=price or Decimal(0), stop_price=stop or Decimal(0))
            changed = True
        elif self.trading_mode is not None:
            changed = await self.trading_mode.edit_order(order, edited_quantity=quantity, edited_price=price,
                                                         edited_stop_price=stop)
        else:
            changed = await self.exchange_manager.trader.edit_order(order, edited_quantity=quantity,
                                                                    edited_price=price, edited_stop_price=stop)
        if not changed:
            self._skip(ctx, signal, "edit left my order unchanged")
            return
        if quantity is not None or kept:
            self._update_link_quantities(signal, order.origin_quantity if kept else quantity)
        self._record(ctx, self._outcome(ctx, signal, Result.EDITED, note, [order]))

    def _update_link_quantities(self, signal: schema.OrderSignal, local_quantity: Decimal) -> None:
        # the leader's new size beside mine (also when mine was kept): later chained orders scale to my copy
        self.order_map.update_quantities(signal.order_id, str(local_quantity),
                                         None if signal.quantity is None else str(signal.quantity))

    async def _cancel(self, ctx: _Context, signal: schema.OrderSignal) -> None:
        order = self._find_local(signal.order_id, signal)
        if order is None:
            self._skip(ctx, signal, self._missing_copy_reason(signal.order_id))
            return
        if not (order.is_open() or order.is_pending_creation() or order.is_waiting_for_chained_trigger):
            self.order_map.close(signal.order_id)
            self._skip(ctx, signal, f"my copy of {signal.order_id} is already {order.status.value}")
            return
        if order.is_waiting_for_chained_trigger and order.triggered_by is not None:
            # not on the exchange yet: drop it from its entry so the entry's fill never creates it
            cancelled = order in order.triggered_by.chained_orders
            if cancelled:
                order.triggered_by.chained_orders.remove(order)
                order.status = trading_enums.OrderStatus.CANCELED
        elif self.trading_mode is not None:
            cancelled, _ = await self.trading_mode.cancel_order(order)
        else:
            cancelled = await self.exchange_manager.trader.cancel_order(order)
        if not cancelled:
            self._skip(ctx, signal, "the exchange did not cancel my order")
            return
        self.order_map.close(signal.order_id)
        self._record(ctx, self._outcome(ctx, signal, Result.CANCELLED, None, [order]))

    async def _add_to_group(self, ctx: _Context, signal: schema.OrderSignal) -> None:
        order = self._find_local(signal.order_id, signal)
        if order is None:
            self._skip(ctx, signal, self._missing_copy_reason(signal.order_id))
            return
        group = order_builder.order_group(self.exchange_manager, self._strategy(signal), signal)
        order.add_to_order_group(group)
        self._record(ctx, self._outcome(ctx, signal, Result.EDITED, f"added to group {signal.group_id}", [order]))

    async def _edit_leverage(self, ctx: _Context, signal: schema.PositionSignal) -> None:
        outcome = Outcome(ctx.message.u, ctx.message.q, None, signal.action, Result.SKIPPED, symbol=signal.symbol)
        if not self.exchange_manager.is_future:
            outcome.result, outcome.reason = Result.REJECTED, "leverage: leverage edits need a futures exchange"
        else:
            side = trading_enums.PositionSide(signal.side) if signal.side else None
            changed = await self.exchange_manager.trader.set_leverage(signal.symbol, side, signal.leverage)
            outcome.result = Result.EDITED if changed else Result.SKIPPED
            outcome.reason = f"leverage {signal.leverage}" if changed else f"leverage already {signal.leverage}"
        self._record(ctx, outcome)

    # ---- lookups and bookkeeping -------------------------------------------------------
    def _missing_copy_reason(self, leader_order_id: str) -> str:
        if self.order_map.local_id(leader_order_id) is not None:
            self.order_map.close(leader_order_id)
            return f"my copy of {leader_order_id} is already closed (filled or cancelled)"
        if leader_order_id in self.order_map.pending:
            return (f"leader order {leader_order_id} was being copied when the bot stopped and no matching open "
                    f"order is left (filled, or never placed)")
        return f"no local copy of leader order {leader_order_id}"

    def _find_local(self, leader_order_id: str, signal: schema.OrderSignal | None = None) -> Any:
        """My copy of a leader order: linked, or (with `signal`, for edits, cancels and groups) sent just before
        a stop and recorded by its write-ahead entry, then linked now. Never an order this mode did not place."""
        order = order_lookup.find_local(self.exchange_manager, self.order_map, leader_order_id)
        if order is not None or signal is None:
            return order
        order = order_lookup.recover_pending(self.exchange_manager, self.order_map, leader_order_id)
        if order is not None:
            self._link(signal, order, order.origin_quantity)
        return order

    def _link(self, signal: schema.OrderSignal, order: Any, quantity: Decimal) -> None:
        self.order_map.link(signal.order_id, OrderLink(
            local_order_id=str(order.order_id), symbol=signal.symbol,
            leader_quantity=str(signal.quantity if signal.quantity is not None else quantity),
            local_quantity=str(quantity),
        ))
        if self.order_map.open_link_count() > self._next_sweep:
            self._sweep_gone_links()

    def _sweep_gone_links(self) -> None:
        """Close the links of my orders that left the exchange (filled) without a signal saying so."""
        live = order_lookup.live_local_ids(self.exchange_manager)
        for leader_id, link in self.order_map.open_links():
            if link.local_order_id not in live:
                self.order_map.close(leader_id)
        self._next_sweep = max(_SWEEP_MIN_OPEN_LINKS, 2 * self.order_map.open_link_count())

    def _strategy(self, signal: schema.OrderSignal) -> str:
        return self.settings.trading_strategy or signal.strategy or "strategy"

    def _outcome(self, ctx: _Context, signal: schema.OrderSignal, result: Result, reason: str | None,
                 orders: list[Any]) -> Outcome:
        return Outcome(ctx.message.u, ctx.message.q, signal.order_id, signal.action.value, result, reason,
                       [order_builder.describe(order) for order in orders], symbol=signal.symbol,
                       leader_quantity=None if signal.quantity is None else str(signal.quantity))

    def _skip(self, ctx: _Context, signal: schema.OrderSignal, reason: str) -> None:
        ctx.failed_order_ids.add(signal.order_id)
        self._record(ctx, self._outcome(ctx, signal, Result.SKIPPED, reason, []))

    def _skip_tree(self, ctx: _Context, signal: schema.OrderSignal, reason: str) -> None:
        self._skip(ctx, signal, reason)
        for child in signal.additional_orders:
            self._skip_tree(ctx, child, f"parent {signal.order_id} skipped: {reason}")

    def _skip_all(self, message: schema.FeedMessage, reason: str) -> list[Outcome]:
        ctx = _Context(message, Decimal(0), [], set())
        for signal in message.bundle.signals:
            if isinstance(signal, schema.RejectedSignal):
                self._record(ctx, Outcome(message.u, message.q, signal.order_id, signal.action, Result.SKIPPED, reason))
            elif isinstance(signal.content, schema.OrderSignal):
                self._skip_tree(ctx, signal.content, reason)
            else:
                self._record(ctx, Outcome(message.u, message.q, None, signal.content.action, Result.SKIPPED, reason))
        return ctx.outcomes

    def _record(self, ctx: _Context, outcome: Outcome) -> None:
        ctx.outcomes.append(outcome)
        self._log(outcome)

    def _log(self, outcome: Outcome) -> None:
        level = logging.INFO if outcome.applied else logging.WARNING
        if self.logger.isEnabledFor(level):  # the line is only built when it is written
            self.logger.log(level, "signal %s", outcome.log_line())


_HANDLERS = {
    schema.OrderAction.CREATE: "_create",
    schema.OrderAction.EDIT: "_edit",
    schema.OrderAction.CANCEL: "_cancel",
    schema.OrderAction.ADD_TO_GROUP: "_add_to_group",
}


def _group_siblings(signal: schema.OrderSignal) -> list[schema.OrderSignal]:
    """Orders octobot-trading packed into this one's additional_orders only because they share its group."""
    return [child for child in signal.additional_orders if signal.order_id not in (child.chained_to, child.bundled_with)]


def plan_note(plan: sizing.OrderPlan) -> str | None:
    return "; ".join(plan.notes) if plan.notes else None


def _get(raw: Any, key: str) -> Any:
    value = raw.get(key) if isinstance(raw, dict) else None
    if key == "q":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    return value if isinstance(value, str) and len(value) <= 128 else None
