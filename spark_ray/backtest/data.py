"""Bars for the engine: from the lake, from arrays, or from trades (tick data); and, with a
signal model (``--signals-model``), bars built from the lake's trades with the model's signals
beside them, the one path the backtest, Tune and the review share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from spark_ray.errors import UserError
from spark_ray.strategy.bars import BarData, fingerprint

if TYPE_CHECKING:
    from spark_ray.signals.artifact import LoadedModel
    from spark_ray.strategy.base import Strategy


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
                   extra=data.extra_taking(keep), exchange=data.exchange), len(data) - len(keep)


def bars_from_trades(trades: pa.Table, symbol: str) -> BarData:
    """Tick data: every trade is a bar with open = high = low = close = price."""
    t = trades.column("trade_time").cast(pa.int64()).to_numpy()
    p = trades.column("price").to_numpy().astype(np.float64)
    q = trades.column("qty").to_numpy().astype(np.float64)
    return bars_from_arrays(symbol, "tick", t, p, p, p, p, q)


# --- bars with signals beside them (``--signals-model``) -----------------------------------------
def needs_signals(cls: type[Strategy]) -> bool:
    """Whether a strategy trades on the signals beside the bars (``BarData.extra["signals"]``):
    ``signal_fusion`` and its subclasses, or any strategy class that sets ``needs_signals =
    True``. Asked before any data is read, so a missing ``--signals-model`` fails as a flag
    error (exit 2) rather than as a ValueError from ``init`` after the lake was read."""
    from spark_ray.strategy.builtins import SignalFusion

    return issubclass(cls, SignalFusion) or bool(getattr(cls, "needs_signals", False))


def require_signals_model(cls: type[Strategy], signals_model: object) -> None:
    """UserError naming ``--signals-model`` when ``cls`` needs signals and none was given."""
    if signals_model is None and needs_signals(cls):
        raise UserError(f"--signals-model: {cls.name} trades on a signal model's output (p_up "
                        "beside the bars); give the model folder `spark-ray signals train` "
                        "wrote (<run>/model)")


def load_signal_model(folder: str | Path) -> LoadedModel:
    """The model of ``--signals-model``, verified as it is when served: its sha256 and its
    features' definitions. A folder that is no model is a flag error (exit 2); a model that
    fails verification is a failed check (exit 1), as ``spark-ray trade`` treats it."""
    from spark_ray.errors import CheckFailed
    from spark_ray.signals.artifact import CARD_FILE, TamperedModel, load

    path = Path(folder)
    if not (path / CARD_FILE).is_file():
        raise UserError(f"--signals-model: {path} holds no {CARD_FILE} (give the model folder "
                        "`spark-ray signals train` wrote, <run>/model)")
    try:
        return load(path)
    except TamperedModel as exc:
        raise CheckFailed(f"--signals-model: refusing to use {path}: {exc}") from None
    except (ValueError, KeyError, OSError) as exc:
        raise UserError(f"--signals-model: {path}: not a usable signal model ({exc})") from None


def signals_model_entry(folder: str | Path, model: LoadedModel) -> dict[str, str]:
    """What best.json, the risk report and approved.json record of the model a result came
    from: where it was and the sha256 of its ``model.txt`` (what ``trade`` verifies)."""
    return {"path": str(Path(folder).resolve()), "model_sha256": str(model.card["model_sha256"])}


def _ms(v: datetime | str | None) -> int | None:
    """Epoch ms of a range bound (naive times are UTC, as :class:`DataStore` reads them)."""
    if v is None:
        return None
    d = datetime.fromisoformat(v) if isinstance(v, str) else v
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return int(d.timestamp() * 1000)


def bars_with_signals(store: Any, symbols: list[str], interval: str,
                      start: datetime | str | None, end: datetime | str | None, exchange: str,
                      model: LoadedModel) -> BarData:
    """Bars of ``symbols`` built from the lake's trades, with the model's signals beside them.

    Bars are built from trades (:func:`spark_ray.execution.bars.bars_from_trades`, the
    executor's own bar builder), not read from candles, so each bar's last trade is the trade
    whose signal it carries (:func:`spark_ray.signals.live.attach`). The range selects bars as
    :meth:`DataStore.candles` selects candles: whole bars whose open time is in [start, end).
    The signals are scored over every trade of the symbol in the lake up to the range's end,
    not only those in the range: a feature at a trade uses earlier trades only, so a bar's
    signal is then the same whichever window it is read in (a backtest window, a scenario, its
    hold-out re-read by the review). Several symbols are aligned on common bar times, as
    :func:`bars_from_store` does. No trades for a symbol in the range exits 2 naming it."""
    from spark_ray.execution.bars import bars_from_trades as builder_bars
    from spark_ray.schemas import INTERVAL_MS, iso_ms
    from spark_ray.signals.features import Trades
    from spark_ray.signals.live import attach
    from spark_ray.signals.source import NoBook, load_trades

    step = INTERVAL_MS.get(interval)
    if not step:
        raise UserError(f"--signals-model: bars with signals are built from trades and need a "
                        f"fixed interval; {interval!r} is not one")
    lo, hi = _ms(start), _ms(end)
    first = None if lo is None else -(-lo // step) * step  # first bar opening at/after start
    stop = None if hi is None else -(-hi // step) * step  # end of the last bar opening before end
    built: dict[str, BarData] = {}
    scored: dict[str, Trades] = {}
    for s in symbols:
        table = store.trades(s, exchange)
        t = table.column("trade_time").cast(pa.int64()).to_numpy()
        upto = np.ones(len(t), dtype=bool) if stop is None else t < stop
        inside = upto if first is None else upto & (t >= first)
        if not inside.any():
            span = (f" between {iso_ms(lo) if lo is not None else 'the start'} and "
                    f"{iso_ms(hi) if hi is not None else 'the end'}"
                    if lo is not None or hi is not None else "")
            raise UserError(f"--signals-model: no trades of {s} in {store.uri} "
                            f"(exchange={exchange}){span}: bars and their signals are built "
                            "from the lake's trades; import or record them first")
        built[s] = builder_bars(table.filter(pa.array(inside)), s, interval,
                                include_open_bar=True)
        try:
            scored[s] = load_trades(store, s, exchange, model.features,
                                    table=table.filter(pa.array(upto)))
        except NoBook as exc:
            raise UserError(f"--signals-model: {exc}") from None
    common = built[symbols[0]].time
    for s in symbols[1:]:
        common = np.intersect1d(common, built[s].time, assume_unique=True)
    cols: dict[str, dict[str, np.ndarray]] = {k: {} for k in ("open", "high", "low", "close",
                                                              "volume")}
    prints = []
    for s in symbols:
        b = built[s]
        sel = np.isin(b.time, common, assume_unique=True)
        for k, d in (("open", b.open), ("high", b.high), ("low", b.low), ("close", b.close),
                     ("volume", b.volume)):
            cols[k][s] = np.ascontiguousarray(d[s][sel])
            prints.append(cols[k][s])
    time = np.ascontiguousarray(common, dtype=np.int64)
    data = BarData(time=time, open=cols["open"], high=cols["high"], low=cols["low"],
                   close=cols["close"], volume=cols["volume"], symbols=list(symbols),
                   interval=interval, fingerprint=fingerprint(time, prints), exchange=exchange)
    for s in symbols:
        attach(data, s, scored[s], model.features, model.predict)
    return data
