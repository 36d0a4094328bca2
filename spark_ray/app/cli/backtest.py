"""``spark-ray backtest``: one strategy on lake data, reports into an evidence bundle.

``spark-ray backtest lookahead ...`` checks the same strategy on the same bars for look-ahead
instead (:mod:`spark_ray.research.lookahead`). The action is an optional positional rather than
a subcommand: ``spark-ray backtest --symbol ...`` keeps working unchanged, the shared flags are
declared once, and they may stand before or after the action.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spark_ray.config import Settings, redacted
from spark_ray.errors import CheckFailed, UserError

if TYPE_CHECKING:
    from spark_ray.fills.costs import CostModel
    from spark_ray.research.lookahead import LookaheadReport
    from spark_ray.research.warmup import WarmupFinding
    from spark_ray.strategy.bars import BarData
    from spark_ray.strategy.base import Strategy

LOOKAHEAD = "lookahead"
# Flags that belong to one action only: (flag, dest, value when not given).
LOOKAHEAD_ONLY = (("--cuts", "cuts", None), ("--seed", "seed", None),
                  ("--no-noise", "no_noise", False))
BACKTEST_ONLY = (("--breaker", "breaker", None), ("--no-png", "no_png", False))


def parse_params(items: list[str]) -> dict[str, Any]:
    from spark_ray.strategy.loader import parse_param_value

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--param: {item!r} is not NAME=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_param_value(v.strip())
    return out


@dataclass
class _Inputs:
    """What both actions run on: the strategy (checked), its parameters, bars and costs."""

    cls: type[Strategy]
    params: dict[str, Any]
    data: BarData
    costs: CostModel
    # ``--signals-model``: {path, model_sha256} of the model whose signals ride beside the bars.
    signals_model: dict[str, str] | None = None


def _inputs(args: argparse.Namespace, settings: Settings) -> _Inputs:
    """The shared flags, checked in order (each UserError names its flag); the lake is read
    last, so bad input fails before any I/O."""
    from datetime import UTC, datetime

    from spark_ray.app.cli.data import check_interval, parse_symbols, parse_time
    from spark_ray.backtest.data import (
        bars_from_store,
        bars_with_signals,
        load_signal_model,
        require_signals_model,
        signals_model_entry,
    )
    from spark_ray.fills.costs import CostModel
    from spark_ray.lake import DataStore
    from spark_ray.strategy.loader import load_strategy, make_strategy

    symbols = parse_symbols(args.symbol)
    interval = check_interval(args.interval)
    start = parse_time("--start", args.start) if args.start else None
    end = parse_time("--end", args.end) if args.end else None
    for flag, value in (("--fee-bps", args.fee_bps), ("--slippage-bps", args.slippage_bps)):
        if not 0 <= value <= 1000:
            raise UserError(f"{flag}: {value} must be between 0 and 1000")
    if args.cash <= 0:
        raise UserError(f"--cash: {args.cash} must be positive")
    cls = load_strategy(args.strategy)
    params = parse_params(args.param)
    make_strategy(cls, params)  # validates the parameters
    require_signals_model(cls, args.signals_model)
    model = load_signal_model(args.signals_model) if args.signals_model else None
    store = DataStore(args.store or settings.store)

    def dt(ms: int | None) -> datetime | None:
        return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)

    costs = CostModel(fee_bps=args.fee_bps, slippage_bps=args.slippage_bps)
    if model is None:
        data = bars_from_store(store, symbols, interval, dt(start), dt(end), args.exchange)
        return _Inputs(cls, params, data, costs)
    data = bars_with_signals(store, symbols, interval, dt(start), dt(end), args.exchange, model)
    return _Inputs(cls, params, data, costs, signals_model_entry(args.signals_model, model))


def _refuse(args: argparse.Namespace, flags: tuple[tuple[str, str, Any], ...],
            where: str) -> None:
    for flag, dest, unset in flags:
        if getattr(args, dest) != unset:
            raise UserError(f"{flag}: only with {where}")


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    """``spark-ray backtest [lookahead] ...``: the action, or a backtest when none is given."""
    if args.action == LOOKAHEAD:
        _refuse(args, BACKTEST_ONLY, "'spark-ray backtest' (not with lookahead)")
        return _lookahead(args, settings)
    _refuse(args, LOOKAHEAD_ONLY, "'spark-ray backtest lookahead'")
    return _run(args, settings)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from spark_ray.backtest import run_bars
    from spark_ray.evidence import run_folder

    inp = _inputs(args, settings)
    guard = None
    if args.breaker:
        from spark_ray.backtest.guard import guard_from_file

        guard = guard_from_file(Path(args.breaker))
    result = run_bars(inp.data, inp.cls, inp.params, cash=args.cash, costs=inp.costs,
                      guard=guard)
    if inp.signals_model is not None:  # report.json names the model the signals came from
        result.config["signals_model"] = inp.signals_model
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        paths = result.save(run.path, png=not args.no_png)
        for name in paths:
            run.artifacts[name] = {
                "report.json": "parameters, metrics, data fingerprint, engine version, "
                               "conventions",
                "trades.csv": "closed trades: entry/exit time and price, qty, fees, PnL, return",
                "equity.csv": "equity, cash and position per bar",
                "report.png": "price with entries/exits, equity vs buy-and-hold, drawdown",
            }[name]
    width = max(len(k) for k, _ in result.summary_rows())
    for k, v in result.summary_rows():
        print(f"{k:<{width}}  {v}")
    if inp.signals_model is not None:
        print(f"signals: {inp.signals_model['path']} "
              f"(model sha256 {inp.signals_model['model_sha256'][:12]}...)")
    print(f"report: {run.path / 'report.json'}")
    if not args.no_png:
        print(f"chart:  {run.path / 'report.png'}")
    return 0


def _lookahead(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 when clean; CheckFailed (exit 1) naming the first differing bar and order."""
    from spark_ray.evidence import run_folder
    from spark_ray.research.lookahead import check_lookahead, iso_time
    from spark_ray.research.warmup import indicator_warmup

    cuts = 40 if args.cuts is None else args.cuts
    if not 1 <= cuts <= 1000:
        raise UserError(f"--cuts: {cuts} must be between 1 and 1000")
    seed = 0 if args.seed is None else args.seed
    if seed < 0:
        raise UserError(f"--seed: {seed} must be 0 or more")
    inp = _inputs(args, settings)
    if len(inp.data) < 3:
        raise UserError(f"--start/--end: {len(inp.data)} bar(s); the check needs at least 3")
    report = check_lookahead(inp.data, inp.cls, inp.params, costs=inp.costs, cuts=cuts,
                             seed=seed, noise=not args.no_noise, cash=args.cash)
    warmup = indicator_warmup(inp.data, inp.cls, inp.params)
    d = inp.data
    data: dict[str, Any] = {"symbols": d.symbols, "interval": d.interval, "exchange": d.exchange,
                            "bars": len(d), "fingerprint": d.fingerprint,
                            "first": iso_time(int(d.time[0])), "last": iso_time(int(d.time[-1]))}
    if inp.signals_model is not None:
        data["signals_model"] = inp.signals_model
    doc = {"verdict": "clean" if report.clean else "look-ahead", "lookahead": report.to_dict(),
           "warmup": [f.to_dict() for f in warmup], "data": data}
    with run_folder(settings.out, command=sys.argv, config=redacted(settings)) as run:
        path = run.write_json("lookahead.json", doc, "look-ahead verdict (first differing bar "
                              "and orders, cuts checked) and indicator warm-up")
        run.exit_code = 0 if report.clean else 1
    _print_lookahead(report, warmup)
    print(f"report: {path}")
    if not report.clean:
        raise CheckFailed(report.summary())
    return 0


def _print_lookahead(report: LookaheadReport, warmup: list[WarmupFinding]) -> None:
    print(f"strategy: {report.strategy} {report.params}")
    print(f"checked:  {report.cuts_checked} cuts, {report.runs} runs over {report.bars} bars "
          f"in {report.seconds:.2f} s")
    print(f"verdict:  {'CLEAN' if report.clean else 'LOOK-AHEAD'}")
    print(report.summary())
    if not warmup:
        print("indicator warm-up: the strategy keeps no per-bar arrays")
        return
    rows = [("indicator", "warm-up bars", "settles", "max diff while warming up")]
    rows += [(f.name, str(f.warmup_bars), "yes" if f.converged else "NO",
              f"{f.max_abs_diff:.3g}") for f in warmup]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print("indicator warm-up (bars of history before values match a longer history):")
    for r in rows:
        print("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "backtest", help="backtest a strategy on lake data (or check it for look-ahead)",
        description="Backtest a strategy on lake data. With the action 'lookahead', check it "
                    "instead: decisions on the full series must equal those on the series cut "
                    "at many bars; exit 0 clean, 1 look-ahead found, 2 bad input.")
    p.add_argument("action", nargs="?", choices=(LOOKAHEAD,), default=None, metavar="ACTION",
                   help="optional: 'lookahead' checks the strategy for look-ahead instead of "
                        "backtesting it")
    p.add_argument("--store", default=None, help="lake root (default: config 'store')")
    p.add_argument("--exchange", default="binance")
    p.add_argument("--symbol", required=True, help="symbol, or several comma-separated (aligned)")
    p.add_argument("--interval", required=True)
    p.add_argument("--strategy", default="sma_cross",
                   help="sma_cross, rsi_reversion, donchian_breakout, buy_and_hold, "
                        "random_entry, or pkg.module:Class")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--fee-bps", type=float, default=10.0)
    p.add_argument("--slippage-bps", type=float, default=0.0)
    p.add_argument("--cash", type=float, default=10_000.0)
    p.add_argument("--start", default=None)
    p.add_argument("--end", default=None)
    p.add_argument("--signals-model", default=None, metavar="DIR",
                   help="a signal model folder (`spark-ray signals train`): bars are built from "
                        "the lake's trades and carry the model's p_up and features at their "
                        "last trade (what signal_fusion trades on)")
    p.add_argument("--breaker", default=None, metavar="YAML",
                   help="circuit-breaker rules to apply in simulation")
    p.add_argument("--no-png", action="store_true", help="skip report.png")
    p.add_argument("--out", type=Path, default=None, help="run folders (default runs/)")
    la = p.add_argument_group("lookahead", "with the action 'lookahead' only")
    la.add_argument("--cuts", type=int, default=None,
                    help="evenly spaced cut points (default 40; as many again go to bars "
                         "where the strategy acts)")
    la.add_argument("--seed", type=int, default=None,
                    help="seed of the cut jitter and the noise (default 0)")
    la.add_argument("--no-noise", action="store_true",
                    help="only truncate at each cut; do not also replace the later bars by noise")
    p.set_defaults(handler=_dispatch)
