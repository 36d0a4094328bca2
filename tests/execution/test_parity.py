"""Paper trading over recorded data equals a backtest over the same data: identical closed trades,
fills and final equity.

Two levels: the executor core replaying real recorded Binance trades (XRP/ETH, shipped sample)
for every built-in strategy, with and without exchange filters; and the whole stack -- venue
stream, fabric, ExecutorActor, breaker, PaperBroker -- compared with a backtest of the very trades
the fabric stored in the lake.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import ray

from spark_ray.backtest import run_bars
from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.models import BreakerConfig
from spark_ray.data.readers import read_freqtrade_trades
from spark_ray.execution.bars import bars_from_trades
from spark_ray.execution.filters import SymbolFilters
from spark_ray.execution.gate import LocalGate
from spark_ray.execution.replay import paper_replay
from spark_ray.fills.costs import CostModel
from spark_ray.samples import sample
from spark_ray.strategy.loader import load_strategy

OPEN_RULES = {"order_rate": {"enabled": False}, "max_drawdown": {"enabled": False},
              "daily_loss": {"enabled": False}, "consecutive_losses": {"enabled": False},
              "max_notional": {"default": 1e12}, "max_total_notional": {"limit": 1e13}}


@pytest.fixture(scope="module")
def xrp_trades() -> Any:
    return read_freqtrade_trades(sample("XRP_ETH-trades.json.gz"))


def assert_same(bt_trades: list[Any], bt_equity: float, core: Any) -> None:
    live = core.positions.trades
    assert len(live) == len(bt_trades) > 0
    for a, b in zip(bt_trades, live, strict=True):
        assert (a.entry_time, a.exit_time) == (b.entry_time, b.exit_time)
        for field in ("entry_price", "exit_price", "qty", "fees", "pnl"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-12, abs=1e-12), \
                field
    assert core.positions.equity() == pytest.approx(bt_equity, rel=1e-12)


CASES = [("sma_cross", {"fast": 3, "slow": 8}, "5m"),
         ("rsi_reversion", {"period": 6, "oversold": 35, "overbought": 60}, "5m"),
         ("donchian_breakout", {"entry": 6, "exit": 4, "atr_period": 5, "atr_stop": 1.5}, "5m"),
         ("sma_cross", {"fast": 5, "slow": 20}, "1m")]


@pytest.mark.parametrize(("strategy", "params", "interval"), CASES,
                         ids=[f"{s}-{i}" for s, _, i in CASES])
def test_paper_replay_equals_backtest_on_real_trades(xrp_trades: Any, strategy: str,
                                                     params: dict[str, Any],
                                                     interval: str) -> None:
    gate = LocalGate(CircuitBreaker(BreakerConfig.model_validate(OPEN_RULES)))
    core = paper_replay(xrp_trades, "XRPETH", interval, load_strategy(strategy), params,
                        fee_bps=10, slippage_bps=2, gate=gate)
    data = bars_from_trades(xrp_trades, "XRPETH", interval)
    res = run_bars(data, strategy, params, costs=CostModel(fee_bps=10, slippage_bps=2),
                   benchmark=False)
    assert_same(res.output.trades, float(res.output.equity[-1]), core)
    # Every order the backtest filled, the paper broker filled at the same bar and price.
    bt_fills = [(o.fill_i, o.fill_price, o.fill_qty) for o in res.output.orders
                if o.status == "FILLED"]
    live_fills = [(f.time_ms, f.price, f.qty) for o in core.om.orders.values() for f in o.fills]
    assert len(bt_fills) == len(live_fills)
    for (i, p, q), (t, lp, lq) in zip(bt_fills, live_fills, strict=True):
        assert int(data.time[i]) == t and p == pytest.approx(lp, rel=1e-12) and \
            q == pytest.approx(lq, rel=1e-12)
    assert core.status()["stats"]["allowed"] == len(core.om.orders)  # the breaker was asked


def test_parity_with_exchange_filters(xrp_trades: Any) -> None:
    """With a lot step and a minimum notional, both round and reject alike."""
    f = SymbolFilters("XRPETH", "XRP", "ETH", tick_size=Decimal("0.00000001"),
                      step_size=Decimal("1"), min_qty=Decimal("1"),
                      min_notional=Decimal("0.01"))
    params = {"fast": 3, "slow": 8, "size_pct": 0.37}
    core = paper_replay(xrp_trades, "XRPETH", "5m", load_strategy("sma_cross"), params,
                        cash=10.0, fee_bps=10, filters=f,
                        gate=LocalGate(CircuitBreaker(BreakerConfig.model_validate(OPEN_RULES))))
    data = bars_from_trades(xrp_trades, "XRPETH", "5m")
    res = run_bars(data, "sma_cross", params, cash=10.0,
                   costs=CostModel(fee_bps=10, lot_step=1.0, min_notional=0.01),
                   benchmark=False)
    assert_same(res.output.trades, float(res.output.equity[-1]), core)
    assert all(float(q).is_integer() for t in core.positions.trades for q in [t.qty])


def test_fabric_paper_run_equals_backtest_of_stored_trades(make_venue: Any, make_fabric: Any,
                                                           make_breaker: Any, make_executor: Any,
                                                           approved: Any, wait_for: Any) -> None:
    """Live paper trading on the venue's stream (through connector, normalizer, executor actor,
    breaker actor) equals a backtest of the trades the sink stored, bar for bar."""
    from spark_ray.lake import DataStore

    n = 1500
    venue = make_venue(max_trades_per_symbol=n, start_paused=True)
    bname, _ = make_breaker()
    params = {"fast": 2, "slow": 3}
    ex, _spec = make_executor(approved("sma_cross", params), venue, bname, warmup_bars=0,
                             skip_first_bar=False, close_grace_ms=None, cash=5_000.0)
    fabric = make_fabric(venue, start_ids={"trades:BTCUSDT": venue.config.first_trade_id})
    ray.get([nm.subscribe.remote(ex, "on_market_data") for nm in fabric.normalizers])
    venue.resume()
    venue.wait_for_trades("BTCUSDT", n, timeout=90)
    fabric.wait_stored({"trades:BTCUSDT": n}, timeout_s=60)
    wait_for(lambda: ray.get(ex.status.remote())["stats"].get("trades", 0) >= n, timeout=30,
             what="the executor to see every trade")
    assert ray.get(ex.drain.remote())
    st = ray.get(ex.status.remote())
    assert st["symbols"]["BTCUSDT"]["missed_trade_ids"] == 0
    fabric.stop(compact=True)

    trades = DataStore(fabric.cfg.store).trades("BTCUSDT")
    assert trades.num_rows == n
    data = bars_from_trades(trades, "BTCUSDT", "1s")
    f = SymbolFilters.from_exchange_info(
        next(s for s in _exchange_info(venue)["symbols"] if s["symbol"] == "BTCUSDT"))
    res = run_bars(data, "sma_cross", params, cash=5_000.0,
                   costs=CostModel(fee_bps=10, lot_step=f.lot_step,
                                   min_notional=f.min_notional_f), benchmark=False)
    live = ray.get(ex.trades.remote())
    assert len(live) == len(res.output.trades) > 0
    for a, b in zip(res.output.trades, live, strict=True):
        assert (a.entry_time, a.exit_time) == (b["entry_time"], b["exit_time"])
        for field in ("entry_price", "exit_price", "qty", "fees", "pnl"):
            assert getattr(a, field) == pytest.approx(b[field], rel=1e-12, abs=1e-12), field
    assert st["equity"] == pytest.approx(float(res.output.equity[-1]), rel=1e-12)
    assert st["symbols"]["BTCUSDT"]["last_bar_time"] == int(data.time[-1])
    fills = ray.get(ex.fills.remote())
    assert len(fills) == sum(1 for o in res.output.orders if o.status == "FILLED")
    assert np.all(np.diff([f["time_ms"] for f in fills]) >= 0)


def _exchange_info(venue: Any) -> dict[str, Any]:
    import json
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{venue.rest_url}/api/v3/exchangeInfo", timeout=10) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out
