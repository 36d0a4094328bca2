"""User-written YAML (scenarios, chaos experiments) fails early and names the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from spark_ray.chaos import load_experiments
from spark_ray.errors import UserError
from spark_ray.tune import load_scenarios


def test_scenarios_load(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n"
                 "  - {name: eth, symbol: ETHBTC, interval: 5m, start: 2018-01-10,"
                 " end: 2018-01-30, fee_bps: 10}\n"
                 "  - {name: ltc, symbol: LTCBTC, interval: 5m}\n")
    eth, ltc = load_scenarios(f)
    assert eth.start is not None and eth.start.tzinfo is not None
    assert ltc.fee_bps == 10.0 and ltc.slippage_bps == 0.0 and ltc.start is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("scenarios:\n  - {name: a, symbol: ETHBTC, interval: 5m, fee_bsp: 1}\n",
         "scenarios.0.fee_bsp: Extra inputs are not permitted"),
        ("scenarios:\n  - {name: a, symbol: ETHBTC, interval: 7m}\n",
         "scenarios.0.interval: Value error, unknown interval '7m'"),
        ("scenarios:\n  - {name: a, symbol: ETHBTC, interval: 5m, start: 2018-02-01,"
         " end: 2018-01-01}\n", "must be before end"),
        ("scenarios: []\n", "scenarios: List should have at least 1 item"),
        ("scenarios:\n  - {name: a, symbol: X, interval: 5m}\n"
         "  - {name: a, symbol: Y, interval: 5m}\n", "repeated: a"),
    ],
)
def test_scenario_errors(tmp_path: Path, body: str, needle: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(body)
    with pytest.raises(UserError) as info:
        load_scenarios(f)
    assert needle in str(info.value)
    assert str(f) in str(info.value)


def test_experiments_load_and_select(tmp_path: Path) -> None:
    for eid in ("lag_spike", "drop"):
        (tmp_path / f"{eid}.yaml").write_text(
            f"id: {eid}\nfault: {{kind: venue, target: latency, params: {{ms: 1500}}}}\n"
            "duration_s: 15\nexpect_alert: IngestLagWarn\nmax_detect_s: 30\n"
            "max_recover_s: 60\n")
    assert [e.id for e in load_experiments(tmp_path)] == ["drop", "lag_spike"]
    assert [e.id for e in load_experiments(tmp_path, ["lag_spike"])] == ["lag_spike"]
    with pytest.raises(UserError, match="unknown id"):
        load_experiments(tmp_path, ["nope"])
    (tmp_path / "bad.yaml").write_text("id: bad\nfault: {kind: meteor, target: x}\n")
    with pytest.raises(UserError, match=r"bad.yaml: fault.kind: Input should be"):
        load_experiments(tmp_path)
