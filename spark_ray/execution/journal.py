"""The executor's journal: append-only JSON lines of intents, order updates, fills and halts.

Write-ahead: an intent (the order as it will be submitted, with its client order id) is fsync'd
*before* the submit goes out, so after a crash every order the venue may hold is known by id and
reconciliation can ask for it. Updates and fills are written as they arrive (one write per
batch, in the page cache at once, so a process crash loses none of them) and fsync'd with the
next intent or by the executor's timer within ~100 ms: losing the last of them to a power cut
costs nothing that reconciliation with the venue does not restore. On start the journal is
replayed to rebuild orders, fills and positions; a torn last line (crash mid-write) or an
unreadable line is skipped and counted, never fatal.

The file is locked (``flock``) so two executors never interleave one history. Secrets never get
here: records hold orders, not credentials.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from spark_ray.lockedfile import lock_exclusive, read_all, write_all

log = logging.getLogger(__name__)

JOURNAL_ENV = "SPARK_RAY_EXECUTOR_JOURNAL"
DEFAULT_DIR = "~/.spark-ray/executor"
KINDS = ("start", "intent", "update", "halt", "resume", "note")


def resolve_journal_path(explicit: str | os.PathLike[str] | None, name: str,
                         environ: Mapping[str, str] | None = None) -> Path:
    """Explicit > $SPARK_RAY_EXECUTOR_JOURNAL > ``~/.spark-ray/executor/<name>/journal.jsonl``."""
    env = os.environ if environ is None else environ
    chosen = explicit or env.get(JOURNAL_ENV) or \
        f"{DEFAULT_DIR}/{name.replace(':', '-')}/journal.jsonl"
    return Path(chosen).expanduser()


def parse_lines(data: bytes, source: str = "journal") -> tuple[list[dict[str, Any]], int]:
    records: list[dict[str, Any]] = []
    skipped = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict) or rec.get("k") not in KINDS:
                raise ValueError("not a journal record")
        except ValueError as exc:
            skipped += 1
            torn = i == len(lines) - 1 and not data.endswith(b"\n")
            log.warning("%s: %s %d skipped: %s", source,
                        "torn last line" if torn else "unreadable line", i + 1, exc)
            continue
        records.append(rec)
    return records, skipped


class ExecJournal:
    """The durable journal: opened once, exclusively locked, each batch fsync'd."""

    def __init__(self, path: str | os.PathLike[str], lock_timeout_s: float = 15.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self.writes = 0
        self.fsyncs = 0
        self.dirty = False
        self.records_written = 0
        try:
            lock_exclusive(self._fd, lock_timeout_s, f"executor journal {self.path} (another "
                           "executor with this journal?)")
            data = read_all(self._fd)
            self.records, self.skipped = parse_lines(data, str(self.path))
            if data and not data.endswith(b"\n"):
                self._write(b"\n")  # terminate a torn fragment; keep it as evidence
        except BaseException:
            os.close(self._fd)
            raise

    def _write(self, data: bytes, sync: bool = True) -> None:
        write_all(self._fd, data)
        if sync:
            os.fsync(self._fd)
            self.fsyncs += 1
            self.dirty = False
        else:
            self.dirty = True

    def sync(self) -> None:
        """fsync what was written without it (the executor's timer calls this)."""
        if self.dirty and self._fd >= 0:
            os.fsync(self._fd)
            self.fsyncs += 1
            self.dirty = False

    def append(self, records: Iterable[dict[str, Any]], sync: bool = True) -> int:
        """Write records (each needs ``k``, one of KINDS) in one write, fsync'd unless
        ``sync=False`` (then by the next synced write or :meth:`sync`)."""
        lines = []
        now = time.time()
        for r in records:
            if r.get("k") not in KINDS:
                raise ValueError(f"journal record kind {r.get('k')!r} not in {KINDS}")
            r.setdefault("ts", now)
            lines.append(json.dumps(r, separators=(",", ":"), default=str))
        if not lines:
            return 0
        self._write(("\n".join(lines) + "\n").encode(), sync)
        self.writes += 1
        self.records_written += len(lines)
        return len(lines)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1


class MemoryJournal:
    """Same interface, in memory (core tests, benchmarks' peers)."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        self.path = Path("<memory>")
        self.records = list(records or [])
        self.skipped = 0
        self.writes = 0
        self.fsyncs = 0
        self.records_written = 0

    def sync(self) -> None:
        return None

    def append(self, records: Iterable[dict[str, Any]], sync: bool = True) -> int:
        batch = [dict(r, ts=r.get("ts", time.time())) for r in records]
        self.records.extend(batch)
        self.writes += 1 if batch else 0
        self.records_written += len(batch)
        return len(batch)

    def close(self) -> None:
        pass
