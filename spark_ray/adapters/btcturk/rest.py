"""BTCTurk's public REST and graph API: the client (on :class:`~spark_ray.http.HttpClient`)
and the parsers of its formats.

From BTCTurk's API documentation (https://docs.btcturk.com/ , "Public Endpoints"), as ccxt's
``btcturk`` class calls them (``https://api.btcturk.com/api/v2``, graph
``https://graph-api.btcturk.com/v1``):

- every ``api/v2`` body is an envelope ``{"data": ..., "success": bool, "message": str|null,
  "code": int}``; pairs may be written ``BTCTRY`` or ``BTC_TRY``;
- ``GET /api/v2/server/exchangeinfo``: ``data.symbols[].name`` are the pairs, ``serverTime``
  the clock in ms (public-endpoints/exchange-info);
- ``GET /api/v2/trades?pairSymbol=&last=``: the latest trades, at most 50
  (public-endpoints/trades): ``tid`` (string id), ``date`` (ms), ``price``/``amount``
  (strings), ``side`` (the taker's). BTCTurk cannot page trades by id: :meth:`BTCTurkRest.
  trades_page` asks for the latest 50 and keeps those with id >= ``from_id``, so a gap older
  than the last 50 trades cannot be repaired from REST (``caps.rest_backfill`` stays empty);
- ``GET /api/v2/orderbook?pairSymbol=&limit=`` (default 100, max 1000;
  public-endpoints/orderbook): ``timestamp`` (ms) and ``[price, amount]`` string pairs;
- ``GET /v1/klines/history?symbol=&resolution=&from=&to=`` on the graph API ("Get Kline
  Data", public-endpoints/get-kline-data): TradingView UDF columns ``{"s": "ok", "t": [sec],
  "o", "h", "l", "c", "v": [numbers]}``, ``{"s": "no_data"}`` for an empty range.

Rate limits (https://docs.btcturk.com/rate-limits): the graph API allows 600 requests per 10
minutes per IP (``graph-api.btcturk.com*``), ``/api/v2/orderBook`` 180 a minute, ``/api/v2/
ticker`` 600 a minute; a 429 carries ``Retry-After`` in seconds, which the shared client honours
for every caller. :data:`GRAPH_SPACING_S` paces kline pages under the graph limit.
"""

from __future__ import annotations

from typing import Any

from spark_ray.adapters.events import TradeCols
from spark_ray.http import HttpClient, HttpError, RetryPolicy

DEFAULT_REST_URL = "https://api.btcturk.com"
DEFAULT_GRAPH_URL = "https://graph-api.btcturk.com"
TRADES_MAX = 50  # GET /api/v2/trades?last= returns at most 50 trades
GRAPH_SPACING_S = 1.0  # 600 graph-api requests per 10 minutes = one a second
KLINES_PAGE = 1000  # bars asked per klines/history call (ccxt: one call covers <= 11,000)
# Our intervals -> BTCTurk's klines/history resolution (minutes; days and weeks as ccxt sends
# them). Binance intervals BTCTurk does not offer (3m, 5m, 2h, ...) are refused before a call.
RESOLUTIONS: dict[str, str] = {"1m": "1", "15m": "15", "30m": "30", "1h": "60", "4h": "240",
                               "1d": "1 d", "1w": "1 w"}

Candle = tuple[int, float, float, float, float, float]  # open ms, o, h, l, c, volume


def btcturk_pair(symbol: str) -> str:
    """``BTC_TRY``, ``btc/try`` or ``BTCTRY`` -> ``BTCTRY`` (BTCTurk's ``name``)."""
    return "".join(ch for ch in symbol if ch.isalnum()).upper()


def data_of(body: Any, what: str) -> Any:
    """The ``data`` of a successful envelope; ValueError naming ``what`` otherwise."""
    if not isinstance(body, dict) or "data" not in body:
        raise ValueError(f"{what}: not a BTCTurk envelope: {str(body)[:200]}")
    if body.get("success") is False:
        raise ValueError(f"{what}: {body.get('message')} (code {body.get('code')})")
    return body["data"]


class BTCTurkRest:
    """Public market data of BTCTurk (or a venue serving its API, like our simulator).

    ``graph_url`` defaults to BTCTurk's graph host for the real API, else to ``base_url``: a
    mirror or the simulator serves ``/v1/klines/history`` beside ``/api/v2``."""

    intervals: dict[str, str] = RESOLUTIONS
    page_candles: int = KLINES_PAGE
    request_spacing_s: float = GRAPH_SPACING_S

    def __init__(self, base_url: str = DEFAULT_REST_URL, graph_url: str | None = None,
                 timeout_s: float = 10.0, retry: RetryPolicy | None = None) -> None:
        self.http = HttpClient(base_url, timeout_s)
        if graph_url is None:
            graph_url = DEFAULT_GRAPH_URL if self.http.base == DEFAULT_REST_URL else base_url
        self.graph = (self.http if graph_url.rstrip("/") == self.http.base
                      else HttpClient(graph_url, timeout_s))
        self.retry = retry

    def __repr__(self) -> str:
        return f"BTCTurkRest({self.http.base!r}, graph={self.graph.base!r})"

    @property
    def calls(self) -> int:
        return self.http.calls + (self.graph.calls if self.graph is not self.http else 0)

    async def _data(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return data_of(await self.http.get_json(path, params, retry=self.retry), path)

    # --- reference data ---------------------------------------------------------------------
    async def exchange_info(self) -> dict[str, Any]:
        data = await self._data("/api/v2/server/exchangeinfo")
        if not isinstance(data, dict) or not isinstance(data.get("symbols"), list):
            raise ValueError("/api/v2/server/exchangeinfo: no symbols")
        return data

    async def symbols(self) -> set[str]:
        """The pairs BTCTurk lists, written ``BTCTRY``."""
        return {str(s.get("name")) for s in (await self.exchange_info())["symbols"]
                if isinstance(s, dict)}

    async def server_time_ms(self) -> int:
        return int((await self.exchange_info())["serverTime"])

    async def ticker(self, symbol: str | None = None) -> list[dict[str, Any]]:
        data = await self._data("/api/v2/ticker",
                                {"pairSymbol": btcturk_pair(symbol)} if symbol else None)
        if not isinstance(data, list):
            raise ValueError("/api/v2/ticker: data is not a list")
        return data

    # --- gap repair and book snapshots (adapters.base.MarketRest) ------------------------------
    async def trades_page(self, dataset: str, symbol: str, from_id: int,
                          limit: int = TRADES_MAX) -> list[dict[str, Any]]:
        """The latest <= 50 trades with id >= ``from_id``, oldest first. BTCTurk has no
        ``fromId``: ``from_id`` filters, it does not page (module docstring)."""
        if dataset != "trades":
            raise ValueError(f"BTCTurk back-fills trades only, not {dataset!r}")
        data = await self._data("/api/v2/trades", {
            "pairSymbol": btcturk_pair(symbol), "last": max(1, min(TRADES_MAX, limit))})
        if not isinstance(data, list):
            raise ValueError("/api/v2/trades: data is not a list")
        rows = [r for r in data if (i := row_id("trades", r)) is not None and i >= from_id]
        rows.sort(key=lambda r: row_id("trades", r) or 0)
        return rows

    async def depth(self, symbol: str, limit: int = 100) -> Any:
        """The ``GET /api/v2/orderbook`` envelope (parse it with :func:`parse_depth_snapshot`)."""
        return await self.http.get_json("/api/v2/orderbook", {
            "pairSymbol": btcturk_pair(symbol), "limit": max(1, min(1000, limit))},
            retry=self.retry)

    # --- candle history (adapters.base.KlineHistory) ------------------------------------------
    async def klines(self, symbol: str, interval: str, start_ms: int,
                     end_ms: int) -> list[Candle]:
        """Bars opening in ``[start_ms, end_ms)``: one klines/history call (``to`` is
        inclusive in seconds, so it is asked for one second before ``end_ms``)."""
        res = RESOLUTIONS.get(interval)
        if res is None:
            raise ValueError(f"BTCTurk offers {', '.join(RESOLUTIONS)}; not {interval}")
        body = await self.graph.get_json("/v1/klines/history", {
            "symbol": btcturk_pair(symbol), "resolution": res,
            "from": -(-start_ms // 1000), "to": (end_ms - 1) // 1000}, retry=self.retry)
        return [c for c in parse_klines(body) if start_ms <= c[0] < end_ms]

    async def close(self) -> None:
        await self.http.close()
        if self.graph is not self.http:
            await self.graph.close()


# --- parsers -------------------------------------------------------------------------------------
def row_id(dataset: str, row: dict[str, Any]) -> int | None:
    """A trade row's id: ``tid`` is a decimal string (an int is accepted too)."""
    v = row.get("tid") if isinstance(row, dict) else None
    if type(v) is int:
        return v
    return int(v) if isinstance(v, str) and v.isdigit() and len(v) <= 19 else None


def parse_trade_rows(dataset: str, symbol: str, rows: list[dict[str, Any]],
                     recv_ms: int) -> tuple[TradeCols, int]:
    """``/api/v2/trades`` rows -> trade columns, and how many rows were malformed. ``side`` is
    the taker's: a taker ``sell`` means the buyer was the maker."""
    cols = TradeCols()
    bad = 0
    for r in rows:
        try:
            tid = row_id(dataset, r)
            date = r["date"]
            t = int(date) if type(date) is int or (isinstance(date, str) and date.isdigit()) \
                else None
            side = r["side"]
            if tid is None or t is None or side not in ("buy", "sell"):
                raise ValueError("row fields")
            p, q = float(r["price"]), float(r["amount"])
        except (KeyError, ValueError, TypeError):
            bad += 1
            continue
        cols.append(symbol, tid, p, q, side == "sell", t, None, recv_ms)
    return cols, bad


def parse_depth_snapshot(body: Any) -> tuple[int, list[tuple[float, float]],
                                             list[tuple[float, float]]]:
    """A ``GET /api/v2/orderbook`` body as (timestamp, bids, asks); ValueError when malformed.
    BTCTurk's REST book has no update id: its ms ``timestamp`` stands in for one."""
    try:
        data = data_of(body, "orderbook")
        ts = data["timestamp"]
        if type(ts) is not int:
            raise ValueError("timestamp")
        bids = [(float(p), float(q)) for p, q in data["bids"]]
        asks = [(float(p), float(q)) for p, q in data["asks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"orderbook snapshot: {exc}") from None
    return ts, bids, asks


def parse_klines(body: Any) -> list[Candle]:
    """UDF columns -> candles (open ms, o, h, l, c, volume); ``no_data`` is no candles;
    ValueError for an error answer or columns of different lengths."""
    if not isinstance(body, dict):
        raise ValueError(f"klines/history: not an object: {str(body)[:200]}")
    status = body.get("s")
    if status == "no_data":
        return []
    if status != "ok":
        raise ValueError(f"klines/history: {body.get('errmsg') or status!r}")
    try:
        cols = [body[k] for k in ("t", "o", "h", "l", "c", "v")]
        if len({len(c) for c in cols}) != 1:
            raise ValueError("klines/history: columns of different lengths")
        return [(int(t) * 1000, float(o), float(h), float(lo), float(c), float(v))
                for t, o, h, lo, c, v in zip(*cols, strict=True)]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"klines/history: {exc}") from None


__all__ = ["DEFAULT_GRAPH_URL", "DEFAULT_REST_URL", "RESOLUTIONS", "BTCTurkRest", "HttpError",
           "btcturk_pair", "data_of", "parse_depth_snapshot", "parse_klines",
           "parse_trade_rows", "row_id"]
