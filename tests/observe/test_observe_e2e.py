"""End to end: Ray + a real Prometheus + the streams fabric on the venue simulator + a breaker.

One scenario for the module (Ray metrics arrive every ~10 s, so every step waits in tens of
seconds): the fabric streams two symbols from the local venue (a signal actor scores them)
while faults make every counter real (duplicates, dropped frames, malformed frames, a gap REST
cannot repair), the breaker trips and blocks an order. Then: the Ray dashboard's state API shows
the actors by name; the metrics reach Prometheus with their labels; a lag spike fires the lag
alert in ``/api/v1/alerts`` and it resolves after; every dashboard panel whose metrics exist
returns data; the dashboards render.

Every panel of every dashboard must return data (:data:`PENDING` would name exceptions; it
is empty).
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray

from spark_ray.app.session import current_session_dir
from spark_ray.observe import prom
from spark_ray.observe.dashboards import load_all
from spark_ray.observe.prom import PromClient
from spark_ray.observe.raydash import RayDashboard
from spark_ray.observe.render import query_panel, render_all

from helpers import signer
from observe_helpers import E2E_PROM_PORT, need

pytestmark = pytest.mark.slow

PENDING: dict[tuple[str, str], str] = {
}


@dataclass
class Scenario:
    client: PromClient
    state: prom.PromState
    venue: Any
    fabric: Any
    breaker: Any
    breaker_name: str
    namespace: str
    started: float
    executor_name: str


def _approve_fast_sma(folder: Path) -> Path:
    from spark_ray.chaos.approval import synthetic_approval

    return synthetic_approval(folder, note="observability test", signer=signer("ci"))


def _start_trading(tmp: Path, namespace: str, breaker_name: str) -> tuple[Any, Any]:
    """A paper-trading run (its own fast venue, fabric and executor) for the Trading panels."""
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.app.trading import TradingRun
    from spark_ray.breaker.models import BreakerConfig
    from spark_ray.execution.executor import ExecutorConfig
    from spark_ray.execution.params import load_approved
    from spark_ray.execution.spec import ExecutorSpec
    from spark_ray.venue import Venue

    ap = load_approved(_approve_fast_sma(tmp / "params"))
    venue = Venue(symbols=("BTCUSDT",), seed=11, history_minutes=30, speed=10.0,
                  trades_per_second=40).start()
    spec = ExecutorSpec(
        config=ExecutorConfig(name="observe-e2e", symbols=("BTCUSDT",), interval="1s",
                              cash=5_000.0, warmup_bars=30),
        strategy=ap.strategy, params=ap.params, journal_path=str(tmp / "executor.jsonl"),
        approved_path=ap.path, approval=ap.approval, rest_url=venue.rest_url,
        ws_url=venue.ws_url, breaker_name=breaker_name, control_port=0)
    run = TradingRun(spec, "executor:observe-e2e",
                     FabricConfig(symbols=["BTCUSDT"], streams=["trade"], ws_url=venue.ws_url,
                                  rest_url=venue.rest_url, store=str(tmp / "trade-lake"),
                                  namespace=f"{namespace}-trade", flush_ms=5.0),
                     breaker_config=BreakerConfig.model_validate(
                         {"consecutive_losses": {"enabled": False},
                          "order_rate": {"limit": 100_000}}),
                     breaker_journal=str(tmp / "trade-breaker.jsonl"), namespace=namespace)
    return venue, run.start()


def _start_signals(tmp: Path, fabric: Any, symbols: list[str], namespace: str) -> Any:
    """A SignalActor on the fabric's trades, publishing to no executor, so the Trading
    dashboard's signal panels have data: a real LightGBM model trained here on the XRP/ETH
    recording, served without the approval gate (tests/signals and tests/execution test the
    gate; this tests the actor's metrics)."""
    from spark_ray.actors.signal import start_signals
    from spark_ray.data.readers import read_freqtrade_trades
    from spark_ray.samples import sample
    from spark_ray.signals import artifact
    from spark_ray.signals.features import Trades
    from spark_ray.signals.inventory import TRADE_SIGNALS
    from spark_ray.signals.train import build, fit

    rec = read_freqtrade_trades(sample("XRP_ETH-trades.json.gz")).sort_by("trade_id")
    ts = build(Trades.from_table(rec), list(TRADE_SIGNALS), every_ms=60_000, horizon=5)
    folder = tmp / "signal-model"
    artifact.save(fit("gbm", ts.X, ts.y, seed=0), folder, ts.features,
                  {"symbol": "XRPETH", "trades_sha256": ts.fingerprint}, {}, {})
    sig = start_signals(str(folder), symbols, [], "signals:observe-e2e", namespace,
                        require_approval=False)
    ray.get([n.subscribe.remote(sig, "on_market_data") for n in fabric.normalizers],
            timeout=30)
    return sig


def _start_fabric(venue: Any, store: Path, namespace: str) -> Any:
    """The real streams fabric (spark_ray.app.fabric), as tests/streams starts it."""
    from spark_ray.app.fabric import Fabric, FabricConfig

    cfg = FabricConfig(
        symbols=list(venue.config.symbols), streams=["trade"], ws_url=venue.ws_url,
        rest_url=venue.rest_url, store=str(store), namespace=namespace, grace_ms=150,
        idle_check_ms=1000, sink_flush_ms=300, ping_s=1.0,
        start_ids={f"trades:{s}": venue.config.first_trade_id for s in venue.config.symbols})
    return Fabric(cfg).start()


def _start_cross_venue(store: Path) -> Any:
    """Binance and BTCTurk side by side with the cross-venue view, as ``streams up --exchange
    binance,btcturk`` starts them (detached fabrics, the ``crossvenue`` actor), on a venue of
    their own, so the Cross-Venue dashboard has data."""
    from spark_ray.app import fabric_service
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.venue import Venue

    v = Venue(symbols=("BTCUSDT", "BTCTRY", "USDTTRY"), seed=5, trades_per_second=5,
              history_minutes=30).start()
    common: dict[str, Any] = dict(store=str(store), breaker=None, ping_s=1.0, sink_flush_ms=300)
    cfgs = [FabricConfig(exchange="binance", symbols=["BTCUSDT"], streams=["trade", "bookTicker"],
                         ws_url=v.ws_url, rest_url=v.rest_url, **common),
            FabricConfig(exchange="btcturk", symbols=["BTCTRY", "USDTTRY"],
                         streams=["trade", "ticker"], ws_url=v.btcturk_ws_url,
                         rest_url=v.btcturk_rest_url, **common)]
    try:
        fabric_service.up_many(cfgs, lambda line: None, cross={
            "exchanges": ["binance", "btcturk"], "reference": "USDT", "rates": {},
            "max_age_s": 10.0})
    except BaseException:
        v.stop()
        raise
    return v


def _stop_cross_venue(v: Any) -> None:
    from spark_ray.app import fabric_service

    fabric_service.cross_down(["binance", "btcturk"])
    for ex in ("binance", "btcturk"):
        fabric_service.down(ex, lambda line: None)
    v.stop()


def _small_sweep(tmp: Path) -> None:
    """A real (tiny) Ray Tune sweep on a real sample, so the Optimization panels have data."""
    from spark_ray.data.importer import import_files
    from spark_ray.lake import DataStore
    from spark_ray.samples import sample
    from spark_ray.tune.api import optimize
    from spark_ray.tune.scenarios import Scenario as TuneScenario
    from spark_ray.tune.spaces import builtin_space, load_space

    lake = DataStore(tmp / "tune-lake")
    import_files(lake, [sample("ETH_BTC-5m.feather")], "freqtrade")
    board = optimize(lake, "sma_cross", load_space(builtin_space("sma_cross")),
                     [TuneScenario(name="eth", symbol="ETHBTC", interval="5m", fee_bps=10)],
                     trials=6, folds=2, storage=tmp / "tune", name="observe-e2e", verbose=0)
    assert len(board.rows) == 6


@pytest.fixture(scope="module")
def scenario(ray_session: Any) -> Iterator[Scenario]:
    from spark_ray.actors.breaker import CircuitBreakerActor
    from spark_ray.venue import Venue

    need("prometheus")
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="spark-ray-observe-e2e-"))
    namespace = f"observe-{uuid.uuid4().hex[:8]}"
    state = prom.start(tmp / "prom", sd_path=prom.sd_file(current_session_dir()),
                       port=E2E_PROM_PORT or prom.free_port())
    venue = fabric = breaker = trade_venue = trading = cross = signals = None
    try:
        client = PromClient(state.url)
        venue = Venue(symbols=("BTCUSDT", "ETHUSDT"), seed=11, history_minutes=30,
                      trades_per_second=40).start()
        fabric = _start_fabric(venue, tmp / "lake", namespace)
        signals = _start_signals(tmp, fabric, list(venue.config.symbols), namespace)
        breaker_name = "breaker:observe-e2e"
        breaker = CircuitBreakerActor.options(
            name=breaker_name, namespace=namespace).remote(
            None, str(tmp / "breaker.jsonl"), breaker_name)
        ray.get(breaker.status.remote(), timeout=60)
        # Faults that make every streams counter real. REST answers 503 for 40 s, so the gap
        # left by the dropped frames outlasts the normalizer's 6 backfill attempts (~16 s).
        conn = fabric.connectors[0]
        venue.inject("rest_error", status=503, duration_s=40)
        ray.get(conn.chaos.remote("drop", 3), timeout=30)
        ray.get(conn.chaos.remote("duplicate", 40), timeout=30)
        ray.get(conn.chaos.remote("reorder", 5), timeout=30)  # out-of-order events
        venue.inject("malformed", count=2, symbol="ETHUSDT")
        trade_venue, trading = _start_trading(tmp, namespace, f"breaker:{namespace}-trade")
        _small_sweep(tmp)  # tune_* metrics for the Optimization dashboard
        cross = _start_cross_venue(tmp / "cross-lake")  # the Cross-Venue dashboard's gauges
        trading.supervise()
        yield Scenario(client, state, venue, fabric, breaker, breaker_name, namespace,
                       started, trading.name)
    finally:
        if cross is not None:
            _stop_cross_venue(cross)
        if trading is not None:
            trading.stop(collect=False)
            if trading.breaker is not None:
                ray.kill(trading.breaker, no_restart=True)
        if trade_venue is not None:
            trade_venue.stop()
        if signals is not None:
            ray.kill(signals, no_restart=True)
        if fabric is not None:
            fabric.kill()
        if breaker is not None:
            ray.kill(breaker, no_restart=True)
        if venue is not None:
            venue.stop()
        prom.stop(state)
        shutil.rmtree(tmp, ignore_errors=True)


def test_ray_dashboard_state_api_shows_actors_by_name(scenario: Scenario) -> None:
    dash = RayDashboard(ray_session_url())
    deadline = time.monotonic() + 30
    want = {"connector:binance:0": "ConnectorActor", "normalizer:binance:0": "NormalizerActor",
            "sink:binance": "SinkActor", scenario.breaker_name: "CircuitBreakerActor",
            scenario.executor_name: "ExecutorActor"}
    alive: dict[str, Any] = {}
    while time.monotonic() < deadline:
        alive = dash.alive_by_name(scenario.namespace)
        if set(want) <= set(alive):
            break
        time.sleep(1)
    assert set(want) <= set(alive), sorted(alive)
    for name, cls in want.items():
        assert alive[name]["class_name"] == cls


def ray_session_url() -> str:
    import ray as _ray

    ctx = _ray.get_runtime_context()
    url = ctx.get_dashboard_url() if hasattr(ctx, "get_dashboard_url") else None
    if not url:
        from spark_ray.app.session import _current

        assert _current is not None and _current.dashboard_url
        return _current.dashboard_url
    return url


def test_ray_dashboard_reaches_our_prometheus(scenario: Scenario) -> None:
    if not E2E_PROM_PORT:
        pytest.skip("RAY_PROMETHEUS_HOST was preset outside the tests")
    ok, msg = RayDashboard(ray_session_url()).prometheus_health()
    assert ok, msg


def test_actor_metrics_reach_prometheus_with_labels(scenario: Scenario) -> None:
    c = scenario.client
    assert c.wait_ray_scraped(40)

    def streams() -> list[dict[str, Any]]:
        return c.query("ray_streams_messages_total")

    series = c.wait_for(streams, 45)
    assert series, "no streams metrics scraped"
    labels = [s["metric"] for s in series]
    assert {(m["exchange"], m["symbol"], m["stream"]) for m in labels} >= {
        ("binance", "BTCUSDT", "trade"), ("binance", "ETHUSDT", "trade")}
    # Trip the breaker and have it block an order: its state, trip and blocked-order metrics
    # reach Prometheus and BreakerTripped fires. (Ray 2.60 stops exporting a gauge ~20 s after
    # its last set(), and the breaker sets its state only on transitions, so this is checked
    # right after the trip; see the report on re-setting gauges periodically.)
    ray.get(scenario.breaker.trip.remote("observability e2e", "pytest"), timeout=60)
    decision = ray.get(scenario.breaker.allow.remote(
        {"symbol": "BTCUSDT", "side": "buy", "qty": 0.1}), timeout=30)
    assert decision.allowed is False, decision
    brk = c.wait_for(lambda: c.query(
        f'ray_breaker_state{{breaker="{scenario.breaker_name}"}} == 1'), 30, interval_s=0.5)
    assert brk, "breaker state never reached Prometheus"
    assert c.wait_for(lambda: c.alert_state("BreakerTripped") == "firing", 20, interval_s=0.5)
    trips = c.wait_for(lambda: c.query(
        f'ray_breaker_trips_total{{breaker="{scenario.breaker_name}"}}'), 30)
    assert trips and trips[0]["metric"]["rule"]
    hb = c.wait_for(lambda: c.query("ray_streams_heartbeat"), 30)
    assert hb and all(m["metric"]["stream"].startswith("connector:") for m in hb)


def test_lag_spike_fires_the_lag_alert_and_it_resolves(scenario: Scenario) -> None:
    c = scenario.client
    c.wait_for(lambda: c.query("ray_streams_ingest_lag_seconds"), 40)
    assert c.alert_state("StreamsIngestLagHigh") == "inactive"
    fault = scenario.venue.inject("latency", delay_ms=3500, duration_s=90)
    t0 = time.monotonic()
    try:
        fired = c.wait_for(lambda: c.alert_state("StreamsIngestLagHigh") == "firing", 75)
        assert fired, f"lag alert not firing after 75 s: {c.alerts()}"
        fired_after = time.monotonic() - t0
        firing = [a for a in c.alerts() if a["labels"]["alertname"] == "StreamsIngestLagHigh"
                  and a["state"] == "firing"]
        assert firing[0]["labels"]["exchange"] == "binance"
        assert float(firing[0]["value"]) > 2
        assert c.alert_state("StreamsIngestLagCritical") == "inactive"  # 3.5 s < 5 s
    finally:
        scenario.venue.clear_faults(fault)
    resolved = c.wait_for(lambda: c.alert_state("StreamsIngestLagHigh") == "inactive", 60)
    assert resolved, f"lag alert did not resolve: {c.alerts()}"
    print(f"lag alert fired after {fired_after:.0f} s, resolved "
          f"{time.monotonic() - t0 - fired_after:.0f} s after the spike ended")


def test_every_panel_query_returns_data(scenario: Scenario) -> None:
    c = scenario.client
    dashboards = load_all()
    slugs = {d.uid.removeprefix("spark-ray-"): d for d in dashboards}
    assert {k[0] for k in PENDING} <= set(slugs)
    checked = [(slug, p) for slug, d in slugs.items() for p in d.panels
               if (slug, p.title) not in PENDING]

    def missing() -> list[str]:
        end = time.time()
        return [f"{slug}: {p.title}" for slug, p in checked
                if not query_panel(c, p, end - 600, end, 5).has_data]

    assert c.wait_for(lambda: not missing(), 90, interval_s=3), \
        f"panels without data: {missing()}"
    print(f"{len(checked)} panels return data; not checked ({len(PENDING)}): "
          + "; ".join(f"{s}/{t}: {why}" for (s, t), why in PENDING.items()))
    # The counters the faults produced also drive their alerts in the real Prometheus.
    firing = c.wait_for(lambda: "StreamsSequenceGapUnrepaired" in {
        a["labels"]["alertname"] for a in c.alerts() if a["state"] == "firing"}, 30)
    assert firing, [(a["labels"], a["state"]) for a in c.alerts()]


def test_dashboards_render_to_png(scenario: Scenario, tmp_path: Path) -> None:
    # The picture of the whole scenario, faults included (as the demo draws its run): a fixed
    # 5-minute window lost the fault phase when the module's earlier tests ran long under load.
    # Wait for the scenario's faults to show (the unrepaired gap takes ~40 s to count): this
    # test may run right after the scenario started (its own worker, or alone).
    streams_dash = next(d for d in load_all() if "Streams Fabric" in d.title)

    def empty_now() -> list[str]:
        end = time.time()
        start = min(scenario.started, end - 300) - 30
        return [p.title for p in streams_dash.panels
                if not query_panel(scenario.client, p, start, end, 5).has_data]

    assert scenario.client.wait_for(lambda: not empty_now(), 150, interval_s=3), empty_now()
    minutes = max(5.0, (time.time() - scenario.started) / 60 + 0.5)
    results = render_all(scenario.client, tmp_path, minutes=minutes)
    assert len(results) == len(load_all())
    for r in results:
        png = Path(r["png"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    streams = next(r for r in results if "Streams Fabric" in r["dashboard"])
    empty = {title: p.get("error") for title, p in streams["panels"].items()
             if not p["has_data"]}
    assert not empty, f"Streams Fabric panels without data (with the query error): {empty}"
