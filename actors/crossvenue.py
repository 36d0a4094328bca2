"""``CrossVenueActor``: the cross-exchange view over several running fabrics, as gauges.

``spark-ray streams up --exchange binance,btcturk`` starts one fabric per exchange and this
actor, named ``crossvenue`` in namespace ``spark_ray`` (detached, like the fabrics). Once a
second it asks each fabric's supervisor (``fabric:<exchange>``) for its per-symbol quotes, which
the supervisor already gathers in its health poll: nothing new touches the data path. The
decisions (asset mapping, conversion by the stated rate source, best bid/offer, spread, basis,
staleness) are :func:`spark_ray.streams.crossvenue.build_view`; this shell exports them as Ray
metrics (``ray_crossvenue_*``, see :mod:`spark_ray.streams.metrics`) and serves the view to
``spark-ray streams status``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import ray
from ray.util.metrics import Gauge

from spark_ray.actors.naming import lookup
from spark_ray.adapters.registry import get_adapter
from spark_ray.streams import metrics as m
from spark_ray.streams.crossvenue import RateSpec, build_view, quotes_from_snapshot

log = logging.getLogger(__name__)
NAME = "crossvenue"
POLL_TIMEOUT_S = 5.0
NAN = float("nan")
AVQ = ("asset", "venue", "quote")


@ray.remote(num_cpus=0, max_restarts=-1)
class CrossVenueActor:
    def __init__(self, exchanges: list[str], supervisors: dict[str, str], namespace: str,
                 reference: str = "USDT", rates: dict[str, dict[str, Any]] | None = None,
                 max_age_s: float = 10.0, period_s: float = 1.0) -> None:
        self.exchanges = list(exchanges)
        self.supervisors = dict(supervisors)  # exchange -> supervisor actor name
        self.namespace = namespace
        self.reference = reference
        self.rates = {c: RateSpec(**r) for c, r in (rates or {}).items()}
        self.max_age_s = max_age_s
        self.period_s = period_s
        self.started = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._handles: dict[str, Any] = {}
        self._view: dict[str, Any] = build_view([], self.exchanges, reference, self.rates,
                                                max_age_s)
        self._unreachable: list[str] = []
        self._unmapped: dict[str, str] = {}
        self._polls = 0
        self._exported: dict[str, set[tuple[tuple[str, str], ...]]] = {}
        self._g = {
            "bid": Gauge(m.CROSS_BID, "Best bid of an asset on a venue, in the reference quote "
                                      "(NaN while excluded).", tag_keys=AVQ),
            "ask": Gauge(m.CROSS_ASK, "Best ask of an asset on a venue, in the reference quote "
                                      "(NaN while excluded).", tag_keys=AVQ),
            "age": Gauge(m.CROSS_QUOTE_AGE, "Seconds since the venue's quote last changed.",
                         tag_keys=("asset", "venue", "source")),
            "spread": Gauge(m.CROSS_SPREAD_BPS, "Best ask minus best bid across venues, bps of "
                                                "their mid (negative: crossed).",
                            tag_keys=("asset", "quote")),
            "basis": Gauge(m.CROSS_BASIS_BPS, "A venue's mid against the reference venue's, "
                                              "bps.", tag_keys=("asset", "venue", "reference")),
            "rate": Gauge(m.CROSS_RATE, "Units of currency per reference unit used to convert.",
                          tag_keys=("currency", "quote", "source")),
        }
        self._thread = threading.Thread(target=self._run, name="crossvenue", daemon=True)
        self._thread.start()

    # --- the API -----------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {"exchanges": list(self.exchanges), "supervisors": dict(self.supervisors),
                "namespace": self.namespace, "reference": self.reference,
                "rates": {c: r.text() for c, r in self.rates.items()},
                "max_age_s": self.max_age_s, "started": self.started}

    def view(self) -> dict[str, Any]:
        """The last cross-venue view, with which fabrics answered (``streams status``)."""
        with self._lock:
            return {**self._view, "unreachable": list(self._unreachable),
                    "unmapped": dict(self._unmapped), "polls": self._polls,
                    "time": time.time()}

    def refresh(self) -> dict[str, Any]:
        """Poll now (tests and ``streams up`` need not wait a period)."""
        self._round()
        return self.view()

    def close(self) -> bool:
        self._stop.set()
        self._thread.join(timeout=10)
        return True

    # --- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self._round()
            except Exception:
                log.exception("crossvenue: round failed")

    def _round(self) -> None:
        quotes, unreachable, unmapped = [], [], {}
        for ex in self.exchanges:
            snap = self._poll(ex)
            if snap is None:
                unreachable.append(self.supervisors[ex])
                continue
            got, bad = quotes_from_snapshot(ex, snap.get("symbols", {}),
                                            get_adapter(ex).split_symbol)
            quotes += got
            unmapped.update({f"{ex}:{s}": why for s, why in bad.items()})
        view = build_view(quotes, self.exchanges, self.reference, self.rates, self.max_age_s)
        with self._lock:
            self._view, self._unreachable, self._unmapped = view, unreachable, unmapped
            self._polls += 1
        self._export(view)

    def _poll(self, exchange: str) -> dict[str, Any] | None:
        name = self.supervisors[exchange]
        h = self._handles.get(name) or lookup(name, self.namespace)
        if h is None:
            return None
        self._handles[name] = h
        try:
            return dict(ray.get(h.quotes.remote(), timeout=POLL_TIMEOUT_S))
        except Exception:
            self._handles.pop(name, None)  # restarting or gone: look it up again next round
            return None

    def _export(self, view: dict[str, Any]) -> None:
        """Set this round's gauges; label sets that were exported before and are not now get
        NaN (Ray cannot drop a series: NaN reads as "no value" in Grafana and PromQL)."""
        ref = view["reference_quote"]
        now: dict[str, dict[tuple[tuple[str, str], ...], float]] = {k: {} for k in self._g}

        def put(kind: str, value: float | None, **tags: str) -> None:
            now[kind][tuple(sorted(tags.items()))] = NAN if value is None else float(value)

        for asset, a in view["assets"].items():
            for venue, x in a["venues"].items():
                put("bid", x["bid"], asset=asset, venue=venue, quote=ref)
                put("ask", x["ask"], asset=asset, venue=venue, quote=ref)
                put("age", x["age_s"], asset=asset, venue=venue, source=x["source"])
            put("spread", a["spread_bps"], asset=asset, quote=ref)
            for venue, b in a["basis_bps"].items():
                put("basis", b, asset=asset, venue=venue, reference=a["reference_venue"])
        for cur, r in view["rates"].items():
            put("rate", r["value"], currency=cur, quote=ref, source=r["source"])
        for kind, series in now.items():
            for tags in self._exported.get(kind, set()) - set(series):
                series[tags] = NAN
            for tags, value in series.items():
                self._g[kind].set(value, tags=dict(tags))
            self._exported[kind] = {t for t, v in series.items() if not math.isnan(v)}
