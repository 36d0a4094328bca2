"""Synthetic data's structure and determinism, quality counts, and the check command's gate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spark_ray.data.quality import assess_table
from spark_ray.data.synth import Faults, synth_candles
from spark_ray.lake import DataStore

from helpers import run_cli

JAN = 1_704_067_200_000  # 2024-01-01
MAR = 1_709_251_200_000  # 2024-03-01


def test_synth_is_deterministic_per_seed_and_symbol() -> None:
    a = synth_candles("BTCUSDT", "1m", JAN, JAN + 86_400_000, seed=3)
    assert a.equals(synth_candles("BTCUSDT", "1m", JAN, JAN + 86_400_000, seed=3))
    assert not a.equals(synth_candles("BTCUSDT", "1m", JAN, JAN + 86_400_000, seed=4))
    assert not a.equals(synth_candles("ETHUSDT", "1m", JAN, JAN + 86_400_000, seed=3))


def test_synth_has_realistic_structure() -> None:
    t = synth_candles("BTCUSDT", "1m", JAN, MAR, seed=11)
    c = t.column("close").to_numpy()
    v = t.column("volume").to_numpy()
    r = np.diff(np.log(c))
    a = np.abs(r)
    # Volatility clustering: |r| autocorrelated at lag 1 (regimes), unlike i.i.d. noise.
    assert np.corrcoef(a[:-1], a[1:])[0, 1] > 0.1
    # Fat tails (jumps, regimes): excess kurtosis well above a normal's 0.
    assert ((r - r.mean()) ** 4).mean() / r.var() ** 2 - 3 > 1.0
    # Volume tied to absolute returns.
    assert np.corrcoef(a, v[1:])[0, 1] > 0.3
    # Intraday seasonality: the busiest hour is clearly busier than the quietest.
    hours = (t.column("open_time").to_numpy()[1:] // 3_600_000) % 24
    by_hour = np.array([a[hours == h].mean() for h in range(24)])
    assert by_hour.max() / by_hour.min() > 1.5
    q = assess_table(t, "1m")
    assert sum(m.ohlc_violations + m.nonfinite_or_negative for m in q) == 0
    assert sum(m.missing for m in q) == 0


def test_quality_counts_injected_faults_exactly() -> None:
    f = Faults(gaps=4, gap_len=7, duplicates=5, bad_rows=6)
    t = synth_candles("BTCUSDT", "5m", JAN, JAN + 10 * 86_400_000, seed=1, faults=f)
    (m,) = assess_table(t, "5m")
    assert m.duplicates == 5
    assert m.gap_count <= 4 and m.missing <= 28 and m.missing >= 7  # runs may touch/merge
    assert sum(g.missing for g in m.gaps) == m.missing
    assert m.ohlc_violations + m.nonfinite_or_negative >= 6


def test_quality_month_split_and_gap_positions() -> None:
    import pyarrow as pa

    step = 60_000
    times = np.array([JAN - 2 * step, JAN - step, JAN + 3 * step, JAN + 4 * step])
    t = pa.table({"open_time": times, **{k: np.ones(4) for k in
                                         ("open", "high", "low", "close", "volume")}})
    dec, jan = assess_table(t, "1m")
    assert (dec.month, dec.expected, dec.missing) == ("2023-12", 2, 0)
    assert (jan.month, jan.expected, jan.missing) == ("2024-01", 5, 3)
    assert dec.gaps == [] and dec.gap_count == 0
    assert jan.gaps[0].start == "2024-01-01T00:00:00Z" and jan.gaps[0].missing == 3


def test_check_cli_gate_and_evidence(tmp_path: Path) -> None:
    lake, out = str(tmp_path / "lake"), str(tmp_path / "runs")
    res = run_cli("data", "synth", "--store", lake, "--out", out, "--symbols", "BTCUSDT,ETHUSDT",
                  "--interval", "5m", "--start", "2024-01-25", "--end", "2024-02-05",
                  "--seed", "5", cwd=tmp_path)
    assert res.code == 0, res.err
    ok = run_cli("data", "check", "--store", lake, "--out", out, "--json", cwd=tmp_path)
    assert ok.code == 0, ok.err
    doc = json.loads(ok.out)
    assert doc["ok"] is True and len(doc["series"]) == 2
    months = doc["series"][0]["months"]
    assert [m["month"] for m in months] == ["2024-01", "2024-02"]
    assert all(len(m["sha256"]) == 64 for m in months)

    res = run_cli("data", "synth", "--store", lake, "--out", out, "--symbols", "GAPUSDT",
                  "--interval", "5m", "--start", "2024-01-01", "--end", "2024-01-03",
                  "--gaps", "3", "--seed", "1", cwd=tmp_path)
    assert res.code == 0, res.err
    bad = run_cli("data", "check", "--store", lake, "--out", out, cwd=tmp_path)
    assert bad.code == 1
    assert "GAPUSDT/5m: missing ratio" in bad.err and "FAILED" in bad.err
    lenient = run_cli("data", "check", "--store", lake, "--out", out, "--max-missing", "0.5",
                      cwd=tmp_path)
    assert lenient.code == 0, lenient.err
    reports = sorted((tmp_path / "runs").glob("*/quality.json"))
    assert len(reports) == 3
    assert run_cli("evidence", "verify", str(reports[-1].parent)).code == 0
    assert run_cli("data", "check", "--store", lake, "--max-missing", "2").code == 2


def test_ls_lists_coverage(tmp_path: Path) -> None:
    store = DataStore(tmp_path / "lake")
    store.write_candles(synth_candles("BTCUSDT", "1h", JAN, MAR, 1), "binance", "BTCUSDT", "1h")
    res = run_cli("data", "ls", "--store", str(tmp_path / "lake"), cwd=tmp_path)
    assert res.code == 0
    assert "BTCUSDT" in res.out and "1440" in res.out and "2024-02-29 23:00" in res.out
