"""BIST candles from common CSV exports (``Date,Open,High,Low,Close,Adj Close,Volume``, symbols
like ``THYAO.IS``) into ``exchange=bist``, and quality counted inside Borsa Istanbul's sessions
(exchange_calendars XIST): nights, weekends and holidays are not missing candles."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spark_ray.lake import DataStore
from spark_ray.sessions import session_grid, sessions_per_year

from helpers import run_cli

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
COLUMNS = "open_time=Date,open=Open,high=High,low=Low,close=Close,volume=Volume"


def _rows(times: list[str]) -> str:
    out = []
    for i, t in enumerate(times):
        o = 270.0 + i
        out.append(f"{t},{o:.2f},{o + 3:.2f},{o - 2:.2f},{o + 1:.2f},{o + 1:.2f},{35_000_000 + i}")
    return "\n".join(out) + "\n"


def _import(tmp_path: Path, name: str, text: str, *extra: str) -> tuple[Path, object]:
    path = tmp_path / name
    path.write_text(text)
    lake = tmp_path / "lake"
    res = run_cli("data", "import", "--format", "csv", "--exchange", "bist", "--store",
                  str(lake), "--out", str(tmp_path / "runs"), "--columns", COLUMNS,
                  "--time-unit", "iso", *extra, str(path))
    return lake, res


def _check(tmp_path: Path, lake: Path) -> dict[str, dict[str, object]]:
    res = run_cli("data", "check", "--store", str(lake), "--out", str(tmp_path / "runs"),
                  "--max-missing", "1")
    assert res.code == 0, res.err
    report = json.loads(sorted((tmp_path / "runs").rglob("quality.json"))[-1].read_text())
    return {f"{s['exchange']}/{s['symbol']}/{s['interval']}": s for s in report["series"]}


def test_daily_export_counts_only_sessions(tmp_path: Path) -> None:
    # 2024-04-05 (Fri) .. 2024-04-17 (Wed): a weekend, then the Ramadan Feast holiday
    # (Apr 10-12, the 9th a half day) and another weekend. One real session (Apr 16) is absent.
    days = ["2024-04-05", "2024-04-08", "2024-04-09", "2024-04-15", "2024-04-17"]
    lake, res = _import(tmp_path, "THYAO.IS-1d.csv", HEADER + _rows(days))
    assert res.code == 0, res.err  # type: ignore[attr-defined]
    assert "candles THYAO 1d" in res.out  # type: ignore[attr-defined]
    t = DataStore(lake).candles("THYAO", "1d", exchange="bist")
    assert t.num_rows == 5 and t.column("close").to_pylist()[0] == 271.0
    q = _check(tmp_path, lake)["bist/THYAO/1d"]
    assert (q["expected"], q["present"], q["missing"]) == (6, 5, 1)
    (month,) = q["months"]  # type: ignore[misc]
    assert [(g["start"], g["missing"]) for g in month["gaps"]] == [("2024-04-16T00:00:00Z", 1)]


def test_intraday_export_with_offsets_and_a_half_day(tmp_path: Path) -> None:
    # Hourly bars labelled in Istanbul time (+03:00): 10:00..17:00 on a full day, and the half
    # day before the feast closes at 12:30 (bars 10:00, 11:00, 12:00). 14:00 on Apr 8 is absent.
    full = [f"2024-04-08 {h:02d}:00:00+03:00" for h in range(10, 18) if h != 14]
    half = [f"2024-04-09 {h:02d}:00:00+03:00" for h in (10, 11, 12)]
    lake, res = _import(tmp_path, "data.csv", HEADER.replace("Date", "Datetime")
                        + _rows(full + half), "--symbol", "GARAN.IS", "--interval", "1h",
                        "--columns", COLUMNS.replace("=Date", "=Datetime"))
    assert res.code == 0, res.err  # type: ignore[attr-defined]
    t = DataStore(lake).candles("GARAN", "1h", exchange="bist")
    first = t.column("open_time").cast("int64").to_pylist()[0]
    assert first == 1_712_559_600_000  # 2024-04-08T07:00Z: the offset was applied
    q = _check(tmp_path, lake)["bist/GARAN/1h"]
    assert (q["expected"], q["present"], q["missing"]) == (8 + 3, 10, 1)
    # The same candles filed under a venue that never closes: the night counts as missing.
    assert len(session_grid("binance", "1h", 0, 10**12) or []) == 0


def test_session_grid_and_trading_days() -> None:
    apr8 = 1_712_534_400_000  # 2024-04-08T00:00Z
    grid = session_grid("bist", "1m", apr8, apr8 + 2 * 86_400_000)
    assert grid is not None and grid.size == 480 + 150  # a full day and the 2.5 h half day
    assert np.all(np.diff(grid) > 0) and grid[0] == apr8 + 7 * 3_600_000
    assert session_grid("bist", "1w", apr8, apr8 + 86_400_000) is None
    assert 245 <= sessions_per_year("bist") <= 255 and sessions_per_year("binance") == 365.0


def test_bad_time_values_stop_the_import_naming_the_column(tmp_path: Path) -> None:
    lake, res = _import(tmp_path, "THYAO.IS-1d.csv",
                        HEADER + _rows(["2024-04-08"]) + "yesterday,1,2,0.5,1.5,1.5,10\n")
    assert res.code == 2  # type: ignore[attr-defined]
    assert "column 'Date'" in res.err and "ISO 8601" in res.err  # type: ignore[attr-defined]
    assert not lake.exists()  # nothing written
