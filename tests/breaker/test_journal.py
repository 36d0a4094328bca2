"""The file journal: fsync'd JSON lines, torn lines skipped, replay equals the live state."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from spark_ray.breaker.core import CircuitBreaker
from spark_ray.breaker.journal import (
    DEFAULT_JOURNAL,
    JOURNAL_ENV,
    FileJournal,
    read_journal,
    resolve_journal_path,
)
from spark_ray.breaker.models import BreakerConfig, BreakerState, Order

T0 = 1_800_000_000.0
CFG = BreakerConfig.model_validate({"cooldown_s": 5.0, "daily_loss": {"enabled": False}})


def drive(b: CircuitBreaker) -> None:
    b.on_equity(T0, 100.0)
    b.on_equity(T0 + 1, 85.0)
    b.allow(Order("X", "buy", 1.0, 1.0, order_id="a"), T0 + 2)
    b.trip("halt", "cli:test", T0 + 3)


def test_file_journal_round_trip_rebuilds_the_live_state(tmp_path: Path) -> None:
    path = tmp_path / "j" / "journal.jsonl"
    fj = FileJournal(path)
    live = CircuitBreaker(CFG, journal=fj, clock=lambda: T0)
    drive(live)
    fj.close()
    events, skipped = read_journal(path)
    assert skipped == 0 and [e.seq for e in events] == list(range(1, len(events) + 1))
    assert path.read_text().count("\n") == len(events)
    again = CircuitBreaker.replay(events, CFG)
    assert again.durable() == live.durable()
    assert again.state is BreakerState.TRIPPED


def test_torn_last_line_is_skipped_with_a_warning_and_kept(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.jsonl"
    fj = FileJournal(path)
    live = CircuitBreaker(CFG, journal=fj, clock=lambda: T0)
    drive(live)
    fj.close()
    whole = path.read_bytes()
    torn = b'{"seq": 99, "ts": 1800000010.0, "time": "x", "kind": "rese'
    path.write_bytes(whole + torn)  # the crash hit mid-write
    with caplog.at_level(logging.WARNING):
        fj2 = FileJournal(path)
    assert fj2.skipped == 1 and "torn last line" in caplog.text
    again = CircuitBreaker.replay(fj2.events, CFG, journal=fj2)
    assert again.durable() == live.durable()
    again.reset("after crash", "cli:test", T0 + 20)  # appends on a fresh line
    fj2.close()
    events, skipped = read_journal(path)
    assert skipped == 1 and events[-1].kind == "reset"
    assert torn + b"\n" in path.read_bytes()  # the fragment is kept as evidence


def test_a_corrupt_middle_line_is_skipped_not_fatal(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "journal.jsonl"
    fj = FileJournal(path)
    drive(CircuitBreaker(CFG, journal=fj, clock=lambda: T0))
    fj.close()
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b"\x00garbage\n", *lines[1:]]))
    with caplog.at_level(logging.WARNING):
        events, skipped = read_journal(path)
    assert skipped == 1 and len(events) == len(lines) and "unreadable line 2" in caplog.text


def test_missing_journal_is_an_empty_history(tmp_path: Path) -> None:
    assert read_journal(tmp_path / "none.jsonl") == ([], 0)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    first = FileJournal(path)
    with pytest.raises(RuntimeError, match="locked by another process"):
        FileJournal(path, lock_timeout_s=0.1)
    first.close()
    FileJournal(path).close()  # free again once the first writer is gone


def test_journal_path_precedence(tmp_path: Path) -> None:
    cfg = BreakerConfig(journal_path=str(tmp_path / "cfg.jsonl"))
    env = {JOURNAL_ENV: str(tmp_path / "env.jsonl")}
    assert resolve_journal_path(tmp_path / "arg.jsonl", cfg, env) == tmp_path / "arg.jsonl"
    assert resolve_journal_path(None, cfg, env) == tmp_path / "env.jsonl"
    assert resolve_journal_path(None, cfg, {}) == tmp_path / "cfg.jsonl"
    assert resolve_journal_path(None, None, {}) == Path(DEFAULT_JOURNAL).expanduser()
