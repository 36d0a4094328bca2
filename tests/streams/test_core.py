"""The plain-Python cores: id sets, parsing, dedup and gaps, depth sync, WAL, store, math."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_ray.adapters.events import DepthEvent, TradeCols
from spark_ray.lake import DataStore
from spark_ray.streams.deadletter import DeadLetterStore, read_dead_letters
from spark_ray.streams.depth import DepthSync
from spark_ray.streams.ids import IdRanges
from spark_ray.streams.metrics import LatencyHist
from spark_ray.streams.normalize import NormalizerConfig, NormalizerCore, _trade_table
from spark_ray.streams.plan import parse_streams, shard_symbols
from spark_ray.streams.store import StreamStore
from spark_ray.streams.wal import WriteAheadLog

T0 = 1_795_000_000_000


def trade(tid: int, sym: str = "BTCUSDT", e: int = T0, price: str = "100.5") -> bytes:
    return json.dumps({"stream": f"{sym.lower()}@trade", "data": {
        "e": "trade", "E": e, "s": sym, "t": tid, "p": price, "q": "0.25", "T": e,
        "m": tid % 2 == 0, "M": True}}, separators=(",", ":")).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20)), max_size=30))
def test_id_ranges_match_a_plain_set(spans: list[tuple[int, int]]) -> None:
    r = IdRanges()
    ref: set[int] = set()
    for a, w in spans:
        if w % 3 == 0:
            r.add_ids(np.arange(a, a + w + 1))
        else:
            r.add_range(a, a + w)
        ref.update(range(a, a + w + 1))
    assert r.count() == len(ref)
    probe = np.arange(-5, 330)
    assert r.contains_mask(probe).tolist() == [int(i) in ref for i in probe]
    pairs = r.pairs()
    assert all(b + 1 < a2 for (_, b), (a2, _) in itertools.pairwise(pairs))  # merged
    if ref:
        holes = {i for a, b in r.holes() for i in range(a, b + 1)}
        assert holes == set(range(min(ref), max(ref) + 1)) - ref


def test_dedup_gap_detection_and_repair_flow() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), grace_ms=100, idle_check_ms=0,
                                           start_ids={"trades:BTCUSDT": 1}, max_attempts=2))
    out = core.process([trade(i) for i in (1, 2, 2, 3, 7, 5)], [T0] * 6, T0)
    assert out.trades["trades"]["trade_id"].to_pylist() == [1, 2, 3, 7, 5]
    key = ("BTCUSDT", "trade")
    assert core.counters.dups[key] == 1 and core.counters.out_of_order[key] == 1
    assert core.repairs_due(T0 + 50) == []  # grace: late frames may still fill the hole
    core.process([trade(4)], [T0 + 60], T0 + 60)  # 4 arrives late: only 6 is missing now
    (req,) = core.repairs_due(T0 + 200)
    assert (req.lo, req.hi) == (6, 6)
    table = core.on_repair(req, [{"id": 6, "price": "1", "qty": "1", "time": T0,
                                  "isBuyerMaker": True}], T0 + 210)
    assert table is not None and table["trade_id"].to_pylist() == [6]
    assert core.repairs_due(T0 + 300) == [] and core.counters.gaps_repaired[key] == 1
    # A gap REST cannot fill counts as unrepaired after max_attempts.
    core.process([trade(10)], [T0 + 400], T0 + 400)
    for k in range(2):
        (req,) = core.repairs_due(T0 + 1_000 + k * 10_000)
        core.on_repair(req, None, T0 + 1_000 + k * 10_000)
    assert core.counters.gaps_unrepaired[key] == 1 and core.unrepaired() == {
        "trades:BTCUSDT": [(8, 9)]}


def test_an_unrepaired_gap_is_tried_again_and_heals_when_rest_answers() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), grace_ms=100, idle_check_ms=0,
                                           start_ids={"trades:BTCUSDT": 1}, max_attempts=1,
                                           unrepaired_retry_ms=60_000))
    key = ("BTCUSDT", "trade")
    core.process([trade(i) for i in (1, 2, 6)], [T0] * 3, T0)
    (req,) = core.repairs_due(T0 + 200)
    core.on_repair(req, None, T0 + 200)  # REST down: unrepaired after one attempt
    assert core.unrepaired() == {"trades:BTCUSDT": [(3, 5)]}
    core.process([trade(4)], [T0 + 300], T0 + 300)  # a late frame fills part of the hole
    assert core.repairs_due(T0 + 59_000) == []  # not before the retry interval
    (req,) = core.repairs_due(T0 + 60_300)
    assert (req.lo, req.hi) == (3, 5) and core.unrepaired() == {}
    core.on_repair(req, None, T0 + 60_300)  # still down: back to unrepaired, counted once
    assert core.unrepaired() == {"trades:BTCUSDT": [(3, 3), (5, 5)]}
    assert core.counters.gaps_unrepaired[key] == 1
    assert core.repairs_due(T0 + 100_000) == []
    reqs = core.repairs_due(T0 + 120_400)
    assert sorted((r.lo, r.hi) for r in reqs) == [(3, 3), (5, 5)]
    for r in reqs:
        core.on_repair(r, [{"id": r.lo, "price": "1", "qty": "1", "time": T0,
                            "isBuyerMaker": True}], T0 + 120_500)
    assert core.unrepaired() == {} and core.repairs_due(T0 + 200_000) == []
    assert core.counters.gaps_unrepaired[key] == 1 and core.counters.gaps_repaired[key] == 2


def test_reconnect_schedules_a_tail_check() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), idle_check_ms=0))
    core.process([trade(1)], [T0], T0)
    core.on_reconnect()
    (req,) = core.repairs_due(T0 + 1)
    assert (req.lo, req.hi, req.gap) == (2, None, None)


def _depth(u0: int, u1: int, bid: str = "100.0", qty: str = "1") -> DepthEvent:
    return DepthEvent("BTCUSDT", u0, u1, [(float(bid), float(qty))], [(101.0, 2.0)], T0, T0)


def test_depth_sync_follows_binance_procedure() -> None:
    ds = DepthSync("BTCUSDT")
    assert ds.on_event(_depth(1, 3)) == [] and ds.want_snapshot
    ds.snapshot_requested()
    ds.on_event(_depth(4, 6, qty="3"))
    ds.on_event(_depth(7, 9, qty="0"))
    applied = ds.on_snapshot(5, [(100.0, 9.0), (99.0, 1.0)], [(101.0, 1.0)])
    assert [e.last_id for e in applied] == [6, 9]  # u <= 5 dropped; U <= 6 <= u first
    assert ds.synced and ds.book.best() == (99.0, 1.0, 101.0, 2.0)
    assert ds.on_event(_depth(8, 9)) == []  # old
    assert ds.on_event(_depth(12, 13)) == [] and not ds.synced and ds.gaps == 1  # gap: resync
    ds.snapshot_requested()
    assert ds.on_snapshot(2, [], []) == [] and ds.want_snapshot  # snapshot older than buffer
    ds.snapshot_requested()
    assert ds.on_snapshot(20, [(98.0, 1.0)], [(102.0, 1.0)]) == []  # newer than the buffer
    assert [e.last_id for e in ds.on_event(_depth(18, 25))] == [25]  # straddles 20 + 1
    assert ds.on_event(_depth(26, 27)) and ds.synced and ds.resyncs == 2


def test_wal_replays_complete_batches_and_drops_a_torn_tail(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal")
    t = pa.table({"x": pa.array([1, 2, 3], pa.int64())})
    wal.append({"trades": t})
    wal.append({"trades": t.slice(1)})
    seg = wal.segments()[0]
    wal.release()
    data = seg.read_bytes()
    seg.write_bytes(data[:-20])  # a crash in the middle of the second append
    logged, torn = WriteAheadLog(tmp_path / "wal").replay()
    assert [x.num_rows for x in logged["trades"]] == [3] and torn == 1


def _table(ids: list[int], sym: str = "BTCUSDT") -> pa.Table:
    c = TradeCols()
    for i in ids:
        c.append(sym, i, 1.0 + i, 0.5, bool(i % 2), T0 + i, T0 + i, T0 + i)
    return _trade_table("binance", c, np.ones(len(ids), dtype=bool))


def test_store_dedups_across_restart_and_wal_replay(tmp_path: Path) -> None:
    root = str(tmp_path / "lake")
    s = StreamStore(root, "binance", flush_ms=60_000)
    assert s.write({"trades": _table([1, 2, 3])}).accepted == 3
    s.flush()
    ack = s.write({"trades": _table([3, 4, 4, 5])})
    assert (ack.accepted, ack.duplicates) == (2, 2)
    # Crash: the last rows are only in the WAL. A new store replays them, deduplicated.
    s.wal.release()  # what the kernel does to a dead writer's lock
    s2 = StreamStore(root, "binance")
    assert s2.replayed_rows == 2
    assert s2.write({"trades": _table([1, 5, 6])}).accepted == 1
    s2.close()
    assert DataStore(root).read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist() == [
        1, 2, 3, 4, 5, 6]
    assert DataStore(root).compact("trades", "binance", "BTCUSDT") == 3
    assert DataStore(root).read("trades", "binance", "BTCUSDT")["trade_id"].to_pylist() == [
        1, 2, 3, 4, 5, 6]


def test_latency_hist_quantiles_match_numpy() -> None:
    rng = np.random.default_rng(3)
    v = rng.exponential(20.0, 50_000)
    h = LatencyHist()
    h.add(v[:25_000])
    h2 = LatencyHist.from_sparse(LatencyHist().to_sparse())
    h2.add(v[25_000:])
    merged = h.merge(h2)
    assert merged.n == 50_000
    assert abs(merged.quantile(0.95) - np.quantile(v, 0.95)) <= 0.5  # type: ignore[operator]


def test_symbol_shards() -> None:
    assert shard_symbols(["A1", "B1", "C1"], 2) == [["A1", "C1"], ["B1"]]
    with pytest.raises(ValueError, match="stream 'nope'"):
        parse_streams("trade,nope", ("trade", "depth"))


def test_dead_letters_keep_reason_and_evidence(tmp_path: Path) -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",)))
    out = core.process([b"\xff\xfe", b"x" * 300_000], [T0, T0], T0)
    store = DeadLetterStore(tmp_path / "dl", "n0")
    assert store.append(out.dead) == 2
    recs = list(read_dead_letters(tmp_path / "dl"))
    assert [r["reason"] for r in recs] == ["bad_json", "oversized"]
    assert recs[0]["encoding"] == "hex" and recs[1]["truncated"] and recs[1]["size"] == 300_000


def test_a_huge_hole_becomes_a_new_baseline_not_an_endless_backfill() -> None:
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), grace_ms=0, idle_check_ms=0,
                                           max_gap_ids=1000))
    core.process([trade(1), trade(50_000)], [T0, T0], T0)
    assert core.repairs_due(T0 + 1) == []
    assert core.counters.skipped_ids == 49_998 and core.open_gaps() == 0
    core.process([trade(50_003)], [T0], T0)
    (req,) = core.repairs_due(T0 + 2)
    assert (req.lo, req.hi) == (50_001, 50_002)  # small gaps are still repaired


def test_every_event_older_than_the_last_seen_counts_as_out_of_order() -> None:
    """A whole late batch (ids below one seen in an earlier batch) counts once per event."""
    core = NormalizerCore(NormalizerConfig(symbols=("BTCUSDT",), idle_check_ms=0,
                                           start_ids={"trades:BTCUSDT": 1}))
    core.process([trade(i) for i in (1, 2, 3, 10)], [T0] * 4, T0)
    out = core.process([trade(i) for i in (4, 5, 6)], [T0] * 3, T0)
    assert out.trades["trades"]["trade_id"].to_pylist() == [4, 5, 6]
    assert core.counters.out_of_order[("BTCUSDT", "trade")] == 3
