"""``spark-ray trade --account NAME --strategy NAME``: the breaker scopes of the executor.

The flags feed ``ExecutorConfig.account`` / ``.strategy`` (whose orders, equity and PnL go to the
breaker's ``account:NAME`` and ``strategy:NAME`` scopes); a bad value exits 2 naming the flag,
before any Ray starts; ``--help`` documents both. The scopes' effect on a running breaker is
shown end to end in tests/streams/test_fabric_service.py (a CLI run with ``--account desk
--strategy sma-cli`` next to two more executors on that account).
"""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from spark_ray.app.cli import trade
from spark_ray.config import load_settings


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spark-ray")
    trade.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["trade", *argv])


def test_account_and_strategy_reach_the_executor_config(approved: Any) -> None:
    base = ["--params", str(approved()), "--symbols", "BTCUSDT", "--paper", "--name", "ex-1"]
    spec, _, _ = trade.build_spec(_args(*base, "--account", "desk", "--strategy", "sma-fast"),
                                  load_settings(environ={}))
    assert (spec.config.account, spec.config.strategy_id) == ("desk", "sma-fast")
    spec, _, _ = trade.build_spec(_args(*base), load_settings(environ={}))
    # The defaults: the shared "default" account, a strategy scope named after the executor.
    assert (spec.config.account, spec.config.strategy_id) == ("default", "ex-1")


@pytest.mark.parametrize(("flag", "value"), [
    ("--account", "bad value"), ("--account", ""), ("--account", "x" * 65),
    ("--strategy", "no spaces"), ("--strategy", "y" * 65),
])
def test_a_bad_scope_name_exits_2_naming_the_flag(approved: Any, flag: str, value: str,
                                                   capsys: Any) -> None:
    from spark_ray.app.cli import main

    code = main(["trade", "--params", str(approved()), "--symbols", "BTCUSDT", "--paper",
                 flag, value])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{flag}:" in err and repr(value) in err, err


def test_help_documents_the_scope_flags(capsys: Any) -> None:
    from spark_ray.app.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["trade", "--help"])
    assert exc.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "--account ACCOUNT" in out and "--strategy STRATEGY" in out
    assert "account:NAME" in out and "executors on one account add their equity up" in out
    assert "strategy:NAME" in out and "default: the executor's --name" in out
