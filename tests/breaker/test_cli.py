"""The kill switch: ``spark-ray breaker status|trip|reset`` as a user runs it, against the
session's live Ray (``--address``)."""

from __future__ import annotations

import getpass
import secrets
from pathlib import Path
from typing import Any

import ray

from spark_ray.actors.breaker import get_breaker
from spark_ray.actors.naming import actor_name, lookup
from spark_ray.breaker.journal import JOURNAL_ENV, read_journal

from helpers import cli_env, free_port, run_cli

WHO = f"cli:{getpass.getuser()}"


def test_trip_and_reset_need_a_reason() -> None:
    for action in ("trip", "reset"):
        res = run_cli("breaker", action, "--address", "127.0.0.1:1")
        assert res.code == 2 and "--reason" in res.err, res.err
    res = run_cli("breaker", "trip", "--reason", " ", "--address", "127.0.0.1:1")
    assert res.code == 2 and "--reason must not be empty" in res.err


def test_status_trip_reset_against_a_live_breaker(ray_session: Any, tmp_path: Path) -> None:
    name = actor_name("breaker", "cli", secrets.token_hex(4))
    journal = tmp_path / "journal.jsonl"
    handle, started = get_breaker(name, journal_path=journal)
    assert started
    where = ("--address", ray_session.address, "--name", name)
    try:
        res = run_cli("breaker", "status", *where)
        assert res.code == 0, res.err
        assert res.out.startswith("ARMED  since "), res.out
        assert "started one" not in res.err

        res = run_cli("breaker", "trip", "--reason", "cli test halt", *where)
        assert res.code == 0, res.err
        first = res.out.splitlines()[0]
        assert first.startswith("TRIPPED  since ")
        assert f"rule=manual (cli test halt) by={WHO}" in first
        assert ray.get(handle.status.remote())["state"] == "TRIPPED"

        res = run_cli("breaker", "reset", "--reason", "all clear", *where)
        assert res.code == 0, res.err
        assert res.out.startswith("ARMED")
        assert "last trip" in res.out and "cli test halt" in res.out
        events, _ = read_journal(journal)
        assert [(e.kind, e.who, e.reason) for e in events if e.kind in ("trip", "reset")] == [
            ("trip", WHO, "cli test halt"), ("reset", WHO, "all clear")]
    finally:
        ray.kill(handle, no_restart=True)


def test_kill_switch_starts_a_detached_breaker_where_there_is_none(ray_session: Any,
                                                                  tmp_path: Path) -> None:
    name = actor_name("breaker", "cli", secrets.token_hex(4))
    journal = tmp_path / "fresh" / "journal.jsonl"
    assert lookup(name) is None
    res = run_cli("breaker", "trip", "--reason", "no breaker yet", "--address",
                  ray_session.address, "--name", name,
                  env=cli_env(**{JOURNAL_ENV: str(journal)}))
    handle = lookup(name)
    try:
        assert res.code == 0, res.err
        assert f"no breaker {name!r} on this cluster: started one (detached)" in res.err
        assert res.out.startswith("TRIPPED")
        assert handle is not None  # outlived the CLI's driver
        assert ray.get(handle.status.remote())["state"] == "TRIPPED"
        events, _ = read_journal(journal)
        assert [e.kind for e in events] == ["start", "trip"]
    finally:
        if handle is not None:
            ray.kill(handle, no_restart=True)


def test_unreachable_cluster_exits_1() -> None:
    res = run_cli("breaker", "status", "--address", f"127.0.0.1:{free_port()}", timeout=60)
    assert res.code == 1 and "could not reach Ray" in res.err, res.err


def test_bad_scope_exits_2_naming_the_flag() -> None:
    for argv in (("trip", "--reason", "x", "--scope", "desk:1"),
                 ("reset", "--reason", "x", "--scope", "account:"),
                 ("dry-run", "on", "--scope", "symbol:A B")):
        res = run_cli("breaker", *argv, "--address", "127.0.0.1:1")
        assert res.code == 2 and "--scope" in res.err, res.err
    res = run_cli("breaker", "dry-run", "maybe", "--address", "127.0.0.1:1")
    assert res.code == 2 and "on" in res.err and "off" in res.err


def test_scoped_trip_reset_and_dry_run_on_a_running_breaker(ray_session: Any,
                                                            tmp_path: Path) -> None:
    import json

    name = actor_name("breaker", "cli", secrets.token_hex(4))
    journal = tmp_path / "journal.jsonl"
    handle, _ = get_breaker(name, journal_path=journal)
    where = ("--address", ray_session.address, "--name", name)
    try:
        res = run_cli("breaker", "trip", "--reason", "desk review", "--scope", "account:desk",
                      *where)
        assert res.code == 0, res.err
        assert res.out.startswith("TRIPPED") and "scope=account:desk rule=manual" in res.out
        tree = [ln.split() for ln in res.out.splitlines()]
        assert ["global", "ARMED"] in [t[:2] for t in tree]
        assert ["account:desk", "TRIPPED"] in [t[:2] for t in tree]

        res = run_cli("breaker", "dry-run", "on", "--reason", "shadow week", *where)
        assert res.code == 0, res.err
        assert "DRY-RUN: rules are evaluated and journaled" in res.out
        assert ray.get(handle.status.remote())["dry_run"] is True

        res = run_cli("breaker", "reset", "--reason", "reviewed", "--scope", "account:desk",
                      *where)
        assert res.code == 0 and res.out.startswith("ARMED"), res.out
        res = run_cli("breaker", "dry-run", "on", "--scope", "symbol:ethusdt", *where)
        assert res.code == 0, res.err
        res = run_cli("breaker", "dry-run", "off", *where)
        assert res.code == 0, res.err
        res = run_cli("breaker", "status", "--json", *where)
        snap = json.loads(res.out)
        assert snap["dry_run"] is False and snap["dry_run_scopes"] == ["symbol:ETHUSDT"]
        assert snap["tree"]["accounts"]["desk"]["state"] == "ARMED"
        events, _ = read_journal(journal)
        got = [(e.kind, e.scope, e.who, e.values.get("on")) for e in events
               if e.kind in ("trip", "reset", "dry_run")]
        assert got == [("trip", "account:desk", WHO, None), ("dry_run", "global", WHO, True),
                       ("reset", "account:desk", WHO, None),
                       ("dry_run", "symbol:ETHUSDT", WHO, True),
                       ("dry_run", "global", WHO, False)]
    finally:
        ray.kill(handle, no_restart=True)
