"""Dashboards: importable Grafana JSON, datasource as a variable, every panel the issue names,
generated from the one Python definition; provisioning files for Grafana."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from spark_ray.observe import grafana_dir
from spark_ray.observe.dashboards import DASHBOARDS, load_all, render_json, to_grafana

GRAFANA = grafana_dir()


def test_json_files_are_generated_from_the_definitions() -> None:
    files = {p.name for p in (GRAFANA / "dashboards").glob("*.json")}
    assert files == {f"{d.slug}.json" for d in DASHBOARDS}
    for d in DASHBOARDS:
        assert (GRAFANA / "dashboards" / f"{d.slug}.json").read_text() == render_json(d), \
            "run: python -m spark_ray.observe.dashboards"


def test_every_panel_uses_the_datasource_variable() -> None:
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        model = json.loads(path.read_text())
        (var,) = [v for v in model["templating"]["list"] if v["type"] == "datasource"]
        assert var["name"] == "datasource" and var["query"] == "prometheus"
        assert model["uid"] and model["title"] and model["schemaVersion"] >= 36
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids))
        for p in model["panels"]:
            assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
            assert p["targets"], p["title"]
            for t in p["targets"]:
                assert t["datasource"]["uid"] == "${datasource}" and t["expr"]
            g = p["gridPos"]
            assert g["x"] >= 0 and g["x"] + g["w"] <= 24
        assert "DS_" not in path.read_text()  # no import-time inputs to fill in


def test_dashboards_cover_the_issue() -> None:
    titles = {d.title.split(" / ")[1]: d for d in load_all()}
    want = {
        "Streams Fabric": ["Messages/s", "Ingest lag", "Sequence gaps", "Event-to-store"],
        "Lag & Gaps": ["p95 ingest lag", "Sequence gaps total", "Out-of-order", "Duplicates"],
        "Event to DB": ["p95 event-to-store", "Latency distribution", "p95 by source",
                        "Percentiles"],
        "Uptime & Heartbeats": ["Connector status", "Heartbeat age", "WebSocket round trip"],
        "Trading": ["Orders/s by status", "Fills", "Position", "PnL", "Breaker state",
                    "Breaker trips", "Signal latency p99", "Signals published/s",
                    "Feature staleness"],
        "Optimization": ["Trials running", "Trials finished", "Best objective over time"],
        "Cross-Venue": ["Bid/ask by venue", "Cross-venue spread", "Basis vs the reference venue",
                        "Conversion rate used", "Quote age by venue"],
    }
    assert set(titles) == set(want)
    for name, needles in want.items():
        panels = [p.title for p in titles[name].panels]
        for needle in needles:
            assert any(p.startswith(needle) for p in panels), (name, needle, panels)
    heat = [p for p in titles["Event to DB"].panels if p.kind == "heatmap"]
    assert heat and "_bucket" in heat[0].targets[0].expr


def test_round_trip_through_grafana_json() -> None:
    for d in DASHBOARDS:
        again = load_all(GRAFANA / "dashboards")
        back = next(x for x in again if x.uid == d.uid)
        assert [p.title for p in back.panels] == [p.title for p in d.panels]
        assert [t.expr for p in back.panels for t in p.targets] == \
               [t.expr for p in d.panels for t in p.targets]
        assert to_grafana(d)["uid"] == d.uid


def test_provisioning_files() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "spark-ray.yml").read_text())
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["url"] == "${SPARK_RAY_PROMETHEUS_URL}"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "spark-ray.yml").read_text())
    (provider,) = prov["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${SPARK_RAY_GRAFANA_DASHBOARDS}"
    assert Path(GRAFANA / "README.md").read_text().count("observe up") >= 1
