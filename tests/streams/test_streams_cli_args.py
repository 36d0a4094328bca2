"""``spark-ray streams`` flags mean the same before and after the action (up/status/down)."""

from __future__ import annotations

import pytest

from spark_ray.app.cli import build_parser


@pytest.mark.parametrize("argv", [
    ["streams", "--symbols", "ETHUSDT,SOLUSDT", "--exchange", "btcturk", "up"],
    ["streams", "up", "--symbols", "ETHUSDT,SOLUSDT", "--exchange", "btcturk"],
    ["streams", "--symbols", "ETHUSDT,SOLUSDT", "up", "--exchange", "btcturk"],
])
def test_flags_before_or_after_the_action(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert (args.symbols, args.exchange, args.streams_command) == ("ETHUSDT,SOLUSDT", "btcturk",
                                                                   "up")
    assert args.timeout == 120.0 and args.breaker == "breaker"  # defaults still apply


def test_defaults_without_flags() -> None:
    args = build_parser().parse_args(["streams", "status", "--address", "127.0.0.1:6379"])
    assert (args.symbols, args.exchange, args.address, args.json) == ("BTCUSDT", "binance",
                                                                      "127.0.0.1:6379", False)
