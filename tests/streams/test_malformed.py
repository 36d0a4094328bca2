"""Hypothesis-generated malformed frames never crash a parser or an actor; each one lands in the
dead-letter store with a reason."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import ray
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spark_ray.adapters.binance.websocket import BinanceParser
from spark_ray.adapters.btcturk.websocket import BTCTurkParser
from spark_ray.streams.deadletter import read_dead_letters
from spark_ray.streams.normalize import NormalizerConfig

T0 = 1_795_000_000_000
GOOD = {"e": "trade", "E": T0, "s": "BTCUSDT", "t": 5, "p": "100.5", "q": "0.25", "T": T0,
        "m": True, "M": True}
REQUIRED = ("e", "E", "s", "t", "p", "q", "T", "m")
WRONG = {"E": ["1", 1.5, True, None, -1], "s": [1, "btcusdt", "", "X" * 30],
         "t": ["5", 5.0, False, -3, 2**70], "p": [100.5, "abc", "nan", "-1", "0", "inf"],
         "q": [0.25, "", "1e400", "-0.1"], "T": ["1", 12, 2**63], "m": ["true", 1, None],
         "e": ["Trade", 3, None]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)


@st.composite
def malformed(draw: Any) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "missing", "wrong", "envelope"]))
    if kind == "bytes":
        raw: bytes = draw(st.binary(max_size=64))
        return raw if raw.strip() not in (b"",) else b"\x00"
    if kind == "json":
        v = draw(json_values)
        if isinstance(v, dict):
            v.pop("result", None)
            v.pop("error", None)
            v.pop("e", None)
            v.pop("stream", None)
            v.pop("u", None)
        return json.dumps(v).encode()
    data = dict(GOOD)
    if kind == "missing":
        for k in draw(st.lists(st.sampled_from(REQUIRED), min_size=1, unique=True)):
            del data[k]
    elif kind == "wrong":
        k = draw(st.sampled_from(sorted(WRONG)))
        data[k] = draw(st.sampled_from(WRONG[k]))
    else:
        return json.dumps({"stream": draw(st.sampled_from(["btcusdt@trade", 3, None])),
                           "data": draw(st.sampled_from([[], "x", 1]))}).encode()
    return json.dumps({"stream": "btcusdt@trade", "data": data}).encode()


@settings(max_examples=400, deadline=None)
@given(st.lists(malformed(), min_size=1, max_size=8))
def test_every_malformed_frame_is_a_dead_letter(frames: list[bytes]) -> None:
    for parser in (BinanceParser({"BTCUSDT"}), BTCTurkParser({"BTCUSDT"})):
        out = parser.parse(frames, [T0] * len(frames))
        assert len(out.dead) == len(frames)
        assert all(d.reason for d in out.dead)
        assert not out.trades or not any(len(c) for c in out.trades.values())


@pytest.fixture(scope="module")
def normalizer(ray_session: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real sink + normalizer for every example (an actor start costs seconds here)."""
    from spark_ray.actors.normalizer import NormalizerActor
    from spark_ray.actors.sink import SinkActor

    ns = f"test-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("malformed")
    sink = SinkActor.options(namespace=ns).remote(str(root / "lake"), "binance")
    norm = NormalizerActor.options(namespace=ns).remote(
        NormalizerConfig(symbols=("BTCUSDT",), idle_check_ms=0), sink, None, str(root / "dl"),
        "n0")
    yield norm, sink, root / "dl"
    ray.kill(norm, no_restart=True)
    ray.kill(sink, no_restart=True)


_seq = itertools.count(1)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(malformed(), min_size=1, max_size=20))
def test_normalizer_actor_dead_letters_malformed_batches(normalizer: Any,
                                                         batch: list[bytes]) -> None:
    norm, sink, dl = normalizer
    seq = next(_seq)
    before = len(list(read_dead_letters(dl)))
    good = json.dumps({"stream": "btcusdt@trade", "data": {**GOOD, "t": seq}}).encode()
    ack = ray.get(norm.ingest.remote(seq, [*batch, good], [T0] * (len(batch) + 1), []),
                  timeout=60)
    assert ack == {"seq": seq, "rows": 1, "dead": len(batch)}
    recs = list(read_dead_letters(dl))[before:]
    assert len(recs) == len(batch) and all(r["reason"] for r in recs)
    status = ray.get(norm.status.remote(), timeout=30)  # still alive and answering
    assert sum(status["dead_letters"].values()) == before + len(batch)
    assert ray.get(sink.stats.remote(), timeout=30)["stored"] == {"trades:BTCUSDT": seq}
