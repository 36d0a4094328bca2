"""BTCTurk's public REST API and its graph (chart) API, served from the venue's one engine.

The same trades, book and 1m candles the WebSocket feeds (:mod:`btcturk_ws`) and Binance's REST
read, in BTCTurk's formats (https://docs.btcturk.com/ , "Public Endpoints"; and as ccxt's
``btcturk`` class calls them). The venue serves them under ``/btcturk`` on its one port:

- ``/btcturk/api/v2/...``  like ``https://api.btcturk.com/api/v2/...``:
  ``server/exchangeinfo``, ``ticker[?pairSymbol=]``, ``orderbook?pairSymbol=&limit=`` (default
  100, at most 1000: public-endpoints/orderbook), ``trades?pairSymbol=&last=`` (default and at
  most 50: public-endpoints/trades). Bodies are BTCTurk's envelope ``{"data": ..., "success":
  true, "message": null, "code": 0}``; order book and trade prices are strings, ticker numbers
  are JSON numbers (as ccxt's captured responses show).
- ``/btcturk/v1/...``  like ``https://graph-api.btcturk.com/v1/...`` (one base serves both, so a
  client pointed at the venue needs one URL): ``klines/history?symbol=&resolution=&from=&to=``
  ("Get Kline Data": TradingView UDF arrays ``{"s":"ok","t":[..],"h":..,"o":..,"l":..,"c":..,
  "v":..}`` with times in seconds; ``{"s":"no_data"}`` when the range holds no bar) and
  ``ohlcs?pair=&from=&to=`` (public-endpoints/ohcl-data: daily rows, times in seconds).

Pairs are accepted as ``BTCTRY`` or ``BTC_TRY`` ("You can send pair symbol parameter in two
formats"). Errors use BTCTurk's envelope with ``success: false`` and HTTP 400 for a bad request
(bad ``limit``/``last``, missing pair) and 404 for an unknown pair ("404 Not Found -- No such
object", https://docs.btcturk.com/errors); the graph API answers UDF's ``{"s":"error",
"errmsg":...}``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from spark_ray.venue import candles
from spark_ray.venue.formats import dumps
from spark_ray.venue.params import Params, RestAnswer
from spark_ray.venue.rest import MarketView, day_stats
from spark_ray.venue.specs import SymbolSpec

REST_PREFIX = "/btcturk"  # the venue's stand-in for https://api.btcturk.com and graph-api
ORDERBOOK_DEFAULT, ORDERBOOK_MAX = 100, 1000
TRADES_MAX = 50
KLINES_MAX = 11_000  # bars one klines/history answer covers at most (ccxt's btcturk notes)
# TradingView resolutions -> our intervals: minutes as digits, days and weeks as "1D"/"1W"
# (ccxt sends "1 d" and "1 w").
RESOLUTIONS = {"1": "1m", "15": "15m", "30": "30m", "60": "1h", "240": "4h", "1440": "1d",
               "1D": "1d", "D": "1d", "1 d": "1d", "10080": "1w", "1W": "1w", "W": "1w",
               "1 w": "1w"}
_INT_RE = re.compile(r"^-?[0-9]{1,12}$")


class BtcturkError(Exception):
    """A BTCTurk error answer: HTTP ``status`` and the envelope's message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def envelope(data: Any) -> dict[str, Any]:
    return {"data": data, "success": True, "message": None, "code": 0}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"data": None, "success": False, "message": message, "code": status}


# --- parameters ----------------------------------------------------------------------------------
def pair_param(view: MarketView, params: Params, name: str) -> str:
    """``BTCTRY`` or ``BTC_TRY`` -> the venue's symbol; 400 when missing, 404 when unknown."""
    raw = params.get(name)
    if not raw:
        raise BtcturkError(400, f"{name} is required")
    sym = raw.replace("_", "").upper()
    if sym not in view.specs:
        raise BtcturkError(404, f"Pair {raw} not found")
    return sym


def count_param(params: Params, name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not _INT_RE.match(raw) or int(raw) < 1:
        raise BtcturkError(400, f"{name} must be a positive integer, not {raw!r}")
    return min(int(raw), maximum)


def seconds_param(params: Params, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    if not _INT_RE.match(raw):
        raise BtcturkError(400, f"{name} must be unix time in seconds, not {raw!r}")
    return int(raw)


def _num(spec: SymbolSpec, ticks: int) -> float | int:
    """A price as BTCTurk's JSON number: an integer on whole-lira grids (``"last": 3844648``)."""
    v = spec.price_float(ticks)
    return int(v) if spec.price_scale == 0 else v


def _pair_norm(spec: SymbolSpec) -> str:
    return f"{spec.base_asset}_{spec.quote_asset}"


# --- api/v2 --------------------------------------------------------------------------------------
def exchange_info(view: MarketView, params: Params) -> Any:
    """public-endpoints/exchange-info: one entry per pair with its scales and PRICE_FILTER."""
    symbols = []
    for i, spec in enumerate(view.specs.values(), start=1):
        symbols.append({
            "id": str(i), "name": spec.symbol, "nameNormalized": _pair_norm(spec),
            "status": "TRADING", "numerator": spec.base_asset, "denominator": spec.quote_asset,
            "numeratorScale": str(spec.qty_scale), "denominatorScale": str(spec.price_scale),
            "hasFraction": spec.price_scale > 0,
            "filters": [{
                "filterType": "PRICE_FILTER", "minPrice": _trim(spec.tick_size),
                "maxPrice": "10000000", "tickSize": _trim(spec.tick_size),
                "minExchangeValue": _trim(spec.min_notional), "minAmount": None,
                "maxAmount": None}],
            "orderMethods": ["MARKET", "LIMIT", "STOP_MARKET", "STOP_LIMIT"],
            "displayFormat": "#,###" + ("." + "0" * spec.price_scale if spec.price_scale else ""),
            "commissionFromNumerator": False, "order": str(1000 * i), "priceRounding": False,
        })
    return envelope({"timeZone": "UTC", "serverTime": str(view.now_ms()), "symbols": symbols})


def ticker(view: MarketView, params: Params) -> Any:
    """public-endpoints/ticker: rolling 24 h statistics of one pair, or of all without one."""
    names = [pair_param(view, params, "pairSymbol")] if "pairSymbol" in params else list(
        view.specs)
    now = view.now_ms()
    rows = []
    for i, n in enumerate(names, start=1):
        spec = view.specs[n]
        d = day_stats(view, n, now, full=True)
        last, first = float(d["lastPrice"]), float(d["openPrice"])
        vol = float(d["volume"])
        avg = float(d["quoteVolume"]) / vol if vol else last
        change = last - first
        rows.append({
            "pair": n, "pairNormalized": _pair_norm(spec), "timestamp": now,
            "last": _num(spec, spec.to_ticks(last)), "high": _num(spec, spec.to_ticks(
                float(d["highPrice"]))), "low": _num(spec, spec.to_ticks(float(d["lowPrice"]))),
            "bid": _num(spec, spec.to_ticks(float(d["bidPrice"]))),
            "ask": _num(spec, spec.to_ticks(float(d["askPrice"]))),
            "open": _num(spec, spec.to_ticks(first)), "volume": vol,
            "average": round(avg) if spec.price_scale == 0 else round(avg, spec.price_scale),
            "daily": _num(spec, spec.to_ticks(change)),
            "dailyPercent": round(100.0 * change / first, 2) if first else 0.0,
            "denominatorSymbol": spec.quote_asset, "numeratorSymbol": spec.base_asset,
            "order": 1000 * i,
        })
    return envelope(rows)


def orderbook(view: MarketView, params: Params) -> Any:
    """public-endpoints/orderbook: best-first ``[price, amount]`` strings and a ms timestamp."""
    sym = pair_param(view, params, "pairSymbol")
    limit = count_param(params, "limit", ORDERBOOK_DEFAULT, ORDERBOOK_MAX)
    _, bids, asks = view.book(sym).snapshot(limit)
    fmt = view.formatters[sym]
    return envelope({"timestamp": view.now_ms(), "bids": fmt.levels(bids),
                     "asks": fmt.levels(asks)})


def trades(view: MarketView, params: Params) -> Any:
    """public-endpoints/trades: the latest ``last`` (<= 50) trades, newest first; ``side`` is
    the taker's side, ``tid`` the trade id as a string, ``date`` in ms."""
    sym = pair_param(view, params, "pairSymbol")
    last = count_param(params, "last", TRADES_MAX, TRADES_MAX)
    spec, fmt = view.specs[sym], view.formatters[sym]
    cols = view.trade_columns(sym)
    s = slice(max(0, len(cols) - last), len(cols))
    rows = [
        {"pair": sym, "pairNormalized": _pair_norm(spec), "numerator": spec.base_asset,
         "denominator": spec.quote_asset, "date": tt, "tid": str(t), "price": fmt.price(p),
         "amount": fmt.qty(q), "side": "sell" if m else "buy"}
        for t, p, q, tt, m in zip(cols.ids[s].tolist(), cols.price[s].tolist(),
                                  cols.qty[s].tolist(), cols.time[s].tolist(),
                                  cols.maker[s].tolist(), strict=True)
    ]
    rows.reverse()
    return envelope(rows)


# --- graph v1 ------------------------------------------------------------------------------------
def klines_history(view: MarketView, params: Params) -> Any:
    """"Get Kline Data": bars opening in ``[from, to]`` (seconds), UDF column arrays.

    A negative ``from`` counts back from ``to`` (ccxt sends ``0 - limit * seconds`` when it
    has no ``since``). At most :data:`KLINES_MAX` bars, the earliest first."""
    sym = pair_param(view, params, "symbol")
    res = params.get("resolution", "")
    interval = RESOLUTIONS.get(res)
    if interval is None:
        raise BtcturkError(400, f"Unsupported resolution {res!r}; one of 1, 15, 30, 60, 240, "
                                "1D (1440), 1W (10080)")
    now_s = view.now_ms() // 1000
    to = seconds_param(params, "to")
    to = now_s if to is None else to
    frm = seconds_param(params, "from")
    if frm is None:
        frm = 0
    elif frm < 0:
        frm = to + frm
    if frm > to:
        raise BtcturkError(400, "from must not be after to")
    rows = _bars(view, sym, interval, frm, to)
    if not rows:
        return {"s": "no_data"}
    spec = view.specs[sym]
    return {
        "s": "ok",
        "t": [k.open_time // 1000 for k in rows],
        "h": [spec.price_float(k.h) for k in rows],
        "o": [spec.price_float(k.o) for k in rows],
        "l": [spec.price_float(k.low) for k in rows],
        "c": [spec.price_float(k.c) for k in rows],
        "v": [k.volume / 10**spec.qty_scale for k in rows],
    }


def ohlcs(view: MarketView, params: Params) -> Any:
    """public-endpoints/ohcl-data: daily rows opening in ``[from, to]`` (seconds; both
    optional), with quote ``total``, volume-weighted ``average`` and the change from the
    open. A bare JSON list, as BTCTurk documents it."""
    sym = pair_param(view, params, "pair")
    frm, to = seconds_param(params, "from"), seconds_param(params, "to")
    if frm is not None and to is not None and frm > to:
        raise BtcturkError(400, "from must not be after to")
    rows = _bars(view, sym, "1d", frm, to)
    spec = view.specs[sym]
    out = []
    for k in rows:
        vol = k.volume / 10**spec.qty_scale
        total = spec.quote_float(k.quote)
        change = spec.price_float(k.c - k.o)
        o = spec.price_float(k.o)
        out.append({
            "pair": sym, "time": k.open_time // 1000, "open": o, "high": spec.price_float(k.h),
            "low": spec.price_float(k.low), "close": spec.price_float(k.c), "volume": vol,
            "total": total, "average": round(total / vol, 2) if vol else o,
            "dailyChangeAmount": change,
            "dailyChangePercentage": round(100.0 * change / o, 2) if o else 0.0,
        })
    return out


def _bars(view: MarketView, sym: str, interval: str, frm: int | None,
          to: int | None) -> list[candles.Kline]:
    """Whole bars opening in ``[from, to]`` (seconds): the last bar folds all its minutes, not
    just those up to ``to``."""
    end = None
    if to is not None:
        end = candles.interval_close(interval, candles.interval_open(interval, to * 1000))
    rows = candles.select(view.minute_rows(sym), interval, start=_start(view, sym, frm),
                          end=end, limit=KLINES_MAX)
    return [k for k in rows if to is None or k.open_time <= to * 1000]


def _start(view: MarketView, sym: str, frm: int | None) -> int | None:
    """A ``from`` before the first stored minute means "from the start" (None: the selection
    then counts back from ``to``, which is the same bars unless there are more than allowed)."""
    if frm is None:
        return None
    rows = view.minute_rows(sym)
    return None if not rows or frm * 1000 <= rows[0].open_time else frm * 1000


def _trim(s: str) -> str:
    return s.rstrip("0").rstrip(".") if "." in s else s


Handler = Callable[[MarketView, Params], Any]

API_ROUTES: dict[str, Handler] = {
    "/api/v2/server/exchangeinfo": exchange_info,
    "/api/v2/ticker": ticker,
    "/api/v2/orderbook": orderbook,
    "/api/v2/trades": trades,
}
GRAPH_ROUTES: dict[str, Handler] = {
    "/v1/klines/history": klines_history,
    "/v1/ohlcs": ohlcs,
}


def method_not_allowed() -> RestAnswer:
    """BTCTurk's 405 ("Wrong Method", https://docs.btcturk.com/errors)."""
    return RestAnswer(405, dumps(error_body(405, "Method not allowed")))


def server_error(status: int) -> RestAnswer:
    """An injected 5xx ("5xx Internal Server Error", "503 Service Unavailable")."""
    return RestAnswer(status, dumps(error_body(status, "Service Unavailable" if status == 503
                                               else "Internal Server Error")))


def answer(view: MarketView, path: str, params: Params) -> RestAnswer:
    """``path`` below ``/btcturk``: 404 for unknown paths, BTCTurk's error bodies for bad
    input (UDF's ``{"s": "error"}`` on the graph API)."""
    graph = path in GRAPH_ROUTES
    handler = GRAPH_ROUTES.get(path) or API_ROUTES.get(path)
    if handler is None:
        return RestAnswer(404, dumps(error_body(404, f"No such endpoint {path}")))
    try:
        return RestAnswer(200, dumps(handler(view, params)))
    except BtcturkError as e:
        body = {"s": "error", "errmsg": e.message} if graph and path != "/v1/ohlcs" \
            else error_body(e.status, e.message)
        return RestAnswer(e.status, dumps(body))
