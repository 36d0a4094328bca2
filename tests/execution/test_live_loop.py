"""Signed live trading against the venue simulator: stream -> strategy -> breaker -> signed REST
order -> fills over the user data stream -> positions that agree with the venue's own account,
and API keys nowhere in the journal, the actor's status or its logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray


def _venue_orders(venue: Any, key: str) -> list[dict[str, Any]]:
    return [o for o in venue.orders("BTCUSDT", key) if o["clientOrderId"].startswith("sr-")]


def test_signed_live_loop_matches_the_venue(make_venue: Any, make_fabric: Any,
                                            make_breaker: Any, make_executor: Any,
                                            approved: Any, wait_for: Any, venue_keys: Any,
                                            tmp_path: Path) -> None:
    KEY, SECRET = venue_keys
    venue = make_venue()
    bname, _ = make_breaker()
    journal = tmp_path / "live-journal.jsonl"
    ex, spec = make_executor(approved(), venue, bname, live=True, journal=journal)
    fabric = make_fabric(venue)
    ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])

    st = wait_for(lambda: (s := ray.get(ex.status.remote()))["orders"]["FILLED"] >= 4 and s,
                  timeout=90, what="four live fills")
    assert st["broker"] == "binance" and st["mode"] == "live"
    assert st["user_stream"] is True  # executionReports arrive over the listen key's stream
    assert st["broker_stats"]["stream_events"] > 0
    # Stop the market data, then let every order settle: the comparisons below read the venue
    # and the executor one after the other, and a fill between the reads (its executionReport
    # still on the user stream) is not a mismatch.
    ray.get([n.unsubscribe.remote(ex) for n in fabric.normalizers])
    ray.get(ex.drain.remote())
    wait_for(lambda: not ray.get(ex.orders.remote(True)) and not any(
        o["status"] in ("NEW", "PARTIALLY_FILLED") for o in _venue_orders(venue, KEY)),
        timeout=30, what="no open orders after the market data stopped")

    # Every order the venue holds is one of ours, once; every one of ours is at the venue.
    ours = {o["cid"]: o for o in ray.get(ex.orders.remote())}
    at_venue = _venue_orders(venue, KEY)
    assert len({o["clientOrderId"] for o in at_venue}) == len(at_venue)
    sent = {c for c, o in ours.items() if o["venue_order_id"] is not None}
    assert {o["clientOrderId"] for o in at_venue} == sent
    for vo in at_venue:
        mine = ours[vo["clientOrderId"]]
        if vo["status"] in ("FILLED", "CANCELED", "EXPIRED"):
            wait_for(lambda vo=vo: ray.get(ex.orders.remote())[-500:] and any(
                o["cid"] == vo["clientOrderId"] and o["status"] == vo["status"]
                for o in ray.get(ex.orders.remote())), timeout=10, what="status from the venue")
        assert abs(mine["executed_qty"] - float(vo["executedQty"])) < 1e-9 or \
            vo["status"] not in ("FILLED",)

    # Fills: exactly the venue's trades of our account (ids, prices, quantities, commission).
    venue_fills = {str(t["id"]): t for t in venue.my_trades(KEY, "BTCUSDT")}
    fills = {f["trade_id"]: f for f in ray.get(ex.fills.remote())}
    assert set(fills) == set(venue_fills)
    for tid, f in fills.items():
        v = venue_fills[tid]
        assert abs(f["price"] - float(v["price"])) < 1e-9
        assert abs(f["qty"] - float(v["qty"])) < 1e-12
        assert abs(f["commission"] - float(v["commission"])) < 1e-12
    # Position = the venue's BTC balance (it started at 0; commission on buys is paid in BTC).
    def position_matches() -> bool:
        pos = ray.get(ex.positions.remote())["BTCUSDT"]
        bal = venue.balances(KEY)
        btc = float(bal.get("BTC", {}).get("free", 0)) + float(bal.get("BTC", {}).get("locked", 0))
        return abs(pos["qty"] - btc) < 1e-8

    wait_for(position_matches, timeout=15, what="executor position == venue BTC balance")

    ray.get(ex.stop.remote())
    # The secret never reaches the journal or the status; the key neither.
    text = journal.read_text()
    assert SECRET not in text and KEY not in text and '"signature"' not in text
    assert SECRET not in repr(ray.get(ex.status.remote())) and KEY not in repr(spec)
    # ... nor any log file of this Ray session (driver, raylet, every worker).
    node = ray._private.worker._global_node
    assert node is not None
    logs = Path(node.get_session_dir_path()) / "logs"
    for f in logs.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert SECRET.encode() not in data, f"secret leaked into {f}"
