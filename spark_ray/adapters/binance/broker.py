"""``BinanceBroker``: Binance spot's signed REST and user data stream, at most one order per id.

- Every signed call carries ``timestamp`` and ``recvWindow`` and an HMAC-SHA256 ``signature``
  (:mod:`spark_ray.adapters.binance.auth`), the key in ``X-MBX-APIKEY``. ``-1021`` (clock
  skew) re-syncs with ``/api/v3/time`` once and retries.
- A submit whose answer is lost (timeout, connection reset, 5xx) has an unknown outcome: the
  broker asks for the client order id (``GET /api/v3/order?origClientOrderId=``). Found: that is
  the order. Not found: the broker first waits until the lost request's ``timestamp +
  recvWindow`` has passed -- after that Binance refuses the request even if it is still in
  flight -- asks once more and only then resubmits, under the *same* client order id. A
  ``-2010 Duplicate order sent.`` answer means an earlier attempt is open: it is adopted. When
  the venue cannot be asked at all, the order stays UNKNOWN for reconciliation, which only ever
  asks, never resubmits. Refusals (``-2010``, ``-1013``, ...) are REJECTED with Binance's code
  and message.
- The user data stream (``POST /api/v3/userDataStream`` -> ``/ws/<listenKey>``, kept alive every
  30 minutes, reconnected on loss) turns each ``executionReport`` into an order update and fill.

Credentials come from the environment (:func:`credentials_from_env`) and never appear in a
repr, a log line, an error message or the journal. Requests go through the shared
:class:`~spark_ray.http.HttpClient`; what is safe to repeat is retried under a
:class:`~spark_ray.http.RetryPolicy`, a submit only as described above.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp

from spark_ray.adapters.binance.auth import API_KEY_HEADER, signed_query
from spark_ray.adapters.binance.rest import DEFAULT_REST_URL
from spark_ray.adapters.binance.spot import SpotRest
from spark_ray.adapters.binance.websocket import DEFAULT_WS_URL
from spark_ray.execution.bars import ClosedBar
from spark_ray.execution.broker import Credentials, OutcomeUnknown, UpdateSink
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.orders import (
    CANCELED,
    REJECTED,
    Fill,
    ManagedOrder,
    OrderUpdate,
)
from spark_ray.http import HttpClient, RetryPolicy, TransportError

log = logging.getLogger(__name__)

KEY_ENV = "SPARK_RAY_BINANCE_API_KEY"
SECRET_ENV = "SPARK_RAY_BINANCE_API_SECRET"  # nosec B105  # the name of an environment variable, not a secret
ORDER = "/api/v3/order"
USER_STREAM = "/api/v3/userDataStream"
KEEPALIVE_S = 30 * 60
MAX_SKEW_MS = 60_000


def credentials_from_env(environ: Mapping[str, str] | None = None) -> Credentials:
    """From $SPARK_RAY_BINANCE_API_KEY / $SPARK_RAY_BINANCE_API_SECRET; UserError names the
    missing variable."""
    return Credentials.from_env(KEY_ENV, SECRET_ENV, environ)


class VenueError(Exception):
    """Binance refused the request: ``code`` and ``msg`` as Binance sent them."""

    def __init__(self, status: int, code: int | None, msg: str) -> None:
        super().__init__(f"HTTP {status} code {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class Transient(Exception):
    """No usable answer (timeout, reset, 5xx, 429): the request's effect is unknown."""


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


class BinanceBroker:
    name = "binance"

    def __init__(self, credentials: Credentials, rest_url: str = DEFAULT_REST_URL,
                 ws_url: str = DEFAULT_WS_URL, *, recv_window_ms: int = 5_000,
                 timeout_s: float = 5.0, attempts: int = 4, backoff_s: float = 0.2,
                 user_stream: bool = True) -> None:
        self._creds = credentials
        self.rest_url = rest_url.rstrip("/")
        self.ws_url = ws_url.rstrip("/")
        self.recv_window_ms = recv_window_ms
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.retry = RetryPolicy(max_retries=self.attempts - 1, base_delay_s=backoff_s,
                                 max_delay_s=10.0, min_delay_s=min(0.02, backoff_s))
        self.user_stream = user_stream
        self.public = SpotRest(self.rest_url, timeout_s=timeout_s)
        self.http = HttpClient(self.rest_url, timeout_s)
        self.offset_ms = 0
        self.stats: dict[str, int] = {"requests": 0, "retries": 0, "transient": 0,
                                      "duplicates_adopted": 0, "resubmits": 0,
                                      "stream_events": 0, "stream_reconnects": 0,
                                      "time_resyncs": 0}
        self.stream_connected = False
        self._sink: UpdateSink | None = None
        self._stream_task: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"BinanceBroker({self.rest_url!r})"

    # --- HTTP -------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, params: dict[str, Any],
                    signed: bool = True) -> tuple[Any, int]:
        """One request; returns (body, timestamp used). VenueError or Transient otherwise."""
        ts = int(time.time() * 1000) + self.offset_ms
        query = signed_query(params, self._creds.secret, timestamp_ms=ts,
                             recv_window_ms=self.recv_window_ms) if signed else \
            "&".join(f"{k}={v}" for k, v in params.items())
        self.stats["requests"] += 1
        try:
            ans = await self.http.request(method, path, query,
                                          headers={API_KEY_HEADER: self._creds.api_key})
        except TransportError as exc:
            self.stats["transient"] += 1
            raise Transient(str(exc)) from None
        body = ans.body if isinstance(ans.body, dict | list) else {}
        if ans.status == 200:
            return body, ts
        code, msg = ans.venue_error() if isinstance(body, dict) else (None, "")
        if ans.status >= 500 or ans.status in (429, 418):
            self.stats["transient"] += 1
            if ans.status in (429, 418):
                await asyncio.sleep(min(ans.retry_after_s or 1.0, 10.0))
            raise Transient(f"{method} {path}: HTTP {ans.status} {code} {msg}")
        raise VenueError(ans.status, code, msg)

    async def _call(self, method: str, path: str, params: dict[str, Any],
                    signed: bool = True) -> Any:
        """A request that is safe to repeat (everything but a submit): retries transient
        failures with backoff, re-syncs the clock once on -1021."""
        resynced = False
        for attempt in range(self.attempts):
            try:
                body, _ = await self._send(method, path, params, signed)
                return body
            except VenueError as exc:
                if exc.code == -1021 and not resynced:
                    resynced = True
                    await self._resync()
                    continue
                raise
            except Transient:
                if attempt + 1 >= self.attempts:
                    raise
                self.stats["retries"] += 1
                await asyncio.sleep(self.retry.delay(attempt))
        raise Transient(f"{method} {path}: no answer")

    async def _resync(self) -> None:
        """Clock offset from the venue's /api/v3/time (Binance's fix for -1021). A skew beyond
        MAX_SKEW_MS is not a clock drift but a venue serving another clock (a simulator's
        market time): then signing stays on the local clock."""
        try:
            before = time.time() * 1000
            body = await self.public.get("/api/v3/time")
            after = time.time() * 1000
            offset = int(int(body["serverTime"]) - (before + after) / 2)
            self.stats["time_resyncs"] += 1
            if abs(offset) > MAX_SKEW_MS:
                log.warning("venue clock %+d ms from ours: not adopted", offset)
                self.offset_ms = 0
            else:
                self.offset_ms = offset
        except Exception as exc:
            log.warning("time resync failed: %s", type(exc).__name__)

    # --- Broker -----------------------------------------------------------------------------
    async def start(self, on_updates: UpdateSink) -> None:
        self._sink = on_updates
        if self.user_stream and self._stream_task is None:
            self._stream_task = asyncio.get_running_loop().create_task(self._stream_loop())

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]:
        return await self.public.exchange_filters(symbols)

    def _order_params(self, o: ManagedOrder) -> dict[str, Any]:
        p: dict[str, Any] = {"symbol": o.symbol, "side": o.side_name.upper(),
                             "newClientOrderId": o.cid, "newOrderRespType": "FULL"}
        if o.kind == "market":
            p["type"] = "MARKET"
        elif o.kind == "limit":
            p.update(type="LIMIT", timeInForce="GTC", price=o.price)
        else:
            p.update(type="STOP_LOSS", stopPrice=o.stop_price)
        if o.quote_qty is not None:
            p["quoteOrderQty"] = o.quote_qty
        else:
            p["quantity"] = o.quantity
        return p

    async def submit(self, order: ManagedOrder) -> list[OrderUpdate]:
        params = self._order_params(order)
        ask_first = False
        last_ts = 0
        reason = "no answer"
        resynced = False
        for attempt in range(self.attempts):
            if ask_first:
                try:
                    found = await self._query_after(order, last_ts)
                except (Transient, VenueError) as exc:
                    reason = f"query failed: {exc}"
                    await asyncio.sleep(self.retry.delay(attempt))
                    continue  # never resubmit unless the venue said it has no such order
                if found is not None:
                    return found
                self.stats["resubmits"] += 1
            try:
                last_ts = int(time.time() * 1000) + self.offset_ms
                body, last_ts = await self._send("POST", ORDER, params)
                return self._from_order(order, body, "submit")
            except VenueError as exc:
                if exc.code == -1021 and not resynced:
                    resynced = True
                    await self._resync()
                    ask_first = False
                    continue
                if exc.code == -2010 and "Duplicate" in exc.msg:
                    self.stats["duplicates_adopted"] += 1
                    found = await self.query(order)
                    if found is not None:
                        return found
                return [OrderUpdate(order.cid, REJECTED, reason=f"{exc.code}: {exc.msg}",
                                    source="submit")]
            except Transient as exc:
                reason = str(exc)
                self.stats["retries"] += 1
                ask_first = True
                await asyncio.sleep(self.retry.delay(attempt))
        raise OutcomeUnknown(f"submit {order.cid}: {reason}")

    async def _query_after(self, order: ManagedOrder, sent_ts: int) -> list[OrderUpdate] | None:
        """Ask for ``order``; when the venue does not know it, wait until the lost request
        can no longer be accepted (its timestamp + recvWindow) and ask once more."""
        found = await self.query(order)
        if found is not None:
            return found
        wait_ms = sent_ts + self.recv_window_ms + 100 - (time.time() * 1000 + self.offset_ms)
        if wait_ms > 0:
            await asyncio.sleep(wait_ms / 1000)
            found = await self.query(order)
        return found

    def _from_order(self, order: ManagedOrder, body: dict[str, Any],
                    source: str) -> list[OrderUpdate]:
        """Updates from an order body (FULL/RESULT/query/cancel answers)."""
        t = int(body.get("transactTime") or body.get("updateTime") or body.get("time") or 0)
        ups = [OrderUpdate(order.cid, body.get("status"), body.get("orderId"),
                           _f(body.get("executedQty")) if "executedQty" in body else None,
                           _f(body.get("cummulativeQuoteQty"))
                           if "cummulativeQuoteQty" in body else None,
                           time_ms=t, source=source)]
        for f in body.get("fills") or []:
            ups.append(OrderUpdate(order.cid, fill=Fill(
                str(f.get("tradeId")), _f(f.get("price")), _f(f.get("qty")),
                _f(f.get("commission")), str(f.get("commissionAsset") or ""), t, False),
                source=source))
        return ups

    async def query(self, order: ManagedOrder) -> list[OrderUpdate] | None:
        try:
            body = await self._call("GET", ORDER, {"symbol": order.symbol,
                                                   "origClientOrderId": order.cid})
        except VenueError as exc:
            if exc.code == -2013:
                return None
            raise
        ups = self._from_order(order, body, "query")
        executed = _f(body.get("executedQty"))
        if executed > sum(f.qty for f in order.fills) + 1e-12 and body.get("orderId") is not None:
            trades = await self._call("GET", "/api/v3/myTrades", {
                "symbol": order.symbol, "orderId": body["orderId"]})
            for tr in trades:
                ups.append(OrderUpdate(order.cid, fill=Fill(
                    str(tr.get("id")), _f(tr.get("price")), _f(tr.get("qty")),
                    _f(tr.get("commission")), str(tr.get("commissionAsset") or ""),
                    int(tr.get("time") or 0), bool(tr.get("isMaker"))), source="query"))
        return ups

    async def cancel(self, order: ManagedOrder) -> list[OrderUpdate]:
        try:
            body = await self._call("DELETE", ORDER, {"symbol": order.symbol,
                                                      "origClientOrderId": order.cid})
        except VenueError as exc:
            if exc.code in (-2011, -2013):
                return []
            raise
        ups = self._from_order(order, body, "cancel")
        if ups and ups[0].status is None:
            ups[0].status = CANCELED
        return ups

    async def open_orders(self, symbols: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for s in symbols:
            out.extend(await self._call("GET", "/api/v3/openOrders", {"symbol": s}))
        return out

    async def account(self) -> dict[str, Any]:
        body = await self._call("GET", "/api/v3/account", {"omitZeroBalances": "true"})
        return {"balances": {b["asset"]: {"free": b["free"], "locked": b["locked"]}
                             for b in body.get("balances", [])
                             if _f(b.get("free")) or _f(b.get("locked"))}}

    def on_bar(self, bar: ClosedBar) -> list[OrderUpdate]:
        return []

    def restore(self, orders: list[ManagedOrder], balances: dict[str, tuple[float, float]]) -> None:
        return None

    # --- user data stream -------------------------------------------------------------------
    async def _listen_key(self) -> str:
        body = await self._call("POST", USER_STREAM, {}, signed=False)
        return str(body["listenKey"])

    async def _stream_loop(self) -> None:
        delay = 0.2
        while not self._closed:
            keepalive: asyncio.Task[None] | None = None
            try:
                lk = await self._listen_key()
                async with aiohttp.ClientSession(trust_env=False) as s, s.ws_connect(
                        f"{self.ws_url}/ws/{lk}", heartbeat=20,
                        timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                    self.stream_connected = True
                    delay = 0.2
                    keepalive = asyncio.get_running_loop().create_task(self._keepalive(lk))
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        if self._on_event(msg.data) == "expired":
                            break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.info("user data stream: %s", type(exc).__name__)
            finally:
                self.stream_connected = False
                if keepalive is not None:
                    keepalive.cancel()
            if self._closed:
                return
            self.stats["stream_reconnects"] += 1
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)

    async def _keepalive(self, lk: str) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S)
            with contextlib.suppress(Exception):
                await self._call("PUT", USER_STREAM, {"listenKey": lk}, signed=False)

    def _on_event(self, raw: str) -> str:
        try:
            ev = json.loads(raw)
        except ValueError:
            return "bad"
        if not isinstance(ev, dict):
            return "bad"
        kind = ev.get("e")
        if kind == "listenKeyExpired":
            return "expired"
        if kind != "executionReport":
            return "ignored"
        self.stats["stream_events"] += 1
        u = report_update(ev)
        if u and self._sink is not None:
            self._sink(u)
        return "ok"

    async def close(self) -> None:
        self._closed = True
        if self._stream_task is not None:
            self._stream_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stream_task
            self._stream_task = None
        await self.public.close()
        await self.http.close()


def report_update(ev: dict[str, Any]) -> list[OrderUpdate]:
    """An ``executionReport`` as order updates (a TRADE carries its fill)."""
    x = ev.get("x")
    cid = str(ev.get("C") or "") if x == "CANCELED" and ev.get("C") else str(ev.get("c") or "")
    if not cid:
        return []
    t = int(ev.get("T") or ev.get("E") or 0)
    reason = str(ev.get("r") or "")
    fill = None
    if x == "TRADE":
        fill = Fill(str(ev.get("t")), _f(ev.get("L")), _f(ev.get("l")), _f(ev.get("n")),
                    str(ev.get("N") or ""), t, bool(ev.get("m")))
    return [OrderUpdate(cid, ev.get("X"), ev.get("i"), _f(ev.get("z")), _f(ev.get("Z")),
                        reason="" if reason == "NONE" else reason, time_ms=t, fill=fill,
                        source="stream")]
