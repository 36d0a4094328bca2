"""Demo stage: ML signals on the real XRP/ETH trades, from research to a served model.

Study the inventory's signals (IC and hit rate over horizons: study.json, study.png), train the
gradient-boosted model with purged k-fold CV beside its baselines (the honest report: does it
beat them, is the 85% accuracy claim met), put the model through the gate (the default review
and, when it FAILs, the demo's own paper-only rules, never for live trading), then trade
``signal_fusion`` on its signals twice over the same trades: the backtest (signals from the
features' batch runtime) and the executor core fed batch by batch with the signals computed
trade by trade, as the SignalActor does live. The two must make the same trades.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

# The demo's paper-only model rules (when the default review FAILs): never for live trading.
PAPER_MODEL_RULES = {"min_auc": 0.5, "require_beats_baselines": False, "min_samples": 500}
FUSION = {"enter": 0.6, "exit": 0.5}
# The backtest has no circuit breaker: the parity replay asks one whose rules never block.
OPEN_BREAKER = {"order_rate": {"enabled": False}, "max_drawdown": {"enabled": False},
                "daily_loss": {"enabled": False}, "consecutive_losses": {"enabled": False},
                "max_notional": {"default": 1e12}, "max_total_notional": {"limit": 1e13}}


def run_stage(lake: Any, out: Path, quick: bool, signer: Any, trusted_keys: str | None
              ) -> dict[str, Any]:
    from spark_ray.approval.model import (
        APPROVED_FILE,
        REPORT_FILE,
        ModelRules,
        approve_model,
        check_model,
        review_model,
    )
    from spark_ray.approval.signing import TrustedKeys
    from spark_ray.backtest import run_bars
    from spark_ray.breaker.core import CircuitBreaker
    from spark_ray.breaker.models import BreakerConfig
    from spark_ray.execution.bars import bars_from_trades
    from spark_ray.execution.gate import LocalGate
    from spark_ray.execution.replay import paper_replay
    from spark_ray.fills.costs import CostModel
    from spark_ray.signals import artifact
    from spark_ray.signals.features import Trades
    from spark_ray.signals.inventory import INVENTORY, TRADE_SIGNALS
    from spark_ray.signals.live import SignalEngine, attach
    from spark_ray.signals.study import plot, study
    from spark_ray.signals.train import build, fit, report
    from spark_ray.strategy.builtins import SignalFusion

    out.mkdir(parents=True, exist_ok=True)
    table = lake.trades("XRPETH").sort_by("trade_id")
    trades = Trades.from_table(table)
    found = study(list(TRADE_SIGNALS), trades, "XRPETH", [1_000, 10_000, 60_000, 300_000])
    (out / "study.json").write_text(json.dumps(found.to_dict(), indent=2) + "\n")
    plot(found, out / "study.png")

    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    rep = report(ts, k=5, embargo=0.01, permutations=50 if quick else 200, seed=0)
    folder = out / "model"
    artifact.save(fit("gbm", ts.X, ts.y, 0), folder, ts.features,
                  {"symbol": "XRPETH", "samples": len(ts), "trades_sha256": ts.fingerprint,
                   "every_ms": 60_000, "horizon": 5}, rep, {"seed": 0})
    default = review_model(folder)
    (out / "risk-report-default.json").write_text(json.dumps(default, indent=2) + "\n")
    used, note = default, "make demo"
    if default["verdict"] != "PASS":
        used = review_model(folder, ModelRules(**PAPER_MODEL_RULES))
        note = ("PAPER TRADING ONLY: the default review FAILED; approved under the demo's "
                f"paper-only rules {PAPER_MODEL_RULES}")
    (folder / REPORT_FILE).write_text(json.dumps(used, indent=2, sort_keys=True) + "\n")
    approved = approve_model(folder, signer, note=note)
    (folder / APPROVED_FILE).write_text(json.dumps(approved, indent=2, sort_keys=True) + "\n")
    check_model(folder, TrustedKeys.load(trusted_keys))  # what the signal actor checks

    model = artifact.load(folder)
    data = bars_from_trades(table, "XRPETH", "1m")
    attach(data, "XRPETH", trades, model.features, model.predict)
    bt = run_bars(data, "signal_fusion", FUSION, costs=CostModel(fee_bps=10), benchmark=False)
    gate = LocalGate(CircuitBreaker(BreakerConfig.model_validate(OPEN_BREAKER)))
    core = paper_replay(table, "XRPETH", "1m", SignalFusion, FUSION, fee_bps=10, gate=gate,
                        engine=SignalEngine(model.features, model.predict))
    live = core.positions.trades
    same = len(live) == len(bt.output.trades) and all(
        (a.entry_time, a.exit_time) == (b.entry_time, b.exit_time)
        for a, b in zip(bt.output.trades, live, strict=True))
    if not same:
        raise RuntimeError(f"signal_fusion: backtest made {len(bt.output.trades)} trades, the "
                           f"executor core {len(live)}: the two runtimes disagree")
    gbm = rep["models"]["gbm"]
    best_ic = max(found.rows, key=lambda r: abs(np.nan_to_num(r["ic"][2])))
    return {
        "signals": (f"{len(TRADE_SIGNALS)} of {len(INVENTORY)} studied (the order-book ones "
                    "need a recorded book; the real samples have trades only)"),
        "strongest_ic_at_60s": f"{best_ic['name']} {best_ic['ic'][2]:+.3f}",
        "samples": len(ts),
        "gbm": f"AUC {gbm['auc']:.3f}, accuracy {gbm['accuracy']:.3f} (p={gbm['p_value']:.3f})",
        "verdict": rep["verdict"],
        "accuracy_85pct_met": rep["accuracy_claim_85pct"]["met"],
        "review": default["verdict"], "approved_under": "default rules" if used is default
        else "paper-only rules",
        "fusion_trades": len(live), "backtest_equals_paper": same,
        "stale_signal_bars": core.status()["stats"].get("stale_signal_bars", 0),
    }
