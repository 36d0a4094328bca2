"""The demo's long-lived platform: one venue and one fabric, started with ``streams up``'s code.

The demo used to start a fresh fabric (own namespace, own exchange connections) in each stage
that needed market data. A user runs one: ``spark-ray streams up`` starts it detached in
namespace ``spark_ray``, ``spark-ray trade`` joins it, ``spark-ray streams down`` drains and
seals it. :class:`LivePlatform` is that lifecycle on the demo's embedded Ray, with the local
venue (market clock at 10x, so 1 s bars close ten a second for the trading stage) as the
exchange: :func:`start` is :func:`spark_ray.app.fabric_service.up`, :meth:`report` is ``streams
status``, stages join with :func:`spark_ray.app.fabric_service.join`, :meth:`down` is ``streams
down`` plus the check that the lake equals the venue's ground truth. Between stages the venue is
paused, so the fabric idles while the Tune sweep has the cores. Expects Ray connected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spark_ray.app import fabric_service
from spark_ray.app.fabric import Fabric, FabricConfig
from spark_ray.venue import Venue

EXCHANGE = "binance"
# Side by side with it, as `streams up --exchange binance,btcturk` runs them: BTCTurk's BTC and
# the USDTTRY book that converts its TRY prices for the cross-venue view (same venue, /btcturk).
CROSS_EXCHANGE = "btcturk"
CROSS_SYMBOLS = ("BTCTRY", "USDTTRY")


def market_data_connections(venue: Venue) -> list[dict[str, Any]]:
    """The venue's open WebSocket connections that carry trades (the fabric's, and anyone
    else's that opened a second feed)."""
    return [c for c in venue.connections() if any("@trade" in s for s in c["streams"])]


@dataclass
class LivePlatform:
    venue: Venue
    fabric: Fabric
    breaker: str | None
    log: Callable[[str], None] = print
    events: list[str] = field(default_factory=list)
    others: list[Fabric] = field(default_factory=list)  # the other exchanges' fabrics

    def cross_view(self) -> dict[str, Any] | None:
        """The ``crossvenue`` actor's view over every fabric (``streams status``'s part)."""
        return fabric_service.cross_view() if self.others else None

    @property
    def symbols(self) -> list[str]:
        return list(self.fabric.cfg.symbols)

    @property
    def actor_names(self) -> list[str]:
        return sorted(self.fabric.names.values())

    def connections(self) -> list[dict[str, Any]]:
        return market_data_connections(self.venue)

    def resume(self) -> None:
        self.venue.resume()

    def pause(self) -> None:
        """Freeze the market (the fabric idles; what was due is published first)."""
        self.venue.pause()

    def report(self, max_age_s: float = 30.0) -> tuple[bool, dict[str, Any], str]:
        """``spark-ray streams status``: (healthy, the JSON document, the text a person sees)."""
        from spark_ray.app.cli.streams_service import format_report

        ok, doc = fabric_service.report(self.fabric, max_age_s)
        return ok, doc, format_report(doc)

    def wait_fresh(self, symbols: list[str], max_age_s: float = 2.0,
                   timeout_s: float = 60.0) -> dict[str, float]:
        """Until the supervisor has heard from every one of ``symbols`` within ``max_age_s``
        (after a pause, so a breaker fed by it sees fresh data, not the pause)."""
        deadline = time.monotonic() + timeout_s
        ages: dict[str, float] = {}
        while True:
            view = (self.fabric.feed_status() or {}).get("symbols", {})
            ages = {s: float(view.get(s, {}).get("last_message_age_s", float("inf")))
                    for s in symbols}
            if all(a <= max_age_s for a in ages.values()):
                return ages
            if time.monotonic() >= deadline:
                raise RuntimeError(f"fabric: no fresh data after {timeout_s:g} s: {ages}")
            time.sleep(0.5)

    def down_others(self) -> dict[str, Any]:
        """``streams down`` for the side-by-side exchanges and the cross-venue view, once they
        have been shown: the later stages (trading, the SLO measurement) run on Binance alone,
        as a 2-core machine cannot carry a second venue's feed and keep event-to-store p95
        under its SLO. Idempotent; :meth:`down` and :meth:`kill` skip what is already down."""
        if not self.others:
            return {}
        cross = fabric_service.cross_down([EXCHANGE])
        drained = {}
        for other in self.others:
            result = fabric_service.down(other.cfg.exchange, self.log) or {}
            drained[other.cfg.exchange] = result.get("rows_written")
        self.others = []
        return {"cross_view_stopped": cross, "rows_written": drained}

    def down(self, drain_timeout_s: float = 120.0) -> dict[str, Any]:
        """Pause the market (ground truth at rest), wait until the sink holds every published
        trade, then ``streams down`` (drain, seal, stop); compare the lake with the truth."""
        from spark_ray.app.slo import lake_check, raw_duplicates

        self.venue.pause()
        first = int(self.venue.config.first_trade_id)
        truth = {s: np.asarray(self.venue.ground_truth_ids(s), dtype=np.int64)
                 for s in self.symbols}
        truth = {s: ids[ids >= first] for s, ids in truth.items()}
        stored = self.fabric.wait_stored({f"trades:{s}": len(v) for s, v in truth.items()},
                                         timeout_s=drain_timeout_s)
        others = [o.cfg.exchange for o in self.others]
        self.down_others()  # the cross view and the side-by-side fabrics (if still up)
        result = fabric_service.down(EXCHANGE, self.log) or {}
        still = any(fabric_service.running(x) for x in [EXCHANGE, *others])
        self.venue.stop()
        store = self.fabric.cfg.store
        check = lake_check(store, EXCHANGE, truth)
        dups = raw_duplicates(store, EXCHANGE, self.symbols)
        lost = sum(c["lost"] for c in check.values())
        extra = sum(c["extra"] for c in check.values())
        return {
            "drained_rows_written": result.get("rows_written"),
            "stored_before_down": {k: v for k, v in stored.items() if k.startswith("trades:")},
            "parts_compacted": result.get("parts_compacted"),
            "published": sum(c["published"] for c in check.values()),
            "lost": lost, "extra": extra, "lake_duplicates": dups,
            "lake_equals_ground_truth": lost == 0 and extra == 0 and dups == 0,
            "fabric_still_running": still,
            "per_symbol": check,
        }

    def kill(self) -> None:
        """Last resort after a failure: stop the actors without draining, and the venue."""
        fabric_service.cross_down([EXCHANGE])
        for f in [self.fabric, *self.others]:
            f.kill()
        self.venue.stop()


def start(store: Path, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
          trades_per_second: float = 40.0, breaker: str | None = None,
          log: Callable[[str], None] = print,
          cross_symbols: tuple[str, ...] = CROSS_SYMBOLS) -> LivePlatform:
    """A venue (paused until the fabric is up, so the lake holds every trade from the first)
    and the long-lived fabric on it via ``streams up``'s own code; the market stays paused
    until a stage resumes it. ``breaker``: the breaker the fabric feeds market-data health.
    With ``cross_symbols``, BTCTurk's fabric on them runs beside Binance's, plus the cross-venue
    view, as ``streams up --exchange binance,btcturk`` starts them (``()``: Binance alone)."""
    venue = Venue(symbols=(*symbols, *cross_symbols), seed=7, speed=10.0,
                  trades_per_second=trades_per_second, history_minutes=60,
                  start_paused=True).start()
    try:
        cfg = FabricConfig(exchange=EXCHANGE, symbols=list(symbols), streams=["trade"],
                           ws_url=venue.ws_url, rest_url=venue.rest_url,
                           store=str(Path(store).resolve()), idle_check_ms=1000,
                           breaker=breaker,
                           # as the platform load (app.load) runs its fabric: the sink's default
                           # 1 s flush alone puts event-to-store p95 near 1 s, over the 300 ms SLO
                           sink_flush_ms=300, ping_s=1.0,
                           start_ids={f"trades:{s}": venue.config.first_trade_id
                                      for s in symbols})
        cfgs = [cfg]
        if cross_symbols:
            cfgs.append(FabricConfig(exchange=CROSS_EXCHANGE, symbols=list(cross_symbols),
                                     streams=["trade", "ticker"],
                                     ws_url=venue.btcturk_ws_url,
                                     rest_url=venue.btcturk_rest_url, store=cfg.store,
                                     sink_flush_ms=300,
                                     # the trading stages' breaker watches Binance's symbols
                                     ping_s=1.0, breaker=None))
        cross = {"exchanges": [c.exchange for c in cfgs], "reference": "USDT", "rates": {},
                 "max_age_s": 10.0} if len(cfgs) > 1 else None
        fabric, *others = fabric_service.up_many(
            cfgs, lambda line: log(f"streams up: {line}"), cross=cross)
    except BaseException:
        venue.stop()
        raise
    return LivePlatform(venue=venue, fabric=fabric, breaker=breaker, log=log, others=others)
