"""Backtest engine: event-driven simulator over the shared fill model, spot account, metrics,
reports. Strategies come from :mod:`spark_ray.strategy`, fills from :mod:`spark_ray.fills`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spark_ray.backtest.engine import Engine, Guard
from spark_ray.backtest.result import BacktestResult
from spark_ray.fills.costs import CostModel
from spark_ray.schemas import INTERVAL_MS
from spark_ray.strategy.bars import BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.loader import load_strategy, make_strategy

__all__ = [
    "BacktestResult",
    "Guard",
    "backtest",
    "run_bars",
]


def run_bars(data: BarData, strategy: str | type[Strategy] | Strategy,
             params: dict[str, Any] | None = None, cash: float = 10_000.0,
             costs: CostModel | None = None, guard: Guard | None = None,
             every_bar: bool | None = None, benchmark: bool = True) -> BacktestResult:
    """Backtest ``strategy`` on prepared bars (used by the CLI, Tune trials and tests).

    ``data.exchange`` picks the trading calendar (:mod:`spark_ray.sessions`): bars outside its
    sessions are not traded (dropped, counted in the report), and the metrics annualize with its
    bars a year."""
    from spark_ray.backtest.data import session_bars
    from spark_ray.backtest.metrics import compute
    from spark_ray.fills.conventions import conventions
    from spark_ray.sessions import calendar_code, periods_per_year
    from spark_ray.strategy.builtins import BuyAndHold

    if isinstance(strategy, Strategy):
        strat = strategy
    else:
        cls = load_strategy(strategy) if isinstance(strategy, str) else strategy
        strat = make_strategy(cls, params or {})
    cost = costs or CostModel()
    data, closed_bars = session_bars(data)
    out = Engine(data, strat, cash=cash, costs=cost, guard=guard, every_bar=every_bar).run()
    step = INTERVAL_MS.get(data.interval) or 1
    per_year, annualization = periods_per_year(data.exchange, data.interval, step)
    code = calendar_code(data.exchange)
    sessions = (f"{code} sessions: {closed_bars} bar(s) outside a session dropped, not traded"
                if code else None)
    import numpy as np

    trades = out.trades
    pnls = np.array([t.pnl for t in trades])
    rets = np.array([t.ret for t in trades])
    hold = np.array([t.exit_time - t.entry_time for t in trades], dtype=np.float64)
    in_market = np.zeros(len(data), dtype=bool)
    for q in out.positions.values():
        in_market |= q > 0
    metrics = compute(out.equity, data.time, step, pnls, rets, hold, in_market, out.fees,
                      out.turnover, per_year)
    bench: dict[str, Any] = {}
    if benchmark and strat.name != "buy_and_hold" and len(data):
        b = Engine(data, BuyAndHold(), cash=cash, costs=cost).run()
        bm = compute(b.equity, data.time, step, np.zeros(0), np.zeros(0), np.zeros(0),
                     b.positions[data.symbols[0]] > 0, b.fees, b.turnover, per_year)
        bench = {k: bm[k] for k in ("total_return", "cagr", "sharpe", "max_drawdown")}
    guard_info: dict[str, Any] = {"blocked_entries": out.blocked_entries}
    if guard is not None and hasattr(guard, "summary"):
        guard_info.update(guard.summary())
    return BacktestResult(
        strategy=strat.name, params=strat.params.model_dump(mode="json"),
        symbols=data.symbols, interval=data.interval, times=data.time,
        close=data.close[data.symbols[0]], output=out, metrics=metrics, benchmark=bench,
        config={"cash": cash, "fee_bps": cost.fee_bps, "maker_fee_bps": cost.maker_fee_bps,
                "slippage_bps": cost.slippage_bps,
                "slippage_range_frac": cost.slippage_range_frac, "lot_step": cost.lot_step,
                "min_notional": cost.min_notional,
                "mode": "every_bar" if out.on_bar_calls == len(data) else "signal_bars",
                "on_bar_calls": out.on_bar_calls, "exchange": data.exchange or None,
                "calendar": code, "bars_outside_sessions": closed_bars},
        data_fingerprint=data.fingerprint, guard=guard_info,
        conventions=conventions(annualization, sessions))


def backtest(store: Any, symbol: str | list[str], interval: str,
             strategy: str | type[Strategy] = "sma_cross", params: dict[str, Any] | None = None,
             cash: float = 10_000.0, fee_bps: float = 10.0, slippage_bps: float = 0.0,
             start: datetime | str | None = None, end: datetime | str | None = None,
             guard: Guard | None = None, exchange: str = "binance") -> BacktestResult:
    """Backtest on lake data: ``spark_ray.backtest(DataStore("lake"), "ETHBTC", "5m", ...)``."""
    from spark_ray.backtest.data import bars_from_store
    from spark_ray.lake import DataStore

    st = store if hasattr(store, "candles_numpy") else DataStore(store)
    symbols = [symbol] if isinstance(symbol, str) else list(symbol)
    data = bars_from_store(st, symbols, interval, start, end, exchange)
    return run_bars(data, strategy, params, cash,
                    CostModel(fee_bps=fee_bps, slippage_bps=slippage_bps), guard)
