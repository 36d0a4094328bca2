"""Binance public REST the executor needs: exchange filters and warm-up klines.

Loopback venues in tests, ``https://api.binance.com`` by default. No credentials here.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from spark_ray.execution.bars import ClosedBar
from spark_ray.execution.filters import SymbolFilters, parse_exchange_info

DEFAULT_REST_URL = "https://api.binance.com"


class RestFailure(Exception):
    def __init__(self, status: int, body: Any) -> None:
        code = body.get("code") if isinstance(body, dict) else None
        msg = body.get("msg") if isinstance(body, dict) else str(body)[:200]
        super().__init__(f"HTTP {status}" + (f" code {code}: {msg}" if code is not None else ""))
        self.status = status
        self.code = code
        self.msg = msg


class PublicRest:
    def __init__(self, base_url: str = DEFAULT_REST_URL, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"PublicRest({self.base!r})"

    async def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        async with self._session.get(self.base + path, params=params or {}) as r:
            body = await r.json(content_type=None)
            if r.status != 200:
                raise RestFailure(r.status, body)
            return body

    async def exchange_filters(self, symbols: list[str]) -> dict[str, SymbolFilters]:
        if len(symbols) == 1:
            body = await self.get("/api/v3/exchangeInfo", {"symbol": symbols[0]})
        else:
            body = await self.get("/api/v3/exchangeInfo",
                                  {"symbols": "[" + ",".join(f'"{s}"' for s in symbols) + "]"})
        return parse_exchange_info(body)

    async def klines(self, symbol: str, interval: str, end_open_ms: int,
                     limit: int) -> list[ClosedBar]:
        """Up to ``limit`` klines whose open time is at most ``end_open_ms``, oldest first."""
        rows = await self.get("/api/v3/klines", {"symbol": symbol, "interval": interval,
                                                 "endTime": end_open_ms,
                                                 "limit": max(1, min(1000, limit))})
        out = []
        for r in rows:
            if int(r[0]) > end_open_ms:
                continue
            out.append(ClosedBar(symbol, int(r[0]), float(r[1]), float(r[2]), float(r[3]),
                                 float(r[4]), float(r[5]), int(r[8]), -1, 0))
        return out

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
