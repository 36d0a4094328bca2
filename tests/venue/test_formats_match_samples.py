"""Each real Binance sample in tests/data/binance-format is matched in shape by the venue.

"Shape" is the JSON structure with types, where Binance's 8-decimal strings are their own type;
replaying the sample candles through the venue also reproduces their values exactly.
"""

from __future__ import annotations

import asyncio
import csv
import json
import re
import time
from typing import Any

import pyarrow as pa

from spark_ray.schemas import CANDLE_SCHEMA

from venue_helpers import SAMPLES, connect, http

_DEC8 = re.compile(r"^-?\d+\.\d{8}$")


def shape(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: shape(v) for k, v in x.items()}, list(x)
    if isinstance(x, list):
        return [shape(v) for v in x]
    if isinstance(x, str):
        return "dec8" if _DEC8.match(x) else f"str:{x}" if x == "0" else "str"
    return type(x).__name__


def _candles_table(rows: list[list[Any]], symbol: str) -> pa.Table:
    """Binance kline rows (REST JSON or archive CSV) as a CANDLE_SCHEMA table."""
    cols: dict[str, list[Any]] = {f.name: [] for f in CANDLE_SCHEMA}
    for r in rows:
        cols["exchange"].append("binance")
        cols["symbol"].append(symbol)
        cols["interval"].append("1m")
        cols["open_time"].append(int(r[0]))
        for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
            cols[name].append(float(r[i]))
        cols["quote_volume"].append(float(r[7]))
        cols["trades"].append(int(r[8]))
        cols["taker_buy_base"].append(float(r[9]))
        cols["taker_buy_quote"].append(float(r[10]))
    arrays = [pa.array(cols["open_time"], pa.int64()).cast(CANDLE_SCHEMA.field("open_time").type)
              if f.name == "open_time" else pa.array(cols[f.name], f.type) for f in CANDLE_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=CANDLE_SCHEMA)


def _replayed_klines(make_venue: Any, rows: list[list[Any]], symbol: str) -> list[list[Any]]:
    """Replay stored candles fast, then read them back over REST once they have closed."""
    v = make_venue(symbols=(symbol,), candles=_candles_table(rows, symbol), speed=900.0,
                   trades_per_second=None)
    last_close = int(rows[-1][6])
    deadline = time.monotonic() + 20
    while True:
        _, _, now = http(f"{v.rest_url}/api/v3/time")
        if now["serverTime"] > last_close or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    status, _, body = http(f"{v.rest_url}/api/v3/klines?symbol={symbol}&interval=1m"
                           f"&startTime={rows[0][0]}&limit={len(rows)}")
    assert status == 200
    return body


def test_spot_klines_response_shape_and_values(make_venue: Any) -> None:
    sample = json.loads((SAMPLES / "spot-klines-response.json").read_text())
    got = _replayed_klines(make_venue, sample, "BTCUSDT")
    assert [shape(r) for r in got] == [shape(r) for r in sample]
    for mine, real in zip(got, sample, strict=True):
        # open time, OHLC, volume, close time and trade count are the real candle's.
        assert mine[:7] == real[:7] and mine[8] == real[8]


def test_archive_csv_columns_and_values(make_venue: Any) -> None:
    with (SAMPLES / "ADABTC-1m-2021-11-27.head.csv").open() as fh:
        sample = [row for row in csv.reader(fh)]
    got = _replayed_klines(make_venue, sample, "ADABTC")
    as_csv = [[str(x) for x in row] for row in got]
    for mine, real in zip(as_csv, sample, strict=True):
        assert len(mine) == len(real) == 12
        assert [bool(_DEC8.match(x)) for x in mine] == [bool(_DEC8.match(x)) for x in real]
        assert mine[:7] == real[:7] and mine[8] == real[8] and mine[11] == real[11]


def test_combined_agg_trade_frame_shape(venue: Any) -> None:
    sample = json.loads((SAMPLES / "ws-combined-aggTrade.json").read_text())

    async def first_frame() -> dict[str, Any]:
        async with connect(f"{venue.ws_url}/stream?streams=ethusdt@aggTrade") as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    frame = asyncio.run(first_frame())
    assert frame["stream"] == sample["stream"]
    assert shape(frame) == shape(sample)
