"""The one HTTP client and retry policy, against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiohttp import web

from spark_ray.http import Backoff, HttpClient, HttpError, RetryPolicy, TransportError

from helpers import free_port


class Server:
    """Answers GET /x from a script of (status, headers, body) and records each call's time."""

    def __init__(self, script: list[tuple[int, dict[str, str], Any]]) -> None:
        self.script = list(script)
        self.calls: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append(asyncio.get_running_loop().time())
        status, headers, body = self.script.pop(0) if self.script else (200, {}, {"ok": True})
        return web.json_response(body, status=status, headers=headers)


async def _serve(server: Server) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/x", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def _run(script: list[tuple[int, dict[str, str], Any]], work: Any) -> tuple[Any, Server]:
    async def go() -> tuple[Any, Server]:
        server = Server(script)
        runner, url = await _serve(server)
        client = HttpClient(url, timeout_s=5)
        try:
            return await work(client), server
        finally:
            await client.close()
            await runner.cleanup()

    return asyncio.run(go())


FAST = RetryPolicy(max_retries=3, base_delay_s=0.01, max_delay_s=0.05, min_delay_s=0.001)


def test_get_json_retries_5xx_under_the_policy_then_succeeds() -> None:
    script = [(503, {}, {"code": -1, "msg": "busy"}), (502, {}, {}), (200, {}, [1, 2])]
    body, server = _run(script, lambda c: c.get_json("/x", retry=FAST))
    assert body == [1, 2] and len(server.calls) == 3


def test_a_client_error_is_not_retried_and_names_the_venue_code() -> None:
    script = [(400, {}, {"code": -1121, "msg": "Invalid symbol."})]

    async def work(c: HttpClient) -> Any:
        with pytest.raises(HttpError, match=r"HTTP 400 code -1121: Invalid symbol\.") as err:
            await c.get_json("/x", retry=FAST)
        return err.value

    exc, server = _run(script, work)
    assert (exc.status, exc.code) == (400, -1121) and len(server.calls) == 1


def test_gives_up_after_max_retries() -> None:
    script = [(500, {}, {})] * 10
    policy = RetryPolicy(max_retries=2, base_delay_s=0.01, max_delay_s=0.01, min_delay_s=0.001)

    async def work(c: HttpClient) -> Any:
        with pytest.raises(HttpError, match="HTTP 500"):
            await c.get_json("/x", retry=policy)

    _, server = _run(script, work)
    assert len(server.calls) == 3  # the first try and two retries


def test_retry_after_pauses_every_caller_of_the_client() -> None:
    """A 429 with Retry-After: 1 blocks the next request of any caller for that second."""
    script = [(429, {"Retry-After": "1"}, {"code": -1003, "msg": "Too many requests"})]

    async def work(c: HttpClient) -> Any:
        first = await c.get("/x")
        assert first.status == 429 and first.retry_after_s == 1.0 and c.rate_limited == 1
        return await asyncio.gather(c.get("/x"), c.get("/x"))

    answers, server = _run(script, work)
    assert [a.status for a in answers] == [200, 200]
    assert min(server.calls[1:]) - server.calls[0] >= 0.95


def test_no_server_is_a_transport_error() -> None:
    async def go() -> None:
        client = HttpClient(f"http://127.0.0.1:{free_port()}", timeout_s=2)
        try:
            with pytest.raises(TransportError, match="GET /x"):
                await client.get("/x")
        finally:
            await client.close()

    asyncio.run(go())


def test_backoff_is_jittered_capped_and_resets() -> None:
    """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter", 2015): each delay
    is uniform in [0, min(cap, base * 2**attempt)], never below the floor."""
    b = Backoff(RetryPolicy(base_delay_s=0.1, max_delay_s=1.0), rng=random.Random(1))
    delays = [b.next() for _ in range(20)]
    assert all(0.02 <= d <= 1.0 for d in delays) and len(set(delays)) > 10
    assert delays[0] <= 0.1 and delays[1] <= 0.2  # ceilings 0.1, 0.2, 0.4, ...
    b.reset()
    assert b.attempt == 0 and b.next() <= 0.1
