"""Signals live equal signals in research: the engine fed trade by trade in batches gives the
batch path's values; bars carry the value at their last trade; and the fusion strategy trades
the same in a backtest and in the executor core (paper, signals arriving as the signal actor
publishes them). Real recorded Binance trades (XRP/ETH), a real LightGBM model."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from spark_ray.backtest import run_bars
from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.models import BreakerConfig
from spark_ray.data.readers import read_freqtrade_trades
from spark_ray.execution.bars import BarHistory, bars_from_trades
from spark_ray.execution.gate import LocalGate
from spark_ray.execution.replay import paper_replay
from spark_ray.fills.costs import CostModel
from spark_ray.samples import sample
from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS
from spark_ray.signals.live import (
    SCORE,
    SignalBook,
    SignalCore,
    SignalEngine,
    attach,
    bar_values,
    score_trades,
)
from spark_ray.signals.train import build, fit
from spark_ray.strategy.bars import SIGNALS
from spark_ray.strategy.builtins import SignalFusion

FEATURES = [s.name for s in TRADE_SIGNALS]
OPEN_RULES = {"order_rate": {"enabled": False}, "max_drawdown": {"enabled": False},
              "daily_loss": {"enabled": False}, "consecutive_losses": {"enabled": False},
              "max_notional": {"default": 1e12}, "max_total_notional": {"limit": 1e13}}


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return read_freqtrade_trades(sample("XRP_ETH-trades.json.gz")).sort_by("trade_id")


@pytest.fixture(scope="module")
def model(trades: Trades) -> Any:
    ts = build(trades, list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    return fit("gbm", ts.X, ts.y, seed=0)


def _predict(model: Any) -> Any:
    return lambda X: model.predict_proba(X)[:, 1]


def test_engine_fed_in_batches_equals_the_batch_path(table: pa.Table, model: Any) -> None:
    t = Trades.from_table(table)
    ids = table.column("trade_id").to_numpy()
    batch = score_trades(t, FEATURES, _predict(model))
    engine = SignalEngine(FEATURES, _predict(model))
    rng = np.random.default_rng(7)
    got: dict[str, list[np.ndarray]] = {k: [] for k in batch}
    lo = 0
    while lo < len(ids):
        hi = lo + int(rng.integers(1, 400))
        sl = slice(lo, hi)
        out = engine.update("XRPETH", Trades(t.time[sl], t.price[sl], t.qty[sl], t.side[sl]),
                            ids[sl])
        assert out.trade_id.tolist() == ids[sl].tolist()
        for k, v in out.values.items():
            got[k].append(v)
        lo = hi
    scored = 0
    for k, want in batch.items():
        live = np.concatenate(got[k])
        assert np.array_equal(np.isnan(live), np.isnan(want)), k
        ok = ~np.isnan(want)
        assert np.max(np.abs(live[ok] - want[ok])) <= 1e-9, k
        scored = int(ok.sum()) if k == SCORE else scored
    assert scored > len(ids) - 100  # every trade is scored once the features are warm


def test_a_bar_carries_the_value_at_its_last_trade() -> None:
    times = np.array([0, 10, 59_999, 60_000, 130_000, 150_000])
    vals = {"x": np.arange(6.0)}
    out = bar_values(times, vals, np.array([0, 60_000, 120_000, 180_000]), 60_000)
    assert out["x"][:3].tolist() == [2.0, 3.0, 5.0]
    assert out["x"][3] == 5.0  # a later bar without trades would still see the last value


def test_the_book_answers_as_of_a_trade_id_and_waits_for_late_signals() -> None:
    book = SignalBook()
    book.add({"symbol": "A", "trade_id": np.array([5, 6, 7]), "time": np.zeros(3),
              "values": {SCORE: np.array([0.1, 0.2, 0.3])}})
    assert book.asof("A", 6) == {SCORE: 0.2}
    assert book.asof("A", 100) == {SCORE: 0.3}
    assert book.asof("A", 4) == {} and book.asof("B", 6) == {}

    async def scenario() -> tuple[bool, bool, dict[str, float]]:
        late = asyncio.get_running_loop().call_later(0.05, book.add, {
            "symbol": "A", "trade_id": np.array([8, 9]), "time": np.zeros(2),
            "values": {SCORE: np.array([0.4, 0.5])}})
        waited = await book.wait("A", 9, 2.0)
        timed_out = await book.wait("A", 10, 0.05)
        late.cancel()
        return waited, timed_out, book.asof("A", 9)

    waited, timed_out, value = asyncio.run(scenario())
    assert waited and not timed_out and value == {SCORE: 0.5}


def test_the_book_puts_overtaking_messages_back_in_order_and_stays_bounded() -> None:
    """Ray may run an async actor's calls out of order: a batch that overtakes an earlier one
    must not answer for the earlier one's trades (as-of would return a stale value while the
    wait saw a later id), so it waits until the gap fills."""
    book = SignalBook(keep_rows=4)

    def msg(seq: int, ids: list[int]) -> dict[str, Any]:
        return {"symbol": "A", "seq": seq, "trade_id": np.array(ids), "time": np.zeros(len(ids)),
                "values": {SCORE: np.array([i / 100 for i in ids])}}

    book.add(msg(0, [1, 2]))
    book.add(msg(2, [5, 6]))  # overtook seq 1
    assert book.last_id("A") == 2 and book.reordered == 1
    assert book.asof("A", 6) == {SCORE: 0.02}  # nothing past the gap answers yet
    book.add(msg(1, [3, 4]))
    assert book.last_id("A") == 6
    assert book.asof("A", 4) == {SCORE: 0.04} and book.asof("A", 6) == {SCORE: 0.06}
    book.add(msg(1, [3, 4]))  # a redelivery changes nothing
    book.add(msg(3, [7, 8]))
    assert book.asof("A", 8) == {SCORE: 0.08} and book.asof("A", 2) == {}  # oldest dropped
    assert book.received == 8


def test_bar_history_keeps_signals_aligned_through_growth_and_trimming() -> None:
    h = BarHistory("A", "1m", max_bars=40, capacity=4)
    for i in range(100):
        extra = {SCORE: float(i)} if i % 3 else None  # some bars without a signal
        h.append(i * 60_000, 1, 1, 1, 1, 1, extra)
    d = h.data()
    p = d.extra[SIGNALS]["A"][SCORE]
    assert len(p) == len(d) < 100  # the oldest bars were dropped, their signals with them
    i = d.time // 60_000
    assert np.array_equal(np.isnan(p), i % 3 == 0)
    assert np.array_equal(p[i % 3 != 0], i[i % 3 != 0].astype(float))
    w = d.window(5, 10)
    assert np.array_equal(w.extra[SIGNALS]["A"][SCORE], p[5:10], equal_nan=True)


def test_fusion_needs_signals_beside_the_bars(table: pa.Table) -> None:
    data = bars_from_trades(table, "XRPETH", "1m")
    with pytest.raises(ValueError, match="--signals-model"):
        SignalFusion().init(data)


@pytest.mark.parametrize("params", [{"enter": 0.55, "exit": 0.5},
                                    {"enter": 0.5, "exit": 0.45,
                                     "confirm": "flow_imbalance_60000ms", "confirm_min": 0.0}])
def test_fusion_trades_the_same_in_paper_and_in_a_backtest(table: pa.Table, model: Any,
                                                           params: dict[str, Any]) -> None:
    """The executor core, fed the trades in batches with the signals published per batch,
    makes exactly the backtest's trades on bars whose signals came from the batch path."""
    gate = LocalGate(CircuitBreaker(BreakerConfig.model_validate(OPEN_RULES)))
    core = paper_replay(table, "XRPETH", "1m", SignalFusion, params, fee_bps=10,
                        gate=gate, engine=SignalEngine(FEATURES, _predict(model)))
    data = bars_from_trades(table, "XRPETH", "1m")
    attach(data, "XRPETH", Trades.from_table(table), FEATURES, _predict(model))
    res = run_bars(data, "signal_fusion", params, costs=CostModel(fee_bps=10), benchmark=False)
    live = core.positions.trades
    assert len(res.output.trades) == len(live) > 3
    for a, b in zip(res.output.trades, live, strict=True):
        assert (a.entry_time, a.exit_time) == (b.entry_time, b.exit_time)
        assert a.pnl == pytest.approx(b.pnl, rel=1e-9, abs=1e-12)
    # Every bar decided on the signal of its own last trade (none went stale).
    stats = core.status()["stats"]
    assert stats["signal_bars"] == len(data) and stats.get("stale_signal_bars", 0) == 0
    hist = core.runners["XRPETH"].history.data().extra[SIGNALS]["XRPETH"][SCORE]
    want = data.extra[SIGNALS]["XRPETH"][SCORE]
    assert len(hist) == len(want)
    assert np.array_equal(np.isnan(hist), np.isnan(want))
    ok = ~np.isnan(want)
    assert ok.sum() > len(want) - 20 and np.max(np.abs(hist[ok] - want[ok])) <= 1e-9


def test_the_core_accounts_latency_counts_and_staleness(table: pa.Table, model: Any) -> None:
    core = SignalCore(FEATURES, _predict(model), symbols=["XRPETH"])
    part = table.slice(0, 300)
    recv = pa.array(np.full(300, 1_000, dtype=np.int64)).cast(pa.timestamp("ms", tz="UTC"))
    part = part.append_column("recv_time", recv)

    def named(sym: str) -> pa.Table:
        return part.append_column("symbol", pa.array([sym] * 300))

    out = core.on_trades(pa.concat_tables([named("XRPETH"), named("OTHER")]))
    assert [s.symbol for s, _ in out] == ["XRPETH"]  # not ours: ignored
    scored, r = out[0]
    core.published_now(scored, r, now_ms=1_003.5)
    st = core.status(now_ms=3_000)
    assert st["published"] == {"XRPETH": 300}
    assert st["latency_ms"]["n"] == 300 and st["latency_ms"]["p99_ms"] == 3.5
    assert st["staleness_s"] == {"XRPETH": 2.0}
    assert len(core.drain_latencies()) == 300 and len(core.drain_latencies()) == 0


def test_the_core_takes_trades_in_id_order_whatever_order_batches_arrive(
        table: pa.Table, model: Any) -> None:
    """Ray may run an async actor's calls out of order: batches shuffled in arrival still give
    the batch path's signals (features depend on trade order), duplicates are dropped, and a
    hole that never fills is skipped after hole_wait_ms, counted."""
    part = table.slice(0, 2_000)
    part = part.append_column("recv_time", pa.array(np.zeros(2_000, np.int64)).cast(
        pa.timestamp("ms", tz="UTC"))).append_column("symbol", pa.array(["XRPETH"] * 2_000))
    want = score_trades(Trades.from_table(part), FEATURES, _predict(model))
    chunks = [part.slice(i, 100) for i in range(0, 2_000, 100)]
    order = [0, 2, 1, 3, 5, 4, 4, *range(6, 20)]  # two overtakes and a redelivery
    core = SignalCore(FEATURES, _predict(model), hole_wait_ms=1_000)
    got: list[Any] = []
    for now, i in enumerate(order):
        got += core.on_trades(chunks[i], now_ms=float(now))
    ids = np.concatenate([s.trade_id for s, _ in got])
    assert ids.tolist() == part.column("trade_id").to_pylist()
    for k, v in want.items():
        live = np.concatenate([s.values[k] for s, _ in got])
        ok = ~np.isnan(v)
        assert np.array_equal(np.isnan(live), ~ok) and np.max(np.abs(live[ok] - v[ok])) <= 1e-9
    st = core.status(now_ms=0)
    assert st["reordered"] == 200 and st["duplicates"] == 100 and st["skipped_ids"] == 0

    lost = SignalCore(FEATURES, _predict(model), hole_wait_ms=1_000)
    lost.on_trades(chunks[0], now_ms=0)
    assert lost.on_trades(chunks[2], now_ms=10) == []  # waits for chunk 1
    assert lost.due(now_ms=500) == []
    (late, _), = lost.due(now_ms=1_010)  # chunk 1 never came: skipped
    assert late.trade_id.tolist() == chunks[2].column("trade_id").to_pylist()
    assert lost.status(now_ms=0)["skipped_ids"] == 100
