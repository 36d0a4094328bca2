"""Fault specs and corrupted frames as plain objects: validation, JSON round trip, malform."""

from __future__ import annotations

import json

import pytest

from spark_ray.venue.faults import FaultKind, FaultSpec, malform

TRADE = b'{"e":"trade","E":2,"s":"BTCUSDT","t":7,"p":"1.00000000","q":"2.00000000","T":1,' \
        b'"m":true,"M":true}'


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="probability"):
        FaultSpec(FaultKind.DROP, probability=2)
    with pytest.raises(ValueError, match="count"):
        FaultSpec(FaultKind.GAP)
    with pytest.raises(ValueError, match="variant"):
        FaultSpec(FaultKind.MALFORMED, variant="nope")
    with pytest.raises(ValueError, match="status"):
        FaultSpec(FaultKind.REST_ERROR, status=404)
    with pytest.raises(ValueError, match="unknown fault field"):
        FaultSpec.from_dict({"kind": "drop", "probabilty": 0.5})
    with pytest.raises(ValueError, match="kind"):
        FaultSpec.from_dict({"kind": "explode"})
    spec = FaultSpec.from_dict({"kind": "drop", "symbol": "btcusdt", "streams": ["trade"]})
    assert spec.symbol == "BTCUSDT" and FaultSpec.from_dict(spec.to_dict()) == spec


def test_describe_names_the_kind_and_what_differs_from_the_defaults() -> None:
    assert FaultSpec(FaultKind.STALL).describe() == "stall"
    spec = FaultSpec(FaultKind.DROP, probability=0.5, streams=("trade", "aggTrade"))
    assert spec.describe() == "drop probability=0.5 streams=trade,aggTrade"


@pytest.mark.parametrize("combined", [False, True])
def test_malformed_variants(combined: bool) -> None:
    payload = b'{"stream":"btcusdt@trade","data":' + TRADE + b"}" if combined else TRADE

    def event(raw: bytes) -> dict:
        doc = json.loads(raw)
        return doc["data"] if combined else doc

    with pytest.raises(ValueError):
        json.loads(malform(payload, "bad_json"))
    wrong = event(malform(payload, "wrong_types"))
    assert isinstance(wrong["p"], float) and isinstance(wrong["t"], str)
    missing = event(malform(payload, "missing_fields"))
    assert "t" not in missing and len(missing) < len(json.loads(TRADE))
    big = malform(payload, "oversized", 100_000)
    assert len(big) > 100_000 and event(big)["t"] == 7
