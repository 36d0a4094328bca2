"""Firing alerts for the console: from Alertmanager when one runs (silences and the
notifications it routed to the console), else straight from Prometheus.

Acknowledging is the console's own idea (Alertmanager has none): an acknowledgement is a
journal line, shown beside the alert until it resolves. Silencing is Alertmanager's: a silence
matching the alert's name for the given minutes, created by its v2 API.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from spark_ray.httpopen import urlopen

TIMEOUT_S = 3.0


def _get(url: str) -> Any:
    with urlopen(url, timeout=TIMEOUT_S) as resp:
        return json.loads(resp.read())


class AlertSource:
    def __init__(self, prometheus: str | None, alertmanager: str | None) -> None:
        self.prometheus = prometheus.rstrip("/") if prometheus else None
        self.alertmanager = alertmanager.rstrip("/") if alertmanager else None
        self.notifications: deque[dict[str, Any]] = deque(maxlen=200)

    def healthy(self, url: str | None) -> tuple[bool, str]:
        if not url:
            return False, "not configured"
        try:
            with urlopen(f"{url}/-/healthy", timeout=TIMEOUT_S) as resp:
                return resp.status == 200, url
        except (OSError, urllib.error.URLError) as exc:
            return False, f"{url}: {getattr(exc, 'reason', exc)}"

    def firing(self, acks: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``GET /api/alerts``: every active alert with silence and acknowledgement."""
        doc: dict[str, Any] = {"source": None, "url": None, "alerts": [],
                               "notifications": list(self.notifications)[-50:]}
        try:
            if self.alertmanager:
                doc.update(source="alertmanager", url=self.alertmanager)
                for a in _get(f"{self.alertmanager}/api/v2/alerts"):
                    labels = a.get("labels", {})
                    st = a.get("status", {})
                    doc["alerts"].append(self._row(
                        labels, a.get("annotations", {}), a.get("startsAt"),
                        st.get("state", "active"), bool(st.get("silencedBy")),
                        a.get("fingerprint"), acks))
            elif self.prometheus:
                doc.update(source="prometheus", url=self.prometheus)
                for a in _get(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]:
                    if a.get("state") != "firing":
                        continue
                    doc["alerts"].append(self._row(
                        a.get("labels", {}), a.get("annotations", {}), a.get("activeAt"),
                        "firing", False, None, acks))
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            doc["error"] = f"{doc['source']}: {getattr(exc, 'reason', exc)}"
        return doc

    @staticmethod
    def _row(labels: dict[str, str], ann: dict[str, str], since: str | None, state: str,
             silenced: bool, fingerprint: str | None, acks: dict[str, dict[str, Any]]
             ) -> dict[str, Any]:
        name = labels.get("alertname", "?")
        ack = acks.get(name)
        if ack is not None and since and ack.get("time", 0) < _epoch(since):
            ack = None  # acknowledged an earlier firing, not this one
        return {"fingerprint": fingerprint, "name": name,
                "severity": labels.get("severity"), "state": state, "since": since,
                "summary": ann.get("summary") or ann.get("description"), "labels": labels,
                "silenced": silenced, "acknowledged": ack}

    def silence(self, alert: str, minutes: float, who: str, reason: str) -> dict[str, Any]:
        if not self.alertmanager:
            raise RuntimeError("no Alertmanager configured (spark-ray console --alertmanager)")
        now = datetime.now(UTC)
        body = {"matchers": [{"name": "alertname", "value": alert, "isRegex": False,
                              "isEqual": True}],
                "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=minutes))
                .isoformat(), "createdBy": who, "comment": reason or "from console"}
        req = urllib.request.Request(f"{self.alertmanager}/api/v2/silences",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urlopen(req, timeout=TIMEOUT_S) as resp:
            return {"silence_id": json.loads(resp.read()).get("silenceID"),
                    "until": body["endsAt"]}

    def notified(self, payload: dict[str, Any]) -> int:
        """Alertmanager's webhook notification (``POST /api/alerts/webhook``), kept for the
        page; returns how many alerts it carried."""
        alerts = payload.get("alerts") or []
        for a in alerts:
            self.notifications.append({
                "received": time.time(), "status": a.get("status"),
                "name": (a.get("labels") or {}).get("alertname"),
                "startsAt": a.get("startsAt"), "endsAt": a.get("endsAt")})
        return len(alerts)


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
