"""Pure follower risk controls: what limits new copies (entries) and edits that grow them, never exits,
decreases or cancels.

max_exposure_percent and max_open_copies apply inside sizing (core.sizing.size_entry, given a RiskView);
the drawdown stop and the pair filter refuse before sizing; an edit that grows a copied entry meets the
exposure cap and the drawdown stop in core.sizing.limit_edit_increase; quote_mapping renames pairs. All amounts
are Decimal; nothing here does I/O: the engine reads the exchange and keeps the drawdown state.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from .decimal_util import floor_to_step, plain
from .settings import FollowerSettings, PairFilterMode

HUNDRED = Decimal(100)


def _show(value: Decimal) -> str:
    """Readable number for reasons: at most 10 significant digits, no exponent."""
    with localcontext() as ctx:
        ctx.prec = 10
        return plain(+value)


@dataclass(frozen=True)
class Skip:
    """Why an order is not placed (core.sizing re-exports it: every skip reason is one of these)."""

    reason: str


@dataclass(frozen=True)
class RiskView:
    """What the entry risk controls read, in the order's quote currency (futures: notional)."""

    portfolio_value: Decimal  # everything I hold, valued in the quote
    exposure: Decimal         # held outside the quote + locked by open entry orders (futures: positions + entries)
    open_copies: int          # my open copied entry orders


@dataclass(frozen=True)
class DrawdownState:
    """Persisted between messages: the peak portfolio value since following began (or the last reset)."""

    peak: Decimal | None = None
    stopped_at: Decimal | None = None  # the value that tripped the stop; None while copying
    reset: int = 0                     # the drawdown_reset counter this state belongs to


def check_open_copies(open_copies: int, settings: FollowerSettings) -> Skip | None:
    limit = settings.max_open_copies
    if limit and open_copies >= limit:
        return Skip(f"max_open_copies: {open_copies} copied entry orders open (max {limit})")
    return None


def cap_exposure(qty: Decimal, cost_price: Decimal, risk: RiskView, settings: FollowerSettings,
                 base: str, quote: str, notes: list[str]) -> Decimal | Skip:
    """The quantity that keeps exposure within max_exposure_percent of the portfolio value."""
    limit = settings.max_exposure_percent
    if risk.portfolio_value <= 0:
        return Skip(f"max_exposure_percent: my portfolio value in {quote} is unknown or 0")
    allowed = risk.portfolio_value * limit / HUNDRED - risk.exposure
    used = risk.exposure / risk.portfolio_value * HUNDRED
    if allowed <= 0:
        return Skip(f"max_exposure_percent: {_show(used)}% of my portfolio already exposed (max {plain(limit)}%)")
    cap = allowed / cost_price
    if qty > cap:
        notes.append(f"reduced by max_exposure_percent {plain(limit)}% ({_show(used)}% already exposed): "
                     f"{_show(qty)} -> {_show(cap)} {base}")
        return cap
    return qty


@dataclass(frozen=True)
class EditedEntry:
    """My open copied entry order, as an edit that grows it sees it."""

    quantity: Decimal             # its size now (origin quantity)
    locked: Decimal               # what it adds to RiskView.exposure now (spot: quote it locks; futures: notional)
    filled: Decimal = Decimal(0)  # spot: its filled part, a holding now, no longer in `locked` (futures: 0)


def cap_edit_exposure(qty: Decimal, cost_price: Decimal, entry: EditedEntry, risk: RiskView,
                      settings: FollowerSettings, base: str, quote: str, amount_step: Decimal | None,
                      notes: list[str]) -> Decimal | Skip:
    """The size an edit may grow `entry` to within max_exposure_percent, or a Skip: keep its current size.

    What the order locks now is already in risk.exposure: it is replaced by what the edited size will lock,
    never counted twice. The result is on the market step and never below the current size."""
    limit = settings.max_exposure_percent
    keep = f"my copy stays at {_show(entry.quantity)} {base} instead of {_show(qty)}"
    if risk.portfolio_value <= 0:
        return Skip(f"max_exposure_percent: my portfolio value in {quote} is unknown or 0: {keep}")
    used = risk.exposure / risk.portfolio_value * HUNDRED
    allowed = risk.portfolio_value * limit / HUNDRED - (risk.exposure - entry.locked)
    cap = floor_to_step(entry.filled + max(allowed, Decimal(0)) / cost_price, amount_step)
    if qty <= cap:
        return qty
    if cap <= entry.quantity:
        return Skip(f"max_exposure_percent: {_show(used)}% of my portfolio already exposed "
                    f"(max {plain(limit)}%): {keep}")
    notes.append(f"reduced by max_exposure_percent {plain(limit)}% ({_show(used)}% already exposed, "
                 f"this copy included): {_show(qty)} -> {_show(cap)} {base}")
    return cap


def update_drawdown(state: DrawdownState, value: Decimal | None,
                    settings: FollowerSettings) -> tuple[DrawdownState, str | None]:
    """The state after seeing the portfolio at `value`, and what to log when the stop trips or resets.

    The stop latches: once tripped it stays until the user changes drawdown_reset, so a bounce does not
    silently resume copying a strategy that lost X %."""
    message = None
    if state.reset != settings.drawdown_reset:
        state = DrawdownState(peak=value, stopped_at=None, reset=settings.drawdown_reset)
        message = f"drawdown stop reset: the peak restarts at {_show(value) if value is not None else 'the next value'}"
    if value is None or value <= 0 or state.stopped_at is not None:
        return state, message
    peak = value if state.peak is None or value > state.peak else state.peak
    limit = settings.drawdown_stop_percent
    if limit > 0 and value < peak * (HUNDRED - limit) / HUNDRED:
        drop = (peak - value) / peak * HUNDRED
        return (DrawdownState(peak, value, state.reset),
                f"drawdown stop: my portfolio ({_show(value)}) is {_show(drop)}% below its peak {_show(peak)} "
                f"(max {plain(limit)}%): no new copies until drawdown_reset changes")
    return DrawdownState(peak, None, state.reset), message


def drawdown_skip(state: DrawdownState, settings: FollowerSettings) -> Skip | None:
    if settings.drawdown_stop_percent == 0 or state.stopped_at is None or not state.peak:
        return None
    drop = (state.peak - state.stopped_at) / state.peak * HUNDRED
    return Skip(f"drawdown stop: my portfolio fell {_show(drop)}% below its peak {_show(state.peak)} "
                f"(max {plain(settings.drawdown_stop_percent)}%); exits, cancels and edits that do not grow "
                f"an entry still apply; "
                f"change drawdown_reset to copy entries again")


def pair_filter_skip(leader_symbol: str, my_symbol: str, settings: FollowerSettings) -> Skip | None:
    """pair_filter matches the leader's pair or mine (after quote_mapping): either name means the market."""
    if not settings.pair_filter:
        return None
    listed = leader_symbol.upper() in settings.pair_filter or my_symbol.upper() in settings.pair_filter
    shown = ", ".join(settings.pair_filter)
    if settings.pair_filter_mode is PairFilterMode.FOLLOW_ONLY and not listed:
        return Skip(f"pair_filter: {my_symbol} is not followed (follow only {shown})")
    if settings.pair_filter_mode is PairFilterMode.FOLLOW_ALL_BUT and listed:
        return Skip(f"pair_filter: {my_symbol} is excluded (follow all but {shown})")
    return None


def map_symbol(symbol: str, mapping: tuple[tuple[str, str], ...]) -> str:
    """quote_mapping: "BTC/USDT:USDT" with USDT=USDC -> "BTC/USDC:USDC" (quote and settlement alike)."""
    if not mapping or "/" not in symbol:
        return symbol
    base, _, rest = symbol.partition("/")
    quote, colon, settle = rest.partition(":")
    table = dict(mapping)
    mapped = f"{base}/{table.get(quote, quote)}"
    return mapped + (f":{table.get(settle, settle)}" if colon else "")


