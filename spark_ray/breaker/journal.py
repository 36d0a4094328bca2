"""The breaker's journal: append-only JSON lines, each flushed and fsync'd before it takes effect.

The journal is the breaker's memory across crashes: the core writes an event *before* applying it,
so whatever a restarted breaker replays is at least what it had acted on. A torn last line (crash
mid-write) or any unreadable line is skipped with a warning, never fatal; the torn fragment is kept
(terminated with a newline) as evidence rather than truncated away.

On a multi-node cluster the journal must sit on storage every node can reach (NFS, a shared
volume): Ray may restart the breaker on another node.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from spark_ray.breaker.models import BreakerConfig, Event
from spark_ray.lockedfile import lock_exclusive, read_all, write_all

log = logging.getLogger(__name__)

JOURNAL_ENV = "SPARK_RAY_BREAKER_JOURNAL"
DEFAULT_JOURNAL = "~/.spark-ray/breaker/journal.jsonl"


def resolve_journal_path(explicit: str | os.PathLike[str] | None = None,
                         config: BreakerConfig | None = None,
                         environ: Mapping[str, str] | None = None) -> Path:
    """Where the journal lives: explicit argument > $SPARK_RAY_BREAKER_JOURNAL > config > default.

    The environment beats the config file, as everywhere in spark-ray (file < env < flags).
    """
    env = os.environ if environ is None else environ
    chosen = explicit or env.get(JOURNAL_ENV) or (config.journal_path if config else None) \
        or DEFAULT_JOURNAL
    return Path(chosen).expanduser()


class Journal(Protocol):
    def append(self, event: Event) -> None: ...


class MemoryJournal:
    """Events kept in a list: the backtest's journal, and the reference in tests."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> None:
        self.events.append(event)


def parse_lines(data: bytes, source: str = "journal") -> tuple[list[Event], int]:
    """Events from JSON-lines bytes; unreadable lines are skipped with a warning, and counted."""
    events: list[Event] = []
    skipped = 0
    lines = data.split(b"\n")
    torn_tail = not data.endswith(b"\n") and data != b""
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            events.append(Event.model_validate_json(line))
        except ValidationError as exc:
            skipped += 1
            last = i == len(lines) - 1 and torn_tail
            what = "torn last line (crash mid-write?)" if last else "unreadable line"
            log.warning("%s: %s %d skipped: %s", source, what, i + 1,
                        exc.errors()[0].get("msg", exc) if exc.errors() else exc)
    return events, skipped


def read_journal(path: Path) -> tuple[list[Event], int]:
    """Events of the journal at ``path`` (none if it does not exist) and how many lines were
    skipped; read-only, so safe beside a running breaker."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], 0
    return parse_lines(data, str(path))


class FileJournal:
    """The durable journal: opened once, exclusively locked, every append fsync'd.

    The ``flock`` makes a second breaker on the same file wait (a restart racing the dying
    process) and then fail loudly rather than interleave two histories.
    """

    def __init__(self, path: Path, lock_timeout_s: float = 15.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            lock_exclusive(self._fd, lock_timeout_s,
                           f"breaker journal {self.path} (another breaker?)")
            data = read_all(self._fd)
            self.events, self.skipped = parse_lines(data, str(self.path))
            if data and not data.endswith(b"\n"):
                # Terminate the torn fragment so the next event starts on its own line.
                self._write(b"\n")
            if created:
                _fsync_dir(self.path.parent)
        except BaseException:
            os.close(self._fd)
            raise

    def _write(self, data: bytes) -> None:
        write_all(self._fd, data)
        os.fsync(self._fd)

    def append(self, event: Event) -> None:
        self._write(event.model_dump_json().encode() + b"\n")

    def extend(self, events: Iterable[Event]) -> None:
        for ev in events:
            self.append(ev)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1


def _fsync_dir(path: Path) -> None:
    """Make a new file's directory entry durable too."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
