"""``signals study``: IC, hit rate and decay, checked on a textbook example, a planted signal
and the real XRP/ETH trades through the CLI."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from spark_ray.signals.features import Trades
from spark_ray.signals.inventory import TRADE_SIGNALS, Signal
from spark_ray.signals.study import forward_returns, hit_rate, spearman, study

from helpers import run_cli


def test_spearman_reproduces_the_textbook_example() -> None:
    """Wikipedia, "Spearman's rank correlation coefficient", worked example: IQ against hours
    of TV per week for ten people, rho = -29/165 = -0.175757..."""
    iq = np.array([106, 100, 86, 101, 99, 103, 97, 113, 112, 110], dtype=float)
    tv = np.array([7, 27, 2, 50, 28, 29, 20, 12, 6, 17], dtype=float)
    assert spearman(iq, tv) == pytest.approx(-29 / 165, abs=1e-12)


def test_forward_return_takes_the_first_trade_at_or_after_t_plus_h() -> None:
    t = Trades(np.array([0, 400, 1000, 2500]), np.array([100.0, 101.0, 102.0, 99.0]),
               np.ones(4), np.ones(4, dtype=np.int64))
    r = forward_returns(t, 1000)
    assert r[0] == pytest.approx(np.log(1.02)) and r[1] == pytest.approx(np.log(99 / 101))
    assert r[2] == pytest.approx(np.log(99 / 102)) and np.isnan(r[3])


def test_hit_rate_ignores_zeros() -> None:
    assert hit_rate(np.array([1.0, -1, 0, 2]), np.array([1.0, 1, 5, 3])) == pytest.approx(2 / 3)


@dataclass(frozen=True)
class _Oracle:
    """A signal that knows the next 10 s return (for the test only): IC 1 at 10 s."""

    name: str = "oracle"

    def batch(self, t: Trades) -> np.ndarray:
        return np.nan_to_num(forward_returns(t, 10_000))

    def online(self) -> object:  # not used by the study
        raise NotImplementedError


def test_a_planted_signal_scores_ic_one_at_its_horizon_only() -> None:
    rng = np.random.default_rng(1)
    n = 5_000
    t = Trades(np.cumsum(rng.integers(50, 500, n)), 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))),
               np.ones(n), np.ones(n, dtype=np.int64))
    sig = Signal("oracle", "test", "trades", "seconds", "knows the future", _Oracle())
    res = study([sig], t, "TEST", [1_000, 10_000, 300_000]).rows[0]
    assert res["ic"][1] > 0.99 and res["hit_rate"][1] > 0.99
    assert res["ic"][0] < 0.6 and res["ic"][2] < 0.6


def test_study_cli_on_real_trades_writes_json_and_png(lake: Path, tmp_path: Path) -> None:
    res = run_cli("signals", "study", "--store", str(lake), "--symbol", "XRPETH", "--horizons",
                  "1s,10s,5m", "--out", str(tmp_path / "runs"))
    assert res.code == 0, res.err
    assert "12,477 trades" in res.err
    run = next((tmp_path / "runs").iterdir())
    rep = json.loads((run / "study.json").read_text())
    assert rep["horizons_ms"] == [1_000, 10_000, 300_000] and rep["trades"] == 12_477
    assert [s["name"] for s in rep["signals"]] == [s.name for s in TRADE_SIGNALS]
    for s in rep["signals"]:
        assert all(-1 <= v <= 1 for v in s["ic"]) and len(s["n"]) == 3
    vol = next(s for s in rep["signals"] if s["family"] == "volatility")
    assert vol["target"] == "|forward return|" and vol["hit_rate"] == [None] * 3
    assert (run / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ema_deviation_50" in res.out


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--horizons", "10x", "--horizons"), ("--horizons", "0s", "--horizons"),
    ("--symbol", "NOPE", "--symbol"), ("--signals", "nope", "--signals")])
def test_bad_study_arguments_exit_2_naming_the_flag(lake: Path, tmp_path: Path, flag: str,
                                                   value: str, named: str) -> None:
    args = {"--symbol": "XRPETH", flag: value}
    res = run_cli("signals", "study", "--store", str(lake), "--out", str(tmp_path),
                  *[x for kv in args.items() for x in kv])
    assert res.code == 2 and named in res.err, res.err
