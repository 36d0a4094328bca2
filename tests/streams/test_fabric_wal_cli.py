"""A second fabric next to a running long-lived one on the same lake, from the CLI (issue 18,
point 5): `spark-ray trade --own-fabric` and a foreground `spark-ray streams` in another
namespace are refused the write-ahead log and say so in one line naming the holder (the
long-lived fabric's sink, namespace spark_ray) and the way out, exit 1, no Ray traceback; a
foreground `spark-ray streams` in the long-lived fabric's own namespace is refused before it
touches its actors. The running fabric keeps its WAL and keeps storing throughout.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from pathlib import Path
from typing import Any

import ray

from helpers import cli_env, run_cli, signer

HOLDER = re.compile(r"write-ahead log \S+ is in use by sink 'sink:binance' in namespace "
                    r"'spark_ray' \(pid (\d+) on host .+: one writer per WAL\. Stop that fabric "
                    r"first \(spark-ray streams down\), or give this one its own WAL directory")


def _one_clean_line(err: str) -> str:
    """The CLI's refusal: one ``spark-ray:`` line and no driver-side traceback. (Ray's log
    forwarding still echoes the sink worker's own log, prefixed ``(SinkActor pid=...)``: those
    lines are the worker's, not this command's; see the report.)"""
    own = [ln for ln in err.splitlines() if not re.search(r"\((SinkActor|NormalizerActor|"
                                                           r"ConnectorActor) pid=\d+\)", ln)]
    text = "\n".join(own)
    assert "Traceback" not in text and "ActorDiedError" not in text, text[-3000:]
    assert "RayActorError" not in text and "creation task" not in text, text[-3000:]
    # Ray's log monitor thread writes the forwarded worker lines to the same stderr; one of
    # them can land on the CLI's line before its newline, so the refusal is found by its own
    # prefix wherever it stands, not as a whole line.
    (line,) = re.findall(r"spark-ray: write-ahead log [^\n]*", err)
    return line


def test_a_second_fabric_on_the_lake_is_refused_cleanly_naming_the_holder(
        ray_session: Any, make_venue: Any, tmp_path: Path) -> None:
    from spark_ray.actors.naming import lookup
    from spark_ray.app import fabric_service
    from spark_ray.app.fabric import FabricConfig
    from spark_ray.chaos.approval import synthetic_approval

    venue = make_venue(trades_per_second=40, symbols=("BTCUSDT",))
    store = tmp_path / "lake"
    fabric = fabric_service.up(FabricConfig(symbols=["BTCUSDT"], ws_url=venue.ws_url,
                                            rest_url=venue.rest_url, store=str(store),
                                            breaker=None), lambda line: None)
    bname = f"breaker:w{uuid.uuid4().hex[:8]}"
    addr, env = ray_session.address, cli_env()
    try:
        venue.resume()
        holder = ray.get(fabric.sink.stats.remote(), timeout=30)["wal_holder"]
        approved = synthetic_approval(tmp_path / "p", "sma_cross", {"fast": 2, "slow": 3},
                                      "1s", note="wal refusal", signer=signer("ci"))
        own = run_cli("trade", "--params", str(approved), "--symbols", "BTCUSDT", "--paper",
                      "--own-fabric", "--store", str(store), "--ws-url", venue.ws_url,
                      "--rest-url", venue.rest_url, "--warmup-bars", "5", "--port", "0",
                      "--breaker", bname, "--journal", str(tmp_path / "j.jsonl"),
                      "--out", str(tmp_path / "runs"), "--address", addr, env=env)
        assert own.code == 1, (own.out, own.err[-3000:])
        m = HOLDER.search(_one_clean_line(own.err))
        assert m and int(m.group(1)) == holder["pid"], own.err[-2000:]
        side = run_cli("streams", "--symbols", "BTCUSDT", "--store", str(store), "--ws-url",
                       venue.ws_url, "--rest-url", venue.rest_url, "--namespace",
                       f"side-{uuid.uuid4().hex[:6]}", "--port", "0", "--breaker", "none",
                       "--duration", "5", "--address", addr, env=env)
        assert side.code == 1, (side.out, side.err[-3000:])
        m = HOLDER.search(_one_clean_line(side.err))
        assert m and int(m.group(1)) == holder["pid"], side.err[-2000:]
        same_ns = run_cli("streams", "--symbols", "BTCUSDT", "--store", str(tmp_path / "other"),
                          "--ws-url", venue.ws_url, "--port", "0", "--breaker", "none",
                          "--duration", "5", "--address", addr, env=env)
        assert same_ns.code == 1, (same_ns.out, same_ns.err[-3000:])
        assert "long-lived fabric:binance" in same_ns.err and "streams down" in same_ns.err
        assert "Traceback" not in same_ns.err
        # The long-lived fabric kept its WAL (same holder) and its actors, and still stores.
        assert fabric_service.running("binance") is not None
        st = ray.get(fabric.sink.stats.remote(), timeout=30)
        assert st["wal_holder"] == holder
        before = sum(st["stored"].values())
        fabric.wait_stored({"trades:BTCUSDT": before + 50}, timeout_s=60)
        assert sum(fabric.stored_counts().values()) >= before + 50
    finally:
        fabric_service.down("binance", lambda line: None)
        if (h := lookup(bname)) is not None:
            with contextlib.suppress(Exception):
                ray.kill(h, no_restart=True)
