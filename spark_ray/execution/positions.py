"""Positions, cash, realized and unrealized PnL and fees, from fills only.

Each symbol trades from its own *sleeve*: a cash allocation and the position bought with it, so
one strategy instance per symbol sees exactly what a single-symbol backtest with that cash sees.
The arithmetic is the backtest engine's (``Engine._execute``): a buy pays notional plus fee and
averages into the entry price, a sell books ``qty x (price - avg) - fee - its share of the entry
fees`` as a closed trade (:class:`~spark_ray.fills.trades.ClosedTrade`, the backtest's record).
A commission charged in the base asset (Binance's default on buys) shrinks the quantity
received instead of the cash; one in a third asset (BNB) is recorded but not valued.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spark_ray.fills.trades import ClosedTrade


@dataclass
class Sleeve:
    symbol: str
    cash: float
    initial_cash: float
    qty: float = 0.0
    avg: float = 0.0
    entry_fees: float = 0.0
    opened_time: int = -1
    realized: float = 0.0
    fees: float = 0.0
    other_fees: dict[str, float] = field(default_factory=dict)
    turnover: float = 0.0
    fills: int = 0
    mark: float | None = None  # last close seen

    def equity(self, mark: float | None = None) -> float:
        px = mark if mark is not None else self.mark
        return self.cash + (self.qty * px if px is not None and self.qty else 0.0)

    def unrealized(self, mark: float | None = None) -> float:
        px = mark if mark is not None else self.mark
        if not self.qty or px is None:
            return 0.0
        return self.qty * (px - self.avg) - self.entry_fees


class Positions:
    """Every sleeve; ``apply_fill`` is the only mutation (live, on replay and in tests)."""

    def __init__(self, cash_by_symbol: dict[str, float]) -> None:
        self.sleeves = {s: Sleeve(s, c, c) for s, c in cash_by_symbol.items()}
        self.trades: list[ClosedTrade] = []

    def __getitem__(self, symbol: str) -> Sleeve:
        return self.sleeves[symbol]

    def apply_fill(self, symbol: str, side: str, qty: float, price: float, commission: float,
                   commission_asset: str, time_ms: int, tag: str = "",
                   base_asset: str = "", quote_asset: str = "") -> ClosedTrade | None:
        """Book one fill; returns the closed trade a sell produced."""
        s = self.sleeves[symbol]
        notional = qty * price
        s.turnover += notional
        s.fills += 1
        in_base = bool(commission_asset) and commission_asset == base_asset
        in_quote = not commission_asset or commission_asset == quote_asset
        fee_quote = commission if in_quote else (commission * price if in_base else 0.0)
        if not in_quote and not in_base and commission:
            s.other_fees[commission_asset] = s.other_fees.get(commission_asset, 0.0) + commission
        s.fees += fee_quote
        held = s.qty
        if side == "buy":
            got = qty - commission if in_base else qty
            s.cash -= notional + (commission if in_quote else 0.0)
            new_qty = held + got
            s.avg = (held * s.avg + notional) / new_qty if new_qty > 0 else 0.0
            if in_quote:
                s.entry_fees += commission
            if held <= 0:
                s.opened_time = time_ms
            s.qty = new_qty
            return None
        sold = min(qty, held) if held > 0 else qty
        s.cash += notional - (commission if in_quote else 0.0)
        share = s.entry_fees * (sold / held) if held > 0 else 0.0
        s.entry_fees -= share
        fee = fee_quote
        pnl = sold * (price - s.avg) - fee - share
        trade = ClosedTrade(symbol, s.opened_time, time_ms, s.avg, price, sold, fee + share, pnl,
                            pnl / (sold * s.avg) if sold and s.avg else 0.0, tag)
        self.trades.append(trade)
        s.realized += pnl
        rest = held - sold - (commission if in_base else 0.0)
        if rest <= held * 1e-12:
            rest = 0.0
            s.avg = 0.0
            s.entry_fees = 0.0
            s.opened_time = -1
        s.qty = rest
        return trade

    def mark(self, symbol: str, price: float) -> None:
        self.sleeves[symbol].mark = price

    def equity(self) -> float:
        return sum(s.equity() for s in self.sleeves.values())

    def snapshot(self) -> dict[str, Any]:
        """JSON-safe: per symbol qty, avg price, cash, realized/unrealized PnL, fees."""
        out: dict[str, Any] = {}
        for sym, s in self.sleeves.items():
            out[sym] = {"qty": s.qty, "avg_price": s.avg, "cash": s.cash, "mark": s.mark,
                        "equity": s.equity(), "realized_pnl": s.realized,
                        "unrealized_pnl": s.unrealized(), "fees": s.fees,
                        "other_fees": dict(s.other_fees), "turnover": s.turnover,
                        "fills": s.fills, "initial_cash": s.initial_cash,
                        "pnl": s.equity() - s.initial_cash if s.mark is not None or not s.qty
                        else None}
        return out
