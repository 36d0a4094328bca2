"""Each mutation kind through its real interface, and its line in the audit log: the
executor's ``POST /kill``, the fabric's ``POST /chaos``, the venue's admin endpoint, the
console's breaker trip (on a real breaker actor), the ``breaker``, ``params`` and ``signals``
CLIs; wrong tokens and the rate limit (429 with Retry-After) audited as refusals."""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spark_ray.audit import AUDIT_ENV, RATE_ENV, AuditLog, MutationLimiter

from helpers import cli_env, free_port, run_cli

TOKEN = "audit-test-token-" + secrets.token_hex(8)
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(url: str, body: Any = None, headers: dict[str, str] | None = None,
         method: str = "POST") -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with _OPENER.open(req, timeout=30) as r:
            status, hdrs, raw = r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, dict(e.headers), e.read()
    return status, {k.lower(): v for k, v in hdrs.items()}, json.loads(raw) if raw else None


def entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def assert_no_token(path: Path) -> None:
    assert TOKEN not in path.read_text()


@pytest.fixture
def audit_path(tmp_path: Path) -> Path:
    return tmp_path / "audit.jsonl"


# --- executor kill ----------------------------------------------------------------------------

class Executor:
    """The control plane's provider: what the executor actor answers (kill halts it)."""

    def __init__(self) -> None:
        self.killed: list[tuple[str, bool]] = []

    def status(self) -> dict[str, Any]:
        return {"name": "executor:audit", "started": True, "halted": bool(self.killed)}

    def positions(self) -> dict[str, Any]:
        return {}

    def orders(self, open_only: bool = False) -> list[dict[str, Any]]:
        return []

    async def kill(self, reason: str, flatten: bool) -> dict[str, Any]:
        self.killed.append((reason, flatten))
        return {"cancelled": 0}


def test_executor_kill_is_audited_with_refusals_and_the_rate_limit(
        loop: asyncio.AbstractEventLoop, audit_path: Path) -> None:
    from spark_ray.execution.control import ControlPlane, Token

    ex = Executor()
    plane = ControlPlane(ex, port=0, token=Token(TOKEN), audit=AuditLog(audit_path),
                         limiter=MutationLimiter(3, 60.0))
    asyncio.run_coroutine_threadsafe(plane.start(), loop).result(30)
    try:
        url = plane.url + "/kill"
        assert call(url, {}, {"Authorization": "Bearer wrong"})[0] == 401
        code, _, body = call(url, {"reason": "audit test", "flatten": True, "who": "alice"},
                             {"Authorization": f"Bearer {TOKEN}"})
        assert code == 200 and body["killed"], body
        assert ex.killed == [("audit test", True)]
        assert call(url, {"flatten": "yes"}, {"Authorization": f"Bearer {TOKEN}"})[0] == 400
        code, headers, body = call(url, {}, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 429 and int(headers["retry-after"]) >= 1 and "rate limited" in \
            body["error"]
        assert len(ex.killed) == 1  # the limited request changed nothing
    finally:
        asyncio.run_coroutine_threadsafe(plane.stop(), loop).result(30)
    bad, ok, invalid, limited = entries(audit_path)
    assert {e["action"] for e in (bad, ok, invalid, limited)} == {"executor-kill"}
    assert {e["source"] for e in (bad, ok, invalid, limited)} == {"127.0.0.1"}
    assert (bad["who"], bad["outcome"]) == ("anonymous", "refused: bad token")
    assert (ok["who"], ok["outcome"], ok["reason"], ok["target"]) == \
        ("alice", "ok", "audit test", {"executor": "executor:audit", "flatten": True})
    assert invalid["outcome"].startswith("refused: bad request: flatten")
    assert limited["outcome"] == "refused: rate limited"
    assert_no_token(audit_path)


# --- streams /chaos ---------------------------------------------------------------------------

def test_chaos_endpoint_is_audited_and_rate_limited(audit_path: Path) -> None:
    from spark_ray.streams.control import ControlPlane

    injected: list[dict[str, Any]] = []
    plane = ControlPlane(lambda: {}, injected.append, exchange="binance", port=0, token=TOKEN,
                         audit=AuditLog(audit_path), limiter=MutationLimiter(2, 60.0)).start()
    try:
        url = plane.url + "/chaos"
        assert call(url, {"kind": "gap"}, {"Authorization": "Bearer nope"})[0] == 401
        code, _, body = call(url, {"kind": "gap", "count": 7, "who": "chaos-ops"},
                             {"Authorization": f"Bearer {TOKEN}"})
        assert code == 200, body
        code, headers, _ = call(url, {"kind": "drop"}, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 429 and "retry-after" in headers
    finally:
        plane.stop()
    assert [s["kind"] for s in injected] == ["gap"]
    bad, ok, limited = entries(audit_path)
    assert (bad["action"], bad["who"], bad["source"], bad["outcome"]) == \
        ("chaos", "anonymous", "127.0.0.1", "refused: bad token")
    assert (ok["who"], ok["outcome"]) == ("chaos-ops", "ok")
    assert ok["target"] | {"fabric": "binance", "kind": "gap", "count": 7} == ok["target"]
    assert limited["outcome"] == "refused: rate limited"
    assert_no_token(audit_path)


# --- venue admin ------------------------------------------------------------------------------

def test_venue_admin_mutations_are_audited_reads_are_not(
        audit_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spark_ray.venue import Venue

    monkeypatch.setenv(AUDIT_ENV, str(audit_path))
    monkeypatch.setenv(RATE_ENV, "3/60")
    with Venue(symbols=("BTCUSDT",), seed=3, admin_token=TOKEN, start_paused=True) as v:
        admin = v.rest_url + "/admin"
        ok = {"X-Admin-Token": TOKEN}
        assert call(admin + "/faults", {"kind": "drop"}, {"X-Admin-Token": "wrong"})[0] == 401
        code, _, body = call(admin + "/faults", {"kind": "gap", "count": 3, "symbol": "BTCUSDT"},
                             ok)
        assert code == 200, body
        assert call(admin + "/status", None, ok, method="GET")[0] == 200  # a read
        assert call(admin + "/faults", None, ok, method="DELETE")[2] == {"cleared": 1}
        code, headers, _ = call(admin + "/resume", {}, ok)
        assert code == 429 and "retry-after" in headers
        assert v.status()["paused"]  # refused: still paused
    bad, inject, clear, limited = entries(audit_path)
    assert (bad["action"], bad["who"], bad["source"], bad["outcome"]) == \
        ("venue-admin:fault-inject", "anonymous", "127.0.0.1", "refused: bad token")
    assert (inject["action"], inject["outcome"], inject["target"]["fault"]["kind"]) == \
        ("venue-admin:fault-inject", "ok", "gap")
    assert (clear["action"], clear["outcome"]) == ("venue-admin:faults-clear", "ok")
    assert (limited["action"], limited["outcome"]) == \
        ("venue-admin:resume", "refused: rate limited")
    assert_no_token(audit_path)


# --- console ----------------------------------------------------------------------------------

@pytest.fixture
def breaker(ray_session: Any, tmp_path: Path) -> Iterator[str]:
    import ray

    from spark_ray.actors.breaker import get_breaker
    from spark_ray.actors.naming import actor_name

    name = actor_name("breaker", "audit", secrets.token_hex(4))
    handle, started = get_breaker(name, journal_path=tmp_path / "breaker.jsonl")
    assert started
    yield name
    ray.kill(handle, no_restart=True)


def test_console_trip_is_audited_with_who_and_where(breaker: str, tmp_path: Path,
                                                    audit_path: Path) -> None:
    import ray
    import uvicorn

    from spark_ray.app.console_service import RayLive
    from spark_ray.console.guard import TokenHash
    from spark_ray.console.web import Settings, build_app

    (tmp_path / "runs").mkdir()
    settings = Settings(runs=str(tmp_path / "runs"), audit_log=str(audit_path),
                        mutation_rate="3/60",
                        token=TokenHash(hashlib.sha256(TOKEN.encode()).hexdigest()))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(RayLive(), settings), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="off"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/api/breaker/trip"
        body = {"who": "alice", "reason": "venue outage", "breaker": breaker}
        assert call(url, body, {"Authorization": "Bearer wrong"})[0] == 401
        code, _, res = call(url, body, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 200, res
        handle = ray.get_actor(breaker, namespace="spark_ray")
        assert ray.get(handle.status.remote())["state"] == "TRIPPED"
        assert call(url, body, {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        code, headers, res = call(url, body, {"Authorization": f"Bearer {TOKEN}"})
        assert code == 429 and "retry-after" in headers and "rate limited" in res["error"]
    finally:
        server.should_exit = True
        t.join(30)
    bad, ok, _, limited = entries(audit_path)
    assert (bad["action"], bad["who"], bad["source"], bad["outcome"]) == \
        ("breaker-trip", "anonymous", "127.0.0.1", "refused: bad token")
    assert (ok["who"], ok["source"], ok["outcome"], ok["reason"]) == \
        ("console:alice", "127.0.0.1", "ok", "venue outage")
    assert ok["target"] == {"breaker": breaker, "scope": "global"}
    assert limited["outcome"] == "refused: rate limited"
    assert_no_token(audit_path)


# --- the CLIs ---------------------------------------------------------------------------------

WHO = f"cli:{getpass.getuser()}"
WHERE = f"cli@{socket.gethostname()}"


def test_breaker_cli_trip_is_audited(breaker: str, ray_session: Any,
                                                  audit_path: Path) -> None:
    env = cli_env(**{AUDIT_ENV: str(audit_path)})
    where = ("--address", ray_session.address, "--name", breaker)
    res = run_cli("breaker", "trip", "--reason", "audit halt", "--scope", "account:main",
                  *where, env=env)
    assert res.code == 0, res.err
    res = run_cli("breaker", "reset", "--reason", "audit", "--scope", "nonsense:x", *where,
                  env=env)
    assert res.code == 2  # a bad scope is a usage error before anything is asked
    (trip,) = entries(audit_path)
    assert (trip["who"], trip["action"], trip["source"], trip["outcome"], trip["reason"]) == \
        (WHO, "breaker-trip", WHERE, "ok", "audit halt")
    assert trip["target"] == {"breaker": breaker, "scope": "account:main"}


def _candidate(folder: Path, verdict: str) -> Path:
    from spark_ray.approval.approved import sha256_file

    folder.mkdir()
    best = folder / "best.json"
    best.write_text(json.dumps({"strategy": "sma_cross", "overall": {"params": {"fast": 2,
                                                                                 "slow": 3}}}))
    (folder / "risk-report.json").write_text(json.dumps({
        "verdict": verdict, "candidate_sha256": sha256_file(best),
        "checks": {"min_trades": {"status": verdict}}}))
    return best


def test_params_and_signals_approve_are_audited(tmp_path: Path, audit_path: Path) -> None:
    env = cli_env(**{AUDIT_ENV: str(audit_path)})
    good = _candidate(tmp_path / "good", "PASS")
    bad = _candidate(tmp_path / "bad", "FAIL")
    res = run_cli("params", "approve", str(good), "--by", "alice", "--note", "q3", env=env)
    assert res.code == 0, res.err
    res = run_cli("params", "approve", str(bad), "--by", "bob", env=env)
    assert res.code == 1 and "FAILED" in res.err
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.json").write_text("{}")
    res = run_cli("signals", "approve", "--model", str(model), "--by", "alice", env=env)
    assert res.code != 0
    ok, refused, sig = entries(audit_path)
    assert (ok["who"], ok["action"], ok["source"], ok["outcome"], ok["reason"]) == \
        ("alice", "params-approve", WHERE, "ok", "q3")
    assert ok["target"]["candidate"] == str(good.resolve()) and ok["target"]["user"] == WHO
    assert (refused["who"], refused["action"], refused["source"]) == \
        ("bob", "params-approve", WHERE)
    assert refused["outcome"].startswith("refused: ") and "FAILED" in refused["outcome"]
    assert (sig["who"], sig["action"], sig["source"]) == ("alice", "signals-approve", WHERE)
    assert sig["outcome"].startswith(("refused: ", "error: ")), sig
    assert sig["target"]["model"] == str(model.resolve())
