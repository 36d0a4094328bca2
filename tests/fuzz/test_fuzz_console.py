"""Fuzzing the console's Starlette app (spark_ray/console/web.py), built with a stand-in for the
live cluster and served by uvicorn on 127.0.0.1 (the Ray Serve deployment is not started here:
tests/console covers it). Every route with random methods, paths, query strings, headers and
bodies; the mutations with the operator token and random bodies; raw malformed HTTP. No 5xx but
the documented 503 (a downstream service missing), no hang, at most one log line per bad
request, no traceback, and the console still answers afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from spark_ray.console.guard import TokenHash, token_sha256
from spark_ray.console.web import BREAKER_ACTIONS, PAGES, Settings, build_app

from fuzz_helpers import (
    BODIES,
    CONTENT_TYPES,
    HEADERS,
    JSON,
    JSON_CTYPES,
    METHODS,
    NUMBERS,
    QUERY,
    RAW_BAD,
    SEGMENT,
    Tally,
    exchange,
    fuzz_settings,
    get_json,
    mutation_bodies,
    request,
    run_checked,
)
from helpers import free_port

TOKEN = "fuzz-console-token"  # test-only


class Live:
    """The cluster's side, in memory."""

    def services(self) -> list[dict[str, Any]]:
        return [{"name": "fabric", "kind": "streams", "ok": True, "detail": ""}]

    def nodes(self) -> list[dict[str, Any]]:
        return [{"id": "n1", "alive": True}]

    def streams(self) -> dict[str, Any]:
        return {"fabric": {"ok": True, "lag": float("nan")}}

    def trading(self) -> dict[str, Any]:
        return {"executors": []}

    def breaker(self, action: str, breaker: str | None, scope: str, who: str, reason: str,
                on: bool) -> dict[str, Any]:
        if breaker not in (None, "main"):
            raise ValueError(f"breaker: no breaker named {breaker!r}")
        return {"action": action, "scope": scope}

    def kill(self, executor: str, flatten: bool, who: str, reason: str) -> dict[str, Any]:
        if executor != "paper":
            raise ValueError(f"executor: no executor named {executor!r}")
        return {"killed": True}


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root: Path = tmp_path_factory.mktemp("fuzz-console")
    (root / "runs").mkdir()
    settings = Settings(runs=str(root / "runs"), store=str(root / "lake"),
                        token=TokenHash(token_sha256(TOKEN)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(Live(), settings), host="127.0.0.1",
                                           port=port, log_config=None, access_log=False,
                                           lifespan="off"))
    t = threading.Thread(target=server.run, name="fuzz-console", daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and t.is_alive(), "console did not start"
        time.sleep(0.05)
    yield port
    server.should_exit = True
    t.join(15)
    assert not t.is_alive()


ROUTES = [*PAGES, "/api/health", "/api/streams", "/api/trading", "/api/runs", "/api/runs/x",
          "/api/data", "/api/alerts", "/api/chaos", "/api/evidence", "/api/evidence/verify",
          "/api/journal", *[f"/api/breaker/{a}" for a in BREAKER_ACTIONS], "/api/approve",
          "/api/executor/kill", "/api/alerts/silence", "/api/alerts/ack", "/api/alerts/webhook",
          "/static/app.js", "/static", "/api/nope"]
MUTATIONS = {
    "/api/breaker/trip": {"breaker": st.sampled_from(["main", "other"]), "scope": JSON,
                          "on": JSON},
    "/api/breaker/dry-run": {"breaker": st.sampled_from(["main", None]), "on": JSON},
    "/api/approve": {"run": st.one_of(SEGMENT, st.sampled_from(["../..", "/etc", ".", ""]))},
    "/api/executor/kill": {"executor": st.sampled_from(["paper", "x", ""]), "flatten": JSON},
    "/api/alerts/silence": {"alert": JSON, "minutes": NUMBERS},
    "/api/alerts/ack": {"alert": JSON},
}
ALLOWED_5XX = {503}  # a downstream service (Alertmanager) not configured or unreachable


def test_every_route_with_random_requests(console: int) -> None:
    tally = Tally()

    @fuzz_settings(250)
    @given(method=METHODS, route=st.sampled_from(ROUTES), tail=st.one_of(
        st.just([]), st.just([]), st.lists(SEGMENT, max_size=2)),
           query=QUERY, headers=HEADERS, ctype=CONTENT_TYPES, body=BODIES,
           auth=st.sampled_from(["", f"Bearer {TOKEN}", "Bearer wrong", "Basic x"]))
    def run(method: str, route: str, tail: list[str], query: str, headers: list[Any],
            ctype: str, body: bytes, auth: str) -> None:
        path = "/".join([route.rstrip("/"), *tail]) if tail else route
        hs = list(headers) + ([("Content-Type", ctype)] if ctype else []) + (
            [("Authorization", auth)] if auth else [])
        target = f"{path}?{query}" if query else path
        a = request(console, method, target, hs, body)
        tally.saw(None if a.status in ALLOWED_5XX else a.status,
                  f"{method} {target} {hs} {body[:100]!r}")

    run_checked(run, tally)
    assert get_json(console, "/api/runs")[0] == 200


def test_mutations_with_the_token_and_random_bodies(console: int) -> None:
    tally = Tally()
    common = {"who": st.one_of(st.just("fuzzer"), JSON), "reason": st.one_of(st.just("fz"), JSON)}

    @fuzz_settings(200)
    @given(path=st.sampled_from(sorted(MUTATIONS)), data=st.data(), ctype=JSON_CTYPES)
    def run(path: str, data: st.DataObject, ctype: str) -> None:
        body = data.draw(mutation_bodies({**common, **MUTATIONS[path]}))
        hs = [("Authorization", f"Bearer {TOKEN}")] + ([("Content-Type", ctype)] if ctype
                                                        else [])
        a = request(console, "POST", path, hs, body)
        tally.saw(None if a.status in ALLOWED_5XX else a.status,
                  f"POST {path} {ctype} {body[:200]!r}")
        if a.status is not None and a.status >= 400:
            assert b'"error"' in a.body, a.body[:300]

    run_checked(run, tally)
    assert get_json(console, "/api/journal")[0] == 200


def test_raw_malformed_http(console: int) -> None:
    tally = Tally()

    @fuzz_settings(150)
    @given(data=RAW_BAD)
    def run(data: bytes) -> None:
        a = exchange(console, data)
        tally.saw(a.status, repr(data[:200]))

    run_checked(run, tally)
    assert get_json(console, "/api/runs")[0] == 200
