"""``spark-ray data fetch|import|synth|check|ls|repair``: build, inspect and repair the lake."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spark_ray.config import Settings, redacted
from spark_ray.errors import CheckFailed, UserError
from spark_ray.schemas import INTERVAL_MS

SYMBOL = re.compile(r"^[A-Z0-9]{2,20}$")


def parse_time(flag: str, value: str) -> int:
    """``2024-01-01`` or an ISO datetime (UTC unless it says otherwise) -> epoch ms."""
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{flag}: {value!r} is not a date (use YYYY-MM-DD or ISO 8601)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def parse_symbols(value: str) -> list[str]:
    symbols = [s.strip().upper() for s in value.split(",") if s.strip()]
    if not symbols:
        raise UserError("--symbols: give at least one symbol, e.g. BTCUSDT,ETHUSDT")
    bad = [s for s in symbols if not SYMBOL.match(s)]
    if bad:
        raise UserError(f"--symbols: invalid symbol(s) {', '.join(bad)} (letters and digits)")
    return symbols


def check_interval(value: str) -> str:
    if value not in INTERVAL_MS or INTERVAL_MS[value] is None:
        raise UserError(f"--interval: unknown interval {value!r}; expected one of "
                        f"{', '.join(k for k, v in INTERVAL_MS.items() if v)}")
    return value


def _series_args(args: argparse.Namespace) -> tuple[list[str], str, int, int]:
    """--symbols, --interval, --start, --end: validated, times as epoch ms."""
    symbols = parse_symbols(args.symbols)
    interval = check_interval(args.interval)
    start, end = parse_time("--start", args.start), parse_time("--end", args.end)
    if start >= end:
        raise UserError("--start must be before --end")
    return symbols, interval, start, end


def _store(args: argparse.Namespace, settings: Settings) -> Any:
    from spark_ray.lake import DataStore

    return DataStore(args.store or settings.store)


def _run(settings: Settings) -> Any:
    from spark_ray.evidence import run_folder

    return run_folder(settings.out, command=sys.argv, config=redacted(settings))


# --- fetch --------------------------------------------------------------------------------------

def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.data.ccxt_fetch import ccxt_id

    if ccxt_id(args.exchange) is not None:
        return _fetch_ccxt(args, settings)
    from spark_ray.adapters.registry import get_adapter

    try:
        adapter = get_adapter(args.exchange)
    except ValueError as exc:
        raise UserError(f"--exchange: {exc}, or ccxt:<id> (e.g. ccxt:kraken)") from None
    if not adapter.caps.kline_history:
        raise UserError(f"--exchange: {adapter.title} has no candle history over REST")
    if not adapter.ray_kline_etl:
        return _fetch_paged(args, settings, adapter)
    from spark_ray.app.etl import BINANCE_REST, FetchError, run_fetch
    from spark_ray.app.session import connect, disconnect
    from spark_ray.http import RetryPolicy

    symbols, interval, start, end = _series_args(args)
    store = _store(args, settings)
    session = connect(config=settings.ray)
    try:
        with _run(settings) as run:
            try:
                summary = run_fetch(store, symbols, interval, start, end,
                                    base_url=args.base_url or BINANCE_REST,
                                    exchange=args.exchange, weight_limit=args.weight_limit,
                                    policy=RetryPolicy(max_retries=args.max_retries),
                                    progress=not args.quiet)
            except FetchError as exc:
                raise CheckFailed(f"fetch failed: {exc}") from None
            data = {**summary.__dict__, "store": store.uri, "symbols": symbols,
                    "interval": interval, "base_url": args.base_url or BINANCE_REST}
            run.write_json("fetch-summary.json", data, "what was fetched, retries, rate limits")
    finally:
        if session.started_local:
            disconnect()
    print(f"fetched {summary.candles} candles in {summary.jobs} symbol-month jobs "
          f"({summary.requests} requests, {summary.retries} retries, "
          f"{summary.rate_limited} rate-limited) into {store.uri}")
    for s, n in sorted(summary.per_symbol.items()):
        print(f"  {s:<12} {n:>9} candles  (resumed after {summary.resumed_from.get(s) or '-'})")
    print(f"evidence: {run.path}")
    return 0


def _fetch_paged(args: argparse.Namespace, settings: Settings, adapter: Any) -> int:
    """An adapter's own candle history (``adapter.kline_history``), paged in this process at
    the pace the venue documents (no Ray tasks). Pairs may be written ``BTC_TRY``: the lake
    stores ``BTCTRY``."""
    import asyncio

    from spark_ray.data.fetch import FetchError
    from spark_ray.data.paged_fetch import run_paged_fetch
    from spark_ray.http import RetryPolicy

    args.symbols = args.symbols.replace("_", "").replace("/", "")
    symbols, interval, start, end = _series_args(args)
    if args.max_retries < 0:
        raise UserError("--max-retries: must be >= 0")
    base_url = args.base_url or adapter.default_rest_url
    if args.base_url is not None and not re.match(r"^https?://[^/\s]+", args.base_url):
        raise UserError(f"--base-url: {args.base_url!r} is not http(s)://host[:port][/path]")
    history = adapter.kline_history(base_url)
    if interval not in history.intervals:  # before any call: no client to close yet
        raise UserError(f"--interval: {adapter.title} offers {', '.join(history.intervals)}; "
                        f"not {interval}")
    store = _store(args, settings)
    with _run(settings) as run:
        try:
            summary = asyncio.run(run_paged_fetch(
                store, adapter.name, history, symbols, interval, start, end,
                policy=RetryPolicy(max_retries=args.max_retries), progress=not args.quiet,
                title=adapter.title))
        except FetchError as exc:
            raise CheckFailed(f"fetch failed: {exc}") from None
        data = {**summary.__dict__, "store": store.uri, "symbols": symbols, "interval": interval,
                "exchange": adapter.name, "base_url": base_url}
        run.write_json("fetch-summary.json", data, "what was fetched, retries, rate limits")
    print(f"fetched {summary.candles} candles from {adapter.title} in {summary.jobs} "
          f"symbol-month jobs ({summary.requests} requests, {summary.retries} retries, "
          f"{summary.rate_limited} rate-limited) into {store.uri} (exchange={adapter.name})")
    for s in symbols:  # every symbol, also those already complete (a resumed run)
        print(f"  {s:<12} {summary.per_symbol.get(s, 0):>9} candles  (resumed after "
              f"{summary.resumed_from.get(s) or '-'})")
    print(f"evidence: {run.path}")
    return 0


def _fetch_ccxt(args: argparse.Namespace, settings: Settings) -> int:
    """``--exchange ccxt:<id>``: one rate-limited ccxt client in this process (no Ray tasks)."""
    from spark_ray.data.ccxt_fetch import ccxt_id, run_ccxt_fetch
    from spark_ray.data.fetch import FetchError
    from spark_ray.http import RetryPolicy

    exchange_id = ccxt_id(args.exchange) or ""
    if not exchange_id:
        raise UserError("--exchange: ccxt:<id> needs an exchange id, e.g. ccxt:kraken")
    symbols, interval, start, end = _series_args(args)
    store = _store(args, settings)
    with _run(settings) as run:
        try:
            summary = run_ccxt_fetch(store, exchange_id, symbols, interval, start, end,
                                     base_url=args.base_url,
                                     policy=RetryPolicy(max_retries=args.max_retries),
                                     progress=not args.quiet)
        except FetchError as exc:
            raise CheckFailed(f"fetch failed: {exc}") from None
        data = {**summary.__dict__, "store": store.uri, "symbols": symbols, "interval": interval,
                "exchange": exchange_id, "source": "ccxt", "base_url": args.base_url}
        run.write_json("fetch-summary.json", data, "what was fetched, retries, rate limits")
    print(f"fetched {summary.candles} candles from {exchange_id} (ccxt) in {summary.jobs} "
          f"symbol-month jobs ({summary.requests} requests, {summary.retries} retries, "
          f"{summary.rate_limited} rate-limited) into {store.uri} (exchange={exchange_id})")
    for s, n in sorted(summary.per_symbol.items()):
        print(f"  {s:<12} {n:>9} candles  (resumed after {summary.resumed_from.get(s) or '-'})")
    print(f"evidence: {run.path}")
    return 0


# --- import -------------------------------------------------------------------------------------

def _parse_mapping(value: str | None) -> dict[str, str]:
    if not value:
        return {}
    out = {}
    for part in value.split(","):
        if "=" not in part:
            raise UserError(f"--columns: {part!r} is not NAME=COLUMN")
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.data.importer import import_files

    if args.symbol:
        from spark_ray.data.readers import strip_market_suffix

        parse_symbols(strip_market_suffix(args.symbol))
    if args.interval:
        check_interval(args.interval)
    store = _store(args, settings)
    with _run(settings) as run:
        report = import_files(store, [Path(p) for p in args.paths], fmt=args.format,
                              symbol=args.symbol, interval=args.interval,
                              exchange=args.exchange, kind=args.kind,
                              mapping=_parse_mapping(args.columns), time_unit=args.time_unit)
        run.write_json("import-summary.json", report, "per file: rows, duplicates, conflicts")
    for f in report["files"]:
        print(f"  {f['path']}: {f['rows_in']} rows -> {f['dataset']} {f['symbol']} "
              f"{f.get('interval') or ''} ({f['duplicates']} duplicates, "
              f"{f['conflicts']} conflicts)")
    print(f"imported {report['rows_in']} rows from {len(report['files'])} file(s) into "
          f"{store.uri}; evidence: {run.path}")
    return 0


# --- synth --------------------------------------------------------------------------------------

def _synth(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.data.synth import Faults, synth_candles

    symbols, interval, start, end = _series_args(args)
    store = _store(args, settings)
    faults = Faults(gaps=args.gaps, duplicates=args.duplicates, bad_rows=args.bad_rows)
    out: dict[str, Any] = {"store": store.uri, "seed": args.seed, "symbols": {}}
    with _run(settings) as run:
        for symbol in symbols:
            table = synth_candles(symbol, interval, start, end, args.seed, faults=faults)
            res = store.write_candles(table, args.exchange, symbol, interval)
            out["symbols"][symbol] = {"rows": table.num_rows, "files": res.files,
                                      **res.stats.as_dict()}
            print(f"  {symbol:<12} {res.rows_written:>9} candles ({res.stats.duplicates} "
                  f"duplicates dropped)")
        run.write_json("synth-summary.json", out, "synthetic series written")
    print(f"synthesized {len(symbols)} series into {store.uri}; evidence: {run.path}")
    return 0


# --- check, ls ----------------------------------------------------------------------------------

def _ratio(flag: str, value: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"{value} must be between 0 and 1")
    return v


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.data.quality import check_store, judge

    store = _store(args, settings)
    reports = check_store(store)
    if not reports:
        raise UserError(f"--store: no candle series under {store.uri}")
    verdict = judge(reports, args.max_missing, args.max_dup)
    doc = {"store": store.uri, "thresholds": {"max_missing": args.max_missing,
                                              "max_dup": args.max_dup},
           "ok": verdict.ok, "violations": verdict.violations,
           "series": [r.as_dict() for r in reports]}
    with _run(settings) as run:
        run.write_json("quality.json", doc, "quality per symbol/interval/month, file checksums")
        run.exit_code = 0 if verdict.ok else 1
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(f"{'series':<28} {'first':<21} {'last':<21} {'expected':>9} {'present':>9} "
              f"{'missing':>8} {'miss%':>7} {'dups':>5} {'gaps':>5} {'ohlc':>5} {'outl':>5}")
        for r in reports:
            gaps = sum(m.gap_count for m in r.months)
            ohlc = sum(m.ohlc_violations + m.nonfinite_or_negative for m in r.months)
            outl = sum(m.outlier_returns for m in r.months)
            print(f"{r.exchange + '/' + r.symbol + '/' + r.interval:<28} {r.first or '-':<21} "
                  f"{r.last or '-':<21} {r.expected:>9} {r.present:>9} {r.missing:>8} "
                  f"{r.missing_ratio:>7.3%} {r.duplicates:>5} {gaps:>5} {ohlc:>5} {outl:>5}")
        print(f"quality report: {run.path / 'quality.json'}")
    if not verdict.ok:
        raise CheckFailed("quality gate FAILED:\n  " + "\n  ".join(verdict.violations))
    # With --json stdout holds exactly one JSON document; the verdict goes to stderr.
    print("quality gate PASSED", file=sys.stderr if args.json else sys.stdout)
    return 0


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    store = _store(args, settings)
    rows = store.coverage()
    if not rows:
        print(f"{store.uri}: empty lake")
        return 0
    print(f"{'dataset':<11} {'exchange':<9} {'symbol':<12} {'interval':<8} {'months':>6} "
          f"{'rows':>10} {'first':<20} {'last':<20} {'MiB':>7}")
    for c in rows:
        fmt = "%Y-%m-%d %H:%M"
        print(f"{c.dataset:<11} {c.exchange:<9} {c.symbol:<12} {c.interval or '-':<8} "
              f"{c.months:>6} {c.rows:>10} {c.first.strftime(fmt) if c.first else '-':<20} "
              f"{c.last.strftime(fmt) if c.last else '-':<20} {c.bytes / 2**20:>7.2f}")
    return 0


# --- repair -------------------------------------------------------------------------------------

def _id_arg(flag: str, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        v = int(value)
    except ValueError:
        raise UserError(f"{flag}: {value!r} is not a trade id (an integer)") from None
    if v < 0:
        raise UserError(f"{flag}: {v} is negative")
    return v


def _repair_args(args: argparse.Namespace) -> tuple[str, tuple[int, int] | None]:
    """--symbol and the id range (None: --scan), validated."""
    symbol = parse_symbols(args.symbol)
    if len(symbol) != 1:
        raise UserError(f"--symbol: one symbol, not {args.symbol!r}")
    lo, hi = _id_arg("--from-id", args.from_id), _id_arg("--to-id", args.to_id)
    if args.scan and (lo is not None or hi is not None):
        raise UserError("--scan: give either --scan or --from-id/--to-id, not both")
    if not args.scan:
        if lo is None or hi is None:
            raise UserError(f"{'--from-id' if lo is None else '--to-id'}: give --from-id A "
                            f"--to-id B (or --scan for the whole stored range)")
        if lo > hi:
            raise UserError(f"--to-id: {hi} is before --from-id {lo}")
        return symbol[0], (lo, hi)
    return symbol[0], None


def _repair(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from spark_ray.adapters.registry import get_adapter
    from spark_ray.http import RetryPolicy
    from spark_ray.streams.repair import (
        RepairFailed,
        RepairReport,
        check_repairable,
        format_holes,
        repair,
    )

    symbol, id_range = _repair_args(args)
    try:
        adapter = get_adapter(args.exchange)
    except (KeyError, ValueError) as exc:
        raise UserError(f"--exchange: {exc}") from None
    try:
        check_repairable(adapter, "trades")
    except ValueError as exc:
        raise UserError(f"--exchange: {exc}") from None
    base_url = args.base_url or adapter.default_rest_url
    rest = adapter.market_rest(base_url) if base_url else None
    if rest is None:
        raise UserError(f"--base-url: {adapter.title} has no REST endpoint to back-fill from")
    store = _store(args, settings)
    if args.max_retries < 0:
        raise UserError("--max-retries: must be >= 0")

    def progress(rep: RepairReport, left: list[tuple[int, int]]) -> None:
        ids_left = sum(b - a + 1 for a, b in left)
        print(f"repair {symbol}: {rep.fetched} ids fetched, {len(left)} hole(s) left "
              f"({ids_left} ids), {rep.requests} requests", file=sys.stderr, flush=True)

    async def run() -> RepairReport:
        try:
            return await repair(store, adapter, rest, symbol, id_range,
                                policy=RetryPolicy(max_retries=args.max_retries,
                                                   base_delay_s=0.2, max_delay_s=5.0),
                                progress=progress)
        finally:
            await rest.close()

    try:
        rep = asyncio.run(run())
    except RepairFailed as exc:
        n = sum(b - a + 1 for a, b in exc.missing)
        raise CheckFailed(f"repair failed: {exc}\n  {n} ids still missing from {store.uri} "
                          f"({args.exchange} {symbol}): {format_holes(exc.missing)}\n  "
                          f"(rows fetched before the failure are stored; run it again)") from None
    if rep.scanned is None:
        print(f"{store.uri}: no {args.exchange} {symbol} trades stored; nothing to scan "
              f"(give --from-id/--to-id to back-fill a range)")
        return 0
    lo, hi = rep.scanned
    if not rep.holes_before:
        print(f"{args.exchange} {symbol} trade ids {lo}..{hi}: no holes; nothing written")
        return 0
    n_before = sum(b - a + 1 for a, b in rep.holes_before)
    print(f"{args.exchange} {symbol} trade ids {lo}..{hi}: {len(rep.holes_before)} hole(s), "
          f"{n_before} ids; wrote {rep.written} rows in {len(rep.files)} file(s) "
          f"({rep.requests} requests, {rep.retries} retries) into {store.uri}; "
          f"{rep.compacted} part(s) compacted")
    if rep.missing:
        print(f"  {rep.missing_ids} ids the venue does not have (left as holes): "
              f"{format_holes(rep.missing)}")
    return 0


# --- parser -------------------------------------------------------------------------------------

def add_parser(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="market data: fetch, import, synth, check, ls, repair")
    acts = data.add_subparsers(dest="data_command", metavar="ACTION")
    acts.required = True

    def common(p: argparse.ArgumentParser, out: bool = True) -> None:
        p.add_argument("--store", default=None,
                       help="lake root: path or pyarrow URI (default: config 'store')")
        p.add_argument("--exchange", default="binance")
        if out:
            p.add_argument("--out", type=Path, default=None, help="run folders (default runs/)")

    f = acts.add_parser("fetch", help="page REST klines (binance, btcturk, or any exchange "
                                      "through --exchange ccxt:<id>) into the lake (resumable)")
    common(f)
    f.add_argument("--symbols", required=True)
    f.add_argument("--interval", required=True)
    f.add_argument("--start", required=True)
    f.add_argument("--end", required=True)
    f.add_argument("--base-url", default=None,
                   help="REST base (default: the exchange's real endpoint, "
                        "https://api.binance.com for binance, https://api.btcturk.com and "
                        "its graph-api host for btcturk)")
    f.add_argument("--address", default=None, help="Ray cluster to run the tasks on")
    f.add_argument("--weight-limit", type=int, default=6000, help="venue weight per minute")
    f.add_argument("--max-retries", type=int, default=6)
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    f.set_defaults(handler=_fetch)

    i = acts.add_parser("import", help="import archive, freqtrade or CSV files into the lake")
    common(i)
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.add_argument("--format", required=True, choices=["binance-archive", "freqtrade", "csv"])
    i.add_argument("--kind", choices=["candles", "trades", "agg_trades"], default=None,
                   help="what the files hold (default: from the file name, else candles)")
    i.add_argument("--symbol", default=None, help="default: from the file name")
    i.add_argument("--interval", default=None, help="default: from the file name")
    i.add_argument("--columns", default=None,
                   help="csv: open_time=COL,open=COL,high=COL,low=COL,close=COL,volume=COL")
    i.add_argument("--time-unit", choices=["ms", "us", "s", "iso"], default="ms",
                   help="csv: unit of the time column")
    i.set_defaults(handler=_import)

    s = acts.add_parser("synth", help="deterministic synthetic candles into the lake")
    common(s)
    s.add_argument("--symbols", required=True)
    s.add_argument("--interval", default="1m")
    s.add_argument("--start", required=True)
    s.add_argument("--end", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--gaps", type=int, default=0, help="inject this many gaps")
    s.add_argument("--duplicates", type=int, default=0, help="inject duplicate rows")
    s.add_argument("--bad-rows", type=int, default=0, help="inject OHLC-violating rows")
    s.set_defaults(handler=_synth)

    c = acts.add_parser("check", help="quality report; exits 1 when a threshold is violated")
    common(c)
    c.add_argument("--max-missing", type=lambda v: _ratio("--max-missing", v), default=0.01)
    c.add_argument("--max-dup", type=lambda v: _ratio("--max-dup", v), default=0.0)
    c.add_argument("--json", action="store_true", help="print the report as JSON")
    c.set_defaults(handler=_check)

    ls = acts.add_parser("ls", help="coverage per dataset/symbol/interval")
    common(ls, out=False)
    ls.set_defaults(handler=_ls)

    r = acts.add_parser("repair", help="find holes in stored trade ids and back-fill them from "
                                       "REST (idempotent)")
    common(r, out=False)
    r.add_argument("--symbol", required=True)
    r.add_argument("--scan", action="store_true",
                   help="look at the whole stored id range of the symbol")
    r.add_argument("--from-id", default=None, help="first trade id of the range to repair")
    r.add_argument("--to-id", default=None, help="last trade id of the range (inclusive)")
    r.add_argument("--base-url", default=None,
                   help="REST base (default: the exchange's real endpoint)")
    r.add_argument("--max-retries", type=int, default=5, help="per REST page")
    r.set_defaults(handler=_repair)
