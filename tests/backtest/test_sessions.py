"""The backtest on an exchange that closes (BIST, calendar XIST): no decision and no fill outside
a session, an order decided on a session's last bar fills on the next session's first bar, and
the metrics annualize with trading days; crypto (no calendar) is unchanged."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from spark_ray.backtest import run_bars
from spark_ray.backtest.data import bars_from_arrays, bars_from_store
from spark_ray.backtest.metrics import compute
from spark_ray.data.importer import import_files
from spark_ray.fills.costs import CostModel
from spark_ray.lake import DataStore
from spark_ray.samples import sample
from spark_ray.sessions import in_session, periods_per_year, sessions_per_year
from spark_ray.strategy.bars import Bar
from spark_ray.strategy.base import Strategy

from helpers import run_cli

M = 60_000
# Thursday 2 January 2025: XIST trades 10:00-18:00 Istanbul = 07:00-15:00 UTC; Friday the 3rd too.
CLOSE_1 = 1_735_830_000_000  # 2025-01-02T15:00:00Z, the first session's close
OPEN_2 = 1_735_887_600_000  # 2025-01-03T07:00:00Z, the next session's open


class Script(Strategy):
    """Runs ``plan[time](ctx, bar)`` on the bar opening at ``time``; records what it saw."""

    name = "script"

    def __init__(self, plan: dict[int, Any]) -> None:
        super().__init__()
        self.plan = plan
        self.seen: list[int] = []

    def on_bar(self, ctx: Any, bar: Bar) -> None:
        self.seen.append(bar.time)
        if bar.time in self.plan:
            self.plan[bar.time](ctx, bar)


def _two_sessions(exchange: str) -> Any:
    """The last three 1m bars of Thursday's session, three bars after its close (an export
    that kept after-hours prints, priced far off so a fill there would show), and the first
    three bars of Friday's session."""
    t = np.array([CLOSE_1 - 3 * M, CLOSE_1 - 2 * M, CLOSE_1 - M,
                  CLOSE_1, CLOSE_1 + M, CLOSE_1 + 2 * M,
                  OPEN_2, OPEN_2 + M, OPEN_2 + 2 * M], dtype=np.int64)
    o = np.array([300.0, 300.5, 301.0, 250.0, 250.0, 250.0, 305.0, 306.0, 307.0])
    h = o + 1.0
    lo = o - 1.0
    return bars_from_arrays("THYAO", "1m", t, o, h, lo, o, np.ones(len(t)), exchange=exchange)


def test_the_calendar_says_which_bars_are_in_a_session() -> None:
    data = _two_sessions("bist")
    mask = in_session("bist", "1m", data.time)
    assert mask is not None and mask.tolist() == [True] * 3 + [False] * 3 + [True] * 3
    assert in_session("binance", "1m", data.time) is None  # never closes: nothing to mask
    days = np.array([1_735_776_000_000, 1_735_948_800_000], dtype=np.int64)  # Thu 2nd, Sat 4th
    assert in_session("bist", "1d", days).tolist() == [True, False]  # type: ignore[union-attr]


def test_a_signal_on_the_sessions_last_bar_fills_at_the_next_sessions_open() -> None:
    strat = Script({CLOSE_1 - M: lambda c, b: c.buy(1.0)})
    r = run_bars(_two_sessions("bist"), strat, cash=1000.0, costs=CostModel(fee_bps=0),
                 benchmark=False)
    (order,) = r.output.orders
    assert order.status == "FILLED"
    # Filled at Friday's first bar, at its open: not at 15:00 (after the close) at 250.
    assert r.times[order.fill_i] == OPEN_2 and order.fill_price == 305.0
    # The strategy never saw a bar of the closed market, and the report counts them.
    assert CLOSE_1 not in strat.seen and len(strat.seen) == 6
    assert r.config["calendar"] == "XIST" and r.config["bars_outside_sessions"] == 3
    assert "XIST" in r.conventions["annualization"] and "XIST" in r.conventions["sessions"]


def test_limit_and_stop_orders_never_fill_on_a_closed_market() -> None:
    # A buy limit at 260 is reached only by the after-hours bars (low 249): it stays open.
    # A sell stop at 280 on the position is reached only there too: it does not trigger.
    plan = {CLOSE_1 - 3 * M: lambda c, b: c.buy(1.0),
            CLOSE_1 - M: lambda c, b: (c.buy(1.0, limit=260.0), c.sell(1.0, stop=280.0))}
    r = run_bars(_two_sessions("bist"), Script(plan), cash=1000.0,
                 costs=CostModel(fee_bps=0), benchmark=False)
    first, limit, stop = r.output.orders
    assert first.status == "FILLED" and r.times[first.fill_i] == CLOSE_1 - 2 * M
    assert limit.status == "NEW" and stop.status == "NEW"
    assert all(r.times[o.fill_i] < CLOSE_1 or r.times[o.fill_i] >= OPEN_2
               for o in r.output.orders if o.status == "FILLED")


def test_crypto_trades_every_bar_as_before() -> None:
    """No calendar: the same bars trade around the clock; the order fills on the very next
    bar (15:00 at 250), exactly as before sessions existed."""
    for exchange in ("", "binance"):
        strat = Script({CLOSE_1 - M: lambda c, b: c.buy(1.0)})
        r = run_bars(_two_sessions(exchange), strat, cash=1000.0, costs=CostModel(fee_bps=0),
                     benchmark=False)
        (order,) = r.output.orders
        assert r.times[order.fill_i] == CLOSE_1 and order.fill_price == 250.0
        assert len(strat.seen) == 9 and r.config["calendar"] is None
        assert r.metrics["periods_per_year"] == 365 * 1440
        assert r.conventions["annualization"].startswith("365 days a year, 24/7")


def test_crypto_fixture_trades_and_metrics_unchanged(tmp_path: Path) -> None:
    """The real ETH/BTC 5m sample: the exchange's name changes nothing for a venue without a
    calendar (same trades, same Sharpe as bars of unknown origin, 365-day annualization)."""
    store = DataStore(tmp_path / "lake")
    import_files(store, [sample("ETH_BTC-5m.feather")], "freqtrade")
    data = bars_from_store(store, ["ETHBTC"], "5m")
    assert data.exchange == "binance"
    a = run_bars(data, "sma_cross", {"fast": 10, "slow": 30})
    data.exchange = ""
    b = run_bars(data, "sma_cross", {"fast": 10, "slow": 30})
    assert a.metrics["trades"] == b.metrics["trades"] > 0
    assert a.metrics["sharpe"] == b.metrics["sharpe"]
    assert a.metrics["periods_per_year"] == 105_120 and a.data_fingerprint == b.data_fingerprint


def test_sharpe_annualizes_with_trading_days_worked_example() -> None:
    """Lo (2002): for IID returns the q-period Sharpe ratio is sqrt(q) times the one-period one.
    Daily returns +2%, 0, +2%, 0: mean 1%, sample std sqrt(4 * 0.01^2 / 3) = 1.1547%, daily
    Sharpe 0.866025; a year of BIST trading days (XIST, about 250) makes it
    0.866025 * sqrt(250.4) = 13.704; the 365-day crypto year would say 16.545."""
    equity = np.array([100.0, 102.0, 102.0, 104.04, 104.04])
    days = sessions_per_year("bist")
    assert 245 <= days <= 255
    per_year, words = periods_per_year("bist", "1d")
    assert per_year == days and "XIST" in words and "trading days" in words
    times = np.arange(5, dtype=np.int64) * 86_400_000
    zero = np.zeros(0)
    m = compute(equity, times, 86_400_000, zero, zero, zero, np.zeros(5, bool), 0.0, 0.0,
                per_year)
    daily = 0.01 / math.sqrt(4 * 0.01**2 / 3)
    assert daily == pytest.approx(0.8660254, rel=1e-6)
    assert m["sharpe"] == pytest.approx(daily * math.sqrt(days), rel=1e-9)
    assert m["volatility_ann"] == pytest.approx(math.sqrt(4 * 0.01**2 / 3) * math.sqrt(days))
    if days == 250.4:  # the calendar's five years 2022-2026 as exchange_calendars 4.x has them
        assert m["sharpe"] == pytest.approx(13.704, abs=5e-4)
    crypto = compute(equity, times, 86_400_000, zero, zero, zero, np.zeros(5, bool), 0.0, 0.0)
    assert crypto["sharpe"] == pytest.approx(daily * math.sqrt(365)) == pytest.approx(16.545,
                                                                                      abs=5e-4)


def test_intraday_bist_year_is_trading_days_times_session_bars() -> None:
    per_1m, words = periods_per_year("bist", "1m")
    days = sessions_per_year("bist")
    # 480 one-minute bars a full session (10:00-18:00), a few half days a year pull it down.
    assert 470 * days <= per_1m <= 480 * days
    assert "bars a session" in words
    assert periods_per_year("binance", "1m")[0] == 525_600


def test_report_and_cli_state_the_convention(tmp_path: Path) -> None:
    """A BIST lake through ``spark-ray backtest --exchange bist``: the printed summary and
    report.json say which annualization and sessions the run used."""
    t = np.concatenate([np.arange(OPEN_2 - 86_400_000, CLOSE_1, M),  # Thursday's session
                        np.arange(CLOSE_1, CLOSE_1 + 10 * M, M),  # after-hours prints
                        np.arange(OPEN_2, OPEN_2 + 480 * M, M)])  # Friday's session
    rng = np.random.default_rng(3)
    close = 300 * np.exp(np.cumsum(rng.normal(0, 0.001, len(t))))
    import pyarrow as pa

    table = pa.table({"open_time": t, "open": close, "high": close * 1.001,
                      "low": close * 0.999, "close": close, "volume": np.full(len(t), 1000.0)})
    lake = tmp_path / "lake"
    DataStore(lake).write_candles(table, "bist", "THYAO", "1m")
    res = run_cli("backtest", "--store", str(lake), "--exchange", "bist", "--symbol", "THYAO",
                  "--interval", "1m", "--strategy", "sma_cross", "--param", "fast=5",
                  "--param", "slow=20", "--no-png", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.code == 0, res.err
    assert "XIST trading calendar" in res.out and "10 bar(s) outside a session" in res.out
    report_path = next((tmp_path / "runs").rglob("report.json"))
    report = json.loads(report_path.read_text())
    assert report["config"]["bars_outside_sessions"] == 10 and report["data"]["bars"] == 960
    assert report["conventions"]["annualization"].startswith("XIST trading calendar")
    assert report["metrics"]["periods_per_year"] == periods_per_year("bist", "1m")[0]
