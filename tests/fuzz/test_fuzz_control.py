"""Fuzzing the two aiohttp control planes: the executor's (``/health``, ``/positions``,
``/orders``, ``POST /kill``) and the streams fabric's (``/health``, ``/metrics``,
``POST /chaos``), each a real server on 127.0.0.1 with a stand-in behind it. Random methods,
paths, query strings, headers (the bearer token right or wrong) and bodies, then raw malformed
HTTP: no 5xx but the health check's own 503, no hang, one log line at most per bad request, no
traceback, and the plane still answers afterwards."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spark_ray.execution import control as exec_control
from spark_ray.streams import control as streams_control

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
    check_log,
    exchange,
    fuzz_settings,
    get_json,
    mutation_bodies,
    recorded_log,
    request,
    truncated,
)

TOKEN = "fuzz-control-token"  # test-only


class Provider:
    """The executor's side, in memory."""

    def __init__(self) -> None:
        self.kills: list[tuple[str, bool]] = []

    def status(self) -> dict[str, Any]:
        return {"started": True, "halted": None, "breaker_state": "ARMED", "name": "fz",
                "mode": "paper", "equity": float("nan")}

    def positions(self) -> dict[str, Any]:
        return {"BTCUSDT": {"qty": 0.5, "avg": float("inf")}}

    def orders(self, open_only: bool = False) -> list[dict[str, Any]]:
        return [{"id": 1, "status": "NEW" if open_only else "FILLED"}]

    async def kill(self, reason: str, flatten: bool) -> dict[str, Any]:
        self.kills.append((reason, flatten))
        return {"cancelled": 0, "flattened": flatten}


@pytest.fixture(scope="module")
def executor_plane() -> Iterator[exec_control.ControlPlane]:
    plane = exec_control.ControlPlane(Provider(), port=0, token=exec_control.Token(TOKEN))
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(plane.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(plane.stop())
        loop.close()

    t = threading.Thread(target=serve, name="fuzz-executor-control", daemon=True)
    t.start()
    assert started.wait(10)
    yield plane
    loop.call_soon_threadsafe(loop.stop)
    t.join(10)
    assert not t.is_alive()


@pytest.fixture(scope="module")
def streams_plane() -> Iterator[streams_control.ControlPlane]:
    def chaos(spec: dict[str, Any]) -> Any:
        if spec.get("target") == "venue":
            raise ValueError("no venue simulator attached to this fabric")
        return {"ok": True}

    status = {"connector-0": {"running": True, "last_frame_age_s": 0.1, "connections": 1},
              "normalizer-0": {"lag": {"p95_ms": 3.0}, "messages": {"BTCUSDT:trade": 10},
                               "last_ids": {"BTCUSDT:trade": 5}, "dead_letters": {"bad": 1}}}
    plane = streams_control.ControlPlane(lambda: status, chaos, port=0, token=TOKEN,
                                         poll_s=0.5).start()
    yield plane
    plane.stop()


def _fuzz_routes(port: int, routes: list[str], examples: int) -> Tally:
    tally = Tally()

    @fuzz_settings(examples)
    @given(method=METHODS, route=st.sampled_from(routes), tail=st.one_of(
        st.just([]), st.just([]), st.lists(SEGMENT, max_size=2)),
           query=QUERY, headers=HEADERS, ctype=CONTENT_TYPES, body=BODIES,
           auth=st.sampled_from(["", f"Bearer {TOKEN}", f"Bearer {TOKEN}",
                                 "Bearer wrong", "Basic x", f"bearer {TOKEN}"]))
    def run(method: str, route: str, tail: list[str], query: str, headers: list[Any],
            ctype: str, body: bytes, auth: str) -> None:
        path = "/".join([route, *tail]) if tail else route
        hs = list(headers)
        if ctype:
            hs.append(("Content-Type", ctype))
        if auth:
            hs.append(("Authorization", auth))
        target = f"{path}?{query}" if query else path
        a = request(port, method, target, hs, body)
        tally.saw(a.status, f"{method} {target} {hs} {body[:100]!r}")
        if a.status is not None and a.status >= 400 and a.body:
            assert len(a.body) < 10_000

    run()
    return tally


def _fuzz_raw(port: int, post_path: str, examples: int) -> Tally:
    tally = Tally()

    @fuzz_settings(examples)
    @given(data=st.one_of(RAW_BAD, RAW_BAD, truncated(post_path,
                                                      [("Authorization", f"Bearer {TOKEN}")])))
    def run(data: bytes) -> None:
        a = exchange(port, data)
        tally.saw(a.status, repr(data[:200]))

    run()
    return tally


def _fuzz_mutation(port: int, path: str, bodies: st.SearchStrategy[bytes], examples: int
                   ) -> Tally:
    """Authorized POSTs: the body reaches the endpoint's own validation."""
    tally = Tally()

    @fuzz_settings(examples)
    @given(ctype=JSON_CTYPES, body=bodies)
    def run(ctype: str, body: bytes) -> None:
        hs = [("Authorization", f"Bearer {TOKEN}")]
        if ctype:
            hs.append(("Content-Type", ctype))
        a = request(port, "POST", path, hs, body)
        tally.saw(a.status, f"POST {path} {ctype} {body[:200]!r}")
        if a.status == 400:
            assert b'"error"' in a.body, a.body[:300]

    run()
    return tally


def test_executor_control_plane(executor_plane: exec_control.ControlPlane) -> None:
    port = executor_plane.port
    kill_bodies = mutation_bodies({"flatten": st.booleans(), "reason": st.text(max_size=30),
                                   "who": JSON})
    with recorded_log() as rec:
        tally = _fuzz_routes(port, ["/health", "/positions", "/orders", "/kill", "/"], 200)
        raw = _fuzz_raw(port, "/kill", 100)
        kills = _fuzz_mutation(port, "/kill", kill_bodies, 150)
    for t in (tally, raw, kills):
        assert not t.problems, t.problems[:10]
    check_log(rec, Tally(requests=tally.requests + raw.requests + kills.requests))
    assert get_json(port, "/health")[0] == 200
    status, body = get_json(port, "/positions")
    assert status == 200 and body["BTCUSDT"]["avg"] is None


def test_executor_kill_names_the_problem(executor_plane: exec_control.ControlPlane) -> None:
    port, auth = executor_plane.port, ("Authorization", f"Bearer {TOKEN}")
    for body, ctype, needle in [
        (b"{", "application/json", "body: not valid JSON"),
        (b"[1]", "application/json", "body: expected a JSON object"),
        (b"[" * 100_000, "application/json", "nested too deeply"),
        (b'{"flatten": "yes"}', "application/json", "flatten: true or false"),
        (b"\xff\xfe", "application/json", "body: not valid"),
        (b"{}", "application/json; charset=bogus", "charset"),
    ]:
        a = request(port, "POST", "/kill", [auth, ("Content-Type", ctype)], body)
        assert a.status == 400 and needle.encode() in a.body, (body, a.status, a.body)


def test_streams_control_plane(streams_plane: streams_control.ControlPlane) -> None:
    port = streams_plane.port
    chaos_bodies = mutation_bodies({
        "kind": st.sampled_from(["lag", "gap", "drop", "duplicate", "reorder", "disconnect"]),
        "count": NUMBERS, "delay_ms": NUMBERS, "target": st.sampled_from(["connector", "venue"]),
        "who": JSON}, required=("kind",))
    with recorded_log() as rec:
        tally = _fuzz_routes(port, ["/health", "/metrics", "/chaos", "/"], 200)
        raw = _fuzz_raw(port, "/chaos", 100)
        chaos = _fuzz_mutation(port, "/chaos", chaos_bodies, 150)
    for t in (tally, raw, chaos):
        assert not t.problems, t.problems[:10]
    check_log(rec, Tally(requests=tally.requests + raw.requests + chaos.requests))
    assert get_json(port, "/health")[0] == 200
    assert request(port, "GET", "/metrics").status == 200


def test_streams_chaos_names_the_problem(streams_plane: streams_control.ControlPlane) -> None:
    port, auth = streams_plane.port, ("Authorization", f"Bearer {TOKEN}")
    for body, ctype, needle in [
        (b"{", "application/json", "body: not valid JSON"),
        (b'{"kind": "nope"}', "application/json", "kind: one of"),
        (b'{"kind": "gap", "count": 0}', "application/json", "count: a number from 1 to"),
        (b'{"kind": "gap", "count": 1e999}', "application/json", "count"),
        (b'{"kind": "gap", "count": [1]}', "application/json", "count"),
        (b'{"kind": "lag", "delay_ms": "x"}', "application/json", "delay_ms"),
        (b'{"kind": "gap", "target": "venue"}', "application/json", "no venue"),
        (b"{}", "application/json; charset=bogus", "charset"),
    ]:
        a = request(port, "POST", "/chaos", [auth, ("Content-Type", ctype)], body)
        assert a.status == 400 and needle.encode() in a.body, (body, a.status, a.body)
