"""Strategies by name: built-ins, import paths, and errors that name the flag or parameter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from spark_ray.errors import UserError
from spark_ray.strategy.base import Strategy
from spark_ray.strategy.builtins import BUILTINS, SmaCross
from spark_ray.strategy.loader import load_strategy, make_strategy, parse_param_value


def test_builtins_resolve_by_name() -> None:
    assert set(BUILTINS) == {"sma_cross", "rsi_reversion", "donchian_breakout", "buy_and_hold",
                             "random_entry", "signal_fusion"}
    assert load_strategy("sma_cross") is SmaCross
    assert all(load_strategy(n).name == n for n in BUILTINS)


def test_import_path_and_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mystrat_loader.py").write_text(
        "from spark_ray.strategy.base import Strategy\n"
        "class Mine(Strategy):\n    name = 'mine'\n"
        "class NotOne:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_strategy("mystrat_loader:Mine").name == "mine"
        with pytest.raises(UserError, match="is not a spark_ray Strategy subclass"):
            load_strategy("mystrat_loader:NotOne")
    finally:
        sys.modules.pop("mystrat_loader", None)
    with pytest.raises(UserError, match="--strategy: unknown strategy 'nope'"):
        load_strategy("nope")
    with pytest.raises(UserError, match="--strategy: cannot import 'no_such_module_x'"):
        load_strategy("no_such_module_x:Cls")


def test_make_strategy_names_the_bad_parameter() -> None:
    s = make_strategy(SmaCross, {"fast": 5, "slow": 9})
    assert isinstance(s, Strategy) and (s.p.fast, s.p.slow) == (5, 9)
    with pytest.raises(UserError, match=r"--param fast: .*greater than or equal to 1"):
        make_strategy(SmaCross, {"fast": 0})
    with pytest.raises(UserError, match=r"--param bogus: Extra inputs are not permitted"):
        make_strategy(SmaCross, {"bogus": 1})


def test_param_values_read_as_yaml() -> None:
    assert [parse_param_value(v) for v in ("10", "0.5", "true", "abc")] == [10, 0.5, True, "abc"]
    assert parse_param_value("[unclosed") == "[unclosed"
