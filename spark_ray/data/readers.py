"""Parse external candle and trade files into tables the normalizer accepts.

Formats: Binance's public data archive (zip or CSV, header or not, open times in milliseconds or,
for SPOT data from 2025-01-01 on, microseconds: detected per file), freqtrade's JSON and feather
candle files and its trade files, and generic CSV with a column mapping. Any malformed input
raises :class:`~spark_ray.errors.UserError` naming the file and, where the parser knows it, the
row; nothing is written before a whole file parsed.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather

from spark_ray.errors import UserError
from spark_ray.schemas import INTERVAL_MS

Format = Literal["binance-archive", "freqtrade", "csv"]
FORMATS: tuple[str, ...] = ("binance-archive", "freqtrade", "csv")
US_THRESHOLD = 10**14  # epoch ms stays below this until the year 5138; epoch µs is above it

KLINE_COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time",
                 "quote_volume", "trades", "taker_buy_base", "taker_buy_quote", "ignore"]
KLINE_TYPES = {"open_time": pa.int64(), "close_time": pa.int64(), "trades": pa.int64(),
               **{c: pa.float64() for c in ("open", "high", "low", "close", "volume",
                                            "quote_volume", "taker_buy_base", "taker_buy_quote")},
               "ignore": pa.string()}
TRADE_COLUMNS = ["trade_id", "price", "qty", "quote_qty", "trade_time", "is_buyer_maker",
                 "is_best_match"]
AGG_COLUMNS = ["trade_id", "price", "qty", "first_trade_id", "last_trade_id", "trade_time",
               "is_buyer_maker", "is_best_match"]


# Market suffixes of common equity exports (Yahoo Finance style): ``THYAO.IS`` is THYAO on
# Borsa Istanbul. The lake's symbol is the bare ticker; the exchange is ``--exchange``.
MARKET_SUFFIX = re.compile(r"\.IS(?=$|[-_.])", re.IGNORECASE)


def strip_market_suffix(symbol: str) -> str:
    """``THYAO.IS`` -> ``THYAO``; other names unchanged."""
    return MARKET_SUFFIX.sub("", symbol)


def infer_symbol_interval(path: Path) -> tuple[str | None, str | None]:
    """``ETH_BTC-5m.feather`` -> (ETHBTC, 5m); ``ADABTC-1m-2021-11-27.csv`` -> (ADABTC, 1m);
    ``THYAO.IS-1d.csv`` -> (THYAO, 1d)."""
    name = strip_market_suffix(path.name).split(".")[0]
    m = re.match(r"^([A-Za-z0-9]+(?:[_/-][A-Za-z0-9]+)??)-(\d+[smhdwM])(?:-|$)", name)
    if m and m.group(2) in INTERVAL_MS:
        return re.sub(r"[_/-]", "", m.group(1)).upper(), m.group(2)
    m = re.match(r"^([A-Za-z0-9]+(?:_[A-Za-z0-9]+)?)-(?:agg)?trades", name, re.IGNORECASE)
    if m:
        return m.group(1).replace("_", "").upper(), None
    return None, None


def _open_bytes(path: Path) -> bytes:
    """File contents; a zip archive yields its single CSV member, a .gz is decompressed."""
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        if zipfile.is_zipfile(path) or path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                members = [m for m in zf.namelist() if not m.endswith("/")]
                if len(members) != 1:
                    raise UserError(f"{path}: expected one file in the zip, found "
                                    f"{len(members)}")
                return zf.read(members[0])
        if path.suffix == ".gz":
            return gzip.decompress(path.read_bytes())
        return path.read_bytes()
    except zipfile.BadZipFile as exc:
        raise UserError(f"{path}: not a valid zip archive (truncated?): {exc}") from None
    except (EOFError, OSError, gzip.BadGzipFile) as exc:
        raise UserError(f"{path}: cannot read (truncated or corrupt?): {exc}") from None


def _csv_error(path: Path, exc: Exception) -> UserError:
    msg = str(exc).strip().splitlines()[0][:300]
    msg = "".join(ch if ch.isprintable() else "?" for ch in msg)
    # pyarrow numbers rows from 1 and says "Row #N"; keep its wording, name the file.
    return UserError(f"{path}: {msg}")


def _has_header(data: bytes) -> bool:
    end = data.find(b"\n")
    first = data[: end if end >= 0 else len(data)].split(b",", 1)[0].strip()
    return not first.lstrip(b"-").replace(b".", b"").isdigit()


def _locate_bad_value(path: Path, data: bytes, names: list[str], types: dict[str, pa.DataType],
                      header: bool, message: str) -> UserError | None:
    """pyarrow says which column failed to convert but not which row: find the line."""
    m = re.search(r"In CSV column #(\d+): CSV conversion error to (\w+)", message)
    if not m or int(m.group(1)) >= len(names):
        return None
    name = names[int(m.group(1))]
    text = pacsv.read_csv(
        io.BytesIO(data),
        read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             include_columns=[name]),
    ).column(name).to_pylist()
    target = types.get(name, pa.float64())
    for i, raw in enumerate(text):
        try:
            pa.array([raw], pa.string()).cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return UserError(f"{path}: row {i + 1 + header}: column {name!r}: not a valid "
                             f"{m.group(2)}: {raw!r}")
    return None


def _read_csv(path: Path, data: bytes, names: list[str],
              types: dict[str, pa.DataType]) -> pa.Table:
    header = _has_header(data)
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if header else 0),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=False,
                                                 quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        located = _locate_bad_value(path, data, names, types, header, str(exc))
        raise (located or _csv_error(path, exc)) from None
    for name in names:
        if table.column(name).null_count and name not in ("ignore",):
            idx = int(np.flatnonzero(table.column(name).is_null().to_numpy(
                zero_copy_only=False))[0])
            raise UserError(f"{path}: row {idx + 1 + header}: column {name!r} is empty")
    return table


def _ms_from_archive(path: Path, col: pa.ChunkedArray, name: str) -> pa.Array:
    """Archive timestamps in ms, converting a microsecond file (SPOT from 2025-01-01 on)."""
    arr = col.combine_chunks()
    if len(arr) == 0:
        return arr
    big = pc.greater_equal(arr, US_THRESHOLD).to_numpy(zero_copy_only=False)
    if big.all():
        return pc.divide(arr, 1000)
    if big.any():
        row = int(np.flatnonzero(big != big[0])[0]) + 1
        raise UserError(f"{path}: row {row}: column {name!r} mixes millisecond and "
                        "microsecond timestamps")
    return arr


def read_binance_klines(path: Path) -> pa.Table:
    """A Binance archive kline file (zip or CSV, 12 columns)."""
    data = _open_bytes(path)
    table = _read_csv(path, data, KLINE_COLUMNS, KLINE_TYPES)
    open_ms = _ms_from_archive(path, table.column("open_time"), "open_time")
    return table.set_column(0, "open_time", open_ms).drop_columns(["ignore", "close_time"])


def read_binance_trades(path: Path, agg: bool) -> pa.Table:
    """A Binance archive trades or aggTrades file."""
    data = _open_bytes(path)
    names = AGG_COLUMNS if agg else TRADE_COLUMNS
    types: dict[str, pa.DataType] = {n: pa.int64() for n in names if n.endswith("_id")}
    types.update(price=pa.float64(), qty=pa.float64(), trade_time=pa.int64(),
                 is_buyer_maker=pa.bool_(), is_best_match=pa.bool_())
    if not agg:
        types["quote_qty"] = pa.float64()
    table = _read_csv(path, data, names, types)
    ms = _ms_from_archive(path, table.column("trade_time"), "trade_time")
    idx = table.column_names.index("trade_time")
    return table.set_column(idx, "trade_time", ms)


def read_freqtrade_candles(path: Path) -> pa.Table:
    """freqtrade's candle files: JSON ``[[ms, o, h, l, c, v], ...]`` or feather (``date`` col)."""
    if path.suffix == ".feather":
        try:
            t = feather.read_table(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise UserError(f"{path}: not a readable feather file: {exc}") from None
        missing = [c for c in ("date", "open", "high", "low", "close", "volume")
                   if c not in t.column_names]
        if missing:
            raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
        date = t.column("date")
        if not pa.types.is_timestamp(date.type):
            raise UserError(f"{path}: column 'date' must be a timestamp, is {date.type}")
        cols = {"open_time": date}
        for c in ("open", "high", "low", "close", "volume"):
            try:
                cols[c] = t.column(c).cast(pa.float64())
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise UserError(f"{path}: column {c!r}: {exc}") from None
        return pa.table(cols)
    rows = _load_json_rows(path)
    return _rows_to_table(path, rows, ["open_time", "open", "high", "low", "close", "volume"])


def _load_json_rows(path: Path) -> list[Any]:
    data = _open_bytes(path)
    try:
        rows = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(rows, list):
        raise UserError(f"{path}: expected a JSON list of rows")
    return rows


def _rows_to_table(path: Path, rows: list[Any], names: list[str]) -> pa.Table:
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = len(row) if isinstance(row, list) else type(row).__name__
            raise UserError(f"{path}: row {i + 1}: expected {width} values, got {got}")
    try:
        arr = np.array(rows, dtype=np.float64) if rows else np.empty((0, width))
    except (ValueError, TypeError):
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if not isinstance(v, int | float) or isinstance(v, bool):
                    raise UserError(f"{path}: row {i + 1}: column {names[j]!r}: "
                                    f"not a number: {v!r}") from None
        raise
    cols: dict[str, Any] = {names[0]: pa.array(arr[:, 0].astype(np.int64))}
    for j, n in enumerate(names[1:], start=1):
        cols[n] = pa.array(arr[:, j])
    return pa.table(cols)


def read_freqtrade_trades(path: Path) -> pa.Table:
    """freqtrade trades: ``[ts_ms, id, order_id, side, price, amount, cost]`` (JSON, maybe gz).

    ``side`` is the taker's side, so the buyer was the maker exactly when the taker sold.
    """
    rows = _load_json_rows(path)
    n = len(rows)
    ts = np.empty(n, np.int64)
    ids = np.empty(n, np.int64)
    price = np.empty(n, np.float64)
    qty = np.empty(n, np.float64)
    maker = np.empty(n, bool)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != 7:
            raise UserError(f"{path}: row {i + 1}: expected 7 values "
                            "[timestamp, id, order_id, side, price, amount, cost]")
        try:
            ts[i] = int(row[0])
            ids[i] = int(row[1])
            price[i] = float(row[4])
            qty[i] = float(row[5])
        except (TypeError, ValueError):
            raise UserError(f"{path}: row {i + 1}: timestamp, id, price and amount must be "
                            f"numbers, got {row[0]!r}, {row[1]!r}, {row[4]!r}, {row[5]!r}"
                            ) from None
        if row[3] not in ("buy", "sell"):
            raise UserError(f"{path}: row {i + 1}: side must be 'buy' or 'sell', got {row[3]!r}")
        maker[i] = row[3] == "sell"
    return pa.table({"trade_id": ids, "price": price, "qty": qty, "is_buyer_maker": maker,
                     "trade_time": ts})


TimeUnit = Literal["ms", "us", "s", "iso"]


def _iso_ms(path: Path, column: str, values: list[str | None]) -> Any:
    """ISO 8601 times as UTC epoch ms: dates (``2024-01-02``: that day 00:00 UTC, as daily
    exports label sessions), date-times with ``T`` or a space, with or without an offset
    (``+03:00``, ``Z``; none means UTC). A bad value stops with its row named."""
    import pandas as pd

    for i, v in enumerate(values):
        if v is None or not v.strip():
            raise UserError(f"{path}: column {column!r} row {i + 2}: empty time")
    try:
        parsed = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: column {column!r}: not an ISO 8601 time ({exc})") from None
    return parsed.dt.as_unit("ms").astype("int64").to_numpy()  # the parsed resolution varies


def read_generic_csv(path: Path, mapping: dict[str, str], time_unit: TimeUnit = "ms") -> pa.Table:
    """A CSV with a header; ``mapping`` maps canonical names (open_time, open, ...) to columns."""
    required = ("open_time", "open", "high", "low", "close", "volume")
    missing = [c for c in required if c not in mapping]
    if missing:
        raise UserError(f"--columns: missing mapping for {', '.join(missing)} "
                        "(e.g. --columns open_time=ts,open=o,high=h,low=l,close=c,volume=v)")
    data = _open_bytes(path)
    types: dict[str, pa.DataType] = {mapping[c]: pa.float64() for c in required[1:]}
    types[mapping["open_time"]] = pa.int64() if time_unit != "iso" else pa.string()
    try:
        t = pacsv.read_csv(io.BytesIO(data),
                           convert_options=pacsv.ConvertOptions(column_types=types))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise _csv_error(path, exc) from None
    absent = [src for src in mapping.values() if src not in t.column_names]
    if absent:
        raise UserError(f"{path}: column(s) {', '.join(absent)} not in the header "
                        f"({', '.join(t.column_names)})")
    ts = t.column(mapping["open_time"])
    if time_unit == "iso":
        ts = pa.array(_iso_ms(path, mapping["open_time"], ts.to_pylist()), pa.int64())
    else:
        scale = {"ms": 1, "s": 1000, "us": 0.001}[time_unit]
        ts = pc.cast(pc.multiply(ts.cast(pa.float64()), scale), pa.int64())
    cols: dict[str, Any] = {"open_time": ts}
    for c in required[1:]:
        cols[c] = t.column(mapping[c])
    for c in ("quote_volume", "trades", "taker_buy_base", "taker_buy_quote"):
        if c in mapping:
            cols[c] = t.column(mapping[c])
    return pa.table(cols)
