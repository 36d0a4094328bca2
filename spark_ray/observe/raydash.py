"""The Ray dashboard's HTTP APIs, with Ray's token authentication (kept on).

Ray 2.60 answers 401 without ``Authorization: Bearer <token>``; the token is ``$RAY_AUTH_TOKEN``,
else the file ``$RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` (Ray's own lookup order).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from spark_ray.httpopen import urlopen


def auth_token() -> str | None:
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token:
        return token.strip()
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


class RayDashboard:
    def __init__(self, url: str, timeout_s: float = 15.0) -> None:
        self.url = url.rstrip("/") if "://" in url else f"http://{url.rstrip('/')}"
        self.timeout_s = timeout_s

    def get(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        req = urllib.request.Request(f"{self.url}{path}" + (f"?{query}" if query else ""))
        token = auth_token()
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urlopen(req, timeout=self.timeout_s) as r:
            return json.loads(r.read())

    def actors(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every actor the state API knows (``/api/v0/actors``), alive or dead."""
        body = self.get("/api/v0/actors", limit=limit, detail=1)
        return list(body["data"]["result"]["result"])

    def alive_by_name(self, namespace: str | None = None) -> dict[str, dict[str, Any]]:
        """Alive named actors by name; names repeat across namespaces, so pass ``namespace``
        to look at one."""
        return {a["name"]: a for a in self.actors()
                if a.get("name") and a["state"] == "ALIVE"
                and (namespace is None or a.get("ray_namespace") == namespace)}

    def prometheus_health(self) -> tuple[bool, str]:
        """Whether the dashboard reaches the Prometheus it was configured with."""
        try:
            body = self.get("/api/prometheus_health")
        except urllib.error.HTTPError as e:
            return False, e.read().decode(errors="replace")[:300]
        except OSError as e:
            return False, str(e)
        return bool(body.get("result")), body.get("msg", "")
