"""Binance and BTCTurk side by side in one ``spark-ray streams up``, end to end: a real venue
simulator on 127.0.0.1 speaks both protocols, the CLI (a real subprocess) starts one fabric per
exchange on a real Ray plus the ``crossvenue`` actor; ``streams status --json`` shows both
fabrics healthy and BTC quoted by both venues in USDT (Binance's bookTicker; BTCTurk's ticker
channel, converted by BTCTurk's own USDTTRY, named as the rate source); the gauges
appear on Ray's metrics export; one ``streams down`` stops both fabrics and the view.
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

from helpers import cli_env, run_cli

SYMBOLS = ("BTCUSDT", "BTCTRY", "USDTTRY")


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        return str(r.read().decode())


def _gauge(text: str, name: str, **labels: str) -> float | None:
    """The value of ``name`` whose labels include ``labels`` (None: no such series)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line[line.index("{"):line.index("}")]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_one_streams_up_with_binance_and_btcturk_and_the_cross_venue_view(
        ray_session: Any, make_venue: Any, tmp_path: Path) -> None:
    from spark_ray.actors.naming import NAMESPACE, lookup
    from spark_ray.app import fabric_service

    venue = make_venue(symbols=SYMBOLS, trades_per_second=20)
    venue.resume()
    addr, env = ray_session.address, cli_env()

    def cli(*args: str, timeout: float = 180) -> Any:
        return run_cli("streams", *args, "--address", addr, env=env, timeout=timeout)

    both = ("--exchange", "binance,btcturk")
    t0 = time.monotonic()
    try:
        up = cli("up", *both, "--symbols", "binance:BTCUSDT;btcturk:BTCTRY,USDTTRY",
                 "--streams", "trade;binance:trade,bookTicker;btcturk:trade,ticker",
                 "--ws-url", f"binance={venue.ws_url},btcturk={venue.btcturk_ws_url}",
                 "--rest-url", f"binance={venue.rest_url},btcturk={venue.btcturk_rest_url}",
                 "--store", str(tmp_path / "lake"),
                 "--breaker", "none", "--timeout", "90")
        assert up.code == 0, up.err
        assert "up: fabric:binance" in up.out and "up: fabric:btcturk" in up.out, up.out
        assert "cross-venue view crossvenue over binance,btcturk in USDT" in up.out

        doc: dict[str, Any] = {}
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            st = cli("status", *both, "--json", "--max-age-s", "20")
            doc = json.loads(st.out)
            btc = (doc.get("cross_venue") or {}).get("assets", {}).get("BTC", {})
            if st.code == 0 and set(btc.get("venues", {})) == {"binance", "btcturk"}:
                break
            time.sleep(1.0)
        assert doc["status"] == "ok", json.dumps(doc, indent=1)[-3000:]
        assert set(doc["fabrics"]) == {"binance", "btcturk"}
        assert all(f["status"] == "ok" for f in doc["fabrics"].values())
        assert set(doc["fabrics"]["btcturk"]["symbols"]) == {"BTCTRY", "USDTTRY"}
        view = doc["cross_venue"]
        btc = view["assets"]["BTC"]
        assert set(btc["venues"]) == {"binance", "btcturk"}, btc
        bn, bt = btc["venues"]["binance"], btc["venues"]["btcturk"]
        assert (bn["pair"], bn["source"], bn["rate_source"]) == \
            ("BTC/USDT", "bookTicker", "native USDT")
        assert bn["bid"] <= bn["ask"]
        # BTCTurk's best bid/offer comes from its ticker channel (402), parsed as a book ticker
        assert (bt["pair"], bt["source"]) == ("BTC/TRY", "bookTicker")
        assert bt["bid"] <= bt["ask"]
        rate = view["rates"]["TRY"]
        assert rate["source"] == "btcturk USDTTRY mid (bookTicker)", rate
        assert bt["rate"] == rate["value"] and "btcturk USDTTRY mid" in bt["rate_source"]
        assert bt["bid"] == bt["native_bid"] / rate["value"]
        # the simulator starts BTCTRY at 2,000,000 and USDTTRY at 33.33: ~60,000 USDT a BTC
        assert 40_000 < bt["mid"] < 90_000 and 40_000 < bn["mid"] < 90_000
        assert math.isfinite(btc["spread_bps"]) and btc["reference_venue"] == "binance"
        assert set(btc["basis_bps"]) == {"btcturk"}
        assert "USDT" not in view["assets"]  # USDT/TRY is the rate, not an asset

        port = ray_session.metrics_export_port
        text, spread = "", None
        deadline = time.monotonic() + 45  # Ray reports metrics every 10 s by default
        while time.monotonic() < deadline:
            text = _metrics(port)
            spread = _gauge(text, "ray_crossvenue_spread_bps", asset="BTC", quote="USDT")
            if spread is not None and _gauge(text, "ray_crossvenue_bid", asset="BTC",
                                             venue="btcturk") is not None:
                break
            time.sleep(2.0)
        assert spread is not None and math.isfinite(spread), "no spread gauge on Ray's export"
        for venue_name in ("binance", "btcturk"):
            for g in ("ray_crossvenue_bid", "ray_crossvenue_ask"):
                v = _gauge(text, g, asset="BTC", venue=venue_name, quote="USDT")
                assert v is not None and 40_000 < v < 90_000, (g, venue_name, v)
        assert _gauge(text, "ray_crossvenue_basis_bps", asset="BTC", venue="btcturk",
                      reference="binance") is not None
        assert _gauge(text, "ray_crossvenue_rate", currency="TRY", quote="USDT",
                      source="btcturk USDTTRY mid (bookTicker)") is not None
    finally:
        down = cli("down", *both)
    assert down.code == 0, down.err
    assert "cross-venue view crossvenue stopped" in down.out
    assert down.out.count('"rows_written"') == 2, down.out
    assert fabric_service.running("binance") is None
    assert fabric_service.running("btcturk") is None
    assert lookup(fabric_service.CROSS_NAME, NAMESPACE) is None
    gone = cli("status", *both, "--json")
    assert gone.code == 1 and json.loads(gone.out)["status"] == "absent"
    elapsed = time.monotonic() - t0
    assert elapsed < 120, elapsed  # ~45 s here (up ~19 s, status, gauges, down)


def test_a_failed_multi_exchange_up_stops_what_it_started(
        ray_session: Any, make_venue: Any, tmp_path: Path) -> None:
    """BTCTurk pointed at a port nobody listens on: ``up`` gives up after ``--timeout``
    (exit 1, naming the exchange that is not ready) and the Binance fabric it had started is
    gone too, with no cross-venue actor left behind."""
    from spark_ray.actors.naming import NAMESPACE, lookup
    from spark_ray.app import fabric_service

    from helpers import free_port

    venue = make_venue(symbols=("BTCUSDT", "BTCTRY"))
    dead = f"ws://127.0.0.1:{free_port()}/btcturk"
    up = run_cli("streams", "up", "--exchange", "binance,btcturk",
                 "--symbols", "binance:BTCUSDT;btcturk:BTCTRY",
                 "--ws-url", f"binance={venue.ws_url},btcturk={dead}",
                 "--rest-url", f"binance={venue.rest_url},btcturk={venue.btcturk_rest_url}",
                 "--store", str(tmp_path / "lake"),
                 "--breaker", "none", "--timeout", "6", "--address", ray_session.address,
                 env=cli_env(), timeout=180)
    assert up.code == 1, (up.out, up.err)
    assert "not healthy after 6 s: btcturk: connector:btcturk:0 not connected yet" in up.err
    assert fabric_service.running("binance") is None
    assert fabric_service.running("btcturk") is None
    assert lookup("sink:binance", NAMESPACE) is None
    assert lookup(fabric_service.CROSS_NAME, NAMESPACE) is None
