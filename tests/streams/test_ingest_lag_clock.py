"""Ingest lag stays meaningful with replayed or sped-up markets, and is never silently negative.

The demo's trade stage runs the venue at 10x: its trade times run ahead of the wall clock, and
BTCUSDT's ingest lag read -170 s. The venue now stamps ``E`` (when it emits a message) with the
wall clock, as an exchange does, while ``T`` stays market time; the normalizer clamps any lag
that is still negative (a clock ahead of ours) to 0 and counts it as clock skew.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import numpy as np
import websockets

from spark_ray.streams.normalize import NormalizerConfig, NormalizerCore
from spark_ray.streams.skew import clamp_lags
from spark_ray.venue import Venue

T0 = 1_795_000_000_000


def _trade(tid: int, e: int) -> bytes:
    return json.dumps({"stream": "btcusdt@trade", "data": {
        "e": "trade", "E": e, "s": "BTCUSDT", "t": tid, "p": "100.5", "q": "0.25", "T": e,
        "m": False, "M": True}}, separators=(",", ":")).encode()


def test_clamp_lags_counts_what_it_clamps() -> None:
    lags, ahead, worst = clamp_lags(np.array([5.0, -20.0, 0.0, -170_000.0, 12.0]))
    assert lags.tolist() == [5.0, 0.0, 0.0, 0.0, 12.0]
    assert (ahead, worst) == (2, 170_000.0)
    same, none, zero = clamp_lags(np.array([1.0, 2.0]))
    assert same.tolist() == [1.0, 2.0] and (none, zero) == (0, 0.0)


def test_normalizer_never_reports_negative_lag_and_counts_clock_skew() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), start_ids={"trades:BTCUSDT": 1}))
    key = ("BTCUSDT", "trade")
    # Event times 170 s ahead of the receive clock (a venue clock ahead of ours).
    core.process([_trade(1, T0 + 170_000), _trade(2, T0 + 169_000)], [T0, T0], T0)
    assert core.last_lag_ms[key] == 0.0
    assert core.counters.clock_skew[key] == 2 and core.clock_ahead_ms[key] == 170_000.0
    assert core.drain_lags().tolist() == [0.0, 0.0]
    # Sane clocks again: real lags, the skew count stays (a counter).
    core.process([_trade(3, T0 + 1_000)], [T0 + 1_040], T0 + 1_040)
    assert core.last_lag_ms[key] == 40.0 and core.counters.clock_skew[key] == 2


def _frames(url: str, n: int) -> list[tuple[float, dict[str, Any]]]:
    async def main() -> list[tuple[float, dict[str, Any]]]:
        out: list[tuple[float, dict[str, Any]]] = []
        async with websockets.connect(url, proxy=None, max_queue=None) as ws:
            while len(out) < n:
                raw = await asyncio.wait_for(ws.recv(), 20)
                out.append((time.time() * 1000, json.loads(raw)))
        return out

    return asyncio.run(main())


def test_sped_up_venue_stamps_event_time_with_the_wall_clock() -> None:
    # 10x market clock, as in the demo's trade stage: after a few seconds trade times are
    # tens of seconds ahead of now; the event time must not be.
    with Venue(symbols=("BTCUSDT",), seed=21, speed=10.0, trades_per_second=60,
               history_minutes=30, port=0) as venue:
        time.sleep(3.0)
        frames = _frames(f"{venue.ws_url}/ws/btcusdt@trade", 40)
        ledger = venue.ground_truth("BTCUSDT")
    ahead = [d["T"] - t for t, d in frames]
    lags = [t - d["E"] for t, d in frames]
    assert min(ahead) > 15_000, "the market clock should run ahead (the case being tested)"
    assert min(lags) >= 0 and max(lags) < 2_000, lags
    # The ground truth records the same event time it sent.
    sent = {d["t"]: d["E"] for _, d in frames}
    ids = ledger["trade_id"].to_pylist()
    ev = [int(x.timestamp() * 1000) for x in ledger["event_time"].to_pylist()]
    truth = dict(zip(ids, ev, strict=True))
    assert all(truth[i] == e for i, e in sent.items())
