"""``make demo``'s command runs end to end and leaves an intact evidence bundle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spark_ray.evidence import verify

from helpers import run_cli


@pytest.mark.alone
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    res = run_cli("demo", "--quick", "--out", str(tmp_path), cwd=tmp_path, timeout=900)
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run / "summary.json").read_text())
    _check_long_lived_fabric(run, summary)
    assert res.code == 0, res.out + res.err
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
    sig = summary["signals"]  # study, honest training report, model gate, fusion parity
    assert sig["backtest_equals_paper"] is True and sig["fusion_trades"] > 0
    assert sig["review"] in ("PASS", "FAIL") and sig["stale_signal_bars"] == 0
    assert (run / "signals" / "study.png").is_file()
    model_approval = json.loads((run / "signals" / "model" / "approved.json").read_text())
    assert sig["review"] == "PASS" or "PAPER TRADING ONLY" in model_approval["note"]
    # ... and served live: a SignalActor scored the trade stage's stream for its executor
    assert summary["trade"]["signals_published"] > 0 and summary["trade"]["signal_bars"] > 0
    opt = summary["optimize"]
    assert opt["trials"] >= 20 and opt["review"] in ("PASS", "FAIL")
    # Honest defaults: the sweep reports its own PBO and the winner's deflated Sharpe, and
    # the default gate's verdict stands; paper trading then runs on an approval that says
    # which rules it passed.
    assert 0 <= opt["pbo"] <= 1 and 0 <= opt["dsr"] <= 1
    approved = json.loads((run / "optimize" / "approved.json").read_text())
    # signed by the run's own approver key, trusted only by the run's trusted-keys file
    from spark_ray.approval.approved import check
    from spark_ray.approval.signing import TrustedKeys

    assert opt["signed_by"].startswith("make-demo (SHA256:")
    assert check(run / "optimize" / "approved.json", TrustedKeys.load(run / "trusted_keys"))
    if opt["review"] == "FAIL":
        assert opt["paper_review"] == "PASS" and opt["failed_rules"]
        assert approved["risk_report"] == "risk-report-paper.json"
        assert "PAPER TRADING ONLY" in approved["note"]
    default = json.loads((run / "optimize" / "risk-report.json").read_text())
    assert default["verdict"] == opt["review"] and default["rules"]["min_dsr"] == 0.95
    # the operator console ran on Ray Serve, and every page is photographed into the bundle
    assert summary["console"]["url"].startswith("http://127.0.0.1:")
    assert "console: http://127.0.0.1:" in res.out
    shots = sorted(p.name for p in (run / "console").glob("*.png"))
    assert shots == sorted(f"console-{n}.png" for n in ("overview", "streams", "trading",
                                                        "research", "data", "alerts", "chaos"))
    assert all((run / "console" / n).stat().st_size > 20_000 for n in shots)
    assert verify(run).ok
    assert "evidence bundle:" in res.out


def _check_long_lived_fabric(run: Path, summary: dict[str, Any]) -> None:
    """One fabric, started as ``streams up`` starts it, lived from the streams stage to
    ``streams down``; the trade stage and the observe stage's executor joined it; the venue
    saw one market-data connection per shard; down left a lake equal to the venue's truth.
    (Checked first: a failure of a later stage must not hide these.)"""
    actors = {"fabric:binance", "sink:binance", "normalizer:binance:0", "connector:binance:0"}
    streams = summary["streams"]
    assert streams["status"] == "ok", streams
    assert streams["namespace"] == "spark_ray" and streams["detached"] is True
    assert set(streams["actors"]) == actors
    assert streams["market_data_connections_peak"] == streams["shards"] == 1
    status = (run / "streams" / "status.txt").read_text()
    assert status.startswith("fabric binance: OK") and "BTCUSDT" in status, status
    doc = json.loads((run / "streams" / "status.json").read_text())
    assert doc["fabric"] == "fabric:binance" and set(doc["symbols"]) == {"BTCUSDT", "ETHUSDT"}

    trade = summary["trade"]
    assert trade["status"] == "ok" and trade["joined"] is True, trade
    assert set(trade["fabric_actors"]) == actors
    assert trade["connections_per_shard"] == 1 and trade["same_connections"] is True
    assert trade["fabric_running_after"] is True
    assert trade["breaker_fed"]["by"] == trade["breaker"]
    assert trade["breaker_fed"]["reports"] > 0 and trade["breaker_fed"]["reachable"] is True

    observe = json.loads((run / "observe" / "observe.json").read_text())["traffic"]
    assert observe["joined"] is True and observe["fabric"] == "fabric:binance", observe
    assert observe["market_data_connections"] == 1

    down = summary["streams-down"]
    assert down["status"] == "ok", down
    assert down["lake_equals_ground_truth"] is True and down["fabric_still_running"] is False
    assert down["lost"] == down["extra"] == down["lake_duplicates"] == 0
    assert down["published"] > sum(streams["stored"].values()) > 0  # trading added rows
    assert down["drained_rows_written"] > 0
