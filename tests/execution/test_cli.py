"""``spark-ray trade`` as a user runs it: bad arguments exit 2 naming the field, unapproved
parameters exit 1 with the reason, paper and live runs against the venue simulator leave their
orders, fills and positions in a run folder, and the API secret appears in none of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from spark_ray.approval.signing import load_signer, public_line

from helpers import cli_env, run_cli


def _trade(*extra: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return run_cli("trade", *extra, env=env or cli_env(), cwd=cwd, timeout=240)


@pytest.mark.parametrize(("args", "field"), [
    (["--symbols", "BTCUSDT", "--paper", "--duration", "0"], "--duration"),
    (["--symbols", "BTC USDT", "--paper"], "--symbols"),
    (["--symbols", "BTCUSDT", "--paper", "--interval", "7x"], "--interval"),
    (["--symbols", "BTCUSDT", "--paper", "--rest-url", "ftp://x"], "--rest-url"),
    (["--symbols", "BTCUSDT", "--paper", "--port", "70000"], "--port"),
    (["--symbols", "BTCUSDT", "--paper", "--name", "bad name"], "--name"),
    (["--symbols", "BTCUSDT", "--paper", "--cash", "-5"], "--cash"),
    (["--symbols", "BTCUSDT", "--live"], "SPARK_RAY_BINANCE_API_KEY"),
    (["--symbols", "BTCUSDT"], "--paper"),
])
def test_bad_arguments_exit_2_naming_the_field(approved: Any, args: list[str], field: str,
                                               monkeypatch: Any, capsys: Any) -> None:
    """In-process (the same ``main`` a subprocess runs; no Ray is started for bad input)."""
    from spark_ray.app.cli import main

    monkeypatch.delenv("SPARK_RAY_BINANCE_API_KEY", raising=False)
    monkeypatch.delenv("SPARK_RAY_BINANCE_API_SECRET", raising=False)
    try:
        code = main(["trade", "--params", str(approved()), *args])
    except SystemExit as exc:  # argparse's own usage errors
        code = int(exc.code or 0)
    assert code == 2
    assert field in capsys.readouterr().err


def test_unapproved_params_are_refused_with_the_reason(approved: Any, tmp_path: Path) -> None:
    path = approved()
    report = path.parent / "risk-report.json"
    report.write_text(report.read_text().replace('"PASS"', '"PASS" '))
    r = _trade("--params", str(path), "--symbols", "BTCUSDT", "--paper")
    assert r.code == 1
    assert "refusing to trade" in r.err and "risk_report" in r.err and "modified" in r.err
    r = _trade("--params", str(tmp_path / "missing.json"), "--symbols", "BTCUSDT", "--paper")
    assert r.code == 2 and "not found" in r.err
    # Signed by the session's "ci" approver: refused where only bob is trusted.
    report.write_text(report.read_text().replace('"PASS" ', '"PASS"'))
    only_bob = tmp_path / "only-bob"
    only_bob.write_text(public_line("bob", load_signer("bob").public) + "\n")
    r = _trade("--params", str(path), "--symbols", "BTCUSDT", "--paper", "--trusted-keys",
               str(only_bob))
    assert r.code == 1 and "signed by 'ci', which is not in the trusted keys" in r.err, r.err


def test_paper_and_live_runs_leave_evidence_and_no_secret(approved: Any, make_venue: Any,
                                                         venue_keys: Any,
                                                         tmp_path: Path) -> None:
    key, secret = venue_keys
    venue = make_venue()
    params = approved()
    for mode in ("paper", "live"):
        out = tmp_path / mode
        env = cli_env(SPARK_RAY_BREAKER_JOURNAL=str(tmp_path / f"breaker-{mode}.jsonl"),
                      SPARK_RAY_BINANCE_API_KEY=key, SPARK_RAY_BINANCE_API_SECRET=secret,
                      SPARK_RAY_BREAKER__CONSECUTIVE_LOSSES__ENABLED="false",
                      SPARK_RAY_BREAKER__ORDER_RATE__LIMIT="100000")
        journal = tmp_path / f"journal-{mode}.jsonl"
        r = _trade("--params", str(params), "--symbols", "BTCUSDT", f"--{mode}",
                   "--ws-url", venue.ws_url, "--rest-url", venue.rest_url, "--duration", "10",
                   "--port", "0", "--journal", str(journal), "--out", str(out),
                   "--warmup-bars", "20", "--cash", "5000", env=env, cwd=tmp_path)
        assert r.code == 0, r.out + r.err
        assert f"spark-ray trade: {mode} sma_cross" in r.out
        folder = next(p for p in out.iterdir() if p.is_dir())
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["mode"] == mode and summary["bars"] > 20 and summary["orders"] > 0, summary
        orders = json.loads((folder / "orders.json").read_text())
        assert {o["status"] for o in orders} <= {"FILLED", "REJECTED", "CANCELED", "EXPIRED",
                                                 "NEW", "PARTIALLY_FILLED"}
        positions = json.loads((folder / "positions.json").read_text())
        assert positions["BTCUSDT"]["fills"] == len(json.loads((folder / "fills.json")
                                                               .read_text()))
        assert run_cli("evidence", "verify", str(folder)).code == 0
        everything = r.out + r.err + journal.read_text() + "".join(
            p.read_text() for p in folder.rglob("*") if p.is_file() and p.suffix in (
                ".json", ".txt"))
        assert secret not in everything
        if mode == "live":
            assert key not in everything
            venue_cids = [o["clientOrderId"] for o in venue.orders("BTCUSDT", key)]
            assert venue_cids and len(venue_cids) == len(set(venue_cids))
            assert set(venue_cids) <= {o["cid"] for o in orders}
