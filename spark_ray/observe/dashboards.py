"""The Grafana dashboards, defined once in Python and written as Grafana JSON models.

``grafana/dashboards/*.json`` are generated from :data:`DASHBOARDS`
(``python -m spark_ray.observe.dashboards`` rewrites them; a test checks they are current), so the
PNG renderer and the end-to-end test read exactly the queries Grafana shows. Every panel's
datasource is the ``${datasource}`` template variable (type ``prometheus``), so a dashboard imports
into any Grafana and binds to whichever Prometheus the importer picks.

Metric names are Ray's export names (``ray_`` + the ``ray.util.metrics`` name). Stat panels of
counters that only exist once something happened (gaps, drops) add ``or vector(0)``, so "none" reads
as 0 rather than "no data"; their per-stream time-series panels do not. Queries use fixed
``[1m]`` rate windows (fine at our 2 s scrape and at a production 15 s scrape) instead of
``$__rate_interval``, so the same PromQL runs unchanged against Prometheus' HTTP API.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_ray.observe import grafana_dir, thresholds

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCHEMA_VERSION = 39


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[Target, ...]
    kind: str = "timeseries"  # timeseries | stat | heatmap
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    # Grafana threshold steps ({"color", "value"}): for stat panels, generated from the alert
    # rules (spark_ray.observe.thresholds), never written here by hand
    steps: tuple[dict[str, Any], ...] = ()

    def metrics(self) -> set[str]:
        """Metric names the panel reads (histogram series folded to their base name)."""
        names: set[str] = set()
        for t in self.targets:
            for m in re.findall(r"\b((?:ray_|up\b)[A-Za-z0-9_]*)", t.expr):
                names.add(re.sub(r"_(bucket|sum|count)$", "", m))
        return names


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    slug: str
    description: str
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = field(default=("spark-ray",))


def T(expr: str, legend: str = "") -> Target:
    return Target(" ".join(expr.split()), legend)


def _p95(metric: str, by: str) -> str:
    group = f"le, {by}" if by else "le"
    return f"histogram_quantile(0.95, sum by ({group}) (rate({metric}_bucket[1m])))"


ESL = "{{exchange}} {{symbol}} {{stream}}"
E2DB = "ray_streams_event_to_db_ms"
RTT = "ray_streams_ws_roundtrip_ms"
SIG_LAT = "ray_signals_latency_ms"

STREAMS_FABRIC = Dashboard(
    uid="spark-ray-streams-fabric", title="Spark-Ray / Streams Fabric", slug="streams-fabric",
    description="Market-data fabric at a glance: throughput, ingest lag, gaps, event-to-store.",
    panels=(
        Panel("Messages/s (all streams)", (T("sum(rate(ray_streams_messages_total[1m]))"),),
              kind="stat", unit="short", width=6, height=5),
        Panel("Event-to-store p95", (T(_p95(E2DB, "")),), kind="stat", unit="ms", width=6,
              height=5),
        Panel("Max ingest lag", (T("max(ray_streams_ingest_lag_seconds)"),), kind="stat",
              unit="s", width=6, height=5),
        Panel("Unrepaired sequence gaps", (T("sum(ray_streams_seq_gap_total) or vector(0)"),),
              kind="stat",
              unit="short", width=6, height=5),
        Panel("Messages/s by stream",
              (T("sum by (exchange, symbol, stream) (rate(ray_streams_messages_total[1m]))",
                 ESL),), unit="short"),
        Panel("Ingest lag (receive - event time)",
              (T("max by (exchange, symbol, stream) (ray_streams_ingest_lag_seconds)", ESL),),
              unit="s", description="WARN > 2 s, CRIT > 5 s (alert rules)."),
        Panel("Sequence gaps (unrepaired, cumulative)",
              (T("sum by (exchange, symbol, stream) (ray_streams_seq_gap_total)", ESL),),
              description="Gaps REST backfill could not fill. SLO: 0."),
        Panel("Event-to-store p95 by exchange", (T(_p95(E2DB, "exchange"), "{{exchange}}"),),
              unit="ms", description="Exchange event time to durable commit. WARN > 300 ms."),
        Panel("Last trade id",
              (T("max by (exchange, symbol, stream) (ray_streams_last_seq)", ESL),),
              width=24, height=6),
    ),
)

LAG_GAPS = Dashboard(
    uid="spark-ray-lag-gaps", title="Spark-Ray / Lag & Gaps", slug="lag-gaps",
    description="Ingest lag percentiles, sequence gaps, out-of-order, duplicates, drops.",
    panels=(
        Panel("p95 ingest lag (5 min window)",
              (T("max by (exchange, symbol, stream) "
                 "(quantile_over_time(0.95, ray_streams_ingest_lag_seconds[5m]))", ESL),),
              unit="s", description="SLO: p95 < 2 s."),
        Panel("Sequence gaps total", (T("sum(ray_streams_seq_gap_total) or vector(0)"),),
              kind="stat", width=6),
        Panel("Dropped frames total", (T("sum(ray_streams_drop_total) or vector(0)"),),
              kind="stat", width=6),
        Panel("Gaps by stream (unrepaired)",
              (T("sum by (exchange, symbol, stream) (ray_streams_seq_gap_total)", ESL),)),
        Panel("Out-of-order events/s",
              (T("sum by (exchange, symbol, stream) (rate(ray_streams_out_of_order_total[1m]))",
                 ESL),),
              description="Events older than the last id seen (reordered, not lost)."),
        Panel("Duplicates/s", (T("sum by (exchange, symbol, stream) "
                                 "(rate(ray_streams_dup_total[1m]))", ESL),),
              description="WARN > 0.1/s."),
        Panel("Dead letters by reason",
              (T("sum by (exchange, reason) (ray_streams_dead_letter_total)",
                 "{{exchange}} {{reason}}"),)),
        Panel("Dropped frames/s",
              (T("sum by (exchange, stream) (rate(ray_streams_drop_total[1m]))",
                 "{{exchange}} {{stream}}"),), description="Drop ratio SLO < 0.1%."),
    ),
)

EVENT_TO_DB = Dashboard(
    uid="spark-ray-event-to-db", title="Spark-Ray / Event to DB", slug="event-to-db",
    description="Exchange event time to durable commit in the sink (WAL fsync).",
    panels=(
        Panel("p95 event-to-store", (T(_p95(E2DB, "")),), kind="stat", unit="ms", width=6),
        Panel("p99 event-to-store",
              (T(f"histogram_quantile(0.99, sum by (le) (rate({E2DB}_bucket[1m])))"),),
              kind="stat", unit="ms", width=6),
        Panel("Latency distribution", (T(f"sum by (le) (rate({E2DB}_bucket[1m]))", "{{le}}"),),
              kind="heatmap", unit="ms"),
        Panel("p95 by source", (T(_p95(E2DB, "exchange, symbol"), "{{exchange}} {{symbol}}"),),
              unit="ms"),
        Panel("Percentiles",
              tuple(T(f"histogram_quantile({q}, sum by (le) (rate({E2DB}_bucket[1m])))",
                      f"p{int(q * 100)}") for q in (0.5, 0.95, 0.99)), unit="ms"),
    ),
)

UPTIME = Dashboard(
    uid="spark-ray-uptime", title="Spark-Ray / Uptime & Heartbeats", slug="uptime-heartbeats",
    description="Connector status, heartbeat age, WebSocket round trip, actor states.",
    panels=(
        Panel("Connector status (1 = reading)",
              (T("max by (exchange, stream) (time() - ray_streams_heartbeat < bool 15)",
                 "{{exchange}} {{stream}}"),),
              description="1 when the connector read a frame in the last 15 s."),
        Panel("Heartbeat age",
              (T("time() - max by (exchange, stream) (ray_streams_heartbeat)",
                 "{{exchange}} {{stream}}"),), unit="s", description="WARN > 15 s."),
        Panel("WebSocket round trip",
              (T(_p95(RTT, "exchange, stream"), "p95 {{exchange}} {{stream}}"),
               T(f"histogram_quantile(0.5, sum by (le, exchange, stream) (rate({RTT}_bucket[1m])))",
                 "p50 {{exchange}} {{stream}}")), unit="ms"),
        Panel("Fabric actors by state",
              (T('sum by (Name, State) (ray_actors{Source="gcs", '
                 'Name=~"ConnectorActor|NormalizerActor|SinkActor|CircuitBreakerActor|'
                 'ExecutorActor", State=~"ALIVE|RESTARTING|DEAD"})', "{{Name}} {{State}}"),)),
        Panel("Ray metrics targets up", (T('up{job="ray"}', "{{instance}}"),), width=24,
              height=6),
    ),
)

TRADING = Dashboard(
    uid="spark-ray-trading", title="Spark-Ray / Trading", slug="trading",
    description="Executor orders, fills, position and PnL; circuit breaker state and trips; the "
                "signal actor's latency, published signals and feature staleness.",
    panels=(
        Panel("Breaker state (0 ARMED, 1 TRIPPED, 2 COOLDOWN)",
              (T("max by (breaker) (ray_breaker_state)", "{{breaker}}"),)),
        Panel("Breaker trips by rule", (T("sum by (rule) (ray_breaker_trips_total)", "{{rule}}"),)),
        Panel("Orders blocked by the breaker", (T("sum(ray_breaker_blocked_orders_total)"),),
              kind="stat", width=6),
        Panel("PnL", (T("sum(ray_executor_pnl)"),), kind="stat", width=6),
        Panel("Orders/s by status",
              (T("sum by (status) (rate(ray_executor_orders_total[1m]))", "{{status}}"),)),
        Panel("Fills (5 min)", (T("sum(increase(ray_executor_fills_total[5m]))", "fills"),)),
        Panel("Position", (T("sum by (symbol) (ray_executor_position)", "{{symbol}}"),)),
        Panel("PnL over time", (T("sum(ray_executor_pnl)", "pnl"),)),
        Panel("Tick to order p95", (T(_p95("ray_executor_tick_to_order_ms", ""), "p95"),),
              unit="ms"),
        Panel("Executor actor state",
              (T('sum by (State) (ray_actors{Source="gcs", Name=~".*Executor.*", '
                 'State=~"ALIVE|RESTARTING|DEAD"})', "{{State}}"),)),
        # Signals (actors/signal.py): the signal actor beside the executors it feeds.
        Panel("Signal latency p99 (trade received -> signal published)",
              (T(f"histogram_quantile(0.99, sum by (le, actor) (rate({SIG_LAT}_bucket[1m])))",
                 "p99 {{actor}}"),
               T(f"histogram_quantile(0.5, sum by (le, actor) (rate({SIG_LAT}_bucket[1m])))",
                 "p50 {{actor}}")), unit="ms",
              description="A trade's receipt by the connector -> its signal published to the "
                          "executors. WARN > 50 ms for 5 min (SignalLatencyHigh)."),
        Panel("Signals published/s by symbol",
              (T("sum by (symbol) (rate(ray_signals_published_total[1m]))", "{{symbol}}"),),
              description="One signal per trade: follows the symbol's trade rate."),
        Panel("Feature staleness by symbol",
              (T("max by (symbol) (ray_signals_feature_staleness_s)", "{{symbol}}"),), unit="s",
              description="Seconds since the symbol's features last saw a trade (a quiet market "
                          "raises it too). CRIT > 30 s for 1 min while the fabric has trades "
                          "of the symbol (SignalsStale)."),
    ),
)

OPTIMIZATION = Dashboard(
    uid="spark-ray-optimization", title="Spark-Ray / Optimization", slug="optimization",
    description="Ray Tune sweeps: trials running and finished, best objective over time.",
    panels=(
        Panel("Trials running", (T("sum by (experiment) (ray_tune_trials_running)",
                                   "{{experiment}}"),)),
        Panel("Trials finished", (T("sum by (experiment) (ray_tune_trials_finished_total)",
                                    "{{experiment}}"),)),
        Panel("Trials finished per minute",
              (T("sum(rate(ray_tune_trials_finished_total[5m])) * 60", "trials/min"),)),
        Panel("Best objective over time", (T("max by (experiment) (ray_tune_best_objective)",
                                             "{{experiment}}"),)),
        Panel("Ray tasks by state", (T("sum by (State) (ray_tasks)", "{{State}}"),),
              width=24, height=6, description="Trials run as Ray tasks and actors."),
    ),
)

CROSS_VENUE = Dashboard(
    uid="spark-ray-cross-venue", title="Spark-Ray / Cross-Venue", slug="cross-venue",
    description="One asset across exchanges (spark-ray streams up --exchange binance,btcturk): "
                "best bid/ask per venue in the reference quote, cross-venue spread and basis "
                "in bps, the conversion rate used and its source.",
    panels=(
        Panel("Widest cross-venue spread (bps)",
              (T("max(ray_crossvenue_spread_bps)"),), kind="stat", width=8, height=5,
              description="Best ask minus best bid across venues over their mid; negative: a "
                          "venue bids above another's offer (before fees)."),
        Panel("Largest |basis| (bps)", (T("max(abs(ray_crossvenue_basis_bps))"),), kind="stat",
              width=8, height=5, description="A venue's mid against the reference venue's."),
        Panel("Oldest quote in the view", (T("max(ray_crossvenue_quote_age_seconds)"),),
              kind="stat", unit="s", width=8, height=5,
              description="Quotes older than --cross-max-age-s leave the view (NaN)."),
        Panel("Bid/ask by venue (reference quote)",
              (T("max by (asset, venue, quote) (ray_crossvenue_bid)",
                 "{{asset}} {{venue}} bid ({{quote}})"),
               T("max by (asset, venue, quote) (ray_crossvenue_ask)",
                 "{{asset}} {{venue}} ask ({{quote}})")),
              description="Each venue's best bid and ask converted into the reference quote; "
                          "gaps: the venue was excluded (stale, or no conversion rate)."),
        Panel("Cross-venue spread (bps)",
              (T("max by (asset, quote) (ray_crossvenue_spread_bps)", "{{asset}}/{{quote}}"),),
              description="(best ask - best bid) / mid x 10,000 across venues."),
        Panel("Basis vs the reference venue (bps)",
              (T("max by (asset, venue, reference) (ray_crossvenue_basis_bps)",
                 "{{asset}} {{venue}} vs {{reference}}"),),
              description="(mid_venue / mid_reference - 1) x 10,000; the reference venue is "
                          "the first --exchange quoting the asset."),
        Panel("Conversion rate used",
              (T("max by (currency, quote, source) (ray_crossvenue_rate)",
                 "{{currency}} per {{quote}}: {{source}}"),),
              description="Units of the venue's quote currency per reference unit, and where "
                          "it came from (a venue's book mid, its last trade, or a fixed rate)."),
        Panel("Quote age by venue",
              (T("max by (asset, venue, source) (ray_crossvenue_quote_age_seconds)",
                 "{{asset}} {{venue}} ({{source}})"),), unit="s",
              description="Seconds since the venue's quote last changed; source last_trade: "
                          "the venue has no book stream, its last trade stands in."),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (STREAMS_FABRIC, LAG_GAPS, EVENT_TO_DB, UPTIME, TRADING,
                                     OPTIMIZATION, CROSS_VENUE)


# --- Grafana JSON model -------------------------------------------------------------------------

def _layout(panels: tuple[Panel, ...]) -> list[dict[str, int]]:
    """Left-to-right rows on Grafana's 24-column grid."""
    out, x, y, row_h = [], 0, 0, 0
    for p in panels:
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append({"x": x, "y": y, "w": p.width, "h": p.height})
        x += p.width
        row_h = max(row_h, p.height)
    return out


def _panel_json(p: Panel, pid: int, pos: dict[str, int],
                alert_thresholds: list[thresholds.Threshold]) -> dict[str, Any]:
    targets = [{"datasource": DATASOURCE, "expr": t.expr, "legendFormat": t.legend or "__auto",
                "refId": chr(ord("A") + i), "range": p.kind != "stat", "instant": p.kind == "stat",
                **({"format": "heatmap"} if p.kind == "heatmap" else {})}
               for i, t in enumerate(p.targets)]
    panel: dict[str, Any] = {
        "id": pid, "type": p.kind, "title": p.title, "description": p.description,
        "datasource": DATASOURCE, "gridPos": pos, "targets": targets,
        "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
    }
    if p.kind == "timeseries":
        panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom",
                                       "showLegend": True},
                            "tooltip": {"mode": "multi", "sort": "none"}}
    elif p.kind == "stat":
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "",
                                              "values": False},
                            "colorMode": "value", "graphMode": "area", "textMode": "auto"}
        # Coloured by the alerts on the same metric (grafana/alerts/*.yml): a p95 of 4,761 ms
        # must not show green when the alert warns at 300 ms.
        matched = thresholds.for_expr(p.targets[0].expr, alert_thresholds) if p.targets else []
        panel["fieldConfig"]["defaults"].update(
            thresholds=thresholds.grafana_steps(matched), color={"mode": "thresholds"})
        if matched:
            panel["description"] = (p.description + " " if p.description else "") + (
                "Colour: the alerts " + ", ".join(sorted({t.alert for t in matched})) + ".")
    elif p.kind == "heatmap":
        panel["options"] = {"calculate": False, "yAxis": {"unit": p.unit},
                            "cellGap": 1, "color": {"mode": "scheme", "scheme": "Oranges"}}
    return panel


def to_grafana(d: Dashboard, alerts_dir: Path | None = None) -> dict[str, Any]:
    """The dashboard's Grafana JSON model (importable; datasource as a variable); stat panels
    take their colours from the alert rules in ``alerts_dir`` (default ``grafana/alerts``)."""
    alert_thresholds = thresholds.load(alerts_dir)
    return {
        "uid": d.uid, "title": d.title, "description": d.description, "tags": list(d.tags),
        "editable": True, "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION, "version": 1,
        "refresh": "10s", "time": {"from": "now-30m", "to": "now"}, "timezone": "utc",
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "refresh": 1, "regex": "",
        }]},
        "annotations": {"list": [{
            "name": "Alerts", "datasource": DATASOURCE, "enable": True,
            "expr": 'ALERTS{alertstate="firing"}', "titleFormat": "{{alertname}}",
            "textFormat": "{{severity}}", "iconColor": "red",
        }]},
        "panels": [_panel_json(p, i + 1, pos, alert_thresholds)
                   for i, (p, pos) in enumerate(zip(d.panels, _layout(d.panels), strict=True))],
    }


def from_grafana(model: dict[str, Any]) -> Dashboard:
    """Read a Grafana JSON model back (what the renderer uses for files given on the CLI)."""
    panels = []
    for p in model.get("panels", []):
        targets = tuple(Target(t["expr"], "" if t.get("legendFormat") == "__auto"
                               else t.get("legendFormat", "")) for t in p.get("targets", [])
                        if t.get("expr"))
        unit = p.get("fieldConfig", {}).get("defaults", {}).get("unit", "short")
        pos = p.get("gridPos", {})
        steps = p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get(
            "steps", [])
        panels.append(Panel(p.get("title", ""), targets, p.get("type", "timeseries"), unit,
                            p.get("description", ""), pos.get("w", 12), pos.get("h", 8),
                            tuple(steps)))
    slug = re.sub(r"[^a-z0-9]+", "-", model.get("title", "dashboard").lower()).strip("-")
    return Dashboard(model.get("uid", slug), model.get("title", slug), slug,
                     model.get("description", ""), tuple(panels))


def render_json(d: Dashboard) -> str:
    return json.dumps(to_grafana(d), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path | None = None) -> list[Path]:
    out = folder or grafana_dir() / "dashboards"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in DASHBOARDS:
        path = out / f"{d.slug}.json"
        path.write_text(render_json(d))
        paths.append(path)
    return paths


def load_all(folder: Path | None = None) -> list[Dashboard]:
    """The dashboards as shipped in ``grafana/dashboards`` (what Grafana would show)."""
    root = folder or grafana_dir() / "dashboards"
    return [from_grafana(json.loads(p.read_text())) for p in sorted(root.glob("*.json"))]


if __name__ == "__main__":
    for path in write_all(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(path)
