"""``spark-ray signals ls|study|train``: the signal inventory, its study, model training."""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING

from spark_ray.config import Settings, redacted
from spark_ray.errors import UserError

if TYPE_CHECKING:
    from spark_ray.signals.features import Trades
    from spark_ray.signals.inventory import Signal

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
    _data_flags(st)
    st.add_argument("--horizons", default="1s,10s,60s,300s",
                    help="forward-return horizons, e.g. 500ms,10s,5m (default 1s,10s,60s,300s)")
    st.add_argument("--out", default=None, help="parent folder of the run folder (default runs)")
    st.set_defaults(handler=_study)
    tr = sub.add_parser("train", help="train a LightGBM signal model with purged k-fold CV; "
                        "report it beside its baselines; write model.txt + model.json")
    _data_flags(tr)
    tr.add_argument("--every", default="60s", help="one sample per this much time (default 60s)")
    tr.add_argument("--horizon", type=int, default=5,
                    help="triple-barrier vertical barrier, in samples (default 5)")
    tr.add_argument("--folds", type=int, default=5, help="purged k-fold's k (default 5)")
    tr.add_argument("--embargo", type=float, default=0.01,
                    help="share of samples embargoed after each test fold (default 0.01)")
    tr.add_argument("--permutations", type=int, default=200,
                    help="rotations for the p-values (default 200)")
    tr.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    tr.add_argument("--out", default=None, help="parent folder of the run folder (default runs)")
    tr.set_defaults(handler=_train)


def _data_flags(p: argparse.ArgumentParser) -> None:
    """Which trades and signals: shared by study and train."""
    p.add_argument("--store", "--lake", dest="store", default=None, help="the Parquet lake")
    p.add_argument("--symbol", required=True, help="symbol in the lake, e.g. XRPETH")
    p.add_argument("--exchange", default="binance", help="the lake's exchange= (default binance)")
    p.add_argument("--signals", default=None,
                   help="comma-separated signal names (default: the whole inventory)")


def parse_duration(text: str, flag: str) -> int:
    """``500ms``, ``10s``, ``5m``, ``1h`` -> milliseconds; anything else is an error naming
    ``flag``."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)", text.strip())
    if not m or int(m.group(1)) == 0:
        raise UserError(f"{flag}: {text.strip()!r} is not a positive duration like 500ms, 10s, "
                        "5m or 1h")
    return int(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_horizons(text: str) -> list[int]:
    """``1s,10s,5m`` -> milliseconds, sorted, each a --horizons duration."""
    return sorted({parse_duration(part, "--horizons") for part in text.split(",")})


def _trades(args: argparse.Namespace, settings: Settings) -> tuple[list[Signal], Trades]:
    """The chosen signals and the symbol's trades from the lake (bad flags exit 2)."""
    from spark_ray.lake import DataStore
    from spark_ray.signals.features import Trades
    from spark_ray.signals.inventory import INVENTORY, signal

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
    print(f"{len(chosen)} signals over {len(trades.time):,} trades of {args.symbol}",
          file=sys.stderr, flush=True)
    return chosen, trades


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import run_folder
    from spark_ray.signals import artifact
    from spark_ray.signals.train import build, fit, report

    every = parse_duration(args.every, "--every")
    for flag, value, low in (("--horizon", args.horizon, 1), ("--folds", args.folds, 2),
                             ("--permutations", args.permutations, 1)):
        if value < low:
            raise UserError(f"{flag}: must be at least {low}")
    if not 0 <= args.embargo < 0.5:
        raise UserError("--embargo: must be in [0, 0.5)")
    chosen, trades = _trades(args, settings)
    ts = build(trades, chosen, every_ms=every, horizon=args.horizon)
    try:
        print(f"{len(ts)} samples; purged {args.folds}-fold CV of gbm, linear and baselines",
              file=sys.stderr, flush=True)
        rep = report(ts, args.folds, args.embargo, args.permutations, args.seed)
        model = fit("gbm", ts.X, ts.y, args.seed)
    except ValueError as exc:
        raise UserError(f"signals train: {exc}") from None
    training = {"symbol": args.symbol, "exchange": args.exchange, "samples": len(ts),
                "trades_sha256": ts.fingerprint, "every_ms": every, "horizon": args.horizon,
                "labels": "triple barrier, pt = sl = 1 x trailing vol x sqrt(horizon)"}
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        artifact.save(model, run.path / "model", ts.features, training, rep,
                      {"seed": args.seed})
        run.artifacts["model/model.txt"] = "the LightGBM model, LightGBM's text format"
        run.artifacts["model/model.json"] = ("features, training-data fingerprint, CV report "
                                             "with baselines, versions, model sha256")
    print(f"{'MODEL':<12} {'ACC':>6} {'BAL.ACC':>8} {'AUC':>6} {'LOGLOSS':>8} {'BRIER':>6} "
          f"{'IC':>7} {'P':>6}")
    for name, m in rep["models"].items():
        print(f"{name:<12} {m['accuracy']:>6.3f} {m['balanced_accuracy']:>8.3f} {m['auc']:>6.3f} "
              f"{m['log_loss']:>8.3f} {m['brier']:>6.3f} {m['ic']:>+7.3f} {m['p_value']:>6.3f}")
    print(rep["verdict"])
    print(f"accuracy {rep['accuracy_claim_85pct']['reached']:.3f}: the 85% target is "
          + ("met" if rep["accuracy_claim_85pct"]["met"] else "not met"))
    print(f"model: {run.path / 'model'}")
    return 0


def _study(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import run_folder
    from spark_ray.signals.study import plot, study

    horizons = parse_horizons(args.horizons)
    chosen, trades = _trades(args, settings)
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
    """Milliseconds in the largest unit that divides them (the inverse of parse_duration)."""
    unit = next(u for u, size in sorted(_UNITS_MS.items(), key=lambda kv: -kv[1])
                if ms % size == 0)
    return f"{ms // _UNITS_MS[unit]}{unit}"


def _ls(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.signals.inventory import INVENTORY, table

    if args.json:
        print(json.dumps([s.row() for s in INVENTORY], indent=2))
    else:
        print(table())
    return 0
