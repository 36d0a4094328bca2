"""`spark-ray venue` flags and process, and the venue demo."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from spark_ray.app.cli.venue import add_parser, config_from_args, run
from spark_ray.app.demo.venue import run_demo
from spark_ray.errors import UserError

from venue_helpers import http

REPO = Path(__file__).resolve().parents[2]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="spark-ray")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["venue", *argv])


def test_add_parser_registers_run_and_defaults() -> None:
    args = _parse()
    assert args.handler is run
    cfg = config_from_args(args)
    assert (cfg.host, cfg.port, cfg.symbols, cfg.speed, cfg.seed) == (
        "127.0.0.1", 8400, ("BTCUSDT", "ETHUSDT"), 1.0, 0)
    cfg = config_from_args(_parse("--symbols", "BTCUSDT", "--seed", "9", "--speed", "60",
                                  "--trades-per-second", "500", "--port", "0"))
    assert (cfg.symbols, cfg.seed, cfg.speed, cfg.trades_per_second, cfg.port) == (
        ("BTCUSDT",), 9, 60.0, 500.0, 0)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--symbols", "btcusdt"], "--symbols"),
        (["--symbols", ","], "--symbols"),
        (["--symbols", "BTCUSDT,BTCUSDT"], "--symbols"),
        (["--port", "70000"], "--port"),
        (["--port", "http"], "--port"),
        (["--speed", "0"], "--speed"),
        (["--speed", "fast"], "--speed"),
        (["--trades-per-second", "-5"], "--trades-per-second"),
        (["--store", "/nonexistent/lake"], "--store"),
        (["--seed", "x"], "--seed"),
        (["--ping-interval", "0"], "--ping-interval"),
        (["--max-lifetime", "-1"], "--max-lifetime"),
        (["--maker-fee", "1"], "--maker-fee"),
        (["--balances", "usdt=1"], "--balances"),
        (["--balances", "USDT"], "--balances"),
    ],
)
def test_bad_flags_are_user_errors_naming_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(UserError, match=f"^{re.escape(flag)}:"):
        config_from_args(_parse(*argv))


def test_bad_api_keys_name_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARK_RAY_VENUE_API_KEYS", "key1")
    with pytest.raises(UserError, match=r"^SPARK_RAY_VENUE_API_KEYS: entry 1 is not key:secret$"):
        config_from_args(_parse())


def test_store_and_seed_are_exclusive() -> None:
    with pytest.raises(SystemExit):
        _parse("--store", "/tmp", "--seed", "1")


def test_venue_command_serves_until_interrupted() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SPARK_RAY_VENUE_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "spark_ray", "venue", "--port", "0", "--symbols", "BTCUSDT",
         "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/api/v3/", first)
        assert match, first
        lines = [proc.stdout.readline() for _ in range(3)]
        assert "ws://127.0.0.1:" in lines[0] and "/btcturk" in lines[1]
        assert "admin: disabled" in lines[2]
        port = int(match.group(1))
        status, _, body = http(f"http://127.0.0.1:{port}/api/v3/exchangeInfo")
        assert status == 200 and [s["symbol"] for s in body["symbols"]] == ["BTCUSDT"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_venue_command_refuses_a_bad_flag_with_exit_2() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "spark_ray", "venue", "--speed", "-1"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=30)
    assert done.returncode == 2 and "--speed" in done.stderr


def test_demo_serves_and_matches_ground_truth(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, seconds=2.0)
    assert summary["ping"] == {} and summary["klines"] == 5
    assert summary["trade_ids_contiguous"] is True and summary["depth_updates_chained"] is True
    matched, total = str(summary["matched_ground_truth"]).split("/")
    assert matched == total and int(total) > 20
    assert {"klines-BTCUSDT-1m.json", "depth-BTCUSDT-10.json"} <= set(os.listdir(tmp_path))
