"""Demo: start a venue, talk to it like a Binance client, and check the stream against the truth.

`run_demo(out_dir)` returns a short summary and leaves sample answers in out_dir; it takes a few
seconds and touches only 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from pathlib import Path
from typing import Any

import websockets

from spark_ray.httpopen import urlopen
from spark_ray.venue.venue import Venue


def _get(base: str, path: str) -> tuple[Any, dict[str, str]]:
    with urlopen(base + path, timeout=10) as resp:
        return json.loads(resp.read()), dict(resp.headers)


async def _read_stream(url: str, seconds: float) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    async with websockets.connect(url, max_size=2**22, proxy=None) as ws:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=left)
            except TimeoutError:
                break
            frames.append(json.loads(raw))
    return frames


def run_demo(out_dir: Path, seconds: float = 3.0) -> dict[str, object]:
    """Serve, query REST, read a combined trade+depth stream, match it with ground truth."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=42, trades_per_second=50) as venue:
        base = venue.rest_url
        ping, _ = _get(base, "/api/v3/ping")
        info, _ = _get(base, "/api/v3/exchangeInfo?symbol=BTCUSDT")
        klines, _ = _get(base, "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=5")
        depth, headers = _get(base, "/api/v3/depth?symbol=BTCUSDT&limit=10")
        url = f"{venue.ws_url}/stream?streams=btcusdt@trade/btcusdt@depth@100ms"
        frames = asyncio.run(_read_stream(url, seconds))
        venue.pause()
        truth = venue.ground_truth("BTCUSDT")

    trades = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
    depth_events = [f["data"] for f in frames if f["stream"] == "btcusdt@depth@100ms"]
    by_id = {
        row["trade_id"]: row
        for row in truth.select(["trade_id", "price", "qty", "is_buyer_maker"]).to_pylist()
    }
    matched = sum(
        1 for t in trades
        if t["t"] in by_id
        and float(t["p"]) == by_id[t["t"]]["price"]
        and float(t["q"]) == by_id[t["t"]]["qty"]
        and t["m"] == by_id[t["t"]]["is_buyer_maker"]
    )
    ids = [t["t"] for t in trades]
    contiguous = all(b == a + 1 for a, b in itertools.pairwise(ids))
    chained = all(b["U"] == a["u"] + 1 for a, b in itertools.pairwise(depth_events))
    (out_dir / "exchangeInfo-BTCUSDT.json").write_text(json.dumps(info, indent=1))
    (out_dir / "klines-BTCUSDT-1m.json").write_text(json.dumps(klines))
    (out_dir / "depth-BTCUSDT-10.json").write_text(json.dumps(depth))
    (out_dir / "stream-sample.jsonl").write_text(
        "".join(json.dumps(f) + "\n" for f in frames[:20]))
    return {
        "rest_url": base,
        "ws_url": url,
        "ping": ping,
        "klines": len(klines),
        "depth_last_update_id": depth["lastUpdateId"],
        "used_weight_1m": headers.get("X-MBX-USED-WEIGHT-1M"),
        "trade_frames": len(trades),
        "depth_frames": len(depth_events),
        "trade_ids": f"{ids[0]}..{ids[-1]}" if ids else "none",
        "trade_ids_contiguous": contiguous,
        "depth_updates_chained": chained,
        "matched_ground_truth": f"{matched}/{len(trades)}",
        "ground_truth_trades": truth.num_rows,
        "seconds": round(time.monotonic() - t0, 2),
        "files": sorted(p.name for p in out_dir.iterdir()),
    }


if __name__ == "__main__":
    import sys
    import tempfile

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="venue-"))
    print(json.dumps(run_demo(target), indent=2))
