"""The executor's demo stage paper-trades approved parameters end to end on a long-lived fabric
it joins (one market-data connection per shard at the venue) and uses the control plane's kill
switch (what ``make demo`` runs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spark_ray.app.demo.trade import run_demo


def test_demo_paper_trades_and_kills(ray_session: Any, approved: Any, tmp_path: Path) -> None:
    path = approved("sma_cross", {"fast": 2, "slow": 3})
    out = tmp_path / "demo"
    result = run_demo(out, path, seconds=10.0)
    assert result["result"] == "ok" and result["bars"] > 30 and result["fills"] >= 1, result
    assert result["health"] == "ok", result["health_reasons"]
    assert result["flat_after_kill"] is True
    # It joined the running fabric (``streams up``'s detached actors), no second connection,
    # and left it running for others.
    assert result["joined"] is True and result["connections_per_shard"] == 1
    assert result["connection_samples"] >= 10 and result["same_connections"] is True
    assert result["fabric_running_after"] is True
    assert "fabric:binance" in result["fabric_actors"]
    assert {"sink:binance", "normalizer:binance:0", "connector:binance:0"} <= set(
        result["fabric_actors"])
    assert {"orders.json", "fills.json", "positions.json", "trades.json",
            "status.json"} <= set(result["files"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kill_status"] == 200 and summary["halted"] == "demo over"
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert any(r["k"] == "halt" for r in journal)
    assert run_demo(tmp_path / "none", None)["result"] == "skipped"
    # The stage's own fabric was taken down at the end (``streams down``), lake complete.
    from spark_ray.app import fabric_service

    assert fabric_service.running("binance") is None
    down = result["streams_down"]
    assert down["lake_equals_ground_truth"] is True and down["published"] > 0, down
    assert down["drained_rows_written"] is not None and not down["fabric_still_running"]
