"""ScriptedGridTradingMode: a small, real OctoBot trading mode used as the demo's strategy author.

It trades through OctoBot's own trading-mode API (create / edit / cancel inside
`remote_signal_publisher`), so with `emit_trading_signals` on, octobot-trading itself builds
and emits the signal bundles: exactly what an unmodified local strategy does.

Each price tick runs the next step of a fixed script: open a grid of limit orders, re-centre
it (edit), enter at market with a stop-loss / take-profit pair (chained, one cancels the other),
cancel a grid level, resize a level (amount edit).
"""
from __future__ import annotations

import decimal
from collections.abc import Awaitable, Callable
from typing import Any

import octobot_trading.enums as trading_enums
import octobot_trading.modes as trading_modes
import octobot_trading.personal_data as personal_data

Decimal = decimal.Decimal


class ScriptedGridTradingMode(trading_modes.AbstractTradingMode):
    """Demo strategy: a limit-order grid plus a protected market entry, one script step per price tick."""

    def get_mode_producer_classes(self) -> list:
        return [ScriptedGridProducer]

    def get_mode_consumer_classes(self) -> list:
        return []

    @classmethod
    def get_is_symbol_wildcard(cls) -> bool:
        return True

    def init_user_inputs(self, inputs: dict) -> None:
        self.UI.user_input("order_share_percent", "float", 5.0, inputs, min_val=0.1, max_val=50,
                           title="Size of each order, in % of the quote holdings.")

    def should_emit_trading_signal(self) -> bool:
        # octobot-trading mutes signals on backtesting exchanges; the demo's offline exchange is one,
        # but this leader is the live author of the demo strategy: honour emit_trading_signals alone
        return bool(self.trading_config and self.trading_config.get("emit_trading_signals"))

    def producer(self) -> ScriptedGridProducer:
        return next(p for p in self.producers if isinstance(p, ScriptedGridProducer))


class ScriptedGridProducer(trading_modes.AbstractTradingModeProducer):
    def __init__(self, channel: Any, config: dict, trading_mode: Any, exchange_manager: Any) -> None:
        super().__init__(channel, config, trading_mode, exchange_manager)
        self.tick = 0
        self.grid: dict[str, Any] = {}  # level name -> my order
        self.steps: list[Callable[[str, Decimal], Awaitable[str | None]]] = [
            self._open_grid, self._recentre_grid, self._protected_entry, self._cancel_level,
            self._resize_level, self._sell_level,
        ]

    def get_channels_registration(self) -> list:
        return []  # driven by on_price: the demo owns the price path

    async def on_price(self, symbol: str, price: Decimal) -> str | None:
        """Run the next script step at `price`; returns what was done (None once the script is over)."""
        if self.tick >= len(self.steps):
            return None
        step = self.steps[self.tick]
        self.tick += 1
        async with self.trading_mode.remote_signal_publisher(symbol):
            return await step(symbol, price)

    # ---- helpers ---------------------------------------------------------------------------
    def _share(self) -> Decimal:
        return Decimal(str(self.trading_mode.trading_config.get("order_share_percent", 5))) / Decimal(100)

    def _quote_quantity(self, symbol: str, price: Decimal) -> Decimal:
        quote = symbol.split("/")[1].split(":")[0]
        portfolio = self.exchange_manager.exchange_personal_data.portfolio_manager.portfolio
        total = portfolio.get_currency_portfolio(quote).total
        return (total * self._share() / price).quantize(Decimal("0.00001"), rounding=decimal.ROUND_DOWN)

    def _order(self, order_type: Any, symbol: str, price: Decimal, quantity: Decimal, limit: Decimal) -> Any:
        return personal_data.create_order_instance(
            trader=self.exchange_manager.trader, order_type=order_type, symbol=symbol,
            current_price=price, quantity=quantity, price=limit,
        )

    async def _limit(self, name: str, order_type: Any, symbol: str, price: Decimal, factor: str) -> Any:
        limit = (price * Decimal(factor)).quantize(Decimal("0.01"))
        quantity = self._quote_quantity(symbol, price)
        order = await self.trading_mode.create_order(self._order(order_type, symbol, price, quantity, limit))
        self.grid[name] = order
        return order

    # ---- the script -------------------------------------------------------------------------
    async def _open_grid(self, symbol: str, price: Decimal) -> str:
        await self._limit("buy-1", trading_enums.TraderOrderType.BUY_LIMIT, symbol, price, "0.99")
        await self._limit("buy-2", trading_enums.TraderOrderType.BUY_LIMIT, symbol, price, "0.97")
        await self._limit("sell-1", trading_enums.TraderOrderType.SELL_LIMIT, symbol, price, "1.03")
        return "opened a grid: 2 buy limits below, 1 sell limit above"

    async def _recentre_grid(self, symbol: str, price: Decimal) -> str:
        order = self.grid["buy-1"]
        new_price = (price * Decimal("0.995")).quantize(Decimal("0.01"))
        # octobot-trading's signal builder needs every edited value set: 0 = "stop price unchanged"
        await self.trading_mode.edit_order(order, edited_price=new_price, edited_stop_price=Decimal(0),
                                           edited_current_price=price)
        return f"moved buy-1 to {new_price}"

    async def _protected_entry(self, symbol: str, price: Decimal) -> str:
        quantity = self._quote_quantity(symbol, price)
        entry = self._order(trading_enums.TraderOrderType.BUY_MARKET, symbol, price, quantity, price)
        group = self.exchange_manager.exchange_personal_data.orders_manager.create_group(
            personal_data.OneCancelsTheOtherOrderGroup)
        stop = personal_data.create_order_instance(
            trader=self.exchange_manager.trader, order_type=trading_enums.TraderOrderType.STOP_LOSS, symbol=symbol,
            current_price=price, quantity=quantity, price=(price * Decimal("0.95")).quantize(Decimal("0.01")),
            side=trading_enums.TradeOrderSide.SELL, group=group,
        )
        take_profit = personal_data.create_order_instance(
            trader=self.exchange_manager.trader, order_type=trading_enums.TraderOrderType.SELL_LIMIT, symbol=symbol,
            current_price=price, quantity=quantity, price=(price * Decimal("1.05")).quantize(Decimal("0.01")),
            group=group,
        )
        for child in (stop, take_profit):
            await child.set_as_chained_order(entry, False, {}, True)
            entry.add_chained_order(child)
        await self.trading_mode.create_order(entry)
        return f"market buy {quantity} with a stop-loss and a take-profit (one cancels the other)"

    async def _cancel_level(self, symbol: str, price: Decimal) -> str:
        order = self.grid.pop("buy-2")
        if order.is_open():
            await self.trading_mode.cancel_order(order)
            return "cancelled buy-2"
        return "buy-2 already filled"

    async def _resize_level(self, symbol: str, price: Decimal) -> str:
        order = self.grid["sell-1"]
        if not order.is_open():
            return "sell-1 already filled"
        new_quantity = (order.origin_quantity * Decimal("1.5")).quantize(Decimal("0.00001"))
        await self.trading_mode.edit_order(order, edited_quantity=new_quantity, edited_price=order.origin_price,
                                           edited_stop_price=Decimal(0), edited_current_price=price)
        return f"resized sell-1 to {new_quantity}"

    async def _sell_level(self, symbol: str, price: Decimal) -> str:
        await self._limit("sell-2", trading_enums.TraderOrderType.SELL_LIMIT, symbol, price, "1.02")
        return "added a sell limit above"
