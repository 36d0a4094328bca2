"""Order-book signals: the papers' worked examples, the as-of rule, and the live book history
plus in-order payloads equal to the batch as-of join, whatever order Ray delivers them in."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from spark_ray.inorder import InOrder
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
from spark_ray.streams.fanout import Fanout

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
    uid[rng.random(m) < 0.02] -= 25  # an older update arriving late: kept, it is new
    uid[rng.random(m) < 0.02] = 0  # repeats of one id: the first is kept
    mid = np.interp(brecv, recv, price)
    book = pa.table({
        "exchange": ["binance"] * m, "symbol": ["BTCUSDT"] * m, "source": ["bookTicker"] * m,
        "update_id": uid, "bid_price": mid - 0.01, "bid_qty": rng.uniform(0.1, 5, m),
        "ask_price": mid + 0.01, "ask_qty": rng.uniform(0.1, 5, m),
        "event_time": pa.nulls(m, pa.timestamp("ms", tz="UTC")),
        "recv_time": pa.array(brecv, pa.timestamp("ms", tz="UTC"))}, schema=BOOK_SCHEMA)
    return trades, book


def _sink_kept(book: pa.Table) -> pa.Table:
    """The rows the lake's sink keeps (spark_ray.recent_ids): the first of each update id."""
    ids = book.column("update_id").to_numpy()
    _, first = np.unique(ids, return_index=True)
    keep = np.zeros(len(ids), bool)
    keep[first] = True
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
    with pytest.raises(NoBook, match="book_imbalance: no book of BTCUSDT on binance"):
        load_trades(store, "BTCUSDT", "binance", ["book_imbalance"])
    r = run_cli("signals", "study", "--store", str(tmp_path / "lake"), "--symbol", "BTCUSDT",
                "--signals", "book_imbalance", "--out", str(tmp_path / "study"))
    assert r.code == 2 and "--signals: book_imbalance: no book of BTCUSDT on binance" in r.err
    r = run_cli("signals", "features", "--store", str(tmp_path / "lake"), "--symbols", "BTCUSDT",
                "--signals", "book_imbalance", "--out", str(tmp_path / "features"))
    assert r.code == 2 and "--signals: book_imbalance: no book of BTCUSDT on binance" in r.err


def _reference_book(trades: pa.Table, seed: int = 5, exchange: str = "btcturk") -> pa.Table:
    """The same symbol's top of book on another exchange, a little off this one's prices and
    running a second past its last trade (so its stream catches up with every trade)."""
    rng = np.random.default_rng(seed)
    tr = trades.column("recv_time").cast(pa.int64()).to_numpy()
    m = len(tr)
    recv = np.sort(rng.integers(int(tr[0]) - 50, int(tr[-1]) + 1000, m))
    mid = np.interp(recv, tr, trades.column("price").to_numpy()) * (1 + rng.normal(0, 1e-3, m))
    return pa.table({
        "exchange": [exchange] * m, "symbol": ["BTCUSDT"] * m, "source": ["ticker"] * m,
        "update_id": np.arange(m, dtype=np.int64), "bid_price": mid - 0.02,
        "bid_qty": np.ones(m), "ask_price": mid + 0.02, "ask_qty": np.ones(m),
        "event_time": pa.nulls(m, pa.timestamp("ms", tz="UTC")),
        "recv_time": pa.array(recv, pa.timestamp("ms", tz="UTC"))}, schema=BOOK_SCHEMA)


def _book_payloads(book: pa.Table, parts: int) -> list[dict]:
    sent: list[dict] = []
    fan = Fanout(lambda sub, p: sent.append(p) or len(sent), lambda ref: True)
    fan.add("signals", "on_market_data")
    for chunk in np.array_split(np.arange(book.num_rows), parts):
        fan.publish({"trades": {}, "book": book.take(pa.array(chunk))})
    return sent


def test_cross_exchange_spread_waits_for_the_reference_stream_and_equals_batch() -> None:
    trades, book = _stream()
    book = book.sort_by([("recv_time", "ascending")])
    ref = _reference_book(trades)
    features = ["xvenue_spread_bps_btcturk", "book_imbalance", "ema_deviation_50"]
    own, other = _payloads(trades, book, parts=120), _book_payloads(ref, parts=80)
    rng = random.Random(2)
    mixed = own + other
    rng.shuffle(mixed)
    # the reference stream mostly behind: its payloads pushed towards the end
    mixed.sort(key=lambda p: rng.random() + (0.6 if p["book"] is not None and
                                             p["book"].num_rows and
                                             p["book"].column("exchange")[0].as_py() ==
                                             "btcturk" else 0.0))
    core = SignalCore(features, None, ["BTCUSDT"])
    got: dict[int, dict[str, float]] = {}
    for p in mixed:
        for scored, _ in core.on_payload(p, 0.0):
            for i, tid in enumerate(scored.trade_id.tolist()):
                got[tid] = {k: float(v[i]) for k, v in scored.values.items()}
    assert core.ref_late == 0 and core.status(0)["ref_waiting"] == 0
    assert sorted(got) == trades.column("trade_id").to_pylist()
    recv = trades.column("recv_time").cast(pa.int64()).to_numpy()
    t = Trades.from_table(trades).with_book(asof_book(recv, *book_arrays(_sink_kept(book))))
    t = t.with_ref("btcturk", asof_book(recv, *book_arrays(ref)))
    batch = score_trades(t, features, None)
    for name in features:
        live = np.array([got[i][name] for i in sorted(got)])
        assert np.array_equal(live, batch[name], equal_nan=True), name
    assert np.isfinite(batch["xvenue_spread_bps_btcturk"]).mean() > 0.9


def test_a_silent_reference_holds_trades_only_ref_wait_ms_then_counts_them_late() -> None:
    trades, _ = _stream(100)
    core = SignalCore(["xvenue_spread_bps_btcturk"], None, ["BTCUSDT"], ref_wait_ms=250)
    assert core.on_payload({"trades": {"trades": trades}, "book": None}, 1000.0) == []
    assert core.due(1100.0) == []
    out = core.due(1250.0)
    assert sum(len(s.trade_id) for s, _ in out) == 100 and core.ref_late == 100
    assert np.isnan(out[0][0].values["xvenue_spread_bps_btcturk"]).all()  # no reference book


def test_cross_exchange_inventory_and_a_lake_without_the_reference(tmp_path: Path) -> None:
    from spark_ray.signals.inventory import INVENTORY, signal

    # Listed once as a template, named per reference exchange when used.
    assert [s.name for s in INVENTORY if s.family == "cross-exchange"] == [
        "xvenue_spread_bps_<exchange>"]
    assert signal("xvenue_spread_bps_btcturk").feature.reference == "btcturk"  # type: ignore[attr-defined]
    with pytest.raises(KeyError, match="is a template: name the reference exchange"):
        signal("xvenue_spread_bps_<exchange>")
    trades, _ = _stream(200)
    store = DataStore(tmp_path / "lake")
    store.write_trades(trades, "binance", "BTCUSDT")
    with pytest.raises(NoBook, match="xvenue_spread_bps_btcturk: no book of BTCUSDT on btcturk"):
        load_trades(store, "BTCUSDT", "binance", ["xvenue_spread_bps_btcturk"])
    with pytest.raises(NoBook, match="the reference exchange is the trades' own"):
        load_trades(store, "BTCUSDT", "binance", ["xvenue_spread_bps_binance"])


def test_a_new_subscriber_gets_the_book_in_force_first() -> None:
    trades, book = _stream(50)
    sent: list[dict] = []
    fan = Fanout(lambda sub, p: sent.append(p) or len(sent), lambda ref: True)
    fan.add("signals", "on_market_data")
    fan.prime(fan.subs[-1], {"trades": {}, "book": book.slice(0, 1)})
    fan.publish({"trades": {"trades": trades}, "book": book.slice(1, 3)})
    assert len(sent) == 1 and sent[0]["order"][1] == 0
    assert sent[0]["book"].column("update_id").to_pylist() == \
        book.column("update_id").to_pylist()[:4]


@pytest.mark.parametrize("name", [*BOOK_FEATURES, "xvenue_spread_bps_btcturk"])
def test_no_book_feature_reads_a_later_book_row_or_trade(name: str) -> None:
    """Cut at a receive time T: every book row received at or after T (own and reference) and
    every later trade replaced by noise; values of the trades received up to T are unchanged
    (a row received in T's own millisecond is not known at a trade received then)."""
    from spark_ray.signals.inventory import signal

    trades, book = _stream()
    ref = _reference_book(trades)
    feature = signal(name).feature
    recv = trades.column("recv_time").cast(pa.int64()).to_numpy()

    def values(own: pa.Table, other: pa.Table, t: Trades) -> np.ndarray:
        t = t.with_book(asof_book(recv, *book_arrays(own)))
        return feature.batch(t.with_ref("btcturk", asof_book(recv, *book_arrays(other))))

    base = Trades.from_table(trades)
    full = values(book, ref, base)
    rng = np.random.default_rng(11)

    def noisy(b: pa.Table, cut: int) -> pa.Table:
        late = b.column("recv_time").cast(pa.int64()).to_numpy() >= cut
        cols = {c: b.column(c) for c in b.column_names}
        for c in ("bid_price", "bid_qty", "ask_price", "ask_qty"):
            v = b.column(c).to_numpy().copy()
            v[late] *= rng.uniform(0.5, 1.5, int(late.sum()))
            cols[c] = pa.array(v)
        return pa.table(cols, schema=BOOK_SCHEMA)

    for cut in rng.choice(recv[100:-100], 20):
        later = Trades(base.time, base.price.copy(), base.qty, base.side)
        later.price[recv > cut] *= 1.1
        known = recv <= cut
        got = values(noisy(book, int(cut)), noisy(ref, int(cut)), later)
        np.testing.assert_array_equal(full[known], got[known])
        assert not np.array_equal(full[~known], got[~known], equal_nan=True)  # noise bites


def test_a_trade_repaired_over_rest_waits_for_its_own_stream() -> None:
    """A REST-repaired trade (the normalizer names it) is stamped when it was fetched; stream
    frames received before that may still be in flight, so it waits for the stream to reach
    it."""
    trades, book = _stream(40)
    book = book.sort_by([("recv_time", "ascending")])
    recv = trades.column("recv_time").cast(pa.int64()).to_numpy()
    cut = int(recv[20])
    early_book = book.filter(pa.compute.less(book.column("recv_time").cast(pa.int64()), cut))
    late_book = book.filter(pa.compute.greater_equal(book.column("recv_time").cast(pa.int64()),
                                                     cut))
    first, rest = trades.slice(0, 20), trades.slice(20)
    # the repair fetched trades 20.. at the last trade's receive time, with no event time
    repaired = rest.set_column(rest.schema.get_field_index("event_time"), "event_time",
                               pa.nulls(rest.num_rows, rest.schema.field("event_time").type))
    repaired = repaired.set_column(
        repaired.schema.get_field_index("recv_time"), "recv_time",
        pa.array(np.full(rest.num_rows, int(recv[-1]) + 5)).cast(pa.timestamp("ms", tz="UTC")))
    repaired, tail_schema = repaired.cast(TRADE_SCHEMA), TRADE_SCHEMA
    core = SignalCore(["book_imbalance"], None, ["BTCUSDT"])
    fan: list[dict] = []
    f = Fanout(lambda sub, p: fan.append(p) or len(fan), lambda ref: True)
    f.add("signals", "on_market_data")
    f.publish({"trades": {"trades": first}, "book": early_book})
    f.publish({"trades": {"trades": repaired}, "book": None,  # overtakes the stream's frames
               "repaired": {"BTCUSDT": repaired.column("trade_id").to_pylist()}})
    f.publish({"trades": {}, "book": late_book})
    out = [x for p in fan[:2] for x in core.on_payload(p, 0.0)]
    assert sum(len(s.trade_id) for s, _ in out) == 20  # the repaired ones wait
    # later stream trades (with event times) carry the stream past the repair's time
    tail = trades.slice(39, 1)
    tail = tail.set_column(tail.schema.get_field_index("trade_id"), "trade_id",
                           pa.array([40], pa.int64()))
    tail = tail.set_column(tail.schema.get_field_index("recv_time"), "recv_time",
                           pa.array([int(recv[-1]) + 10]).cast(pa.timestamp("ms", tz="UTC")))
    f.publish({"trades": {"trades": tail.cast(tail_schema)}, "book": None})
    out += [x for p in fan[2:] for x in core.on_payload(p, 0.0)]
    got = np.concatenate([s.values["book_imbalance"] for s, _ in out])
    assert core.ref_late == 0 and len(got) == 41
    all_book = pa.concat_tables([early_book, late_book])
    t = pa.concat_tables([first, repaired, tail.cast(tail_schema)])
    want = score_trades(Trades.from_table(t).with_book(asof_book(
        t.column("recv_time").cast(pa.int64()).to_numpy(), *book_arrays(all_book))),
        ["book_imbalance"], None)["book_imbalance"]
    assert np.array_equal(got, want, equal_nan=True)
