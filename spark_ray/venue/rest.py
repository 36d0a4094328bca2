"""Binance spot public REST endpoints: parameters, weights and bodies.

Pure request -> answer functions over a :class:`MarketView`; the server adds rate limiting,
faults and headers. Parameters are checked as Binance does (:mod:`~spark_ray.venue.params`);
a bad interval is -1120.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from spark_ray.schemas import INTERVAL_MS
from spark_ray.venue import candles
from spark_ray.venue.book import OrderBook
from spark_ray.venue.exchange_info import exchange_info
from spark_ray.venue.formats import AggGroups, SymbolFormatter, dumps, rest_error
from spark_ray.venue.ledger import TradeColumns
from spark_ray.venue.market import CandleRow
from spark_ray.venue.params import (
    LONG_RE,
    Params,
    RestAnswer,
    RestError,
    check_known,
    limit_param,
    long_param,
    mandatory_param,
    symbol_param,
    time_range,
)
from spark_ray.venue.ratelimit import WEIGHTS, day_ticker_weight, depth_weight, ticker_weight
from spark_ray.venue.specs import SymbolSpec


class MarketView(Protocol):
    """What REST reads from the venue."""

    specs: dict[str, SymbolSpec]
    formatters: dict[str, SymbolFormatter]
    weight_limit: int

    def now_ms(self) -> int: ...

    def minute_rows(self, symbol: str) -> list[CandleRow]: ...

    def trade_columns(self, symbol: str) -> TradeColumns: ...

    def book(self, symbol: str) -> OrderBook: ...


def _symbols_param(view: MarketView, params: Params) -> list[str] | None:
    """`symbol=X` or `symbols=["X","Y"]` (not both); None means all symbols."""
    if "symbol" in params and "symbols" in params:
        raise RestError(-1128, "Combination of optional parameters invalid.")
    if "symbol" in params:
        return [symbol_param(view.specs, params)]
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        raise RestError(-1100, "Illegal characters found in parameter 'symbols'; legal range is "
                               "'^\\[(\"[A-Z0-9-_.]{1,20}\"(,\"[A-Z0-9-_.]{1,20}\"){0,}){0,1}\\]$'."
                        ) from None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        raise RestError(-1102, "Mandatory parameter 'symbols' was not sent, was empty/null, or "
                               "malformed.")
    for n in names:
        if n not in view.specs:
            raise RestError(-1121, "Invalid symbol.")
    return names


# --- endpoints ------------------------------------------------------------------------------
def ping(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ())
    return {}


def server_time(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ())
    return {"serverTime": view.now_ms()}


def exchange_info_ep(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "symbols", "permissions", "showPermissionSets",
                          "symbolStatus"))
    names = _symbols_param(view, params) or list(view.specs)
    status = params.get("symbolStatus")
    if status is not None and status not in ("TRADING", "HALT", "BREAK"):
        raise RestError(-1100, "Illegal characters found in parameter 'symbolStatus'.")
    specs = [view.specs[n] for n in names] if status in (None, "TRADING") else []
    return exchange_info(specs, view.now_ms(), view.weight_limit)


def klines(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "interval", "startTime", "endTime", "limit", "timeZone"))
    symbol = symbol_param(view.specs, params)
    interval = mandatory_param(params, "interval")
    if interval not in INTERVAL_MS:
        raise RestError(-1120, "Invalid interval.")
    tz = params.get("timeZone")
    if tz is not None and tz not in ("0", "+0", "-0", "00:00", "+00:00", "-00:00"):
        raise RestError(-1130, "Data sent for parameter 'timeZone' is not valid.")
    start, end = time_range(params)
    limit = limit_param(params, 500, 1000)
    fmt = view.formatters[symbol]
    if interval == "1s":
        cols = view.trade_columns(symbol)
        rows = candles.klines_from_trades(cols.time, cols.price, cols.qty, cols.maker, cols.ids,
                                          start=start, end=end, limit=limit)
    else:
        rows = candles.select(view.minute_rows(symbol), interval, start=start, end=end,
                              limit=limit)
    return [fmt.kline_row(k) for k in rows]


def trades(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "limit"))
    symbol = symbol_param(view.specs, params)
    limit = limit_param(params, 500, 1000)
    cols = view.trade_columns(symbol)
    s = slice(max(0, len(cols) - limit), len(cols))
    return view.formatters[symbol].trade_rows(cols.ids[s], cols.price[s], cols.qty[s],
                                              cols.time[s], cols.maker[s])


def historical_trades(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "limit", "fromId"))
    if not headers.get("X-MBX-APIKEY"):
        raise RestError(-2014, "API-key format invalid.", status=401)
    symbol = symbol_param(view.specs, params)
    limit = limit_param(params, 500, 1000)
    from_id = long_param(params, "fromId")
    cols = view.trade_columns(symbol)
    if from_id is None:
        i0 = max(0, len(cols) - limit)
    else:
        i0 = int(np.searchsorted(cols.ids, from_id, side="left"))
    s = slice(i0, min(len(cols), i0 + limit))
    return view.formatters[symbol].trade_rows(cols.ids[s], cols.price[s], cols.qty[s],
                                              cols.time[s], cols.maker[s])


def agg_trades(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "fromId", "startTime", "endTime", "limit"))
    symbol = symbol_param(view.specs, params)
    limit = limit_param(params, 500, 1000)
    from_id = long_param(params, "fromId")
    start, end = time_range(params)
    if from_id is not None and (start is not None or end is not None):
        raise RestError(-1128, "Combination of optional parameters invalid.")
    cols = view.trade_columns(symbol)
    n = len(cols)
    if n == 0:
        return []
    if from_id is not None:
        i0 = int(np.searchsorted(cols.agg, from_id, side="left"))
        i1 = int(np.searchsorted(cols.agg, from_id + limit, side="left"))
    elif start is not None or end is not None:
        i0 = int(np.searchsorted(cols.time, start, side="left")) if start is not None else 0
        i1 = int(np.searchsorted(cols.time, end, side="right")) if end is not None else n
        if i1 > i0:
            first_agg = int(cols.agg[i0])
            if start is None:
                # Only an end: the last `limit` aggregates before it.
                first_agg = max(first_agg, int(cols.agg[i1 - 1]) - limit + 1)
                i0 = int(np.searchsorted(cols.agg, first_agg, side="left"))
            i1 = min(i1, int(np.searchsorted(cols.agg, first_agg + limit, side="left")))
    else:
        last_agg = int(cols.agg[-1])
        i0 = int(np.searchsorted(cols.agg, last_agg - limit + 1, side="left"))
        i1 = n
    if i1 <= i0:
        return []
    s = slice(i0, i1)
    groups = AggGroups(cols.agg[s], cols.ids[s], cols.price[s], cols.qty[s], cols.time[s],
                       cols.maker[s])
    return view.formatters[symbol].agg_rows(groups)


def depth(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "limit"))
    symbol = symbol_param(view.specs, params)
    limit = limit_param(params, 100, 5000)
    last_id, bids, asks = view.book(symbol).snapshot(limit)
    fmt = view.formatters[symbol]
    return {"lastUpdateId": last_id, "bids": fmt.levels(bids), "asks": fmt.levels(asks)}


def ticker_price(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "symbols", "symbolStatus"))
    names = _symbols_param(view, params)
    rows = [
        {"symbol": n, "price": view.formatters[n].price(_last_price(view, n))}
        for n in (names or list(view.specs))
    ]
    return rows[0] if "symbol" in params else rows


def ticker_book(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol", "symbols", "symbolStatus"))
    names = _symbols_param(view, params)
    rows = []
    for n in names or list(view.specs):
        bp, bq, ap, aq = view.book(n).best()
        f = view.formatters[n]
        rows.append({"symbol": n, "bidPrice": f.price(bp), "bidQty": f.qty(bq),
                     "askPrice": f.price(ap), "askQty": f.qty(aq)})
    return rows[0] if "symbol" in params else rows


def ticker_24hr(view: MarketView, params: Params, headers: Params) -> Any:
    """GET /api/v3/ticker/24hr: rolling 24 h statistics, ``type`` FULL (default) or MINI.

    Fields and types follow Binance's spot REST documentation ("24hr ticker price change
    statistics"). The window is whole 1 m candles (the venue keeps minute summaries), so open,
    high, low and counts cover the minutes that opened in the last 24 h; Binance's own window is
    rolling to the millisecond. An empty window reports zeros and ids of -1, as Binance does for a
    symbol without trades."""
    check_known(params, ("symbol", "symbols", "type", "symbolStatus"))
    kind = params.get("type", "FULL")
    if kind not in ("FULL", "MINI"):
        raise RestError(-1139, "Invalid ticker type.")
    names = _symbols_param(view, params)
    now = view.now_ms()
    rows = [day_stats(view, n, now, full=kind == "FULL") for n in names or list(view.specs)]
    return rows[0] if "symbol" in params else rows


def day_stats(view: MarketView, symbol: str, now: int, *, full: bool) -> dict[str, Any]:
    """One symbol's rolling 24 h statistics in REST field names (also the ticker streams')."""
    day = 86_400_000
    spec, fmt = view.specs[symbol], view.formatters[symbol]
    minutes = view.minute_rows(symbol)
    inside = [r for r in minutes if r.open_time >= now - day]
    traded = [r for r in inside if r.trades > 0]
    before = [r for r in minutes if r.open_time < now - day]
    last = _last_price(view, symbol)
    first = traded[0].o if traded else last
    volume = sum(r.volume for r in traded)
    quote = sum(r.quote for r in traded)
    out: dict[str, Any] = {"symbol": symbol}
    if full:
        change = last - first
        cols = view.trade_columns(symbol)
        bp, bq, ap, aq = view.book(symbol).best()
        out.update({
            "priceChange": fmt.price(change) if change >= 0 else "-" + fmt.price(-change),
            "priceChangePercent": f"{100.0 * change / first:.3f}" if first else "0.000",
            "weightedAvgPrice": f"{quote / volume / 10**spec.price_scale:.8f}" if volume
            else fmt.price(last),
            "prevClosePrice": fmt.price(before[-1].c if before else first),
            "lastPrice": fmt.price(last),
            "lastQty": fmt.qty(int(cols.qty[-1])) if len(cols) else fmt.qty(0),
            "bidPrice": fmt.price(bp), "bidQty": fmt.qty(bq),
            "askPrice": fmt.price(ap), "askQty": fmt.qty(aq),
        })
    out.update({
        "openPrice": fmt.price(first), "highPrice": fmt.price(max((r.h for r in traded),
                                                                  default=last)),
        "lowPrice": fmt.price(min((r.low for r in traded), default=last)),
        "volume": fmt.qty(volume), "quoteVolume": spec.quote_str(quote),
        "openTime": now - day, "closeTime": now,
        "firstId": traded[0].first_id if traded else -1,
        "lastId": traded[-1].last_id if traded else -1,
        "count": sum(r.trades for r in traded),
    })
    if not full:
        out["lastPrice"] = fmt.price(last)
    return out


def avg_price(view: MarketView, params: Params, headers: Params) -> Any:
    check_known(params, ("symbol",))
    symbol = symbol_param(view.specs, params)
    return {"mins": 5, "price": f"{average_price(view, symbol):.8f}", "closeTime": view.now_ms()}


def average_price(view: MarketView, symbol: str) -> float:
    """Volume-weighted price of the last 5 closed minutes (avgPrice; NOTIONAL for MARKET)."""
    rows = view.minute_rows(symbol)[-6:-1] or view.minute_rows(symbol)[-1:]
    vol = sum(r.volume for r in rows)
    spec = view.specs[symbol]
    if vol > 0:
        return float(sum(r.quote for r in rows) / vol / 10**spec.price_scale)
    return rows[-1].c / 10**spec.price_scale if rows else spec.initial_price


def _last_price(view: MarketView, symbol: str) -> int:
    rows = view.minute_rows(symbol)
    return rows[-1].c if rows else view.specs[symbol].to_ticks(view.specs[symbol].initial_price)


Handler = Callable[[MarketView, Params, Params], Any]

ROUTES: dict[str, Handler] = {
    "/api/v3/ping": ping,
    "/api/v3/time": server_time,
    "/api/v3/exchangeInfo": exchange_info_ep,
    "/api/v3/klines": klines,
    "/api/v3/uiKlines": klines,
    "/api/v3/trades": trades,
    "/api/v3/historicalTrades": historical_trades,
    "/api/v3/aggTrades": agg_trades,
    "/api/v3/depth": depth,
    "/api/v3/ticker/price": ticker_price,
    "/api/v3/ticker/bookTicker": ticker_book,
    "/api/v3/avgPrice": avg_price,
    "/api/v3/ticker/24hr": ticker_24hr,
}


def _count_symbols(params: Params) -> int | None:
    """How many symbols a ticker call names (None: all), read before it runs, for its weight."""
    if "symbol" in params:
        return 1
    raw = params.get("symbols")
    if raw is None:
        return None
    try:
        names = json.loads(raw)
    except ValueError:
        return 1
    return len(names) if isinstance(names, list) else 1


def weight(path: str, params: Params) -> int:
    """Request weight of a call, known before it runs (Binance charges even failed calls)."""
    if path == "/api/v3/depth":
        raw = params.get("limit", "100")
        return depth_weight(int(raw) if LONG_RE.match(raw) else 100)
    if path in ("/api/v3/ticker/price", "/api/v3/ticker/bookTicker"):
        return ticker_weight(1 if "symbol" in params else None)
    if path == "/api/v3/ticker/24hr":
        return day_ticker_weight(_count_symbols(params))
    return WEIGHTS.get(path, 1)


def answer(view: MarketView, path: str, params: Params, headers: Params) -> RestAnswer:
    """Run an endpoint; Binance error objects for bad input, 404 for unknown paths."""
    handler = ROUTES.get(path)
    if handler is None:
        return RestAnswer(404, b"")
    try:
        return RestAnswer(200, dumps(handler(view, params, headers)))
    except RestError as e:
        return RestAnswer(e.status, rest_error(e.code, e.msg))
