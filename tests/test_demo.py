"""``make demo``'s command runs end to end and leaves an intact evidence bundle."""

from __future__ import annotations

import json
from pathlib import Path

from spark_ray.evidence import verify

from helpers import run_cli


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    res = run_cli("demo", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=600)
    assert res.code == 0, res.out + res.err
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    assert all(stage["status"] == "ok" for stage in summary.values()), summary
    assert summary["ray"]["nodes"] == ["127.0.0.1"]
    assert summary["ray"]["metrics_export_serving"] is True
    assert summary["data"]["series"] == 8 and summary["data"]["trades"] == 12_477
    assert summary["data"]["fetched_candles"] == 2 * 2 * 1440
    assert summary["venue"]["status"] == "ok"
    quality = json.loads((run / "data" / "quality.json").read_text())
    alt = next(s for s in quality["series"] if s["symbol"] == "ALTBTC")
    assert (alt["expected"], alt["missing"]) == (14_398, 717)
    assert summary["backtest"]["trades"] > 0
    assert (run / "backtest" / "report.png").is_file()
    assert summary["optimize"]["trials"] >= 20 and summary["optimize"]["review"] == "PASS"
    assert (run / "optimize" / "approved.json").is_file()
    assert verify(run).ok
    assert "evidence bundle:" in res.out
