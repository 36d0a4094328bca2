"""Wire formats: Binance spot REST bodies and stream payloads, and BTCTurk's WebSocket models.

Pure functions from the market's integer units to the exact JSON the real venues send: field
names and order, numbers vs strings (Binance prices and quantities are 8-decimal strings), event
wrappers. The per-trade encoders are the venue's hot path (hundreds of thousands of frames per
second), so they build bytes with f-strings and cached decimal strings instead of json.dumps.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from spark_ray.venue.book import DepthDiff
from spark_ray.venue.candles import Kline
from spark_ray.venue.specs import SymbolSpec

_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(obj: Any) -> bytes:
    """Compact JSON, the way Binance writes it."""
    return _DUMPS(obj).encode()


class DecimalCache:
    """Integer units -> 8-decimal strings, memoised (prices repeat constantly)."""

    def __init__(self, to8: int, limit: int = 200_000) -> None:
        self.to8 = to8
        self.limit = limit
        self.cache: dict[int, str] = {}

    def __call__(self, units: int) -> str:
        s = self.cache.get(units)
        if s is None:
            if len(self.cache) >= self.limit:
                self.cache.clear()
            q, r = divmod(units * self.to8, 100_000_000)
            s = f"{q}.{r:08d}"
            self.cache[units] = s
        return s


class SymbolFormatter:
    """Formats one symbol's events; holds the decimal caches for its grid."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.symbol = spec.symbol
        self.price = DecimalCache(spec.tick_to8)
        self.qty = DecimalCache(spec.unit_to8)

    # --- Binance streams (payloads, unwrapped) -------------------------------------------
    def trades(
        self,
        event_time: int,
        ids: np.ndarray,
        price: np.ndarray,
        qty: np.ndarray,
        time: np.ndarray,
        maker: np.ndarray,
    ) -> list[bytes]:
        """`<symbol>@trade` payloads, one per trade."""
        ps, qs = self.price, self.qty
        head = f'{{"e":"trade","E":{event_time},"s":"{self.symbol}","t":'
        out: list[bytes] = []
        append = out.append
        for t, p, q, tt, m in zip(
            ids.tolist(), price.tolist(), qty.tolist(), time.tolist(), maker.tolist(),
            strict=True,
        ):
            append(
                f'{head}{t},"p":"{ps(p)}","q":"{qs(q)}","T":{tt},'
                f'"m":{"true" if m else "false"},"M":true}}'.encode()
            )
        return out

    def agg_trades(
        self,
        event_time: int,
        groups: AggGroups,
    ) -> list[bytes]:
        """`<symbol>@aggTrade` payloads, one per aggregate trade."""
        ps, qs = self.price, self.qty
        head = f'{{"e":"aggTrade","E":{event_time},"s":"{self.symbol}","a":'
        return [
            f'{head}{a},"p":"{ps(p)}","q":"{qs(q)}","f":{f},"l":{last},"T":{t},'
            f'"m":{"true" if m else "false"},"M":true}}'.encode()
            for a, p, q, f, last, t, m in groups.rows()
        ]

    def kline(self, event_time: int, interval: str, k: Kline, closed: bool) -> bytes:
        spec = self.spec
        return dumps(
            {
                "e": "kline",
                "E": event_time,
                "s": self.symbol,
                "k": {
                    "t": k.open_time,
                    "T": k.close_time,
                    "s": self.symbol,
                    "i": interval,
                    "f": k.first_id,
                    "L": k.last_id,
                    "o": self.price(k.o),
                    "c": self.price(k.c),
                    "h": self.price(k.h),
                    "l": self.price(k.low),
                    "v": self.qty(k.volume),
                    "n": k.trades,
                    "x": closed,
                    "q": spec.quote_str(k.quote),
                    "V": self.qty(k.taker_base),
                    "Q": spec.quote_str(k.taker_quote),
                    "B": "0",
                },
            }
        )

    def levels(self, levels: Iterable[tuple[int, int]]) -> list[list[str]]:
        return [[self.price(p), self.qty(q)] for p, q in levels]

    def depth_update(self, event_time: int, diff: DepthDiff) -> bytes:
        return dumps(
            {
                "e": "depthUpdate",
                "E": event_time,
                "s": self.symbol,
                "U": diff.first_uid,
                "u": diff.last_uid,
                "b": self.levels(diff.bids),
                "a": self.levels(diff.asks),
            }
        )

    def partial_depth(
        self, last_update_id: int, bids: Sequence[tuple[int, int]], asks: Sequence[tuple[int, int]]
    ) -> bytes:
        """`<symbol>@depth<N>` payload, and the GET /api/v3/depth body."""
        return dumps(
            {"lastUpdateId": last_update_id, "bids": self.levels(bids), "asks": self.levels(asks)}
        )

    def book_ticker(self, update_id: int, best: tuple[int, int, int, int]) -> bytes:
        bp, bq, ap, aq = best
        return dumps(
            {
                "u": update_id,
                "s": self.symbol,
                "b": self.price(bp),
                "B": self.qty(bq),
                "a": self.price(ap),
                "A": self.qty(aq),
            }
        )

    # --- Binance REST rows ---------------------------------------------------------------
    def kline_row(self, k: Kline) -> list[Any]:
        spec = self.spec
        return [
            k.open_time,
            self.price(k.o),
            self.price(k.h),
            self.price(k.low),
            self.price(k.c),
            self.qty(k.volume),
            k.close_time,
            spec.quote_str(k.quote),
            k.trades,
            self.qty(k.taker_base),
            spec.quote_str(k.taker_quote),
            "0",
        ]

    def trade_rows(
        self, ids: np.ndarray, price: np.ndarray, qty: np.ndarray, time: np.ndarray,
        maker: np.ndarray,
    ) -> list[dict[str, Any]]:
        spec = self.spec
        return [
            {
                "id": t,
                "price": self.price(p),
                "qty": self.qty(q),
                "quoteQty": spec.quote_str(p * q),
                "time": tt,
                "isBuyerMaker": m,
                "isBestMatch": True,
            }
            for t, p, q, tt, m in zip(ids.tolist(), price.tolist(), qty.tolist(), time.tolist(),
                                      maker.tolist(), strict=True)
        ]

    def agg_rows(self, groups: AggGroups) -> list[dict[str, Any]]:
        return [
            {"a": a, "p": self.price(p), "q": self.qty(q), "f": f, "l": last, "T": t, "m": m,
             "M": True}
            for a, p, q, f, last, t, m in groups.rows()
        ]

    # --- BTCTurk -------------------------------------------------------------------------
    def btcturk_trade_item(self, t: int, p: int, q: int, tt: int, m: bool) -> dict[str, Any]:
        return {
            "D": str(tt),
            "I": str(t),
            "A": _trim(self.qty(q)),
            "P": _trim(self.price(p)),
            "S": 1 if m else 0,  # taker side: 0 buy, 1 sell (a maker buyer means a taker sell)
        }

    def btcturk_trades(
        self, ids: np.ndarray, price: np.ndarray, qty: np.ndarray, time: np.ndarray,
        maker: np.ndarray,
    ) -> list[bytes]:
        """Model 422 (TradeSingle) frames, one per trade."""
        tail = f',"PS":"{self.symbol}",'
        end = f'"channel":"trade","event":"{self.symbol}","type":422}}]'
        qs, ps = self.qty, self.price
        return [
            (
                f'[422,{{"D":"{tt}","I":"{t}","A":"{_trim(qs(q))}","P":"{_trim(ps(p))}"'
                f'{tail}"S":{1 if m else 0},{end}'
            ).encode()
            for t, p, q, tt, m in zip(ids.tolist(), price.tolist(), qty.tolist(), time.tolist(),
                                      maker.tolist(), strict=True)
        ]

    def btcturk_trade_list(self, items: list[dict[str, Any]]) -> bytes:
        """Model 421 (TradeList): the recent trades sent when a client joins the trade channel."""
        return dumps(
            [421, {"symbol": self.symbol, "items": items, "channel": "trade",
                   "event": self.symbol, "type": 421}]
        )

    def btcturk_book_full(
        self, channel: str, change_set: int, bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
    ) -> bytes:
        """Model 431 (OrderBookFull): best-first levels, amounts and prices as strings."""
        return dumps(
            [431, {
                "CS": change_set,
                "PS": self.symbol,
                "AO": [{"A": _trim(self.qty(q)), "P": _trim(self.price(p))} for p, q in asks],
                "BO": [{"A": _trim(self.qty(q)), "P": _trim(self.price(p))} for p, q in bids],
                "channel": channel,
                "event": self.symbol,
                "type": 431,
            }]
        )

    def btcturk_ticker(self, best: tuple[int, int, int, int], last_price: int) -> bytes:
        """Model 402 (TickerPair) on channel ``ticker``: ``B``/``BA`` best bid price/amount,
        ``A``/``AA`` best ask price/amount, ``LA`` last price, ``PS`` the pair
        (https://docs.btcturk.com/websocket-feed/models); the 24 h statistics BTCTurk adds
        (``H``, ``L``, ``O``, ``V``, ...) are left out: nothing here reads them."""
        bp, bq, ap, aq = best
        return dumps(
            [402, {
                "PS": self.symbol,
                "B": _trim(self.price(bp)),
                "BA": _trim(self.qty(bq)),
                "A": _trim(self.price(ap)),
                "AA": _trim(self.qty(aq)),
                "LA": _trim(self.price(last_price)),
                "channel": "ticker",
                "event": self.symbol,
                "type": 402,
            }]
        )

    def btcturk_book_diff(
        self, change_set: int, bids: Sequence[tuple[int, int, int]],
        asks: Sequence[tuple[int, int, int]],
    ) -> bytes:
        """Model 432 (OrderBookDifference): rows (CP, P, A); CP 0 update, 1 new, 3 deleted."""
        return dumps(
            [432, {
                "CS": change_set,
                "PS": self.symbol,
                "AO": [{"CP": cp, "P": _trim(self.price(p)), "A": _trim(self.qty(q))}
                       for cp, p, q in asks],
                "BO": [{"CP": cp, "P": _trim(self.price(p)), "A": _trim(self.qty(q))}
                       for cp, p, q in bids],
                "channel": "obdiff",
                "event": self.symbol,
                "type": 432,
            }]
        )


def _trim(s: str) -> str:
    """BTCTurk writes decimals without trailing zeros ("86699", "0.0092056")."""
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


class AggGroups:
    """Trades folded into Binance aggregate trades (consecutive trades sharing an agg id)."""

    def __init__(
        self, agg: np.ndarray, ids: np.ndarray, price: np.ndarray, qty: np.ndarray,
        time: np.ndarray, maker: np.ndarray,
    ) -> None:
        if len(agg) == 0:
            self.starts = np.zeros(0, dtype=np.int64)
            self.a = self.p = self.q = self.f = self.last = self.t = self.starts
            self.m = np.zeros(0, dtype=bool)
            return
        starts = np.flatnonzero(np.concatenate(([True], agg[1:] != agg[:-1])))
        ends = np.concatenate((starts[1:], [len(agg)])) - 1
        self.starts = starts
        self.a = agg[starts]
        self.p = price[starts]
        self.q = np.add.reduceat(qty, starts)
        self.f = ids[starts]
        self.last = ids[ends]
        self.t = time[starts]
        self.m = maker[starts]

    def __len__(self) -> int:
        return len(self.a)

    def rows(self) -> Iterable[tuple[int, int, int, int, int, int, bool]]:
        return zip(self.a.tolist(), self.p.tolist(), self.q.tolist(), self.f.tolist(),
                   self.last.tolist(), self.t.tolist(), self.m.tolist(), strict=True)


# --- Binance control messages, errors and events ------------------------------------------
def combined(stream: bytes, payload: bytes) -> bytes:
    """Combined-stream wrapper: {"stream":"<name>","data":<payload>}."""
    return b'{"stream":"' + stream + b'","data":' + payload + b"}"


def server_shutdown(event_time: int) -> bytes:
    return dumps({"e": "serverShutdown", "E": event_time})


def ws_result(result: Any, request_id: Any) -> bytes:
    return dumps({"result": result, "id": request_id})


def ws_error(code: int, msg: str, request_id: Any = None) -> bytes:
    return dumps({"error": {"code": code, "msg": msg}, "id": request_id})


def rest_error(code: int, msg: str) -> bytes:
    return dumps({"code": code, "msg": msg})


def btcturk_welcome() -> bytes:
    return dumps([991, {"type": 991, "current": "6.0.0", "min": "2.3.0"}])


def btcturk_result(ok: bool, message: str) -> bytes:
    return dumps([100, {"type": 100, "ok": ok, "message": message}])
