"""Stored candles for replay: read the Parquet lake (or take a table) into per-symbol candles.

The lake keeps CANDLE_SCHEMA rows in hive partitions
`DIR/candles/exchange=binance/symbol=BTCUSDT/interval=1m/month=2024-01/*.parquet`; the venue
replays the 1m candles of each requested symbol.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from spark_ray.schemas import CANDLE_SCHEMA
from spark_ray.venue.sources import StoredCandle
from spark_ray.venue.specs import SymbolSpec, default_spec


def candle_dir(store: Path, symbol: str, exchange: str = "binance") -> Path:
    return Path(store) / "candles" / f"exchange={exchange}" / f"symbol={symbol}" / "interval=1m"


def load_lake(store: Path, symbols: tuple[str, ...], exchange: str = "binance") -> pa.Table:
    """The 1m candles of `symbols` from a lake; ValueError names what is missing."""
    tables = []
    for symbol in symbols:
        path = candle_dir(store, symbol, exchange)
        if not path.is_dir():
            raise ValueError(f"store: no 1m candles for {symbol} (expected {path})")
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        names = [f.name for f in CANDLE_SCHEMA if f.name in dataset.schema.names]
        table = dataset.to_table(columns=names)
        for f in CANDLE_SCHEMA:
            if f.name not in table.column_names:
                if f.name == "exchange":
                    table = table.append_column(f.name, pa.array([exchange] * len(table)))
                elif f.name == "symbol":
                    table = table.append_column(f.name, pa.array([symbol] * len(table)))
                elif f.name == "interval":
                    table = table.append_column(f.name, pa.array(["1m"] * len(table)))
                elif f.nullable:
                    table = table.append_column(f.name, pa.nulls(len(table), f.type))
                else:
                    raise ValueError(f"store: {path} lacks column {f.name!r}")
        tables.append(table.select(CANDLE_SCHEMA.names).cast(CANDLE_SCHEMA))
    return pa.concat_tables(tables)


def split_candles(
    table: pa.Table, symbols: tuple[str, ...]
) -> dict[str, tuple[SymbolSpec, list[StoredCandle]]]:
    """Per symbol: a spec whose grid holds the candles exactly, and the candles in its units."""
    missing = [c for c in ("symbol", "open_time", "open", "high", "low", "close", "volume")
               if c not in table.column_names]
    if missing:
        raise ValueError(f"candles: table lacks column(s) {', '.join(missing)}")
    if "interval" in table.column_names:
        table = table.filter(pc.equal(table["interval"], "1m"))
    out: dict[str, tuple[SymbolSpec, list[StoredCandle]]] = {}
    for symbol in symbols:
        t = table.filter(pc.equal(table["symbol"], symbol))
        if len(t) == 0:
            raise ValueError(f"candles: no 1m candles for {symbol}")
        t = t.sort_by("open_time")
        cols = {name: t[name].to_pylist() for name in t.column_names}
        times = [int(v.timestamp() * 1000) if hasattr(v, "timestamp") else int(v)
                 for v in cols["open_time"]]
        prices = cols["open"][:500] + cols["high"][:500] + cols["low"][:500] + cols["close"][:500]
        spec = default_spec(
            symbol,
            float(cols["open"][0]),
            sample_prices=[float(p) for p in prices],
            sample_qtys=[float(v) for v in cols["volume"][:500]],
        )
        qscale = 10 ** (spec.price_scale + spec.qty_scale)
        seen: set[int] = set()
        rows: list[StoredCandle] = []
        for i, open_time in enumerate(times):
            if open_time in seen or open_time % 60_000:
                continue
            seen.add(open_time)
            volume = spec.to_units(float(cols["volume"][i]))
            quote = cols.get("quote_volume", [None] * len(times))[i]
            trades = cols.get("trades", [None] * len(times))[i]
            tb = cols.get("taker_buy_base", [None] * len(times))[i]
            tq = cols.get("taker_buy_quote", [None] * len(times))[i]
            rows.append(
                StoredCandle(
                    open_time=open_time,
                    o=spec.to_ticks(float(cols["open"][i])),
                    h=spec.to_ticks(float(cols["high"][i])),
                    low=spec.to_ticks(float(cols["low"][i])),
                    c=spec.to_ticks(float(cols["close"][i])),
                    volume=volume,
                    quote=round(float(quote) * qscale) if quote is not None else 0,
                    trades=int(trades) if trades is not None else max(1, volume and 4),
                    taker_base=spec.to_units(float(tb)) if tb is not None else 0,
                    taker_quote=round(float(tq) * qscale) if tq is not None else 0,
                )
            )
        out[symbol] = (spec, rows)
    return out
