"""The look-ahead detector on real data: the built-ins pass, each peeking fixture is caught at
the first bar where its leak changes a decision, the warm-up check tells recursive indicators
from windowed ones, and ``spark-ray backtest lookahead`` exits 0 / 1 / 2 (the plain
``spark-ray backtest`` form unchanged)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from peeking import CenteredSma, NextClose, NextRsi, PeekIndex

from spark_ray.backtest import run_bars
from spark_ray.backtest.data import bars_from_arrays, bars_from_store
from spark_ray.data.importer import import_files
from spark_ray.data.readers import read_freqtrade_candles
from spark_ray.lake import DataStore
from spark_ray.research import lookahead as la
from spark_ray.research.lookahead import check_lookahead, window, with_noise
from spark_ray.research.warmup import indicator_warmup
from spark_ray.samples import sample
from spark_ray.strategy.bars import SIGNALS, Bar, BarData
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.builtins import BUILTINS, SignalFusion
from spark_ray.strategy.context import StrategyContext
from spark_ray.strategy.indicators import cross_above, rolling_mean_exact, rsi

from helpers import cli_env, run_cli

HERE = Path(__file__).resolve().parent
SAMPLE = "ETH_BTC-5m.feather"


@pytest.fixture(scope="module")
def bars() -> BarData:
    t = read_freqtrade_candles(sample(SAMPLE))
    ts = t.column("open_time").cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64()).to_numpy()
    return bars_from_arrays("ETHBTC", "5m", ts, *(t.column(c).to_numpy() for c in (
        "open", "high", "low", "close", "volume")))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lookahead") / "lake"
    import_files(DataStore(root), [sample(SAMPLE)], "freqtrade")
    return root


# --- the built-ins are clean ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_every_builtin_passes_and_quickly(bars: BarData, name: str) -> None:
    if name == "signal_fusion":  # it trades on signals beside the bars: give it some
        p_up = 0.5 + 0.1 * np.sin(np.arange(len(bars)) / 40)  # a slow signal: few trades
        bars = dataclasses.replace(bars, extra={SIGNALS: {bars.symbol: {"p_up": p_up}}})
    rep = check_lookahead(bars, name, {})
    assert len(bars) == 5760
    assert rep.clean and rep.first is None, rep.summary()
    assert rep.cuts_checked >= 41 and rep.runs == 2 * rep.cuts_checked
    assert rep.seconds < 3.0, f"{name}: {rep.seconds:.2f} s"
    doc = rep.to_dict()
    assert doc["clean"] is True and doc["first"] is None
    json.dumps(doc, allow_nan=False)
    assert rep.summary().startswith("look-ahead: clean:")


def test_cuts_are_deterministic_with_the_seed(bars: BarData) -> None:
    a = check_lookahead(bars, "sma_cross", {}, cuts=10, seed=3)
    b = check_lookahead(bars, "sma_cross", {}, cuts=10, seed=3)
    c = check_lookahead(bars, "sma_cross", {}, cuts=10, seed=4)
    assert a.cut_bars == b.cut_bars != c.cut_bars


class EveryBar(Strategy):
    """Honest, declares no signals (on_bar on every bar): long after two rising closes."""

    name = "every_bar"

    def init(self, data: BarData) -> None:
        self.c = data.c

    def on_bar(self, ctx: StrategyContext[Any], bar: Bar) -> None:
        i = bar.i
        rising = i >= 2 and self.c[i] > self.c[i - 1] > self.c[i - 2]
        if rising and not ctx.position:
            ctx.buy(pct=0.5, tag="two up")
        elif not rising and ctx.position and self.c[i] < self.c[i - 1]:
            ctx.close()


def test_a_strategy_without_declared_signals_passes(bars: BarData) -> None:
    rep = check_lookahead(window(bars, 0, 1500), EveryBar, {}, cuts=20)
    assert rep.clean, rep.summary()
    assert rep.decisions > 100


# --- the peeking fixtures are caught at the right bar ---------------------------------------------

def _first_leak(data: BarData, cls: type[Strategy], params: dict[str, Any]) -> int:
    """The first bar where the fixture's orders part from its honest twin's (``peek=False``):
    before it the leak changed nothing, there it made the fixture place an order the twin,
    knowing only the past, did not."""
    def key(o: Any) -> tuple[Any, ...]:
        return o.created_i, o.side, o.kind, o.tag, o.qty, o.pct

    leaky = run_bars(data, cls, params, benchmark=False).output.orders
    twin = run_bars(data, cls, {**params, "peek": False}, benchmark=False).output.orders
    bar = next(min(a.created_i, b.created_i) for a, b in zip(leaky, twin, strict=False)
               if key(a) != key(b))
    assert any(o.created_i == bar for o in leaky)  # the leak placed an order there
    return bar


# (fixture, params, bars it peeks ahead)
PEEKERS = [(NextClose, {}, 1), (NextClose, {"drop": 0.015}, 1), (CenteredSma, {}, 2),
           (NextRsi, {}, 1)]


@pytest.mark.parametrize(("cls", "params", "depth"), PEEKERS,
                         ids=["next_close", "next_close_rare", "centered", "shift_minus_one"])
def test_peeking_fixture_is_caught_at_its_first_leaking_decision(
        bars: BarData, cls: type[Strategy], params: dict[str, Any], depth: int) -> None:
    expected = _first_leak(bars, cls, params)
    rep = check_lookahead(bars, cls, params, noise=False)
    assert not rep.clean
    f = rep.first
    assert f is not None
    assert (f.bar, f.cut, f.variant) == (expected, expected, "truncated"), rep.summary()
    assert f.full is not None and f.full.bar == expected and f.cut_run is None
    leaked = next(o for o in run_bars(bars, cls, params, benchmark=False).output.orders
                  if o.created_i == expected)
    assert f.full.side == ("BUY" if leaked.side == 1 else "SELL") and f.full.tag == leaked.tag
    assert f"bar {expected} (" in rep.summary() and "cut run: no order" in rep.summary()
    doc = rep.to_dict()
    json.dumps(doc, allow_nan=False)
    assert doc["clean"] is False and doc["first"]["bar"] == expected
    assert doc["first"]["time"].endswith("Z") and doc["first"]["cut_run"] is None

    # With noise as well (the default) it is caught no later; a leak of `depth` bars shows
    # within `depth` bars before the cut that revealed it.
    noisy = check_lookahead(bars, cls, params)
    assert noisy.first is not None and noisy.first.bar <= expected
    assert noisy.first.cut - depth < noisy.first.bar <= noisy.first.cut


def test_the_first_leak_is_found_even_when_the_spread_cuts_miss_it(
        bars: BarData, monkeypatch: pytest.MonkeyPatch) -> None:
    """drop=0.015: the crystal ball fires six times; the planned cuts first meet it at a late
    one; walking back over the bars where the strategy acts finds the first."""
    expected = _first_leak(bars, NextClose, {"drop": 0.015})
    monkeypatch.setattr(la, "REFINE_FACTOR", 0)
    coarse = check_lookahead(bars, NextClose, {"drop": 0.015}, noise=False)
    assert coarse.first is not None and coarse.first.bar > expected


def test_a_peek_that_crashes_on_cut_data_is_named(bars: BarData) -> None:
    """``close[i + 1]`` read in on_bar: fine on the full series, IndexError on a series cut at
    an entry signal; the first entry signal is where it shows."""
    fast, slow = rolling_mean_exact(bars.c, 10), rolling_mean_exact(bars.c, 30)
    first_up = int(np.flatnonzero(cross_above(fast, slow))[0])
    rep = check_lookahead(bars, PeekIndex, {})
    f = rep.first
    assert f is not None and f.bar == first_up and f.cut_run is None
    assert "IndexError" in f.note and f"raised on bar {first_up}" in rep.summary()


def test_noise_continues_the_series_validly(bars: BarData) -> None:
    c = 2000
    noisy = with_noise(bars, c, np.random.default_rng(1))
    assert len(noisy) == len(bars) and np.array_equal(noisy.time, bars.time)
    o, h, lo, cl, v = noisy.o, noisy.h, noisy.lo, noisy.c, noisy.v
    for a, b in ((o, bars.o), (h, bars.h), (lo, bars.lo), (cl, bars.c), (v, bars.v)):
        assert np.array_equal(a[:c + 1], b[:c + 1])
    tail = slice(c + 1, None)
    assert o[c + 1] == cl[c] and not np.array_equal(cl[tail], bars.c[tail])
    assert (lo[tail] > 0).all() and (lo[tail] <= np.minimum(o[tail], cl[tail])).all()
    assert (h[tail] >= np.maximum(o[tail], cl[tail])).all()
    assert np.isin(v[tail], bars.v[:c + 1]).all()


# --- indicator warm-up ----------------------------------------------------------------------------

class Indicators(Strategy):
    """Keeps its indicators as arrays, as strategies do: an SMA, an RSI and an EMA."""

    name = "indicators"

    def init(self, data: BarData) -> None:
        self.sma = rolling_mean_exact(data.c, 30)
        self.rsi = rsi(data.c, 14)
        self.ema = pd.Series(data.c).ewm(span=20, adjust=False).mean().to_numpy()
        self.note = "not an array"


def test_warmup_tells_recursive_indicators_from_windowed_ones(bars: BarData) -> None:
    found = {f.name: f for f in indicator_warmup(bars, Indicators, {})}
    assert set(found) == {"sma", "rsi", "ema"}
    # An SMA is exact once its window is full: the first 29 bars of a shorter series lack it.
    assert found["sma"].converged and found["sma"].warmup_bars == 29
    assert found["sma"].max_abs_diff == 0.0  # it never had a wrong value, only none yet
    # RSI and EMA smooth recursively: defined early, wrong for hundreds of bars, then settle.
    for name, period in (("rsi", 14), ("ema", 20)):
        f = found[name]
        assert f.converged and f.warmup_bars > 5 * period and f.max_abs_diff > 0, f
        assert f.max_abs_diff_after_warmup <= 1e-9 * 100
    assert found["rsi"].max_abs_diff > 1  # RSI points
    assert indicator_warmup(bars, Indicators, {})[0].name == "rsi"  # longest first
    json.dumps([f.to_dict() for f in found.values()], allow_nan=False)


def test_warmup_of_the_builtins(bars: BarData) -> None:
    donchian = {f.name: f for f in indicator_warmup(bars, "donchian_breakout", {})}
    assert donchian["atr"].converged and donchian["atr"].warmup_bars <= 14
    sma = {f.name: f for f in indicator_warmup(bars, "sma_cross", {})}
    assert set(sma) == {"up", "down"} and all(f.warmup_bars <= 30 for f in sma.values())
    # random_entry draws its signals bar by bar from the first bar: where the series starts
    # decides them all, which the check reports as never settling.
    rnd = indicator_warmup(bars, "random_entry", {})
    assert rnd and not any(f.converged for f in rnd)
    assert "does not settle" in rnd[0].describe()
    assert indicator_warmup(bars, "buy_and_hold", {}) == []


# --- the CLI --------------------------------------------------------------------------------------

def _la(lake: Path, out: Path, *extra: str) -> list[str]:
    return ["backtest", "lookahead", "--store", str(lake), "--symbol", "ETHBTC", "--interval",
            "5m", "--out", str(out), *extra]


def test_cli_clean_strategy_exits_0_with_verdict_warmup_and_evidence(
        lake: Path, tmp_path: Path) -> None:
    res = run_cli(*_la(lake, tmp_path / "runs", "--strategy", "donchian_breakout"),
                  cwd=tmp_path)
    assert res.code == 0, res.err
    assert "verdict:  CLEAN" in res.out and "look-ahead: clean:" in res.out
    assert "indicator warm-up" in res.out and "atr" in res.out
    (run,) = (tmp_path / "runs").iterdir()
    doc = json.loads((run / "lookahead.json").read_text())
    assert doc["verdict"] == "clean" and doc["lookahead"]["clean"] is True
    assert doc["data"]["bars"] == 5760 and {w["name"] for w in doc["warmup"]} >= {"atr"}
    assert (run / "sha256-manifest.json").is_file()
    assert json.loads((run / "run.json").read_text())["status"] == "ok"


def test_cli_peeking_strategy_exits_1_naming_the_bar(lake: Path, tmp_path: Path) -> None:
    data = bars_from_store(DataStore(lake), ["ETHBTC"], "5m")
    expected = _first_leak(data, NextClose, {"drop": 0.015})
    # Shared flags before the action, its own after: both places work.
    args = ["backtest", "--store", str(lake), "lookahead", "--symbol", "ETHBTC", "--interval",
            "5m", "--strategy", "peeking:NextClose", "--param", "drop=0.015", "--no-noise",
            "--out", str(tmp_path / "runs")]
    res = run_cli(*args, cwd=tmp_path, env=cli_env(PYTHONPATH=str(HERE)))
    assert res.code == 1, res.out + res.err
    assert "verdict:  LOOK-AHEAD" in res.out
    assert f"decisions differ first at bar {expected} (" in res.err
    assert "full run: SELL market" in res.err and "'crystal ball'" in res.err
    (run,) = (tmp_path / "runs").iterdir()
    doc = json.loads((run / "lookahead.json").read_text())
    assert doc["verdict"] == "look-ahead" and doc["lookahead"]["first"]["bar"] == expected
    assert json.loads((run / "run.json").read_text())["status"] == "failed"


@pytest.mark.parametrize(("extra", "flag"), [
    (["--cuts", "0"], "--cuts"),
    (["--strategy", "nope"], "--strategy"),
    (["--no-png"], "--no-png"),
])
def test_cli_bad_input_exits_2_naming_the_flag(lake: Path, tmp_path: Path, extra: list[str],
                                               flag: str) -> None:
    res = run_cli(*_la(lake, tmp_path / "runs", *extra), cwd=tmp_path)
    assert res.code == 2 and flag in res.err, res.err
    assert not (tmp_path / "runs").exists()


def test_cli_plain_backtest_form_unchanged(lake: Path, tmp_path: Path) -> None:
    base = ["backtest", "--store", str(lake), "--symbol", "ETHBTC", "--interval", "5m"]
    res = run_cli(*base, "--no-png", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    assert res.code == 0, res.err
    assert "total return" in res.out and "sma_cross" in res.out
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "report.json").read_text())["metrics"]["trades"] == 138
    bad = run_cli(*base, "--cuts", "5", cwd=tmp_path)
    assert bad.code == 2 and "--cuts: only with 'spark-ray backtest lookahead'" in bad.err


class PeekSignal(SignalFusion):
    """A fusion strategy that reads the next bar's signal: the signals beside the bars are cut
    with them, so the detector sees it."""

    name = "peek_signal"

    def init(self, data: BarData) -> None:
        sig = data.extra[SIGNALS][data.symbol]
        shifted = {**sig, "p_up": np.append(np.asarray(sig["p_up"])[1:], np.nan)}
        super().init(dataclasses.replace(data, extra={SIGNALS: {data.symbol: shifted}}))


def test_a_strategy_reading_the_next_signal_is_caught(bars: BarData) -> None:
    p_up = np.random.default_rng(1).random(len(bars))
    data = dataclasses.replace(bars, extra={SIGNALS: {bars.symbol: {"p_up": p_up}}})
    rep = check_lookahead(data, PeekSignal, {})
    assert not rep.clean and rep.first is not None, rep.summary()
