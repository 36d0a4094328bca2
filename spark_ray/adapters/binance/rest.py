"""Binance spot public REST: what the ETL, the fabric's gap repair and the executor ask for.

One client (:class:`BinanceRest`, on the shared :class:`~spark_ray.http.HttpClient`) and the
parsers of Binance's REST formats, from "Binance Spot API: Market Data endpoints"
(https://developers.binance.com/docs/binance-spot-api-docs/rest-api/market-data-endpoints):

- ``GET /api/v3/klines``: arrays ``[openTime, open, high, low, close, volume, closeTime,
  quoteVolume, trades, takerBuyBase, takerBuyQuote, ignore]``, prices as strings, 1,000 a page;
- ``GET /api/v3/historicalTrades?fromId=`` (needs ``X-MBX-APIKEY``: ``SPARK_RAY_BINANCE_API_KEY``,
  never logged) and ``GET /api/v3/aggTrades?fromId=`` back-fill the trade streams;
- ``GET /api/v3/depth`` is the order book snapshot a depth stream is synced against;
- ``GET /api/v3/time`` is the venue clock; ``exchangeInfo`` (symbol filters) and recent klines
  for the executor are in :mod:`.spot`, beside the trading types they return.

429/418 answers pause every caller of the client for ``Retry-After`` (:mod:`spark_ray.http`).
"""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from spark_ray.adapters.events import TradeCols
from spark_ray.http import HttpAnswer, HttpClient, HttpError, RetryPolicy

DEFAULT_REST_URL = "https://api.binance.com"
API_KEY_ENV = "SPARK_RAY_BINANCE_API_KEY"
PAGE = 1000  # trades and klines per page
KLINES_LIMIT = 1000
KLINES_WEIGHT = 2  # the request weight of one klines page of 1,000
WEIGHT_HEADER = "x-mbx-used-weight-1m"
# The REST endpoint that back-fills each trade dataset.
BACKFILL_PATH = {"trades": "/api/v3/historicalTrades", "agg_trades": "/api/v3/aggTrades"}


class BinanceRest:
    """Public market data of one Binance-compatible venue (the real one or our simulator)."""

    def __init__(self, base_url: str = DEFAULT_REST_URL, api_key: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self.http = HttpClient(base_url, timeout_s)
        self._key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "spark-ray")

    @property
    def base(self) -> str:
        return self.http.base

    @property
    def calls(self) -> int:
        return self.http.calls

    def __repr__(self) -> str:  # never show the key
        return f"BinanceRest({self.base!r})"

    async def get(self, path: str, params: dict[str, Any] | None = None,
                  retry: RetryPolicy | None = None) -> Any:
        """The JSON body of a 200, else :class:`~spark_ray.http.HttpError`."""
        return await self.http.get_json(path, params, retry=retry)

    async def server_time_ms(self, retry: RetryPolicy | None = None) -> int:
        body = await self.get("/api/v3/time", retry=retry)
        if not isinstance(body, dict) or "serverTime" not in body:
            raise ValueError(f"{self.base}/api/v3/time: no serverTime in {body!r}")
        return int(body["serverTime"])

    # --- klines -----------------------------------------------------------------------------
    async def klines_page(self, symbol: str, interval: str, start_ms: int,
                          end_ms: int) -> HttpAnswer:
        """One page of klines opening in ``[start_ms, end_ms)``, as the raw answer: the ETL
        reads the weight header and decides about retries itself."""
        return await self.http.get("/api/v3/klines", {
            "symbol": symbol, "interval": interval, "startTime": start_ms,
            "endTime": end_ms - 1, "limit": KLINES_LIMIT})

    # --- gap repair and depth snapshots ---------------------------------------------------------
    async def trades_page(self, dataset: str, symbol: str, from_id: int,
                          limit: int = PAGE) -> list[dict[str, Any]]:
        path = BACKFILL_PATH[dataset]
        headers = {"X-MBX-APIKEY": self._key} if dataset == "trades" else None
        body = await self.http.get_json(path, {"symbol": symbol, "fromId": from_id,
                                               "limit": max(1, min(PAGE, limit))}, headers)
        if not isinstance(body, list):
            raise ValueError(f"{path}: expected a list, got {type(body).__name__}")
        return body

    async def depth(self, symbol: str, limit: int = 1000) -> Any:
        return await self.get("/api/v3/depth", {"symbol": symbol, "limit": limit})

    async def close(self) -> None:
        await self.http.close()


# --- parsers of REST answers ---------------------------------------------------------------------
def parse_klines(rows: list[list[Any]]) -> pa.Table:
    """Binance kline arrays (prices as strings) -> columns the ETL normalizer accepts."""
    def col(i: int, typ: type) -> list[Any]:
        return [typ(r[i]) for r in rows]

    return pa.table({
        "open_time": pa.array(col(0, int), pa.int64()),
        "open": pa.array(col(1, float)), "high": pa.array(col(2, float)),
        "low": pa.array(col(3, float)), "close": pa.array(col(4, float)),
        "volume": pa.array(col(5, float)), "close_time": pa.array(col(6, int), pa.int64()),
        "quote_volume": pa.array(col(7, float)), "trades": pa.array(col(8, int), pa.int64()),
        "taker_buy_base": pa.array(col(9, float)), "taker_buy_quote": pa.array(col(10, float)),
    })


def row_id(dataset: str, row: dict[str, Any]) -> int | None:
    """The id of a back-fill row: ``id`` of a historical trade, ``a`` of an aggregate trade."""
    v = row.get("id" if dataset == "trades" else "a")
    return v if type(v) is int else None


def parse_trade_rows(dataset: str, symbol: str, rows: list[dict[str, Any]],
                     recv_ms: int) -> tuple[TradeCols, int]:
    """historicalTrades / aggTrades rows -> trade columns, and how many rows were malformed."""
    cols = TradeCols()
    bad = 0
    for r in rows:
        try:
            if dataset == "trades":
                tid, p, q = r["id"], float(r["price"]), float(r["qty"])
                t, m = r["time"], r["isBuyerMaker"]
            else:
                tid, p, q = r["a"], float(r["p"]), float(r["q"])
                t, m = r["T"], r["m"]
            if type(tid) is not int or type(t) is not int or type(m) is not bool:
                raise TypeError("row types")
        except (KeyError, ValueError, TypeError):
            bad += 1
            continue
        cols.append(symbol, tid, p, q, m, t, None, recv_ms)
    return cols, bad


def parse_depth_snapshot(body: Any) -> tuple[int, list[tuple[float, float]],
                                             list[tuple[float, float]]]:
    """A ``GET /api/v3/depth`` body as (lastUpdateId, bids, asks); ValueError when malformed."""
    try:
        if not isinstance(body, dict):
            raise ValueError("not an object")
        last = body["lastUpdateId"]
        if type(last) is not int:
            raise ValueError("lastUpdateId")
        bids = [(float(p), float(q)) for p, q in body["bids"]]
        asks = [(float(p), float(q)) for p, q in body["asks"]]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"depth snapshot: {exc}") from None
    return last, bids, asks


__all__ = ["BACKFILL_PATH", "DEFAULT_REST_URL", "PAGE", "BinanceRest", "HttpError",
           "parse_depth_snapshot", "parse_klines", "parse_trade_rows", "row_id"]
