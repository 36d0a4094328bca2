"""``spark-ray signals ls|study|train|review|approve|check``: the signal inventory, its study,
model training, and the model's approval gate."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from spark_ray.config import Settings, redacted
from spark_ray.errors import CheckFailed, UserError

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
    tr.add_argument("--tune", type=int, default=0, metavar="N",
                    help="first a Ray Tune sweep of N configurations per model (gbm, linear) "
                         "by out-of-fold AUC; report and model use the best (default 0: none)")
    tr.add_argument("--address", default=None,
                    help="Ray cluster for --tune (default: RAY_ADDRESS, else a local Ray)")
    tr.add_argument("--out", default=None, help="parent folder of the run folder (default runs)")
    tr.set_defaults(handler=_train)
    _add_gate(sub)
    _add_features(sub)


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
    from spark_ray.signals.inventory import INVENTORY, signal
    from spark_ray.signals.source import NoBook, load_trades, usable

    try:
        chosen = ([signal(n.strip()) for n in args.signals.split(",")] if args.signals
                  else list(INVENTORY))
    except KeyError as exc:
        raise UserError(f"--signals: {exc.args[0]}") from None
    store = DataStore(args.store or settings.store)
    if args.symbol not in store.symbols("trades", args.exchange):
        raise UserError(f"--symbol: no trades of {args.symbol!r} in {store.uri} "
                        f"(exchange={args.exchange})")
    if not args.signals:  # the whole inventory: what this symbol's data can give
        chosen, left = usable(store, args.symbol, args.exchange, chosen)
        if left:
            print(f"left out {len(left)} order-book signals ({', '.join(s.name for s in left)})"
                  f": no book of {args.symbol} in the lake", file=sys.stderr, flush=True)
    try:
        trades = load_trades(store, args.symbol, args.exchange, [s.name for s in chosen])
    except NoBook as exc:
        raise UserError(f"--signals: {exc}") from None
    print(f"{len(chosen)} signals over {len(trades.time):,} trades of {args.symbol}",
          file=sys.stderr, flush=True)
    return chosen, trades


def _train(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import run_folder
    from spark_ray.signals import artifact
    from spark_ray.signals.train import build, fit, report

    every = parse_duration(args.every, "--every")
    for flag, value, low in (("--horizon", args.horizon, 1), ("--folds", args.folds, 2),
                             ("--permutations", args.permutations, 1), ("--tune", args.tune, 0)):
        if value < low:
            raise UserError(f"{flag}: must be at least {low}")
    if not 0 <= args.embargo < 0.5:
        raise UserError("--embargo: must be in [0, 0.5)")
    chosen, trades = _trades(args, settings)
    ts = build(trades, chosen, every_ms=every, horizon=args.horizon)
    tuned = None
    try:
        if args.tune:
            # Tune's experiment folder is scratch: tune-trials.json keeps every trial. Ray is
            # started (or joined) only for the sweep; the report below runs without it.
            import tempfile
            from pathlib import Path

            from spark_ray.app.session import connect, disconnect
            from spark_ray.tune.signals import tune_models

            session = connect(config=settings.ray)
            try:
                with tempfile.TemporaryDirectory(prefix="spark-ray-tune-") as scratch:
                    tuned = tune_models(ts, args.tune, args.folds, args.embargo, args.seed,
                                        Path(scratch), lambda m: print(m, file=sys.stderr,
                                                                       flush=True))
            finally:
                if session.started_local:
                    disconnect()
        print(f"{len(ts)} samples; purged {args.folds}-fold CV of gbm, linear and baselines",
              file=sys.stderr, flush=True)
        best = tuned["best"] if tuned else None
        rep = report(ts, args.folds, args.embargo, args.permutations, args.seed, params=best,
                     trials=tuned["trials"] if tuned else None)
        model = fit("gbm", ts.X, ts.y, args.seed, best["gbm"] if best else None)
    except ValueError as exc:
        raise UserError(f"signals train: {exc}") from None
    training = {"symbol": args.symbol, "exchange": args.exchange, "samples": len(ts),
                "trades_sha256": ts.fingerprint, "every_ms": every, "horizon": args.horizon,
                "labels": "triple barrier, pt = sl = 1 x trailing vol x sqrt(horizon)"}
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        artifact.save(model, run.path / "model", ts.features, training, rep,
                      {"seed": args.seed, **(best["gbm"] if best else {})})
        run.artifacts["model/model.txt"] = "the LightGBM model, LightGBM's text format"
        run.artifacts["model/model.json"] = ("features, training-data fingerprint, CV report "
                                             "with baselines, versions, model sha256")
        if tuned:
            run.write_json("tune-trials.json", tuned, "the --tune sweep: every trial's model "
                           "kind, hyperparameters, out-of-fold AUC and log loss; the best "
                           "per kind, which the report and the model use")
    print(f"{'MODEL':<12} {'ACC':>6} {'BAL.ACC':>8} {'AUC':>6} {'LOGLOSS':>8} {'BRIER':>6} "
          f"{'IC':>7} {'P':>6}")
    for name, m in rep["models"].items():
        print(f"{name:<12} {m['accuracy']:>6.3f} {m['balanced_accuracy']:>8.3f} {m['auc']:>6.3f} "
              f"{m['log_loss']:>8.3f} {m['brier']:>6.3f} {m['ic']:>+7.3f} {m['p_value']:>6.3f}")
    print(rep["verdict"])
    print(f"accuracy {rep['accuracy_claim_85pct']['reached']:.3f}: the 85% target is "
          + ("met" if rep["accuracy_claim_85pct"]["met"] else "not met"))
    if tuned:
        print(f"tuned: {rep['selection']}")
        for name, params in tuned["best"].items():
            print(f"  {name}: " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else
                                              f"{k}={v}" for k, v in params.items()))
        print(f"trials: {run.path / 'tune-trials.json'}")
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
    from spark_ray.signals.inventory import rows, table

    if args.json:
        print(json.dumps(rows(), indent=2))
    else:
        print(table())
    return 0


def _add_gate(sub: argparse._SubParsersAction) -> None:
    """review -> approve -> check of a model folder: the params gate's steps, for a model."""
    rv = sub.add_parser("review", help="judge a trained model against risk rules -> "
                        "risk-report.json in the model folder; exit 1 on FAIL")
    _model_flag(rv)
    rv.add_argument("--rules", default=None,
                    help="model rules YAML (require_beats_baselines, max_p_value, min_auc, "
                         "min_samples)")
    rv.add_argument("--out", type=Path, default=None,
                    help="parent folder of the evidence run folder (default runs)")
    rv.set_defaults(handler=_review)
    from spark_ray.app.cli.optimize import TRUSTED_HELP, add_key_args

    ap = sub.add_parser("approve", help="sign a passed review of the model as an approver "
                        "(approved.json in the model folder)")
    _model_flag(ap)
    add_key_args(ap)
    ap.add_argument("--note", default="", help="why it is approved, e.g. a ticket")
    ap.set_defaults(handler=_approve)
    ck = sub.add_parser("check", help="exit 0 only if the approval is signed by a trusted key, "
                        "the model's files are intact and a fresh review agrees")
    _model_flag(ck)
    ck.add_argument("--trusted-keys", default=None, help=TRUSTED_HELP)
    ck.add_argument("--rules", default=None,
                    help="model rules YAML it was approved under (default: the default rules)")
    ck.set_defaults(handler=_check)


def _model_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR",
                   help="model folder written by `signals train` (<run>/model)")


def _model_dir(args: argparse.Namespace, card: bool = True) -> Path:
    """--model as a folder (holding a model card unless ``card`` is False: check reports a
    deleted card as a failed check, exit 1); anything else exits 2 naming the flag."""
    folder = Path(args.model)
    if not folder.is_dir():
        raise UserError(f"--model: {folder} is not a folder")
    if card and not (folder / "model.json").is_file():
        raise UserError(f"--model: {folder} has no model.json (give the model folder "
                        "`signals train` wrote, <run>/model)")
    return folder


def _review(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.cli.optimize import show_review
    from spark_ray.approval.model import REPORT_FILE, ModelRules, review_model
    from spark_ray.evidence import run_folder
    from spark_ray.yamlmodels import load_yaml_model

    folder = _model_dir(args)
    rules = load_yaml_model(Path(args.rules), ModelRules) if args.rules else ModelRules()
    report = review_model(folder, rules)
    target = folder / REPORT_FILE
    target.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        run.write_json(REPORT_FILE, report, "review of the model: PASS/FAIL per rule")
        run.exit_code = 0 if report["verdict"] == "PASS" else 1
    show_review(report, target, run.path, "model")
    return 0


def _approve(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.cli.optimize import signer_of
    from spark_ray.approval.model import APPROVED_FILE, approve_model
    from spark_ray.audit import AuditLog, audited, cli_user

    folder = _model_dir(args)
    target = folder / APPROVED_FILE
    with audited(AuditLog(), args.by or cli_user(), "signals-approve",
                 {"model": str(folder.resolve()), "user": cli_user()}, reason=args.note or ""):
        approved = approve_model(folder, signer_of(args), args.note)
        target.write_text(json.dumps(approved, indent=2, sort_keys=True) + "\n")
    print(f"approved and signed by {approved['approved_by']} "
          f"({approved['signature']['fingerprint']}): {target}")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.approval.model import ModelRules, check_model
    from spark_ray.approval.signing import TrustedKeys
    from spark_ray.yamlmodels import load_yaml_model

    rules = load_yaml_model(Path(args.rules), ModelRules) if args.rules else ModelRules()
    approved = check_model(_model_dir(args, card=False), TrustedKeys.load(args.trusted_keys),
                           rules)
    print(f"{args.model}: OK: approved for trading by {approved['approved_by']} at "
          f"{approved['approved_at']} (model.txt sha256 {approved['model_sha256'][:12]}...)")
    return 0


def _add_features(sub: argparse._SubParsersAction) -> None:
    """``signals features``: every signal's batch values over the lake, one Ray task per
    (symbol, month), as Parquet per partition."""
    fe = sub.add_parser("features", help="compute signals over the lake's trades in batch, one "
                        "Ray task per (symbol, month); Parquet per partition under --out")
    fe.add_argument("--store", "--lake", dest="store", default=None, help="the Parquet lake")
    fe.add_argument("--symbols", required=True,
                    help="comma-separated symbols in the lake, e.g. XRPETH,BTCUSDT")
    fe.add_argument("--exchange", default="binance", help="the lake's exchange= (default binance)")
    fe.add_argument("--signals", default=None,
                    help="comma-separated signal names (default: the whole inventory)")
    fe.add_argument("--out", required=True, metavar="DIR",
                    help="output folder: DIR/exchange=E/symbol=S/month=M/data.parquet, "
                         "and DIR/_summary.json")
    fe.set_defaults(handler=_features)


def _features(args: argparse.Namespace, settings: Settings) -> int:
    """Flags are checked before Ray starts (a typo costs no cluster start): an unknown signal
    or a symbol the lake lacks exits 2 naming the flag."""
    from spark_ray.app.session import connect, disconnect
    from spark_ray.app.signals_batch import BatchError, batch_features
    from spark_ray.lake import DataStore
    from spark_ray.signals.inventory import INVENTORY, signal

    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not symbols:
        raise UserError("--symbols: give at least one symbol, e.g. XRPETH,BTCUSDT")
    try:
        names = ([signal(n.strip()).name for n in args.signals.split(",")] if args.signals
                 else [s.name for s in INVENTORY])
    except KeyError as exc:
        raise UserError(f"--signals: {exc.args[0]}") from None
    store = DataStore(args.store or settings.store)
    have = set(store.symbols("trades", args.exchange))
    missing = [s for s in symbols if s not in have]
    if missing:
        raise UserError(f"--symbols: no trades of {', '.join(map(repr, missing))} in "
                        f"{store.uri} (exchange={args.exchange}); it has: "
                        f"{', '.join(sorted(have)) or 'none'}")
    from spark_ray.signals.source import NoBook, check_books, usable

    asked = [signal(n) for n in names] if args.signals else list(INVENTORY)
    per_symbol = {sym: usable(store, sym, args.exchange, asked) for sym in symbols}
    if args.signals:
        for sym, (_, left) in per_symbol.items():
            if left:
                try:  # the reason, naming each signal and what the lake lacks
                    check_books(store, sym, args.exchange, [s.name for s in left])
                except NoBook as exc:
                    raise UserError(f"--signals: {exc}") from None
    # Only what every symbol can give: one set of columns for the whole output.
    names = [s.name for s in per_symbol[symbols[0]][0]
             if all(s.name in {k.name for k in kept} for kept, _ in per_symbol.values())]
    dropped = sorted({s.name for kept, left in per_symbol.values() for s in [*kept, *left]}
                     - set(names))
    if dropped:
        print(f"left out {', '.join(dropped)}: not every symbol has the book it reads",
              file=sys.stderr, flush=True)
    out = Path(args.out)
    session = connect(config=settings.ray)
    try:
        summary = batch_features(store.uri, symbols, args.exchange, names, out,
                                 lambda m: print(m, file=sys.stderr, flush=True))
    except BatchError as exc:
        raise CheckFailed(f"signals features: {exc}") from None
    finally:
        if session.started_local:
            disconnect()
    summary.pop("tables", None)
    out.mkdir(parents=True, exist_ok=True)
    (out / "_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(names)} signals over {summary['rows']:,} trades in "
          f"{len(summary['partitions'])} partitions: {summary['seconds']:.1f} s on "
          f"{summary['cpus']} CPUs ({summary['rows_per_s'] or 0:,} trades/s)")
    for sym in symbols:
        parts = [p for p in summary["partitions"] if p["symbol"] == sym]
        print(f"  {sym:<12} {len(parts):>3} months {sum(p['rows'] for p in parts):>12,} trades")
    print(f"features: {out}")
    return 0
