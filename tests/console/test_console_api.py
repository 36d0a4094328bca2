"""The console's JSON API on Ray Serve against the live platform (tests/console/conftest.py):
what each page shows, the guard on every mutation, the journal, approvals and evidence."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from console_helpers import TOKEN, call

pytestmark = pytest.mark.timeout(600)


def wait(fn: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_health_lists_every_service_and_the_node(platform: Any) -> None:
    code, doc = call(platform.url + "/api/health")
    assert code == 200
    kinds = {s["kind"]: s for s in doc["services"]}
    assert {"fabric", "executor", "breaker", "console"} <= set(kinds), doc["services"]
    names = {s["name"] for s in doc["services"]}
    assert {"fabric:binance", platform.executor, platform.breaker} <= names
    assert kinds["console"]["ok"] and kinds["breaker"]["ok"]
    (node,) = doc["nodes"]
    assert node["alive"] and node["resources"]["CPU"] >= 1
    assert node["available"] is not None


def test_streams_show_live_numbers_and_the_event_stream_updates(platform: Any) -> None:
    def row() -> dict[str, Any] | None:
        doc = call(platform.url + "/api/streams")[1]
        rows = [r for e in doc["exchanges"] for r in e["symbols"] if r["symbol"] == "BTCUSDT"]
        return rows[0] if rows and rows[0]["messages"] else None

    first = wait(row)
    assert first and first["rate_per_s"] > 0 and first["last_message_age_s"] < 10
    assert first["dead_letters"] == 0 and first["gaps_unrepaired"] == 0
    # Server-sent events: two documents a second apart, the count of messages moving on.
    with urllib.request.urlopen(platform.url + "/api/streams/live", timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        docs = []
        while len(docs) < 3:
            line = r.readline().decode()
            if line.startswith("data: "):
                docs.append(json.loads(line[6:]))
    counts = [d["exchanges"][0]["symbols"][0]["stored"] for d in docs]
    assert docs[-1]["at"] - docs[0]["at"] >= 1.5
    assert counts[-1] > counts[0], counts


def test_trading_shows_the_executor_and_the_breaker_tree(platform: Any) -> None:
    def doc() -> dict[str, Any] | None:
        d = call(platform.url + "/api/trading")[1]
        ex = [e for e in d["executors"] if e["name"] == platform.executor]
        return d if ex and len(ex[0]["equity_curve"]) >= 2 else None

    d = wait(doc)
    assert d, "no equity curve"
    (ex,) = [e for e in d["executors"] if e["name"] == platform.executor]
    assert ex["mode"] == "paper" and "BTCUSDT" in ex["positions"]
    assert ex["latency_ms"]["count"] >= 0 and "pnl" in ex
    times = [t for t, _ in ex["equity_curve"]]
    assert times == sorted(times) and len(set(times)) == len(times)  # one point per bar
    assert all(f["time"] and f["side"] for f in ex["fills"])
    assert all(e["event"] and e["time"] for e in d["breakers"][0]["events"])
    (br,) = [b for b in d["breakers"] if b["name"] == platform.breaker]
    assert br["scopes"][0]["scope"] == "global"
    assert br["state"] == "ARMED"


def _breaker_scope_state(platform: Any, scope: str = "global") -> str:
    d = call(platform.url + "/api/trading")[1]
    (br,) = [b for b in d["breakers"] if b["name"] == platform.breaker]
    return {s["scope"]: s["state"] for s in br["scopes"]}[scope]


def test_mutations_are_refused_without_token_cross_site_or_not_json(platform: Any) -> None:
    url = platform.url + "/api/breaker/trip"
    body = {"who": "mallory", "reason": "test", "breaker": platform.breaker}
    assert call(url, "POST", body)[0] == 401
    code, err = call(url, "POST", body, token="wrong-token")
    assert code == 401 and err["error"] == "wrong operator token"
    assert TOKEN not in json.dumps(err)
    # A page on another site cannot post, even with a token a browser might attach.
    assert call(url, "POST", body, token=TOKEN,
                headers={"Origin": "http://evil.example"})[0] == 403
    req = urllib.request.Request(url, data=b"who=m&reason=x", method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Bearer {TOKEN}"})
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=30)
    assert exc.value.code == 415
    assert call(url, "POST", {"reason": "no who"}, token=TOKEN)[0] == 400
    code, err = call(platform.url + "/api/executor/kill", "POST",
                     {"executor": "executor:nobody", "who": "x", "reason": "y"}, token=TOKEN)
    assert code == 400 and "executor:nobody" in err["error"]
    assert call(platform.url + "/api/executor/kill", "POST",
                {"executor": platform.executor, "who": "x", "reason": "y"})[0] == 401
    assert _breaker_scope_state(platform) == "ARMED"
    journal = platform.runs / "console-journal.jsonl"
    assert not journal.exists() or "mallory" not in journal.read_text()


def test_trip_reset_and_dry_run_with_the_token_are_journaled(platform: Any) -> None:
    base = {"who": "alice", "reason": "console test", "breaker": platform.breaker}
    code, res = call(platform.url + "/api/breaker/trip", "POST", base, token=TOKEN)
    assert code == 200, res
    assert _breaker_scope_state(platform) == "TRIPPED"
    code, res = call(platform.url + "/api/breaker/reset", "POST", base, token=TOKEN)
    assert code == 200, res
    assert _breaker_scope_state(platform) == "ARMED"
    code, res = call(platform.url + "/api/breaker/dry-run", "POST", {**base, "on": True},
                     token=TOKEN)
    assert code == 200
    call(platform.url + "/api/breaker/dry-run", "POST", {**base, "on": False}, token=TOKEN)
    assert call(platform.url + "/api/breaker/trip", "POST", {**base, "scope": "nonsense:x"},
                token=TOKEN)[0] == 400
    lines = [json.loads(x) for x in (platform.runs / "console-journal.jsonl").read_text()
             .splitlines()]
    mine = [e for e in lines if e["who"] == "alice"]
    assert [e["action"] for e in mine[:4]] == ["breaker-trip", "breaker-reset",
                                               "breaker-dry-run", "breaker-dry-run"]
    assert all(e["reason"] == "console test" and e["result"] == "ok" for e in mine[:4])
    assert TOKEN not in (platform.runs / "console-journal.jsonl").read_text()
    # the breaker's own journal names the console operator
    d = call(platform.url + "/api/trading")[1]
    (br,) = [b for b in d["breakers"] if b["name"] == platform.breaker]
    assert any(e.get("who") == "console:alice" for e in br["events"]), br["events"][:3]


def test_runs_backtest_leaderboard_and_approval(platform: Any) -> None:
    code, doc = call(platform.url + "/api/runs")
    assert code == 200 and doc["count"] >= 100
    trials = sum(r["summary"].get("optimization", {}).get("trials", 0) for r in doc["runs"])
    assert trials >= 1000
    bt = call(platform.url + f"/api/runs/{platform.ids['backtest']}")[1]["backtest"]
    assert bt["metrics"]["trades"] == 138 and len(bt["trades"]) == 138
    assert len(bt["equity"]["time"]) == len(bt["equity"]["price"]) > 1000
    big = call(platform.url + f"/api/runs/{platform.ids['big_leaderboard']}")[1]
    assert len(big["optimization"]["trials"]) == 1000
    assert big["optimization"]["trials"][0]["rank"] == 1
    assert big["optimization"]["pbo"] == 0.25 and big["optimization"]["trials"][0]["dsr"] >= 0
    assert call(platform.url + "/api/runs/..%2Fetc")[0] == 404
    # a failed review cannot be approved; a passed one can, once
    fail, ok = platform.ids["review_fail"], platform.ids["review_pass"]
    assert call(platform.url + f"/api/runs/{fail}")[1]["approvable"] is False
    code, err = call(platform.url + "/api/approve", "POST",
                     {"run": fail, "who": "bob", "reason": "try"}, token=TOKEN)
    assert code == 409 and "FAILED" in err["error"]
    assert not (platform.runs / fail / "approved.json").exists()
    if call(platform.url + f"/api/runs/{ok}")[1]["approvable"]:  # the browser test may be first
        code, res = call(platform.url + "/api/approve", "POST",
                         {"run": ok, "who": "bob", "reason": "reviewed"}, token=TOKEN)
        assert code == 200, res
    approval = json.loads((platform.runs / ok / "approved.json").read_text())
    from spark_ray.approval.approved import check

    assert check(platform.runs / ok / "approved.json")["params"] == approval["params"]
    assert call(platform.url + "/api/approve", "POST", {"run": ok, "who": "bob",
                                                        "reason": "again"}, token=TOKEN)[0] == 409


def test_data_chaos_and_evidence_verify_names_the_tampered_file(platform: Any) -> None:
    data = call(platform.url + "/api/data")[1]
    (cov,) = [c for c in data["coverage"] if c["symbol"] == "ETHBTC"]
    assert cov["interval"] == "5m" and cov["rows"] > 5000
    assert any(q["symbol"] == "ETHBTC" for q in data["quality"])
    chaos = call(platform.url + "/api/chaos")[1]
    assert chaos["table"]["rows"][0]["experiment"] == "lag_spike"
    bundle = platform.ids["evidence"]
    assert any(b["id"] == bundle for b in call(platform.url + "/api/evidence")[1]["bundles"])
    assert call(platform.url + f"/api/evidence/verify?bundle={bundle}")[1]["ok"] is True
    (platform.runs / bundle / "summary.json").write_text('{"ok": false}\n')
    res = call(platform.url + f"/api/evidence/verify?bundle={bundle}")[1]
    assert res["ok"] is False and res["tampered"] == ["summary.json"]
    (platform.runs / bundle / "summary.json").write_text('{\n  "ok": true\n}\n')


def test_the_console_is_in_the_ray_dashboards_serve_view(platform: Any, ray_session: Any) -> None:
    """The dashboard's Serve view reads /api/serve/applications/: the console is listed there,
    RUNNING, with its route."""
    from pathlib import Path

    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    req = urllib.request.Request(f"{ray_session.dashboard_url}/api/serve/applications/",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        apps = json.loads(r.read())["applications"]
    app = apps["spark-ray-console"]
    assert app["status"] == "RUNNING" and app["route_prefix"] == "/"
    assert "console" in app["deployments"]


def test_no_secret_in_any_page_or_api_answer(platform: Any, approver_keys: Any) -> None:
    """The operator token, the approvers' private keys and Ray's auth token appear in no page
    and no API answer of the console, after mutations have used them."""
    from pathlib import Path

    planted = [TOKEN]
    for key in (approver_keys / "keys").glob("*.key"):  # the PEM body of each private key
        planted += [line for line in key.read_text().splitlines() if "-----" not in line]
    ray_token = Path.home() / ".ray" / "auth_token"
    if ray_token.is_file() and ray_token.read_text().strip():
        planted.append(ray_token.read_text().strip())
    gets = ["/api/health", "/api/streams", "/api/trading", "/api/runs", "/api/data",
            "/api/alerts", "/api/chaos", "/api/evidence", "/api/journal",
            "/", "/streams", "/trading", "/research", "/data", "/alerts", "/chaos"]
    gets += [f"/api/runs/{r}" for r in list(platform.ids.values())[:5]]
    for path in gets:
        with urllib.request.urlopen(platform.url + path, timeout=60) as r:
            body = r.read().decode(errors="replace")
        assert not [p for p in planted if p in body], f"{path} shows a secret"
