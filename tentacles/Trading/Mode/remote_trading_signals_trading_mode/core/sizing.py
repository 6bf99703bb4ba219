"""Pure sizing: (validated signal, my holdings, market limits, settings) -> an order plan or a skip reason.

The leader's ``target_amount`` is a share of its own portfolio, measured the way octobot-trading
measures it (PROTOCOL.md "What target_amount means"); the follower applies the same share to its
own holdings, then to its settings (max_volume), its funds and the market's precision/minimums.
All amounts are Decimal; nothing here does I/O.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, localcontext

from .decimal_util import ceil_to_step, floor_to_step, plain
from .risk import EditedEntry, RiskView, Skip, cap_edit_exposure, cap_exposure, check_open_copies
from .settings import FollowerSettings, SizingMode
from .signal_schema import MARKET_TYPES, ExchangeType, OrderSignal, Share, Side, TraderOrderType

__all__ = ["EditedEntry", "Holdings", "LinkedParent", "MarketLimits", "OrderPlan", "RiskView", "Skip", "adapt_price",
           "is_entry", "is_entry_order", "limit_edit_increase", "not_an_exit_of", "reserve_pending_parent",
           "size_entry", "size_linked", "check_price_deviation", "check_signal_age", "split_symbol"]

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Holdings:
    base_total: Decimal
    base_available: Decimal
    quote_total: Decimal
    quote_available: Decimal


@dataclass(frozen=True)
class MarketLimits:
    amount_step: Decimal | None = None   # tick sizes, e.g. Decimal("0.0001"); None = no rounding
    price_step: Decimal | None = None
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    min_cost: Decimal | None = None
    max_cost: Decimal | None = None


@dataclass(frozen=True)
class OrderPlan:
    quantity: Decimal
    price: Decimal | None        # adapted limit/trigger price; None for market orders
    stop_price: Decimal | None
    notes: tuple[str, ...] = ()


def _show(value: Decimal) -> str:
    """Readable number for reasons: at most 10 significant digits, no exponent."""
    with localcontext() as ctx:
        ctx.prec = 10
        return plain(+value)


def split_symbol(symbol: str) -> tuple[str, str]:
    """"BTC/USDT:USDT" -> ("BTC", "USDT")."""
    base, _, rest = symbol.partition("/")
    return base, rest.split(":")[0]


def adapt_price(price: Decimal, limits: MarketLimits) -> Decimal:
    """Round to the nearest price tick; never down to zero (a positive price stays positive)."""
    step = limits.price_step
    if step is None or step <= 0:
        return price
    adapted = (price / step).to_integral_value(rounding=ROUND_HALF_UP) * step
    return adapted if adapted > 0 else step


def _finalize(
    qty: Decimal, cost_price: Decimal | None, limits: MarketLimits, settings: FollowerSettings,
    afford: Decimal | None, base: str, quote: str, price: Decimal | None, stop_price: Decimal | None,
    notes: list[str],
) -> OrderPlan | Skip:
    """Step rounding, market minimums (optionally rounding up to them), market maximums."""
    rounded = floor_to_step(qty, limits.amount_step)
    below_amount = limits.min_amount is not None and rounded < limits.min_amount
    below_cost = (limits.min_cost is not None and cost_price is not None
                  and rounded * cost_price < limits.min_cost)
    if below_amount or below_cost or rounded <= 0:
        needed = limits.min_amount or Decimal(0)
        if limits.min_cost is not None and cost_price:
            needed = max(needed, limits.min_cost / cost_price)
        needed = ceil_to_step(needed, limits.amount_step)
        if needed <= 0:
            return Skip(f"nothing to trade: {_show(qty)} {base} rounds down to 0 "
                        f"at the market step {plain(limits.amount_step or Decimal(0))}")
        if settings.round_to_minimal_size_if_necessary:
            if afford is not None and needed > afford:
                return Skip(f"{_show(qty)} {base} below the market minimum {_show(needed)} {base}, "
                            f"and only {_show(afford)} {base} can be afforded")
            notes.append(f"raised {_show(qty)} to the market minimum {_show(needed)} {base}")
            rounded = needed
        elif below_cost and not below_amount and rounded > 0:
            assert cost_price is not None and limits.min_cost is not None
            return Skip(f"{_show(rounded * cost_price)} {quote} below the market minimum order cost "
                        f"{_show(limits.min_cost)} {quote}")
        else:
            return Skip(f"{_show(qty)} {base} below the market minimum {_show(needed)} {base}")
    if limits.max_amount is not None and rounded > limits.max_amount:
        notes.append(f"capped to the market maximum {_show(limits.max_amount)} {base}")
        rounded = floor_to_step(limits.max_amount, limits.amount_step)
    if limits.max_cost is not None and cost_price and rounded * cost_price > limits.max_cost:
        notes.append(f"capped to the market maximum cost {_show(limits.max_cost)} {quote}")
        rounded = floor_to_step(limits.max_cost / cost_price, limits.amount_step)
    if rounded <= 0:
        return Skip(f"nothing to trade: {_show(qty)} {base} is 0 after market limits")
    return OrderPlan(rounded, price, stop_price, tuple(notes))


def _base_quantity(
    signal: OrderSignal, holdings: Holdings, my_price: Decimal, settings: FollowerSettings,
    is_future: bool, is_buy: bool, is_exit: bool, cost_price: Decimal, futures_max_size: Decimal | None,
    share: Share | None, quote: str, notes: list[str],
) -> Decimal | Skip:
    if settings.sizing is SizingMode.FIXED_QUOTE_AMOUNT and not is_exit:
        notes.append(f"fixed {plain(settings.fixed_quote_amount)} {quote} at {_show(cost_price)}")
        return settings.fixed_quote_amount / cost_price
    if settings.sizing is SizingMode.LEADER_QUANTITY_RATIO:
        if signal.quantity is None:
            return Skip("leader quantity missing: cannot apply leader_quantity_ratio")
        return signal.quantity * settings.leader_quantity_ratio
    # portfolio_percent (and exits in fixed_quote_amount mode)
    share = share or signal.target_amount
    if share is None:
        return Skip("no target_amount share in the signal: cannot size it as a share of my portfolio")
    if is_future:
        if futures_max_size is None or futures_max_size <= 0:
            return Skip(f"my futures max order size is unknown: cannot apply {share}")
        reference = futures_max_size
    elif is_buy:
        quote_holdings = holdings.quote_available if share.of_available else holdings.quote_total
        reference = quote_holdings / my_price
    else:
        reference = holdings.base_available if share.of_available else holdings.base_total
    return reference * share.percent / HUNDRED


def is_entry(signal: OrderSignal, exchange_type: ExchangeType) -> bool:
    """An order that opens or grows a position (what risk controls limit); exits always go through."""
    if exchange_type is ExchangeType.FUTURE:
        return not signal.reduce_only
    return signal.side is Side.BUY


# protective orders close a position whatever their side: an edit of one is never limited
_EXIT_TYPES = frozenset({
    TraderOrderType.STOP_LOSS, TraderOrderType.STOP_LOSS_LIMIT, TraderOrderType.TRAILING_STOP,
    TraderOrderType.TRAILING_STOP_LIMIT, TraderOrderType.TAKE_PROFIT, TraderOrderType.TAKE_PROFIT_LIMIT,
})


def is_entry_order(side: Side, order_type: TraderOrderType | None, reduce_only: bool,
                   exchange_type: ExchangeType) -> bool:
    """Whether my order (as placed, not as an edit signal describes it) opens or grows a position."""
    if order_type in _EXIT_TYPES:
        return False
    if exchange_type is ExchangeType.FUTURE:
        return not reduce_only
    return side is Side.BUY


def limit_edit_increase(
    plan: OrderPlan, entry: EditedEntry, cost_price: Decimal, limits: MarketLimits, settings: FollowerSettings,
    symbol: str, risk: RiskView | None = None, drawdown: Skip | None = None,
) -> OrderPlan | Skip:
    """An edit growing my copied entry `entry` to plan.quantity, checked like an entry: the drawdown stop
    refuses the increase, max_exposure_percent (with `risk`) shrinks it to what fits. A Skip means: keep the
    current quantity (the edit's price part still applies). A decrease passes untouched."""
    if plan.quantity <= entry.quantity:
        return plan
    base, quote = split_symbol(symbol)
    if drawdown is not None:
        return Skip(f"{drawdown.reason}: my copy stays at {_show(entry.quantity)} {base} "
                    f"instead of {_show(plan.quantity)}")
    if risk is None or settings.max_exposure_percent <= 0:
        return plan
    notes = list(plan.notes)
    capped = cap_edit_exposure(plan.quantity, cost_price, entry, risk, settings, base, quote,
                               limits.amount_step, notes)
    if isinstance(capped, Skip):
        return capped
    return OrderPlan(capped, plan.price, plan.stop_price, tuple(notes))


def size_entry(
    signal: OrderSignal, holdings: Holdings, my_price: Decimal, limits: MarketLimits,
    settings: FollowerSettings, exchange_type: ExchangeType, futures_max_size: Decimal | None = None,
    share: Share | None = None, risk: RiskView | None = None,
) -> OrderPlan | Skip:
    """Size my copy of a leader order. ``share`` defaults to signal.target_amount (pass
    updated_target_amount for edits). Prices: updated_* first, then the original ones.
    ``risk`` (new copies only) applies max_open_copies and max_exposure_percent to entries."""
    if my_price is None or my_price <= 0:
        return Skip(f"no valid price for {signal.symbol}")
    if signal.side is None:
        return Skip(f"leader order {signal.order_id} has no side: cannot size it")
    base, quote = split_symbol(signal.symbol)
    is_future = exchange_type is ExchangeType.FUTURE
    is_buy = signal.side is Side.BUY
    is_exit = signal.reduce_only if is_future else not is_buy
    limit_source = signal.updated_limit_price or signal.limit_price
    is_market = signal.order_type in MARKET_TYPES
    price = adapt_price(limit_source, limits) if limit_source and not is_market else None
    stop_source = signal.updated_stop_price or signal.stop_price
    stop_price = adapt_price(stop_source, limits) if stop_source else None
    cost_price = price or my_price
    notes: list[str] = []
    entry_risk = risk if risk is not None and not is_exit else None
    if entry_risk is not None:
        too_many = check_open_copies(entry_risk.open_copies, settings)
        if too_many is not None:
            return too_many

    qty = _base_quantity(signal, holdings, my_price, settings, is_future, is_buy, is_exit, cost_price,
                         futures_max_size, share, quote, notes)
    if isinstance(qty, Skip):
        return qty

    # max_volume: the same reference as the share, on buys and sells alike
    if is_future:
        volume_reference = futures_max_size
    elif is_buy:
        volume_reference = holdings.quote_total / my_price
    else:
        volume_reference = holdings.base_total
    if volume_reference is not None:
        cap = volume_reference * settings.max_volume / HUNDRED
        if qty > cap:
            notes.append(f"capped by max_volume {plain(settings.max_volume)}%: {_show(qty)} -> {_show(cap)} {base}")
            qty = cap

    # funds
    if is_future:
        afford = futures_max_size
    elif is_buy:
        afford = holdings.quote_available / cost_price
    else:
        afford = holdings.base_available
    if afford is not None and qty > afford:
        notes.append(f"reduced to available funds: {_show(qty)} -> {_show(afford)} {base}")
        qty = afford
    if qty <= 0:
        held = (f"{_show(holdings.quote_available)} {quote} available" if is_buy and not is_future
                else f"{_show(holdings.base_available)} {base} available" if not is_future
                else "0 computed")
        return Skip(f"nothing to trade: {held}")
    if entry_risk is not None and settings.max_exposure_percent > 0:
        capped = cap_exposure(qty, cost_price, entry_risk, settings, base, quote, notes)
        if isinstance(capped, Skip):
            return capped
        if capped < qty:
            qty = capped
            plan = _finalize(qty, cost_price, limits, settings, afford, base, quote, price, stop_price, notes)
            # a cap that leaves less than the market minimum is still the exposure limit's doing
            return Skip(f"max_exposure_percent: {plan.reason}") if isinstance(plan, Skip) else plan
    return _finalize(qty, cost_price, limits, settings, afford, base, quote, price, stop_price, notes)


@dataclass(frozen=True)
class LinkedParent:
    """The order a chained/bundled create hangs on, as far as deciding whether the child protects it."""

    order_id: str
    symbol: str                       # my symbol (after quote_mapping), like the child's
    side: Side
    leader_quantity: Decimal | None   # the leader's size of the parent (the child's size is compared to it)


def not_an_exit_of(child: OrderSignal, parent: LinkedParent, exchange_type: ExchangeType) -> str | None:
    """None when `child` is a true exit of `parent` (same symbol, closing side or reduce-only on futures, no
    larger than the parent), which keeps the parent's proportional size and passes every risk control;
    otherwise why not, and the child is sized and checked like an entry. The link itself proves nothing:
    any leader can name any order in chained_to."""
    why = f"not an exit of {parent.order_id}"
    if child.symbol != parent.symbol:
        return f"{why} ({child.symbol}, the parent is on {parent.symbol})"
    closing = child.side is not None and child.side is not parent.side
    if exchange_type is ExchangeType.FUTURE:
        closing = closing or child.reduce_only
    if not closing:
        return f"{why} (same side, not reduce-only)"
    if child.quantity is None or not parent.leader_quantity or child.quantity > parent.leader_quantity:
        return f"{why} (larger than its parent, or a size missing)"
    return None


def reserve_pending_parent(holdings: Holdings, view: RiskView | None, parent_symbol: str, parent_side: Side,
                           parent_qty: Decimal, parent_cost: Decimal, child_symbol: str, exchange_type: ExchangeType,
                           parent_is_entry: bool) -> tuple[Holdings, RiskView | None]:
    """Holdings and risk view as a child sees them when its parent is about to be placed in the same bundle:
    the parent is not on the exchange yet, but what it will lock and expose is no longer mine to use."""
    base, quote = split_symbol(parent_symbol)
    child_base, child_quote = split_symbol(child_symbol)
    is_future = exchange_type is ExchangeType.FUTURE
    if not is_future and parent_side is Side.BUY and quote == child_quote:
        holdings = replace(holdings, quote_available=max(holdings.quote_available - parent_qty * parent_cost,
                                                         Decimal(0)))
    elif not is_future and parent_side is Side.SELL and base == child_base:
        holdings = replace(holdings, base_available=max(holdings.base_available - parent_qty, Decimal(0)))
    if view is not None and parent_is_entry and quote == child_quote:
        view = replace(view, exposure=view.exposure + parent_qty * parent_cost, open_copies=view.open_copies + 1)
    return holdings, view


def size_linked(
    leader_parent_qty: Decimal, my_parent_qty: Decimal, leader_qty: Decimal, limits: MarketLimits,
    *, settings: FollowerSettings | None = None, price: Decimal | None = None,
    available: Decimal | None = None, symbol: str = "",
) -> OrderPlan | Skip:
    """A chained/bundled order follows the order it hangs on: my_parent x leader_qty / leader_parent.

    ``price`` (the child's price) enables the min/max cost checks; ``available`` bounds a
    round-up to the market minimum. The returned plan has no price: the caller adapts it.
    """
    base, quote = split_symbol(symbol) if symbol else ("", "")
    if leader_parent_qty is None or leader_parent_qty <= 0:
        return Skip("leader parent order quantity missing: cannot size the linked order")
    if leader_qty is None or leader_qty <= 0:
        return Skip("leader linked order quantity missing: cannot size it")
    if my_parent_qty <= 0:
        return Skip("my parent order has no quantity: nothing to link")
    qty = my_parent_qty * leader_qty / leader_parent_qty
    return _finalize(qty, price, limits, settings or FollowerSettings(), available, base or "units",
                     quote or "quote", None, None, [])


def check_price_deviation(my_price: Decimal | None, leader_price: Decimal | None,
                          settings: FollowerSettings) -> Skip | None:
    """Refuse a market copy when my price is too far from the leader's price at signal time."""
    limit = settings.max_price_deviation_percent
    if limit == 0 or my_price is None or leader_price is None or leader_price <= 0:
        return None
    deviation = abs(my_price - leader_price) / leader_price * HUNDRED
    if deviation > limit:
        return Skip(f"my price {_show(my_price)} is {deviation:.2f}% away from the leader's "
                    f"{_show(leader_price)} (max {plain(limit)}%)")
    return None


def check_signal_age(now: Decimal, d: Decimal | None, settings: FollowerSettings) -> Skip | None:
    """Refuse a signal older than max_signal_age_seconds (0 = no limit; no timestamp = no check)."""
    limit = settings.max_signal_age_seconds
    if limit == 0 or d is None:
        return None
    age = now - d
    if age > limit:
        return Skip(f"signal is {age:.0f} s old (max {limit} s)")
    return None
