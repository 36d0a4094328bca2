"""Order-book signals from the venue through the fabric: a SignalActor serving a model that reads
the book (queue imbalance, micro-price, spread, depth) publishes, for every trade, exactly what
the batch path computes from the trades and the book the fabric stored in the lake; then
``signals study`` and ``signals features`` compute the order-book family over that lake."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

from spark_ray.lake import DataStore
from spark_ray.signals import artifact
from spark_ray.signals.inventory import signal
from spark_ray.signals.live import SCORE, score_trades
from spark_ray.signals.source import load_trades
from spark_ray.signals.train import build, fit

from helpers import run_cli

FEATURES = ["book_imbalance", "microprice_deviation", "spread_bps", "top_depth_quote",
            "flow_imbalance_60000ms"]


@ray.remote(num_cpus=0)
class Capture:
    """Stands in for an executor: keeps every signal message the signal actor sends."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def on_signals(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    def values(self) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = {}
        for m in self.messages:
            for i, tid in enumerate(np.asarray(m["trade_id"]).tolist()):
                out[tid] = {k: float(np.asarray(v)[i]) for k, v in m["values"].items()}
        return out


def _model(folder: Path, features: list[str]) -> Path:
    """A LightGBM model over ``features``, trained on a synthetic stream (the real samples have
    no recorded book): only its plumbing is under test here."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "signals"))
    from test_book_features import _reference_book, _stream

    from spark_ray.signals.features import Trades, asof_book, book_arrays

    trades, book = _stream(30_000, step_ms=200)
    recv = trades.column("recv_time").cast(pa.int64()).to_numpy()
    t = Trades.from_table(trades).with_book(asof_book(recv, *book_arrays(book)))
    t = t.with_ref("btcturk", asof_book(recv, *book_arrays(_reference_book(trades))))
    ts = build(t, [signal(n) for n in features], every_ms=10_000, horizon=5)
    report = {"samples": len(ts), "models": {"gbm": {"auc": 0.5, "p_value": 1.0}}}
    artifact.save(fit("gbm", ts.X, ts.y, seed=0), folder, ts.features,
                  {"symbol": "SYNTH", "trades_sha256": ts.fingerprint}, report, {"seed": 0})
    return folder


@pytest.fixture(scope="module")
def book_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _model(tmp_path_factory.mktemp("book-model") / "model", FEATURES)


def _serve(model: Path) -> tuple[Any, Any]:
    """A capture actor and a SignalActor serving ``model`` to it. A trade that waits for a
    stream (a REST repair, a reference exchange) waits up to ref_wait_ms; generous here: the
    test is parity, not latency."""
    from spark_ray.actors.naming import NAMESPACE
    from spark_ray.actors.signal import start_signals

    cap_name = f"capture:{uuid.uuid4().hex[:8]}"
    cap = Capture.options(name=cap_name, namespace=NAMESPACE).remote()  # type: ignore[attr-defined]
    sig = start_signals(str(model), ["BTCUSDT"], [cap_name], f"signals:{cap_name}",
                        require_approval=False, ref_wait_ms=3_000)
    return cap, sig


def _run(venue: Any, fabrics: list[Any], cap: Any, sig: Any, n: int,
         wait_for: Any) -> tuple[dict[str, Any], dict[int, dict[str, float]]]:
    """Subscribe the signal actor to ``fabrics``, play ``n`` venue trades, and return its
    status and every signal it published (by trade id); both actors are gone after."""
    try:
        ray.get([nm.subscribe.remote(sig, "on_market_data")
                 for f in fabrics for nm in f.normalizers])
        venue.resume()
        venue.wait_for_trades("BTCUSDT", n, timeout=90)
        fabrics[0].wait_stored({"trades:BTCUSDT": n}, timeout_s=60)
        wait_for(lambda: ray.get(sig.status.remote())["published"].get("BTCUSDT", 0) >= n,
                 timeout=30, what="a signal for every trade")
        return ray.get(sig.status.remote()), ray.get(cap.values.remote())
    finally:
        ray.kill(sig, no_restart=True)
        ray.kill(cap, no_restart=True)


def _assert_equal_to_batch(live: dict[int, dict[str, float]], store: DataStore, n: int,
                           model: Path, features: list[str],
                           sst: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every trade's live signals equal the batch path over the lake (1e-9); the batch."""
    table = store.trades("BTCUSDT").sort_by("trade_id")
    assert table.num_rows == n and sorted(live) == table.column("trade_id").to_pylist()
    loaded = artifact.load(model)
    batch = score_trades(load_trades(store, "BTCUSDT", "binance", features, table=table),
                         loaded.features, loaded.predict)
    ids = table.column("trade_id").to_pylist()
    recv = table.column("recv_time").cast(pa.int64()).to_numpy()
    for name in [*features, SCORE]:
        got = np.array([live[i][name] for i in ids])
        bad = np.flatnonzero(~np.isclose(got, batch[name], rtol=1e-9, atol=1e-12,
                                         equal_nan=True))
        assert len(bad) == 0, (name, len(bad), sst["ref_late"], sst["payloads"],
                               [(int(ids[i]), int(recv[i]), got[i], batch[name][i])
                                for i in bad[:5]])
    return batch


def test_live_book_signals_equal_the_lake_batch(book_model: Path, make_venue: Any,
                                               make_fabric: Any, wait_for: Any,
                                               tmp_path: Path) -> None:
    n = 1200
    venue = make_venue(max_trades_per_symbol=n, start_paused=True)
    cap, sig = _serve(book_model)
    fabric = make_fabric(venue, streams=["trade", "bookTicker"],
                         start_ids={"trades:BTCUSDT": venue.config.first_trade_id})
    sst, live = _run(venue, [fabric], cap, sig, n, wait_for)
    fabric.stop(compact=True)
    assert sst["errors"] == sst["dropped"] == 0 and sst["payloads"]["skipped"] == 0
    assert sst["book_rows"]["binance:BTCUSDT"] > 0
    store = DataStore(fabric.cfg.store)
    batch = _assert_equal_to_batch(live, store, n, book_model, FEATURES, sst)
    assert np.isfinite(batch["book_imbalance"]).mean() > 0.9  # the book really was there

    # The batch commands over the lake the fabric wrote: the order-book family is in by default.
    lake = fabric.cfg.store
    r = run_cli("signals", "study", "--store", lake, "--symbol", "BTCUSDT",
                "--horizons", "1s,10s", "--out", str(tmp_path / "study"))
    assert r.code == 0, r.out + r.err
    run = Path(next(line for line in r.out.splitlines() if line.startswith("study.json"))
               .split(": ", 1)[1])
    names = [s["name"] for s in json.loads((run / "study.json").read_text())["signals"]]
    assert {"book_imbalance", "spread_bps"} <= set(names)
    r = run_cli("signals", "features", "--store", lake, "--symbols", "BTCUSDT",
                "--signals", "book_imbalance,signed_volume_1000ms", "--out", str(tmp_path / "f"))
    assert r.code == 0, r.out + r.err
    out = pa.concat_tables([pq.read_table(p) for p in
                            sorted((tmp_path / "f").rglob("data.parquet"))])
    assert np.array_equal(out.column("book_imbalance").to_numpy(), batch["book_imbalance"],
                          equal_nan=True)


def test_cross_exchange_spread_live_equals_the_lake_batch(
        tmp_path: Path, make_venue: Any, make_fabric: Any, wait_for: Any) -> None:
    """Binance and BTCTurk fabrics on one venue: the signal actor scores Binance's trades
    against BTCTurk's book of the same symbol, waiting for BTCTurk's stream to reach each
    trade's receive time, and equals the batch as-of join over both exchanges' books in the
    lake."""
    features = ["xvenue_spread_bps_btcturk", "book_imbalance"]
    model = _model(tmp_path / "model", features)
    n = 800
    venue = make_venue(max_trades_per_symbol=n, start_paused=True)
    cap, sig = _serve(model)
    main = make_fabric(venue, streams=["trade", "bookTicker"],
                       start_ids={"trades:BTCUSDT": venue.config.first_trade_id})
    ref = make_fabric(venue, exchange="btcturk", streams=["trade", "ticker"],
                      ws_url=venue.btcturk_ws_url, rest_url=venue.btcturk_rest_url)
    sst, live = _run(venue, [main, ref], cap, sig, n, wait_for)
    main.stop(compact=True)
    ref.stop(compact=True)
    assert sst["published"] == {"BTCUSDT": n} and sst["errors"] == 0
    assert sst["book_rows"].get("btcturk:BTCUSDT", 0) > 0
    # Only the tail can wait out ref_wait_ms: BTCTurk's stream stops with the venue's trades.
    assert sst["ref_late"] < n // 10, sst
    batch = _assert_equal_to_batch(live, DataStore(main.cfg.store), n, model, features, sst)
    assert np.isfinite(batch["xvenue_spread_bps_btcturk"]).mean() > 0.9


def test_trading_a_cross_exchange_model_needs_the_reference_fabric(
        tmp_path: Path, ray_session: Any) -> None:
    from spark_ray.app.trading import reference_fabrics
    from spark_ray.errors import UserError

    model = _model(tmp_path / "model", ["xvenue_spread_bps_btcturk", "book_imbalance"])
    with pytest.raises(UserError, match=r"the model reads the btcturk book .* streams up "
                                        r"--exchange btcturk --symbols BTCUSDT"):
        reference_fabrics(str(model), ["BTCUSDT"])
    plain = _model(tmp_path / "plain", ["book_imbalance"])
    assert reference_fabrics(str(plain), ["BTCUSDT"]) == []
