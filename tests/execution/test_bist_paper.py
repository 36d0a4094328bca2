"""Paper trading on BIST data, end to end on real parts: a THYAO.IS 1m CSV export (synthetic,
``tests/venue/data/THYAO.IS-1m-synthetic.csv``) imported into ``exchange=bist`` in a temp lake,
the replay venue serving it over Binance's protocol with the market closed outside Borsa
Istanbul's sessions, the streams fabric, the breaker and a paper ExecutorActor (what
``spark-ray trade --paper`` starts): it trades, and never while the market is closed."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import ray

from spark_ray.sessions import in_session

M = 60_000
THU_OPEN = 1_735_828_200_000  # 2025-01-02T14:30Z (17:30 Istanbul): the fixture's first minute
THU_CLOSE = 1_735_830_000_000  # 15:00Z = 18:00 Istanbul, the session's close
FRI_OPEN = 1_735_887_600_000  # 2025-01-03T07:00Z = 10:00 Istanbul
FRI_END = FRI_OPEN + 30 * M  # the fixture's last minute ends


def _import_bist(tmp_path: Path) -> Path:
    """The venue tests' importer (one fixture, one import path)."""
    path = Path(__file__).parent.parent / "venue" / "test_replay_sessions.py"
    spec = importlib.util.spec_from_file_location("bist_replay_helpers", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lake: Path = mod.import_bist(tmp_path)
    return lake


def _open(ms: int) -> bool:
    return THU_OPEN <= ms < THU_CLOSE or FRI_OPEN <= ms < FRI_END


def test_paper_trading_on_bist_replay_trades_only_in_sessions(
        make_venue: Any, make_fabric: Any, make_breaker: Any, make_executor: Any,
        approved: Any, wait_for: Any, tmp_path: Path) -> None:
    lake = _import_bist(tmp_path)
    # 60x: a 1m bar a second. The first 10 minutes are history (the executor's REST warm-up);
    # the clock waits until everything is subscribed.
    venue = make_venue(symbols=("THYAO",), store=lake, store_exchange="bist", speed=60.0,
                       trades_per_second=None, start_time_ms=THU_OPEN + 10 * M,
                       start_paused=True)
    bname, _breaker = make_breaker()
    ex, _spec = make_executor(approved("sma_cross", {"fast": 2, "slow": 3}, interval="1m"),
                              venue, bname, symbols=("THYAO",), interval="1m", warmup_bars=5)
    fabric = make_fabric(venue)
    ray.get([n.subscribe.remote(ex, "on_market_data") for n in fabric.normalizers])
    wait_for(lambda: ray.get(ex.status.remote())["started"], timeout=60,
             what="the executor started")
    venue.resume()

    def done() -> Any:
        st = ray.get(ex.status.remote())
        return st if venue.status()["market_time_ms"] >= FRI_END + 2 * M else None

    wait_for(done, timeout=150, every=0.5, what="the replay past Friday's last minute")
    orders = ray.get(ex.orders.remote())
    fills = ray.get(ex.fills.remote())
    assert orders, "no order placed on the BIST replay"
    assert any(o["status"] == "FILLED" for o in orders)
    # Decisions only on session bars, fills only at session prices and times.
    bar_times = np.array([o["bar_time"] for o in orders], dtype=np.int64)
    assert bool(in_session("bist", "1m", bar_times).all()), bar_times  # type: ignore[union-attr]
    assert all(_open(int(f["time_ms"])) for f in fills), [f["time_ms"] for f in fills]
    assert all(_open(int(t)) for t in bar_times)
    # The venue printed no trade while closed: the whole tape lies inside the sessions.
    tape = venue.ground_truth("THYAO").to_pylist()
    assert tape and all(_open(int(t["trade_time"].timestamp() * 1000)) for t in tape)
