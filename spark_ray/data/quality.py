"""Data quality of candle series: coverage, gaps, duplicates, OHLC sanity, outliers, checksums.

Computed vectorized over int64 open times and float64 OHLCV, per symbol/interval/month, so the
check runs at lake speed. Expected candles are counted over the series' own span (first to last
candle), clipped to each month, so a series that starts mid-month is not "missing" its start.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from spark_ray.lake import DataStore
from spark_ray.lake.layout import month_bounds, partition_month
from spark_ray.schemas import interval_ms, iso_ms
from spark_ray.sessions import session_grid

OUTLIER_SIGMAS = 10.0  # |log return| beyond this many robust sigmas (MAD) is an outlier
MAX_LISTED = 50  # gaps/outliers listed per month; counts are always complete


@dataclass
class Gap:
    start: str  # first missing candle's open time
    end: str  # last missing candle's open time
    missing: int


@dataclass
class MonthQuality:
    month: str
    expected: int
    present: int
    missing: int
    missing_ratio: float
    duplicates: int
    duplicate_ratio: float
    misaligned: int
    gaps: list[Gap] = field(default_factory=list)
    gap_count: int = 0
    ohlc_violations: int = 0
    nonfinite_or_negative: int = 0
    zero_volume: int = 0
    longest_zero_volume_run: int = 0
    outlier_returns: int = 0
    outliers: list[dict[str, Any]] = field(default_factory=list)
    sha256: str | None = None
    file: str | None = None


@dataclass
class SeriesQuality:
    exchange: str
    symbol: str
    interval: str
    first: str | None
    last: str | None
    expected: int
    present: int
    missing: int
    missing_ratio: float
    duplicates: int
    duplicate_ratio: float
    months: list[MonthQuality]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _runs(mask: np.ndarray) -> np.ndarray:
    """Lengths of the runs of True in ``mask``."""
    if not mask.any():
        return np.zeros(0, dtype=np.int64)
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(padded)
    return np.flatnonzero(d == -1) - np.flatnonzero(d == 1)


def assess_arrays(t_ms: np.ndarray, o: np.ndarray, h: np.ndarray, low: np.ndarray,
                  c: np.ndarray, v: np.ndarray, step: int, lo: int, hi: int,
                  month: str, grid: np.ndarray | None = None) -> MonthQuality:
    """Quality of one month's candles; expected candles are those in [lo, hi] on the grid, or
    exactly ``grid`` (the exchange's session candles, :mod:`~spark_ray.sessions`): then a
    candle off it (outside a session) counts as misaligned, never as present.

    Gaps are found over the whole series by :func:`assess_table` (a gap may cross months).
    """
    order = np.argsort(t_ms, kind="stable")
    if not np.all(order[1:] > order[:-1]):
        t_ms, o, h, low, c, v = (a[order] for a in (t_ms, o, h, low, c, v))
    n = len(t_ms)
    dup_mask = np.zeros(n, dtype=bool)
    if n > 1:
        dup_mask[1:] = t_ms[1:] == t_ms[:-1]
    duplicates = int(dup_mask.sum())
    misaligned = int(np.count_nonzero(t_ms % step))
    uniq = t_ms[~dup_mask]
    if grid is not None:
        expected = int(grid.size) if n else 0
        present = int(np.count_nonzero(np.isin(uniq, grid)))
        misaligned = int(uniq.size - present)
    else:
        expected = int((hi - lo) // step + 1) if n else 0
        present = int(np.count_nonzero((uniq >= lo) & (uniq <= hi) & (uniq % step == 0)))
    missing = max(expected - present, 0)

    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c) & np.isfinite(v)
    bad_values = int(np.count_nonzero(~finite | (o < 0) | (h < 0) | (low < 0) | (c < 0)
                                      | (v < 0)))
    with np.errstate(invalid="ignore"):
        ohlc = (h < np.maximum(o, c)) | (low > np.minimum(o, c)) | (h < low)
    zero = v == 0
    runs = _runs(zero)

    outliers: list[dict[str, Any]] = []
    n_out = 0
    if n > 2:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.diff(np.log(c))
        ok = np.isfinite(r)
        if ok.sum() > 2:
            med = np.median(r[ok])
            mad = np.median(np.abs(r[ok] - med)) * 1.4826
            if mad > 0:
                z = np.abs(r - med) / mad
                hits = np.flatnonzero(ok & (z > OUTLIER_SIGMAS))
                n_out = int(hits.size)
                for i in hits[:MAX_LISTED]:
                    outliers.append({"time": iso_ms(int(t_ms[i + 1])), "log_return": float(r[i]),
                                     "sigmas": round(float(z[i]), 1)})
    return MonthQuality(
        month=month, expected=expected, present=present, missing=missing,
        missing_ratio=missing / expected if expected else 0.0, duplicates=duplicates,
        duplicate_ratio=duplicates / n if n else 0.0, misaligned=misaligned,
        ohlc_violations=int(np.count_nonzero(ohlc)),
        nonfinite_or_negative=bad_values, zero_volume=int(zero.sum()),
        longest_zero_volume_run=int(runs.max()) if runs.size else 0,
        outlier_returns=n_out, outliers=outliers,
    )


def assess_table(table: pa.Table, interval: str, exchange: str = "binance"
                 ) -> list[MonthQuality]:
    """Quality per month of one series given as a candle table (any order, may repeat);
    an exchange with sessions (BIST) expects candles only inside them."""
    step = interval_ms(interval)
    t = table.column("open_time").cast(pa.int64()).to_numpy()
    if len(t) == 0:
        return []
    arrays = [table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
              for c in ("open", "high", "low", "close", "volume")]
    first = int(t.min())
    last = int(t.max())
    if not np.all(t[1:] >= t[:-1]):
        order = np.argsort(t, kind="stable")
        t = t[order]
        arrays = [a[order] for a in arrays]
    grid = session_grid(exchange, interval, first, last)
    months = t.astype("datetime64[ms]").astype("datetime64[M]")
    edges = np.concatenate([[0], np.flatnonzero(months[1:] != months[:-1]) + 1, [len(t)]])
    out = []
    for s, e in itertools.pairwise(edges):
        sel = slice(int(s), int(e))
        name = str(months[s])
        m_lo, m_hi = month_bounds(name)
        lo = max(first, m_lo + (-m_lo) % step)
        hi = min(last, m_hi - 1 - (m_hi - 1) % step)
        o, h, low, c, v = (a[sel] for a in arrays)
        g = grid[(grid >= lo) & (grid <= hi)] if grid is not None else None
        out.append(assess_arrays(t[sel], o, h, low, c, v, step=step, lo=lo, hi=hi, month=name,
                                 grid=g))
    uniq = t[np.concatenate([[True], t[1:] != t[:-1]])]
    if grid is not None:
        _attach_session_gaps(out, uniq, grid)
    else:
        _attach_gaps(out, uniq, step)
    return out


def _attach_session_gaps(months: list[MonthQuality], uniq: np.ndarray,
                         grid: np.ndarray) -> None:
    """Gaps as runs of session candles that are absent (nights, weekends, holidays are not)."""
    by_month = {m.month: m for m in months}
    runs = _runs(~np.isin(grid, uniq))
    if not runs.size:
        return
    missing = np.flatnonzero(~np.isin(grid, uniq))
    starts = missing[np.concatenate([[True], np.diff(missing) > 1])]
    for i, length in zip(starts, runs, strict=True):
        start, end = int(grid[i]), int(grid[i + length - 1])
        target = by_month.get(str(np.datetime64(start, "ms").astype("datetime64[M]")))
        if target is None:
            continue
        target.gap_count += 1
        if len(target.gaps) < MAX_LISTED:
            target.gaps.append(Gap(iso_ms(start), iso_ms(end), int(length)))


def _attach_gaps(months: list[MonthQuality], uniq: np.ndarray, step: int) -> None:
    """List each gap under the month of its first missing candle."""
    by_month = {m.month: m for m in months}
    idx = np.flatnonzero(np.diff(uniq) > step)
    for i in idx:
        start = int(uniq[i] + step)
        end = int(uniq[i + 1] - step)
        month = by_month.get(str(np.datetime64(start, "ms").astype("datetime64[M]")))
        target = month or by_month[str(np.datetime64(int(uniq[i]), "ms")
                                       .astype("datetime64[M]"))]
        target.gap_count += 1
        if len(target.gaps) < MAX_LISTED:
            target.gaps.append(Gap(iso_ms(start), iso_ms(end), int((end - start) // step + 1)))


def summarize(exchange: str, symbol: str, interval: str, months: list[MonthQuality],
              first: int | None, last: int | None) -> SeriesQuality:
    expected = sum(m.expected for m in months)
    present = sum(m.present for m in months)
    dups = sum(m.duplicates for m in months)
    rows = present + dups
    return SeriesQuality(
        exchange=exchange, symbol=symbol, interval=interval,
        first=iso_ms(first) if first is not None else None,
        last=iso_ms(last) if last is not None else None,
        expected=expected, present=present, missing=expected - present,
        missing_ratio=(expected - present) / expected if expected else 0.0,
        duplicates=dups, duplicate_ratio=dups / rows if rows else 0.0, months=months,
    )


def assess_written(exchange: str, symbol: str, interval: str, tables: list[pa.Table],
                   sha256: dict[str, str]) -> SeriesQuality:
    """Quality of a series as just written (its partitions' final contents, in month order),
    with the sha256 of each file's bytes: the import's report, without reading the lake."""
    table = pa.concat_tables(tables) if tables else None
    if table is None or table.num_rows == 0:
        return summarize(exchange, symbol, interval, [], None, None)
    months = assess_table(table, interval, exchange)
    by_month = {partition_month(p): (p, d) for p, d in sha256.items()}
    for m in months:
        if m.month in by_month:
            m.file, m.sha256 = by_month[m.month]
    t = table.column("open_time").cast(pa.int64())
    return summarize(exchange, symbol, interval, months, int(t[0].as_py()), int(t[-1].as_py()))


def check_store(store: DataStore) -> list[SeriesQuality]:
    """Assess every candle series in the lake, with each partition file's sha256."""
    reports = []
    for dataset, exchange, symbol, interval in store.series():
        if dataset != "candles" or interval is None:
            continue
        files = dict(store.partition_files(dataset, exchange, symbol, interval))
        table = store.candles(symbol, interval, exchange=exchange)
        months = assess_table(table, interval, exchange)
        for m in months:
            if m.month in files:
                m.file = files[m.month]
                m.sha256 = store.sha256(files[m.month])
        t = table.column("open_time").cast(pa.int64())
        first = int(t[0].as_py()) if len(t) else None
        last = int(t[-1].as_py()) if len(t) else None
        reports.append(summarize(exchange, symbol, interval, months, first, last))
    return reports


@dataclass
class Verdict:
    ok: bool
    violations: list[str]


def judge(reports: list[SeriesQuality], max_missing: float, max_dup: float) -> Verdict:
    """Apply the CI gate's thresholds to every series."""
    bad = []
    for r in reports:
        name = f"{r.exchange}/{r.symbol}/{r.interval}"
        if r.missing_ratio > max_missing:
            bad.append(f"{name}: missing ratio {r.missing_ratio:.4%} > {max_missing:.4%} "
                       f"({r.missing} of {r.expected} candles)")
        if r.duplicate_ratio > max_dup:
            bad.append(f"{name}: duplicate ratio {r.duplicate_ratio:.4%} > {max_dup:.4%}")
        ohlc = sum(m.ohlc_violations + m.nonfinite_or_negative for m in r.months)
        if ohlc:
            bad.append(f"{name}: {ohlc} candles violate OHLC sanity")
    return Verdict(ok=not bad, violations=bad)
