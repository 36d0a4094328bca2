"""``spark-ray signals ...``: the signal inventory."""

from __future__ import annotations

import argparse
import json
import re
import sys

from spark_ray.config import Settings, redacted
from spark_ray.errors import UserError

_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `signals` subcommand."""
    p = subparsers.add_parser("signals", help="signals: the inventory of features models use")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("ls", help="list every signal: name, family, inputs, horizon, meaning")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(handler=_ls)
    st = sub.add_parser("study", help="each signal's information coefficient, hit rate and "
                        "decay over horizons, on the lake's trades (JSON + PNG)")
    st.add_argument("--store", "--lake", dest="store", default=None, help="the Parquet lake")
    st.add_argument("--symbol", required=True, help="symbol in the lake, e.g. XRPETH")
    st.add_argument("--exchange", default="binance", help="the lake's exchange= (default "
                    "binance)")
    st.add_argument("--signals", default=None,
                    help="comma-separated signal names (default: the whole inventory)")
    st.add_argument("--horizons", default="1s,10s,60s,300s",
                    help="forward-return horizons, e.g. 500ms,10s,5m (default 1s,10s,60s,300s)")
    st.add_argument("--out", default=None, help="parent folder of the run folder (default runs)")
    st.set_defaults(handler=_study)


def parse_horizons(text: str) -> list[int]:
    """``1s,10s,5m`` -> milliseconds; anything else is a --horizons error."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"(\d+)(ms|s|m|h)", part)
        if not m or int(m.group(1)) == 0:
            raise UserError(f"--horizons: {part!r} is not a positive duration like 500ms, 10s, "
                            "5m or 1h")
        out.append(int(m.group(1)) * _UNITS_MS[m.group(2)])
    return sorted(set(out))


def _study(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import run_folder
    from spark_ray.lake import DataStore
    from spark_ray.signals.features import Trades
    from spark_ray.signals.inventory import INVENTORY, signal
    from spark_ray.signals.study import plot, study

    horizons = parse_horizons(args.horizons)
    try:
        chosen = ([signal(n.strip()) for n in args.signals.split(",")] if args.signals
                  else list(INVENTORY))
    except KeyError as exc:
        raise UserError(f"--signals: {exc.args[0]}") from None
    store = DataStore(args.store or settings.store)
    if args.symbol not in store.symbols("trades", args.exchange):
        raise UserError(f"--symbol: no trades of {args.symbol!r} in {store.uri} "
                        f"(exchange={args.exchange})")
    trades = Trades.from_table(store.trades(args.symbol, args.exchange))
    print(f"studying {len(chosen)} signals over {len(trades.time):,} trades of {args.symbol}",
          file=sys.stderr, flush=True)
    result = study(chosen, trades, args.symbol, horizons)
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        run.write_json("study.json", result.to_dict(), "each signal's IC and hit rate per "
                       "forward-return horizon, with the count of independent windows")
        plot(result, run.path / "study.png")
        run.artifacts["study.png"] = "IC decay per signal over the horizons"
    width = max(len(r["name"]) for r in result.rows)
    heads = "  ".join(f"IC@{_label(h):>5}" for h in horizons)
    print(f"{'SIGNAL':<{width}}  {heads}  HIT@{_label(horizons[0])}")
    for r in result.rows:
        ics = "  ".join(f"{v:>+8.3f}" for v in r["ic"])
        hit = "-" if r["hit_rate"][0] is None else f"{r['hit_rate'][0]:.3f}"
        print(f"{r['name']:<{width}}  {ics}  {hit}")
    print(f"study.json, study.png: {run.path}")
    return 0


def _label(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1_000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.signals.inventory import INVENTORY, table

    if args.json:
        print(json.dumps([s.row() for s in INVENTORY], indent=2))
    else:
        print(table())
    return 0
