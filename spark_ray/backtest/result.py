"""BacktestResult: metrics, trades and equity, and ``save(dir)`` for the report files.

Reports are deterministic: the same data, strategy and parameters give byte-identical files
(sorted JSON keys, fixed float formatting, PNG written without timestamps).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spark_ray.backtest.engine import EngineOutput
from spark_ray.fills.conventions import conventions
from spark_ray.schemas import iso_ms

ENGINE_VERSION = "1.0"


@dataclass
class BacktestResult:
    strategy: str
    params: dict[str, Any]
    symbols: list[str]
    interval: str
    times: np.ndarray
    close: np.ndarray
    output: EngineOutput
    metrics: dict[str, Any]
    benchmark: dict[str, Any]
    config: dict[str, Any]
    data_fingerprint: str
    guard: dict[str, Any] = field(default_factory=dict)
    # The fill conventions with this run's annualization and sessions filled in.
    conventions: dict[str, Any] = field(default_factory=conventions)

    @property
    def equity(self) -> pd.Series:
        return pd.Series(self.output.equity, index=pd.to_datetime(self.times, unit="ms",
                                                                  utc=True), name="equity")

    @property
    def trades(self) -> pd.DataFrame:
        rows = [{
            "symbol": t.symbol, "entry_time": pd.Timestamp(t.entry_time, unit="ms", tz="UTC"),
            "exit_time": pd.Timestamp(t.exit_time, unit="ms", tz="UTC"),
            "entry_price": t.entry_price, "exit_price": t.exit_price, "qty": t.qty,
            "fees": t.fees, "pnl": t.pnl, "return": t.ret, "tag": t.tag,
        } for t in self.output.trades]
        return pd.DataFrame(rows, columns=["symbol", "entry_time", "exit_time", "entry_price",
                                           "exit_price", "qty", "fees", "pnl", "return", "tag"])

    def report(self) -> dict[str, Any]:
        return {
            "engine_version": ENGINE_VERSION,
            "strategy": self.strategy,
            "params": self.params,
            "symbols": self.symbols,
            "interval": self.interval,
            "config": self.config,
            "data": {"fingerprint": self.data_fingerprint, "bars": len(self.times),
                     "start": iso_ms(int(self.times[0])) if len(self.times) else None,
                     "end": iso_ms(int(self.times[-1])) if len(self.times) else None},
            "metrics": self.metrics,
            "benchmark_buy_and_hold": self.benchmark,
            "guardrails": self.guard,
            "open_positions": self.output.open_positions,
            "orders": {"submitted": len(self.output.orders),
                       "filled": sum(o.status == "FILLED" for o in self.output.orders),
                       "rejected": sum(o.status == "REJECTED" for o in self.output.orders),
                       "canceled": sum(o.status == "CANCELED" for o in self.output.orders)},
            "conventions": self.conventions,
        }

    def save(self, directory: Path, png: bool = True) -> dict[str, Path]:
        """Write report.json, trades.csv, equity.csv and report.png into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {"report.json": directory / "report.json",
                 "trades.csv": directory / "trades.csv",
                 "equity.csv": directory / "equity.csv"}
        paths["report.json"].write_text(json.dumps(self.report(), indent=2, sort_keys=True,
                                                   allow_nan=False) + "\n")
        with paths["trades.csv"].open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["symbol", "entry_time", "exit_time", "entry_price", "exit_price", "qty",
                        "fees", "pnl", "return", "tag"])
            for t in self.output.trades:
                w.writerow([t.symbol, iso_ms(t.entry_time), iso_ms(t.exit_time),
                            repr(t.entry_price), repr(t.exit_price), repr(t.qty),
                            repr(t.fees), repr(t.pnl), repr(t.ret), t.tag])
        with paths["equity.csv"].open("w", newline="") as fh:
            w = csv.writer(fh)
            # close_<SYM>: the price each bar closed at, so a chart (the console's) can draw
            # price, equity, entries and exits from this file alone.
            close = np.asarray(self.close, dtype=float)
            closes = ([close] if close.ndim == 1 else [close[:, i] for i in range(close.shape[1])])
            close_syms = self.symbols[:len(closes)]
            w.writerow(["time", "equity", "cash", *[f"position_{s}" for s in self.symbols],
                        *[f"close_{s}" for s in close_syms]])
            pos = [self.output.positions[s] for s in self.symbols]
            for k, ms in enumerate(self.times.tolist()):
                w.writerow([iso_ms(ms), repr(float(self.output.equity[k])),
                            repr(float(self.output.cash[k])), *[repr(float(p[k])) for p in pos],
                            *[repr(float(c[k])) for c in closes]])
        if png:
            from spark_ray.backtest.plot import plot_report

            paths["report.png"] = directory / "report.png"
            plot_report(self, paths["report.png"])
        return paths

    def summary_rows(self) -> list[tuple[str, str]]:
        m = self.metrics

        def pct(x: Any) -> str:
            return "-" if x is None else f"{x:.2%}"

        def num(x: Any, fmt: str = ".2f") -> str:
            return "-" if x is None else format(x, fmt)

        return [
            ("strategy", f"{self.strategy} {self.params}"),
            ("bars", f"{m['bars']} ({self.interval})"),
            ("total return", f"{pct(m['total_return'])}  (buy & hold "
                             f"{pct(self.benchmark.get('total_return'))})"),
            ("CAGR", pct(m["cagr"])),
            ("Sharpe / Sortino / Calmar", f"{num(m['sharpe'])} / {num(m['sortino'])} / "
                                          f"{num(m['calmar'])}"),
            ("max drawdown", f"{pct(m['max_drawdown'])} "
                             f"({num(m['max_drawdown_duration_days'], '.1f')} days)"),
            ("trades / win rate", f"{m['trades']} / {pct(m['win_rate'])}"),
            ("profit factor", num(m["profit_factor"])),
            ("exposure", pct(m["exposure"])),
            ("fees", num(m["fees"], ".4f")),
            ("annualization", str(self.conventions.get("annualization", "-"))),
            *([("sessions", str(self.config["calendar"]) + ": "
                + f"{self.config.get('bars_outside_sessions', 0)} bar(s) outside a session "
                "not traded")] if self.config.get("calendar") else []),
        ]
