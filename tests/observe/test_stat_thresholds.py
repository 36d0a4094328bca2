"""Stat panels colour by the alert thresholds: both files parsed, no number written twice.

The demo showed event-to-store p95 4,761 ms in green while the alert warns at 300 ms. Every stat
panel in ``grafana/dashboards/*.json`` whose metric (and quantile) an alert in
``grafana/alerts/*.yml`` compares must carry exactly that alert's thresholds; the generator reads
them from the rules, so changing a rule changes the colours.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from spark_ray.observe import grafana_dir, thresholds
from spark_ray.observe.dashboards import STREAMS_FABRIC, from_grafana, load_all, to_grafana
from spark_ray.observe.render import COLOURS, stat_colour


def _stat_panels() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted((grafana_dir() / "dashboards").glob("*.json")):
        for p in json.loads(path.read_text())["panels"]:
            if p["type"] == "stat":
                out.append((path.name, p))
    return out


def _alert_rules() -> dict[str, dict[str, Any]]:
    rules = {}
    for path in sorted((grafana_dir() / "alerts").glob("*.yml")):
        for g in yaml.safe_load(path.read_text())["groups"]:
            for r in g["rules"]:
                if "alert" in r:
                    rules[r["alert"]] = r
    return rules


def test_every_stat_panel_with_an_alert_uses_its_thresholds() -> None:
    alerts = thresholds.load()
    judged = 0
    for name, p in _stat_panels():
        expr = p["targets"][0]["expr"]
        matched = thresholds.for_expr(expr, alerts)
        steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert p["fieldConfig"]["defaults"]["color"] == {"mode": "thresholds"}, (name, p["title"])
        if not matched:
            assert [s["color"] for s in steps] == ["text"], (name, p["title"])
            continue
        judged += 1
        # every alert limit is a step, in its severity's colour, and nothing else is
        want = sorted((thresholds.step_value(t), t.colour) for t in matched if t.op == ">")
        got = sorted((s["value"], s["color"]) for s in steps if s["value"] is not None)
        if want:
            assert got == want and steps[0] == {"color": "green", "value": None}, (name, p)
        else:  # a "too low" alert: its colour below the limit, green from it on
            (t,) = matched
            assert steps == [{"color": t.colour, "value": None},
                             {"color": "green", "value": t.value}], (name, p)
    assert judged >= 5  # the fabric's p95, lag, gaps, rate and the event-to-db p95 at least


def test_event_to_store_panels_carry_the_yaml_numbers() -> None:
    rules = _alert_rules()
    limits = {}
    for alert in ("StreamsEventToStoreSlow", "StreamsEventToStoreCritical"):
        m = re.search(r">\s*([0-9.]+)\s*$", " ".join(rules[alert]["expr"].split()))
        assert m, alert
        limits[rules[alert]["labels"]["severity"]] = float(m.group(1))
    assert limits == {"warning": 300.0, "critical": 1000.0}  # what the issue quotes
    for name, p in _stat_panels():
        if "ray_streams_event_to_db_ms" in p["targets"][0]["expr"] and "0.95" in \
                p["targets"][0]["expr"]:
            steps = p["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert [(s["color"], s["value"] and round(s["value"], 6)) for s in steps] == [
                ("green", None), ("orange", 300.0), ("red", 1000.0)], name


def test_changing_an_alert_rule_changes_the_panel_colours(tmp_path: Path) -> None:
    alerts = tmp_path / "alerts"
    shutil.copytree(grafana_dir() / "alerts", alerts)
    rules = alerts / "spark-ray.yml"
    text = rules.read_text()
    assert "> 300\n" in text
    rules.write_text(text.replace("> 300\n", "> 250\n", 1))
    model = to_grafana(STREAMS_FABRIC, alerts_dir=alerts)
    (p,) = [p for p in model["panels"] if p["title"] == "Event-to-store p95"]
    values = [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert values == [None, math.nextafter(250.0, math.inf), math.nextafter(1000.0, math.inf)]


def test_the_png_renderer_colours_stats_as_grafana_would() -> None:
    panels = {p.title: p for d in load_all() for p in d.panels if p.kind == "stat"}
    p95 = panels["Event-to-store p95"]
    assert stat_colour(p95, 4761.0) == COLOURS["red"]  # the demo's number
    assert stat_colour(p95, 450.0) == COLOURS["orange"]
    assert stat_colour(p95, 47.0) == COLOURS["green"]
    gaps = panels["Unrepaired sequence gaps"]
    assert stat_colour(gaps, 0.0) == COLOURS["green"]  # "> 0" leaves 0 green
    assert stat_colour(gaps, 1.0) == COLOURS["red"]
    rate = panels["Messages/s (all streams)"]
    assert stat_colour(rate, 0.05) == COLOURS["orange"] and stat_colour(rate, 32) == COLOURS[
        "green"]
    assert stat_colour(panels["PnL"], -5.0) == COLOURS["text"]  # no alert judges it
    # the steps survive the JSON round trip the renderer reads
    again = from_grafana(to_grafana(STREAMS_FABRIC))
    assert all(p.steps for p in again.panels if p.kind == "stat")
