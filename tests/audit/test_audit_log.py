"""The audit log on its own: the line format, secrets masked, appends from several processes at
once (every line whole, none lost), the token-bucket limiter, and ``spark-ray audit tail``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spark_ray.audit import (
    AUDIT_ENV,
    FIELDS,
    AuditLog,
    MutationLimiter,
    audited,
    cli_source,
    default_path,
    parse_rate,
)
from spark_ray.errors import CheckFailed

from helpers import cli_env, run_cli


def test_one_json_line_per_mutation_with_every_field(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "sub" / "audit.jsonl")
    entry = log.append("cli:alice", "breaker-trip", {"breaker": "breaker", "scope": "global"},
                       "cli@host1", "ok", "exchange incident")
    (line,) = log.path.read_text().splitlines()
    assert json.loads(line) == entry
    assert tuple(entry) == FIELDS
    ts = dt.datetime.strptime(entry["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(ts - dt.datetime.now(dt.UTC).replace(tzinfo=None)) < dt.timedelta(seconds=10)
    assert (entry["who"], entry["action"], entry["source"], entry["outcome"]) == \
        ("cli:alice", "breaker-trip", "cli@host1", "ok")
    assert log.path.stat().st_mode & 0o777 == 0o600


def test_secrets_in_a_target_are_masked_never_written(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("x", "venue-admin:fault-inject",
               {"token": "tok-123", "api_key": "k-456", "key": "k-789",
                "nested": {"secret": "s-000", "Authorization": "Bearer b-111"}, "kind": "gap"},
               "127.0.0.1", "ok")
    text = log.path.read_text()
    for secret in ("tok-123", "k-456", "k-789", "s-000", "b-111"):
        assert secret not in text
    assert json.loads(text)["target"]["kind"] == "gap"


def test_default_path_follows_the_environment(tmp_path: Path) -> None:
    assert default_path({AUDIT_ENV: str(tmp_path / "a.jsonl")}) == tmp_path / "a.jsonl"
    assert default_path({}) == Path("~/.spark-ray/audit.jsonl").expanduser()


WRITER = """
import sys
from spark_ray.audit import AuditLog
log = AuditLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    log.append(f"w{sys.argv[2]}", "chaos", {"i": i, "pad": "x" * 3000}, "test", "ok")
"""


def test_appends_from_several_processes_are_whole_lines_none_lost(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(w), "150"])
             for w in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(entries) == 600
    for w in range(4):
        assert [e["target"]["i"] for e in entries if e["who"] == f"w{w}"] == list(range(150))


def test_audited_records_ok_refused_and_error_and_lets_exceptions_through(
        tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    with audited(log, "cli:bob", "params-approve", {"candidate": "b.json"}, reason="r") as t:
        t["extra"] = 1
    with pytest.raises(CheckFailed), audited(log, "cli:bob", "params-approve", {}):
        raise CheckFailed("the review FAILED (min_trades)\n  more")
    with pytest.raises(ZeroDivisionError), audited(log, "cli:bob", "chaos", {}):
        _ = 1 / 0
    ok, refused, error = log.tail(10)
    assert (ok["outcome"], ok["target"], ok["reason"], ok["source"]) == \
        ("ok", {"candidate": "b.json", "extra": 1}, "r", cli_source())
    assert refused["outcome"] == "refused: the review FAILED (min_trades)"
    assert error["outcome"].startswith("error: ZeroDivisionError")


def test_an_unwritable_log_is_an_error_line_not_a_crash(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "file").write_text("")
    log = AuditLog(tmp_path / "file" / "audit.jsonl")  # its folder is a file
    assert log.record("x", "chaos", {}, "s", "ok") is None
    assert "could not append chaos" in caplog.text


def test_limiter_allows_a_burst_then_refuses_then_refills_per_source() -> None:
    now = [100.0]
    lim = MutationLimiter(10, 10.0, clock=lambda: now[0])
    assert [lim.take("a") for _ in range(10)] == [0.0] * 10
    assert lim.take("a") == pytest.approx(1.0)  # one token a second
    assert lim.take("b") == 0.0  # another source has its own bucket
    now[0] += 0.5
    assert lim.take("a") == pytest.approx(0.5)
    now[0] += 0.5
    assert lim.take("a") == 0.0
    now[0] += 60
    assert [lim.take("a") for _ in range(11)].count(0.0) == 10  # capped at capacity
    message, headers = lim.refusal(0.2)
    assert headers == {"Retry-After": "1"} and "10 mutations per 10 s" in message


def test_rate_text_is_parsed_or_named() -> None:
    assert parse_rate(None) == (10, 10.0)
    assert parse_rate("5/2.5") == (5, 2.5)
    for bad in ("0/10", "10", "a/b", "5/0"):
        with pytest.raises(ValueError, match="SPARK_RAY_MUTATION_RATE"):
            parse_rate(bad)


def test_follow_yields_what_is_appended(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    log.append("old", "chaos", {}, "s", "ok")
    got: list[str] = []
    done = threading.Event()

    def reader() -> None:
        for e in log.follow(poll_s=0.05, stop=done.is_set):
            got.append(e["who"])
            if len(got) == 2:
                done.set()

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    log.append("new1", "chaos", {}, "s", "ok")
    log.append("new2", "chaos", {}, "s", "ok")
    t.join(10)
    done.set()
    assert got == ["new1", "new2"]


def test_audit_tail_prints_columns_or_json_and_names_bad_flags(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    for i in range(5):
        log.append(f"cli:u{i}", "breaker-trip", {"scope": "global"}, "cli@h", "ok", f"r{i}")
    log.append("anonymous", "executor-kill", {"executor": "e1"}, "127.0.0.1",
               "refused: bad token")
    res = run_cli("audit", "tail", "--log", str(path), "-n", "2")
    assert res.code == 0, res.err
    header, first, second = res.out.splitlines()
    assert header.split()[:4] == ["TIME", "(UTC)", "WHO", "ACTION"]
    assert "cli:u4" in first and "breaker-trip" in first and "reason='r4'" in first
    assert second.split()[1:4] == ["anonymous", "executor-kill", "refused:"]
    assert "127.0.0.1" in second and "executor=e1" in second
    # the default log is $SPARK_RAY_AUDIT_LOG
    res = run_cli("audit", "tail", "--json", env=cli_env(**{AUDIT_ENV: str(path)}))
    assert res.code == 0, res.err
    assert [json.loads(x)["who"] for x in res.out.splitlines()] == \
        [f"cli:u{i}" for i in range(5)] + ["anonymous"]



def test_audit_tail_names_a_bad_flag_and_exits_2(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from spark_ray.app.cli import main

    for args, flag in ((["-n", "x"], "-n"), (["-n", "-3"], "-n"),
                       (["--log", str(tmp_path / "nope.jsonl")], "--log")):
        assert main(["audit", "tail", *args]) == 2
        assert f"error: {flag}:" in capsys.readouterr().err


def test_the_default_limit_is_10_per_10_s_per_source() -> None:
    lim = MutationLimiter.from_env({})
    assert (lim.capacity, lim.per_s) == (10, 10.0)
    assert [lim.take("127.0.0.1") for _ in range(11)].count(0.0) == 10
    assert MutationLimiter.from_env({"SPARK_RAY_MUTATION_RATE": "2/1"}).capacity == 2


def test_a_hostile_target_is_cut_not_recursed_or_bloated(tmp_path: Path) -> None:
    deep: object = "bottom"
    for _ in range(5000):
        deep = [deep]
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = log.append("x", "alert-ack", {"alert": deep, "long": "y" * 10_000}, "s", "ok")
    assert len(log.path.read_text()) < 2000
    assert entry["target"]["long"].endswith("...")
