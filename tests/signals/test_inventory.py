"""The signal inventory and ``spark-ray signals ls``."""

from __future__ import annotations

import json

import pytest

from spark_ray.signals.inventory import INVENTORY, signal

from helpers import run_cli


def test_every_signal_is_described_and_named_once() -> None:
    names = [s.name for s in INVENTORY]
    assert len(names) == len(set(names)) >= 5
    for s in INVENTORY:
        assert s.name == s.feature.name
        assert s.family and s.inputs and s.horizon and s.description
    assert {"trade flow", "volatility", "trend", "order book"} <= {s.family for s in INVENTORY}


def test_unknown_signal_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="known: signed_volume_1000ms"):
        signal("nope")


def test_signals_ls_table_and_json() -> None:
    res = run_cli("signals", "ls")
    assert res.code == 0, res.err
    lines = res.out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "FAMILY", "HORIZON"]
    assert len(lines) == 1 + len(INVENTORY) + 1  # and the model output, p_up
    res = run_cli("signals", "ls", "--json")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    assert [r["name"] for r in rows] == [*(s.name for s in INVENTORY), "p_up"]
    assert rows[-1]["family"] == "model output"
    assert set(rows[0]) == {"name", "family", "inputs", "horizon", "description"}


def test_signals_without_an_action_exits_2() -> None:
    res = run_cli("signals")
    assert res.code == 2 and "ACTION" in res.err
