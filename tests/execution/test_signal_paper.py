"""A signal model trained on real trades, reviewed and approved through the model gate, served
by a SignalActor in a paper-trading run against the venue: the executor's bars carry its
signals, ``signal_fusion`` trades on them, and the run equals a backtest of the trades the fabric
stored with the signals computed in batch. An unapproved or tampered model is refused."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from spark_ray.backtest import run_bars
from spark_ray.errors import CheckFailed
from spark_ray.execution.bars import bars_from_trades
from spark_ray.execution.filters import SymbolFilters
from spark_ray.fills.costs import CostModel
from spark_ray.samples import sample
from spark_ray.signals import artifact
from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS
from spark_ray.signals.live import SCORE, attach
from spark_ray.signals.train import build, fit
from spark_ray.strategy.bars import SIGNALS

from helpers import run_cli

PERMISSIVE = "min_auc: 0.0\nrequire_beats_baselines: false\nmin_samples: 1\n"
OPEN_RULES = {"order_rate": {"enabled": False}, "max_drawdown": {"enabled": False},
              "daily_loss": {"enabled": False}, "consecutive_losses": {"enabled": False},
              "reject_rate": {"enabled": False}, "error_rate": {"enabled": False},
              "max_notional": {"default": 1e12}, "max_total_notional": {"limit": 1e13}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LightGBM signal model on the real XRP/ETH trades, through review and approval."""
    rows = json.loads(gzip.decompress(sample("XRP_ETH-trades.json.gz").read_bytes()))
    trades = Trades(np.array([r[0] for r in rows], dtype=np.int64),
                    np.array([r[4] for r in rows], dtype=float),
                    np.array([r[5] for r in rows], dtype=float),
                    np.array([1 if r[3] == "buy" else -1 for r in rows], dtype=np.int64))
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    folder = tmp_path_factory.mktemp("model") / "model"
    report = {"samples": len(ts), "models": {
        "gbm": {"auc": 0.6, "p_value": 0.01}, "linear": {"auc": 0.55, "p_value": 0.2},
        "majority": {"auc": 0.5, "p_value": 1.0}, "persistence": {"auc": 0.5, "p_value": 1.0}}}
    artifact.save(fit("gbm", ts.X, ts.y, seed=0), folder, ts.features,
                  {"symbol": "XRPETH", "trades_sha256": ts.fingerprint}, report, {"seed": 0})
    rules = folder.parent / "rules.yaml"
    rules.write_text(PERMISSIVE)
    r = run_cli("signals", "check", "--model", str(folder))
    assert r.code == 1, r.out + r.err  # not reviewed yet: not approved
    r = run_cli("signals", "review", "--model", str(folder), "--rules", str(rules),
                "--out", str(folder.parent / "runs"))
    assert r.code == 0, r.out + r.err
    r = run_cli("signals", "approve", "--model", str(folder), "--by", "ci")
    assert r.code == 0, r.out + r.err
    return folder


def test_an_approved_model_served_live_trades_as_its_backtest(
        model_dir: Path, make_venue: Any, make_fabric: Any, make_breaker: Any,
        make_executor: Any, approved: Any, wait_for: Any) -> None:
    from spark_ray.actors.signal import start_signals
    from spark_ray.lake import DataStore

    n = 1500
    venue = make_venue(max_trades_per_symbol=n, start_paused=True)
    bname, _ = make_breaker(OPEN_RULES)  # the breaker's own tests are elsewhere: never block
    params = {"enter": 0.5, "exit": 0.45}
    ex, spec = make_executor(approved("signal_fusion", params), venue, bname, warmup_bars=0,
                             skip_first_bar=False, close_grace_ms=None, cash=5_000.0,
                             signals_model=str(model_dir),
                             signal_wait_ms=5_000)  # parity, not latency: never decide stale
    name = spec.config.name.replace("-", ":", 1)
    sig = start_signals(str(model_dir), ["BTCUSDT"], [name], f"signals:{name}")
    try:
        fabric = make_fabric(venue, start_ids={"trades:BTCUSDT": venue.config.first_trade_id})
        ray.get([nm.subscribe.remote(h, "on_market_data") for nm in fabric.normalizers
                 for h in (ex, sig)])
        venue.resume()
        venue.wait_for_trades("BTCUSDT", n, timeout=90)
        fabric.wait_stored({"trades:BTCUSDT": n}, timeout_s=60)
        wait_for(lambda: ray.get(ex.status.remote())["stats"].get("trades", 0) >= n,
                 timeout=30, what="the executor to see every trade")
        assert ray.get(ex.drain.remote())
        st = ray.get(ex.status.remote())
        sst = ray.get(sig.status.remote())
    finally:
        ray.kill(sig, no_restart=True)
    fabric.stop(compact=True)
    # Every trade got its signal, every bar waited for its own (none stale), none was lost.
    assert sst["published"] == {"BTCUSDT": n} and sst["errors"] == sst["dropped"] == 0
    assert sst["latency_ms"]["n"] == n and sst["model_sha256"] == \
        json.loads((model_dir / "model.json").read_text())["model_sha256"]
    assert st["stats"]["signal_bars"] > 50 and st["stats"].get("stale_signal_bars", 0) == 0
    assert st["orders"].get("REJECTED", 0) == 0, (st["orders"], st.get("errors"), st["trips"])
    assert st["dropped_signals"] == 0

    trades = DataStore(fabric.cfg.store).trades("BTCUSDT")
    assert trades.num_rows == n
    data = bars_from_trades(trades, "BTCUSDT", "1s")
    model = artifact.load(model_dir)
    attach(data, "BTCUSDT", Trades.from_table(trades.sort_by("trade_id")), model.features,
           model.predict)
    assert np.isfinite(data.extra[SIGNALS]["BTCUSDT"][SCORE]).sum() > 50
    info = json.loads(_get(f"{venue.rest_url}/api/v3/exchangeInfo"))
    f = SymbolFilters.from_exchange_info(
        next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT"))
    res = run_bars(data, "signal_fusion", params, cash=5_000.0,
                   costs=CostModel(fee_bps=10, lot_step=f.lot_step,
                                   min_notional=f.min_notional_f), benchmark=False)
    live = ray.get(ex.trades.remote())
    assert st["symbols"]["BTCUSDT"]["last_bar_time"] == int(data.time[-1]), st["symbols"]
    assert len(live) == len(res.output.trades) > 0, (
        [(t["entry_time"], t["exit_time"]) for t in live],
        [(t.entry_time, t.exit_time) for t in res.output.trades], st["orders"], st["stats"], sst)
    for a, b in zip(res.output.trades, live, strict=True):
        assert (a.entry_time, a.exit_time) == (b["entry_time"], b["exit_time"]), (
            st["signal_book"], st["symbols"], sst)
        assert a.pnl == pytest.approx(b["pnl"], rel=1e-9, abs=1e-12)
    assert st["equity"] == pytest.approx(float(res.output.equity[-1]), rel=1e-9)


def test_an_unapproved_or_tampered_model_is_refused(model_dir: Path, tmp_path: Path,
                                                    ray_session: Any) -> None:
    import shutil

    from spark_ray.actors.signal import start_signals

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    (copy / "approved.json").unlink()
    with pytest.raises(CheckFailed, match="approved"):
        start_signals(str(copy), ["BTCUSDT"], ["executor:x"], "signals:refused1")
    shutil.copy(model_dir / "approved.json", copy / "approved.json")
    text = (copy / "model.txt").read_text()
    (copy / "model.txt").write_text(text.replace("learning_rate", "learning_rate ", 1))
    with pytest.raises(CheckFailed, match=r"model\.txt"):
        start_signals(str(copy), ["BTCUSDT"], ["executor:x"], "signals:refused2")


def _get(url: str) -> str:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as r:
        return str(r.read().decode())
