"""One feature definition, two runtimes: the live (incremental) path replayed over real recorded
Binance trades equals the batch path to 1e-9, and no feature reads a later trade."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spark_ray.signals.features import (
    EmaDeviation,
    FlowImbalance,
    RealizedVolatility,
    SignedVolume,
    Trades,
    replay,
)
from spark_ray.signals.inventory import TRADE_SIGNALS


def test_live_replay_equals_batch_to_1e9_on_real_trades(trades: Trades) -> None:
    assert len(trades.time) > 12_000
    feats = [s.feature for s in TRADE_SIGNALS]  # every listed signal
    live = replay(feats, trades)
    for f in feats:
        b = f.batch(trades)
        assert np.array_equal(np.isnan(b), np.isnan(live[f.name])), f.name
        ok = ~np.isnan(b)
        scale = np.maximum(1.0, np.abs(b[ok]))
        worst = float(np.max(np.abs(b[ok] - live[f.name][ok]) / scale))
        assert worst <= 1e-9, (f.name, worst)


def test_window_sums_agree_bit_for_bit(trades: Trades) -> None:
    f = SignedVolume(60_000)
    assert np.array_equal(f.batch(trades), replay([f], trades)[f.name])


@pytest.mark.parametrize("feature", [SignedVolume(1_000), FlowImbalance(60_000),
                                     EmaDeviation(50), RealizedVolatility(50)],
                         ids=lambda f: f.name)
def test_no_feature_reads_a_later_trade(trades: Trades, feature: object) -> None:
    """Values up to a cut are identical whether the series ends at the cut or goes on with
    different trades after it."""
    rng = np.random.default_rng(7)
    full = feature.batch(trades)  # type: ignore[attr-defined]
    for cut in rng.integers(100, len(trades.time) - 100, size=20):
        later = Trades(trades.time.copy(), trades.price.copy(), trades.qty.copy(),
                       trades.side.copy())
        later.price[cut:] *= rng.uniform(0.5, 1.5, len(trades.time) - cut)
        later.qty[cut:] = rng.uniform(1, 1e4, len(trades.time) - cut)
        later.side[cut:] = -later.side[cut:]
        cutv = feature.batch(later)  # type: ignore[attr-defined]
        np.testing.assert_array_equal(full[:cut], cutv[:cut])


def test_window_is_trailing_and_half_open() -> None:
    t = Trades(np.array([0, 500, 1000, 1500]), np.ones(4), np.array([1.0, 2.0, 4.0, 8.0]),
               np.array([1, -1, 1, 1]))
    # (t - 1000, t]: at 1000 the trade at 0 has left the window
    assert SignedVolume(1000).batch(t).tolist() == [1.0, -1.0, 2.0, 12.0]
    assert replay([SignedVolume(1000)], t)["signed_volume_1000ms"].tolist() == [1, -1, 2, 12]
    assert FlowImbalance(1000).batch(t).tolist() == pytest.approx([1.0, -1 / 3, 2 / 6, 12 / 12])


def test_unordered_trades_are_refused() -> None:
    with pytest.raises(ValueError, match="time must not decrease"):
        Trades(np.array([2, 1]), np.ones(2), np.ones(2), np.ones(2))


def test_features_from_the_lake_equal_features_from_the_recording(trades: Trades,
                                                                  tmp_path: Path) -> None:
    """The batch path reads the lake's trades (written through the lake's own import path)."""
    import pyarrow as pa

    from spark_ray.lake import DataStore
    from spark_ray.signals.features import compute
    from spark_ray.signals.inventory import TRADE_SIGNALS

    n = len(trades.time)
    store = DataStore(tmp_path / "lake")
    store.write_trades(pa.table({
        "trade_id": pa.array(np.arange(n), pa.int64()), "price": trades.price,
        "qty": trades.qty, "is_buyer_maker": pa.array(trades.side < 0),
        "trade_time": pa.array(trades.time, pa.timestamp("ms", tz="UTC"))}), "binance", "XRPETH")
    back = Trades.from_table(store.trades("XRPETH"))
    feats = [s.feature for s in TRADE_SIGNALS]
    table = compute(feats, back)
    assert table.num_rows == n and table.column_names == ["time_ms", *(f.name for f in feats)]
    np.testing.assert_array_equal(table.column("time_ms").to_numpy(), trades.time)
    for f in feats:
        np.testing.assert_array_equal(table.column(f.name).to_numpy(), f.batch(trades))
