"""Bars for the engine: from the lake, from arrays, or from trades (tick data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pyarrow as pa

from spark_ray.errors import UserError
from spark_ray.strategy.bars import BarData, fingerprint


def bars_from_arrays(symbol: str, interval: str, time: np.ndarray, open_: np.ndarray,
                     high: np.ndarray, low: np.ndarray, close: np.ndarray,
                     volume: np.ndarray | None = None, exchange: str = "") -> BarData:
    vol = np.zeros(len(time)) if volume is None else np.asarray(volume, dtype=np.float64)
    cols = [np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close)]
    t = np.ascontiguousarray(time, dtype=np.int64)
    return BarData(time=t, open={symbol: cols[0]}, high={symbol: cols[1]},
                   low={symbol: cols[2]}, close={symbol: cols[3]}, volume={symbol: vol},
                   symbols=[symbol], interval=interval,
                   fingerprint=fingerprint(t, [*cols, vol]), exchange=exchange)


def bars_from_store(store: Any, symbols: list[str], interval: str,
                    start: datetime | str | None = None, end: datetime | str | None = None,
                    exchange: str = "binance") -> BarData:
    """Aligned bars of ``symbols`` (inner join on open time) from a DataStore."""
    frames = {}
    for s in symbols:
        a = store.candles_numpy(s, interval, start=start, end=end, exchange=exchange)
        if len(a["open_time"]) == 0:
            raise UserError(f"--symbol: no {interval} candles for {s} in {store.uri}"
                            + (f" between {start} and {end}" if start or end else ""))
        frames[s] = a
    common = frames[symbols[0]]["open_time"]
    for s in symbols[1:]:
        common = np.intersect1d(common, frames[s]["open_time"], assume_unique=True)
    data: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("open", "high", "low", "close",
                                                              "volume")}
    cols = []
    for s in symbols:
        a = frames[s]
        sel = np.isin(a["open_time"], common, assume_unique=True) if len(symbols) > 1 else \
            slice(None)
        for k in data:
            data[k][s] = np.ascontiguousarray(a[k][sel])
            cols.append(data[k][s])
    return BarData(time=common, open=data["open"], high=data["high"], low=data["low"],
                   close=data["close"], volume=data["volume"], symbols=list(symbols),
                   interval=interval, fingerprint=fingerprint(common, cols), exchange=exchange)


def session_bars(data: BarData) -> tuple[BarData, int]:
    """The bars that may trade, and how many were dropped: for an exchange with a trading
    calendar (:func:`spark_ray.sessions.in_session`) only the bars inside a session; the market
    was closed for the others, so nothing decides or fills on them. Venues that never close
    (and bars of unknown origin) keep every bar, the same object."""
    from spark_ray.sessions import in_session

    mask = in_session(data.exchange, data.interval, data.time) if data.exchange else None
    if mask is None or bool(mask.all()):
        return data, 0
    keep = np.flatnonzero(mask)

    def take(d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {s: np.ascontiguousarray(a[keep]) for s, a in d.items()}

    o, h, lo, c, v = (take(d) for d in (data.open, data.high, data.low, data.close,
                                         data.volume))
    t = np.ascontiguousarray(data.time[keep])
    cols = [a for s in data.symbols for a in (o[s], h[s], lo[s], c[s], v[s])]
    return BarData(time=t, open=o, high=h, low=lo, close=c, volume=v, symbols=data.symbols,
                   interval=data.interval, fingerprint=fingerprint(t, cols),
                   extra=data.extra, exchange=data.exchange), len(data) - len(keep)


def bars_from_trades(trades: pa.Table, symbol: str) -> BarData:
    """Tick data: every trade is a bar with open = high = low = close = price."""
    t = trades.column("trade_time").cast(pa.int64()).to_numpy()
    p = trades.column("price").to_numpy().astype(np.float64)
    q = trades.column("qty").to_numpy().astype(np.float64)
    return bars_from_arrays(symbol, "tick", t, p, p, p, p, q)
