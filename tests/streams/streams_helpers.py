"""Shared checks for the streams tests: the lake against the venue's ground truth."""

from __future__ import annotations

from typing import Any

from spark_ray.app.fabric import Fabric
from spark_ray.lake import DataStore
from spark_ray.venue import Venue


def run_to_halt(venue: Venue, fabric: Fabric, n: int, timeout_s: float = 60.0) -> dict[str, Any]:
    """Let the market run to its last trade, wait until the lake holds all of it, stop.
    Returns every actor's status just before the stop."""
    symbols = venue.config.symbols
    for s in symbols:
        venue.wait_for_trades(s, n, timeout=timeout_s)
    got = fabric.wait_stored({f"trades:{s}": n for s in symbols}, timeout_s=timeout_s)
    assert all(got.get(f"trades:{s}", 0) >= n for s in symbols), got
    fabric.quiesce(10.0)
    status = fabric.status()
    fabric.stop(compact=True)
    return status


def total(status: dict[str, Any], role: str, key: str) -> int:
    """Sum of a counter (a number or a per-stream dict) over the actors of one role."""
    n = 0
    for name, s in status.items():
        if name.startswith(role):
            v = s.get(key, 0)
            n += sum(v.values()) if isinstance(v, dict) else int(v or 0)
    return n


def assert_lake_equals_truth(venue: Venue, store: str, exchange: str = "binance") -> None:
    for s in venue.config.symbols:
        truth = venue.ground_truth(s)
        lake = DataStore(store).read("trades", exchange, s)
        ids = lake["trade_id"].to_pylist()
        want = truth["trade_id"].to_pylist()
        assert ids == want, (f"{s}: {len(ids)} ids stored, {len(want)} published; missing "
                             f"{sorted(set(want) - set(ids))[:10]}, extra "
                             f"{sorted(set(ids) - set(want))[:10]}")  # every id exactly once
        for col in ("price", "qty", "is_buyer_maker", "trade_time"):
            assert lake[col].to_pylist() == truth[col].to_pylist(), f"{s}: {col} differs"
        # Compacted: what DataStore (and the backtest) reads is the same.
        assert DataStore(store).trades(s, exchange)["trade_id"].to_pylist() == ids
