"""Replaying BIST candles: a CSV export imported into ``exchange=bist`` is served over Binance's
protocol, with the market closed outside Borsa Istanbul's sessions (no trade, no kline) and the
night skipped rather than waited out.

The fixture ``data/THYAO.IS-1m-synthetic.csv`` is synthetic (a seeded random walk around
THY's price in January 2025, in the column layout of common THYAO.IS 1m exports): the last 30
minutes of Thursday 2 January 2025's session, two after-close prints (18:05, 18:09 Istanbul),
and the first 30 minutes of Friday's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from spark_ray.venue import Venue

from helpers import run_cli
from venue_helpers import http

CSV = Path(__file__).parent / "data" / "THYAO.IS-1m-synthetic.csv"
COLUMNS = "open_time=Datetime,open=Open,high=High,low=Low,close=Close,volume=Volume"
M = 60_000
THU_OPEN = 1_735_828_200_000  # 2025-01-02T14:30Z = 17:30 Istanbul, the fixture's first minute
THU_CLOSE = 1_735_830_000_000  # 15:00Z = 18:00 Istanbul
FRI_OPEN = 1_735_887_600_000  # 2025-01-03T07:00Z = 10:00 Istanbul
SESSION_MINUTES = [THU_OPEN + i * M for i in range(30)] + [FRI_OPEN + i * M for i in range(30)]


def import_bist(tmp_path: Path) -> Path:
    """The fixture through ``spark-ray data import`` into a temp lake (exchange=bist)."""
    lake = tmp_path / "lake"
    res = run_cli("data", "import", "--format", "csv", "--exchange", "bist", "--store",
                  str(lake), "--out", str(tmp_path / "runs"), "--columns", COLUMNS,
                  "--time-unit", "iso", "--interval", "1m", str(CSV), cwd=tmp_path)
    assert res.code == 0, res.err
    assert (lake / "candles" / "exchange=bist" / "symbol=THYAO" / "interval=1m").is_dir()
    return lake


def test_bist_replay_serves_only_session_minutes(make_venue: Callable[..., Venue],
                                                 tmp_path: Path) -> None:
    lake = import_bist(tmp_path)
    t0 = time.monotonic()
    # 600x: the hour of data replays in 6 s; the 16 h night would take 96 s if waited out.
    v = make_venue(symbols=("THYAO",), store=lake, store_exchange="bist", speed=600.0,
                   trades_per_second=None, history_minutes=0)
    deadline = time.monotonic() + 60
    while http(f"{v.rest_url}/api/v3/time")[2]["serverTime"] <= FRI_OPEN + 30 * M:
        assert time.monotonic() < deadline, "the replay did not reach Friday's 10:30"
        time.sleep(0.1)
    assert time.monotonic() - t0 < 45  # the night was skipped
    _, _, rows = http(f"{v.rest_url}/api/v3/klines?symbol=THYAO&interval=1m"
                      f"&startTime={THU_OPEN - 60 * M}&limit=1000")
    times = [r[0] for r in rows]
    # Exactly the session minutes: neither the after-close prints nor a night of empty klines.
    assert times[:60] == sorted(SESSION_MINUTES)
    assert all(t < THU_CLOSE or t >= FRI_OPEN for t in times)
    first = rows[0]
    assert [float(x) for x in first[1:5]] == [287.25, 287.5, 286.5, 287.0]
    assert float(first[5]) == 176453
    trades = v.ground_truth("THYAO").to_pylist()
    when = [int(t["trade_time"].timestamp() * 1000) for t in trades]
    assert any(t < THU_CLOSE for t in when) and any(t >= FRI_OPEN for t in when)
    assert all(THU_OPEN <= t < THU_CLOSE or t >= FRI_OPEN for t in when)  # none while closed


def test_lake_exchange_flag_is_checked(tmp_path: Path) -> None:
    bad = run_cli("venue", "--lake", str(tmp_path), "--lake-exchange", "Borsa Istanbul",
                  "--port", "0", cwd=tmp_path, timeout=60)
    assert bad.code == 2 and "--lake-exchange" in bad.err, bad.err
    missing = run_cli("venue", "--lake", str(tmp_path), "--lake-exchange", "bist",
                      "--symbols", "THYAO", "--port", "0", cwd=tmp_path, timeout=60)
    assert missing.code == 2 and "exchange=bist" in missing.err, missing.err
