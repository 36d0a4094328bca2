"""The executor's plain-Python parts, without Ray: ids, filters, bars, the order state machine,
positions, the journal, the approval gate and restart from the journal."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from spark_ray.app.cli.trade import flag_errors
from spark_ray.errors import CheckFailed
from spark_ray.execution.bars import BarBuilder
from spark_ray.execution.executor import ExecutorConfig, ExecutorCore
from spark_ray.execution.filters import FilterReject, SymbolFilters, text
from spark_ray.execution.gate import LocalGate
from spark_ray.execution.ids import CID_RE, client_order_id, is_ours, strategy_key
from spark_ray.execution.journal import ExecJournal, MemoryJournal
from spark_ray.execution.orders import (
    CANCELED,
    FILLED,
    NEW,
    PARTIALLY_FILLED,
    PENDING_NEW,
    UNKNOWN,
    Fill,
    ManagedOrder,
    OrderManager,
    OrderUpdate,
)
from spark_ray.execution.paper import PaperBroker
from spark_ray.execution.params import load_approved
from spark_ray.execution.positions import Positions
from spark_ray.execution.replay import feed
from spark_ray.fills.orders import BUY, SELL
from spark_ray.strategy.builtins import SmaCross


# --- ids -------------------------------------------------------------------------------------
def test_client_order_ids_are_deterministic_and_distinct() -> None:
    k = strategy_key("executor", "sma_cross", {"fast": 2, "slow": 3})
    assert k == strategy_key("executor", "sma_cross", {"slow": 3, "fast": 2})
    assert k != strategy_key("other", "sma_cross", {"fast": 2, "slow": 3})
    assert k != strategy_key("executor", "sma_cross", {"fast": 2, "slow": 4})
    ids = {client_order_id(k, s, t, q, tag) for s in ("BTCUSDT", "ETHUSDT")
           for t in (1_795_000_000_000, 1_795_000_001_000) for q in range(12) for tag in ("", "F")}
    assert len(ids) == 2 * 2 * 12 * 2
    assert all(CID_RE.match(c) and len(c) <= 36 and is_ours(c, k) for c in ids)
    assert client_order_id(k, "BTCUSDT", 1_795_000_000_000, 3) == \
        client_order_id(k, "BTCUSDT", 1_795_000_000_000, 3)


# --- filters -----------------------------------------------------------------------------------
BTC = SymbolFilters("BTCUSDT", "BTC", "USDT", tick_size=Decimal("0.01"),
                    step_size=Decimal("0.00001"), min_qty=Decimal("0.00001"),
                    max_qty=Decimal("9000"), min_notional=Decimal("5"))


def test_filters_round_to_the_grid_and_refuse_like_the_venue() -> None:
    assert text(BTC.qty(0.1 + 0.2)) == "0.30000"  # float noise never reaches the venue
    assert text(BTC.qty(0.123456789)) == "0.12345"  # down, never more than asked
    assert text(BTC.price(60000.123, "buy", "limit")) == "60000.12"
    assert text(BTC.price(60000.121, "sell", "limit")) == "60000.13"
    assert text(BTC.quote(4995.004995004995)) == "4995.00499500"
    with pytest.raises(FilterReject, match="NOTIONAL"):
        BTC.check(BTC.qty(0.00005), 60000.0, market=True)  # 3 USDT < 5
    with pytest.raises(FilterReject, match="LOT_SIZE"):
        BTC.check(BTC.qty(0.000001), 60000.0, market=True)
    with pytest.raises(FilterReject, match="maxQty"):
        BTC.check(Decimal("9001"), 1.0, market=False)
    BTC.check(BTC.qty(0.001), 60000.0, market=True)
    info = {"symbol": "X", "baseAsset": "A", "quoteAsset": "B", "filters": [
        {"filterType": "PRICE_FILTER", "tickSize": "0.00100000"},
        {"filterType": "LOT_SIZE", "stepSize": "1.00000000", "minQty": "1.00000000",
         "maxQty": "100.00000000"},
        {"filterType": "NOTIONAL", "minNotional": "0.10000000", "applyMinToMarket": False}]}
    f = SymbolFilters.from_exchange_info(info)
    assert (f.lot_step, f.min_notional_f, f.apply_min_to_market) == (1.0, 0.1, False)
    f.check(Decimal("1"), 0.001, market=True)  # NOTIONAL does not apply to market orders here


# --- bars ----------------------------------------------------------------------------------------
def _trades(ids: list[int], t0: int = 1_000_000
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a = np.asarray(ids, np.int64)
    return (t0 + a * 300, 100.0 + a.astype(float), np.ones(len(a)), a, np.zeros(len(a), np.int64))


def test_bars_are_built_in_trade_id_order_despite_reordering() -> None:
    ids = list(range(1, 41))
    ref = BarBuilder("X", "1s")
    want = ref.add(*_trades(ids))
    live = BarBuilder("X", "1s", hole_wait_ms=1000)
    shuffled = [1, 2, 3, 5, 4, 7, 6, 6, 8, *range(10, 30), 9, *range(30, 41)]
    got = []
    for k in shuffled:
        got += live.add(*_trades([k]), arrival_wall_ms=5.0)
    assert [(b.time, b.open, b.high, b.low, b.close, b.volume) for b in got] == \
        [(b.time, b.open, b.high, b.low, b.close, b.volume) for b in want]
    assert live.duplicates == 1 and live.missed_ids == 0 and live.reordered > 0


def test_a_hole_that_never_fills_is_skipped_after_the_wait() -> None:
    live = BarBuilder("X", "1s", hole_wait_ms=500)
    assert live.add(*_trades([1, 2, 3]), arrival_wall_ms=0.0) == []
    assert live.add(*_trades(list(range(5, 12))), arrival_wall_ms=10.0) == []  # id 4 missing
    assert live.buffered == 7 and live.due(400.0) == []
    bars = live.due(600.0)  # waited long enough: skip id 4
    assert live.missed_ids == 1 and live.buffered == 0
    assert [b.time for b in bars] == [1_000_000, 1_001_000, 1_002_000]  # 11 opens the next
    late = BarBuilder("X", "1s")
    late.add(*_trades([1, 2, 3, 4]))
    late.add(*_trades([10]))
    late.add(np.array([1_000_300]), np.array([1.0]), np.array([1.0]), np.array([11]))
    assert late.late == 1  # a trade of a bar already decided on is never merged into it


def test_quiet_bar_closes_on_the_exchange_clock() -> None:
    b = BarBuilder("X", "1s", close_grace_ms=200)
    b.add(np.array([1_000_100]), np.array([5.0]), np.array([1.0]), np.array([1]),
          arrival_wall_ms=50_000.0)
    assert b.due(50_500.0) == []  # exchange clock ~1_000_600: bar [1_000_000, 1_001_000) open
    assert [x.time for x in b.due(51_200.0)] == [1_000_000]


def test_a_trade_arriving_after_its_bar_closed_on_the_timer_is_late() -> None:
    b = BarBuilder("X", "1s", close_grace_ms=200)
    b.add(np.array([1_000_100]), np.array([5.0]), np.array([1.0]), np.array([1]),
          arrival_wall_ms=50_000.0)
    assert [x.time for x in b.due(51_200.0)] == [1_000_000]  # a quiet market: closed
    # A slow hand-off delivers one more trade of that bar: it must not open it a second time.
    assert b.add(np.array([1_000_900, 1_001_100]), np.array([6.0, 7.0]), np.array([1.0, 1.0]),
                 np.array([2, 3]), arrival_wall_ms=51_300.0) == []
    assert b.late == 1 and b.cur is not None and b.cur.time == 1_001_000 and b.cur.open == 7.0


# --- orders -----------------------------------------------------------------------------------
def _mo(cid: str = "sr-x-1") -> ManagedOrder:
    return ManagedOrder(cid, "BTCUSDT", BUY, "market", 1, 0, qty=1.0)


def test_order_state_machine_moves_forward_only_and_counts_each_fill_once() -> None:
    om = OrderManager()
    o = om.add(_mo())
    with pytest.raises(KeyError):
        om.add(_mo())  # one order per intent
    assert om.apply(OrderUpdate(o.cid, UNKNOWN, reason="timeout")).status == UNKNOWN
    assert om.apply(OrderUpdate(o.cid, NEW, venue_order_id=7)).status == NEW
    f1 = Fill("t1", 100.0, 0.4, 0.0004, "BTC")
    r = om.apply(OrderUpdate(o.cid, PARTIALLY_FILLED, fill=f1), "BTC", "USDT")
    assert r.status == PARTIALLY_FILLED and r.fill == f1 and o.fee == pytest.approx(0.04)
    assert om.apply(OrderUpdate(o.cid, PARTIALLY_FILLED, fill=f1)).fill is None  # again: once
    assert om.apply(OrderUpdate(o.cid, NEW)).status is None and om.stale_updates == 1
    f2 = Fill("t2", 101.0, 0.6)
    assert om.apply(OrderUpdate(o.cid, FILLED, executed_qty=1.0, fill=f2)).status == FILLED
    assert om.apply(OrderUpdate(o.cid, CANCELED)).status is None  # terminal is final
    assert o.executed_qty == 1.0 and o.fill_price == pytest.approx(100.6)
    assert om.apply(OrderUpdate("sr-unknown", FILLED)).order is None
    assert om.counts()[FILLED] == 1 and not om.open_orders()


def test_positions_book_fills_like_the_backtest_and_base_commissions() -> None:
    p = Positions({"BTCUSDT": 1000.0})
    p.apply_fill("BTCUSDT", "buy", 0.01, 50_000.0, 0.5, "USDT", 1, base_asset="BTC",
                 quote_asset="USDT")
    s = p["BTCUSDT"]
    assert (s.cash, s.qty, s.avg) == (pytest.approx(499.5), 0.01, 50_000.0)
    t = p.apply_fill("BTCUSDT", "sell", 0.01, 51_000.0, 0.51, "USDT", 2, base_asset="BTC",
                     quote_asset="USDT")
    assert t is not None and t.pnl == pytest.approx(10.0 - 0.51 - 0.5)
    assert s.qty == 0 and s.equity() == pytest.approx(1000 + t.pnl)
    # Commission in the base asset shrinks the quantity received, not the cash.
    p.apply_fill("BTCUSDT", "buy", 0.01, 50_000.0, 0.00001, "BTC", 3, base_asset="BTC",
                 quote_asset="USDT")
    assert s.qty == pytest.approx(0.00999) and s.fees == pytest.approx(0.51 + 0.5 + 0.5)


# --- journal ------------------------------------------------------------------------------------
def test_journal_survives_a_torn_line_and_is_exclusive(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    j = ExecJournal(path)
    j.append([{"k": "intent", "order": {"cid": "a"}}, {"k": "halt", "reason": "x"}])
    with pytest.raises(ValueError):
        j.append([{"k": "bogus"}])
    with pytest.raises(RuntimeError, match="locked"):
        ExecJournal(path, lock_timeout_s=0.2)
    j.close()
    with path.open("ab") as f:
        f.write(b'{"k": "update", "upd')  # a crash mid-write
    j2 = ExecJournal(path)
    assert [r["k"] for r in j2.records] == ["intent", "halt"] and j2.skipped == 1
    j2.append([{"k": "note", "what": "after the tear"}])
    j2.close()
    assert ExecJournal(path).records[-1]["what"] == "after the tear"


# --- config -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("fields", "field"), [
    ({"cash": 0}, "cash"), ({"symbols": ()}, "symbols"), ({"symbols": ("X", "X")}, "symbols"),
    ({"interval": "7x"}, "interval"), ({"mode": "demo"}, "mode"), ({"fee_bps": -1}, "fee_bps"),
    ({"maker_fee_bps": -1}, "maker_fee_bps"), ({"slippage_bps": -1}, "slippage_bps"),
    ({"warmup_bars": -1}, "warmup_bars"), ({"max_history": 5}, "max_history"),
    ({"fee_bsp": 1}, "fee_bsp"),
])
def test_executor_config_refuses_a_bad_field_by_name(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        ExecutorConfig(**fields)
    assert [e["loc"][0] for e in info.value.errors()] == [field]
    assert flag_errors(info.value).startswith(f"--{field.replace('_', '-')}: ")


def test_executor_config_messages_and_record() -> None:
    with pytest.raises(ValidationError) as info:
        ExecutorConfig(cash=-5, interval="7x")
    msg = flag_errors(info.value)
    assert "--interval: '7x' is not a fixed bar interval; use one of 1s, 1m" in msg
    assert "--cash: Input should be greater than 0 (got -5)" in msg
    cfg = ExecutorConfig(symbols=["A", "B"], cash=100)  # type: ignore[arg-type]
    assert cfg.symbols == ("A", "B") and cfg.as_dict()["symbols"] == ["A", "B"]
    assert cfg.as_dict()["cash"] == 100.0 and cfg.costs().taker == 0.001


# --- approval -----------------------------------------------------------------------------------
def test_unapproved_or_tampered_params_are_refused_with_the_reason(approved: Any,
                                                                   tmp_path: Path) -> None:
    path = approved("sma_cross", {"fast": 2, "slow": 3})
    ap = load_approved(path)
    assert (ap.strategy, ap.params, ap.interval) == ("sma_cross", {"fast": 2, "slow": 3}, "1s")
    best = path.parent / "best.json"
    original = best.read_text()
    best.write_text(original.replace('"fast": 2', '"fast": 4'))
    with pytest.raises(CheckFailed, match=r"(?s)refusing to trade.*candidate.*modified after"):
        load_approved(path)
    best.write_text(original)
    doc = json.loads(path.read_text())
    doc["params"] = {"fast": 1, "slow": 30}
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckFailed, match=r"edited after it was signed"):
        load_approved(path)  # the params in approved.json changed: the signature breaks
    doc.pop("signature")
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckFailed, match=r"(?s)refusing to trade.*unsigned approval"):
        load_approved(path)
    with pytest.raises(Exception, match="not found"):
        load_approved(tmp_path / "nope.json")


# --- restart from the journal (paper) -----------------------------------------------------------
def _core(journal: Any) -> ExecutorCore:
    cfg = ExecutorConfig(name="t", symbols=("X",), interval="1s", cash=1000.0,
                         close_grace_ms=None, hole_wait_ms=None, skip_first_bar=False,
                         warmup_bars=0)
    return ExecutorCore(cfg, SmaCross, {"fast": 2, "slow": 3},
                        PaperBroker({"X": 1000.0}, cfg.costs()), journal, LocalGate())


def test_restart_replays_the_journal_to_the_same_book(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 3000
    ids = np.arange(1, n + 1)
    price = 100 + np.cumsum(rng.normal(0, 0.3, n))
    cols = (1_795_000_000_000 + ids * 150, price, np.full(n, 0.5), ids, np.zeros(n, np.int64))
    path = tmp_path / "j.jsonl"
    first = _core(ExecJournal(path))
    half = tuple(c[: n // 2] for c in cols)

    async def run(core: ExecutorCore, part: tuple[np.ndarray, ...]) -> None:
        await core.start()
        await feed(core, "X", part, 97)  # type: ignore[arg-type]

    asyncio.run(run(first, half))
    assert first.positions.trades and first.om.orders
    booked = ("qty", "avg_price", "cash", "realized_pnl", "fees", "turnover", "fills")
    snap = {k: first.positions.snapshot()["X"][k] for k in booked}  # the mark is market data
    orders = {c: (o.status, o.executed_qty) for c, o in first.om.orders.items()}
    first.journal.close()
    second = _core(ExecJournal(path))  # "after the crash"
    asyncio.run(second.start())
    assert {k: second.positions.snapshot()["X"][k] for k in booked} == snap
    assert [t.as_dict() for t in second.positions.trades] == \
        [t.as_dict() for t in first.positions.trades]
    assert {c: (o.status, o.executed_qty) for c, o in second.om.orders.items()} == orders
    assert second.recon["not_at_venue"] == [o for o, (s, _) in orders.items()
                                            if s in (PENDING_NEW, UNKNOWN, NEW)]
    mem = MemoryJournal()
    asyncio.run(run(_core(mem), cols))
    assert any(r["k"] == "start" for r in mem.records)
    assert all(o.side in (BUY, SELL) for o in second.om.orders.values())


class _TripsWhileAnswering(LocalGate):
    """The breaker says "yes" to the first entry and trips before that answer is read: the trip
    notice reaches the executor first (it is pushed while the answer is awaited)."""

    executor: ExecutorCore | None = None
    answered = 0

    async def allow(self, orders: list[Any], signals: Any = ()) -> list[Any]:
        answers = await super().allow(orders, signals)
        self.answered += 1
        if self.answered == 1 and self.executor is not None:
            assert all(d.allowed for d in answers)
            self.core.trip("incident while answering", "tester")
            asyncio.get_running_loop().create_task(
                self.executor.on_trip({"rule": "manual", "reason": "incident", "scope": "global"}))
            await asyncio.sleep(0)  # the notice runs up to the executor's lock
        return answers


def test_a_yes_answered_before_a_trip_heard_since_is_asked_again() -> None:
    cfg = ExecutorConfig(name="t", symbols=("X",), interval="1s", cash=1000.0,
                         close_grace_ms=None, hole_wait_ms=None, skip_first_bar=False,
                         warmup_bars=0)
    gate = _TripsWhileAnswering()
    core = ExecutorCore(cfg, SmaCross, {"fast": 2, "slow": 3},
                        PaperBroker({"X": 1000.0}, cfg.costs()), MemoryJournal(), gate)
    gate.executor = core
    n = 600
    ids = np.arange(1, n + 1)
    price = 100 + 5 * np.sin(ids / 40)
    cols = (1_795_000_000_000 + ids * 150, price, np.full(n, 0.5), ids, np.zeros(n, np.int64))

    async def run() -> None:
        await core.start()
        await feed(core, "X", cols, 97)  # type: ignore[arg-type]
        await asyncio.sleep(0.05)  # the trip notice finishes

    asyncio.run(run())
    first = next(iter(core.om.orders.values()))
    assert first.status == "REJECTED" and "breaker:" in first.reason, first
    assert core.stats["submitted"] == 0  # nothing reached the broker after the trip
    assert gate.answered >= 2 and core.stats["reasked_after_trip"] == 1
    assert core.trips and core.trips[0]["canceled"] == 0  # the notice was handled
