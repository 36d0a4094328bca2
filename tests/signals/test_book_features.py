"""Order-book signals: the papers' worked examples, the as-of rule, and the live book history
plus in-order payloads equal to the batch as-of join, whatever order Ray delivers them in."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from spark_ray.lake import DataStore
from spark_ray.schemas import BOOK_SCHEMA, TRADE_SCHEMA
from spark_ray.signals.features import (
    BookImbalance,
    MicropriceDeviation,
    QuotedSpread,
    TopDepth,
    Trades,
    asof_book,
    book_arrays,
)
from spark_ray.signals.live import BookHistory, SignalCore, score_trades
from spark_ray.signals.source import NoBook, load_trades
from spark_ray.streams.fanout import Fanout, InOrder

from helpers import run_cli

BOOK_FEATURES = ["book_imbalance", "microprice_deviation", "spread_bps", "top_depth_quote"]


def _one(bid: float, bid_qty: float, ask: float, ask_qty: float, price: float) -> Trades:
    return Trades(np.array([1]), np.array([price]), np.array([1.0]), np.array([1]),
                  np.array([[bid, bid_qty, ask, ask_qty]]))


def test_worked_examples_of_the_papers() -> None:
    t = _one(100.0, 3.0, 101.0, 1.0, 101.0)
    # Gould & Bonart (2016) eq. (3): (3 - 1) / (3 + 1)
    assert BookImbalance().batch(t)[0] == pytest.approx(0.5)
    # Stoikov (2018): I = 3/4, micro-price = mid + spread * (I - 1/2) = 100.5 + 0.25
    assert MicropriceDeviation().batch(t)[0] == pytest.approx(101.0 / 100.75 - 1.0, abs=1e-15)
    assert QuotedSpread().batch(t)[0] == pytest.approx(1.0 / 100.5 * 1e4)
    assert TopDepth().batch(t)[0] == pytest.approx(100.0 * 3 + 101.0 * 1)


def test_no_book_is_a_clear_error() -> None:
    t = Trades(np.array([1]), np.array([1.0]), np.array([1.0]), np.array([1]))
    with pytest.raises(ValueError, match="book_imbalance: needs the order book"):
        BookImbalance().batch(t)


def test_the_book_in_force_is_the_last_received_strictly_before_the_trade() -> None:
    book_recv = np.array([10, 20, 20, 30])
    ids = np.array([1, 3, 2, 4])  # two rows at 20 ms: the greater id is the later one
    vals = np.arange(16, dtype=float).reshape(4, 4)
    got = asof_book(np.array([5, 10, 11, 20, 21, 31, 0]), book_recv, ids, vals)
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all()  # nothing before; 10 is not < 10
    assert got[2].tolist() == vals[0].tolist()
    assert got[3].tolist() == vals[0].tolist()  # the 20 ms rows are not strictly before 20
    assert got[4].tolist() == vals[1].tolist()  # id 3 beats id 2 at 20 ms
    assert got[5].tolist() == vals[3].tolist()
    assert np.isnan(got[6]).all()  # no receive time: unknown


def _stream(n_trades: int = 3000, seed: int = 3, step_ms: int = 3) -> tuple[pa.Table, pa.Table]:
    """A symbol's trades and bookTicker rows interleaved in receive time, as a normalizer
    emits them (several rows per millisecond, a stale id now and then)."""
    rng = np.random.default_rng(seed)
    recv = np.cumsum(rng.integers(0, step_ms, n_trades)) + 1_700_000_000_000
    price = 100 + np.cumsum(rng.normal(0, 0.01, n_trades))
    trades = pa.table({
        "exchange": ["binance"] * n_trades, "symbol": ["BTCUSDT"] * n_trades,
        "trade_id": np.arange(n_trades, dtype=np.int64), "price": price,
        "qty": rng.uniform(0.01, 1, n_trades), "is_buyer_maker": rng.random(n_trades) < 0.5,
        "trade_time": pa.array(recv - 5, pa.timestamp("ms", tz="UTC")),
        "event_time": pa.array(recv - 5, pa.timestamp("ms", tz="UTC")),
        "recv_time": pa.array(recv, pa.timestamp("ms", tz="UTC")),
        "stored_time": pa.array(recv, pa.timestamp("ms", tz="UTC"))}, schema=TRADE_SCHEMA)
    m = 2 * n_trades
    brecv = np.sort(rng.choice(recv, m)) + rng.integers(-1, 2, m)
    uid = np.arange(m, dtype=np.int64) * 10
    uid[rng.random(m) < 0.02] -= 25  # an older update arriving late: the sink drops it
    mid = np.interp(brecv, recv, price)
    book = pa.table({
        "exchange": ["binance"] * m, "symbol": ["BTCUSDT"] * m, "source": ["bookTicker"] * m,
        "update_id": uid, "bid_price": mid - 0.01, "bid_qty": rng.uniform(0.1, 5, m),
        "ask_price": mid + 0.01, "ask_qty": rng.uniform(0.1, 5, m),
        "event_time": pa.nulls(m, pa.timestamp("ms", tz="UTC")),
        "recv_time": pa.array(brecv, pa.timestamp("ms", tz="UTC"))}, schema=BOOK_SCHEMA)
    return trades, book


def _sink_kept(book: pa.Table) -> pa.Table:
    """The rows the lake's sink keeps: an update id above the last stored of its source."""
    ids = book.column("update_id").to_numpy()
    keep, last = np.zeros(len(ids), bool), -1
    for i, u in enumerate(ids):
        if u > last:
            keep[i], last = True, int(u)
    return book.filter(pa.array(keep))


def _payloads(trades: pa.Table, book: pa.Table, parts: int) -> list[dict]:
    """Both streams cut into ``parts`` receive-time slices, numbered by a real Fanout."""
    sent: list[dict] = []
    fan = Fanout(lambda sub, p: sent.append(p) or len(sent), lambda ref: True)
    fan.add("signals", "on_market_data")
    tr = trades.column("recv_time").cast(pa.int64()).to_numpy()
    br = book.column("recv_time").cast(pa.int64()).to_numpy()
    edges = np.linspace(min(tr[0], br[0]), max(tr[-1], br[-1]) + 1, parts + 1).astype(np.int64)
    bi = np.searchsorted(br, edges)  # book rows ordered by arrival (their position)
    ti = np.searchsorted(tr, edges)
    for k in range(parts):
        fan.publish({"trades": {"trades": trades.slice(ti[k], ti[k + 1] - ti[k])},
                     "book": book.slice(bi[k], bi[k + 1] - bi[k])})
    return sent


def _live(payloads: list[dict], features: list[str]) -> dict[str, np.ndarray]:
    core = SignalCore(features, None, ["BTCUSDT"])
    got: dict[int, dict[str, float]] = {}
    for p in payloads:
        for scored, _ in core.on_payload(p, 0.0):
            for i, tid in enumerate(scored.trade_id.tolist()):
                got[tid] = {k: float(v[i]) for k, v in scored.values.items()}
    assert core.payloads.held == 0 and core.payloads.skipped == 0
    ids = sorted(got)
    return {k: np.array([got[i][k] for i in ids]) for k in got[ids[0]]}


@pytest.mark.parametrize("shuffle", [False, True])
def test_live_book_signals_equal_the_batch_asof_join(shuffle: bool) -> None:
    trades, book = _stream()
    features = [*BOOK_FEATURES, "signed_volume_1000ms"]
    payloads = _payloads(trades, book.sort_by([("recv_time", "ascending")]), parts=150)
    if shuffle:  # Ray may run an async actor's calls out of order; a redelivery too
        random.Random(1).shuffle(payloads)
        payloads.append(payloads[7])
    live = _live(payloads, features)
    kept = _sink_kept(book.sort_by([("recv_time", "ascending")]))
    batch = score_trades(Trades.from_table(trades).with_book(asof_book(
        trades.column("recv_time").cast(pa.int64()).to_numpy(), *book_arrays(kept))),
        features, None)
    for name in features:
        assert np.array_equal(live[name], batch[name], equal_nan=True), name
    assert np.isfinite(batch["book_imbalance"]).mean() > 0.9


def test_book_history_keeps_the_row_in_force_past_its_horizon() -> None:
    h = BookHistory(keep_ms=100)
    h.add(np.array(["bookTicker"]), np.array([0]), np.array([1]), np.ones((1, 4)))
    h.add(np.array(["bookTicker"] * 2), np.array([500, 1000]), np.array([2, 3]),
          np.full((2, 4), 2.0))
    assert h.asof(np.array([600]))[0].tolist() == [2.0] * 4  # 500 kept: in force at 1000-100
    assert len(h) == 2


def test_in_order_skips_a_gap_that_never_fills_after_the_wait() -> None:
    order = InOrder(wait_ms=1000)
    p = [{"order": ["e", i], "n": i} for i in range(4)]
    assert [x["n"] for x in order.push(p[0], 0)] == [0]
    assert order.push(p[2], 10) == [] and order.push(p[3], 20) == []
    assert order.due(500) == []
    assert [x["n"] for x in order.due(1010)] == [2, 3]
    assert order.skipped == 1 and order.push(p[1], 1100) == [] and order.redelivered == 1
    assert order.push({"n": "plain"}, 0) == [{"n": "plain"}]  # unnumbered: straight through


def test_order_book_signals_over_a_lake_without_a_book(tmp_path: Path) -> None:
    trades, _ = _stream(200)
    store = DataStore(tmp_path / "lake")
    store.write_trades(trades, "binance", "BTCUSDT")
    with pytest.raises(NoBook, match="book_imbalance: order-book signals need the book of "
                                     "BTCUSDT"):
        load_trades(store, "BTCUSDT", "binance", ["book_imbalance"])
    r = run_cli("signals", "study", "--store", str(tmp_path / "lake"), "--symbol", "BTCUSDT",
                "--signals", "book_imbalance", "--out", str(tmp_path / "study"))
    assert r.code == 2 and "--signals: book_imbalance: order-book signals need" in r.err
