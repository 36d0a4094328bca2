"""REST calls the fabric needs (Binance): trade backfill pages and depth snapshots.

Backfill uses ``/api/v3/historicalTrades?fromId=`` for the trade stream (it needs an
``X-MBX-APIKEY`` header: ``SPARK_RAY_BINANCE_API_KEY``, never logged) and
``/api/v3/aggTrades?fromId=`` for aggregate trades. 429/418 answers are honoured via Retry-After.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import aiohttp

from spark_ray.streams.normalize import BACKFILL_PATH

API_KEY_ENV = "SPARK_RAY_BINANCE_API_KEY"
PAGE = 1000


class RestError(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


class BinanceRest:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> None:
        self.base = base_url.rstrip("/")
        self._key = api_key if api_key is not None else os.environ.get(API_KEY_ENV, "spark-ray")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self.calls = 0
        self.blocked_until = 0.0

    def __repr__(self) -> str:  # never show the key
        return f"BinanceRest({self.base!r})"

    async def _get(self, path: str, params: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        wait = self.blocked_until - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        self.calls += 1
        headers = {"X-MBX-APIKEY": self._key} if path.endswith("historicalTrades") else {}
        async with self._session.get(self.base + path, params=params, headers=headers) as r:
            if r.status != 200:
                ra = r.headers.get("Retry-After")
                retry = float(ra) if ra and ra.replace(".", "", 1).isdigit() else None
                if retry is not None:
                    self.blocked_until = loop.time() + retry
                raise RestError(r.status, retry)
            return await r.json(content_type=None)

    async def trades_page(self, dataset: str, symbol: str, from_id: int,
                          limit: int = PAGE) -> list[dict[str, Any]]:
        body = await self._get(BACKFILL_PATH[dataset], {"symbol": symbol, "fromId": from_id,
                                                        "limit": max(1, min(PAGE, limit))})
        if not isinstance(body, list):
            raise RestError(200)
        return body

    async def depth(self, symbol: str, limit: int = 1000) -> Any:
        return await self._get("/api/v3/depth", {"symbol": symbol, "limit": limit})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def row_id(dataset: str, row: dict[str, Any]) -> int | None:
    v = row.get("id" if dataset == "trades" else "a")
    return v if type(v) is int else None
