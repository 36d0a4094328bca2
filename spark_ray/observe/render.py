"""Dashboards as pictures: each dashboard's panels, queried from a real Prometheus, drawn to PNG.

A reviewer without Grafana sees what Grafana would show for a run: the same panel layout (Grafana's
24-column grid), the same PromQL (read from ``grafana/dashboards/*.json``), time series as lines,
stats as numbers, the latency heatmap as a heatmap. Panels with no data say so ("no data").

    python -m spark_ray.observe.render --prometheus http://127.0.0.1:9090 --out pngs/ [--minutes 15]
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_ray.observe.dashboards import Dashboard, Panel, load_all
from spark_ray.observe.prom import PromClient, PrometheusError
from spark_ray.observe.thresholds import colour_for

_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass
class Series:
    label: str
    times: list[float]
    values: list[float]

    @property
    def finite(self) -> bool:
        return any(math.isfinite(v) for v in self.values)


@dataclass
class PanelData:
    panel: Panel
    series: list[Series] = field(default_factory=list)
    error: str | None = None

    @property
    def has_data(self) -> bool:
        return any(s.finite for s in self.series)


def legend(fmt: str, metric: dict[str, str]) -> str:
    if fmt:
        return _LEGEND.sub(lambda m: metric.get(m.group(1), ""), fmt).strip() or "value"
    shown = {k: v for k, v in metric.items() if k != "__name__"}
    return ",".join(f"{k}={v}" for k, v in sorted(shown.items())) or "value"


def query_panel(client: PromClient, panel: Panel, start: float, end: float,
                step: float) -> PanelData:
    """Every target of a panel over ``[start, end]`` (range queries, as Grafana runs them)."""
    data = PanelData(panel)
    for t in panel.targets:
        try:
            result = _query_range(client, t.expr, start, end, step)
        except PrometheusError as e:
            data.error = str(e)
            continue
        for r in result:
            pts = r.get("values", [])
            data.series.append(Series(legend(t.legend, r["metric"]), [float(p[0]) for p in pts],
                                      [float(p[1]) for p in pts]))
    return data


def _query_range(client: PromClient, expr: str, start: float, end: float, step: float,
                 attempts: int = 3) -> list[dict[str, Any]]:
    """A range query, asked again after a transient failure (a busy Prometheus times out):
    one slow answer must not draw a panel as empty."""
    for i in range(attempts):
        try:
            return client.query_range(expr, start, end, step)
        except PrometheusError:
            if i == attempts - 1:
                raise
            time.sleep(1.0 + i)
    return []


def _fmt(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "NaN"
    suffix = {"ms": " ms", "s": " s", "percentunit": ""}.get(unit, "")
    if unit == "percentunit":
        return f"{v * 100:.2f}%"
    if abs(v) >= 1e6:
        return f"{v / 1e6:.2f}M{suffix}"
    if abs(v) >= 1e4:
        return f"{v / 1e3:.1f}k{suffix}"
    if abs(v) >= 100:
        return f"{v:.0f}{suffix}"
    return f"{v:.3g}{suffix}"


# Grafana's named colours as the PNG draws them.
COLOURS = {"green": "#1f6f3f", "orange": "#d9730d", "red": "#c4162a", "text": "#303030"}


def stat_colour(p: Panel, value: float) -> str:
    """The colour Grafana gives ``value`` under the panel's threshold steps (the alerts')."""
    if not math.isfinite(value) or not p.steps:
        return COLOURS["text"]
    name = colour_for(value, list(p.steps))
    return COLOURS.get(name, name)


def _draw_panel(ax: Any, pd: PanelData, start: float, end: float) -> None:
    p = pd.panel
    ax.set_title(p.title, fontsize=9, loc="left")
    if not pd.has_data:
        ax.text(0.5, 0.5, "no data" if pd.error is None else f"error: {pd.error[:60]}",
                ha="center", va="center", transform=ax.transAxes, color="gray", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if p.kind == "stat":
        lines = []
        for s in pd.series[:4]:
            last = next((v for v in reversed(s.values) if math.isfinite(v)), float("nan"))
            lines.append((s.label, _fmt(last, p.unit), stat_colour(p, last)))
        big = len(lines) == 1
        for i, (label, val, colour) in enumerate(lines):
            y = 0.5 if big else 0.85 - i * 0.22
            ax.text(0.5, y, val if big else f"{label}: {val}", ha="center", va="center",
                    transform=ax.transAxes, fontsize=22 if big else 10, color=colour,
                    fontweight="bold")
        ax.set_xticks([])
        ax.set_yticks([])
        return
    if p.kind == "heatmap":
        _draw_heatmap(ax, pd, start)
        return
    scale, unit_name = _xscale(start, end)
    for s in pd.series[:12]:
        xs = [(t - end) / scale for t in s.times]
        ax.plot(xs, s.values, linewidth=1.2, label=s.label[:40], marker="." if len(xs) < 30
                else None, markersize=3)
    ax.set_xlim((start - end) / scale, 0)
    ax.set_xlabel(f"{unit_name} before end", fontsize=7)
    if p.unit not in ("short", ""):
        ax.set_ylabel(p.unit, fontsize=7)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if len(pd.series) <= 12:
        ax.legend(fontsize=6, loc="upper left", framealpha=0.6)
    else:
        ax.text(0.99, 0.98, f"{len(pd.series)} series (12 shown)", ha="right", va="top",
                transform=ax.transAxes, fontsize=6)


def _xscale(start: float, end: float) -> tuple[float, str]:
    return (1.0, "seconds") if end - start <= 180 else (60.0, "minutes")


def _draw_heatmap(ax: Any, pd: PanelData, start: float) -> None:
    import numpy as np

    def le(s: Series) -> float:
        return float("inf") if s.label in ("+Inf", "Inf") else float(s.label)

    buckets = sorted((s for s in pd.series if s.label), key=le)
    times = sorted({t for s in buckets for t in s.times})
    idx = {t: i for i, t in enumerate(times)}
    cum = np.zeros((len(buckets), len(times)))
    for b, s in enumerate(buckets):
        for t, v in zip(s.times, s.values, strict=True):
            cum[b, idx[t]] = v if math.isfinite(v) else 0.0
    per = np.diff(np.vstack([np.zeros((1, len(times))), cum]), axis=0).clip(min=0)
    end = times[-1] if times else start
    scale, unit_name = _xscale(start, end)
    ax.imshow(per, aspect="auto", origin="lower", cmap="Oranges", interpolation="nearest",
              extent=((times[0] - end) / scale if times else 0, 0, 0, len(buckets)))
    ax.set_yticks([i + 0.5 for i in range(len(buckets))])
    ax.set_yticklabels([f"≤{s.label}" for s in buckets], fontsize=6)
    ax.set_xlabel(f"{unit_name} before end", fontsize=7)
    ax.set_ylabel(f"{pd.panel.unit} bucket (rate/s)", fontsize=7)
    ax.tick_params(labelsize=7)


def render_dashboard(client: PromClient, dash: Dashboard, out: Path, *, start: float,
                     end: float, step: float | None = None) -> dict[str, Any]:
    """Query every panel and draw the dashboard to ``out`` (PNG). Returns per-panel facts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    from spark_ray.observe.dashboards import _layout

    step = step or max(1.0, (end - start) / 240)
    data = [query_panel(client, p, start, end, step) for p in dash.panels]
    layout = _layout(dash.panels)
    rows = max(pos["y"] + pos["h"] for pos in layout) if layout else 1
    fig = plt.figure(figsize=(16, max(3.0, rows * 0.45 + 0.8)))
    grid = GridSpec(rows, 24, figure=fig, hspace=7.0, wspace=3.0,
                    top=1 - 0.8 / (rows * 0.45 + 0.8), bottom=0.04, left=0.04, right=0.99)
    for pd, pos in zip(data, layout, strict=True):
        ax = fig.add_subplot(grid[pos["y"]:pos["y"] + pos["h"], pos["x"]:pos["x"] + pos["w"]])
        _draw_panel(ax, pd, start, end)
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(end))
    fig.suptitle(f"{dash.title}  —  {(end - start) / 60:.1f} min to {when}  ({client.url})",
                 fontsize=12, x=0.01, ha="left")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return {"dashboard": dash.title, "png": str(out),
            "panels": {pd.panel.title: {"series": len(pd.series), "has_data": pd.has_data,
                                        **({"error": pd.error} if pd.error else {})}
                       for pd in data}}


def render_all(client: PromClient, out_dir: Path, *, minutes: float = 15.0,
               end: float | None = None, dashboards: list[Dashboard] | None = None,
               ) -> list[dict[str, Any]]:
    end = end or time.time()
    start = end - minutes * 60
    return [render_dashboard(client, d, out_dir / f"{d.slug}.png", start=start, end=end)
            for d in (dashboards or load_all())]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m spark_ray.observe.render",
                                 description="Render the Grafana dashboards to PNG from a "
                                             "Prometheus' query results.")
    ap.add_argument("--prometheus", required=True, help="Prometheus URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--out", type=Path, required=True, help="folder for the PNGs")
    ap.add_argument("--minutes", type=float, default=15.0, help="time window (default 15)")
    args = ap.parse_args(argv)
    for r in render_all(PromClient(args.prometheus), args.out, minutes=args.minutes):
        with_data = sum(1 for p in r["panels"].values() if p["has_data"])
        print(f"{r['png']}: {with_data}/{len(r['panels'])} panels with data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
