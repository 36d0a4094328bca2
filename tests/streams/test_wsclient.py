"""Both WebSocket clients the connector can read with behave the same against the venue: frames
arrive as bytes, the venue's pings are answered (it drops silent clients), our pings measure a
round trip, and abort ends the connection at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from spark_ray.streams.wsclient import CLIENTS, ConnectError, open_ws
from spark_ray.venue import Venue

from helpers import free_port


@pytest.mark.parametrize("client", CLIENTS)
def test_client_reads_answers_pings_and_aborts(client: str) -> None:
    with Venue(symbols=("BTCUSDT",), seed=3, history_minutes=5, trades_per_second=200,
               ping_interval_s=0.2, pong_timeout_s=0.5) as v:

        async def run() -> tuple[int, float]:
            ws = await open_ws(client, v.ws_url + "/stream?streams=btcusdt@trade", 1 << 20)
            n = 0
            t_end = time.monotonic() + 2.0  # 10 venue pings; unanswered ones would drop us
            while time.monotonic() < t_end:
                raw = await ws.recv()
                assert raw is not None, "the venue closed the connection"
                assert raw.startswith(b'{"stream":"btcusdt@trade"')
                n += 1
            t0 = time.monotonic()
            ws.abort()
            while (await ws.recv()) is not None:
                pass
            gone = time.monotonic() - t0
            await ws.close()
            return n, gone

        n, gone = asyncio.run(run())
        assert n > 100
        assert gone < 2.0


@pytest.mark.parametrize("client", CLIENTS)
def test_ping_round_trip_while_reading(client: str) -> None:
    with Venue(symbols=("BTCUSDT",), seed=3, history_minutes=5, trades_per_second=100) as v:

        async def run() -> float | None:
            ws = await open_ws(client, v.ws_url + "/stream?streams=btcusdt@trade", 1 << 20)

            async def read() -> None:
                while await ws.recv() is not None:
                    pass

            reader = asyncio.ensure_future(read())
            rtt = await ws.ping(5.0)
            await ws.close()
            await asyncio.wait_for(reader, 5.0)
            return rtt

        rtt = asyncio.run(run())
        assert rtt is not None and 0 < rtt < 1000


@pytest.mark.parametrize("client", CLIENTS)
def test_refused_connection_is_a_connect_error(client: str) -> None:
    with pytest.raises(ConnectError):
        asyncio.run(open_ws(client, f"ws://127.0.0.1:{free_port()}/stream", 1 << 20, 2.0))
