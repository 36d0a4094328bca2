"""The bars a strategy sees: :class:`BarData` (all bars, for ``init``) and :class:`Bar` (one bar,
for ``on_bar``), and the fingerprint that names exactly which bars a result came from.

They live with the strategy interface, not with the backtest, because live trading builds the
same :class:`BarData` from trades (``spark_ray.execution.bars``) and must fingerprint it alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# ``BarData.extra[SIGNALS][symbol][name]``: values published beside each bar (the signal model's
# ``p_up`` and its features, at the bar's last trade), the same arrays in backtest and live.
SIGNALS = "signals"


def fingerprint(time: np.ndarray, cols: list[np.ndarray]) -> str:
    """sha256 over the bar arrays' bytes: names exactly the data a result came from."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(time, dtype=np.int64).tobytes())
    for c in cols:
        h.update(np.ascontiguousarray(c, dtype=np.float64).tobytes())
    return h.hexdigest()


@dataclass
class BarData:
    """Aligned bars of one or more symbols: int64 ms open times and float64 OHLCV per symbol."""

    time: np.ndarray
    open: dict[str, np.ndarray]
    high: dict[str, np.ndarray]
    low: dict[str, np.ndarray]
    close: dict[str, np.ndarray]
    volume: dict[str, np.ndarray]
    symbols: list[str]
    interval: str
    fingerprint: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Where the bars come from ("" when unknown): the backtest asks ``spark_ray.sessions`` for
    # this exchange's trading calendar (which bars may trade, how many bars make a year).
    exchange: str = ""

    def __len__(self) -> int:
        return len(self.time)

    def window(self, start: int, stop: int) -> BarData:
        """Bars ``start..stop-1`` as views (no copy): a walk-forward window, a series cut at a
        bar. The fingerprint says which slice of which data it is."""
        sl = slice(start, stop)
        return BarData(time=self.time[sl], open={s: a[sl] for s, a in self.open.items()},
                       high={s: a[sl] for s, a in self.high.items()},
                       low={s: a[sl] for s, a in self.low.items()},
                       close={s: a[sl] for s, a in self.close.items()},
                       volume={s: a[sl] for s, a in self.volume.items()},
                       symbols=self.symbols, interval=self.interval,
                       fingerprint=f"{self.fingerprint}[{start}:{stop}]",
                       extra=self.extra_taking(sl), exchange=self.exchange)

    def extra_taking(self, index: slice | np.ndarray) -> dict[str, Any]:
        """``extra`` for a subset of the bars: the signals beside them cut the same way, so a
        window or a session filter never pairs a bar with another bar's signal."""
        sig = self.extra.get(SIGNALS)
        if not sig:
            return self.extra
        return {**self.extra, SIGNALS: {s: {k: a[index] for k, a in cols.items()}
                                        for s, cols in sig.items()}}

    @property
    def symbol(self) -> str:
        """The primary (first) symbol: single-symbol strategies use it implicitly."""
        return self.symbols[0]

    # Single-symbol conveniences for indicator code: data.c is the primary close, etc.
    @property
    def o(self) -> np.ndarray:
        return self.open[self.symbols[0]]

    @property
    def h(self) -> np.ndarray:
        return self.high[self.symbols[0]]

    @property
    def lo(self) -> np.ndarray:
        return self.low[self.symbols[0]]

    @property
    def c(self) -> np.ndarray:
        return self.close[self.symbols[0]]

    @property
    def v(self) -> np.ndarray:
        return self.volume[self.symbols[0]]


class Bar:
    """The bar ``on_bar`` sees; one instance is updated in place per bar (no allocation)."""

    __slots__ = ("close", "high", "i", "low", "open", "symbol", "time", "volume")

    def __init__(self) -> None:
        self.i = 0
        self.time = 0
        self.open = self.high = self.low = self.close = self.volume = 0.0
        self.symbol = ""
