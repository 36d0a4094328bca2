"""The closed-trade record: one round trip, or the part of it a sale closed. The backtest's
trades.csv, the executor's trades.json and the parity test all read this one type."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class ClosedTrade:
    symbol: str
    entry_time: int  # ms
    exit_time: int
    entry_price: float  # average entry
    exit_price: float
    qty: float
    fees: float  # the exit fee plus the sold share of the entry fees
    pnl: float
    ret: float  # pnl over the entry notional
    tag: str = ""
    # Bar indices: a backtest knows them; live trading has times only.
    entry_i: int | None = None
    exit_i: int | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.entry_i is None and self.exit_i is None:
            del d["entry_i"], d["exit_i"]
        return d
