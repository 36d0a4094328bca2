"""Python API: run a venue in a background thread (default) or its own process.

    with Venue(symbols=("BTCUSDT",), seed=7) as v:
        v.rest_url, v.ws_url            # http://127.0.0.1:<port>, ws://127.0.0.1:<port>
        v.inject("drop", probability=0.1, symbol="BTCUSDT")
        v.ground_truth("BTCUSDT")       # pyarrow Table, TRADE_SCHEMA, every published trade
        v.fault_log()                   # every injection, with wall-clock time

    with Venue(api_keys={"key": "secret"}, starting_balances={"USDT": "1000", "BTC": "0.1"}) as v:
        v.orders("BTCUSDT")             # every order the venue accepted (query-order format)
        v.my_trades("key")              # every fill of an account (myTrades format)
        v.balances("key")               # {"USDT": {"free": "...", "locked": "..."}, ...}

Thread mode calls the server directly on its loop; process mode (one core of its own, used by
benchmarks) goes through the token-protected admin endpoint, so both behave the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing as mp
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection as Pipe
from typing import Any, TypeVar

import pyarrow as pa

from spark_ray.httpopen import urlopen
from spark_ray.venue.config import VenueConfig
from spark_ray.venue.faults import FaultKind, FaultSpec
from spark_ray.venue.server import VenueServer

T = TypeVar("T")


class Venue:
    """A local Binance-compatible venue on loopback; ephemeral port unless one is given."""

    def __init__(
        self,
        config: VenueConfig | None = None,
        *,
        candles: pa.Table | None = None,
        process: bool = False,
        **overrides: Any,
    ) -> None:
        cfg = config if config is not None else VenueConfig(port=0)
        if "symbols" in overrides:
            overrides["symbols"] = tuple(overrides["symbols"])
        cfg = replace(cfg, **overrides) if overrides else cfg
        token = cfg.resolved_token()
        if token is None and cfg.admin_token is None:
            # The API owns this venue: give it a private token so its admin endpoint works.
            token = secrets.token_hex(16)
        cfg = replace(cfg, admin_token=token if token is not None else "")
        self.config = cfg
        self.candles = candles
        self.process = process
        self.port = 0
        self._server: VenueServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._proc: Any = None
        self._pipe: Pipe | None = None

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Venue:
        if self.process:
            self._start_process()
        else:
            self._start_thread()
        return self

    def _start_thread(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                server = VenueServer(self.config, self.candles)
                loop.run_until_complete(server.start())
                self._server = server
            except BaseException as e:
                errors.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(server.stop())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="spark-ray-venue", daemon=True)
        self._thread.start()
        if not ready.wait(60):
            raise RuntimeError("venue did not start within 60 s")
        if errors:
            raise errors[0]
        assert self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        self.port = self._server.port

    def _start_process(self) -> None:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_process_main, args=(self.config, self.candles, child),
                                 name="spark-ray-venue", daemon=True)
        self._proc.start()
        child.close()
        self._pipe = parent
        if not parent.poll(60):
            self._proc.terminate()
            raise RuntimeError("venue process did not start within 60 s")
        msg = parent.recv()
        if isinstance(msg, BaseException):
            self._proc.join(5)
            raise msg
        self.port = int(msg)

    def stop(self) -> None:
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            self._thread = None
            self._server = None
        if self._proc is not None:
            assert self._pipe is not None  # nosec B101  # narrows Optional for mypy, not a check
            with contextlib.suppress(OSError, EOFError):
                self._pipe.send("stop")
            self._proc.join(15)
            if self._proc.is_alive():
                self._proc.terminate()
                self._proc.join(5)
            self._pipe.close()
            self._proc = None

    def __enter__(self) -> Venue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- addresses ---------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self.config.host

    @property
    def _http(self) -> str:
        return "https" if self.config.tls_cert else "http"

    @property
    def _ws(self) -> str:
        return "wss" if self.config.tls_cert else "ws"

    @property
    def rest_url(self) -> str:
        """Base for Binance REST paths (`/api/v3/...`), like https://api.binance.com."""
        return f"{self._http}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """Base for Binance streams (`/ws/<s>`, `/stream?streams=`), like the stream host."""
        return f"{self._ws}://{self.host}:{self.port}"

    @property
    def btcturk_ws_url(self) -> str:
        """BTCTurk's public WebSocket feed."""
        return f"{self._ws}://{self.host}:{self.port}/btcturk"

    @property
    def btcturk_rest_url(self) -> str:
        """Base for BTCTurk's public REST paths (`/api/v2/...`), like https://api.btcturk.com."""
        return f"{self._http}://{self.host}:{self.port}/btcturk"

    @property
    def btcturk_graph_url(self) -> str:
        """Base for BTCTurk's graph API (`/v1/klines/history`, `/v1/ohlcs`), like
        https://graph-api.btcturk.com; the venue serves it beside the REST paths."""
        return f"{self._http}://{self.host}:{self.port}/btcturk"

    @property
    def pid(self) -> int | None:
        """Process id of the venue in process mode (benchmarks pin it to one core)."""
        return int(self._proc.pid) if self._proc is not None else None

    @property
    def admin_token(self) -> str | None:
        return self.config.admin_token or None

    # --- control -------------------------------------------------------------------------------
    def _on_loop(self, fn: Callable[[], T]) -> T:
        assert self._loop is not None and self._server is not None, "venue is not running"  # nosec B101  # narrows Optional for mypy, not a check

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)

    def _admin(self, method: str, path: str, body: Any = None, query: str = "") -> bytes:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.rest_url}/admin/{path}{'?' + query if query else ''}",
            data=data,
            method=method,
            headers={"X-Admin-Token": self.admin_token or "", "Content-Type": "application/json"},
        )
        with urlopen(req, timeout=60) as resp:
            out: bytes = resp.read()
            return out

    def inject(self, kind: str | FaultKind | FaultSpec, **params: Any) -> int:
        """Turn a fault on; returns its id. See FaultSpec for the parameters."""
        spec = kind if isinstance(kind, FaultSpec) else FaultSpec(kind=FaultKind(kind), **params)
        if self.process:
            return int(json.loads(self._admin("POST", "faults", spec.to_dict()))["id"])
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(lambda: server.inject(spec))

    def clear_faults(self, fault_id: int | None = None) -> int:
        """Turn one fault (or all) off; returns how many were active."""
        if self.process:
            path = "faults" if fault_id is None else f"faults/{fault_id}"
            return int(json.loads(self._admin("DELETE", path))["cleared"])
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(lambda: server.clear_faults(fault_id))

    def fault_log(self) -> list[dict[str, Any]]:
        """Every activation/injection/retirement so far, oldest first, with epoch-ms time."""
        if self.process:
            out: list[dict[str, Any]] = json.loads(self._admin("GET", "fault-log"))
            return out
        assert self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return [e.to_dict() for e in self._server.plan.log.events()]

    def ground_truth(self, symbol: str) -> pa.Table:
        """All trades published for a symbol, TRADE_SCHEMA, ascending trade id."""
        if self.process:
            raw = self._admin("GET", "ground-truth", query=f"symbol={symbol}")
            return pa.ipc.open_stream(pa.py_buffer(raw)).read_all()
        assert self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._server.engine.ledger.table(symbol)

    def ground_truth_ids(self, symbol: str) -> list[int]:
        if self.process:
            out: list[int] = json.loads(
                self._admin("GET", "ground-truth", query=f"symbol={symbol}&format=ids"))
            return out
        assert self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return [int(i) for i in self._server.engine.ledger.ids(symbol).tolist()]

    def trade_count(self, symbol: str) -> int:
        if self.process:
            return int(self.status()["trades"][symbol])
        assert self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._server.engine.ledger.count(symbol)

    def connections(self) -> list[dict[str, Any]]:
        """Open WebSocket connections: id, kind, peer ("127.0.0.1:port"), path, streams."""
        if self.process:
            out: list[dict[str, Any]] = json.loads(self._admin("GET", "connections"))
            return out
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(server.connections)

    def connection_id(self, local_port: int, timeout: float = 5.0) -> int:
        """The venue's id for the client connection whose local port is `local_port`."""
        deadline = time.monotonic() + timeout
        while True:
            for c in self.connections():
                if c["peer"].endswith(f":{local_port}"):
                    return int(c["id"])
            if time.monotonic() > deadline:
                raise LookupError(f"no venue connection from local port {local_port}")
            time.sleep(0.02)

    def status(self) -> dict[str, Any]:
        if self.process:
            out: dict[str, Any] = json.loads(self._admin("GET", "status"))
            return out
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(lambda: {
            "market_time_ms": server.engine.now_ms(),
            "paused": server.engine.clock.paused,
            "halted": server.engine.halted(),
            "trades": {s: server.engine.ledger.count(s) for s in server.engine.specs},
        })

    def pause(self) -> None:
        """Freeze the market clock (no trades, no candle progress) so truth is at rest."""
        if self.process:
            self._admin("POST", "pause", {})
        else:
            server = self._server
            assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
            self._on_loop(server.pause)

    def resume(self) -> None:
        if self.process:
            self._admin("POST", "resume", {})
        else:
            server = self._server
            assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
            self._on_loop(server.resume)

    # --- trading ground truth ------------------------------------------------------------------
    def orders(self, symbol: str | None = None, api_key: str | None = None
               ) -> list[dict[str, Any]]:
        """Every order the venue ever accepted (all accounts unless api_key), oldest first, in
        GET /api/v3/order's format: clientOrderId, status, executedQty, ..."""
        if self.process:
            query = "&".join(f"{k}={v}" for k, v in (("symbol", symbol), ("key", api_key))
                             if v is not None)
            out: list[dict[str, Any]] = json.loads(self._admin("GET", "orders", query=query))
            return out
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(lambda: server.desk.order_rows(symbol, api_key))

    def my_trades(self, api_key: str | None = None, symbol: str | None = None
                  ) -> list[dict[str, Any]]:
        """Every fill (all accounts unless api_key) in GET /api/v3/myTrades's format."""
        if self.process:
            query = "&".join(f"{k}={v}" for k, v in (("key", api_key), ("symbol", symbol))
                             if v is not None)
            out: list[dict[str, Any]] = json.loads(self._admin("GET", "my-trades", query=query))
            return out
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return self._on_loop(lambda: server.desk.trade_rows(api_key, symbol))

    def balances(self, api_key: str) -> dict[str, dict[str, str]]:
        """An account's balances: asset -> {"free": "1.00000000", "locked": "0.00000000"}."""
        if self.process:
            try:
                raw = self._admin("GET", "balances", query=f"key={api_key}")
            except urllib.error.HTTPError as e:
                if e.code == 400:
                    raise ValueError("api_key: not an api key of this venue") from None
                raise
            out: dict[str, dict[str, str]] = json.loads(raw)
            return out
        server = self._server
        assert server is not None  # nosec B101  # narrows Optional for mypy, not a check
        if api_key not in server.desk.accounts:
            raise ValueError("api_key: not an api key of this venue")
        return self._on_loop(lambda: server.desk.balances(api_key))

    def server_shutdown(self) -> int:
        """Send serverShutdown to every client and close them (a venue maintenance)."""
        if self.process:
            return int(json.loads(self._admin("POST", "server-shutdown", {}))["closed"])
        assert self._loop is not None and self._server is not None  # nosec B101  # narrows Optional for mypy, not a check
        return asyncio.run_coroutine_threadsafe(
            self._server.shutdown_connections(), self._loop).result(30)

    def wait_for_trades(self, symbol: str, n: int, timeout: float = 10.0) -> int:
        """Block until at least n trades of `symbol` were published; returns the count."""
        deadline = time.monotonic() + timeout
        while True:
            count = self.trade_count(symbol)
            if count >= n:
                return count
            if time.monotonic() > deadline:
                raise TimeoutError(f"{symbol}: {count} trades published, wanted {n}")
            time.sleep(0.02)


def _process_main(config: VenueConfig, candles: pa.Table | None, pipe: Pipe) -> None:
    """Child-process entry: serve until the parent says stop (or goes away)."""

    async def main() -> None:
        server = VenueServer(config, candles)
        await server.start()
        pipe.send(server.port)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, _wait_stop, pipe)
        finally:
            await server.stop()

    try:
        asyncio.run(main())
    except BaseException as e:  # report start-up failures to the parent
        with contextlib.suppress(OSError, EOFError):
            pipe.send(e)


def _wait_stop(pipe: Pipe) -> None:
    with contextlib.suppress(OSError, EOFError):
        pipe.recv()
