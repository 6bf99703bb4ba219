"""Read what sizing needs from an OctoBot exchange manager, as plain Decimal values."""
from __future__ import annotations

import asyncio
import decimal
from collections.abc import Callable
from typing import Any

import octobot_commons.constants as commons_constants
import octobot_trading.enums as trading_enums
import octobot_trading.personal_data as personal_data

from ..core import risk, sizing
from ..core.signal_schema import Side

Decimal = decimal.Decimal
PRICE_POLL_S = 0.2


def split_symbol(symbol: str) -> tuple[str, str]:
    base, _, rest = symbol.partition("/")
    return base, rest.split(":")[0]


def holdings(exchange_manager: Any, symbol: str) -> sizing.Holdings:
    portfolio = exchange_manager.exchange_personal_data.portfolio_manager.portfolio
    base, quote = split_symbol(symbol)
    base_asset = portfolio.get_currency_portfolio(base)
    quote_asset = portfolio.get_currency_portfolio(quote)
    return sizing.Holdings(
        base_total=base_asset.total, base_available=base_asset.available,
        quote_total=quote_asset.total, quote_available=quote_asset.available,
    )


def mark_price(exchange_manager: Any, symbol: str) -> Decimal | None:
    """My current price, or None when the exchange has not sent one yet."""
    try:
        symbol_data = exchange_manager.exchange_symbols_data.get_exchange_symbol_data(symbol, allow_creation=False)
    except KeyError:
        return None
    prices_manager = symbol_data.prices_manager
    if not prices_manager.valid_price_received_event.is_set():
        return None
    price = prices_manager.mark_price
    return Decimal(price) if price else None


def _step(precision: Any) -> Decimal | None:
    """ccxt precision is either a number of decimals (int) or a tick size (fraction)."""
    if precision is None:
        return None
    value = Decimal(str(precision))
    if value >= 1 and value == value.to_integral_value():
        return Decimal(1).scaleb(-int(value))
    return value if value > 0 else None


def _limit(value: Any) -> Decimal | None:
    if value is None:
        return None
    value = Decimal(str(value))
    return value if value > 0 else None


async def wait_for_mark_price(exchange_manager: Any, symbol: str, timeout: float) -> Decimal | None:
    """My price, waiting (bounded) for the first one: a live bot subscribes to its feed while its exchange is
    still loading, and a create applied in that window would be skipped for good."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        price = mark_price(exchange_manager, symbol)
        if price is not None or loop.time() >= deadline:
            return price
        await asyncio.sleep(PRICE_POLL_S)


# (type, value) of the six market status numbers -> their MarketLimits (immutable): the same market status
# asks for the same six Decimal conversions on every order
_LIMITS_CACHE: dict[tuple[Any, ...], sizing.MarketLimits] = {}
_LIMITS_CACHE_SIZE = 256


def filled_part(exchange_manager: Any, local_order_id: str) -> tuple[Side, Decimal] | None:
    """The side and the quantity OctoBot traded of my order (its trades), or None when nothing of it filled."""
    if not local_order_id:  # octobot-trading reads an empty id as "every trade"
        return None
    trades = exchange_manager.exchange_personal_data.trades_manager.get_trades(origin_order_id=local_order_id)
    quantity = sum((Decimal(trade.executed_quantity) for trade in trades), Decimal(0))
    if not trades or quantity <= 0:
        return None
    return Side(trades[0].side.value), quantity


def market_limits(exchange_manager: Any, symbol: str) -> sizing.MarketLimits:
    """My market's steps and bounds, read from the exchange's market status each time it is asked for."""
    market = exchange_manager.exchange.get_market_status(symbol, with_fixer=False) or {}
    precision = market.get("precision") or {}
    limits = market.get("limits") or {}
    amount = limits.get("amount") or {}
    cost = limits.get("cost") or {}
    raw = (precision.get("amount"), precision.get("price"), amount.get("min"), amount.get("max"),
           cost.get("min"), cost.get("max"))
    key: tuple[Any, ...] | None = (*map(type, raw), *raw)  # the types too: True == 1, yet only 1 is a number
    try:
        cached = _LIMITS_CACHE.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable value: converted, never remembered
        cached, key = None, None
    if cached is not None:
        return cached
    result = sizing.MarketLimits(
        amount_step=_step(raw[0]), price_step=_step(raw[1]),
        min_amount=_limit(raw[2]), max_amount=_limit(raw[3]),
        min_cost=_limit(raw[4]), max_cost=_limit(raw[5]),
    )
    if key is not None:
        if len(_LIMITS_CACHE) >= _LIMITS_CACHE_SIZE:
            _LIMITS_CACHE.clear()
        _LIMITS_CACHE[key] = result
    return result


def futures_max_size(exchange_manager: Any, symbol: str, price: Decimal) -> Decimal | None:
    """The leader's own denominator for futures shares: total margin x leverage / price."""
    if not exchange_manager.is_future:
        return None
    try:
        _, _, market_quantity = personal_data.get_portfolio_amounts(
            exchange_manager, symbol, price, portfolio_type=commons_constants.PORTFOLIO_TOTAL
        )
    except Exception:  # no contract loaded for this symbol: sizing skips with a reason
        return None
    return Decimal(market_quantity)


def known_symbols(exchange_manager: Any) -> frozenset[str]:
    return frozenset(exchange_manager.exchange_config.traded_symbol_pairs)


# ---- what the risk controls read ------------------------------------------------------------------
def asset_value(exchange_manager: Any, asset: str, amount: Decimal, currency: str) -> Decimal | None:
    """`amount` of `asset` in `currency` at my mark prices (direct or inverse pair), None when no pair prices it."""
    if asset == currency or not amount:
        return amount
    price = mark_price(exchange_manager, f"{asset}/{currency}")
    if price:
        return amount * price
    price = mark_price(exchange_manager, f"{currency}/{asset}")
    return amount / price if price else None


def portfolio_value(exchange_manager: Any, currency: str) -> Decimal:
    """Everything I hold, valued in `currency`; assets no traded pair prices are left out."""
    portfolio = exchange_manager.exchange_personal_data.portfolio_manager.portfolio.portfolio
    values = (asset_value(exchange_manager, asset, Decimal(holding.total), currency)
              for asset, holding in portfolio.items())
    return sum((value for value in values if value is not None), Decimal(0))


def reference_market(exchange_manager: Any) -> str:
    return str(exchange_manager.exchange_personal_data.portfolio_manager.reference_market)


def _is_entry_order(order: Any, is_future: bool) -> bool:
    if is_future:
        return not order.reduce_only
    return order.side is trading_enums.TradeOrderSide.BUY


def open_copies(exchange_manager: Any, is_copy: Callable[[str], bool]) -> int:
    """My open copied entry orders (max_open_copies): open orders on the exchange, not the map's history."""
    is_future = bool(exchange_manager.is_future)
    return sum(1 for order in exchange_manager.exchange_personal_data.orders_manager.get_open_orders()
               if is_copy(str(order.order_id)) and _is_entry_order(order, is_future))


def _futures_exposure(exchange_manager: Any) -> Decimal:
    """Leveraged notional of my positions and open entry orders."""
    exposure = Decimal(0)
    for position in exchange_manager.exchange_personal_data.positions_manager.positions.values():
        exposure += abs(Decimal(position.size)) * Decimal(position.mark_price or 0)
    for order in exchange_manager.exchange_personal_data.orders_manager.get_open_orders():
        if not order.reduce_only:
            exposure += Decimal(order.origin_quantity) * Decimal(order.origin_price or 0)
    return exposure


def risk_view(exchange_manager: Any, symbol: str, is_copy: Callable[[str], bool]) -> risk.RiskView:
    """The portfolio as the entry risk controls see it, in `symbol`'s quote currency."""
    _, quote = split_symbol(symbol)
    value = portfolio_value(exchange_manager, quote)
    if exchange_manager.is_future:
        exposure = _futures_exposure(exchange_manager)
    else:
        quote_holding = exchange_manager.exchange_personal_data.portfolio_manager.portfolio.get_currency_portfolio(quote)
        # everything but my free quote: what I hold outside it, plus what my open buy orders lock
        exposure = value - Decimal(quote_holding.available)
    return risk.RiskView(portfolio_value=value, exposure=exposure, open_copies=open_copies(exchange_manager, is_copy))
