"""Alerts as the canary sees them: Prometheus ``/api/v1/alerts`` polled into a timeline.

:class:`AlertTimeline` is pure (fed ``(now, alerts)``), so when an alert went pending, fired and
resolved is computed the same way in tests and in a run; :func:`matching` decides whether an
active alert is the one an experiment expects (its name and the labels it must carry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def alert_key(alert: dict[str, Any]) -> str:
    labels = alert.get("labels", {})
    inner = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    return f"{labels.get('alertname', '?')}{{{inner}}}"


def matching(alerts: list[dict[str, Any]], name: str, labels: dict[str, str] | None = None,
             states: tuple[str, ...] = ("firing",)) -> list[dict[str, Any]]:
    """The active alerts named ``name`` in one of ``states`` that carry every label given."""
    want = labels or {}
    out = []
    for a in alerts:
        lab = a.get("labels", {})
        if lab.get("alertname") != name or a.get("state") not in states:
            continue
        if all(lab.get(k) == v for k, v in want.items()):
            out.append(a)
    return out


@dataclass
class Episode:
    """One alert instance (name + labels) from first seen active to gone."""

    key: str
    pending_at: float | None = None
    firing_at: float | None = None
    gone_at: float | None = None
    max_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"alert": self.key, "pending_at": self.pending_at, "firing_at": self.firing_at,
                "resolved_at": self.gone_at, "max_value": self.max_value}


@dataclass
class AlertTimeline:
    """Every alert episode seen while polling, in order of first appearance."""

    episodes: list[Episode] = field(default_factory=list)
    _open: dict[str, Episode] = field(default_factory=dict)

    def update(self, now: float, alerts: list[dict[str, Any]]) -> None:
        seen = set()
        for a in alerts:
            key = alert_key(a)
            seen.add(key)
            ep = self._open.get(key)
            if ep is None:
                ep = self._open[key] = Episode(key)
                self.episodes.append(ep)
            state = a.get("state")
            if state == "pending" and ep.pending_at is None:
                ep.pending_at = now
            if state == "firing" and ep.firing_at is None:
                ep.firing_at = now
                if ep.pending_at is None:
                    ep.pending_at = now
            try:
                v = float(a.get("value", "nan"))
            except (TypeError, ValueError):
                v = None
            if v is not None and v == v:  # not NaN
                ep.max_value = v if ep.max_value is None else max(ep.max_value, v)
        for key in list(self._open):
            if key not in seen:
                self._open.pop(key).gone_at = now

    def fired(self) -> list[str]:
        """Names of every alert that fired (deduplicated, first firing first)."""
        names: list[str] = []
        for ep in sorted((e for e in self.episodes if e.firing_at is not None),
                         key=lambda e: e.firing_at or 0.0):
            name = ep.key.split("{", 1)[0]
            if name not in names:
                names.append(name)
        return names

    def to_list(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.episodes]
