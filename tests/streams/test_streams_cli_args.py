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


# --- several exchanges in one command -------------------------------------------------------

def test_several_exchanges_with_prefixed_symbols_or_repeated_flags() -> None:
    from spark_ray.app.cli.exchanges import parse_exchanges, per_exchange

    one = build_parser().parse_args(
        ["streams", "up", "--exchange", "binance,btcturk", "--symbols",
         "binance:BTCUSDT,ETHUSDT;btcturk:BTCTRY,USDTTRY"])
    two = build_parser().parse_args(
        ["streams", "up", "--exchange", "binance", "--exchange", "btcturk",
         "--symbols", "binance:BTCUSDT,ETHUSDT", "--symbols", "btcturk:BTCTRY,USDTTRY"])
    want = {"binance": ["BTCUSDT", "ETHUSDT"], "btcturk": ["BTCTRY", "USDTTRY"]}
    for args in (one, two):
        exchanges = parse_exchanges(args.exchange)
        assert exchanges == ["binance", "btcturk"]
        assert per_exchange("--symbols", args.symbols, exchanges, shared=False) == want
    # a prefix switches the exchange mid-list, too
    assert per_exchange("--symbols", "binance:BTCUSDT,btcturk:BTCTRY,USDTTRY",
                        ["binance", "btcturk"], shared=False) == {
        "binance": ["BTCUSDT"], "btcturk": ["BTCTRY", "USDTTRY"]}
    # one exchange: unchanged (a prefix is allowed, not needed)
    assert per_exchange("--symbols", "BTCUSDT,ETHUSDT", ["binance"], shared=False) == {
        "binance": ["BTCUSDT", "ETHUSDT"]}
    # streams: plain ones for every exchange not named
    assert per_exchange("--streams", "trade;binance:trade,bookTicker", ["binance", "btcturk"],
                        shared=True) == {"binance": ["trade", "bookTicker"],
                                         "btcturk": ["trade"]}


def test_per_exchange_urls() -> None:
    from spark_ray.app.cli.exchanges import per_exchange_url

    ws = ("ws://", "wss://")
    assert per_exchange_url("--ws-url", "ws://h:1", ["binance"], ws) == {"binance": "ws://h:1"}
    assert per_exchange_url("--ws-url", "binance=ws://h:1,btcturk=ws://h:1/btcturk",
                            ["binance", "btcturk"], ws) == {
        "binance": "ws://h:1", "btcturk": "ws://h:1/btcturk"}
    assert per_exchange_url("--ws-url", "btcturk=ws://h:1/btcturk", ["binance", "btcturk"],
                            ws) == {"binance": None, "btcturk": "ws://h:1/btcturk"}


@pytest.mark.parametrize("extra, flag, needle", [
    (["--exchange", "binance,kraken"], "--exchange", "unknown exchange 'kraken'"),
    (["--exchange", "binance,btcturk", "--symbols", "BTCUSDT"], "--symbols",
     "without an exchange"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT"], "--symbols",
     "nothing given for btcturk"),
    (["--exchange", "binance", "--symbols", "btcturk:BTCTRY"], "--symbols",
     "'btcturk' is not one of --exchange binance"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--ws-url", "ws://127.0.0.1:1"], "--ws-url", "names no exchange"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--ws-url", "btcturk=http://127.0.0.1:1"], "--ws-url", "must start with ws://"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--rest-url", "kraken=http://127.0.0.1:1"], "--rest-url", "'kraken' is not one of"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--streams", "bookTicker"], "--streams", "BTCTurk"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--cross-rate", "TRY=btcturk:USDTTRY"], "--cross-rate", "does not carry USDTTRY"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--cross-rate", "TRY=zero"], "--cross-rate", "neither a number"),
    (["--exchange", "binance,btcturk", "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
      "--cross-max-age-s", "0"], "--cross-max-age-s", "must be > 0"),
])
def test_malformed_multi_exchange_flags_exit_2_naming_the_flag(
        extra: list[str], flag: str, needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from spark_ray.app.cli import main

    code = main(["streams", "up", *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"error: {flag}:" in err and needle in err, err


@pytest.mark.parametrize("action", ["status", "down"])
def test_status_and_down_take_several_exchanges(action: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from spark_ray.app.cli import main

    assert main(["streams", action, "--exchange", "binance,nope"]) == 2
    assert "--exchange: unknown exchange 'nope'" in capsys.readouterr().err
    args = build_parser().parse_args(["streams", action, "--exchange", "binance",
                                      "--exchange", "btcturk"])
    assert args.exchange == "binance,btcturk"


def test_status_text_for_several_exchanges_names_the_rate_source() -> None:
    from spark_ray.app.cli.streams_service import format_many
    from spark_ray.streams.crossvenue import Quote, build_view

    view = build_view([Quote("binance", "BTCUSDT", "BTC", "USDT", 59_990, 60_010, "bookTicker",
                             0.3),
                       Quote("btcturk", "BTCTRY", "BTC", "TRY", 2_050_000, 2_052_000,
                             "last_trade", 0.6),
                       Quote("btcturk", "USDTTRY", "USDT", "TRY", 34.2, 34.2, "last_trade",
                             0.6)], ["binance", "btcturk"], "USDT")
    text = format_many({"fabrics": {"binance": {"status": "absent"},
                                    "btcturk": {"status": "absent"}}, "cross_venue": view})
    assert "fabric btcturk: ABSENT" in text
    assert "rates: TRY: 34.2 per USDT from btcturk USDTTRY mid (last_trade)" in text
    assert "btcturk BTCTRY 59941.52/60000.00 (last_trade" in text
    assert "spread 1.67 bps, basis btcturk -4.87 bps vs binance" in text
    broken = format_many({"fabrics": {}, "cross_venue": {"error": "RayActorError"}})
    assert broken == "cross-venue view unreachable: RayActorError"
