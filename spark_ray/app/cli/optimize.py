"""``spark-ray optimize`` and ``spark-ray params review|keygen|approve|check``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from spark_ray.config import Settings, redacted
from spark_ray.errors import CheckFailed, UserError

SUMMARY_KEYS = ("is_sharpe", "oos_sharpe", "is_return", "oos_return", "is_max_drawdown",
                "oos_max_drawdown", "is_trades", "oos_trades")


def _optimize(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.app.session import connect, disconnect
    from spark_ray.backtest.data import load_signal_model, require_signals_model
    from spark_ray.evidence import run_folder
    from spark_ray.lake import DataStore
    from spark_ray.strategy.loader import load_strategy
    from spark_ray.tune.api import optimize
    from spark_ray.tune.cv import CVScheme
    from spark_ray.tune.scenarios import load_scenarios
    from spark_ray.tune.spaces import builtin_space, load_space

    CVScheme(args.cv, args.folds, args.test_groups, args.purge, args.embargo)  # flags, early
    if args.pbo_splits < 2 or args.pbo_splits % 2:
        raise UserError(f"--pbo-splits: {args.pbo_splits} must be an even number >= 2")
    scenarios = load_scenarios(Path(args.scenarios))
    space = load_space(Path(args.space) if args.space else builtin_space(args.strategy))
    names = [s.name for s in scenarios]
    allowed = {"objective"} | {f"scenarios/{n}/{k}" for n in names for k in SUMMARY_KEYS}
    if args.metric not in allowed:
        raise UserError(f"--metric: {args.metric!r}; use 'objective' or "
                        f"scenarios/<name>/<{'|'.join(SUMMARY_KEYS)}>")
    # A missing or broken --signals-model fails here, before Ray starts.
    require_signals_model(load_strategy(args.strategy), args.signals_model)
    signals_model = str(Path(args.signals_model).resolve()) if args.signals_model else None
    if signals_model is not None:
        load_signal_model(signals_model)
    store = DataStore(args.store or settings.store)
    session = connect(config=settings.ray)
    try:
        with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
            board = optimize(
                store, args.strategy, space, scenarios, trials=args.trials, search=args.search,
                scheduler=args.scheduler, metric=args.metric, folds=args.folds,
                holdout=args.holdout, drawdown_penalty=args.dd_penalty, seed=args.seed,
                storage=run.path / "tune", name="optimize",
                resume=Path(args.resume).resolve() if args.resume else None,
                verbose=0 if args.quiet else 1, cv=args.cv, test_groups=args.test_groups,
                purge=args.purge, embargo=args.embargo, pbo_splits=args.pbo_splits,
                say=lambda m: print(f"spark-ray: warning: {m}", file=sys.stderr, flush=True),
                signals_model=signals_model)
            paths = board.save(run.path)
            for name in paths:
                run.artifacts[name] = {
                    "leaderboard.csv": "every trial ranked: parameters, per-scenario IS/OOS "
                                       "metrics, objective",
                    "leaderboard.json": "the same, as JSON",
                    "leaderboard.png": "objective over the parameter space; top trials per "
                                       "scenario",
                    "best.json": "overall and per-scenario winners: parameters, metrics, data "
                                 "fingerprints, code version, reproducing commands, PBO and "
                                 "the winner's deflated Sharpe ratio",
                    "oos-returns.npz": "out-of-sample returns per period x trial: what PBO "
                                       "and DSR are computed from",
                }[name]
    finally:
        if session.started_local:
            disconnect()
    print(board.table(10))
    best = board.best["overall"]
    print(f"\nbest: {best['params']} objective {best['objective']:.4f} "
          f"(rank {best['rank']} of {len(board.rows)})")
    for line in overfitting_lines(board.best.get("overfitting") or {}):
        print(line)
    print(f"tune experiment: {board.experiment_path} (resume with --resume)")
    if "signals_model" in board.best:
        print(f"signals model: {board.best['signals_model']['path']} (sha256 "
              f"{board.best['signals_model']['model_sha256'][:12]}...)")
    print(f"best.json: {run.path / 'best.json'}")
    return 0


def overfitting_lines(o: dict[str, Any]) -> list[str]:
    """The selection-effect summary a sweep prints under its leaderboard."""
    lines = []
    cand = o.get("candidate")
    if cand and cand.get("dsr") is not None:
        lines.append(f"deflated Sharpe of the winner: {cand['dsr']:.3f} (OOS Sharpe "
                     f"{cand['sharpe_annualized']:.2f} annualized; N={cand['n_trials']} trials, "
                     f"Var[SR]={cand['sr_variance']:.3g}, T={cand['T']} {cand['period']} "
                     f"periods, skew {cand['skew']:.2f}, kurtosis {cand['kurtosis']:.2f})")
    pbo = o.get("pbo")
    if pbo:
        lines.append(f"probability of backtest overfitting: {pbo['pbo']:.2f} (CSCV, "
                     f"{pbo['splits']} blocks, {pbo['n_combinations']} combinations)")
    elif o.get("reason"):
        lines.append(f"overfitting statistics not computed: {o['reason']}")
    return lines


def _rules(path: str | None) -> Any:
    from spark_ray.approval.rules import RiskRules
    from spark_ray.yamlmodels import load_yaml_model

    return load_yaml_model(Path(path), RiskRules) if path else RiskRules()


def _review(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.evidence import run_folder
    from spark_ray.lake import DataStore
    from spark_ray.tune.review import review

    best = Path(args.best)
    report = review(best, DataStore(args.store or settings.store), _rules(args.rules),
                    Path(args.space) if args.space else None,
                    signals_model=Path(args.signals_model) if args.signals_model else None)
    target = best.with_name("risk-report.json")
    text = json.dumps(report, indent=2, sort_keys=True) + "\n"
    target.write_text(text)
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        run.write_json("risk-report.json", report, "review of the candidate: PASS/FAIL per rule")
        run.exit_code = 0 if report["verdict"] == "PASS" else 1
    show_review(report, target, run.path, "candidate")
    return 0


def show_review(report: dict[str, Any], target: Path, evidence: Path, what: str) -> None:
    """A review (of parameters or of a model) rule by rule; CheckFailed when it FAILed."""
    for name, c in report["checks"].items():
        print(f"  {c['status']}  {name:<24} value {_fmt(c['value'])}  limit {c['limit']}")
        if isinstance(c.get("inputs"), dict):
            print(f"        {_inputs(c['inputs'])}")
    print(f"review {report['verdict']}: {target} (evidence: {evidence})")
    if report["verdict"] != "PASS":
        raise CheckFailed(f"review FAILED; the {what} cannot be approved")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _inputs(inputs: dict[str, Any]) -> str:
    """One line of a rule's inputs (nested per-scenario values shortened)."""
    parts = []
    for k, v in inputs.items():
        if isinstance(v, dict):
            v = "{" + ", ".join(f"{a}: {_fmt(b)}" for a, b in v.items()
                                if not isinstance(b, dict | list)) + "}"
        parts.append(f"{k}={_fmt(v)}")
    return ", ".join(parts)


def _keygen(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.approval.signing import keygen, keys_dir, trusted_keys_path

    key_path, pub_path, line = keygen(args.name, keys_dir(args.keys_dir))
    print(f"private key: {key_path} (mode 600; it never leaves this machine)")
    print(f"public key:  {pub_path}")
    if args.trust:
        trusted = trusted_keys_path(args.trusted_keys)
        trusted.parent.mkdir(parents=True, exist_ok=True)
        with trusted.open("a") as f:
            f.write(line + "\n")
        print(f"trusted: added {args.name} to {trusted}")
    else:
        print("to let executors accept this approver's approvals, add this line to their "
              f"trusted-keys file ({trusted_keys_path(args.trusted_keys)}):\n{line}")
    return 0


def signer_of(args: argparse.Namespace) -> Any:
    """The approver's key named by --by (and --key / --keys-dir)."""
    from spark_ray.approval.signing import load_signer

    return load_signer(args.by, Path(args.keys_dir) if args.keys_dir else None,
                       Path(args.key) if args.key else None)


def _approve(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.approval.approved import approve
    from spark_ray.audit import AuditLog, audited, cli_user

    best = Path(args.best)
    report = Path(args.report) if args.report else best.with_name("risk-report.json")
    target = best.with_name("approved.json")
    with audited(AuditLog(), args.by or cli_user(), "params-approve",
                 {"candidate": str(best.resolve()), "approved": str(target.resolve()),
                  "user": cli_user()}, reason=args.note or ""):
        approved = approve(best, report, signer_of(args), args.note or "")
        target.write_text(json.dumps(approved, indent=2, sort_keys=True) + "\n")
    print(f"approved and signed by {approved['approved_by']} "
          f"({approved['signature']['fingerprint']}): {target}")
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.approval.approved import check, review_problems
    from spark_ray.approval.signing import TrustedKeys

    path = Path(args.approved)
    approved = check(path, TrustedKeys.load(args.trusted_keys))
    print(f"{path}: signature OK ({approved['approved_by']}, "
          f"{approved['signature']['fingerprint']}); files unchanged since approval")
    if not args.no_review:
        from spark_ray.lake import DataStore
        from spark_ray.tune.review import review

        best = path.parent / approved["candidate"]
        stored = json.loads((path.parent / approved["risk_report"]).read_text())
        model = (approved.get("signals_model") or {}).get("path")
        print("re-running the review to compare with the stored risk report ...", flush=True)
        fresh = review(best, DataStore(args.store or settings.store), _rules(args.rules),
                       Path(args.space) if args.space else None,
                       signals_model=Path(model) if model else None)
        problems = review_problems(stored, fresh)
        if problems:
            raise CheckFailed(f"{path}: NOT approved for trading\n  " + "\n  ".join(problems))
        print("review: a fresh review agrees with the stored risk report, check by check")
    print(f"{path}: OK: {approved['strategy']} {approved['params']} approved by "
          f"{approved['approved_by']} at {approved['approved_at']}")
    return 0


def add_key_args(p: argparse.ArgumentParser) -> None:
    """The approver's key: --by NAME (required), where to find it."""
    p.add_argument("--by", required=True,
                   help="approver's name: signs with that approver's key (params keygen)")
    p.add_argument("--keys-dir", default=None,
                   help="approvers' private keys (default: $SPARK_RAY_KEYS_DIR or "
                        "~/.config/spark-ray/keys)")
    p.add_argument("--key", default=None, help="the private key file (default: KEYS_DIR/BY.key)")


TRUSTED_HELP = ("trusted-keys file: approvers whose signatures are accepted (default: "
                "$SPARK_RAY_TRUSTED_KEYS or ~/.config/spark-ray/trusted_keys)")


def add_parser(sub: argparse._SubParsersAction) -> None:
    o = sub.add_parser("optimize", help="Ray Tune sweep over scenarios -> leaderboard, best.json")
    o.add_argument("--store", default=None, help="lake root (default: config 'store')")
    o.add_argument("--strategy", required=True)
    o.add_argument("--space", default=None, help="search space YAML (default: tune/spaces/)")
    o.add_argument("--scenarios", required=True, help="scenarios YAML")
    o.add_argument("--trials", type=int, default=20)
    o.add_argument("--search", choices=["random", "grid", "optuna"], default="random")
    o.add_argument("--scheduler", choices=["fifo", "asha"], default="fifo")
    o.add_argument("--metric", default="objective")
    o.add_argument("--cv", choices=["walkforward", "purged", "cpcv"], default="walkforward",
                   help="cross-validation: rolling walk-forward, purged k-fold with embargo, "
                        "or combinatorial purged CV")
    o.add_argument("--folds", type=int, default=4,
                   help="walk-forward folds; purged k-fold's k; CPCV's number of groups")
    o.add_argument("--test-groups", type=int, default=2,
                   help="CPCV: groups in each split's test set")
    o.add_argument("--purge", type=float, default=0.01,
                   help="purged/CPCV: share of bars dropped before each test block")
    o.add_argument("--embargo", type=float, default=0.01,
                   help="purged/CPCV: share of bars dropped after each test block")
    o.add_argument("--pbo-splits", type=int, default=16,
                   help="blocks of the CSCV that estimates the probability of overfitting")
    o.add_argument("--holdout", type=float, default=0.2,
                   help="share of each scenario kept back for the review")
    o.add_argument("--dd-penalty", type=float, default=2.0,
                   help="objective = median OOS Sharpe - penalty x median |OOS max drawdown|")
    o.add_argument("--seed", type=int, default=0)
    o.add_argument("--signals-model", default=None, metavar="DIR",
                   help="a signal model folder (`spark-ray signals train`): every scenario's "
                        "bars are built from the lake's trades with the model's signals beside "
                        "them (what signal_fusion trades on); best.json names the model")
    o.add_argument("--resume", default=None, metavar="EXPERIMENT",
                   help="continue an interrupted sweep (its tune/optimize folder)")
    o.add_argument("--address", default=None, help="Ray cluster to run on")
    o.add_argument("--quiet", action="store_true", help="no Tune progress tables")
    o.add_argument("--out", type=Path, default=None)
    o.set_defaults(handler=_optimize)

    p = sub.add_parser("params", help="approval gate: review, approve, check parameters")
    acts = p.add_subparsers(dest="params_command", metavar="ACTION")
    acts.required = True
    r = acts.add_parser("review", help="re-run the candidate on held-out data; risk rules")
    r.add_argument("best", metavar="BEST_JSON")
    r.add_argument("--store", default=None)
    r.add_argument("--rules", default=None, help="risk rules YAML (thresholds)")
    r.add_argument("--space", default=None, help="search space for the neighbourhood rule")
    r.add_argument("--signals-model", default=None, metavar="DIR",
                   help="the signal model the candidate was optimized with (best.json's "
                        "signals_model; refused when its sha256 differs)")
    r.add_argument("--out", type=Path, default=None)
    r.set_defaults(handler=_review)
    k = acts.add_parser("keygen", help="a new approver key pair (Ed25519) to sign approvals")
    k.add_argument("--name", required=True, help="the approver's name")
    k.add_argument("--keys-dir", default=None,
                   help="where the private key goes (default: $SPARK_RAY_KEYS_DIR or "
                        "~/.config/spark-ray/keys)")
    k.add_argument("--trust", action="store_true",
                   help="also add the public key to this machine's trusted-keys file")
    k.add_argument("--trusted-keys", default=None, help=TRUSTED_HELP)
    k.set_defaults(handler=_keygen)
    a = acts.add_parser("approve", help="sign a passed review as an approver (approved.json)")
    a.add_argument("best", metavar="BEST_JSON")
    add_key_args(a)
    a.add_argument("--note", default="")
    a.add_argument("--report", default=None, help="risk report (default: beside best.json)")
    a.set_defaults(handler=_approve)
    c = acts.add_parser("check", help="exit 0 only if the approval is signed by a trusted key, "
                                      "its files are intact and a fresh review agrees")
    c.add_argument("approved", metavar="APPROVED_JSON")
    c.add_argument("--trusted-keys", default=None, help=TRUSTED_HELP)
    c.add_argument("--store", default=None, help="lake root for the fresh review "
                                                 "(default: config 'store')")
    c.add_argument("--rules", default=None,
                   help="risk rules YAML the candidate was approved under (default rules)")
    c.add_argument("--space", default=None, help="search space for the neighbourhood rule")
    c.add_argument("--no-review", action="store_true",
                   help="skip the fresh review (signature and files only: what the executor "
                        "checks at every start)")
    c.set_defaults(handler=_check)
