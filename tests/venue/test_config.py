"""VenueConfig checks every setting when built: each bad one is named with the reason."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from spark_ray.venue import RateLimitConfig, VenueConfig
from spark_ray.venue.config import API_KEYS_ENV, field_errors


def _errors(**kw: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        VenueConfig(**kw)
    return field_errors(e.value)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"symbols": ()}, "at least one symbol is required"),
        ({"symbols": ("btcusdt",)}, "'btcusdt' is not an upper-case alphanumeric symbol"),
        ({"symbols": ("BTCUSDT", "BTCUSDT")}, "duplicates"),
        ({"port": 70000}, "less than or equal to 65535"),
        ({"port": -1}, "greater than or equal to 0"),
        ({"speed": 0}, "greater than 0"),
        ({"trades_per_second": -5}, "greater than 0"),
        ({"store": "/nonexistent/lake"}, "/nonexistent/lake is not a directory"),
        ({"history_minutes": -1}, "greater than or equal to 0"),
        ({"first_trade_id": -1}, "greater than or equal to 0"),
        ({"max_trades_per_symbol": -1}, "greater than or equal to 0"),
        ({"tick_s": 0}, "greater than 0"),
        ({"max_batch": 0}, "greater than 0"),
        ({"book_levels": 0}, "greater than 0"),
        ({"ping_interval_s": 0}, "greater than 0"),
        ({"pong_timeout_s": -1}, "greater than 0"),
        ({"max_lifetime_s": 0}, "greater than 0"),
        ({"max_incoming_per_s": 0}, "greater than 0"),
        ({"max_streams": 0}, "greater than 0"),
        ({"kline_push_s": 0}, "greater than 0"),
        ({"btcturk_push_s": 0}, "greater than 0"),
        ({"api_keys": {"bad key": "s"}}, "a key must be 1-128 letters and digits"),
        ({"starting_balances": {"usdt": "1"}}, "'usdt' is not an upper-case asset name"),
        ({"starting_balances": {"USDT": "0.123456789"}}, "at most 8 decimals"),
        ({"maker_commission": 1.0}, "less than 1"),
        ({"taker_commission": -0.001}, "greater than or equal to 0"),
        ({"listen_key_ttl_s": 0}, "greater than 0"),
        ({"sped": 2.0}, "Unexpected keyword argument"),
    ],
)
def test_each_bad_setting_is_named_with_its_reason(kw: dict[str, Any], reason: str) -> None:
    [(name, message)] = _errors(**kw)
    assert name == next(iter(kw)) and reason in message


def test_every_bad_field_is_reported_at_once() -> None:
    assert [name for name, _ in _errors(port=70000, speed=0, symbols=())] == [
        "port", "symbols", "speed"]


def test_defaults_are_valid_and_replace_checks_again(tmp_path: Path) -> None:
    cfg = VenueConfig()
    assert (cfg.port, cfg.symbols, cfg.rate) == (8400, ("BTCUSDT", "ETHUSDT"), 20.0)
    assert cfg.with_(store=tmp_path, seed=3).store == tmp_path
    with pytest.raises(ValidationError, match="port"):
        dataclasses.replace(cfg, port=65536)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.port = 1


def test_inputs_are_taken_as_before() -> None:
    limits = RateLimitConfig(weight_limit=50)
    cfg = VenueConfig(symbols=["BTCUSDT"], store=None, speed=2, rate_limit=limits,
                      starting_balances={"USDT": 1000, "BTC": "0.5"})
    assert cfg.symbols == ("BTCUSDT",) and cfg.speed == 2.0 and cfg.rate_limit is limits
    assert dict(cfg.starting_balances) == {"USDT": 1000, "BTC": "0.5"}


def test_api_keys_from_the_environment_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(API_KEYS_ENV, "key1:secret1,nosecret")
    assert _errors() == [("api_keys", "entry 2 is not key:secret")]
    monkeypatch.setenv(API_KEYS_ENV, "key1:secret1")
    assert VenueConfig().resolved_api_keys() == {"key1": "secret1"}
    assert VenueConfig(api_keys={}).resolved_api_keys() == {}


def test_errors_and_repr_never_show_a_secret() -> None:
    with pytest.raises(ValidationError) as e:
        VenueConfig(api_keys={"bad key": "topsecret"}, admin_token=123)
    assert "topsecret" not in str(e.value) and "123" not in str(e.value)
    assert "topsecret" not in repr(VenueConfig(api_keys={"key": "topsecret"}))
