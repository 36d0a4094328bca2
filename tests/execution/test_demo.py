"""The executor's demo stage paper-trades approved parameters end to end and uses the control
plane's kill switch (what ``make demo`` runs)."""

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
    assert {"orders.json", "fills.json", "positions.json", "trades.json",
            "status.json"} <= set(result["files"])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kill_status"] == 200 and summary["halted"] == "demo over"
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    assert any(r["k"] == "halt" for r in journal)
    assert run_demo(tmp_path / "none", None)["result"] == "skipped"
